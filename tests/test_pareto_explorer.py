"""Chapter 07's Pareto explorer and shipped-file text box: the controls change the readout."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import pytest


def _table():
    return pd.DataFrame({"size_mb": [90.0, 23.0, 0.7, 0.03, 60.0],
                         "latency_ms": [15.0, 4.0, 0.6, 0.9, 20.0],
                         "f1": [0.95, 0.93, 0.91, 0.84, 0.90]},
                        index=["teacher", "teacher int8", "shipped", "TF-IDF", "slow and bad"])


def test_slider_names_the_smallest_and_the_fastest_model_that_meet_the_floor():
    from course_lib.explorers import pareto_explorer

    box = pareto_explorer(_table(), initial=0.85)
    f1, readout, plot = box.children
    assert "course-slider" in f1._dom_classes and "course-readout" in readout._dom_classes
    assert "course-plot" in plot._dom_classes
    assert "smallest: <b>shipped</b> (0.70 MB" in readout.value and "fastest: <b>shipped</b>" in readout.value
    f1.value = 0.80
    assert "smallest: <b>TF-IDF</b> (0.03 MB" in readout.value and "fastest: <b>shipped</b>" in readout.value
    f1.value = 0.94
    assert "smallest: <b>teacher</b>" in readout.value and "1 of 5 models qualify" in readout.value
    f1.value = f1.max  # the slider ends at the best F1: one model always qualifies there
    assert "1 of 5 models qualify" in readout.value and "one model is both" in readout.value
    plt.close("all")
    assert "Pareto explorer over 5 models" in repr(box)


def test_pareto_explorer_rejects_a_table_without_the_columns():
    from course_lib.explorers import pareto_explorer

    with pytest.raises(ValueError, match="latency_ms"):
        pareto_explorer(_table().drop(columns="latency_ms"))


def test_text_box_gives_live_p_spam_from_the_shipped_file(tmp_path):
    from course_lib import ship, students
    from course_lib.explorers import spam_textbox

    clf = students.small_bert(layers=1, hidden=32, heads=2, intermediate=64, seed=0)
    path = ship.ship(clf, tmp_path / "tiny.onnx")
    box = spam_textbox(path, initial="hello")
    text, readout = box.children
    assert "course-textbox" in text._dom_classes and "course-readout" in readout._dom_classes
    first = readout.value
    assert "P(spam) = " in first and "no PyTorch" in first
    text.value = "WINNER!! claim your free prize now, call 09061701461 today"
    assert readout.value != first and "P(spam) = " in readout.value
    text.value = "   "
    assert "type a message" in readout.value
