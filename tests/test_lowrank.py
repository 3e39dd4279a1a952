"""Low-rank factorization (course_lib.lowrank) on single layers and on tiny random BERT-family models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib import lowrank, models
from course_lib.studies import lowrank as study

TEXTS = ["WINNER!! Claim your free prize now, call 0800 123", "see you at lunch?", "ok", "Your account was charged £5",
         "are we still on for tonight, I can bring the dvd", "URGENT: reply STOP to end, txt 87121 to win"]


def _linear(out_f=24, in_f=40, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Linear(in_f, out_f)


def _anisotropic_inputs(n_tokens=2000, in_f=40, seed=1):
    """Inputs whose directions have scales from 10 down to 0.01 (a few directions carry almost everything)."""
    g = torch.Generator().manual_seed(seed)
    basis, _ = torch.linalg.qr(torch.randn(in_f, in_f, generator=g))
    scales = torch.logspace(1, -2, in_f)
    return (torch.randn(n_tokens, in_f, generator=g) * scales) @ basis.T


@pytest.fixture(scope="module")
def tiny():
    from course_lib import students

    clf = students.small_bert(layers=2, hidden=32, heads=2, intermediate=64, seed=0)
    return clf


def test_full_rank_reproduces_the_layer():
    layer = _linear()
    pair = lowrank.factorize_linear(layer, 24)
    assert isinstance(pair, torch.nn.Sequential) and len(pair) == 2
    assert (pair[0].in_features, pair[0].out_features, pair[1].out_features) == (40, 24, 24)
    assert pair[0].bias is None and torch.equal(pair[1].bias, layer.bias)
    x = torch.randn(50, 40)
    torch.testing.assert_close(pair(x), layer(x), rtol=1e-5, atol=1e-5)


def test_sigma_sits_in_the_second_layer():
    layer = _linear()
    pair = lowrank.factorize_linear(layer, 5)
    first = pair[0].weight.detach().double()
    # V_rᵀ: orthonormal rows, so all of Σ is in the second layer
    torch.testing.assert_close(first @ first.T, torch.eye(5, dtype=torch.float64), atol=1e-5, rtol=0)
    s = lowrank.singular_values(layer)
    np.testing.assert_allclose(torch.linalg.norm(pair[1].weight.detach().double(), dim=0).numpy(), s[:5], rtol=1e-5)


@pytest.mark.parametrize("rank", [1, 3, 10, 23])
def test_frobenius_error_is_the_tail_of_the_spectrum(rank):
    layer = _linear()
    pair = lowrank.factorize_linear(layer, rank)
    s = lowrank.singular_values(layer)
    expected = float(np.sqrt((s[rank:] ** 2).sum()))
    assert lowrank.tail_error(layer, rank) == pytest.approx(expected)
    assert lowrank.weight_error(layer, pair) == pytest.approx(expected, rel=1e-4, abs=1e-5)
    # Eckart–Young: no other rank-r pair does better, e.g. a random projection of the same rank
    q, _ = torch.linalg.qr(torch.randn(40, rank))
    w = layer.weight.detach().double()
    other = torch.linalg.matrix_norm(w - (w @ q.double()) @ q.double().T)
    assert float(other) >= expected - 1e-6


def test_parameter_and_flop_counts_are_exact():
    layer = _linear(out_f=24, in_f=40)
    for r in (1, 7, 15):
        pair = lowrank.factorize_linear(layer, r)
        assert lowrank.count_parameters(pair) == lowrank.param_count(24, 40, r) == r * 64 + 24
    assert lowrank.count_parameters(layer) == lowrank.param_count(24, 40) == 24 * 40 + 24
    assert lowrank.param_count(24, 40, 3, bias=False) == 3 * 64
    assert lowrank.flop_count(1536, 384, tokens=64) == 2 * 64 * 1536 * 384
    assert lowrank.flop_count(1536, 384, rank=128, tokens=64) == 2 * 64 * 128 * (1536 + 384)


def test_break_even_rank():
    assert lowrank.break_even_rank(384, 384) == 192
    assert lowrank.break_even_rank(384, 1536) == 307
    assert lowrank.break_even_rank(1536, 384) == 307
    for m, n in [(384, 384), (384, 1536), (24, 40), (7, 3)]:
        r = lowrank.break_even_rank(m, n)
        assert lowrank.param_count(m, n, r) <= lowrank.param_count(m, n) < lowrank.param_count(m, n, r + 1)
    for bad in [(0, 5), (5, -1), (2.5, 4)]:
        with pytest.raises(ValueError, match="positive whole"):
            lowrank.break_even_rank(*bad)


def test_rank_above_break_even_is_refused(tiny):
    # FFN 64×32: break-even 21; attention 32×32: break-even 16
    with pytest.raises(ValueError, match="break-even rank is 21"):
        lowrank.factorize_model(tiny, rank=22)
    with pytest.raises(ValueError, match="bigger"):
        lowrank.factorize_model(tiny, rank=17, layers="attention")
    done = lowrank.factorize_model(tiny, rank=21)
    assert done.num_parameters() <= tiny.num_parameters()


def test_energy_above_break_even_skips_with_a_warning(tiny):
    with pytest.warns(UserWarning, match="left unfactorized"):
        out = lowrank.factorize_model(tiny, energy=1.0)
    per_layer = out.meta["lowrank"]["per_layer"]
    assert all(v["done"].startswith("skipped") for v in per_layer.values())
    assert out.num_parameters() == tiny.num_parameters()
    s = lowrank.singular_values(tiny.model.bert.encoder.layer[0].intermediate.dense)
    r = lowrank.rank_for_energy(s, 0.5)
    assert lowrank.energy_curve(s)[r - 1] >= 0.5 > (lowrank.energy_curve(s)[r - 2] if r > 1 else 0)
    half = lowrank.factorize_model(tiny, energy=0.5)
    info = half.meta["lowrank"]["per_layer"]["bert.encoder.layer.0.intermediate.dense"]
    assert info["rank"] == r and info["done"] == "factorized" and info["energy_kept"] >= 0.5


def test_whitened_lowers_the_output_error_on_anisotropic_inputs():
    layer = _linear()
    x = _anisotropic_inputs()
    cov = x.double().T @ x.double() / len(x)
    for r in (2, 5, 10):
        plain = lowrank.factorize_linear(layer, r)
        aware = lowrank.factorize_linear(layer, r, covariance=cov)
        e_plain, e_aware = lowrank.output_error(layer, plain, x), lowrank.output_error(layer, aware, x)
        assert e_aware < 0.8 * e_plain, (r, e_plain, e_aware)
        assert lowrank.weight_error(layer, aware) >= lowrank.weight_error(layer, plain) - 1e-6  # it pays in weight error
    torch.testing.assert_close(lowrank.factorize_linear(layer, 24, covariance=cov)(x), layer(x), rtol=1e-4, atol=1e-4)


def test_model_whitened_beats_svd_and_records_output_errors(tiny):
    names = list(lowrank.select_layers(tiny, "ffn"))
    assert names == ["bert.encoder.layer.0.intermediate.dense", "bert.encoder.layer.0.output.dense",
                     "bert.encoder.layer.1.intermediate.dense", "bert.encoder.layer.1.output.dense"]
    plain = lowrank.factorize_model(tiny, rank=6, texts=TEXTS)
    aware = lowrank.factorize_model(tiny, rank=6, method="whitened", texts=TEXTS)
    inputs = lowrank.calibration_inputs(tiny, TEXTS, names)
    n_tokens = int(tiny.encode(TEXTS)["attention_mask"].sum())
    for name in names:
        assert inputs[name].shape[0] == n_tokens  # non-padding tokens only
        layer = tiny.model.get_submodule(name)
        for clf in (plain, aware):
            measured = lowrank.output_error(layer, clf.model.get_submodule(name), inputs[name])
            assert clf.meta["lowrank"]["per_layer"][name]["output_error"] == pytest.approx(measured, rel=1e-3, abs=1e-6)
        errors = [clf.meta["lowrank"]["per_layer"][name]["output_error"] for clf in (aware, plain)]
        assert errors[0] < errors[1], (name, errors)


def test_original_untouched_counts_real_and_save_reload_same_logits(tiny, tmp_cache):
    before_state = {k: v.clone() for k, v in tiny.model.state_dict().items()}
    before_logits = tiny.logits(TEXTS)
    out = lowrank.factorize_model(tiny, rank=4, layers="all", method="whitened", texts=TEXTS)
    for k, v in tiny.model.state_dict().items():
        assert torch.equal(v, before_state[k]), k
    np.testing.assert_array_equal(tiny.logits(TEXTS), before_logits)
    assert isinstance(tiny.model.bert.encoder.layer[0].intermediate.dense, torch.nn.Linear)
    assert isinstance(out.model.bert.encoder.layer[0].attention.self.query, torch.nn.Sequential)
    record = out.meta["lowrank"]
    assert record["params_before"] == tiny.num_parameters() and record["params_after"] == out.num_parameters()
    saved = sum(v["params_before"] - v["params_after"] for v in record["per_layer"].values())
    assert tiny.num_parameters() - out.num_parameters() == saved > 0
    assert len(record["per_layer"]) == 2 * 6
    key = models.cache_key(test="lowrank-save")
    models.save_classifier(out, key)
    loaded = models.load_classifier(key)
    assert loaded.meta["edited_shapes"] is True and loaded.meta["lowrank"]["method"] == "whitened"
    assert loaded.num_parameters() == out.num_parameters()
    np.testing.assert_allclose(loaded.logits(TEXTS), out.logits(TEXTS), rtol=1e-5, atol=1e-6)


def test_per_layer_ranks(tiny):
    ranks = {"bert.encoder.layer.0.intermediate.dense": 3, "bert.encoder.layer.1.attention.self.value": 5}
    out = lowrank.factorize_model(tiny, rank=ranks)
    assert out.model.bert.encoder.layer[0].intermediate.dense[0].out_features == 3
    assert out.model.bert.encoder.layer[1].attention.self.value[0].out_features == 5
    assert isinstance(out.model.bert.encoder.layer[0].output.dense, torch.nn.Linear)
    assert set(out.meta["lowrank"]["per_layer"]) == set(ranks)
    assert len(study.summary(out)) == 2
    with pytest.raises(ValueError, match="Not factorizable"):
        lowrank.factorize_model(tiny, rank={"bert.pooler.dense": 3})
    with pytest.raises(ValueError, match="dict is empty"):
        lowrank.factorize_model(tiny, rank={})
    with pytest.raises(ValueError, match="already names the layers"):
        lowrank.factorize_model(tiny, rank=ranks, layers="ffn")
    with pytest.raises(ValueError, match="rank of bert.encoder.layer.0.output.dense"):
        lowrank.factorize_model(tiny, rank={"bert.encoder.layer.0.output.dense": 0})


def test_factorized_model_trains(tiny):
    import pandas as pd
    from course_lib import train

    out = lowrank.factorize_model(tiny, rank=4)
    first = out.model.bert.encoder.layer[0].intermediate.dense[0].weight.detach().clone()
    df = pd.DataFrame({"text": TEXTS * 4, "label": [1, 0, 0, 1, 0, 1] * 4})
    history = train.fine_tune(out, df, epochs=1, batch_size=8, progress=False)
    assert all(np.isfinite(history["loss"]))
    assert not torch.equal(first, out.model.bert.encoder.layer[0].intermediate.dense[0].weight)
    assert out.logits(TEXTS).shape == (len(TEXTS), 2)


def _wrap(model):
    from course_lib import students

    tok = students._teacher_tokenizer()
    return models.TextClassifier(model=model.eval(), tokenizer=tok, max_length=32, name=type(model).__name__)


@pytest.mark.parametrize("arch", ["distilbert", "roberta"])
def test_other_bert_family_models(arch, tmp_cache):
    from course_lib import students

    vocab = len(students._teacher_tokenizer())
    torch.manual_seed(0)
    if arch == "distilbert":
        from transformers import DistilBertConfig, DistilBertForSequenceClassification

        model = DistilBertForSequenceClassification(DistilBertConfig(vocab_size=vocab, dim=32, n_layers=2, n_heads=2,
                                                                     hidden_dim=64, max_position_embeddings=64))
    else:
        from transformers import RobertaConfig, RobertaForSequenceClassification

        model = RobertaForSequenceClassification(RobertaConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=2,
                                                               num_attention_heads=2, intermediate_size=64,
                                                               max_position_embeddings=64, pad_token_id=0))
    clf = _wrap(model)
    assert set(lowrank.select_layers(clf, "all").values()) == set(lowrank.GROUPS)
    at_break_even = lowrank.factorize_model(clf, rank=16, layers="attention")  # 32×32: 16·64 + 32 = 32·32 + 32
    assert at_break_even.num_parameters() == clf.num_parameters()
    out = lowrank.factorize_model(clf, rank=4, layers=["ffn_in", "attn_out"], method="whitened", texts=TEXTS)
    assert len(out.meta["lowrank"]["per_layer"]) == 4
    assert out.num_parameters() < clf.num_parameters()
    key = models.cache_key(test=f"lowrank-{arch}")
    models.save_classifier(out, key)
    np.testing.assert_allclose(models.load_classifier(key).logits(TEXTS), out.logits(TEXTS), rtol=1e-5, atol=1e-6)


def test_gpt2_conv1d_layer_factorizes_but_model_is_refused():
    from transformers import GPT2Config, GPT2ForSequenceClassification
    from transformers.pytorch_utils import Conv1D

    conv = Conv1D(24, 40)  # nf=out, nx=in: weight (40, 24)
    torch.nn.init.normal_(conv.weight)
    torch.nn.init.normal_(conv.bias)
    x = torch.randn(10, 40)
    pair = lowrank.factorize_linear(conv, 24)
    torch.testing.assert_close(pair(x), conv(x), rtol=1e-4, atol=1e-4)
    rank5 = lowrank.factorize_linear(conv, 5)
    assert lowrank.tail_error(conv, 5) == pytest.approx(lowrank.weight_error(conv, rank5), rel=1e-4)
    model = GPT2ForSequenceClassification(GPT2Config(vocab_size=100, n_embd=32, n_layer=1, n_head=2, bos_token_id=0,
                                                     eos_token_id=0))
    with pytest.raises(TypeError, match="Conv1D"):
        lowrank.factorize_model(model, rank=4)


def test_bad_inputs_give_clear_errors(tiny):
    layer = _linear()
    for bad in (0, -1, 25, 2.5, True):
        with pytest.raises(ValueError, match="rank must be a whole number"):
            lowrank.factorize_linear(layer, bad)
    for bad in (0, 0, -3, 2.0):
        with pytest.raises(ValueError, match="rank"):
            lowrank.factorize_model(tiny, rank=bad)
    for bad in (0, -0.1, 1.5, "0.5"):
        with pytest.raises(ValueError, match=r"energy .* \(0, 1\]"):
            lowrank.factorize_model(tiny, energy=bad)
    with pytest.raises(ValueError, match="exactly one"):
        lowrank.factorize_model(tiny)
    with pytest.raises(ValueError, match="exactly one"):
        lowrank.factorize_model(tiny, rank=3, energy=0.5)
    with pytest.raises(ValueError, match="Unknown layer group 'mlp'"):
        lowrank.factorize_model(tiny, rank=3, layers="mlp")
    with pytest.raises(ValueError, match="method must be one of"):
        lowrank.factorize_model(tiny, rank=3, method="asvd")
    with pytest.raises(ValueError, match="needs calibration texts"):
        lowrank.factorize_model(tiny, rank=3, method="whitened")
    with pytest.raises(TypeError, match="TextClassifier or a transformers model"):
        lowrank.factorize_model(torch.nn.Sequential(torch.nn.Linear(8, 8)), rank=2)
    with pytest.raises(TypeError, match="need the tokenizer"):
        lowrank.factorize_model(tiny.model, rank=2, texts=TEXTS)
    with pytest.raises(TypeError, match="Linear"):
        lowrank.factorize_linear(torch.nn.Conv2d(3, 3, 1), 1)
    with pytest.raises(ValueError, match="from 0 to 24"):
        lowrank.tail_error(layer, -1)
    with pytest.raises(ValueError, match="covariance must be"):
        lowrank.factorize_linear(layer, 3, covariance=torch.eye(24))
    with pytest.raises(ValueError, match="not a layer"):
        study.spectrum(tiny, "bert.encoder.layer.9.output.dense")


def test_spectrum_and_energy_of_a_low_rank_matrix(tiny):
    table = study.spectrum(tiny, "bert.encoder.layer.0.intermediate.dense")
    assert list(table.columns) == ["rank", "sigma", "energy"] and len(table) == 32
    assert table["sigma"].is_monotonic_decreasing and table["energy"].iloc[-1] == pytest.approx(1.0)
    g = torch.Generator().manual_seed(0)
    low = torch.randn(60, 3, generator=g, dtype=torch.float64) @ torch.randn(3, 50, generator=g, dtype=torch.float64)
    s = lowrank.singular_values(low)
    assert lowrank.rank_for_energy(s, 0.999999) == 3  # the product of two thin matrices has rank 3 exactly
    assert lowrank.tail_error(low, 3) < 1e-10 * float(torch.linalg.matrix_norm(low))


def test_bare_transformers_model_gives_a_model(tiny):
    out = lowrank.factorize_model(tiny.model, rank=4)
    assert isinstance(out, torch.nn.Module) and out is not tiny.model
    assert isinstance(out.bert.encoder.layer[1].output.dense, torch.nn.Sequential)
    assert lowrank.count_parameters(out) < lowrank.count_parameters(tiny.model)


def test_prepared_decomposition_gives_the_same_model_and_is_checked(tiny):
    prepared = lowrank.decompose_model(tiny, "all", "whitened", TEXTS)
    a = lowrank.factorize_model(tiny, rank=4, layers="ffn", method="whitened", prepared=prepared)
    b = lowrank.factorize_model(tiny, rank=4, layers="ffn", method="whitened", texts=TEXTS)
    np.testing.assert_allclose(a.logits(TEXTS), b.logits(TEXTS), rtol=1e-5, atol=1e-5)
    assert a.meta["lowrank"]["calibration_texts"] == len(TEXTS)
    assert all("output_error" in v for v in a.meta["lowrank"]["per_layer"].values())
    with pytest.raises(ValueError, match="same method"):
        lowrank.factorize_model(tiny, rank=4, method="svd", prepared=prepared)
    with pytest.raises(ValueError, match="lacks"):
        lowrank.factorize_model(tiny, rank=4, layers="ffn", prepared=lowrank.decompose_model(tiny, "attention"))


def test_shared_moments_give_the_same_decomposition_and_are_checked(tiny):
    moments = lowrank.input_moments(tiny, TEXTS, lowrank.select_layers(tiny, "all"))
    shared = lowrank.decompose_model(tiny, "ffn", "whitened", TEXTS, moments=moments)
    own = lowrank.decompose_model(tiny, "ffn", "whitened", TEXTS)
    for name in own["layers"]:
        for a, b in zip(shared["layers"][name]["parts"], own["layers"][name]["parts"]):
            torch.testing.assert_close(a, b)
    a = lowrank.factorize_model(tiny, rank=4, layers="ffn", method="whitened", prepared=shared)
    b = lowrank.factorize_model(tiny, rank=4, layers="ffn", method="whitened", prepared=own)
    assert [v["output_error"] for v in a.meta["lowrank"]["per_layer"].values()] == pytest.approx(
        [v["output_error"] for v in b.meta["lowrank"]["per_layer"].values()])
    with pytest.raises(ValueError, match="lack"):
        lowrank.decompose_model(tiny, "all", "whitened", TEXTS, moments={n: moments[n] for n in list(moments)[:1]})
    with pytest.raises(ValueError, match="texts="):
        lowrank.decompose_model(tiny, "ffn", "svd", moments=moments)
