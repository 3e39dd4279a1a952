"""Plots every chapter reuses (matplotlib): confusion matrices, metric comparisons, the
size / latency / quality bubble chart, margin histograms and per-seed results.

Each function draws on an ``ax`` if given (so widgets can redraw in place) and returns the
matplotlib ``Axes``.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.metrics import ConfusionMatrixDisplay

CLASS_NAMES = ("ham", "spam")


def _axes(ax=None, figsize=(5, 4)):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def confusion_matrix(cm: np.ndarray | Sequence[Sequence[int]] | pd.DataFrame, title: str = "", ax=None,
                     class_names: Sequence[str] | None = None):
    """Draw a K×K confusion matrix with counts (rows: true class, columns: predicted).

    For two classes that is [[TN, FP], [FN, TP]] labelled ham / spam. ``class_names`` label the
    classes (default: ham / spam for 2×2, the frame's index for a DataFrame such as
    ``Benchmark.confusion(name)``, else "class 0", "class 1", ...).
    """
    if isinstance(cm, pd.DataFrame) and class_names is None:
        class_names = [str(c) for c in cm.index]
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"a confusion matrix is square (K×K); got shape {cm.shape}.")
    k = cm.shape[0]
    if class_names is None:
        class_names = list(CLASS_NAMES) if k == 2 else [f"class {i}" for i in range(k)]
    if len(class_names) != k:
        raise ValueError(f"{len(class_names)} class names for a {k}×{k} confusion matrix.")
    side = max(3.6, 0.9 * k + 1.4)
    ax = _axes(ax, (side, side * 0.9))
    ConfusionMatrixDisplay(cm, display_labels=list(class_names)).plot(
        ax=ax, colorbar=False, cmap="Blues", values_format="d", xticks_rotation=45 if k > 3 else "horizontal"
    )
    ax.set_title(title)
    return ax


def confusion_matrices(benchmark, names: Sequence[str] | None = None):
    """Confusion matrices of several benchmark rows side by side (class names from the benchmark); returns the figure."""
    names = list(names or [r["name"] for r in benchmark.rows])
    k = benchmark.num_classes
    side = max(3.4, 0.9 * k + 1.2)
    fig, axes = plt.subplots(1, len(names), figsize=(side * len(names), side * 0.95), squeeze=False)
    for ax, name in zip(axes[0], names):
        confusion_matrix(benchmark.confusion(name), title=name, ax=ax)
    fig.tight_layout()
    return fig


BINARY_METRICS = ("accuracy", "precision", "recall", "f1")
MULTICLASS_METRICS = ("accuracy", "macro_precision", "macro_recall", "macro_f1", "weighted_f1")


def metric_bars(table: pd.DataFrame, metrics: Sequence[str] | None = None,
                ax=None, ylim: tuple[float, float] | None = None):
    """Grouped bars of quality metrics, one group per metric, one bar per variant (table index).

    Default metrics: accuracy and spam precision/recall/F1 for two classes, the macro and weighted
    averages for a benchmark with more classes."""
    ax = _axes(ax, (7, 3.5))
    multiclass = "macro_f1" in table.columns and "f1" not in table.columns
    metrics = [m for m in (metrics or (MULTICLASS_METRICS if multiclass else BINARY_METRICS)) if m in table.columns]
    width = 0.8 / max(1, len(table))
    x = np.arange(len(metrics))
    for i, (name, row) in enumerate(table.iterrows()):
        values = [row[m] for m in metrics]
        bars = ax.bar(x + i * width, values, width, label=str(name))
        ax.bar_label(bars, fmt="%.3f", fontsize=7, padding=1)
    ax.set_xticks(x + width * (len(table) - 1) / 2, metrics)
    low = min(float(table[m].min()) for m in metrics) if metrics else 0.0
    ax.set_ylim(*(ylim or (max(0.0, low - 0.1), 1.02)))
    ax.set_ylabel("score (averaged over classes)" if multiclass else "score (spam = positive class)")
    ax.legend(fontsize=8, loc="lower right")
    return ax


def bubble_chart(table: pd.DataFrame, quality: str = "f1", latency: str = "latency_ms",
                 size: str = "size_mb", ax=None, title: str = "Quality vs latency vs size"):
    """Each variant as a bubble: x = batch-1 latency (ms), y = quality, area ∝ size on disk (MB).

    The picture every chapter extends: the best variants sit top-left with small bubbles.
    A table with more than two classes has no spam ``f1``: its ``macro_f1`` is used instead.
    Labels ("name / MB") are placed so that no two overlap, nor cover another variant's
    centre (see :func:`place_labels`), with a thin line to their bubble when moved away.
    """
    ax = _axes(ax, (7, 4.5))
    if quality == "f1" and "f1" not in table.columns and "macro_f1" in table.columns:
        quality = "macro_f1"
    data = table.dropna(subset=[quality, latency, size])
    if data.empty:
        ax.text(0.5, 0.5, "no measured variants yet", ha="center", va="center", transform=ax.transAxes)
        return ax
    biggest = float(data[size].max())
    areas = 2000.0 * data[size] / biggest
    colors = plt.cm.tab10(np.arange(len(data)) % 10)
    ax.scatter(data[latency], data[quality], s=areas, c=colors, alpha=0.55, edgecolors="black")
    ax.set_xlabel("latency at batch 1, median (ms)")
    ax.set_ylabel(f"{quality} (spam)" if quality in {"f1", "precision", "recall"} else quality.replace("_", " "))
    ax.set_xlim(0, float(data[latency].max()) * 1.35)
    lo, hi = float(data[quality].min()), float(data[quality].max())
    pad = max(0.02, (hi - lo) * 0.3)
    ax.set_ylim(lo - pad, min(1.0 + pad / 4, hi + pad))
    ax.set_title(title + " (bubble area ∝ MB)")
    ax.grid(alpha=0.3)
    labels = [f"{name}\n{row[size]:.1f} MB" for name, row in data.iterrows()]
    place_labels(ax, list(zip(data[latency].astype(float), data[quality].astype(float))), labels, colors)
    return ax


# offsets tried around a point, in points: near first, right before left, level before above/below
_LABEL_RADII = (9, 20, 32, 46, 62, 80, 100)
_LABEL_ANGLES = (0, -35, 35, 180, -145, 145, -70, 70, -110, 110, 90, -90)


def _renderer(fig):
    canvas = fig.canvas
    return canvas.get_renderer() if hasattr(canvas, "get_renderer") else fig._get_renderer()


def place_labels(ax, points: Sequence[tuple[float, float]], labels: Sequence[str], colors=None,
                 fontsize: float = 8) -> list:
    """Annotate each (x, y) data point with its label so that no two labels' text boxes overlap.

    Greedy: for each point in turn, the first offset (``_LABEL_RADII`` × ``_LABEL_ANGLES``, in
    points) where the text box, measured by the figure's renderer, stays inside the axes and
    clear of every label placed so far and of every other point's centre. A label moved away
    from its point gets a thin line to it. A label that finds no free place (a very crowded
    chart) goes to a legend below the axes instead, with its number next to the point where
    one fits. Measured for the axes as they are now: resizing them later can move labels
    into each other. Returns the annotations placed (``matplotlib.text.Annotation``).
    """
    from matplotlib.text import Text
    from matplotlib.transforms import Bbox

    fig = ax.figure
    renderer = _renderer(fig)
    centres = [ax.transData.transform(p) for p in points]
    px = fig.dpi / 72.0  # display pixels per point
    guard = 3 * px
    dots = [Bbox.from_extents(cx - guard, cy - guard, cx + guard, cy + guard) for cx, cy in centres]
    frame = ax.get_window_extent(renderer)
    placed, out, crowded = [], [], []
    colors = list(colors) if colors is not None else ["black"] * len(points)

    def put(i: int, text: str, **style):
        """Annotate point i with text at the first free offset; None if there is none."""
        x, y = points[i]
        others = [d for j, d in enumerate(dots) if j != i]
        for r in _LABEL_RADII:
            for angle in _LABEL_ANGLES:
                dx, dy = r * np.cos(np.radians(angle)), r * np.sin(np.radians(angle))
                ha = "left" if dx > 1 else "right" if dx < -1 else "center"
                va = "bottom" if dy > 1 else "top" if dy < -1 else "center"
                line = dict(arrowprops=dict(arrowstyle="-", color=colors[i], lw=0.7, shrinkA=0, shrinkB=2)) \
                    if r > _LABEL_RADII[0] else {}
                ann = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", ha=ha, va=va,
                                  fontsize=fontsize, **line, **style)
                ann.update_positions(renderer)  # where the text goes (done at draw time otherwise)
                box = Text.get_window_extent(ann, renderer).expanded(1.04, 1.08)
                inside = (box.x0 >= frame.x0 and box.x1 <= frame.x1 and box.y0 >= frame.y0 and box.y1 <= frame.y1)
                if inside and not any(box.overlaps(b) for b in placed + others):
                    placed.append(box)
                    return ann
                ann.remove()
        return None

    for i, text in enumerate(labels):
        ann = put(i, text)
        if ann is None:
            crowded.append(i)
        else:
            out.append(ann)
    if crowded:  # a number near the point (where one fits), the name in a legend under the axes
        from matplotlib.lines import Line2D

        handles = []
        for n, i in enumerate(crowded, 1):
            put(i, str(n), fontweight="bold")
            handles.append(Line2D([], [], marker="o", linestyle="", color=colors[i],
                                  label=f"{n}: " + labels[i].replace("\n", ", ")))
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.15), fontsize=fontsize,
                  ncol=2, frameon=False)
    return out


def threshold_curves(table: pd.DataFrame, threshold: float | None = None, ax=None):
    """Precision, recall and F1 against the decision threshold (from ``evaluate.threshold_table``)."""
    ax = _axes(ax, (6, 3.5))
    for col in ("precision", "recall", "f1"):
        ax.plot(table["threshold"], table[col], label=col, marker=".")
    if threshold is not None:
        ax.axvline(threshold, color="gray", linestyle="--", label=f"threshold {threshold:.2f}")
    ax.set_xlabel("decision threshold on P(spam)")
    ax.set_ylabel("score")
    ax.set_ylim(0, 1.02)
    ax.legend(loc="lower left", fontsize=8)
    ax.grid(alpha=0.3)
    return ax


def length_histogram(lengths_by_class: dict[str, Sequence[int]], ax=None, unit: str = "tokens"):
    """Overlaid histograms of message lengths per class."""
    ax = _axes(ax, (6, 3.2))
    top = max(np.percentile(list(v), 99) for v in lengths_by_class.values())
    bins = np.linspace(0, top, 40)
    for name, values in lengths_by_class.items():
        ax.hist(values, bins=bins, alpha=0.55, label=f"{name} (median {np.median(values):.0f})", density=True)
    ax.set_xlabel(f"message length ({unit})")
    ax.set_ylabel("share of messages")
    ax.legend()
    return ax


def plot_margins(logits_by_set: dict[str, np.ndarray], ax=None):
    """Overlaid histograms of the teacher's margin (logit spam − logit ham), one per set of messages."""
    ax = _axes(ax, (7, 3.2))
    margins = {k: np.asarray(v)[:, 1] - np.asarray(v)[:, 0] for k, v in logits_by_set.items()}
    lo = min(float(m.min()) for m in margins.values())
    hi = max(float(m.max()) for m in margins.values())
    bins = np.linspace(lo, hi, 50)
    for name, m in margins.items():
        ax.hist(m, bins=bins, alpha=0.5, density=True, label=f"{name} ({len(m)})")
    ax.set_xlabel("teacher margin: logit spam − logit ham (> 0 = spam)")
    ax.set_ylabel("share of messages")
    ax.legend(fontsize=8)
    return ax


def plot_seed_results(study: pd.DataFrame, panels: Sequence[tuple[str, str, str]]):
    """Per-seed results as dots with the mean ± std as a bar, one panel per (setting, metric, title).

    Shows the spread: a difference smaller than the dots' scatter is not a result."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.4), squeeze=False)
    for ax, (setting, metric, title) in zip(axes[0], panels):
        part = study[study["setting"] == setting]
        names = list(dict.fromkeys(part["model"]))
        for i, name in enumerate(names):
            values = part.loc[part["model"] == name, metric].to_numpy()
            jitter = np.linspace(-0.08, 0.08, len(values)) if len(values) > 1 else np.zeros(1)
            ax.scatter(np.full(len(values), i) + jitter, values, s=22, alpha=0.8, zorder=3)
            ax.errorbar(i + 0.22, values.mean(), yerr=values.std(ddof=1) if len(values) > 1 else 0,
                        fmt="_", color="black", markersize=14, capsize=4, zorder=2)
        ax.set_xticks(range(len(names)), [n.replace(" · ", "\n", 1) for n in names], fontsize=7)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(metric.replace("_", " "))
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig
