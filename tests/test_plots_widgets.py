import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from course_lib import evaluate, explorers, plots


def _table():
    return pd.DataFrame(
        {"accuracy": [0.99, 0.97], "precision": [0.97, 0.9], "recall": [0.98, 0.95], "f1": [0.975, 0.92],
         "latency_ms": [10.0, 3.0], "size_mb": [91.0, 23.0]},
        index=["teacher", "int8"],
    )


def test_plots_draw():
    ax = plots.confusion_matrix([[90, 5], [3, 20]], title="cm")
    assert ax.get_title() == "cm" and len(ax.texts) == 4
    ax = plots.metric_bars(_table())
    assert len(ax.patches) == 8
    ax = plots.bubble_chart(_table())
    assert len(ax.collections[0].get_offsets()) == 2
    ax = plots.threshold_curves(evaluate.threshold_table([0, 1, 1, 0], [0.2, 0.8, 0.6, 0.4]), threshold=0.5)
    assert len(ax.lines) == 4
    ax = plots.length_histogram({"ham": [10, 12, 14], "spam": [25, 30, 35]})
    assert ax.get_legend() is not None
    plt.close("all")


def test_threshold_explorer_updates_readout():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    prob = np.clip(y * 0.6 + rng.random(200) * 0.5, 0, 1)
    box = explorers.threshold_explorer(y, prob)
    slider, readout = box.children[0], box.children[1]
    first = readout.value
    slider.value = 0.9
    assert readout.value != first and "0.90" in readout.value
    assert "Threshold explorer" in repr(box)
    plt.close("all")
