"""The sparsity explorer (chapter 04) on a synthetic sweep: controls carry the classes the browser suite
drives; the readout and the plot change when the slider, the method or the fine-tuning toggle moves."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch

from course_lib import explorers
from course_lib.studies.pruning import METHODS


def fake_sweep() -> pd.DataFrame:
    rows = []
    for m in METHODS:
        for tuned in (False, True):
            for level in (0.0, 0.5, 0.9):
                f1 = 0.95 - level ** 2 * (0.3 if tuned else 0.8) * (1 + list(METHODS).index(m) / 4)
                structured = m in ("activation", "redundancy")
                rows.append({"method": m, "level": level, "tuned": tuned, "sparsity": level * (2 / 3 if m == "redundancy" else 1),
                             "f1": f1, "f1_drop": 100 * (0.95 - f1), "params_m": 22.7 - (5 * level if structured else 0),
                             "encoder_params_m": 10.6, "dense_mb": 90.9 - (20 * level if structured else 0),
                             "csr_mb": 176 - 120 * level, "bitmask_int8_mb": 60 - 10 * level,
                             "b1_ms": 10.0 - (4 * level if structured else 0)})
    return pd.DataFrame(rows)


@pytest.fixture
def shown(monkeypatch):
    """The figures the explorer hands to plt.show(), as (titles, number of histogram patches)."""
    figures = []

    def record(*args, **kwargs):
        fig = plt.gcf()
        figures.append(([ax.get_title() for ax in fig.axes], sum(len(ax.patches) for ax in fig.axes),
                        [tuple(line.get_xdata()) for ax in fig.axes for line in ax.lines]))
    monkeypatch.setattr(plt, "show", record)
    return figures


def test_sparsity_explorer_responds(shown):
    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(64, 32, generator=gen)
    scores = np.abs(np.random.default_rng(0).normal(size=64))
    box = explorers.sparsity_explorer(fake_sweep(), weight, all_weights=torch.randn(5000, generator=gen).numpy() * 2,
                                      neuron_scores=scores, initial_sparsity=50)
    slider, method, tuned, readout, plot = box.children
    assert "course-slider" in slider._dom_classes and "course-toggle" in method._dom_classes
    assert "course-toggle" in tuned._dom_classes
    assert "course-readout" in readout._dom_classes and "course-plot" in plot._dom_classes
    assert len(shown) == 1 and "Sparsity explorer" in repr(box)
    first, first_plot = readout.value, shown[-1]
    assert "magnitude, global, one-shot" in first and "50%" in first
    slider.value = 90
    assert readout.value != first and "90%" in readout.value
    assert shown[-1] != first_plot  # the marked point and the removed band moved
    method.value = "activation"
    assert "activation" in readout.value and "whole neurons" in readout.value
    before = readout.value
    tuned.value = True
    assert "fine-tuned" in readout.value and readout.value != before
    method.value = "redundancy"
    assert "not by |w|" in readout.value and "60%" in readout.value  # nearest measured point to 90 %
    plt.close("all")


def test_sparsity_explorer_histogram_of_removed_weights_is_inside_the_layers(monkeypatch):
    from matplotlib.patches import StepPatch

    figures = []
    monkeypatch.setattr(plt, "show", lambda *a, **k: figures.append(plt.gcf()))
    gen = torch.Generator().manual_seed(1)
    weight = torch.randn(64, 32, generator=gen)
    explorers.sparsity_explorer(fake_sweep(), weight, initial_sparsity=50, initial_method="magnitude_layer")
    steps = [p for ax in figures[-1].axes for p in ax.patches if isinstance(p, StepPatch)]
    assert len(steps) == 2  # every weight of the layer, and the removed ones
    everything, gone = (p.get_data().values for p in steps)
    assert weight.numel() - 3 <= everything.sum() <= weight.numel()  # the range ends at 1.1 x the 99.9 % quantile of |w|
    assert np.all(gone <= everything) and 0 < gone.sum() < everything.sum()
    middle = len(gone) // 2
    assert gone[middle - 2:middle + 2].tolist() == everything[middle - 2:middle + 2].tolist()  # smallest |w| all gone
    assert gone[:10].sum() == 0 and gone[-10:].sum() == 0  # the largest |w| all kept
    plt.close("all")


def test_sparsity_explorer_refuses_an_incomplete_sweep():
    sweep = fake_sweep()
    with pytest.raises(ValueError, match="no rows for"):
        explorers.sparsity_explorer(sweep[sweep["method"] != "redundancy"], torch.zeros(4, 4))
    with pytest.raises(ValueError, match="2-D"):
        explorers.sparsity_explorer(sweep, torch.zeros(4))
