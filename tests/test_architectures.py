"""Quantization, ONNX export and distillation losses on other architectures and bad settings (issue 13, §5):
GPT-2 (whose projections are transformers' Conv1D, a transposed Linear), DistilBERT and RoBERTa, all small
random-weight configs with the teacher's tokenizer (nothing is downloaded)."""

from __future__ import annotations

import math

import pytest
import torch

from course_lib import distill, models, onnx_runtime, quantize, students

TEXTS = ["ok", "Free entry in 2 a wkly comp to win FA Cup final tkts", "see you at lunch tomorrow then"]


def _tokenizer():
    return students._teacher_tokenizer()


def gpt2():
    from transformers import GPT2Config, GPT2ForSequenceClassification

    tok = _tokenizer()
    cfg = GPT2Config(n_layer=2, n_embd=32, n_head=2, n_positions=128, vocab_size=len(tok), num_labels=2,
                     pad_token_id=tok.pad_token_id, bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id)
    torch.manual_seed(0)
    return models.TextClassifier(model=GPT2ForSequenceClassification(cfg), tokenizer=tok, name="gpt2-tiny")


def distilbert():
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    tok = _tokenizer()
    cfg = DistilBertConfig(n_layers=2, dim=32, n_heads=2, hidden_dim=64, vocab_size=len(tok),
                           max_position_embeddings=128, pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    return models.TextClassifier(model=DistilBertForSequenceClassification(cfg), tokenizer=tok, name="distilbert-tiny")


def roberta():
    from transformers import RobertaConfig, RobertaForSequenceClassification

    tok = _tokenizer()
    cfg = RobertaConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=2, intermediate_size=64,
                        vocab_size=len(tok), max_position_embeddings=130, pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    return models.TextClassifier(model=RobertaForSequenceClassification(cfg), tokenizer=tok, name="roberta-tiny")


BUILDERS = {"gpt2": gpt2, "distilbert": distilbert, "roberta": roberta}


def _projection_weights(model):
    """(name, weight, output axis) of every Linear and Conv1D: the layers a k-bit model must quantize."""
    from transformers.pytorch_utils import Conv1D

    out = []
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            out.append((name, module.weight, 0))
        elif isinstance(module, Conv1D):
            out.append((name, module.weight, 1))  # Conv1D stores (in, out)
    return out


@pytest.mark.parametrize("arch", sorted(BUILDERS))
@pytest.mark.parametrize("granularity", ["per_tensor", "per_channel"])
def test_fake_quantization_reaches_every_projection(arch, granularity):
    clf = BUILDERS[arch]()
    q = quantize.fake_quantize_model(clf, bits=3, granularity=granularity)
    weights = _projection_weights(q.model)
    assert weights
    for name, w, out_axis in weights:
        if granularity == "per_tensor":
            assert torch.unique(w).numel() <= 7, name  # 3-bit symmetric: 7 levels
        else:
            for j in range(0, w.shape[out_axis], max(1, w.shape[out_axis] // 4)):
                column = w.select(out_axis, j)
                assert torch.unique(column).numel() <= 7, (name, j)
    assert q.meta["quantization"]["layers"] == len(weights)
    # the original is untouched
    assert any(torch.unique(w).numel() > 7 for _, w, _ in _projection_weights(clf.model))


def test_gpt2_packed_size_counts_conv1d_weights_at_k_bits():
    clf = gpt2()
    parts = quantize.packed_size_parts(clf, bits=4, granularity="per_channel")
    conv_elements = sum(w.numel() for _, w, axis in _projection_weights(clf.model) if axis == 1)
    assert parts["weights"] >= math.ceil(conv_elements * 4 / 8)
    n_out = sum(w.shape[axis] for _, w, axis in _projection_weights(clf.model))
    assert parts["scales"] == 4 * n_out  # one fp32 scale per output channel of every Linear and Conv1D


@pytest.mark.parametrize("arch", sorted(BUILDERS))
def test_dynamic_int8_quantizes_every_projection_and_leaves_the_original_alone(arch):
    from transformers.pytorch_utils import Conv1D

    clf = BUILDERS[arch]()
    clf.model.train()  # the caller's mode must survive
    before = {k: v.clone() for k, v in clf.model.state_dict().items()}
    q = quantize.pytorch_dynamic_int8(clf)
    assert clf.model.training, "pytorch_dynamic_int8 changed the original model's mode"
    assert all(torch.equal(before[k], v) for k, v in clf.model.state_dict().items())
    assert not any(type(m) in (Conv1D, torch.nn.Linear) for m in q.model.modules()), \
        "a float projection was left in the int8 model"
    info = q.meta["quantization"]
    assert info["layers"] == len(_projection_weights(clf.model))
    if arch == "gpt2":
        assert info["converted_conv1d"] == sum(isinstance(m, Conv1D) for m in clf.model.modules())
    clf.model.eval()
    ref, got = clf.logits(TEXTS), q.logits(TEXTS)
    assert abs(ref - got).max() < 0.05  # int8 weights: close to fp32, not equal
    assert q.num_parameters() == clf.num_parameters()


def test_fake_quantization_refuses_layers_it_cannot_reach():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.MultiheadAttention(4, 2))
    with pytest.raises(TypeError, match="MultiheadAttention"):
        quantize.fake_quantize_model(model, bits=8)


@pytest.mark.parametrize("arch", sorted(BUILDERS))
def test_onnx_export_passes_inputs_by_name(arch, tmp_path):
    clf = BUILDERS[arch]()
    path = onnx_runtime.export_onnx(clf, tmp_path / "m.onnx")
    ort = onnx_runtime.OnnxClassifier(path, clf.tokenizer, max_length=clf.max_length, threads=1)
    assert abs(ort.logits(TEXTS) - clf.logits(TEXTS)).max() < 1e-4


def test_onnx_of_a_bare_module_says_how_to_wrap(teacher):
    with pytest.raises(TypeError, match=r"TextClassifier\(model=.*tokenizer="):
        onnx_runtime.onnx_variants(teacher.model)


@pytest.mark.parametrize("t", [float("nan"), float("inf"), -1.0, 0.0])
def test_distillation_loss_rejects_a_bad_temperature(t):
    s, te = torch.randn(4, 3), torch.randn(4, 3)
    with pytest.raises(ValueError, match="temperature"):
        distill.distillation_loss(s, te, torch.tensor([0, 1, 2, 0]), temperature=t)
    with pytest.raises(ValueError, match="temperature"):
        distill.mse_logit_loss(s, te, temperature=t)


def test_mse_loss_does_not_broadcast_mismatched_logits():
    with pytest.raises(ValueError, match=r"\(4, 3\).*\(1, 3\)"):
        distill.mse_logit_loss(torch.randn(4, 3), torch.randn(1, 3))
    with pytest.raises(ValueError, match="labels"):
        distill.distillation_loss(torch.randn(4, 3), torch.randn(4, 3), torch.tensor([0, 1]))
