"""Tests for course_lib.studies.capstone_students (tiny models, a tiny split, a throw-away cache)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from course_lib import data, distill_layers, models, students
from course_lib.studies import capstone_students as cap
from course_lib.studies import distillation as ch02


@pytest.fixture
def small_world(splits, tmp_cache, monkeypatch):
    """A 120-message training split, a tiny stand-in teacher (2 layers × 48), a 1 × 32 student."""
    tok = students._teacher_tokenizer()
    split = data.sample(splits.train, 120, seed=0).reset_index(drop=True)
    teacher = students.small_bert(layers=2, hidden=48, heads=4, intermediate=64, tokenizer=tok, seed=5)
    teacher.meta = {"key": "stand-in-teacher"}
    monkeypatch.setattr(ch02, "training_split", lambda: split)
    monkeypatch.setattr(ch02.train, "finetuned_teacher", lambda progress=True: teacher)
    monkeypatch.setattr(students, "TINY", {"layers": 1, "hidden": 32, "heads": 2, "intermediate": 64})
    sets = {"sms": data.sample(splits.test, 60, 0), "youtube": data.sample(data.load_youtube_spam(), 40, 0)}
    monkeypatch.setattr(ch02, "eval_sets", lambda: sets)
    return split, teacher


def test_recipes_twins_and_keys(small_world):
    assert cap.RECIPES[:2] == ["no KD", "KD (ch. 02)"] and len(cap.RECIPES) == len(set(cap.RECIPES)) >= 6
    assert cap.twin("aug + KD") == "no KD" and cap.twin("aug + KD + emb init + layers") == "no KD + emb init"
    keys = {cap.student_key(r, s)[0] for r in cap.RECIPES for s in (0, 1)}
    assert len(keys) == 2 * len(cap.RECIPES)  # every (recipe, seed) its own model
    # chapter 02's two rows are chapter 02's own recipes, cached under its keys
    assert cap.student_key("no KD", 0)[0] == ch02.recipe_key(ch02.Recipe("tiny", "ce", epochs=cap.passes(), lr=cap.LR))[0]
    with pytest.raises(ValueError, match="recipe"):
        cap.twin("nonsense")


def test_transfer_set_keeps_labels_and_same_steps(small_world):
    split, teacher = small_world
    frame, logits = cap.transfer_set(teacher)
    assert len(frame) == cap.passes() * len(split) and logits.shape == (len(frame), 2)
    np.testing.assert_array_equal(frame["label"].to_numpy(), split["label"].to_numpy()[frame["source"].to_numpy()])
    np.testing.assert_allclose(logits, teacher.logits(frame["text"].tolist()), atol=1e-5)


def test_ablation_trains_caches_and_reports(small_world, monkeypatch):
    table = cap.ablation(seeds=(0, 1), progress=False)
    assert list(table["recipe"]) == cap.RECIPES and (table["n_seeds"] == 2).all()
    for col in ("sms_f1_mean", "sms_f1_std", "youtube_f1_mean", "youtube_f1_std", "gain_vs_no_kd_points",
                "gain_low", "gain_high", "gain_vs_twin_points", "gain_vs_twin_spread", "teacher_sms_f1"):
        assert np.isfinite(table[col]).all(), col
    assert table["sms_f1_mean"].between(0, 1).all()
    no_kd = table.set_index("recipe").loc["no KD"]
    assert no_kd["gain_vs_no_kd_points"] == 0.0 and no_kd["gain_low"] == 0.0 == no_kd["gain_high"]
    rows = table.attrs["per_seed"]
    assert len(rows) == 2 * len(cap.RECIPES)
    by = rows.set_index(["recipe", "seed"])["sms_f1"]
    aug = table.set_index("recipe").loc["aug + KD"]
    expected = 100 * np.mean([by[("aug + KD", s)] - by[("no KD", s)] for s in (0, 1)])
    assert aug["gain_vs_no_kd_points"] == pytest.approx(expected)
    assert aug["gain_low"] - 1e-9 <= aug["gain_vs_no_kd_points"] <= aug["gain_high"] + 1e-9
    assert table.attrs["teacher_sms_f1"] == pytest.approx(no_kd["teacher_sms_f1"])
    layered = cap.train_recipe("aug + KD + emb init + layers", 0, progress=False)
    assert "layer_stage" in layered.meta and layered.meta["embedding_init"]["width"] == 32
    assert layered.meta["settings"]["augment"]["copies"] == cap.passes() - 1
    # second call: from the JSON cache, nothing trained or evaluated
    with monkeypatch.context() as m:
        m.setattr(cap, "train_recipe", lambda *a, **k: (_ for _ in ()).throw(AssertionError("retrained")))
        again = cap.ablation(seeds=(0, 1), progress=False)
    pd.testing.assert_frame_equal(again, table)
    report = cap.target_report(table)
    assert set(report) >= {"met", "recipe", "twin", "gain_points", "spread_points", "gap_to_teacher_points",
                           "missed_by", "teacher_sms_f1", "student_sms_f1", "any_met"}
    assert cap.SPECS[report["recipe"]]["targets"] == "teacher"
    assert report["met"] == (report["beats_twin"] and report["near_teacher"])
    if not report["met"]:
        assert report["missed_by"]["gain_points"] > 0 or report["missed_by"]["teacher_points"] > 0
    assert table["val_f1_mean"].between(0, 1).all()
    recipe = cap.best_recipe(table)
    assert table.set_index("recipe").loc[recipe, "val_f1_mean"] == table["val_f1_mean"].max()
    seed = cap.best_seed(recipe, table)
    of_recipe = rows[rows["recipe"] == recipe]
    assert of_recipe.set_index("seed").loc[seed, "val_f1"] == of_recipe["val_f1"].max()
    best = cap.best_student(progress=False)
    assert isinstance(best, models.TextClassifier) and best.name == f"tiny · {recipe}"
    assert best.meta["settings"]["seed"] == seed
    assert best.model.config.hidden_size <= 192 and best.model.config.num_hidden_layers <= 4


def test_teacher_cls_attention_names_the_layers_the_student_copies():
    table = cap.teacher_cls_attention(n=8)
    assert list(table.index) == list(range(1, len(table) + 1))
    assert table["cls_on_itself"].between(0, 1).all()
    pairs = distill_layers.layer_map(students.TINY["layers"], len(table))
    assert table["student_layer_if_all"].dropna().to_dict() == {t: s for s, t in pairs}
    assert cap.LAYERS["attention_layers"] == "last"
    assert table["student_layer_now"].dropna().to_dict() == {pairs[-1][1]: pairs[-1][0]}


def test_teacher_on_transfer_set_counts_every_row():
    from course_lib import train
    teacher = train.finetuned_teacher(progress=False)
    frame, logits = cap.transfer_set(teacher)
    table = cap.teacher_on_transfer_set(teacher)
    assert table["n"].sum() == len(frame)
    assert set(table["rows"]) == {"original", "augmented copy"} and set(table["label"]) == {"ham", "spam"}
    for col in ("teacher_agrees", "p_spam_mean", "unsure"):
        assert table[col].between(0, 1).all()
    spam_copies = table[(table["rows"] == "augmented copy") & (table["label"] == "spam")].iloc[0]
    is_spam_copy = (frame["copy"].to_numpy() > 0) & (frame["label"].to_numpy() == 1)
    agrees = (logits[is_spam_copy, 1] > logits[is_spam_copy, 0]).mean()
    assert spam_copies["teacher_agrees"] == pytest.approx(agrees)
