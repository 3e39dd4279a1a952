"""Interactive explorers built with ipywidgets.

Every explorer precomputes what it shows, so a slider move only redraws (well under 1 s).
Widgets carry CSS classes (``course-slider``, ``course-readout``, ``course-plot``) so a
browser test can find and drive them. Without a widget front end (nbval, static HTML)
they show a readable text fallback.
"""

from __future__ import annotations

from typing import Sequence

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import display

from . import evaluate, plots


class Explorer(W.VBox):
    """A VBox whose plain-text form is a short description (stable for nbval)."""

    def __init__(self, children, text: str):
        super().__init__(children)
        self._text = text

    def _repr_pretty_(self, p, cycle):  # used when no widget front end renders it
        p.text(self._text)

    def __repr__(self) -> str:
        return self._text


def threshold_explorer(y_true: Sequence[int], spam_prob: Sequence[float], initial: float = 0.5) -> Explorer:
    """A decision-threshold slider with a live precision / recall / F1 plot and confusion counts.

    ``spam_prob``: P(spam) per message (shape (n,)); ``y_true``: 0/1 labels (shape (n,)).
    """
    y_true = np.asarray(y_true, dtype=int)
    spam_prob = np.asarray(spam_prob, dtype=float)
    grid = np.round(np.arange(0.01, 1.0, 0.01), 2)
    table = evaluate.threshold_table(y_true, spam_prob, grid)
    slider = W.FloatSlider(value=initial, min=0.01, max=0.99, step=0.01, description="threshold",
                           continuous_update=True, readout_format=".2f")
    slider.add_class("course-slider")
    readout = W.HTML()
    readout.add_class("course-readout")
    out = W.Output()
    out.add_class("course-plot")

    def redraw(change=None) -> None:
        t = round(float(slider.value), 2)
        row = table.iloc[int(np.argmin(np.abs(table["threshold"].to_numpy() - t)))]
        readout.value = (
            f"<b>threshold {t:.2f}</b>: precision {row.precision:.3f} · recall {row.recall:.3f} · "
            f"F1 {row.f1:.3f} · false alarms (ham flagged) {int(row.false_alarms)} · missed spam {int(row.missed_spam)}"
        )
        with out:
            out.clear_output(wait=True)
            fig, ax = plt.subplots(figsize=(6.5, 3.2))
            plots.threshold_curves(table, threshold=t, ax=ax)
            plt.show()
            plt.close(fig)

    slider.observe(redraw, names="value")
    redraw()
    return Explorer([slider, readout, out],
                    f"Threshold explorer over {len(y_true)} messages (move the slider in JupyterLab).")


def show(widget) -> None:
    """Display a widget (kept for symmetry with the chapters' ``show_*`` helpers)."""
    display(widget)
