"""Your own data with more than two classes, end to end (issue 13, section 6): a 3-class CSV of support
tickets through load_csv, split, fine_tune, students, distill, quantize, Benchmark and plots, fast mode."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score, precision_recall_fscore_support

from course_lib import data, distill, evaluate, models, plots, quantize, students, train

NAMES = ["billing", "bug", "account"]

_TEMPLATES = {
    "billing": ["I was charged twice for my {x} this month", "Please refund the {x} payment",
                "My invoice for the {x} shows the wrong amount", "Why did the price of the {x} plan go up?"],
    "bug": ["The app crashes when I open the {x} page", "Error 500 every time I save a {x}",
            "The {x} button does nothing on my phone", "Sync of my {x} has been broken since the update"],
    "account": ["How do I change the email on my {x} account?", "I cannot log in to my {x} profile",
                "Please delete my {x} account and data", "Reset the password of my {x} login"],
}
_THINGS = ["premium", "family", "team", "annual", "trial"]


def tickets() -> pd.DataFrame:
    """60 support tickets, 20 of each kind, in a mixed order."""
    rows = []
    for kind, templates in _TEMPLATES.items():
        for template, thing in itertools.islice(itertools.product(templates, _THINGS), 20):
            rows.append({"ticket": template.format(x=thing), "kind": kind})
    frame = pd.DataFrame(rows)
    return frame.sample(frac=1.0, random_state=0).reset_index(drop=True)


@pytest.fixture(scope="module")
def ticket_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("tickets") / "tickets.csv"
    tickets().to_csv(path, index=False)
    return path


def test_load_csv_with_three_classes(ticket_csv):
    df = data.load_csv(ticket_csv, text_column="ticket", label_column="kind",
                       label_map={"billing": 0, "bug": 1, "account": 2})
    assert len(df) == 60 and sorted(df["label"].unique()) == [0, 1, 2]
    assert df.attrs["class_names"] == NAMES and data.class_names(df) == NAMES
    with pytest.raises(data.DataError, match="class id"):
        data.load_csv(ticket_csv, text_column="ticket", label_column="kind",
                      label_map={"billing": 0, "bug": 1, "account": 5})


def test_three_classes_end_to_end(ticket_csv):
    df = data.load_csv(ticket_csv, text_column="ticket", label_column="kind",
                       label_map={"billing": 0, "bug": 1, "account": 2})
    splits = data.split(df, val_size=0.15, test_size=0.25, seed=0)
    for part in (splits.train, splits.val, splits.test):  # stratified: every class in every part
        assert sorted(part["label"].unique()) == [0, 1, 2]
        assert part.attrs["class_names"] == NAMES

    teacher = students.small_bert(num_labels=3, seed=1, name="tiny teacher")
    assert teacher.model.config.num_labels == 3
    history = train.fine_tune(teacher, splits.train, splits.val, epochs=8, lr=2e-3, batch_size=8, progress=False)
    assert len(history["val_f1"]) == 8 and all(0.0 <= f <= 1.0 for f in history["val_f1"])

    student = students.small_bert(layers=1, hidden=64, heads=2, intermediate=128, num_labels=3, name="tiny student")
    kd = distill.distill(student, teacher, splits.train, epochs=4, lr=2e-3, batch_size=8, progress=False)
    assert kd["labelled"] == len(splits.train)

    fake4 = quantize.fake_quantize_model(teacher, bits=4)
    int8 = quantize.pytorch_dynamic_int8(teacher)

    bench = evaluate.Benchmark.from_frame(splits.test, latency_runs=3, warmup=1, throughput_n=8, batch_sizes=(1, 8))
    assert bench.class_names == NAMES and bench.quality_metric == "macro_f1"
    for name, variant in [("teacher", teacher), ("student (KD)", student), ("fake int4", fake4), ("int8", int8)]:
        bench.run(name, variant, progress=False)
    table = bench.table
    assert list(table.index) == ["teacher", "student (KD)", "fake int4", "int8"]
    for column in ["accuracy", "macro_precision", "macro_recall", "macro_f1", "weighted_f1", "classes_predicted"]:
        assert column in table.columns, column
    assert "tp" not in table.columns and "f1" not in table.columns  # no spam columns for three classes

    y_true = splits.test["label"].to_numpy()
    y_pred = bench.predictions["teacher"].labels
    assert table.loc["teacher", "macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro", zero_division=0))
    assert table.loc["teacher", "weighted_f1"] == pytest.approx(
        f1_score(y_true, y_pred, average="weighted", zero_division=0))

    per = bench.per_class("teacher")
    assert list(per.index) == NAMES and list(per.columns) == ["precision", "recall", "f1", "support"]
    p, r, f, n = precision_recall_fscore_support(y_true, y_pred, labels=[0, 1, 2], average=None, zero_division=0)
    np.testing.assert_allclose(per["f1"], f)
    np.testing.assert_allclose(per["precision"], p)
    assert per["support"].tolist() == n.tolist() == np.bincount(y_true, minlength=3).tolist()

    cm = bench.confusion("teacher")
    assert cm.shape == (3, 3) and list(cm.index) == NAMES and int(cm.to_numpy().sum()) == len(splits.test)

    comparison = bench.compare("teacher", "int8")
    assert "F1 (macro)" in comparison.index and "F1 (spam)" not in comparison.index
    assert comparison.attrs["verdict"]

    fig = plots.confusion_matrices(bench, ["teacher", "int8"])
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == NAMES
    plots.metric_bars(table)
    plots.bubble_chart(table)
    print(f"3-class support tickets: macro F1 teacher {table.loc['teacher', 'macro_f1']:.3f}, "
          f"KD student {table.loc['student (KD)', 'macro_f1']:.3f} (tiny random-init models, a few steps)")


def test_a_two_class_model_on_three_class_data_is_a_clear_error():
    bench = evaluate.Benchmark(["refund please", "app crashes", "reset my password"], [0, 1, 2],
                               class_names=NAMES)
    with pytest.raises(ValueError, match="num_labels=3"):
        bench.run("binary", students.small_bert(layers=1, hidden=32, heads=2, intermediate=64), progress=False,
                  measure_speed=False)


def test_fine_tune_names_the_missing_head_size():
    frame = pd.DataFrame({"text": ["refund please", "app crashes", "reset my password"], "label": [0, 1, 2]})
    with pytest.raises(data.DataError, match="num_labels=3"):
        train.fine_tune(students.small_bert(layers=1, hidden=32, heads=2, intermediate=64), frame, epochs=1,
                        progress=False)


def test_binary_benchmark_columns_are_unchanged(teacher):
    bench = evaluate.Benchmark(["hello there", "win a prize now"], [0, 1])
    row = bench.run("t", teacher, measure_speed=False, progress=False)
    assert [k for k in row if k not in {"name", "size_mb", "params_m", "threads"}] == [
        "accuracy", "precision", "recall", "f1", "tn", "fp", "fn", "tp"]
    assert bench.class_names == ["ham", "spam"] and bench.quality_metric == "f1"
    assert isinstance(models.TextClassifier, type)
