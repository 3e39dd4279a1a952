"""course_lib.studies.pruning on a tiny random BERT (seconds): tables are cached, keys follow the settings,
sizes are honest, the masks pitfall is real."""

from __future__ import annotations

import pytest
import torch

from course_lib import prune
from course_lib.studies import pruning as study
from test_prune import tiny  # noqa: E402  (tests/ is on sys.path under pytest)

SMALL = dict(levels=[0.0, 0.5], tuned_levels=[0.5], calibration=12, val_n=40, ft_rows=16, ft_batch=8,
             scan_val_n=30, scan_levels=[0.9], scan_layers=True, table_ratios=[0.5], iterative_target=0.5,
             iterative_steps=2, latency_runs=1, recovery_rows=24, recovery_batch=8, target_ratio=0.5)


@pytest.fixture(scope="module")
def bert():
    return tiny("bert")


def test_sweep_is_cached_and_keyed_by_its_settings(bert, tmp_cache):
    settings = study.plan(**SMALL)
    first = study.sparsity_sweep(bert, settings, progress=False)
    assert not first.attrs["cached"]
    assert set(first["method"]) == set(study.METHODS)
    assert len(first) == 4 * (2 + 1 + 1)  # per method: level 0 (twice: tuned and not), 0.5 one-shot, 0.5 tuned
    again = study.sparsity_sweep(bert, settings, progress=False)
    assert again.attrs["cached"] and again.attrs["path"] == first.attrs["path"]
    assert again[["f1", "sparsity"]].equals(first[["f1", "sparsity"]])
    other = study.sparsity_sweep(bert, study.plan(**{**SMALL, "levels": [0.0, 0.6]}), progress=False)
    assert not other.attrs["cached"] and other.attrs["path"] != first.attrs["path"]
    row = first[(first["method"] == "magnitude_global") & ~first["tuned"] & (first["level"] == 0.5)].iloc[0]
    assert row["sparsity"] == pytest.approx(0.5, abs=1e-3)  # measured on the model
    assert row["dense_mb"] == pytest.approx(first.iloc[0]["dense_mb"])  # zeros stored densely weigh the same
    act = first[(first["method"] == "activation") & ~first["tuned"] & (first["level"] == 0.5)].iloc[0]
    assert act["params_m"] < first.iloc[0]["params_m"] and act["sparsity"] == pytest.approx(0.5, abs=0.02)
    red = first[(first["method"] == "redundancy") & ~first["tuned"] & (first["level"] == 0.5)].iloc[0]
    assert red["sparsity"] == pytest.approx(0.5 * 0.5, abs=0.02)  # FFN neurons only: half the weights of this tiny model
    tuned = first[(first["method"] == "magnitude_global") & first["tuned"] & (first["level"] == 0.5)].iloc[0]
    assert tuned["sparsity"] == pytest.approx(0.5, abs=1e-3)  # fine-tuning kept the zeros


def test_tuned_variant_is_saved_and_reloaded(bert, tmp_cache):
    settings = study.plan(**SMALL)
    a = study.tuned_variant(bert, "activation", 0.5, settings, progress=False)
    assert a.meta["fine_tune_steps"] == 2 and a.meta["fine_tune_seconds"] > 0
    b = study.tuned_variant(bert, "activation", 0.5, settings, progress=False)
    assert b.meta["key"] == a.meta["key"]
    assert prune.structure(b).equals(prune.structure(a))
    with pytest.raises(ValueError, match="method must be one of"):
        study.variant(bert, "random", 0.5, ["a text"])
    with pytest.raises(ValueError, match="unknown settings"):
        study.plan(levelz=[0.5])


def test_scan_table_and_iterative(bert, tmp_cache):
    settings = study.plan(**SMALL)
    scan = study.sensitivity_scan(bert, settings, progress=False)
    assert len(scan) == 6 + 2 * 2 and set(scan["what"]) == {"one role, all layers", "one layer"}
    assert study.sensitivity_scan(bert, settings, progress=False).attrs["cached"]
    table = study.source_table(bert, settings, progress=False)
    assert list(table.index) == ["teacher", "activation 50%"]
    assert table.loc["teacher", "f1_drop"] == 0 and table.loc["activation 50%", "smaller_encoder"] > 0.45
    assert table.loc["activation 50%", "verdict"] in ("good", "bad", "depends on the use case")
    it = study.one_shot_vs_iterative(bert, settings, progress=False)
    assert list(it["schedule"]) == ["one-shot", "iterative", "iterative"]
    assert it.iloc[0]["sparsity"] == pytest.approx(0.5, abs=1e-3) and it.iloc[-1]["sparsity"] == pytest.approx(0.5, abs=1e-3)
    assert it[it["schedule"] == "iterative"]["train_rows"].sum() == it.iloc[0]["train_rows"]


def test_recovered_trains_once_on_the_recovery_rows(bert, tmp_cache):
    settings = study.plan(**SMALL)
    a = study.recovered(bert, 0.5, settings, progress=False)
    assert a.meta["fine_tune_rows"] == 24 and a.meta["fine_tune_steps"] == 3  # 24 rows / batch 8, one epoch
    assert study.removed_share(a, bert) == pytest.approx(0.5, abs=0.02)  # FFN neurons and heads: sliced away
    b = study.recovered(bert, 0.5, settings, progress=False)
    assert b.meta["key"] == a.meta["key"] and prune.structure(b).equals(prune.structure(a))
    longer = study.recovered(bert, 0.5, study.plan(**{**SMALL, "recovery_epochs": 2}), progress=False)
    assert longer.meta["key"] != a.meta["key"] and longer.meta["fine_tune_steps"] == 6
    # the table's rows are these models
    table = study.source_table(bert, settings, progress=False)
    assert table.loc["activation 50%", "params_m"] == pytest.approx(a.num_parameters() / 1e6)
    # only what pruning changed was trained: the embeddings are the teacher's, the encoder moved
    emb = lambda clf: clf.model.bert.embeddings.word_embeddings.weight  # noqa: E731
    assert torch.equal(emb(a), emb(bert))
    trained_all = study.recovered(bert, 0.5, study.plan(**{**SMALL, "recovery_freeze_embeddings": False}), progress=False)
    assert trained_all.meta["key"] != a.meta["key"] and not torch.equal(emb(trained_all), emb(bert))
    assert all(p.requires_grad for p in bert.model.parameters())  # the teacher is left as it was
    with pytest.raises(ValueError, match="between 0 and 1"):
        study.recovered(bert, 0.0, settings, progress=False)


def test_best_within(bert, tmp_cache):
    sweep = study.sparsity_sweep(bert, study.plan(**SMALL), progress=False)
    best = study.best_within(sweep, "magnitude_global", tuned=True, max_drop=100.0)
    assert best["level"] == 0.5
    assert study.best_within(sweep, "magnitude_global", tuned=True, max_drop=-1000.0) is None


def test_storage_sizes_are_honest(bert):
    dense = study.storage_mb(bert).set_index(["format", "values"])
    assert dense.loc[("dense", "fp32"), "model_mb"] == pytest.approx(bert.size_mb(), rel=0.01)
    at_50 = study.storage_mb(prune.magnitude(bert, 0.5)).set_index(["format", "values"])["encoder_linear_mb"]
    at_90 = study.storage_mb(prune.magnitude(bert, 0.9)).set_index(["format", "values"])["encoder_linear_mb"]
    assert at_50[("dense", "fp32")] == at_90[("dense", "fp32")]  # zeros stored densely cost the same
    assert at_50[("CSR", "fp32")] > at_50[("dense", "fp32")]  # 12 B per non-zero: CSR loses at 50 %
    assert at_90[("CSR", "fp32")] < at_90[("dense", "fp32")]  # and wins at 90 %
    assert at_50[("bitmask", "fp32")] < at_50[("dense", "fp32")]
    assert at_90[("bitmask", "int8")] < at_90[("bitmask", "fp32")]


def test_masks_pitfall_shows_the_bigger_checkpoint(bert):
    info = study.masks_pitfall(bert, 0.5)
    assert info["masks_attached_mb"] > info["dense_mb"]
    assert info["after_remove_mb"] == pytest.approx(info["dense_mb"])
    assert any(k.endswith("weight_orig") for k in info["keys_with_masks"])
    assert any(k.endswith("weight_mask") for k in info["keys_with_masks"])
    assert not any("orig" in k or "mask" in k for k in info["keys_after_remove"])
    assert info["sparsity"] == pytest.approx(0.5, abs=1e-3)


def test_short_fine_tunes_keep_the_teachers_embeddings(bert, tmp_cache):
    settings = study.plan(**SMALL)
    emb = lambda clf: clf.model.bert.embeddings.word_embeddings.weight  # noqa: E731
    tuned = study.tuned_variant(bert, "magnitude_global", 0.5, settings, progress=False)
    assert torch.equal(emb(tuned), emb(bert)) and tuned.meta["fine_tune_steps"] == 2
    level0 = study.tuned_variant(bert, "magnitude_global", 0.0, settings, progress=False)  # a copy is trained
    assert torch.equal(emb(level0), emb(bert)) and not torch.equal(
        prune.layers(level0)[0]["ffn_in"].weight, prune.layers(bert)[0]["ffn_in"].weight)
    everything = study.tuned_variant(bert, "magnitude_global", 0.5, study.plan(**{**SMALL, "ft_freeze_embeddings": False}),
                                     progress=False)
    assert everything.meta["key"] != tuned.meta["key"] and not torch.equal(emb(everything), emb(bert))
    assert all(p.requires_grad for p in bert.model.parameters())
