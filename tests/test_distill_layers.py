"""Tests for course_lib.distill_layers: intermediate-layer losses, layer map, embedding init, the loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib import distill_layers as dl, students


@pytest.fixture(scope="module")
def tok():
    return students._teacher_tokenizer()


def _attn(seed, heads=2, batch=2, seq=5):
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(torch.randn(batch, heads, seq, seq, generator=g), dim=-1)


MASK = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])


def test_hidden_state_loss_zero_for_identical_and_gradient_sign():
    g = torch.Generator().manual_seed(0)
    teacher = torch.randn(2, 5, 8, generator=g)
    assert float(dl.hidden_state_loss(teacher.clone(), teacher, None, MASK)) == 0.0
    proj = torch.nn.Linear(4, 8, bias=False)
    student = torch.randn(2, 5, 4, generator=g, requires_grad=True)
    loss = dl.hidden_state_loss(student, teacher, proj, MASK)
    loss.backward()
    with torch.no_grad():  # a small step against the gradient moves the student towards the teacher
        lower = dl.hidden_state_loss(student - 1e-2 * student.grad, teacher, proj, MASK)
        higher = dl.hidden_state_loss(student + 1e-2 * student.grad, teacher, proj, MASK)
    assert float(lower) < float(loss.detach()) < float(higher)
    # padded tokens do not count
    noisy = teacher.clone()
    noisy[1, 3:] += 100.0
    assert float(dl.hidden_state_loss(noisy, teacher, None, MASK)) == 0.0
    # a hand-computed value: every real token off by 1 in every dimension -> 1
    assert float(dl.hidden_state_loss(teacher + 1.0, teacher, None, MASK)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="projection"):
        dl.hidden_state_loss(student, teacher, None, MASK)


def test_attention_loss_zero_for_identical_and_gradient_sign():
    teacher = _attn(1, heads=12)
    assert float(dl.attention_loss(teacher.clone(), teacher, MASK)) == pytest.approx(0.0, abs=1e-6)
    same_mean = teacher.mean(dim=1, keepdim=True).repeat(1, 2, 1, 1)  # 2 heads with the teacher's average
    assert float(dl.attention_loss(same_mean, teacher, MASK)) == pytest.approx(0.0, abs=1e-6)
    scores = torch.randn(2, 2, 5, 5, generator=torch.Generator().manual_seed(3), requires_grad=True)
    loss = dl.attention_loss(torch.softmax(scores, -1), teacher, MASK)
    assert float(loss) > 0
    loss.backward()
    with torch.no_grad():
        lower = dl.attention_loss(torch.softmax(scores - 0.5 * scores.grad, -1), teacher, MASK)
    assert float(lower) < float(loss)
    with pytest.raises(ValueError, match="share"):
        dl.attention_loss(_attn(0, seq=4), teacher, None)


def test_layer_map():
    assert dl.layer_map(2, 6) == [(1, 3), (2, 6)]
    assert dl.layer_map(3, 6) == [(1, 2), (2, 4), (3, 6)]
    assert dl.layer_map(4, 4) == [(1, 1), (2, 2), (3, 3), (4, 4)]
    with pytest.raises(ValueError):
        dl.layer_map(7, 6)


def test_embedding_init_is_the_teachers_pca(tok):
    teacher = students.small_bert(layers=2, hidden=48, heads=2, intermediate=64, tokenizer=tok, seed=1)
    student = students.small_bert(layers=1, hidden=16, heads=2, intermediate=32, tokenizer=tok, seed=2)
    info = dl.init_embeddings_from_teacher(student, teacher)
    assert info["width"] == 16 and 16 / 48 < info["explained_variance"] < 1
    e_t = teacher.model.get_input_embeddings().weight.detach().double()
    e_s = student.model.get_input_embeddings().weight.detach().double()
    centred = e_t - e_t.mean(0)
    # the student's rows are the teacher's projected on orthonormal directions: inner products kept as far as PCA can
    assert torch.allclose(e_s.mean(0), torch.zeros(16, dtype=torch.float64), atol=1e-5)
    var_kept = float((e_s ** 2).sum() / (centred ** 2).sum())
    assert var_kept == pytest.approx(info["explained_variance"], rel=1e-3)
    assert student.meta["embedding_init"]["width"] == 16
    wide = students.small_bert(layers=1, hidden=64, heads=2, intermediate=32, tokenizer=tok)
    with pytest.raises(ValueError, match="wider"):
        dl.init_embeddings_from_teacher(wide, teacher)


def test_distill_layers_lowers_both_losses(tok):
    teacher = students.small_bert(layers=2, hidden=48, heads=4, intermediate=64, tokenizer=tok, seed=1)
    student = students.small_bert(layers=1, hidden=16, heads=2, intermediate=32, tokenizer=tok, seed=2, dropout=0.0)
    texts = [f"message number {i} about {w}" for i in range(24) for w in ("cash", "home")]
    history = dl.distill_layers(student, teacher, texts, epochs=6, lr=3e-3, batch_size=16, progress=False)
    report = dl.layer_report(history)
    assert history["pairs"] == [(0, 0), (1, 2)] and history["steps"] == 18
    assert report["hidden_last"] < report["hidden_first"] and report["attention_last"] < report["attention_first"]
    assert student.model.config._attn_implementation == "sdpa" and not student.model.training  # restored
    hidden_only = dl.distill_layers(student, teacher, texts[:16], attention_weight=0.0, progress=False)
    assert np.all(np.array(hidden_only["attention"]) == 0.0)
    last_only = dl.distill_layers(student, teacher, texts[:16], student_layers=[1], progress=False)
    assert last_only["pairs"] == [(0, 0), (1, 2)]
    with pytest.raises(ValueError, match="not layers"):
        dl.distill_layers(student, teacher, texts[:16], student_layers=[3], progress=False)
    with pytest.raises(ValueError, match="both"):
        dl.distill_layers(student, teacher, texts, hidden_weight=0.0, attention_weight=0.0, progress=False)


def test_attention_of_the_last_layer_only(tok):
    teacher = students.small_bert(layers=4, hidden=48, heads=4, intermediate=64, tokenizer=tok, seed=1)
    student = students.small_bert(layers=2, hidden=16, heads=2, intermediate=32, tokenizer=tok, seed=2, dropout=0.0)
    texts = [f"message {i} about {w}" for i in range(8) for w in ("cash", "home")]
    every = dl.distill_layers(student, teacher, texts, progress=False)
    assert every["attention_pairs"] == [(1, 2), (2, 4)]
    last = dl.distill_layers(student, teacher, texts, attention_layers="last", progress=False)
    assert last["attention_pairs"] == [(2, 4)] and last["pairs"] == [(0, 0), (1, 2), (2, 4)]
    with pytest.raises(ValueError, match="'all' or 'last'"):
        dl.distill_layers(student, teacher, texts, attention_layers="first", progress=False)


def test_cls_self_attention_is_a_share_per_layer(tok):
    clf = students.small_bert(layers=2, hidden=16, heads=2, intermediate=32, tokenizer=tok, seed=3)
    shares = dl.cls_self_attention(clf, ["free cash now", "see you at home tonight", "ok"])
    assert len(shares) == 2 and all(0.0 < s < 1.0 for s in shares)
    assert clf.model.config._attn_implementation == "sdpa"  # restored
    with torch.no_grad():  # zero queries: every score is 0, so [CLS] spreads its attention evenly
        att = clf.model.bert.encoder.layer[0].attention.self
        att.query.weight.zero_()
        att.query.bias.zero_()
    n_tokens = len(clf.tokenizer("free cash now")["input_ids"])  # [CLS] free cash now [SEP]
    assert dl.cls_self_attention(clf, ["free cash now"])[0] == pytest.approx(1 / n_tokens, abs=1e-6)


def test_attention_pairs_and_an_empty_text_list(tok):
    assert dl.attention_pairs(2, 6, "all") == [(1, 3), (2, 6)]
    assert dl.attention_pairs(2, 6, "last") == [(2, 6)]
    with pytest.raises(ValueError, match="'all' or 'last'"):
        dl.attention_pairs(2, 6, "middle")
    clf = students.small_bert(layers=1, hidden=16, heads=2, intermediate=32, tokenizer=tok, seed=3)
    with pytest.raises(Exception, match="at least one text"):
        dl.cls_self_attention(clf, [])
