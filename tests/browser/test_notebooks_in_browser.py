"""Every notebook, run and used in a real browser, as a learner would on Binder.

For each notebook in notebooks/ (whatever exists, so new chapters are picked up): open it in
JupyterLab, Run All Cells, wait for the kernel to go idle, and require that every code cell ran
with no traceback and no widget error. Then move every chapter widget's slider with the
keyboard (or click its toggle) and require that what it drives changed (readout text, plot
image), timing it; check that long quiz options wrap inside their own row at 1400-800 px and
that clicking one at 1024 px selects it; answer one quiz question wrong (feedback and hint
appear, the answer does not), then right (the score goes up); finally save the executed
notebook under build/browser/ (never the committed file) and reopen it: no widget error
(a finished progress bar leaves text). Settings and reports: conftest.py.
"""

from __future__ import annotations

import json
import re
import time

import pytest
from lab_driver import NotebookResult, NotebookSession, right_answers
from lab_server import KernelMemory
from suite_paths import BUILD, ROOT, notebook_paths

NOTEBOOKS = notebook_paths()
# Chapters must have a main widget (a control with the course-slider / course-toggle class; a
# course-textbox is typed into, and its readout must change);
# the welcome notebook is the only one without.
NO_WIDGET = {"00_welcome"}
# Where the suite also restarts the kernel and runs everything again, to see the quiz progress
# survive (it is saved to a file in the cache folder). One short notebook is enough.
RESTART_CHECK = {"00_welcome"}
RUN_TIMEOUT_S = 900          # one notebook, fast mode (the first run of 01 trains the teacher)
SLOW_WIDGET_S = 5.0          # a widget slower than this fails; the target (<= 1 s) is reported
OPTION_WIDTHS = (1400, 1280, 1024, 800)  # quiz options must wrap inside their own row at each
VIEWPORT = {"width": 1280, "height": 900}  # conftest.page's window


def _load(path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_in_browser(notebook, lab, page, report, quiz_choices):
    mtime = notebook.stat().st_mtime_ns
    try:
        _use_notebook(notebook, lab, page, report, quiz_choices)
    finally:
        # JupyterLab must not write the executed notebook back (autosave is off in lab_server.py).
        # Not restored automatically: someone may be editing it; `git diff` tells.
        if notebook.stat().st_mtime_ns != mtime:
            pytest.fail(f"{notebook.name} was written during the test: check `git diff {notebook.name}`")


def _use_notebook(notebook, lab, page, report, quiz_choices):
    nb = _load(notebook)
    cells = nb["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    shows_quiz = any(re.search(r"\bshow_quiz\(", "".join(c["source"])) for c in code)
    result = NotebookResult(notebook.name, env=report["env"])
    report["notebooks"].append(result)
    session = NotebookSession(page, lab, f"notebooks/{notebook.name}")

    # open, run everything, no errors
    t = time.perf_counter()
    session.open(expected_cells=len(cells))
    result.open_s = time.perf_counter() - t
    t = time.perf_counter()
    with KernelMemory(lab) as memory:
        session.run_all(timeout_s=RUN_TIMEOUT_S)
    result.run_s = time.perf_counter() - t
    result.kernel_peak_mb = memory.peak_mb
    result.code_cells, prompts, result.executed = session.executed_cells()
    result.errors, result.warnings = session.errors()
    result.status = "errors"
    assert not result.errors, f"{notebook.name}: error output in the page:\n\n" + "\n\n".join(result.errors)
    assert result.code_cells == len(code), f"the page shows {result.code_cells} code cells, the file has {len(code)}"
    assert result.executed == prompts, (
        f"only {result.executed} of the {prompts} code cells with a visible prompt ran")

    # the chapter's widgets: each control changes what it drives, quickly
    result.status = "widgets"
    outputs = session.widget_outputs()
    if notebook.stem not in NO_WIDGET:
        assert outputs, (f"{notebook.name}: no chapter widget found (a control with the CSS class "
                         "course-slider or course-toggle, see course_lib/explorers/base.py)")
    for i, output in enumerate(outputs):
        results = session.drive_widget(output, notebook.name)
        result.widgets.extend(results)
        BUILD.mkdir(parents=True, exist_ok=True)
        output.screenshot(path=str(BUILD / f"{notebook.stem}-widget{i + 1}.png"))
        for w in results:
            print(f"{notebook.name}: {w.name} {w.action}: readout {w.readout_s} s, plot {w.plot_s} s")
            assert w.readout_s is not None or w.plot_s is not None, (
                f"{w.name}: {w.action} changed neither the readout (.course-readout) nor the plot "
                f"(.course-plot) within 30 s")
            # a slider drives everything its widget shows; a toggle may leave one of them alone
            assert not (w.name.startswith(("slider", "textbox")) and w.missing), (
                f"{w.name}: {w.action} did not change {', '.join(w.missing)} within 30 s")
            assert w.response_s is not None and w.response_s <= SLOW_WIDGET_S, (
                f"{w.name}: the output took {w.response_s} s to update (target <= 1 s)")

    # the quiz: long options wrap in their own row; wrong (feedback + hint, no answer), then right
    if shows_quiz:
        result.status = "quiz"
        assert page.locator(".quiz").count(), f"{notebook.name} calls show_quiz but no quiz widget appeared"
        widths = []
        for width in OPTION_WIDTHS:
            layout = session.option_layout(width)
            widths.append(f"{width} px {layout['wrapped']}/{layout['options']} wrap")
            assert not layout["overlaps"], f"at {width} px quiz options overlap: {layout['overlaps'][:5]}"
        result.options = "; ".join(widths) + " (none overlap); " + session.click_long_option(1024)
        page.set_viewport_size(VIEWPORT)
        flipped = session.flip_flashcard()
        summary, question = session.answer_quiz(quiz_choices)
        result.quiz = summary + ("; flashcard flipped" if flipped else "")
        question.screenshot(path=str(BUILD / f"{notebook.stem}-quiz.png"))
        if notebook.stem in RESTART_CHECK:
            result.status = "restart"
            before = session.last_score
            session.restart_and_run_all(timeout_s=RUN_TIMEOUT_S)
            after = page.locator(".quiz").last.locator(".quiz-score").first.inner_text().strip()
            assert right_answers(after) == right_answers(before), (
                f"quiz progress lost on a kernel restart: {before!r} before, {after!r} after")
            result.quiz += f"; kernel restarted, score still {after!r}"

    # saved and reopened (a copy, never the committed file): finished progress bars left text,
    # no dead widget ("Error displaying widget: model not found")
    result.status = "reopen"
    copy = BUILD / f"reopen-{notebook.name}"
    copy_rel = copy.relative_to(ROOT).as_posix()
    copy.unlink(missing_ok=True)
    try:
        errors = session.save_copy_and_reopen(copy_rel)
        saved = _load(copy)
        texts = ["".join(o.get("data", {}).get("text/plain", "")) for c in saved["cells"]
                 for o in c.get("outputs", []) if "data" in o]
        bars = [t for t in texts if re.search(r": \d+(/\d+)? steps in \d", t)]
        result.reopen = f"reopened a saved copy: {len(bars)} finished progress bar(s) left as text, " \
                        f"{len(errors)} widget error(s)"
        assert not errors, f"{notebook.name}, saved and reopened: " + " | ".join(errors)
    finally:
        copy.unlink(missing_ok=True)
    result.status = "passed"
