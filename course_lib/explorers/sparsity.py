"""Chapter 04's explorer: a sparsity slider and a method toggle over the cached sparsity sweep.

Left: validation spam-F1 and its drop vs sparsity for the chosen method (one-shot and fine-tuned),
the chosen point marked. Right: the weights of one real matrix with what the choice removes shaded
(magnitude: the band |w| < threshold; activation: the rows of the neurons that go). The readout gives
the size and b1 latency that the choice really has (measured in the sweep), so nothing is recomputed
on a move.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from ..evaluate import format_points
from ..studies.pruning import METHODS
from .base import Explorer, live_explorer, slider, toggle

_TUNING = [("one-shot", False), ("fine-tuned", True)]
_LABEL = {tuned: label for label, tuned in _TUNING}


def sparsity_explorer(sweep: pd.DataFrame, weight, all_weights=None, neuron_scores=None,
                      weight_name: str = "layer 0 ffn_in", initial_sparsity: float = 50.0,
                      initial_method: str = "magnitude_global", initial_tuned: bool = False) -> Explorer:
    """Slider 0–95 % (share of encoder Linear weights removed) and method / fine-tuning toggles.

    ``sweep``: a :func:`course_lib.studies.pruning.sparsity_sweep` frame. ``weight``: one (out, in)
    Linear weight of the unpruned model (its histogram is drawn); ``all_weights``: the flattened |w| of
    every encoder Linear (for the global threshold; default: ``weight`` alone); ``neuron_scores``: the
    (out,) mean |activation| of that layer's FFN neurons (for the activation method). The chosen
    point is the sweep row of that method nearest to the slider.
    """
    missing = set(METHODS) - set(sweep["method"])
    if missing:
        raise ValueError(f"the sweep has no rows for {sorted(missing)}; pass sparsity_sweep(...)'s frame.")
    weight = torch.as_tensor(weight).detach().float()
    if weight.dim() != 2:
        raise ValueError(f"weight must be a 2-D Linear weight, got shape {tuple(weight.shape)}.")
    w = weight.numpy()
    abs_all = np.sort(np.abs(np.asarray(all_weights if all_weights is not None else w, dtype=np.float32)).ravel())
    abs_w = np.sort(np.abs(w).ravel())
    lim = float(np.quantile(abs_w, 0.999)) * 1.1 or 1.0
    bins = np.linspace(-lim, lim, 101)
    counts_all = np.histogram(w.ravel(), bins=bins)[0]  # counted once: a redraw only counts the removed ones
    teacher = sweep[sweep["level"] == 0].iloc[0]

    def row(v: dict) -> pd.Series:
        part = sweep[(sweep["method"] == v["method"]) & (sweep["tuned"] == v["tuned"])]
        return part.iloc[int(np.argmin(np.abs(part["sparsity"].to_numpy() - v["sparsity"] / 100.0)))]

    def removed(v: dict, r: pd.Series):
        """(mask of removed weights of ``weight`` or None, a sentence)."""
        s = float(r["level"])
        if v["method"].startswith("magnitude") and s > 0:
            pool = abs_all if v["method"] == "magnitude_global" else abs_w
            t = float(pool[min(int(round(s * len(pool))), len(pool) - 1)])
            return np.abs(w) < t, f"|w| < {t:.3g} removed ({'one threshold for all layers' if pool is abs_all else 'this layer'})"
        if v["method"] == "activation" and s > 0 and neuron_scores is not None:
            gone = np.argsort(np.asarray(neuron_scores), kind="stable")[:int(round(s * len(neuron_scores)))]
            mask = np.zeros_like(w, dtype=bool)
            mask[gone] = True
            return mask, f"{len(gone)} whole neurons (rows) with the lowest mean |activation| removed: small and large weights alike"
        if v["method"] == "redundancy" and s > 0:
            return None, "neurons merged into a correlated twin: chosen by their activations, not by |w|"
        return None, "nothing removed"

    def readout(v: dict) -> str:
        r = row(v)
        tag = "fine-tuned" if v["tuned"] else "one-shot"
        _, what = removed(v, r)
        speed = teacher["b1_ms"] / r["b1_ms"] if r["b1_ms"] > 0 else float("nan")
        lines = [f"<b>{METHODS[v['method']]}, {tag}</b>: nearest measured point {r['sparsity']:.0%} of the encoder's "
                 f"Linear weights gone (slider at {v['sparsity']:.0f} %, method level {r['level']:.0%}) · {what}",
                 f"spam-F1 {r['f1']:.3f} ({format_points(-r['f1_drop'])} points vs the teacher's {teacher['f1']:.3f})",
                 f"parameters {r['params_m']:.2f} M (teacher {teacher['params_m']:.2f} M) · dense file "
                 f"{r['dense_mb']:.1f} MB · stored sparse: CSR fp32 {r['csr_mb']:.1f} MB, bitmask int8 "
                 f"{r['bitmask_int8_mb']:.1f} MB",
                 f"b1 latency {r['b1_ms']:.1f} ms vs the teacher's {teacher['b1_ms']:.1f} ms ({speed:.2f}× speed; "
                 "a few runs on a possibly shared CPU: a rough figure)"]
        return "<br>".join(lines)

    def plot(v: dict):
        r = row(v)
        fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 3.6))
        fig.subplots_adjust(left=0.06, right=0.98, bottom=0.15, top=0.9, wspace=0.25)
        for tuned, style in ((False, "--"), (True, "-")):
            part = sweep[(sweep["method"] == v["method"]) & (sweep["tuned"] == tuned)].sort_values("sparsity")
            ax.plot(100 * part["sparsity"], part["f1"], style, marker="o", label=f"F1, {_LABEL[tuned]}")
        twin = ax.twinx()
        for tuned, style in ((False, "--"), (True, "-")):
            part = sweep[(sweep["method"] == v["method"]) & (sweep["tuned"] == tuned)].sort_values("sparsity")
            twin.plot(100 * part["sparsity"], part["f1_drop"], style, color="tab:red", alpha=0.5, marker=".",
                      label=f"F1 drop (points), {_LABEL[tuned]}")
        twin.set_ylabel("F1 drop (points)", color="tab:red")
        ax.axvline(v["sparsity"], color="black", linewidth=0.8)
        ax.plot([100 * r["sparsity"]], [r["f1"]], "o", markersize=10, mfc="none", color="black")
        ax.set_xlim(-2, 97)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("encoder Linear weights removed (%)")
        ax.set_ylabel("validation spam-F1")
        ax.set_title(METHODS[v["method"]], fontsize=9)
        ax.legend(fontsize=7, loc="lower left")
        twin.legend(fontsize=7, loc="center left")
        ax.grid(alpha=0.3)
        mask, what = removed(v, r)
        # stairs: one filled outline per histogram (as fast to draw as a line; 100 bars are 100 patches)
        ax2.stairs(counts_all, bins, fill=True, color="tab:blue", alpha=0.6, label=f"{w.size:,} weights of {weight_name}")
        if mask is not None and mask.any():
            ax2.stairs(np.histogram(w[mask], bins=bins)[0], bins, fill=True, color="tab:red", alpha=0.7,
                       label=f"{int(mask.sum()):,} removed")
        ax2.set_xlim(-lim, lim)
        ax2.set_xlabel("weight value")
        ax2.set_ylabel("count")
        ax2.set_title(what, fontsize=8)
        ax2.legend(fontsize=7, loc="upper right")
        return fig

    controls = {"sparsity": slider("sparsity %", float(initial_sparsity), 0.0, 95.0, 5.0, readout_format=".0f"),
                "method": toggle("method", [(label.split(" (")[0], m) for m, label in METHODS.items()], initial_method),
                "tuned": toggle("training", _TUNING, bool(initial_tuned))}
    text = ("Sparsity explorer: " + ", ".join(METHODS.values()) + f"; {len(sweep)} measured points "
            "(move the slider and toggles in JupyterLab).")
    return live_explorer(controls, readout, plot, text)
