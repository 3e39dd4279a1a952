"""Chapter 02's explorer: sliders for the distillation temperature T and the label weight α, with
the teacher's soft targets for a few messages and the measured student quality vs T."""

from __future__ import annotations

from typing import Sequence

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..distill import soft_targets
from .base import Explorer, live_explorer, slider

T_BASE, T_MIN_EXP, T_MAX_EXP = 2, -1, 5  # the T slider spans 2**-1 .. 2**5


def temperature_explorer(texts: Sequence[str], logits: np.ndarray, sweep: pd.DataFrame | None = None,
                         labels: Sequence[int] | None = None, initial_temperature: float = 4.0,
                         initial_alpha: float = 0.5, metric: str = "sms_f1") -> Explorer:
    """Sliders for T and α with a live plot of the teacher's soft targets for ``texts`` and,
    if ``sweep`` (from :func:`course_lib.studies.distillation.temperature_sweep`) is given, the
    measured student quality vs T.

    ``logits``: the teacher's logits for ``texts``, shape (n, 2). ``labels`` (optional): the true
    labels, used for the α-blended target ``α·one-hot + (1−α)·soft``. Everything is
    precomputed; a slider move only redraws.
    """
    texts = list(texts)
    logits = np.asarray(logits, dtype=np.float32)
    if logits.shape != (len(texts), 2):
        raise ValueError(f"logits must have shape ({len(texts)}, 2), got {logits.shape}.")
    hard = np.asarray(labels if labels is not None else logits.argmax(axis=1), dtype=int)
    short = [t if len(t) <= 48 else t[:45] + "..." for t in texts]
    curve = None
    if sweep is not None and len(sweep):
        g = sweep.groupby("temperature")[metric]
        curve = pd.DataFrame({"mean": g.mean(), "std": g.std(ddof=1).fillna(0.0)}).sort_index()

    def readout(v: dict) -> str:
        temp, alpha = float(v["T"]), float(v["alpha"])
        soft = soft_targets(logits, temp)
        entropy = -(soft * np.log2(np.clip(soft, 1e-12, 1))).sum(axis=1)
        parts = [f"<b>T = {temp:.2f}, α = {alpha:.2f}</b>"]
        for name, p, h in zip(short, soft[:, 1], entropy):
            parts.append(f"“{name}”: P(spam) {p:.3f}, entropy {h:.2f} bits")
        return "<br>".join(parts)

    def plot(v: dict):
        temp, alpha = float(v["T"]), float(v["alpha"])
        soft = soft_targets(logits, temp)
        blend = alpha * np.eye(2)[hard] + (1 - alpha) * soft
        ncols = 2 if curve is not None else 1
        fig, axes = plt.subplots(1, ncols, figsize=(5.2 * ncols, 0.55 * len(texts) + 1.8), squeeze=False)
        ax = axes[0][0]
        y = np.arange(len(texts))
        ax.barh(y, soft[:, 1], height=0.38, color="tab:red", label="teacher soft target P(spam)")
        ax.barh(y + 0.38, blend[:, 1], height=0.38, color="tab:gray", alpha=0.7,
                label="≈ student target: α·label + (1−α)·soft")
        ax.set_yticks(y + 0.19, short, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.axvline(0.5, color="black", lw=0.6, ls=":")
        ax.set_xlabel("P(spam)")
        ax.set_title(f"what the student is taught at T = {temp:.2f}", fontsize=10)
        ax.legend(fontsize=7, loc="lower right")
        if curve is not None:
            ax2 = axes[0][1]
            ax2.errorbar(curve.index, curve["mean"], yerr=curve["std"], marker="o", capsize=3)
            ax2.set_xscale("log", base=2)
            # The x-axis spans the whole slider range, so the T marker is always on the plot
            # and the axis does not jump when T moves past the swept values.
            ax2.set_xlim(T_BASE ** T_MIN_EXP / 1.25, T_BASE ** T_MAX_EXP * 1.25)
            ax2.axvline(temp, color="gray", ls="--")
            ax2.set_xlabel("distillation temperature T (trained)")
            ax2.set_ylabel(metric.replace("_", " "))
            ax2.set_title("student quality vs T (measured)", fontsize=10)
            ax2.grid(alpha=0.3)
        fig.tight_layout()
        return fig

    controls = {"T": slider("T", initial_temperature, T_MIN_EXP, T_MAX_EXP, 0.25, log_base=T_BASE),
                "alpha": slider("α", initial_alpha, 0.0, 1.0, 0.05)}
    n_sweep = 0 if curve is None else len(curve)
    text = (f"Temperature explorer: soft targets of {len(texts)} messages"
            + (f", student quality at {n_sweep} temperatures" if n_sweep else "")
            + " (move the sliders in JupyterLab).")
    return live_explorer(controls, readout, plot, text, rows=[W.HBox(list(controls.values()))])
