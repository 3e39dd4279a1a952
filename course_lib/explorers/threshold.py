"""Chapter 01's explorer: a decision-threshold slider with live precision / recall / F1 curves and counts."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np

from .. import evaluate, plots
from .base import Explorer, live_explorer, slider


def threshold_explorer(y_true: Sequence[int], spam_prob: Sequence[float], initial: float = 0.5) -> Explorer:
    """A decision-threshold slider with a live precision / recall / F1 plot and confusion counts.

    ``spam_prob``: P(spam) per message (shape (n,)); ``y_true``: 0/1 labels (shape (n,)).
    """
    y_true = np.asarray(y_true, dtype=int)
    spam_prob = np.asarray(spam_prob, dtype=float)
    grid = np.round(np.arange(0.01, 1.0, 0.01), 2)
    table = evaluate.threshold_table(y_true, spam_prob, grid)

    def row_at(t: float):
        return table.iloc[int(np.argmin(np.abs(table["threshold"].to_numpy() - t)))]

    def readout(v: dict) -> str:
        t = round(float(v["threshold"]), 2)
        row = row_at(t)
        return (f"<b>threshold {t:.2f}</b>: precision {row.precision:.3f} · recall {row.recall:.3f} · "
                f"F1 {row.f1:.3f} · false alarms (ham flagged) {int(row.false_alarms)} · "
                f"missed spam {int(row.missed_spam)}")

    def plot(v: dict):
        fig, ax = plt.subplots(figsize=(6.5, 3.2))
        plots.threshold_curves(table, threshold=round(float(v["threshold"]), 2), ax=ax)
        return fig

    controls = {"threshold": slider("threshold", initial, 0.01, 0.99, 0.01)}
    return live_explorer(controls, readout, plot,
                         f"Threshold explorer over {len(y_true)} messages (move the slider in JupyterLab).")
