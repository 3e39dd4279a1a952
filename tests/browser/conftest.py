"""The browser suite: every notebook run and used in JupyterLab, in Debian's Chromium, via Playwright.

Run it with ``make test-browser`` (it sets COURSE_BROWSER=1; without it, e.g. under
``make test``, these tests are skipped with that hint). Settings, all environment variables:

- ``BROWSER_LAB_ENV``: ``binder`` (default) builds the Binder environment from ``binder/`` the
  way repo2docker does (cached under .cache/, see binder_env.py) and starts JupyterLab from it;
  ``dev`` uses the interpreter running pytest (the project's .venv): quicker while iterating.
- ``BROWSER_NOTEBOOKS``: a glob over notebooks/ (default ``*.ipynb``).
- ``CHROMIUM``: the browser binary (default: ``chromium`` on PATH, i.e. Debian's /usr/bin/chromium).
- ``COURSE_CACHE``: trained models to reuse (make test-browser: .cache/test, shared with make test).
  The server gets a temporary cache that links to it, so quiz answers given by the test land in
  the temporary folder and nobody's saved progress is read or changed.

Without Chromium or Playwright the suite skips with a message, except when ``CI=true``: there a
missing browser is an error. Screenshots and logs go to build/browser/ (on failure:
``<notebook>-FAILED.png``; on success, small ones of each widget and quiz after the test used them).
A summary (per notebook: run time, errors, widget response times, quiz) is printed at the end
and written to build/browser/report.json.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from binder_env import binder_command, build_binder_venv  # noqa: E402
from lab_server import JupyterLab  # noqa: E402
from lab_driver import normalize  # noqa: E402
from suite_paths import BUILD, HERE, ROOT  # noqa: E402

ENABLED = os.environ.get("COURSE_BROWSER", "").strip().lower() in {"1", "true", "yes"}
IN_CI = os.environ.get("CI", "").strip().lower() == "true"
LAB_ENV = os.environ.get("BROWSER_LAB_ENV", "binder").strip() or "binder"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]

REPORT: dict = {"env": LAB_ENV, "notebooks": [], "binder": None, "suite_s": None}
_T0 = time.perf_counter()


def pytest_collection_modifyitems(config, items):
    if ENABLED:
        return
    skip = pytest.mark.skip(reason="browser suite: run it with `make test-browser` (sets COURSE_BROWSER=1)")
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


def _missing(what: str) -> None:
    if IN_CI:
        pytest.fail(f"{what} (CI=true: the browser suite must run in CI; .ci/run installs Chromium)",
                    pytrace=False)
    pytest.skip(f"{what}: browser suite skipped (install it: apt-get install chromium)")


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path or not os.access(path, os.X_OK):
        _missing("Chromium not found (looked for $CHROMIUM, chromium on PATH)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _missing("the playwright package is not installed (pip install -e '.[dev]')")
    return path


@pytest.fixture(scope="session")
def lab_python() -> tuple[Path, list[str]]:
    """(python of the environment JupyterLab runs in, command wrapper)."""
    if LAB_ENV == "dev":
        return Path(sys.executable), []
    if LAB_ENV != "binder":
        raise pytest.UsageError(f"BROWSER_LAB_ENV must be 'binder' or 'dev', not {LAB_ENV!r}")
    venv, info = build_binder_venv(ROOT, ROOT / ".cache", BUILD / "binder-venv-build.log")
    info["venv"] = str(venv.relative_to(ROOT))
    REPORT["binder"] = info
    return venv / "bin" / "python", binder_command(ROOT, [])


class LinkedCache:
    """A temporary COURSE_CACHE whose entries link to the shared test cache (trained models, sweeps).

    ``sync()`` (before each notebook) drops links whose target is gone and links entries that
    appeared in the shared cache since; ``close()`` moves what the notebooks created here for the
    first time (a model trained in this run) into the shared cache, so the next run loads it.
    Quiz progress is never linked: the test's answers stay in the temporary folder.
    """

    PRIVATE = ("quiz_progress", ".quiz_progress")

    def __init__(self, shared: Path):
        self.shared = shared
        shared.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix="browser-course-cache-"))
        self.sync()

    def sync(self) -> None:
        for entry in self.path.iterdir():
            if entry.is_symlink() and not entry.exists():
                entry.unlink()
        for entry in self.shared.iterdir():
            if not entry.name.startswith(self.PRIVATE) and not os.path.lexists(self.path / entry.name):
                (self.path / entry.name).symlink_to(entry)

    def close(self) -> None:
        for entry in self.path.iterdir():
            if entry.is_symlink() or entry.name.startswith(self.PRIVATE):
                continue
            if not (self.shared / entry.name).exists():
                shutil.move(str(entry), str(self.shared / entry.name))
        shutil.rmtree(self.path, ignore_errors=True)


@pytest.fixture(scope="session")
def course_cache():
    """The server's COURSE_CACHE (see LinkedCache); shared: $COURSE_CACHE, else .cache/test."""
    cache = LinkedCache(Path(os.environ.get("COURSE_CACHE") or ROOT / ".cache" / "test").resolve())
    yield cache
    cache.close()


@pytest.fixture(scope="session")
def lab(chromium_path, lab_python, course_cache):
    BUILD.mkdir(parents=True, exist_ok=True)
    for old in BUILD.glob("*.png"):  # this run's screenshots only
        old.unlink()
    python, wrapper = lab_python
    env = {"COURSE_FAST": os.environ.get("COURSE_FAST", "1"), "COURSE_CACHE": str(course_cache.path),
           "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}
    if LAB_ENV == "dev" and os.environ.get("PYTHONPATH"):  # a git worktree's course_lib, not the venv's editable one
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    server = JupyterLab(python, ROOT, env=env, log_path=BUILD / f"jupyterlab-{LAB_ENV}.log", wrapper=wrapper)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    b = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS, headless=True)
    yield b
    b.close()
    pw.stop()


@pytest.fixture
def page(request, browser, lab, course_cache):
    course_cache.sync()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    pg = context.new_page()
    yield pg
    rep = getattr(request.node, "rep_call", None)
    if rep is None or rep.failed:
        BUILD.mkdir(parents=True, exist_ok=True)
        name = request.node.callspec.id if hasattr(request.node, "callspec") else request.node.name
        try:
            pg.screenshot(path=str(BUILD / f"{name}-FAILED.png"))
        except Exception as exc:  # the page may be gone; the test's own error is what matters
            print(f"(no failure screenshot: {exc})")
    context.close()
    lab.shutdown_kernels()


@pytest.fixture(scope="session")
def report() -> dict:
    """The suite's summary; tests append their NotebookResult to ``report["notebooks"]``."""
    return REPORT


@pytest.fixture(scope="session")
def quiz_choices() -> dict:
    """Option labels as the page shows them ("A. text", ... in the shuffled order of
    ``MultipleChoice.display_order``) -> (right index, wrong index, has hint, right option's text),
    indices as shown."""
    from course_lib.quiz import MultipleChoice, load_bank

    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    table = {}
    for quiz in load_bank().values():
        for q in quiz.questions:
            if isinstance(q, MultipleChoice):
                order = q.display_order()
                labels = tuple(normalize(f"{letters[pos]}. {q.options[i]}") for pos, i in enumerate(order))
                right = order.index(q.answer_index)
                wrong = next(pos for pos in range(len(order)) if pos != right)
                table[labels] = (right, wrong, bool(q.hint), q.answer)
    return table


def _fmt(seconds, present: bool = True) -> str:
    if not present:
        return "none"
    return "unchanged" if seconds is None else f"{seconds:.2f} s"


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not ENABLED or not (REPORT["notebooks"] or REPORT["binder"]):
        return
    REPORT["suite_s"] = round(time.perf_counter() - _T0, 1)
    tr = terminalreporter
    rows = [asdict(r) for r in REPORT["notebooks"]]
    tr.section("browser suite")
    tr.write_line(f"JupyterLab environment: {LAB_ENV}   suite wall time: {REPORT['suite_s']:.0f} s")
    b = REPORT["binder"]
    if b:
        how = "built now" if b.get("built_now") else "reused (built earlier)"
        tr.write_line(f"Binder venv {b.get('venv')}: {how}, build {b['build_s']:.0f} s {b.get('steps')}")
    tr.write_line(f"{'notebook':34s} {'status':7s} {'open s':>6s} {'run s':>6s} {'cells':>7s} {'kernel MB':>9s}  quiz")
    for r in rows:
        tr.write_line(f"{r['notebook']:34s} {r['status']:7s} {r['open_s']:6.1f} {r['run_s']:6.1f} "
                      f"{r['executed']:>3d}/{r['code_cells']:<3d} {r['kernel_peak_mb']:9.0f}  {r['quiz'] or '-'}")
        for key in ("options", "reopen"):
            if r.get(key):
                tr.write_line(f"    {key}: {r[key]}")
        for e in r["errors"]:
            tr.write_line(f"    ERROR: {e.splitlines()[-1] if e.splitlines() else e}")
    tr.write_line("widget response (key press / click -> updated output; target <= 1 s):")
    for r in rows:
        for w in r["widgets"]:
            slow = max(t for t in (w["readout_s"], w["plot_s"], 0) if t is not None)
            flag = "" if slow <= 1.0 else "   OVER THE 1 s TARGET"
            tr.write_line(f"  {r['notebook']:32s} {w['name']:22s} {w['action']:26s} "
                          f"readout {_fmt(w['readout_s'], w['has_readout'])}, "
                          f"plot {_fmt(w['plot_s'], w['has_plot'])}{flag}")
    BUILD.mkdir(parents=True, exist_ok=True)
    (BUILD / "report.json").write_text(json.dumps(dict(REPORT, notebooks=rows), indent=2))
    tr.write_line(f"screenshots, logs and report.json: {BUILD.relative_to(ROOT)}/")
