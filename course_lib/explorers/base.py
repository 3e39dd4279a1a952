"""The base every explorer shares: controls -> values -> readout text + a redrawn plot.

An explorer is built from

- controls made with :func:`slider` / :func:`toggle` (keyboard-focusable, CSS classes
  ``course-slider`` / ``course-toggle``, ``continuous_update=False``: a drag redraws once, when
  released; each arrow-key step redraws);
- ``readout(values) -> str``: the HTML of the text under the controls (class ``course-readout``);
- ``plot(values) -> Figure``: a new matplotlib figure (drawn in an ``Output`` with class
  ``course-plot``, then closed);

where ``values`` is ``{name: control.value}``. :func:`live_explorer` wires them: every change of
a control redraws both. Whatever a redraw needs is computed before (a cached sweep, a table), so
a move only looks numbers up and draws (well under 1 s). The browser suite (tests/browser) finds
the controls, readout and plot by these classes. Without a widget front end (nbval, static
HTML) an explorer shows a one-line text description instead.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import ipywidgets as W
import matplotlib.pyplot as plt


class Explorer(W.VBox):
    """A VBox whose plain-text form is a short description (stable for nbval)."""

    def __init__(self, children, text: str):
        super().__init__(children)
        self._text = text

    def _repr_pretty_(self, p, cycle):  # used when no widget front end renders it
        p.text(self._text)

    def __repr__(self) -> str:
        return self._text


def slider(description: str, value: float, min: float, max: float, step: float, *,
           log_base: float | None = None, integer: bool = False, readout_format: str = ".2f") -> W.Widget:
    """A slider for explorers. ``log_base``: a log slider (``min``/``max`` are exponents of the base);
    ``integer``: an IntSlider. ``continuous_update=False``: a drag updates once, on release."""
    common = dict(value=value, min=min, max=max, step=step, description=description, continuous_update=False)
    if integer:
        widget = W.IntSlider(**common)
    elif log_base is not None:
        widget = W.FloatLogSlider(base=log_base, readout_format=readout_format, **common)
    else:
        widget = W.FloatSlider(readout_format=readout_format, **common)
    widget.add_class("course-slider")
    return widget


def toggle(description: str, options, value) -> W.ToggleButtons:
    """Toggle buttons for explorers (``options`` as ``ToggleButtons`` takes them: values or (label, value))."""
    widget = W.ToggleButtons(options=options, value=value, description=description)
    widget.add_class("course-toggle")
    return widget


def live_explorer(controls: Mapping[str, W.Widget], readout: Callable[[dict], str],
                  plot: Callable[[dict], "plt.Figure"], text: str,
                  rows: Sequence[W.Widget] | None = None) -> Explorer:
    """An :class:`Explorer`: ``rows`` (default: the controls, one per line), the readout, the plot.

    ``controls``: ``{name: widget}``; on every change, ``values = {name: widget.value}`` goes to
    ``readout`` (HTML text) and ``plot`` (returns a new figure). ``text``: the plain-text form.
    """
    readout_widget = W.HTML()
    readout_widget.add_class("course-readout")
    out = W.Output()
    out.add_class("course-plot")

    def redraw(change=None) -> None:
        values = {name: widget.value for name, widget in controls.items()}
        readout_widget.value = readout(values)
        with out:
            out.clear_output(wait=True)
            fig = plot(values)
            plt.show()
            plt.close(fig)

    for widget in controls.values():
        widget.observe(redraw, names="value")
    redraw()
    return Explorer([*(rows if rows is not None else controls.values()), readout_widget, out], text)

