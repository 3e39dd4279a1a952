"""Chapter 06's explorer: a perturbation kind and a strength, with every model's F1 vs strength for that
kind (from the cached sweep of :func:`course_lib.studies.stress.perturbation_sweep`) and three spam
messages as they are perturbed, with each model's P(spam). Nothing runs a model: a move looks up the sweep."""

from __future__ import annotations

import html
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np

from .base import Explorer, live_explorer, slider, toggle


def stress_explorer(sweep: dict, models: Sequence[str] | None = None, kind: str | None = None,
                    strength: float = 0.5) -> Explorer:
    """A toggle for the perturbation kind and a strength slider over the swept strengths.

    ``sweep``: the dict of :func:`~course_lib.studies.stress.perturbation_sweep` (``table`` and
    ``examples``); ``models``: the models to show (default: every model of the sweep). The plot shows
    F1 (spam) vs strength for the chosen kind, the slider's strength marked; the readout lists the
    three example messages perturbed at that strength with each model's P(spam)."""
    table, examples = sweep["table"], sweep["examples"]
    models = list(models or dict.fromkeys(table["model"]))
    missing = sorted(set(models) - set(table["model"]))
    if missing:
        raise ValueError(f"models {missing} are not in the sweep; it has {sorted(set(table['model']))}.")
    kinds = list(dict.fromkeys(table["kind"]))
    strengths = np.array(sorted(set(table["strength"])), dtype=float)
    step = float(np.min(np.diff(strengths))) if len(strengths) > 1 else 1.0
    start = float(strengths[np.argmin(np.abs(strengths - strength))])
    curves = {(k, m): part.sort_values("strength") for (k, m), part in table.groupby(["kind", "model"])}

    def readout(v: dict) -> str:
        s = float(strengths[np.argmin(np.abs(strengths - v["strength"]))])
        rows = examples[(examples["kind"] == v["kind"]) & np.isclose(examples["strength"], s)].sort_values("example")
        f1 = {m: float(curves[(v["kind"], m)].set_index("strength")["f1"].loc[s]) for m in models}
        parts = [f"<b>{html.escape(v['kind'])} at strength {s:.2f}</b>: F1 "
                 + ", ".join(f"{html.escape(m)} {f:.3f}" for m, f in f1.items())]
        for _, row in rows.iterrows():
            p = ", ".join(f"{html.escape(m)} {row[f'P(spam) {m}']:.2f}" for m in models)
            parts.append(f"“{html.escape(row['text'])}” → P(spam): {p}")
        return "<br>".join(parts)

    def plot(v: dict):
        fig, ax = plt.subplots(figsize=(6.4, 3.6))
        for m in models:
            c = curves[(v["kind"], m)]
            ax.plot(c["strength"], c["f1"], marker="o", label=m)
        ax.axvline(float(v["strength"]), color="gray", ls="--", lw=1)
        ax.set_xlim(-0.03, 1.03)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("perturbation strength (0 = original messages)")
        ax.set_ylabel("F1 (spam)")
        ax.set_title(f"F1 under {v['kind']} (only the spam is perturbed)", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower left")
        fig.tight_layout()
        return fig

    controls = {"kind": toggle("kind", kinds, kind or kinds[0]),
                "strength": slider("strength", start, 0.0, float(strengths.max()), step)}
    text = (f"Stress explorer: {len(kinds)} perturbations ({', '.join(kinds)}) × strengths "
            f"{', '.join(f'{s:g}' for s in strengths)} for {len(models)} models (a widget front end shows the controls).")
    return live_explorer(controls, readout, plot, text)
