"""Tests for course_lib.augment (Tang et al. 2019 transfer-set augmentation)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from course_lib import augment, students


@pytest.fixture(scope="module")
def tok():
    return students._teacher_tokenizer()


@pytest.fixture(scope="module")
def clf(tok):
    """A small model with the teacher's vocabulary and hand-made embeddings: 'cash' and 'money' are close."""
    model = students.small_bert(layers=1, hidden=16, heads=2, intermediate=32, tokenizer=tok, seed=0)
    emb = model.model.get_input_embeddings().weight
    vocab = tok.get_vocab()
    with torch.no_grad():
        base = torch.randn(16, generator=torch.Generator().manual_seed(1))
        emb[vocab["cash"]] = base
        emb[vocab["money"]] = base + 0.01
    return model


FRAME = pd.DataFrame({"text": ["WIN cash now! Call 0800 to claim your prize", "ok see you at home later tonight",
                               "free entry in a weekly competition", "sorry, I'll call you back"],
                      "label": [1, 0, 1, 0]})


def test_words_of_splits_like_the_tokenizer(tok):
    text = "Don't miss: FREE $100 cash!!"
    words = augment.words_of(text)
    assert words[:3] == ["Don", "'", "t"] and words[-2:] == ["!", "!"]
    assert tok(" ".join(words))["input_ids"] == tok(text)["input_ids"]


def test_neighbour_table_excludes_the_word_and_is_cached(clf, tmp_cache):
    table = augment.neighbour_table(clf, k=4)
    assert table.neighbours.shape == (len(table.words), 4) and len(table.words) > 15000
    rows = np.arange(len(table.words))[:, None]
    assert not (table.neighbours == rows).any()  # never its own neighbour
    assert table.of("cash")[0] == "money" and table.of("Money")[0] == "cash"
    assert table.of("##ing") == [] and "[MASK]" not in table.words and all(w.isalpha() for w in table.words[:500])
    assert np.all(np.diff(table.similarity.astype(float), axis=1) <= 1e-3)  # most similar first
    files = list((tmp_cache / "neighbours").glob("*.npz"))
    assert len(files) == 1
    again = augment.neighbour_table(clf, k=4)
    np.testing.assert_array_equal(again.neighbours, table.neighbours)
    assert len(list((tmp_cache / "neighbours").glob("*.npz"))) == 1
    with pytest.raises(ValueError, match="k must"):
        augment.neighbour_table(clf, k=0)


def test_augment_text_operations(clf, tmp_cache):
    table = augment.neighbour_table(clf, k=1)
    rng = np.random.default_rng(0)
    text = "cash cash cash cash"
    assert augment.augment_text(text, rng, table, p_mask=1.0, p_sub=0.0, p_ngram=0.0) == "[MASK] [MASK] [MASK] [MASK]"
    assert augment.augment_text(text, rng, table, p_mask=0.0, p_sub=1.0, p_ngram=0.0) == "money money money money"
    assert augment.augment_text(text, rng, None, p_mask=0.0, p_sub=1.0, p_ngram=0.0) == text  # no table: kept
    long = " ".join(f"w{i}" for i in range(30))
    grams = [augment.augment_text(long, rng, None, 0.0, 0.0, p_ngram=1.0, max_ngram=3).split() for _ in range(30)]
    assert all(1 <= len(g) <= 3 for g in grams) and all(" ".join(g) in long for g in grams)
    with pytest.raises(ValueError, match="probability"):
        augment.augment_text(text, rng, table, p_mask=1.5)


def test_transfer_set_is_seeded_and_keeps_labels(clf, tmp_cache):
    table = augment.neighbour_table(clf, k=4)
    a = augment.augmented_transfer_set(FRAME, copies=3, seed=0, table=table, p_mask=0.2, p_sub=0.2)
    b = augment.augmented_transfer_set(FRAME, copies=3, seed=0, table=table, p_mask=0.2, p_sub=0.2)
    c = augment.augmented_transfer_set(FRAME, copies=3, seed=1, table=table, p_mask=0.2, p_sub=0.2)
    pd.testing.assert_frame_equal(a, b)
    assert not a["text"].equals(c["text"])
    assert len(a) == 4 * len(FRAME) and list(a.columns) == ["text", "label", "source", "copy"]
    assert (a["copy"] == 0).sum() == len(FRAME) and list(a.loc[a["copy"] == 0, "text"]) == FRAME["text"].tolist()
    np.testing.assert_array_equal(a["label"].to_numpy(), FRAME["label"].to_numpy()[a["source"].to_numpy()])
    aug = a[a["copy"] > 0]
    assert (aug["text"] != FRAME["text"].to_numpy()[aug["source"].to_numpy()]).mean() > 0.8  # copies differ
    with_rows = FRAME.assign(row=[10, 11, 12, 13])
    d = augment.augmented_transfer_set(with_rows, copies=1, seed=0, table=table, include_original=False)
    assert sorted(d["source"]) == [10, 11, 12, 13] and (d["copy"] == 1).all()
    with pytest.raises(Exception, match="label"):
        augment.augmented_transfer_set(FRAME[["text"]], copies=1)
