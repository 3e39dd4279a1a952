"""The one file that ships (course_lib.ship) and its torch-free loader (course_lib.shipped)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def student():
    """Chapter 02's tiny KD student (fast mode: trained once into the test cache)."""
    from course_lib.studies import distillation as ch02

    return ch02.train_student(ch02.Recipe("tiny", "kd", temperature=4.0, alpha=0.5), progress=False)


@pytest.fixture(scope="module")
def trimmed(student):
    from course_lib import students
    from course_lib.studies import distillation as ch02

    return students.trim_vocabulary(student, ch02.training_split()["text"].tolist())


@pytest.fixture(scope="module")
def test_texts():
    from course_lib.studies import distillation as ch02

    return ch02.eval_sets()["sms"]["text"].tolist()


@pytest.fixture(scope="module")
def shipped_file(trimmed, tmp_path_factory):
    from course_lib import ship

    return ship.ship(trimmed, tmp_path_factory.mktemp("ship") / "spam_filter.onnx")


def test_shipped_file_reproduces_the_pytorch_student(student, shipped_file, test_texts):
    from course_lib import shipped

    clf = shipped.load(shipped_file, threads=1)
    got = clf.predict_logits(test_texts).argmax(axis=1)
    want = student.predict_logits(test_texts).argmax(axis=1)
    assert len(got) == len(test_texts) >= 100
    assert np.mean(got == want) >= 0.995
    # also the probabilities, not only the labels (a fast-mode student may predict one class everywhere)
    p_torch = student.predict_proba(test_texts)[:, 1] if hasattr(student, "predict_proba") else None
    if p_torch is None:
        z = student.predict_logits(test_texts)
        p_torch = np.exp(z[:, 1]) / np.exp(z).sum(axis=1)
    assert np.mean(np.abs(clf.predict_proba(test_texts)[:, 1] - p_torch)) < 0.02
    p = clf.predict_proba(test_texts[:5])
    assert np.allclose(p.sum(axis=1), 1.0, atol=1e-5)
    assert 0.0 <= clf.spam_probability(test_texts[0]) <= 1.0


def test_fp32_file_matches_the_trimmed_model_logits(trimmed, test_texts, tmp_path):
    from course_lib import ship, shipped

    path = ship.ship(trimmed, tmp_path / "fp32.onnx", quantize=False)
    clf = shipped.load(path, threads=1)
    assert clf.meta["int8"] is False and set(clf.meta["weight_types"]) == {"FLOAT"}
    np.testing.assert_allclose(clf.predict_logits(test_texts[:40]), trimmed.predict_logits(test_texts[:40]),
                               atol=1e-3, rtol=1e-3)


def test_one_file_holds_int8_weights_and_the_trimmed_tokenizer(trimmed, shipped_file):
    from course_lib import ship, shipped

    clf = shipped.load(shipped_file)
    assert clf.meta["int8"] is True and (clf.meta["weight_types"].get("INT8", 0) + clf.meta["weight_types"].get("UINT8", 0)
                                       > 0.9 * clf.meta["weight_elements"])  # Gather tables: uint8
    assert clf.meta["vocab_size"] == len(trimmed.tokenizer) < 30522
    assert clf.tokenizer.get_vocab_size() == len(trimmed.tokenizer)
    assert ship.size_mb(shipped_file) == pytest.approx(clf.size_mb())
    # int8: about a byte per weight, plus the tokenizer; far below the fp32 bytes of the model
    assert clf.size_mb() < 4 * trimmed.num_parameters() / 1e6 * 0.5
    assert [p.name for p in shipped_file.parent.iterdir() if not p.name.startswith(".")] == [shipped_file.name]


def test_loader_never_imports_torch(shipped_file, test_texts):
    code = ("import json, sys; from course_lib import shipped; "
            f"c = shipped.load({str(shipped_file)!r}, threads=1); "
            f"p = c.predict_proba({test_texts[:3]!r}); "
            "print(json.dumps({'torch': 'torch' in sys.modules, 'transformers': 'transformers' in sys.modules, "
            "'n': len(p)}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out == {"torch": False, "transformers": False, "n": 3}


def test_footprint_measures_load_time_and_memory(shipped_file, test_texts):
    from course_lib import ship

    out = ship.footprint(shipped_file, test_texts[:10], threads=1)
    assert out["torch_imported"] is False
    assert out["load_ms"] > 0 and out["peak_mb"] > 0 and out["texts"] == 10
    assert out["peak_mb"] >= out["baseline_mb"]


def test_bad_inputs_get_clear_errors(shipped_file, tmp_path, trimmed):
    from course_lib import onnx_runtime, ship, shipped

    with pytest.raises(FileNotFoundError, match="ship"):
        shipped.load(tmp_path / "missing.onnx")
    plain = onnx_runtime.export_cached(trimmed)[1]
    with pytest.raises(ValueError, match="not a shipped one"):
        shipped.load(plain)
    with pytest.raises(TypeError, match="TextClassifier"):
        ship.ship(trimmed.model, tmp_path / "x.onnx")
    clf = shipped.load(shipped_file)
    with pytest.raises(TypeError, match="list of texts"):
        clf.predict_logits("one message")
