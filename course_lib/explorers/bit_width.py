"""Chapter 03's explorer: a bits slider and scheme / granularity toggles over a real weight matrix
(its histogram with the quantization levels) and the measured accuracy drop vs bits."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from ..config import one_thread
from ..quantize import GRANULARITIES, MAX_BITS, MIN_BITS, SCHEMES, quantization_error, quantize_tensor
from ..evaluate import format_points
from .base import Explorer, live_explorer, slider, toggle


def bit_width_explorer(weight, sweep: pd.DataFrame | None = None, weight_name: str = "weight",
                       initial_bits: int = 4, initial_scheme: str = "symmetric",
                       initial_granularity: str = "per_tensor", channel: int | None = None,
                       sweep_label: str = "validation messages") -> Explorer:
    """A bits slider (2–8) and symmetric/asymmetric and per-tensor/per-channel toggles that redraw, live:

    - left: the histogram of a real weight matrix ``weight`` (2-D) with the quantization levels over it
      (per-channel: the levels of one channel, ``channel``, default the row with the median range, over
      that row's weights, with the per-tensor levels faint for contrast);
    - right: the measured spam-F1 and accuracy drop (points below fp32) vs bits from ``sweep`` (a
      :func:`bit_width_sweep` frame, several models concatenated if you like).

    Everything is precomputed or cheap (quantizing one matrix), so a move redraws in well under 1 s.
    """
    weight = torch.as_tensor(weight).detach().float()
    if weight.dim() != 2:
        raise ValueError(f"weight must be a 2-D matrix (a Linear weight), got shape {tuple(weight.shape)}.")
    row_range = weight.abs().amax(dim=1)
    if channel is None:
        channel = int(torch.argsort(row_range)[len(row_range) // 2])
    flat = weight.flatten().numpy()
    row = weight[channel].numpy()
    amax = float(np.abs(flat).max())
    # the view: the bulk of the weights (a few outliers can be 50x larger than the rest; they are counted
    # in a note, since they are what sets the per-tensor scale)
    view = min(amax, 1.5 * float(np.quantile(np.abs(flat), 0.999))) * 1.05 or 1.0
    bins = np.linspace(-view, view, 121)
    hist_all, _ = np.histogram(flat, bins=bins)
    outside = int((np.abs(flat) > view).sum())
    row_lim = float(max(np.abs(row).max(), 1e-12)) * 1.15
    row_bins = np.linspace(-row_lim, row_lim, 61)
    hist_row, _ = np.histogram(row, bins=row_bins)

    # everything a move needs, computed once: levels and error for each (bits, scheme, granularity)
    precomputed: dict = {}
    with one_thread():
        for b, sch, gr in [(b, sch, gr) for b in range(MIN_BITS, MAX_BITS + 1) for sch in SCHEMES
                           for gr in GRANULARITIES]:
            qt = quantize_tensor(weight, b, sch, gr, axis=0)
            precomputed[(b, sch, gr)] = (qt.levels(channel if gr == "per_channel" else None),
                                         quantization_error(weight, b, sch, gr))

    def stats(bits, scheme, gran):
        return precomputed[(bits, scheme, gran)]

    sweep = sweep.copy() if sweep is not None else None
    models_in = list(dict.fromkeys(sweep["model"])) if sweep is not None else []

    colors = plt.cm.tab10.colors

    def readout(v: dict) -> str:
        b, s, g = int(v["bits"]), v["scheme"], v["granularity"]
        levels, err = stats(b, s, g)
        lines = [f"<b>{b} bits, {s}, {g.replace('_', '-')}</b>: {len(levels)} levels, step "
                 f"{err['step']:.2e}; weight error (RMSE / RMS) {err['relative'] * 100:.1f}% "
                 f"(max {err['max_abs']:.2e})"]
        if sweep is not None:
            for m in models_in:
                hit = sweep[(sweep["model"] == m) & (sweep["bits"] == b) & (sweep["scheme"] == s)
                            & (sweep["granularity"] == g)]
                if len(hit):
                    r = hit.iloc[0]
                    lines.append(f"{m}: spam-F1 {r.f1:.3f} ({format_points(-r.f1_drop)} pts) · accuracy {r.accuracy:.3f} "
                                 f"({format_points(-r.accuracy_drop)} pts) · agreement with fp32 {r.agreement:.1%} · "
                                 f"packed {r.packed_mb:.1f} MB")
        return "<br>".join(lines)

    def plot(v: dict):
        b, s, g = int(v["bits"]), v["scheme"], v["granularity"]
        levels, _ = stats(b, s, g)
        ncols = 2 if sweep is not None else 1
        fig, axes = plt.subplots(1, ncols, figsize=(6.2 * ncols, 3.6), squeeze=False)
        fig.subplots_adjust(left=0.07, right=0.98, bottom=0.15, top=0.9, wspace=0.22)
        ax = axes[0][0]
        if g == "per_channel":
            half = row_lim
            ax.stairs(hist_row, row_bins, fill=True, color="tab:blue", alpha=0.6,
                      label=f"row {channel} ({len(row)} weights)")
            tensor_levels, _ = stats(b, s, "per_tensor")
            shown_t = tensor_levels[np.abs(tensor_levels) <= half]
            ax.vlines(shown_t, 0, 1, transform=ax.get_xaxis_transform(), colors="black", linewidth=1.2,
                      alpha=0.5, linestyles="dotted", label=f"per-tensor levels ({len(shown_t)} in view)")
            ax.set_title(f"{weight_name}, row {channel}: its own {len(levels)} levels", fontsize=9)
        else:
            half = view
            ax.stairs(hist_all, bins, fill=True, color="tab:blue", alpha=0.6,
                      label=f"{flat.size - outside:,} of {flat.size:,} weights")
            ax.set_title(f"{weight_name}: {len(levels)} levels for the whole matrix", fontsize=9)
            if outside:
                ax.text(0.02, 0.96, f"{outside:,} weights lie outside this view,\nup to ±{amax:.2f}: they set "
                        f"the step", transform=ax.transAxes, fontsize=7, va="top")
        shown = levels[np.abs(levels) <= half]
        ax.vlines(shown, 0, 1, transform=ax.get_xaxis_transform(), colors="tab:red",
                  linewidth=0.9 if len(shown) <= 40 else 0.4, alpha=0.8,
                  label=f"quantization levels ({len(shown)} in view)")
        ax.set_xlim(-half, half)
        ax.set_xlabel("weight value")
        ax.set_ylabel("count")
        ax.legend(fontsize=7, loc="upper right")
        if sweep is not None:
            ax2 = axes[0][1]
            for i, m in enumerate(models_in):
                part = sweep[(sweep["model"] == m) & (sweep["scheme"] == s)]
                for gg, style, alpha in ((g, "-", 1.0), ("per_tensor" if g == "per_channel" else "per_channel",
                                                           ":", 0.45)):
                    cur = part[part["granularity"] == gg].sort_values("bits")
                    if cur.empty:
                        continue
                    tag = f"{m}, {gg.replace('_', '-')}" if len(models_in) > 1 else gg.replace("_", "-")
                    ax2.plot(cur["bits"], cur["f1_drop"], style, marker="o", color=colors[(2 * i) % 10],
                             alpha=alpha, label=f"F1 drop, {tag}")
                    if gg == g:
                        ax2.plot(cur["bits"], cur["accuracy_drop"], "--", marker="s", markersize=3,
                                 color=colors[(2 * i + 1) % 10], alpha=0.8, label=f"accuracy drop, {tag}")
            ax2.axvline(b, color="black", linewidth=0.8)
            ax2.axhspan(-100, 2.0, color="tab:green", alpha=0.08)
            ax2.axhline(2.0, color="tab:green", linewidth=0.6, linestyle="--")
            ax2.set_yscale("symlog", linthresh=2.0)
            ax2.set_ylim(-1.0, 100.0)
            ax2.set_xticks(range(MIN_BITS, MAX_BITS + 1))
            ax2.set_xlabel("bits per weight")
            ax2.set_ylabel("drop vs fp32 (points)")
            ax2.set_title(f"measured on {sweep_label} ({s}); green: drop ≤ 2 points", fontsize=9)
            if ax2.get_legend_handles_labels()[0]:
                ax2.legend(fontsize=6.5, loc="upper right")
            else:
                ax2.text(0.5, 0.5, f"no {s} rows in the sweep", ha="center", transform=ax2.transAxes)
            ax2.grid(alpha=0.3)
        return fig

    controls = {"bits": slider("bits", int(initial_bits), MIN_BITS, MAX_BITS, 1, integer=True),
                "scheme": toggle("scheme", list(SCHEMES), initial_scheme),
                "granularity": toggle("granularity", [("per-tensor", "per_tensor"), ("per-channel", "per_channel")],
                                      initial_granularity)}
    text = (f"Bit-width explorer: {weight_name} {tuple(weight.shape)}"
            + (f", sweep of {', '.join(models_in)}" if models_in else "")
            + " (move the slider and toggles in JupyterLab).")
    return live_explorer(controls, readout, plot, text)
