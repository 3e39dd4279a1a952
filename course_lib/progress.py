"""Progress bars for long work (fine-tuning, sweeps, benchmarks): one helper, :func:`progress_bar`.

In a Jupyter kernel the bar is tqdm's notebook widget, shown through a display handle; when it
closes, the handle replaces the widget with one line of text ("fine-tune student: 30/30 in
00:05, loss=0.123"). So a saved notebook holds readable text where the bar was, never a
widget whose model is gone ("Error displaying widget: model not found" on reopening). The
label keeps its natural width (it never wraps mid-word, "bit-" / "width"); the bar shrinks.
Anywhere else (terminal, tests, scripts) it is plain ``tqdm`` with ``leave=False``.
"""

from __future__ import annotations

from typing import Any, Iterable

from tqdm.std import tqdm as _std_tqdm

__all__ = ["progress_bar", "in_notebook", "summary_line"]


def in_notebook() -> bool:
    """True inside a Jupyter kernel with ipywidgets available (where a widget bar can show)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with the notebook stack
        return False
    shell = get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None:
        return False
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


def _display(obj: Any, **kwargs):
    """IPython's ``display`` (a seam for the tests)."""
    from IPython.display import display

    return display(obj, **kwargs)


def summary_line(bar: _std_tqdm) -> str:
    """One line for a finished (or stopped) bar: ``"<desc>: <n>/<total> in <mm:ss>[, <postfix>]"``."""
    d = bar.format_dict
    n, total = d["n"], d["total"]
    count = f"{n:g}/{total:g}" if total else f"{n:g}"
    unit = d.get("unit") or "it"
    text = f"{d.get('prefix') or 'done'}: {count} {unit if unit != 'it' else 'steps'} in " \
           f"{_std_tqdm.format_interval(d['elapsed'])}"
    if total and n < total:
        text += " (stopped early)"
    if d.get("postfix"):
        text += f", {d['postfix']}"
    return text


def _notebook_class():
    from tqdm.notebook import tqdm as notebook_tqdm

    class NotebookBar(notebook_tqdm):
        """tqdm's widget bar, displayed through a handle that turns into text on close."""

        def __init__(self, *args, **kwargs):
            kwargs["display"] = False
            super().__init__(*args, **kwargs)
            self._handle = None
            if self.disable:
                return
            ltext, pbar, rtext = self.container.children
            ltext.layout.flex = "0 0 auto"       # the label keeps its width: no "bit-" / "width"
            rtext.layout.flex = "0 1 auto"
            pbar.layout.flex = "1 1 auto"
            pbar.layout.min_width = "60px"
            self._handle = _display(self.container, display_id=True)
            self.displayed = True

        def close(self):
            if self.disable or getattr(self, "_closed_text", False):
                return super().close()
            super().close()
            self._closed_text = True
            if self._handle is not None:
                self._handle.update({"text/plain": summary_line(self)}, raw=True)
            for widget in (*self.container.children, self.container):  # nothing left open
                try:
                    widget.close()
                except Exception:  # pragma: no cover - already closed
                    pass

    return NotebookBar


_NOTEBOOK_BAR = None


def progress_bar(iterable: Iterable | None = None, *, desc: str = "", total: float | None = None,
                 disable: bool = False, **kwargs) -> _std_tqdm:
    """A tqdm progress bar: ``for x in progress_bar(items, desc="sweep")`` or ``with progress_bar(total=n) as bar``.

    In a notebook, a widget that becomes one line of text when it closes (see the module
    docstring); elsewhere plain ``tqdm(..., leave=False)``. Other keyword arguments go to tqdm.
    Close it (a ``with`` block, the end of the loop, or ``bar.close()``) to leave the summary.
    """
    global _NOTEBOOK_BAR
    kwargs.setdefault("leave", False)
    if not disable and in_notebook():
        if _NOTEBOOK_BAR is None:
            _NOTEBOOK_BAR = _notebook_class()
        return _NOTEBOOK_BAR(iterable, desc=desc, total=total, disable=disable, **kwargs)
    return _std_tqdm(iterable, desc=desc, total=total, disable=disable, **kwargs)
