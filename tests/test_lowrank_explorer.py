"""Chapter 05's rank explorer on a synthetic sweep: readout and plot follow the controls."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from course_lib.explorers.rank import rank_explorer


def _sweep():
    rows = [{"group": "none", "method": "teacher", "rank": None, "finetuned": False, "f1": 0.95, "f1_drop": 0.0,
             "linear_params_m": 10.6, "param_cut": 0.0, "energy_kept": 1.0, "output_error": 0.0, "weight_error": 0.0}]
    for group in ("ffn", "all"):
        for method, base in (("svd", 0.80), ("whitened", 0.93)):
            for r in (16, 64, 128):
                f1 = base + r / 2000
                rows.append({"group": group, "method": method, "rank": r, "finetuned": False, "f1": f1,
                             "f1_drop": 100 * (0.95 - f1), "linear_params_m": r / 20, "param_cut": 1 - r / 200,
                             "energy_kept": r / 200, "output_error": 1 - r / 200, "weight_error": 1 - r / 300})
    rows.append({**rows[-1], "method": "svd", "finetuned": True, "f1": 0.947, "f1_drop": 0.3})
    frame = pd.DataFrame(rows)
    frame.attrs.update({"teacher_f1": 0.95, "max_drop": 1.0, "linear_params_m": 10.6, "finetune_group": "all",
                        "shapes": {"ffn": [[1536, 384], [384, 1536]], "all": [[384, 384], [1536, 384], [384, 1536]]}})
    return frame


def test_rank_explorer_follows_its_controls():
    box = rank_explorer(_sweep(), initial_rank=64)
    rank, group, method, stage, readout, plot = box.children
    assert all("course-slider" in w._dom_classes for w in (rank,))
    assert all("course-toggle" in w._dom_classes for w in (group, method, stage))
    assert "course-readout" in readout._dom_classes and "course-plot" in plot._dom_classes
    first = readout.value
    assert "rank 64" in first and "whitened" in first and "cut 68%" in first
    rank.value = 128
    assert "rank 128" in readout.value and readout.value != first
    rank.value = 112  # between measured ranks: snaps, and says so
    assert "rank 128" in readout.value and "nearest measured rank to 112" in readout.value
    method.value = "svd"
    assert "plain SVD, one-shot" in readout.value and "outside 1 point" in readout.value
    stage.value = True
    assert "after fine-tuning" in readout.value and "F1 0.947" in readout.value
    group.value = "ffn"  # nothing fine-tuned there: one-shot, and the readout says so
    assert "fine-tuned only for the all layers" in readout.value
    assert "Rank explorer" in repr(box)
    plt.close("all")
