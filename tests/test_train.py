import torch
import numpy as np
import pandas as pd
import pytest

from course_lib import data, evaluate, models, train
from course_lib.data import DataError


def test_predict_shapes_and_empty(teacher):
    p = train.predict(teacher, ["hello there", "WIN cash now!!!", "ok"])
    assert p.logits.shape == (3, 2) and p.probs.shape == (3, 2) and p.labels.shape == (3,)
    np.testing.assert_allclose(p.probs.sum(axis=1), 1.0, rtol=1e-5)
    empty = train.predict(teacher, [])
    assert empty.logits.shape == (0, 2) and empty.labels.shape == (0,) and empty.spam_prob.shape == (0,)


def test_predict_keeps_order_when_batching_by_length(teacher):
    texts = ["a much longer message than the others, with many words in it", "hi", "medium length text"]
    together = train.predict(teacher, texts, batch_size=2).logits
    alone = np.vstack([train.predict(teacher, [t]).logits for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-4)


def test_very_long_text_is_truncated_not_an_error(teacher):
    p = train.predict(teacher, ["spam " * 5000])
    assert p.logits.shape == (1, 2) and np.isfinite(p.logits).all()


def test_bad_texts_are_clear_errors(teacher):
    with pytest.raises(DataError, match="empty"):
        train.predict(teacher, ["fine", ""])
    with pytest.raises(DataError, match="single string"):
        train.predict(teacher, "not a list")


def test_length_bucketed_batches_cover_every_index_once():
    lengths = list(np.random.default_rng(0).integers(3, 120, size=1000))
    batches = train.length_bucketed_batches(lengths, batch_size=32, seed=0)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(1000))
    assert all(len(b) <= 32 for b in batches)
    spread = np.mean([max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches])
    assert spread < 10  # random batches of 32 would spread ~100 tokens
    assert batches != train.length_bucketed_batches(lengths, batch_size=32, seed=1)


def test_micro_batches_respect_the_token_budget():
    lengths = [10, 12, 30, 31, 64, 128, 5]
    batch = [0, 1, 2, 3, 4, 5, 6]
    parts = train.micro_batches(batch, lengths, max_tokens=128)
    assert [i for p in parts for i in p] == batch  # same rows, same order
    assert all(len(p) == 1 or len(p) * max(lengths[i] for i in p) <= 128 for p in parts)
    assert [5] in parts  # a row as long as the budget stands alone
    assert train.micro_batches(batch, lengths, max_tokens=None) == [batch]
    assert train.micro_batches(batch, lengths, max_tokens=10_000) == [batch]
    assert train.micro_batches([], lengths, max_tokens=64) == []
    with pytest.raises(ValueError, match="positive"):
        train.micro_batches(batch, lengths, max_tokens=0)


def test_micro_batched_step_equals_the_whole_batch(splits):
    """Split into micro-batches, a step gives the same loss and the same update as the whole batch."""
    import torch

    from course_lib import students

    rows = data.validate(splits.train.head(24))
    results = []
    for max_tokens in (None, 64):
        clf = students.small_bert(seed=0, dropout=0.0)  # no dropout: both runs compute the same function
        history = train.fine_tune(clf, rows, epochs=1, batch_size=24, lr=1e-3, progress=False, max_tokens=max_tokens)
        results.append((history["loss"], [p.detach().clone() for p in clf.model.parameters()]))
    (loss_a, params_a), (loss_b, params_b) = results
    np.testing.assert_allclose(loss_a, loss_b, rtol=1e-4)
    for a, b in zip(params_a, params_b):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_fine_tune_learns_a_small_set(splits):
    spam = splits.train[splits.train["label"] == 1].head(64)
    ham = splits.train[splits.train["label"] == 0].head(64)
    small = data.validate(pd.concat([spam, ham]))
    clf = models.load_teacher(seed=0)
    before = evaluate.quality(small["label"], train.predict(clf, small["text"].tolist()).labels)
    history = train.fine_tune(clf, small, epochs=3, batch_size=16, progress=False)
    after = evaluate.quality(small["label"], train.predict(clf, small["text"].tolist()).labels)
    assert history["steps"] == 3 * 8 and len(history["loss"]) == 24 and history["seconds"] > 0
    assert np.mean(history["loss"][-6:]) < np.mean(history["loss"][:6])
    assert after["f1"] > max(before["f1"], 0.8)


def test_finetuned_teacher_is_cached_and_reloaded(finetuned, splits):
    key = models.cache_key(kind="teacher", **train.teacher_settings(0))
    folder = models.model_dir(key)
    stamp = (folder / "model.safetensors").stat().st_mtime
    again = train.finetuned_teacher(progress=False)
    assert (folder / "model.safetensors").stat().st_mtime == stamp  # loaded, not retrained
    texts = splits.test["text"].tolist()[:20]
    np.testing.assert_array_equal(finetuned.logits(texts), again.logits(texts))
    q = evaluate.quality(splits.test["label"], train.predict(finetuned, splits.test["text"].tolist()).labels)
    assert q["f1"] > 0.5  # even the fast-mode teacher finds most spam


def test_freeze_lower_freezes_the_embeddings_and_the_first_blocks_only(splits):
    clf = models.load_teacher(seed=0)
    model = clf.model
    base = model.bert
    frozen = train.freeze_lower(clf, layers=2)
    expected = sum(p.numel() for p in base.embeddings.parameters()) + sum(
        p.numel() for block in base.encoder.layer[:2] for p in block.parameters())
    assert frozen == expected
    assert not any(p.requires_grad for p in base.encoder.layer[1].parameters())
    assert all(p.requires_grad for p in base.encoder.layer[2].parameters())
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    small = data.validate(splits.train.head(48))
    train.fine_tune(clf, small, epochs=1, batch_size=16, progress=False)
    after = dict(model.named_parameters())
    for name, value in before.items():
        if name.startswith(("bert.embeddings.", "bert.encoder.layer.0.", "bert.encoder.layer.1.")):
            assert torch.equal(value, after[name].detach()), f"{name} is frozen but changed"
    for name in ("bert.encoder.layer.2.attention.self.query.weight", "bert.encoder.layer.5.output.dense.weight",
                 "classifier.weight"):
        assert not torch.equal(before[name], after[name].detach()), f"{name} should have been trained"


def test_freeze_lower_bad_input_is_a_clear_error():
    clf = models.load_teacher(seed=0)
    with pytest.raises(ValueError, match="between 0 and 6"):
        train.freeze_lower(clf, layers=7)
    with pytest.raises(TypeError, match="BERT-family"):
        train.freeze_lower(torch.nn.Linear(2, 2), layers=1)
    for p in clf.model.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="nothing to fine-tune"):
        train.fine_tune(clf, data.validate(pd.DataFrame({"text": ["a", "b"], "label": [0, 1]})), progress=False)


def test_a_cache_entry_made_by_other_code_is_not_used(finetuned, monkeypatch):
    key = models.cache_key(kind="teacher", **train.teacher_settings(0))
    assert models.is_cached(key)
    monkeypatch.setattr(models, "CACHE_VERSION", models.CACHE_VERSION + 1)
    stale = models.cache_key(kind="teacher", **train.teacher_settings(0))
    assert stale != key and not models.is_cached(stale)  # other code version: the teacher would train again


def test_a_cached_teacher_is_loaded_without_training(finetuned, monkeypatch, capsys):
    def no_training(*args, **kwargs):
        raise AssertionError("the cached teacher was trained again")

    monkeypatch.setattr(train, "fine_tune", no_training)
    again = train.finetuned_teacher(progress=True)
    out = capsys.readouterr().out
    assert "Loaded the fine-tuned teacher from the cache" in out and "retrain=True" in out
    assert again.name == finetuned.name
