"""course_lib.quantize and course_lib.onnx_runtime: the from-scratch arithmetic, whole models,
packed sizes, real int8 (PyTorch dynamic and ONNX Runtime), the sweep cache, the widget, the exercise."""

from __future__ import annotations

import time

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from course_lib import explorers
from course_lib import quantize as Q
from course_lib.exercises import quantization as exercise
from course_lib.studies import quantization as experiments

TEXTS = [
    "Ok lar... Joking wif u oni...",
    "WINNER!! As a valued network customer you have been selected to receive a £900 prize reward! Call 09061701461",
    "I'll be home soon, want anything from the shop?",
    "URGENT! Your mobile number has won £2000 Bonus Caller Prize. Call 09058095201 now",
]


def _sample(shape=(12, 40), seed=0):
    g = torch.Generator().manual_seed(seed)
    # rows with very different ranges (what makes per-channel matter) and a lopsided offset
    return torch.randn(*shape, generator=g) * torch.logspace(-3, 0, shape[0]).unsqueeze(1) + 0.01


# --------------------------------------------------------------------------- from scratch


@pytest.mark.parametrize("scheme", Q.SCHEMES)
@pytest.mark.parametrize("granularity", Q.GRANULARITIES)
@pytest.mark.parametrize("bits", range(2, 9))
def test_levels_and_round_trip_error(bits, scheme, granularity):
    for seed in range(3):
        x = _sample(seed=seed)
        qt = Q.quantize_tensor(x, bits, scheme, granularity, axis=0)
        q, scale, zp = qt  # unpacks
        assert q.shape == x.shape and q.dtype == (torch.int8 if scheme == "symmetric" else torch.uint8)
        qmin, qmax = Q.integer_range(bits, scheme)
        assert int(q.min()) >= qmin and int(q.max()) <= qmax
        if scheme == "symmetric":
            assert qmax == 2 ** (bits - 1) - 1 and torch.all(zp == 0)
        rows = q if granularity == "per_channel" else q.flatten().unsqueeze(0)
        for r in rows:
            assert torch.unique(r).numel() <= 2**bits
        deq = Q.dequantize(qt)
        assert torch.allclose(deq, Q.dequantize(q, scale, zp))
        err = (deq - x).abs()
        half_step = (scale / 2).expand_as(x) if granularity == "per_channel" else scale / 2
        assert torch.all(err <= half_step * (1 + 1e-5) + 1e-7), float((err - half_step).max())
        fq = Q.fake_quantize(x, bits, scheme, granularity)
        assert fq.shape == x.shape and fq.dtype == x.dtype and torch.equal(fq, deq)
        distinct = [torch.unique(r).numel() for r in (fq if granularity == "per_channel" else [fq.flatten()])]
        assert max(distinct) <= 2**bits


def test_per_channel_scales_follow_rows_and_beat_per_tensor():
    x = _sample()
    pt = Q.quantize_tensor(x, 4, "symmetric", "per_tensor")
    pc = Q.quantize_tensor(x, 4, "symmetric", "per_channel", axis=0)
    assert pt.scale.shape == () and pc.scale.shape == (x.shape[0], 1)
    assert torch.allclose(pc.scale.flatten(), x.abs().amax(dim=1) / 7)
    assert torch.isclose(pt.scale, x.abs().max() / 7)
    e_pt = Q.quantization_error(x, 4, "symmetric", "per_tensor")
    e_pc = Q.quantization_error(x, 4, "symmetric", "per_channel")
    assert e_pc["rmse"] < e_pt["rmse"]
    col = Q.quantize_tensor(x, 4, "symmetric", "per_channel", axis=1)
    assert col.scale.shape == (1, x.shape[1]) and col.axis == 1
    assert Q.quantize_tensor(x, 4, "symmetric", "per_channel", axis=-1).axis == 1


def test_asymmetric_keeps_zero_exact_and_uses_the_range():
    x = torch.tensor([0.0, 0.5, 1.0, 2.0, 3.0])  # lopsided: all >= 0
    qt = Q.quantize_tensor(x, 8, "asymmetric")
    assert float(qt.dequantize()[0]) == 0.0
    assert int(qt.values.max()) == 255
    sym = Q.quantize_tensor(x, 8, "symmetric")
    assert float(qt.scale) < float(sym.scale)  # finer steps when the range is one-sided
    levels = qt.levels()
    assert len(levels) == 256 and np.isclose(levels, 0.0).any()


def test_edge_cases():
    zeros = torch.zeros(4, 6)
    for scheme in Q.SCHEMES:
        for gran in Q.GRANULARITIES:
            qt = Q.quantize_tensor(zeros, 3, scheme, gran)
            assert torch.all(qt.scale > 0) and torch.equal(qt.dequantize(), zeros)
    const = torch.tensor([[0.5] * 5, [-2.0] * 5, [0.0] * 5])  # constant channels, one all-zero
    for scheme in Q.SCHEMES:
        qt = Q.quantize_tensor(const, 2, scheme, "per_channel")
        assert torch.allclose(qt.dequantize(), const, atol=1e-6)
    assert Q.quantize_tensor(torch.tensor(3.0), 8).dequantize().item() == pytest.approx(3.0)
    assert Q.fake_quantize(np.array([0.1, -0.2]), 8).dtype == torch.float64
    for bad in (1, 9, 0, 16, 4.0, True):
        with pytest.raises(ValueError, match="bits"):
            Q.quantize_tensor(const, bad)
    with pytest.raises(ValueError, match="scheme"):
        Q.quantize_tensor(const, 8, scheme="affine")
    with pytest.raises(ValueError, match="granularity"):
        Q.quantize_tensor(const, 8, granularity="per_row")
    with pytest.raises(ValueError, match="empty"):
        Q.quantize_tensor(torch.zeros(0), 8)
    with pytest.raises(ValueError, match="NaN"):
        Q.quantize_tensor(torch.tensor([1.0, float("nan")]), 8)
    with pytest.raises(ValueError, match="axis"):
        Q.quantize_tensor(const, 8, granularity="per_channel", axis=2)
    with pytest.raises(ValueError, match="per_channel"):
        Q.quantize_tensor(torch.tensor(1.0), 8, granularity="per_channel")
    with pytest.raises(ValueError, match="scale"):
        Q.dequantize(torch.zeros(3, dtype=torch.int8))


# --------------------------------------------------------------------------- whole models


def _tiny():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Embedding(50, 8), torch.nn.Linear(8, 16), torch.nn.ReLU(),
                               torch.nn.Linear(16, 2))


def test_fake_quantize_model_copies_and_changes_only_targets():
    model = _tiny()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    new = Q.fake_quantize_model(model, 3, "asymmetric", "per_channel")
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), f"original {k} changed"
    assert new is not model
    for i in (1, 3):
        w_new, w_old = new[i].weight, model[i].weight
        assert not torch.equal(w_new, w_old)
        assert max(torch.unique(r).numel() for r in w_new) <= 8
        assert torch.equal(new[i].bias, model[i].bias)
    assert torch.equal(new[0].weight, model[0].weight)  # embeddings untouched by default
    with_emb = Q.fake_quantize_model(model, 3, include_embeddings=True)
    assert not torch.equal(with_emb[0].weight, model[0].weight)
    assert torch.unique(with_emb[0].weight).numel() <= 8


def test_fake_quantize_classifier(teacher):
    clf = Q.fake_quantize_model(teacher, 8, "symmetric", "per_channel")
    assert clf.tokenizer is teacher.tokenizer and "fake int8" in clf.name
    assert clf.meta["quantization"]["bits"] == 8
    w = clf.model.bert.encoder.layer[0].attention.self.query.weight
    w0 = teacher.model.bert.encoder.layer[0].attention.self.query.weight
    assert not torch.equal(w, w0) and torch.allclose(w, w0, atol=float(w0.detach().abs().max()) / 127)
    np.testing.assert_allclose(clf.logits(TEXTS[:2]), teacher.logits(TEXTS[:2]), atol=0.05)
    with pytest.raises(TypeError):
        Q.fake_quantize_model("not a model", 8)


def test_packed_size_math():
    lin = torch.nn.Linear(100, 10)  # 1000 weights + 10 biases (fp32)
    assert Q.packed_size_parts(lin, 4) == {"weights": 500, "scales": 4, "rest": 40}
    assert Q.packed_size_parts(lin, 4, granularity="per_channel") == {"weights": 500, "scales": 40, "rest": 40}
    assert Q.packed_size_parts(lin, 3, "asymmetric", "per_channel") == {"weights": 375, "scales": 50, "rest": 40}
    assert Q.packed_size_mb(lin, 8) == pytest.approx((1000 + 4 + 40) / 1e6)
    model = _tiny()  # embedding 400, linear 128+16, linear 32+2
    assert Q.packed_size_parts(model, 2)["rest"] == (400 + 16 + 2) * 4
    assert Q.packed_size_parts(model, 2, include_embeddings=True)["weights"] == 100 + 32 + 8
    sizes = [Q.packed_size_mb(model, b) for b in range(2, 9)]
    assert sizes == sorted(sizes)


def test_packed_size_of_the_teacher(teacher):
    fp32 = teacher.size_mb()
    linear_only = Q.packed_size_mb(teacher, 8)
    everything = Q.packed_size_mb(teacher, 8, "symmetric", "per_channel", include_embeddings=True)
    assert 50 < linear_only < 65  # embeddings (~47 MB) stay fp32
    assert everything < fp32 / 3.5  # ~4x smaller, like ONNX Runtime int8
    assert Q.packed_size_mb(teacher, 4, include_embeddings=True) < everything


# --------------------------------------------------------------------------- real low precision


def test_pytorch_dynamic_int8(teacher):
    int8 = Q.pytorch_dynamic_int8(teacher)
    layer = int8.model.bert.encoder.layer[0].attention.self.query
    assert "quantized" in type(layer).__module__
    assert isinstance(teacher.model.bert.encoder.layer[0].attention.self.query, torch.nn.Linear)  # untouched
    assert isinstance(int8.model.bert.embeddings.word_embeddings, torch.nn.Embedding)  # stays fp32
    assert int8.size_mb() < teacher.size_mb() * 0.7
    np.testing.assert_allclose(int8.logits(TEXTS), teacher.logits(TEXTS), atol=0.05)


def test_cast_classifier(teacher):
    half = Q.cast_classifier(teacher, torch.bfloat16)
    assert next(half.model.parameters()).dtype == torch.bfloat16
    assert next(teacher.model.parameters()).dtype == torch.float32
    assert half.size_mb() == pytest.approx(teacher.size_mb() / 2, rel=0.01)
    out = half.logits(TEXTS[:2])
    assert out.dtype == np.float32 and np.allclose(out, teacher.logits(TEXTS[:2]), atol=0.05)
    with pytest.raises(ValueError):
        Q.cast_classifier(teacher, torch.int8)


def test_onnx_export_and_int8_session(teacher, tmp_cache):
    from course_lib import onnx_runtime

    fp32, int8 = onnx_runtime.onnx_variants(teacher)
    ref = teacher.logits(TEXTS)
    np.testing.assert_allclose(fp32.predict_logits(TEXTS), ref, atol=1e-4)
    np.testing.assert_allclose(fp32.predict_logits(TEXTS, batch_size=1), ref, atol=1e-4)  # no padding
    np.testing.assert_allclose(int8.predict_logits(TEXTS), ref, atol=0.05)
    assert fp32.predict_logits([]).shape == (0, 2)
    assert fp32.size_mb() == pytest.approx(teacher.size_mb(), rel=0.02)
    assert int8.size_mb() < fp32.size_mb() / 3.5
    assert fp32.num_parameters() == teacher.num_parameters()
    assert int8.num_parameters() == fp32.num_parameters()
    assert fp32.threads >= 1
    files = sorted(p.name for p in onnx_runtime.onnx_dir(teacher).iterdir())
    assert {"model.onnx", "model.int8.onnx", "meta.json"} <= set(files)
    again = onnx_runtime.export_cached(teacher)  # cached: same files, no re-export
    assert again[0].stat().st_mtime == fp32.path.stat().st_mtime
    with pytest.raises(FileNotFoundError):
        onnx_runtime.OnnxClassifier(tmp_cache / "missing.onnx", teacher.tokenizer)


def test_number_formats_and_summary(teacher):
    from course_lib import evaluate

    formats = experiments.number_formats(teacher.num_parameters())
    assert list(formats.index[:4]) == ["fp32", "fp16", "bf16", "int8"]
    assert formats.loc["fp16", "largest"] == pytest.approx(65504.0)
    assert formats.loc["int8", "relative step"] == pytest.approx(1 / 127)
    assert formats.loc["fp32", "MB for this model"] == pytest.approx(4 * formats.loc["int8", "MB for this model"])
    bench = evaluate.Benchmark(TEXTS, [0, 1, 0, 1], latency_runs=2, warmup=1, throughput_n=4, batch_sizes=(1, 2))
    bench.run("fp32", teacher, progress=False)
    bench.run("fake int8", Q.fake_quantize_model(teacher, 8), progress=False)
    summary = experiments.int8_summary(bench, "fp32", batch=2)
    assert list(summary.index) == ["fake int8"]
    row = summary.iloc[0]
    assert row["x smaller"] == pytest.approx(1.0, rel=0.01) and 0 <= row["agreement"] <= 1
    assert row["flips"] == round((1 - row["agreement"]) * 4)


# --------------------------------------------------------------------------- sweep and widget


def test_sweep_is_cached_and_widget_redraws_fast(teacher, tmp_cache):
    texts = TEXTS * 2
    labels = [0, 1, 0, 1] * 2
    kwargs = dict(bits=[2, 8], schemes=["symmetric"], granularities=list(Q.GRANULARITIES), progress=False)
    first = experiments.bit_width_sweep(teacher, texts, labels, name="teacher", **kwargs)
    assert len(first) == 1 + 2 * 2 and set(first["bits"]) == {2, 8, 32}
    assert not first.attrs["cached"] and (tmp_cache / "sweeps").is_dir()
    ref = first[first["bits"] == 32].iloc[0]
    assert ref["agreement"] == 1.0 and ref["f1_drop"] == 0.0
    assert (first["packed_mb"][first["bits"] == 2] < first["packed_mb"][first["bits"] == 8].max()).all()
    second = experiments.bit_width_sweep(teacher, texts, labels, name="teacher", **kwargs)
    assert second.attrs["cached"]
    cols = ["bits", "scheme", "granularity", "f1", "accuracy", "agreement", "packed_mb"]
    assert second[cols].equals(first[cols])
    table = experiments.sweep_table(first, bits=(8, 2))
    assert list(table.columns) == ["fp32", "8 bits", "2 bits"]
    good = experiments.fewest_good_bits(first, max_drop=1000.0)
    assert len(good) == 2 and (good["fewest bits"] == 2).all()
    strict = first.assign(f1_drop=np.where(first["bits"] == 2, 50.0, first["f1_drop"]))
    assert (experiments.fewest_good_bits(strict, max_drop=2.0)["fewest bits"] == 8).all()

    name, weight = experiments.pick_weight(teacher)
    assert name.endswith(".weight") and weight.dim() == 2
    box = explorers.bit_width_explorer(weight, first, weight_name=name, initial_bits=8)
    slider, scheme, gran, readout = box.children[:4]
    assert "course-slider" in slider._dom_classes and "course-toggle" in scheme._dom_classes
    assert "course-readout" in readout._dom_classes and "course-plot" in box.children[4]._dom_classes
    before = readout.value
    start = time.perf_counter()
    slider.value = 2
    assert time.perf_counter() - start < 1.0
    assert readout.value != before and "2 bits" in readout.value and "teacher: spam-F1" in readout.value
    start = time.perf_counter()
    gran.value = "per_channel"
    scheme.value = "asymmetric"
    assert time.perf_counter() - start < 2.0
    assert "asymmetric, per-channel" in readout.value
    assert "Bit-width explorer" in repr(box)
    plt.close("all")


def test_cached_student(teacher, tmp_cache):
    import json

    from course_lib import config, models

    assert experiments.cached_student() is None
    fast = config.fast_mode()
    models.save_classifier(teacher, "loadable", {"name": "tiny · no KD", "settings": {
        "kind": "student", "method": "ce", "labelled": None, "seed": 0, "fast": fast}})
    broken = tmp_cache / "models" / "broken"  # preferred (KD) but has no weights: skipped
    broken.mkdir(parents=True)
    (broken / "meta.json").write_text(json.dumps({"name": "tiny · KD", "settings": {
        "kind": "student", "method": "kd", "labelled": None, "seed": 0, "fast": fast}}))
    other_mode = tmp_cache / "models" / "other"
    other_mode.mkdir()
    (other_mode / "meta.json").write_text(json.dumps({"name": "x", "settings": {"kind": "student", "fast": not fast}}))
    student = experiments.cached_student()
    assert student is not None and student.name == "student (tiny · no KD)"


# --------------------------------------------------------------------------- the exercise


def test_checker_accepts_the_reference():
    assert exercise.check_symmetric_quantize(exercise.reference_symmetric_quantize) == "passed"
    assert exercise.check_symmetric_quantize(_variant()) == "passed"  # float32 arithmetic, float scale


def _variant(bits_scale=None, round_fn=torch.round, clamp=True, dtype=torch.int8, zero_guard=True):
    def fn(x, bits, scale=None):
        qmax = 2 ** (bits - 1) - 1
        if scale is None:
            scale = float(x.abs().max()) / (bits_scale(bits) if bits_scale else qmax)
            if zero_guard and scale == 0:
                scale = 1.0
        v = round_fn(x / scale) if round_fn else x / scale
        if clamp:
            v = torch.clamp(v, -qmax, qmax)
        return (v.to(dtype) if dtype is not None else v), scale

    return fn


@pytest.mark.parametrize("fn, expected", [
    (_variant(bits_scale=lambda b: 2 ** (b - 1)), "wrong scale"),
    (_variant(bits_scale=lambda b: 2**b - 1), "wrong scale"),
    (_variant(bits_scale=lambda b: 127), "hard-coded 127"),
    (_variant(clamp=False), "no clamping"),
    (_variant(round_fn=None, dtype=None), "no rounding"),
    (_variant(round_fn=None), "no rounding"),
    (_variant(dtype=None), "floats instead of ints"),
    (_variant(dtype=torch.int64), "dtype"),
    (_variant(dtype=torch.uint8), "uint8"),
    (_variant(zero_guard=False), "all-zero"),
    (lambda x, bits, scale=None: torch.round(x), "pair"),
    (lambda x: (x, 1.0), "raised TypeError"),
])
def test_checker_names_the_mistake(fn, expected):
    message = exercise.check_symmetric_quantize(fn)
    assert message != "passed"
    assert expected in message, message
