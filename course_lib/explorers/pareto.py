"""Chapter 07's explorers: the Pareto chart of every model (size × latency × F1) with a slider for the
F1 the learner accepts, and a text box that classifies what the learner types with the shipped file
(ONNX Runtime + tokenizers, no PyTorch in the loop)."""

from __future__ import annotations

import html

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .. import shipped
from ..studies.capstone import meeting, pareto_front
from .base import Explorer, live_explorer, slider


def _describe(frame: pd.DataFrame, name: str) -> str:
    r = frame.loc[name]
    return (f"<b>{html.escape(str(name))}</b> ({r['size_mb']:.2f} MB, {r['latency_ms']:.2f} ms, "
            f"F1 {r['f1']:.3f})")


def pareto_explorer(table: pd.DataFrame, initial: float | None = None) -> Explorer:
    """A slider for the lowest SMS F1 the learner accepts; the chart (size in MB vs b1 latency in ms, both
    log scales) greys out the models below it and rings the smallest and the fastest model that meet it.

    ``table``: one row per model (index: names) with ``size_mb``, ``latency_ms`` and ``f1`` (e.g.
    :func:`course_lib.studies.capstone.pareto_table`). ``initial``: the slider's start (default: the
    median F1)."""
    missing = [c for c in ("size_mb", "latency_ms", "f1") if c not in table.columns]
    if missing or table.empty:
        raise ValueError(f"pareto_explorer needs a non-empty table with size_mb, latency_ms and f1; missing {missing}.")
    frame = table.copy()
    frame["on_front"] = pareto_front(frame)
    low = float(np.floor(frame["f1"].min() * 100) / 100)
    high = float(np.ceil(frame["f1"].max() * 100) / 100)
    high = max(high, low + 0.01)
    start = float(np.clip(np.round(initial if initial is not None else frame["f1"].median(), 3), low, high))

    def readout(v: dict) -> str:
        floor = round(float(v["f1_floor"]), 3)
        found = meeting(frame, floor)
        if not found["count"]:
            return f"<b>F1 ≥ {floor:.3f}</b>: no model reaches it; lower the slider."
        text = (f"<b>F1 ≥ {floor:.3f}</b>: {found['count']} of {len(frame)} models qualify · smallest: "
                f"{_describe(frame, found['smallest'])} · fastest: {_describe(frame, found['fastest'])}")
        if found["smallest"] == found["fastest"]:
            text += " · one model is both"
        return text

    def plot(v: dict):
        floor = round(float(v["f1_floor"]), 3)
        found = meeting(frame, floor)
        ok = frame["f1"] >= floor
        fig, ax = plt.subplots(figsize=(7.5, 4.2))
        ax.scatter(frame.loc[~ok, "size_mb"], frame.loc[~ok, "latency_ms"], c="lightgrey", s=40, label=f"F1 < {floor:.3f}")
        points = ax.scatter(frame.loc[ok, "size_mb"], frame.loc[ok, "latency_ms"], c=frame.loc[ok, "f1"], cmap="viridis",
                            vmin=low, vmax=high, s=55, label=f"F1 ≥ {floor:.3f}")
        front = frame[frame["on_front"]]
        ax.scatter(front["size_mb"], front["latency_ms"], s=90, facecolors="none", edgecolors="black", linewidths=1,
                   label="on the Pareto front (size, latency, F1)")
        for name, r in frame.iterrows():
            ax.annotate(str(name), (r["size_mb"], r["latency_ms"]), fontsize=6, xytext=(3, 3), textcoords="offset points")
        for key, marker, color in (("smallest", "o", "tab:red"), ("fastest", "s", "tab:orange")):
            if found[key] is not None:
                r = frame.loc[found[key]]
                ax.scatter([r["size_mb"]], [r["latency_ms"]], s=260, facecolors="none", edgecolors=color, marker=marker,
                           linewidths=2, label=f"{key}: {found[key]}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("size on disk (MB, log)")
        ax.set_ylabel("b1 latency (ms, 1 thread, log)")
        ax.set_title(f"Every model of the workbook; F1 floor {floor:.3f}", fontsize=9)
        fig.colorbar(points, ax=ax, label="SMS F1", fraction=0.04, pad=0.02)
        ax.legend(fontsize=6, loc="lower right")
        fig.subplots_adjust(left=0.09, right=0.98, bottom=0.12, top=0.93)  # fixed: tight_layout costs a redraw
        return fig

    controls = {"f1_floor": slider("F1 floor", start, low, high, 0.005, readout_format=".3f")}
    return live_explorer(controls, readout, plot,
                         f"Pareto explorer over {len(frame)} models (move the F1 slider in JupyterLab).")


def spam_textbox(model, initial: str = "WINNER!! You have won a free prize. Call 09061701461 to claim") -> Explorer:
    """A text box (CSS class ``course-textbox``) and a live readout of P(spam) for what is typed, from
    ``model``: a :class:`course_lib.shipped.ShippedClassifier` or the path of a shipped file (the loop runs
    ONNX Runtime and tokenizers only)."""
    clf = model if isinstance(model, shipped.ShippedClassifier) else shipped.load(model, threads=1)
    box = W.Text(value=initial, description="message", placeholder="type a message",
                 layout=W.Layout(width="95%"), continuous_update=True)
    box.add_class("course-textbox")
    readout = W.HTML()
    readout.add_class("course-readout")

    def update(change=None) -> None:
        text = box.value
        if not text.strip():
            readout.value = "type a message to classify it"
            return
        p = clf.spam_probability(text)
        label = "spam" if p >= 0.5 else "ham"
        readout.value = (f"P(spam) = <b>{p:.3f}</b> → <b>{label}</b> · {len(clf.tokenizer.encode(text).ids)} tokens · "
                         f"{html.escape(clf.path.name)} ({clf.size_mb():.2f} MB, ONNX Runtime, no PyTorch)")

    box.observe(update, names="value")
    update()
    return Explorer([box, readout], f"Spam text box on {clf.path.name} (type a message in JupyterLab).")
