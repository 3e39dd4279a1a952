"""Chapter 05's study (course_lib.studies.lowrank) on a tiny random BERT and a few messages: cached, keyed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from course_lib import lowrank
from course_lib.studies import lowrank as S

TEXTS = ["WINNER!! Claim your free prize now, call 0800 123", "see you at lunch?", "ok", "Your account was charged £5",
         "are we still on for tonight, I can bring the dvd", "URGENT: reply STOP to end, txt 87121 to win",
         "free entry to win cash, text WIN now", "call me when you get home", "Congratulations you won a holiday",
         "i'll be late, sorry"]
LABELS = [1, 0, 0, 1, 0, 1, 1, 0, 1, 0]


@pytest.fixture(scope="module")
def tiny():
    from course_lib import students

    return students.small_bert(layers=2, hidden=32, heads=2, intermediate=64, seed=0)


def _settings():
    return {"groups": ("ffn",), "methods": lowrank.METHODS, "ranks": (2, 8), "val_n": None, "calibration_n": 6,
            "finetune": {"group": "all", "ranks": (4,), "train_n": 8, "epochs": 1, "lr": 1e-4, "batch_size": 4, "seed": 0},
            "max_drop": 1.0}


def _frames():
    df = pd.DataFrame({"text": TEXTS, "label": LABELS})
    return df, df


def test_sweep_rows_cache_hit_and_keys(tiny, tmp_cache):
    val, train_df = _frames()
    sweep = S.rank_sweep(tiny, _settings(), val, train_df, progress=False)
    assert not sweep.attrs["cached"]
    # (ffn, all) × 2 ranks × 2 methods one-shot (attention break-even 32·32/64 = 16 >= 8), 2 fine-tuned rows
    one_shot = sweep[(sweep["method"] != "teacher") & ~sweep["finetuned"]]
    assert set(one_shot["group"]) == {"ffn", "all"} and len(one_shot) == 8
    assert sweep["finetuned"].sum() == 2 and sweep.loc[sweep["finetuned"], "finetune_seconds"].gt(0).all()
    assert ((sweep["param_cut"] >= 0) & (sweep["param_cut"] < 1)).all()
    assert np.allclose(sweep["f1_drop"], 100 * (sweep.attrs["teacher_f1"] - sweep["f1"]))
    # parameter counts are the model's own: the linear part recomputed from the sweep's own cut
    ffn2 = one_shot[(one_shot["group"] == "ffn") & (one_shot["rank"] == 2)].iloc[0]
    before = S.encoder_linear_params(tiny)
    expected_after = before - 2 * ((32 * 64 + 64) + (64 * 32 + 32)) + 2 * (lowrank.param_count(64, 32, 2) + lowrank.param_count(32, 64, 2))
    assert ffn2["linear_params_m"] * 1e6 == pytest.approx(expected_after)
    # whitened keeps output error at or below plain SVD at the same rank (same calibration inputs)
    for r in (2, 8):
        pick = lambda m: one_shot[(one_shot.method == m) & (one_shot.group == "ffn") & (one_shot["rank"] == r)].iloc[0]
        assert pick("whitened")["output_error"] <= pick("svd")["output_error"] + 1e-9
    again = S.rank_sweep(tiny, _settings(), val, train_df, progress=False)
    assert again.attrs["cached"] and again.attrs["path"] == sweep.attrs["path"]
    pd.testing.assert_frame_equal(again.reset_index(drop=True), pd.DataFrame(sweep.to_dict("records")), check_dtype=False)
    changed = {**_settings(), "ranks": (2,)}
    other = S.rank_sweep(tiny, changed, val, train_df, progress=False)
    assert not other.attrs["cached"] and other.attrs["path"] != sweep.attrs["path"]
    shifted = val.assign(label=1 - val["label"])
    assert S.rank_sweep(tiny, _settings(), shifted, train_df, progress=False).attrs["path"] != sweep.attrs["path"]


def test_sweep_skips_ranks_at_which_nothing_shrinks(tiny, tmp_cache):
    # tiny attention matrices are 32×32: break-even 16, where a pair is exactly as large as the matrix
    val, train_df = _frames()
    # (FFN 64×32 breaks even at 21): "all" at 16 would keep its attention matrices as large as they were
    settings = {**_settings(), "groups": ("attention", "ffn", "all"), "ranks": (8, 16), "methods": ("svd",),
                "finetune": {**_settings()["finetune"], "ranks": ()}}
    sweep = S.rank_sweep(tiny, settings, val, train_df, progress=False)
    measured = sweep[sweep["method"] == "svd"]
    assert sorted(zip(measured["group"], measured["rank"])) == [("all", 8), ("attention", 8), ("ffn", 8), ("ffn", 16)]
    assert (measured["param_cut"] > 0).all()


def test_finetuned_models_are_cached_and_keyed(tiny, tmp_cache):
    val, train_df = _frames()
    a = S.finetuned(tiny, "svd", 4, _settings(), train_df, progress=False)
    b = S.finetuned(tiny, "svd", 4, _settings(), train_df, progress=False)
    assert a.meta["key"] == b.meta["key"] and a.meta["finetune_seconds"] == b.meta["finetune_seconds"]
    np.testing.assert_allclose(a.logits(TEXTS), b.logits(TEXTS), rtol=1e-5, atol=1e-6)
    c = S.finetuned(tiny, "whitened", 4, _settings(), train_df, progress=False)
    assert c.meta["key"] != a.meta["key"]
    assert isinstance(c.model.get_submodule("bert.encoder.layer.0.attention.self.query"), __import__("torch").nn.Sequential)


def test_finetuning_with_frozen_embeddings_trains_only_the_encoder(tiny, tmp_cache):
    import torch

    val, train_df = _frames()
    settings = _settings()
    frozen = S.finetuned(tiny, "svd", 4, {**settings, "finetune": {**settings["finetune"], "freeze_embeddings": True}},
                         train_df, progress=False)
    plain = S.finetuned(tiny, "svd", 4, settings, train_df, progress=False)
    emb = lambda clf: clf.model.bert.embeddings.word_embeddings.weight  # noqa: E731
    assert frozen.meta["key"] != plain.meta["key"]
    assert torch.equal(emb(frozen), emb(tiny)) and not torch.equal(emb(plain), emb(tiny))
    layer = "bert.encoder.layer.0.intermediate.dense"
    before = S.lowrank.factorize_model(tiny, rank=4, layers="all", method="svd",
                                       texts=S.data.sample(train_df, settings["calibration_n"], seed=1)["text"].tolist())
    assert not torch.equal(frozen.model.get_submodule(layer)[0].weight, before.model.get_submodule(layer)[0].weight)
    assert all(p.requires_grad for p in tiny.model.parameters())


def test_finetuning_passes_the_micro_batch_cap_and_keys_it(tiny, tmp_cache, monkeypatch):
    seen = []
    real = S.train.fine_tune

    def spy(*args, **kwargs):
        seen.append(kwargs.get("max_tokens"))
        return real(*args, **kwargs)

    monkeypatch.setattr(S.train, "fine_tune", spy)
    val, train_df = _frames()
    settings = _settings()
    capped = S.finetuned(tiny, "svd", 4, {**settings, "finetune": {**settings["finetune"], "max_tokens": 16}},
                         train_df, progress=False)
    plain = S.finetuned(tiny, "svd", 4, settings, train_df, progress=False)
    assert seen == [16, S.train.MAX_TOKENS_PER_STEP]
    assert capped.meta["key"] != plain.meta["key"]
    assert S.plan()["finetune"]["max_tokens"] == 1024


def test_largest_cut_picks_the_largest_cut_within_the_drop():
    rows = pd.DataFrame([
        {"group": "none", "method": "teacher", "rank": None, "finetuned": False, "f1": 0.95, "f1_drop": 0.0, "param_cut": 0.0},
        {"group": "all", "method": "svd", "rank": 32, "finetuned": True, "f1": 0.90, "f1_drop": 5.0, "param_cut": 0.8},
        {"group": "all", "method": "svd", "rank": 64, "finetuned": True, "f1": 0.945, "f1_drop": 0.5, "param_cut": 0.6},
        {"group": "all", "method": "svd", "rank": 128, "finetuned": True, "f1": 0.95, "f1_drop": 0.0, "param_cut": 0.3},
        {"group": "all", "method": "whitened", "rank": 32, "finetuned": True, "f1": 0.92, "f1_drop": 3.0, "param_cut": 0.8},
    ])
    best = S.largest_cut(rows, max_drop=1.0)
    assert best.loc["svd", "found"] and best.loc["svd", "rank"] == 64 and best.loc["svd", "param_cut"] == 0.6
    assert not best.loc["whitened", "found"] and best.loc["whitened", "tried_ranks"] == [32]


def test_largest_cut_when_no_method_stays_within_the_drop():
    # full mode found none once, and the notebook's column selection failed: the columns must exist anyway
    rows = pd.DataFrame([
        {"group": "none", "method": "teacher", "rank": None, "finetuned": False, "f1": 0.95, "f1_drop": 0.0, "param_cut": 0.0},
        {"group": "all", "method": "svd", "rank": 64, "finetuned": True, "f1": 0.90, "f1_drop": 5.0, "param_cut": 0.6},
        {"group": "all", "method": "whitened", "rank": 64, "finetuned": True, "f1": 0.92, "f1_drop": 3.0, "param_cut": 0.6},
    ])
    best = S.largest_cut(rows, max_drop=1.0)
    assert not best["found"].any()
    assert best[["rank", "param_cut", "f1", "f1_drop"]].isna().all().all()
    assert best.loc["svd", "tried_ranks"] == [64]


def test_small_measurements(tiny):
    curves = S.spectra(tiny)
    assert {"layer 0 ffn_in", "layer 1 ffn_out", "random rank-32 product", "random Gaussian"} <= set(curves)
    table = S.spectrum_table(curves, ranks=(8, 16))
    # min(64, 32) = 32: a rank-32 product of a 64×32-shaped matrix is full rank here; its spectrum still sums to 1
    assert (table["rank for 90 %"] <= table["full rank"]).all()
    cost = S.cost_table(1536, 384, (64, 128, 307))
    assert cost.attrs["break_even"] == 307 and cost.loc["384→128→1536", "params"] == 128 * 1920 + 1536
    assert cost.loc["384→307→1536", "params ratio"] <= 1.0
    timing = S.matmul_timing([(64, 32)], (4, 16, 30), tokens=8, repeats=5)
    assert list(timing["rank"]) == [4, 16]  # 30 is above break-even (64·32/96 = 21): skipped
    assert (timing["pair (µs)"] > 0).all()
