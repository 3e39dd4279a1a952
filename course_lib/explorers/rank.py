"""Chapter 05's rank explorer: a rank slider over the cached sweep (:func:`course_lib.studies.lowrank.rank_sweep`),
a choice of layers, method and one-shot / fine-tuned, and live plots of the F1 drop (and F1), the parameters with
the break-even rank, and the weight and output errors. Every point shown was measured; a move only looks up rows."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .. import lowrank
from .base import Explorer, live_explorer, slider, toggle

METHOD_LABELS = {"svd": "plain SVD", "whitened": "whitened"}
STAGES = (("one-shot", False), ("after fine-tuning", True))


def _curve(sweep: pd.DataFrame, group: str, method: str, finetuned: bool) -> pd.DataFrame:
    rows = sweep[(sweep["group"] == group) & (sweep["method"] == method) & (sweep["finetuned"] == finetuned)]
    return rows.sort_values("rank")


def _params_line(shapes, ranks) -> np.ndarray:
    """M parameters of the chosen layers at each rank, each layer kept whole where the rank passes its break-even."""
    return np.array([sum(min(lowrank.param_count(m, n, r), lowrank.param_count(m, n)) for m, n in shapes)
                     for r in ranks]) / 1e6


def rank_explorer(sweep: pd.DataFrame, initial_rank: int = 64) -> Explorer:
    """The widget over ``sweep`` (the frame :func:`~course_lib.studies.lowrank.rank_sweep` returns).

    Controls: ``rank`` (snaps to the nearest measured rank), ``layers`` (the sweep's groups), ``method``
    (highlighted; the other is drawn dotted), ``stage`` (one-shot or after fine-tuning; fine-tuned points exist
    only for the fine-tuned group, and the readout says so elsewhere)."""
    info = sweep.attrs
    teacher_f1, max_drop = float(info["teacher_f1"]), float(info.get("max_drop", 1.0))
    groups = [g for g in sweep["group"].unique() if g != "none"]
    ranks = sorted(int(r) for r in sweep["rank"].dropna().unique())
    if not ranks or not groups:
        raise ValueError("The sweep has no factorized rows; run studies.lowrank.rank_sweep first.")
    step = int(np.gcd.reduce(ranks)) if len(ranks) > 1 else 1
    initial = min(ranks, key=lambda r: abs(r - initial_rank))
    controls = {
        "rank": slider("rank", initial, ranks[0], ranks[-1], step, integer=True),
        "group": toggle("layers", groups, info.get("finetune_group", groups[-1]) if info.get("finetune_group") in groups else groups[0]),
        "method": toggle("method", [(METHOD_LABELS.get(m, m), m) for m in lowrank.METHODS], "whitened"),
        "stage": toggle("stage", list(STAGES), False),
    }

    def pick(values):
        stage = values["stage"] and bool((_curve(sweep, values["group"], values["method"], True)).shape[0])
        curve = _curve(sweep, values["group"], values["method"], stage)
        if curve.empty:
            return stage, curve, None
        row = curve.iloc[int(np.argmin(np.abs(curve["rank"].to_numpy() - values["rank"])))]
        return stage, curve, row

    def readout(values) -> str:
        stage, curve, row = pick(values)
        name = METHOD_LABELS.get(values["method"], values["method"])
        note = ""
        if values["stage"] and not stage:
            note = (f" <i>(fine-tuned only for the {info.get('finetune_group')} layers: showing one-shot)</i>")
        if row is None:
            return f"<b>rank {values['rank']}</b>: no measured point for {values['group']} · {name}{note}"
        other = _curve(sweep, values["group"], "svd" if values["method"] == "whitened" else "whitened", stage)
        other_row = other[other["rank"] == row["rank"]]
        other_text = (f" · {METHOD_LABELS.get(other_row.iloc[0]['method'])} at the same rank: F1 {other_row.iloc[0]['f1']:.3f}"
                      if len(other_row) else "")
        snapped = "" if int(row["rank"]) == values["rank"] else f" (nearest measured rank to {values['rank']})"
        verdict = "within" if row["f1_drop"] <= max_drop + 1e-9 else "outside"
        return (f"<b>rank {int(row['rank'])}</b>{snapped} · {values['group']} layers · {name}, "
                f"{'after fine-tuning' if stage else 'one-shot'}: F1 {row['f1']:.3f} ({0.0 - row['f1_drop'] + 0.0:+.1f} points vs the "
                f"teacher's {teacher_f1:.3f}, {verdict} {max_drop:g} point) · encoder Linear parameters "
                f"{row['linear_params_m']:.2f} M of {info['linear_params_m']:.2f} M (cut {row['param_cut']:.0%}) · "
                f"energy kept {row['energy_kept']:.2f} · output error {row['output_error']:.3f} · weight error "
                f"{row['weight_error']:.3f}{other_text}{note}")

    def plot(values):
        stage, curve, row = pick(values)
        fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
        for method in lowrank.METHODS:
            style = "-" if method == values["method"] else ":"
            for ft, marker in ((False, "o"), (True, "s")):
                c = _curve(sweep, values["group"], method, ft)
                if c.empty or (ft and not stage):
                    continue
                label = f"{METHOD_LABELS[method]}{' + fine-tune' if ft else ''}"
                axes[0].plot(c["rank"], c["f1_drop"], style, marker=marker, label=label)
                if not ft:
                    axes[2].plot(c["rank"], c["output_error"], style, marker="o", label=f"output, {METHOD_LABELS[method]}")
                    axes[2].plot(c["rank"], c["weight_error"], style, marker="x", label=f"weight, {METHOD_LABELS[method]}")
        axes[0].axhspan(-100, max_drop, color="tab:green", alpha=0.12, label=f"≤ {max_drop:g} point")
        top = max(5.0, float(sweep["f1_drop"].max()) + 2)
        axes[0].set_ylim(min(-1.0, float(sweep["f1_drop"].min()) - 1), top)
        axes[0].set(xlabel="rank", ylabel="F1 drop (points below the teacher)", title="quality")
        axes[0].secondary_yaxis("right", functions=(lambda d: teacher_f1 - d / 100, lambda f: (teacher_f1 - f) * 100)
                                ).set_ylabel("F1")
        shapes = info["shapes"][values["group"]]
        grid = np.arange(1, max(max(m, n) for m, n in shapes) + 1)
        axes[1].plot(grid, _params_line(shapes, grid), color="tab:blue", label="pairs (layers past break-even kept)")
        axes[1].axhline(_params_line(shapes, [10 ** 9])[0], color="grey", ls="--", label="unfactorized")
        for be in sorted({lowrank.break_even_rank(m, n) for m, n in shapes}):
            axes[1].axvline(be, color="tab:red", ls=":", lw=1)
            axes[1].annotate(f"break-even {be}", (be, 0), rotation=90, va="bottom", ha="right", fontsize=7, color="tab:red")
        axes[1].set(xlabel="rank", ylabel=f"parameters of the {values['group']} layers (M)", title="parameters",
                    xlim=(0, max(lowrank.break_even_rank(m, n) for m, n in shapes) * 1.4))
        axes[2].set(xlabel="rank", ylabel="relative error", title="reconstruction error (one-shot)", ylim=(0, 1.05))
        # legends in fixed corners where the curves are not ("best" searches every point of every line, each redraw):
        # F1 drop and errors fall with the rank, parameters grow with it
        for ax, corner in zip(axes, ("upper right", "upper left", "upper right")):
            ax.axvline(values["rank"], color="black", lw=1, alpha=0.6)  # the slider; the readout names the nearest measured rank
            if row is not None and int(row["rank"]) != values["rank"]:
                ax.axvline(row["rank"], color="black", lw=1, alpha=0.3, ls="--")
            ax.legend(fontsize=7, loc=corner)
        fig.subplots_adjust(left=0.06, right=0.97, bottom=0.15, top=0.9, wspace=0.45)  # no tight_layout pass
        return fig

    text = (f"Rank explorer over {len(sweep) - 1} measured settings ({', '.join(groups)}; ranks {ranks}); move the "
            "slider in JupyterLab.")
    return live_explorer(controls, readout, plot, text)
