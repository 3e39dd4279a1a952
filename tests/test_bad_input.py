"""Bad input gets a clear error that says what to do (issue 13, section 5), never a silent wrong result."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from course_lib import data, evaluate, models
from course_lib.data import DataError


def test_fractional_labels_are_rejected_not_truncated(tmp_path):
    path = tmp_path / "frac.csv"
    pd.DataFrame({"text": ["a b", "c d", "e f"], "label": [0, 1, 0.7]}).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"whole numbers.*0\.7"):
        data.load_csv(path)
    with pytest.raises(DataError, match="whole numbers"):
        data.validate(pd.DataFrame({"text": ["x", "y"], "label": [0.0, 1.5]}))
    ok = data.validate(pd.DataFrame({"text": ["x", "y"], "label": [0.0, 1.0]}))  # 1.0 is a whole number
    assert ok["label"].tolist() == [0, 1]


def test_missing_labels_are_named():
    with pytest.raises(DataError, match="missing"):
        data.validate(pd.DataFrame({"text": ["x", "y", "z"], "label": [0, 1, None]}))


def test_latin1_file_gets_an_encoding_hint(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("text,label\ncaf\xe9 au lait,0\nfree entry \xa3100,1\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"encoding='latin-1'"):
        data.load_csv(path)
    df = data.load_csv(path, encoding="latin-1")
    assert df["text"].tolist() == ["café au lait", "free entry £100"]


def test_empty_file_is_a_clear_error(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("", encoding="utf-8")
    with pytest.raises(DataError, match="empty"):
        data.load_csv(path)
    header_only = tmp_path / "header.csv"
    header_only.write_text("text,label\n", encoding="utf-8")
    with pytest.raises(DataError, match="no rows"):
        data.load_csv(header_only)


@pytest.mark.parametrize("name", ["", "   "])
def test_empty_model_name_says_what_to_pass(name):
    with pytest.raises(ValueError, match=r"empty model name.*load_teacher\(\)"):
        models.load_teacher(name)


def test_dynamic_int8_parameter_count_includes_biases():
    from course_lib import students

    clf = students.small_bert(layers=1, hidden=32, heads=2, intermediate=64)
    fp32 = clf.num_parameters()
    with torch.no_grad():
        q = torch.quantization.quantize_dynamic(clf.model, {torch.nn.Linear}, dtype=torch.qint8)
    qclf = models.TextClassifier(model=q, tokenizer=clf.tokenizer)
    assert qclf.num_parameters() == fp32  # the same weights and biases, stored as int8 + fp32


def test_benchmark_on_a_bare_module_says_how_to_wrap(teacher):
    bench = evaluate.Benchmark(["hello there", "win a prize"], [0, 1])
    with pytest.raises(TypeError, match=r"TextClassifier\(model=.*tokenizer="):
        bench.run("bare", teacher.model, progress=False)


def test_verdict_against_a_one_class_baseline_says_so():
    def row(name, tn, fp, fn, tp):
        q = evaluate.quality([0] * (tn + fp) + [1] * (fn + tp), [0] * tn + [1] * fp + [0] * fn + [1] * tp)
        return {"name": name, **{k: v for k, v in q.items() if k != "confusion"},
                "tn": tn, "fp": fp, "fn": fn, "tp": tp, "size_mb": 10.0, "latency_ms": 2.0}

    all_ham = row("all ham", 90, 0, 10, 0)
    also_ham = {**row("also ham", 90, 0, 10, 0), "size_mb": 2.0}
    good = {**row("good", 88, 2, 1, 9), "size_mb": 2.0}
    both = evaluate.compare(all_ham, also_ham)
    assert both.attrs["verdict"] == "both useless"
    assert "only ham" in both.attrs["reason"]
    base = evaluate.compare(all_ham, good)
    assert base.attrs["verdict"] == "baseline predicts one class only"
    variant = evaluate.compare({**good, "size_mb": 10.0}, {**all_ham, "size_mb": 2.0})
    assert variant.attrs["verdict"] == "bad" and "only ham" in variant.attrs["reason"]


def test_verdict_reason_uses_the_table_sign_and_rounding():
    base = {"name": "b", "accuracy": 0.98, "f1": 0.95, "size_mb": 90.0, "latency_ms": 10.0}
    var = {"name": "v", "accuracy": 0.97, "f1": 0.95 - 0.01591, "size_mb": 1.0, "latency_ms": 1.0}
    table = evaluate.compare(base, var)
    delta = table.loc["F1 (spam)", "delta"]
    assert round(delta, 3) == -1.591
    assert "-1.591" in table.attrs["reason"] and "+1.6" not in table.attrs["reason"]


def test_signed_points_never_show_minus_zero():
    assert evaluate.format_points(-0.0) == "+0.0"
    assert evaluate.format_points(-0.04) == "+0.0"
    assert evaluate.format_points(-0.06) == "-0.1"
    assert evaluate.format_points(1.25, digits=2) == "+1.25"


def test_threads_label_is_plural_only_for_many():
    from course_lib import config

    assert config.threads_label(1) == "1 thread"
    assert config.threads_label(4) == "4 threads"


def test_benchmark_table_scrolls_instead_of_being_cut_off(teacher):
    bench = evaluate.Benchmark(["hello there", "win a prize now"], [0, 1], latency_runs=2, warmup=0,
                               throughput_n=2, batch_sizes=(1,))
    bench.run("teacher", teacher, progress=False)
    html = bench.table.round(3)._repr_html_()
    assert "overflow-x: auto" in html and "<table" in html
    assert isinstance(bench.table[["f1", "size_mb"]], pd.DataFrame)
