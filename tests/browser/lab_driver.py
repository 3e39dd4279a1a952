"""Drive a notebook in JupyterLab through Playwright the way a learner would.

``NotebookSession`` opens a notebook, waits for its kernel, runs every cell from the Run menu,
waits for the kernel to go idle, and reads errors from the page. ``drive_widget`` moves a
chapter widget's slider with the keyboard (or clicks its toggle) and times how long the page
takes to show the result; ``answer_quiz`` answers a multiple-choice question wrong, then right;
``click_long_option`` checks that long options wrap inside their own row; ``save_copy_and_reopen``
saves the executed notebook under another name and reopens it, reading widget errors.

The chapters' widgets carry CSS classes (course_lib/explorers/base.py, quizzes/README.md):
``course-slider`` / ``course-toggle`` / ``course-textbox`` (controls), ``course-readout`` (text it drives),
``course-plot`` (Output with the plot it redraws); ``quiz``, ``quiz-score``, ``quiz-question``...
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # playwright is needed only when the suite really runs
    from playwright.sync_api import Locator, Page

# The kernel status in JupyterLab's status bar reads "Python 3 (ipykernel) | Idle".
KERNEL_IDLE = ".jp-StatusBar-TextItem:has-text('| Idle')"
CODE_PROMPTS = ".jp-Notebook .jp-CodeCell .jp-InputArea-prompt"
STDERR = ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
WIDGET_ERRORS = ("Error displaying widget", "Failed to load model class", "Error rendering widget")

# Run in the page: records, after the first key press / pointer press / change inside the
# widget's output area, when its readout text and its plot image first differ from before.
_PROBE_JS = r"""
(root) => {
  const readouts = [...root.querySelectorAll('.course-readout')];
  const plots = [...root.querySelectorAll('.course-plot')];
  const text = el => el.innerText.trim();
  const image = el => [...el.querySelectorAll('img')].map(i => i.getAttribute('src') || '').join('|');
  const probe = {t0: null, readout: null, plot: null,
                 before: {readout: readouts.map(text), plot: plots.map(image)},
                 after: {readout: null, plot: null},
                 hasReadout: readouts.length > 0, hasPlot: plots.length > 0};
  const start = () => { if (probe.t0 === null) probe.t0 = performance.now(); };
  for (const ev of ['keydown', 'pointerdown', 'change']) root.addEventListener(ev, start, {capture: true});
  const check = () => {
    if (probe.t0 === null) return;
    const now = performance.now();
    if (probe.readout === null) {
      const now_text = readouts.map(text);
      if (now_text.some((t, i) => t !== probe.before.readout[i])) {
        probe.readout = now - probe.t0; probe.after.readout = now_text;
      }
    }
    if (probe.plot === null) {
      const now_img = plots.map(image);
      if (now_img.some((s, i) => s && s !== probe.before.plot[i])) {
        probe.plot = now - probe.t0; probe.after.plot = now_img.map(s => s.length);
      }
    }
  };
  const obs = new MutationObserver(check);
  obs.observe(root, {subtree: true, childList: true, characterData: true, attributes: true});
  probe.poll = setInterval(check, 20);
  probe.stop = () => { obs.disconnect(); clearInterval(probe.poll); };
  window.__courseProbe = probe;
  return {readouts: readouts.length, plots: plots.length};
}
"""


# Run in the page: how the quiz's radio options are laid out. For each option label: the lines
# its text takes (distinct line tops of the text's client rects) and whether the text, or its
# radio button, runs outside the label's own box or into the next option's.
_OPTIONS_JS = r"""
(root) => {
  const out = {options: 0, wrapped: 0, overlaps: [], longest: null};
  [...root.querySelectorAll('.quiz-options .widget-radio-box')].forEach((box, bi) => {
    let prevBottom = null;
    [...box.querySelectorAll('label')].forEach((label, li) => {
      out.options++;
      const r = label.getBoundingClientRect();
      // the text's line boxes (text nodes only: the radio button is not a line of text)
      const rects = [], walker = document.createTreeWalker(label, NodeFilter.SHOW_TEXT);
      for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const range = document.createRange();
        range.selectNodeContents(node);
        rects.push(...[...range.getClientRects()].filter(x => x.width > 0));
      }
      const tops = rects.map(x => x.top).sort((a, b) => a - b);
      const lines = tops.filter((t, i) => i === 0 || t - tops[i - 1] > 3).length;
      const text = {bottom: Math.max(...rects.map(x => x.bottom), r.top)};
      const input = label.querySelector('input').getBoundingClientRect();
      if (lines > 1) out.wrapped++;
      const name = label.innerText.trim().slice(0, 50);
      if (text.bottom > r.bottom + 1 || input.bottom > r.bottom + 1 || input.top < r.top - 1)
        out.overlaps.push(`${name}: text or radio button outside its row`);
      if (prevBottom !== null && r.top < prevBottom - 1) out.overlaps.push(`${name}: row starts inside the previous one`);
      prevBottom = Math.max(r.bottom, text.bottom);
      if (!out.longest || lines > out.longest.lines) out.longest = {box: bi, label: li, lines, text: name};
    });
  });
  return out;
}
"""


@dataclass
class WidgetResult:
    notebook: str
    name: str              # e.g. "slider 'threshold'" or "toggle 'mode'"
    action: str            # e.g. "ArrowRight 0.50 -> 0.51"
    readout_s: float | None
    plot_s: float | None
    readout_before: str = ""
    readout_after: str = ""
    has_readout: bool = False  # the widget has a .course-readout / a .course-plot at all
    has_plot: bool = False

    @property
    def missing(self) -> list[str]:
        """What the widget has but did not change."""
        return ([".course-readout"] if self.has_readout and self.readout_s is None else []) + \
               ([".course-plot"] if self.has_plot and self.plot_s is None else [])

    @property
    def response_s(self) -> float | None:
        """Time until everything the control drives had changed (the slowest of readout and plot)."""
        times = [t for t in (self.readout_s, self.plot_s) if t is not None]
        return max(times) if times else None


@dataclass
class NotebookResult:
    notebook: str
    env: str = ""
    open_s: float = 0.0
    run_s: float = 0.0
    code_cells: int = 0
    executed: int = 0
    errors: list[str] = field(default_factory=list)
    warnings: int = 0
    widgets: list[WidgetResult] = field(default_factory=list)
    quiz: str = ""
    options: str = ""   # quiz options' layout at several widths, the long option clicked at 1024 px
    reopen: str = ""    # the saved copy reopened: progress bars left as text, widget errors
    kernel_peak_mb: float = 0.0
    status: str = "not run"
    screenshots: list[str] = field(default_factory=list)


class NotebookSession:
    """One notebook open in one browser page of a running JupyterLab."""

    def __init__(self, page: Page, lab, path: str):
        self.page = page
        self.lab = lab
        self.path = path  # relative to the server root, e.g. "notebooks/00_welcome.ipynb"

    # ------------------------------------------------------------------ open / run
    def open(self, expected_cells: int, timeout_s: float = 180) -> None:
        """Open the notebook (fresh workspace) and wait until it is rendered and its kernel is idle."""
        self.page.goto(self.lab.url(f"lab/tree/{self.path}", reset=""), wait_until="domcontentloaded")
        self.page.locator(".jp-Notebook .jp-Cell").nth(max(expected_cells - 1, 0)).wait_for(
            state="attached", timeout=timeout_s * 1000)
        self.wait_idle(timeout_s)

    def wait_idle(self, timeout_s: float = 180) -> None:
        """Wait for the status bar to say the kernel is idle and the server to agree."""
        self.page.locator(KERNEL_IDLE).first.wait_for(state="visible", timeout=timeout_s * 1000)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            kernels = self.lab.api("api/kernels") or []
            if kernels and all(k.get("execution_state") == "idle" for k in kernels):
                return
            time.sleep(0.25)
        raise TimeoutError(f"the kernel did not go idle within {timeout_s:.0f} s")

    def run_all(self, timeout_s: float) -> None:
        """Run > Run All Cells, then wait until no cell is queued or running and the kernel is idle."""
        page = self.page
        page.locator(".jp-Notebook").first.click(position={"x": 5, "y": 5})  # focus the notebook
        # outputs and numbers saved in the file would look like a finished run: clear them first
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Edit$")).click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Clear Outputs of All Cells$")).click()
        page.wait_for_function("(sel) => [...document.querySelectorAll(sel)].every(p => !/\\d/.test(p.textContent))",
                               arg=CODE_PROMPTS, timeout=30_000)
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
        self._wait_all_ran(timeout_s)

    def restart_and_run_all(self, timeout_s: float) -> None:
        """Kernel > Restart Kernel and Run All Cells…, confirmed, then wait as :meth:`run_all` does.

        What the kernel held is gone afterwards; what the notebook shows comes from a new run.
        """
        page = self.page
        page.locator(".jp-Notebook").first.click(position={"x": 5, "y": 5})
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Kernel$")).click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Restart Kernel and Run All Cells")).click()
        page.locator(".jp-Dialog .jp-mod-accept").click()
        page.wait_for_function("(sel) => [...document.querySelectorAll(sel)].some(p => p.textContent.includes('*'))",
                               arg=CODE_PROMPTS, timeout=30_000, polling=100)
        self._wait_all_ran(timeout_s)

    def _wait_all_ran(self, timeout_s: float) -> None:
        page = self.page
        # Done: the first code cell has a number, none shows [*] (queued or running), the kernel
        # is idle, and that stays so for a second (the kernel is briefly idle between cells).
        page.wait_for_function(
            """(sel) => {
                const ps = [...document.querySelectorAll(sel)].map(p => p.textContent.trim());
                const done = ps.length > 0 && /\\[\\d+\\]/.test(ps[0]) && !ps.some(t => t.includes('*'));
                const now = performance.now();
                if (!done) { window.__courseDoneSince = null; return false; }
                if (!window.__courseDoneSince) window.__courseDoneSince = now;
                return now - window.__courseDoneSince > 1000;
            }""",
            arg=CODE_PROMPTS, timeout=timeout_s * 1000, polling=250)
        self.wait_idle(60)

    def executed_cells(self) -> tuple[int, int, int]:
        """(code cells, code cells showing their input prompt, prompts with an execution count).

        A cell whose input is collapsed (``source_hidden``, e.g. a hidden solution) shows no prompt.
        """
        cells = self.page.locator(".jp-Notebook .jp-CodeCell").count()
        prompts = [t.strip() for t in self.page.locator(CODE_PROMPTS).all_inner_texts()]
        return cells, len(prompts), sum(1 for t in prompts if re.search(r"\[\d+\]", t))

    def errors(self) -> tuple[list[str], int]:
        """(error outputs: tracebacks and widget errors, number of other stderr outputs)."""
        errors, warnings = [], 0
        for text in self.page.locator(STDERR).all_inner_texts():
            if "Traceback" in text or re.search(r"^\w*(Error|Exception)\b", text, re.M):
                errors.append(text.strip()[-2000:])
            else:
                warnings += 1
        body = self.page.locator(".jp-Notebook").first.inner_text()
        for marker in WIDGET_ERRORS:
            if marker in body:
                i = body.index(marker)
                errors.append(body[i:i + 300])
        return errors, warnings

    # ------------------------------------------------------------------ widgets
    def widget_outputs(self) -> list[Locator]:
        """Output areas that hold a chapter widget (a control with a course-* class)."""
        outs = self.page.locator(".jp-OutputArea-output").filter(
            has=self.page.locator(".course-slider, .course-toggle, .course-textbox"))
        return [outs.nth(i) for i in range(outs.count())]

    def drive_widget(self, output: Locator, notebook: str, timeout_s: float = 30) -> list[WidgetResult]:
        """Move every slider of one widget output by one step, and click every toggle; time each."""
        results = []
        sliders = output.locator(".course-slider")
        for i in range(sliders.count()):
            results.append(self._move_slider(output, sliders.nth(i), notebook, timeout_s))
        toggles = output.locator(".course-toggle")
        for i in range(toggles.count()):
            results.append(self._toggle(output, toggles.nth(i), notebook, timeout_s))
        boxes = output.locator(".course-textbox")
        for i in range(boxes.count()):
            results.append(self._type_text(output, boxes.nth(i), notebook, timeout_s))
        return results

    def _type_text(self, output: Locator, box: Locator, notebook: str, timeout_s: float) -> WidgetResult:
        """Replace the text of a ``course-textbox`` by a spam-like message, typed key by key."""
        name = f"textbox {self._label(box)!r}"
        field = box.locator("input, textarea").first
        message = "URGENT! You have won a free prize, call 09061701461 now"
        self._arm(output)
        field.click()
        field.press("Control+a")
        field.press_sequentially(message, delay=5)
        field.press("Enter")
        return self._finish(notebook, name, f"typed {message!r}", timeout_s)

    def _label(self, control: Locator) -> str:
        label = control.locator(".widget-label").first
        text = label.inner_text().strip() if label.count() else ""
        return text or (control.get_attribute("title") or "").strip() or "?"

    def _arm(self, output: Locator) -> dict:
        output.scroll_into_view_if_needed()
        return output.evaluate(_PROBE_JS)

    def _wait_probe(self, timeout_s: float) -> dict:
        self.page.wait_for_function(
            """() => { const p = window.__courseProbe;
                       return p.t0 !== null && (!p.hasReadout || p.readout !== null) && (!p.hasPlot || p.plot !== null); }""",
            timeout=timeout_s * 1000, polling=50)
        return self._read_probe()

    def _read_probe(self) -> dict:
        return self.page.evaluate("""() => { const p = window.__courseProbe; p.stop();
            return {t0: p.t0, readout: p.readout, plot: p.plot, before: p.before.readout, after: p.after.readout,
                    hasReadout: p.hasReadout, hasPlot: p.hasPlot}; }""")

    def _finish(self, notebook: str, name: str, action: str, timeout_s: float) -> WidgetResult:
        try:
            probe = self._wait_probe(timeout_s)
        except Exception:
            probe = self._read_probe()  # whatever changed in time; the test reports the rest
        to_s = lambda ms: None if ms is None else ms / 1000.0  # noqa: E731
        before = " | ".join(probe["before"] or [])
        after = " | ".join(probe["after"] or []) if probe["after"] else ""
        return WidgetResult(notebook, name, action, to_s(probe["readout"]), to_s(probe["plot"]),
                            before, after, probe["hasReadout"], probe["hasPlot"])

    def _move_slider(self, output: Locator, slider: Locator, notebook: str, timeout_s: float) -> WidgetResult:
        name = f"slider {self._label(slider)!r}"
        handle = slider.locator(".noUi-handle").first
        readout = slider.locator(".widget-readout").first
        old_value = readout.inner_text().strip() if readout.count() else ""
        now = handle.get_attribute("aria-valuenow")
        top = handle.get_attribute("aria-valuemax")
        key = "ArrowLeft" if now is not None and top is not None and float(now) >= float(top) else "ArrowRight"
        self._arm(output)
        handle.focus()
        self.page.keyboard.press(key)
        result = self._finish(notebook, name, key, timeout_s)
        new_value = readout.inner_text().strip() if readout.count() else ""
        result.action = f"{key}: {old_value} -> {new_value}"
        return result

    def _toggle(self, output: Locator, toggle: Locator, notebook: str, timeout_s: float) -> WidgetResult:
        name = f"toggle {self._label(toggle)!r}"
        self._arm(output)
        buttons = toggle.locator("button")
        checkbox = toggle.locator("input[type=checkbox]")
        select = toggle.locator("select")
        if buttons.count() > 1:  # ToggleButtons: pick one that is not selected
            target = toggle.locator("button:not(.mod-active)").first
            action = f"click {target.inner_text().strip()!r}"
            target.click()
        elif checkbox.count():
            action = "click checkbox"
            checkbox.first.click()
        elif select.count():
            options = select.first.locator("option")
            current = select.first.input_value()
            values = [options.nth(i).get_attribute("value") for i in range(options.count())]
            choice = next(v for v in values if v != current)
            action = f"select {choice!r}"
            select.first.select_option(choice)
        else:  # a ToggleButton (the element is the button) or a plain button
            target = buttons.first if buttons.count() else toggle
            action = f"click {target.inner_text().strip()!r}"
            target.click()
        return self._finish(notebook, name, action, timeout_s)

    # ------------------------------------------------------------------ quizzes
    def answer_quiz(self, choice_questions: dict[tuple[str, ...], tuple[int, int, bool, str]],
                    timeout_s: float = 30) -> tuple[str, Locator]:
        """Answer one multiple-choice question wrong, then right.

        Wrong: red feedback and the hint (shown by itself), the right answer not shown, a *Show
        answer* button offered. Right: green feedback, the score up by one.
        ``choice_questions``: option labels as shown ("A. text", ..., shuffled per question) ->
        (right index, a wrong index, has a hint, the right option's text), from the quiz bank.
        Returns a one-line summary and the question's locator. Raises AssertionError when the
        page does not react as a learner expects.
        """
        page = self.page
        quiz = page.locator(".quiz").last
        score = quiz.locator(".quiz-score").first
        candidates = quiz.locator(".quiz-multiple-choice, .quiz-practice")
        assert candidates.count() > 0, "the quiz has no multiple-choice question"
        # prefer a question with a hint button, so the hint is exercised too
        ordered = sorted(range(candidates.count()),
                         key=lambda i: 0 if candidates.nth(i).locator(".quiz-hint").count() else 1)
        question = labels = None
        for i in ordered:
            q = candidates.nth(i)
            labels = tuple(normalize(t) for t in q.locator(".quiz-options .widget-radio-box label").all_inner_texts())
            if labels in choice_questions:
                question = q
                break
        assert question is not None, f"no question on the page matches the quiz bank (last options seen: {labels})"
        right, wrong, has_hint, answer = choice_questions[labels]
        question.scroll_into_view_if_needed()
        feedback = question.locator(".quiz-feedback")
        score0 = score.inner_text().strip()

        # 1. wrong answer: red feedback and the hint; the right answer stays hidden
        question.locator(".quiz-options .widget-radio-box label").nth(wrong).click()
        question.locator(".quiz-check").click()
        page.wait_for_function("(el) => el.innerText.includes('\u274c')", arg=feedback.element_handle(),
                               timeout=timeout_s * 1000)
        wrong_feedback = feedback.inner_text().strip()
        shown = normalize(wrong_feedback + " " + question.locator(".quiz-solution").inner_text())
        assert normalize(answer) not in shown and "right answer is" not in shown, (
            f"a first wrong answer gave the right one away: {shown[:300]!r}")
        reveal = question.locator(".quiz-reveal")
        assert reveal.count() and reveal.is_visible(), "no 'Show answer' button after a wrong answer"
        hint_text = ""
        if has_hint:  # shown with the wrong answer, no click needed
            hint = question.locator(".quiz-hint-text")
            page.wait_for_function("(el) => el.innerText.trim().length > 0", arg=hint.element_handle(),
                                   timeout=timeout_s * 1000)
            hint_text = hint.inner_text().strip()
        else:  # another question's hint, on request
            hint_owner = quiz.locator(".quiz-question").filter(has=page.locator(".quiz-hint")).first
            if hint_owner.count():
                hint_owner.locator(".quiz-hint").click()
                hint = hint_owner.locator(".quiz-hint-text")
                page.wait_for_function("(el) => el.innerText.trim().length > 0", arg=hint.element_handle(),
                                       timeout=timeout_s * 1000)
                hint_text = hint.inner_text().strip()
                question.scroll_into_view_if_needed()
        page.wait_for_function("([el, old]) => el.innerText.trim() !== old",
                               arg=[score.element_handle(), score0], timeout=timeout_s * 1000)
        score1 = score.inner_text().strip()

        # 2. right answer: green feedback, one more right in the score
        question.locator(".quiz-options .widget-radio-box label").nth(right).click()
        question.locator(".quiz-check").click()
        page.wait_for_function("(el) => el.innerText.includes('\u2705')", arg=feedback.element_handle(),
                               timeout=timeout_s * 1000)
        page.wait_for_function("([el, old]) => el.innerText.trim() !== old",
                               arg=[score.element_handle(), score1], timeout=timeout_s * 1000)
        score2 = score.inner_text().strip()
        self.last_score = score2
        r0, r1, r2 = (_right(s) for s in (score0, score1, score2))
        assert r2 == r1 + 1, f"the score did not count the right answer: {score1!r} -> {score2!r}"
        hint_where = "its hint" if has_hint else "another question's hint" if hint_text else "no hint in this quiz"
        summary = (f"wrong -> {wrong_feedback.splitlines()[0][:70]!r}, answer hidden, Show answer offered"
                   + (f", {hint_where} shown ({len(hint_text)} chars)" if hint_text else f", {hint_where}")
                   + f"; right -> score {score0!r} -> {score1!r} -> {score2!r}")
        return summary, question

    def option_layout(self, width: int) -> dict:
        """At a window ``width`` (px): how many quiz options there are, how many wrap, which overlap."""
        page = self.page
        page.set_viewport_size({"width": width, "height": page.viewport_size["height"]})
        page.wait_for_timeout(700)  # JupyterLab re-lays out the panels
        return page.locator(".quiz").last.evaluate(_OPTIONS_JS)

    def click_long_option(self, width: int = 1024) -> str:
        """At ``width`` px, click the option that wraps onto the most lines and check it is selected."""
        layout = self.option_layout(width)
        assert not layout["overlaps"], f"at {width} px quiz options overlap: {layout['overlaps'][:5]}"
        longest = layout["longest"]
        assert longest, "the quiz shows no options"
        box = self.page.locator(".quiz").last.locator(".quiz-options .widget-radio-box").nth(longest["box"])
        label = box.locator("label").nth(longest["label"])
        label.scroll_into_view_if_needed()
        label.click()
        radio = label.locator("input")
        self.page.wait_for_function("(el) => el.checked", arg=radio.element_handle(), timeout=5000)
        checked = box.locator("input:checked")
        assert checked.count() == 1 and radio.is_checked(), f"clicking {longest['text']!r} did not select it"
        return (f"{width} px: {layout['wrapped']} of {layout['options']} options wrap, none overlap; "
                f"clicked {longest['text']!r} ({longest['lines']} lines): selected")

    def save_copy_and_reopen(self, copy_path: str, timeout_s: float = 120) -> list[str]:
        """File > Save Notebook As... ``copy_path`` (relative to the server root), then open that copy
        afresh (the kernel keeps running, as when a learner reopens a saved notebook) and return
        the widget errors the page shows ("Error displaying widget: model not found", ...)."""
        page = self.page
        page.locator(".jp-Notebook").first.click(position={"x": 5, "y": 5})
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^File$")).click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Save Notebook As")).click()
        field = page.locator(".jp-Dialog input").first
        field.fill(copy_path)
        page.locator(".jp-Dialog .jp-mod-accept").click()
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if self.lab.api(f"api/contents/{copy_path}?content=0"):
                    break
            except OSError:  # 404 (urllib's HTTPError is an OSError) until the copy is written
                pass
            assert time.monotonic() < deadline, f"Save As did not write {copy_path}"
            time.sleep(0.25)
        # the kernel stays with the copy, as it stays with a notebook a learner saves and reopens
        sessions = self.lab.api("api/sessions") or []
        if not any(x.get("path") == copy_path for x in sessions) and len(sessions) == 1:
            self.lab.api(f"api/sessions/{sessions[0]['id']}", method="PATCH", body={"path": copy_path})
        self.path = copy_path
        page.goto(self.lab.url(f"lab/tree/{copy_path}", reset=""), wait_until="domcontentloaded")
        page.locator(".jp-Notebook .jp-Cell").first.wait_for(state="attached", timeout=timeout_s * 1000)
        self.wait_idle(timeout_s)
        page.wait_for_timeout(3000)  # widget views are restored from the kernel after the cells render
        # JupyterLab renders a long notebook's cells as they scroll into view (windowing): scroll to
        # the end a screen at a time and read every screen, so no output goes unchecked.
        found: list[str] = []
        for _ in range(400):
            body = page.locator(".jp-Notebook").first.inner_text()
            found += [body[body.index(m):body.index(m) + 200] for m in WIDGET_ERRORS if m in body]
            at_end = page.evaluate(
                """() => { const el = document.querySelector('.jp-WindowedPanel-outer')
                                   || document.querySelector('.jp-NotebookPanel-notebook');
                           if (!el) return true;
                           const end = el.scrollTop + el.clientHeight >= el.scrollHeight - 2;
                           el.scrollTop += el.clientHeight * 0.9; return end; }""")
            page.wait_for_timeout(400)
            if at_end:
                break
        return sorted(set(found))

    def flip_flashcard(self, timeout_s: float = 30) -> bool:
        """Flip the first flashcard, if any; True when its answer appeared."""
        card = self.page.locator(".quiz .quiz-flashcard").first
        if not card.count():
            return False
        card.scroll_into_view_if_needed()
        card.locator(".quiz-flip").click()
        answer = card.locator(".quiz-answer")
        self.page.wait_for_function("(el) => el.innerText.trim().length > 0", arg=answer.element_handle(),
                                    timeout=timeout_s * 1000)
        return True


def normalize(text: str) -> str:
    """Whitespace collapsed, as the page shows text."""
    return " ".join(text.split())


def right_answers(score_text: str) -> int:
    """The number of right answers in a quiz's score line ("Score: 3/17 correct ...")."""
    return _right(score_text)


def _right(score_text: str) -> int:
    m = re.search(r"(\d+)\s*/\s*\d+\s+correct", score_text)
    assert m, f"unexpected score line: {score_text!r}"
    return int(m.group(1))
