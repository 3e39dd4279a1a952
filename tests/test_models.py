import time

import numpy as np
import pytest
import torch

from course_lib import models
from course_lib.models import OfflineError


def test_teacher_is_minilm_with_two_labels(teacher):
    assert teacher.model.config.num_hidden_layers == 6
    assert teacher.model.config.hidden_size == 384
    assert 22.5e6 < teacher.num_parameters() < 23.0e6
    logits = teacher.logits(["Free entry in a weekly competition!", "See you at 5"])
    assert logits.shape == (2, 2) and logits.dtype == np.float32


def test_packaged_name_resolves_locally():
    assert models.resolve_model_source(None) == str(models.packaged_teacher_path())
    assert models.resolve_model_source(models.TEACHER_HUB_NAME) == str(models.packaged_teacher_path())


def test_hub_name_offline_fails_fast_and_clearly(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(OfflineError, match="packaged teacher"):
        models.load_teacher("google-bert/bert-base-uncased")
    assert time.perf_counter() - start < 5


def test_missing_local_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        models.resolve_model_source(tmp_path)
    with pytest.raises(FileNotFoundError, match="not found"):
        models.resolve_model_source("./no/such/folder")


def test_seeded_head_is_reproducible():
    a = models.load_teacher(seed=1).model.classifier.weight
    b = models.load_teacher(seed=1).model.classifier.weight
    assert torch.equal(a, b)


def test_cache_key_is_stable_and_sensitive():
    assert models.cache_key(a=1, b="x") == models.cache_key(b="x", a=1)
    assert models.cache_key(a=1) != models.cache_key(a=2)


def test_save_then_load_gives_identical_logits(teacher, tmp_cache):
    texts = ["URGENT! You have won a 1 week FREE membership", "Ok lar... Joking wif u oni..."]
    key = models.cache_key(test="roundtrip")
    assert not models.is_cached(key)
    folder = models.save_classifier(teacher, key, {"note": "test"})
    assert (folder / "model.safetensors").is_file()
    assert not list(folder.glob("*.bin")) and not list(folder.glob("*.pt"))  # never pickle
    loaded = models.load_classifier(key)
    assert models.is_cached(key) and loaded.meta["note"] == "test"
    np.testing.assert_array_equal(teacher.logits(texts), loaded.logits(texts))


def test_load_missing_key_is_clear(tmp_cache):
    with pytest.raises(FileNotFoundError, match="train it first"):
        models.load_classifier("0123456789abcdef")


def test_size_mb_matches_fp32_parameter_bytes(teacher):
    expected = teacher.num_parameters() * 4 / 1e6
    assert abs(teacher.size_mb() - expected) / expected < 0.02


def test_sliced_and_factorized_layers_save_and_reload(tmp_cache):
    """A config cannot express per-layer FFN widths or a Linear split in two: the loader reads the shapes
    from the saved weights (structured pruning and low-rank factorization rely on this)."""
    from course_lib import students
    from transformers.pytorch_utils import prune_linear_layer

    clf = students.small_bert(layers=2, hidden=64, heads=2, intermediate=128, seed=3)
    clf.model.eval()
    layer = clf.model.bert.encoder.layer[0]
    keep = torch.arange(0, 128, 2)  # half the FFN neurons of layer 0
    layer.intermediate.dense = prune_linear_layer(layer.intermediate.dense, keep, dim=0)
    layer.output.dense = prune_linear_layer(layer.output.dense, keep, dim=1)
    dense = clf.model.bert.encoder.layer[1].attention.output.dense
    thin = torch.nn.Sequential(torch.nn.Linear(64, 8, bias=False), torch.nn.Linear(8, 64))
    with torch.no_grad():
        thin[1].bias.copy_(dense.bias)
    clf.model.bert.encoder.layer[1].attention.output.dense = thin
    texts = ["WINNER!! Claim your prize now", "see you at lunch"]
    before = clf.logits(texts)
    key = models.cache_key(test="edited-shapes")
    models.save_classifier(clf, key)
    loaded = models.load_classifier(key)
    assert loaded.meta["edited_shapes"] is True
    assert loaded.model.bert.encoder.layer[0].intermediate.dense.out_features == 64
    assert isinstance(loaded.model.bert.encoder.layer[1].attention.output.dense, torch.nn.Sequential)
    assert loaded.num_parameters() == clf.num_parameters()
    np.testing.assert_allclose(loaded.logits(texts), before, rtol=1e-5, atol=1e-6)


def test_plain_model_is_not_marked_edited(tmp_cache):
    from course_lib import students

    clf = students.small_bert(layers=1, hidden=32, heads=2, intermediate=64, seed=0)
    key = models.cache_key(test="plain-shapes")
    models.save_classifier(clf, key)
    assert models.load_classifier(key).meta["edited_shapes"] is False


def test_a_derived_model_does_not_inherit_the_cache_key(tmp_cache):
    """A quantized or trimmed copy must not pass for the cached model it came from (cached logits, fingerprints)."""
    from course_lib import quantize, students

    clf = students.small_bert(layers=1, hidden=32, heads=2, intermediate=64, seed=0)
    key = models.cache_key(test="derived")
    models.save_classifier(clf, key)
    loaded = models.load_classifier(key)
    derived = [quantize.pytorch_dynamic_int8(loaded),
               students.trim_vocabulary(loaded, ["free prize now", "see you at lunch"])]
    for d in derived:
        assert "key" not in d.meta and d.meta["derived_from"] == key
        assert models.fingerprint(d) != models.fingerprint(loaded)
