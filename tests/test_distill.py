"""Tests for course_lib.distill and course_lib.students (fast: tiny students, tiny data)."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from course_lib import data, distill, explorers, models, plots, stats, students
from course_lib.exercises import distillation as exercise
from course_lib.studies import distillation as experiments

S = torch.tensor([[2.0, -1.0], [0.5, 0.3], [-1.0, 1.5]])
T_ = torch.tensor([[1.0, 0.0], [-1.0, 2.0], [0.2, 0.1]])
Y = torch.tensor([0, 1, 1])


def _kl_by_hand(s, t, temp):
    """KL(softmax(t/T) || softmax(s/T)) per row, with NumPy."""
    def soft(z):
        e = np.exp(z / temp - (z / temp).max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    p, q = soft(t.numpy().astype(np.float64)), soft(s.numpy().astype(np.float64))
    return (p * np.log(p / q)).sum(axis=1)


# --------------------------------------------------------------------------- losses


def test_identical_logits_give_zero_kd_term():
    assert float(distill.distillation_loss(S, S.clone(), Y, temperature=3.0, alpha=0.0)) == pytest.approx(0.0, abs=1e-7)
    assert torch.allclose(distill.kd_term(S, S.clone(), 5.0), torch.zeros(3), atol=1e-6)


def test_alpha_one_is_cross_entropy_and_alpha_zero_is_kd_only():
    ce = F.cross_entropy(S, Y)
    assert float(distill.distillation_loss(S, T_, Y, temperature=4.0, alpha=1.0)) == pytest.approx(float(ce), rel=1e-6)
    kd = 4.0 ** 2 * _kl_by_hand(S, T_, 4.0).mean()
    assert float(distill.distillation_loss(S, T_, Y, temperature=4.0, alpha=0.0)) == pytest.approx(kd, rel=1e-5)


def test_hand_computed_value_and_t_squared_factor():
    # one row, by hand: teacher (1, 0), student (2, -1), T = 2, alpha = 0.25
    s, t, y = torch.tensor([[2.0, -1.0]]), torch.tensor([[1.0, 0.0]]), torch.tensor([0])
    p = np.exp([0.5, 0.0]) / np.exp([0.5, 0.0]).sum()          # softmax(t / 2)
    q = np.exp([1.0, -0.5]) / np.exp([1.0, -0.5]).sum()        # softmax(s / 2)
    kl = float((p * np.log(p / q)).sum())
    ce = -math.log(math.exp(2.0) / (math.exp(2.0) + math.exp(-1.0)))
    expected = 0.25 * ce + 0.75 * 4.0 * kl
    assert float(distill.distillation_loss(s, t, y, temperature=2.0, alpha=0.25)) == pytest.approx(expected, rel=1e-5)
    # the T² factor: the KD term is T² times the plain KL of the softened distributions
    for temp in (1.0, 2.0, 7.0):
        got = distill.kd_term(S, T_, temp).numpy()
        np.testing.assert_allclose(got, temp ** 2 * _kl_by_hand(S, T_, temp), rtol=1e-5)


def test_batch_mean_and_the_batchmean_form():
    whole = distill.distillation_loss(S, T_, Y, temperature=3.0, alpha=0.4)
    rows = [distill.distillation_loss(S[i : i + 1], T_[i : i + 1], Y[i : i + 1], 3.0, 0.4) for i in range(3)]
    assert float(whole) == pytest.approx(float(torch.stack(rows).mean()), rel=1e-6)
    ref = 0.4 * F.cross_entropy(S, Y) + 0.6 * 9.0 * F.kl_div(F.log_softmax(S / 3, -1), F.softmax(T_ / 3, -1), reduction="batchmean")
    assert float(whole) == pytest.approx(float(ref), rel=1e-5)


def test_unlabelled_rows_get_the_kd_term_only():
    kd_rows = distill.kd_term(S, T_, 2.0)
    none = distill.distillation_loss(S, T_, None, temperature=2.0, alpha=0.9)
    assert float(none) == pytest.approx(float(kd_rows.mean()), rel=1e-6)
    mixed = distill.distillation_loss(S, T_, torch.tensor([0, -1, 1]), temperature=2.0, alpha=0.5)
    ce = F.cross_entropy(S, Y, reduction="none")
    expected = (0.5 * ce[0] + 0.5 * kd_rows[0] + kd_rows[1] + 0.5 * ce[2] + 0.5 * kd_rows[2]) / 3
    assert float(mixed) == pytest.approx(float(expected), rel=1e-6)


def test_loss_gradients_flow_to_student_only():
    s = S.clone().requires_grad_(True)
    t = T_.clone().requires_grad_(True)
    distill.distillation_loss(s, t, Y, 2.0, 0.5).backward()
    assert s.grad is not None and torch.isfinite(s.grad).all() and t.grad is None


def test_loss_bad_inputs():
    with pytest.raises(ValueError, match="alpha"):
        distill.distillation_loss(S, T_, Y, 2.0, 1.5)
    with pytest.raises(ValueError, match="temperature"):
        distill.distillation_loss(S, T_, Y, 0.0, 0.5)
    with pytest.raises(ValueError, match="same shape"):
        distill.distillation_loss(S, T_[:2], Y, 2.0, 0.5)


def test_mse_logit_loss():
    mse = ((S - T_) ** 2).sum(dim=1).mean()
    assert float(distill.mse_logit_loss(S, T_)) == pytest.approx(float(mse), rel=1e-6)
    assert float(distill.mse_logit_loss(S, T_, Y, temperature=9.0, alpha=0.0)) == pytest.approx(float(mse), rel=1e-6)
    assert float(distill.mse_logit_loss(S, T_, Y, alpha=1.0)) == pytest.approx(float(F.cross_entropy(S, Y)), rel=1e-6)
    assert float(distill.mse_logit_loss(S, S.clone(), None)) == 0.0


# --------------------------------------------------------------------------- exercise checker


def _variant(kind):
    def fn(s, t, y, T, a):
        log_q = F.log_softmax(s / T, -1)
        p = F.softmax(t / T, -1)
        kl = F.kl_div(log_q, p, reduction="batchmean")
        ce = F.cross_entropy(s, y)
        if kind == "ok":
            return a * ce + (1 - a) * T**2 * kl
        if kind == "no_t2":
            return a * ce + (1 - a) * kl
        if kind == "direction":
            return a * ce + (1 - a) * T**2 * F.kl_div(F.log_softmax(t / T, -1), F.softmax(s / T, -1), reduction="batchmean")
        if kind == "swap":
            return (1 - a) * ce + a * T**2 * kl
        if kind == "sum":
            return a * ce + (1 - a) * T**2 * F.kl_div(log_q, p, reduction="sum")
        if kind == "mean":
            return a * ce + (1 - a) * T**2 * F.kl_div(log_q, p, reduction="mean")
        if kind == "float":
            return float(a * ce + (1 - a) * T**2 * kl)
        if kind == "detached":
            return (a * ce + (1 - a) * T**2 * kl).detach()
        if kind == "rows":
            return a * F.cross_entropy(s, y, reduction="none")
        if kind == "boom":
            raise KeyError("oops")
        if kind == "stub":
            raise NotImplementedError
        return a * ce + 0.123
    return fn


@pytest.mark.parametrize("kind, words", [
    ("ok", "passed"), ("no_t2", "T²"), ("direction", "wrong way"), ("swap", "swapped"),
    ("sum", "summed over the batch"), ("mean", "batchmean"), ("float", "torch tensor"),
    ("detached", "not connected"), ("rows", "single number"), ("boom", "KeyError"),
    ("stub", "not written yet"), ("other", "should be"),
])
def test_check_kd_loss_names_the_mistake(kind, words):
    message = exercise.check_kd_loss(_variant(kind))
    assert words in message
    assert (message == "passed") == (kind == "ok")


def test_check_kd_loss_accepts_the_library_loss():
    assert exercise.check_kd_loss(distill.distillation_loss) == "passed"


# --------------------------------------------------------------------------- students


@pytest.fixture(scope="module")
def tok():
    return students._teacher_tokenizer()


def test_small_bert_shape_and_size(tok):
    clf = students.small_bert(**students.TINY, tokenizer=tok, seed=0)
    assert 4.2e6 < clf.num_parameters() < 4.5e6  # the chapter's "4.3M-parameter student"
    assert students.embedding_share(clf) > 0.85
    assert clf.logits(["free entry!!", "see you at 5"]).shape == (2, 2)
    same = students.small_bert(**students.TINY, tokenizer=tok, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(clf.model.parameters(), same.model.parameters()))
    with pytest.raises(ValueError, match="multiple"):
        students.small_bert(hidden=100, heads=3, tokenizer=tok)


def test_student_from_teacher_keeps_every_other_layer(teacher):
    student = students.student_from_teacher(teacher, keep_every=2)
    layers = student.model.bert.encoder.layer
    assert len(layers) == 3 and student.model.config.num_hidden_layers == 3
    assert len(teacher.model.bert.encoder.layer) == 6  # the teacher is untouched
    for kept, original in zip(layers, [0, 2, 4]):
        src = teacher.model.bert.encoder.layer[original]
        assert all(torch.equal(a, b) for a, b in zip(kept.parameters(), src.parameters()))
    assert student.num_parameters() < teacher.num_parameters() and student.size_mb() < teacher.size_mb()
    assert student.logits(["hello"]).shape == (1, 2)
    with pytest.raises(ValueError):
        students.student_from_teacher(teacher, keep_every=0)


def test_trim_vocabulary_same_logits_and_smaller(teacher, splits):
    corpus = splits.train["text"].tolist()[:300]
    trimmed = students.trim_vocabulary(teacher, corpus)
    info = trimmed.meta["trimmed_vocab"]
    assert info["original"] == 30522 and info["kept"] < 5000 and len(trimmed.tokenizer) == info["kept"]
    np.testing.assert_allclose(trimmed.logits(corpus[:30]), teacher.logits(corpus[:30]), atol=1e-5)
    assert trimmed.size_mb() < teacher.size_mb() - 30  # most of the 46.9 MB embedding table goes
    assert teacher.model.get_input_embeddings().num_embeddings == 30522  # the original is unchanged
    assert trimmed.logits(["zyxqv flibbertigibbet"]).shape == (1, 2)  # unseen words: smaller pieces or [UNK]


def test_trimmed_model_saves_and_loads(tok, splits, tmp_cache):
    corpus = splits.train["text"].tolist()[:100]
    small = students.small_bert(layers=1, hidden=32, heads=2, intermediate=64, tokenizer=tok)
    trimmed = students.trim_vocabulary(small, corpus)
    np.testing.assert_allclose(trimmed.logits(corpus[:20]), small.logits(corpus[:20]), atol=1e-5)
    models.save_classifier(trimmed, "trimmed-test")
    back = models.load_classifier("trimmed-test")
    assert len(back.tokenizer) == trimmed.meta["trimmed_vocab"]["kept"]
    np.testing.assert_allclose(back.logits(corpus[:20]), trimmed.logits(corpus[:20]), atol=1e-5)


def test_trimmed_tokenizer_matches_original_on_corpus(tok):
    corpus = ["WINNER!! Claim your £1000 prize now", "ok lar... joking wif u oni", "café naïve 北京"]
    keep = students.used_token_ids(tok, corpus)
    small = students.trimmed_tokenizer(tok, keep)
    for text in corpus:
        a = tok.convert_ids_to_tokens(tok(text)["input_ids"])
        b = small.convert_ids_to_tokens(small(text)["input_ids"])
        assert a == b
    with pytest.raises(ValueError, match="special"):
        students.trimmed_tokenizer(tok, [i for i in keep if i != tok.cls_token_id])
    with pytest.raises(ValueError):
        students.trim_vocabulary(students.small_bert(layers=1, hidden=32, heads=2, intermediate=64, tokenizer=tok), [])


# --------------------------------------------------------------------------- teacher logits and distill()


def _tiny(tok, seed=0):
    return students.small_bert(layers=1, hidden=32, heads=2, intermediate=64, tokenizer=tok, seed=seed)


@pytest.fixture(scope="module")
def small_set(splits):
    return data.sample(splits.train, 96, seed=0)


def test_cached_logits_computed_once(tok, small_set, tmp_cache, monkeypatch):
    clf = _tiny(tok)
    texts = small_set["text"].tolist()[:20]
    first = distill.cached_logits(clf, texts)
    assert first.shape == (20, 2) and len(list((tmp_cache / "logits").glob("*.npy"))) == 1
    with monkeypatch.context() as m:
        m.setattr(type(clf), "logits", lambda *a, **k: (_ for _ in ()).throw(AssertionError("recomputed")))
        np.testing.assert_array_equal(distill.cached_logits(clf, texts), first)
    distill.cached_logits(clf, texts[:10])  # other texts: another file
    assert len(list((tmp_cache / "logits").glob("*.npy"))) == 2
    assert models.fingerprint(clf) != models.fingerprint(_tiny(tok, seed=1))


def test_distill_moves_student_towards_teacher(tok, small_set, tmp_cache):
    teacher = _tiny(tok, seed=1)
    student = _tiny(tok, seed=2)
    texts = small_set["text"].tolist()
    t_logits = teacher.logits(texts)
    before = float(distill.distillation_loss(torch.from_numpy(student.logits(texts)), torch.from_numpy(t_logits), None, 1.0, 0.0))
    history = distill.distill(student, teacher, texts, temperature=1.0, alpha=0.5, epochs=8, lr=3e-3,
                              batch_size=16, progress=False)
    after = float(distill.distillation_loss(torch.from_numpy(student.logits(texts)), torch.from_numpy(t_logits), None, 1.0, 0.0))
    assert history["unlabelled"] == len(texts) and history["labelled"] == 0
    assert after < before * 0.5


def test_distill_with_labels_some_missing_and_given_logits(tok, small_set):
    frame = small_set.copy()
    frame.loc[frame.index[:40], "label"] = np.nan  # transfer rows
    student = _tiny(tok)
    logits = np.random.default_rng(0).normal(size=(len(frame), 2)).astype(np.float32)
    history = distill.distill(student, None, frame, teacher_logits=logits, epochs=1, batch_size=32, progress=False)
    assert history["labelled"] == len(frame) - 40 and history["unlabelled"] == 40 and history["steps"] == 3
    mse = distill.distill(_tiny(tok), None, frame, teacher_logits=logits, epochs=1, loss="mse", progress=False)
    assert np.isfinite(mse["loss"]).all()
    with pytest.raises(ValueError, match="shape"):
        distill.distill(_tiny(tok), None, frame, teacher_logits=logits[:5], epochs=1, progress=False)
    with pytest.raises(ValueError, match="teacher"):
        distill.distill(_tiny(tok), None, frame, epochs=1, progress=False)
    with pytest.raises(data.DataError, match="labels"):
        distill.distill(_tiny(tok), None, frame.assign(label=7), teacher_logits=logits, progress=False)
    with pytest.raises(data.DataError):
        distill.distill(_tiny(tok), None, ["fine", ""], teacher_logits=logits[:2], progress=False)


# --------------------------------------------------------------------------- cached experiments


@pytest.fixture
def small_world(tok, splits, tmp_cache, monkeypatch):
    """A 160-message training split, a tiny stand-in teacher and tiny evaluation sets."""
    split = data.sample(splits.train, 160, seed=0)
    teacher = _tiny(tok, seed=5)
    teacher.meta = {"key": "stand-in-teacher"}
    monkeypatch.setattr(experiments, "training_split", lambda: split)
    monkeypatch.setattr(experiments.train, "finetuned_teacher", lambda progress=True: teacher)
    monkeypatch.setattr(experiments.students, "TINY", {"layers": 1, "hidden": 32, "heads": 2, "intermediate": 64})
    sets = {"sms": data.sample(splits.test, 40, 0), "youtube": data.sample(data.load_youtube_spam(), 40, 0)}
    monkeypatch.setattr(experiments, "eval_sets", lambda: sets)
    return split, teacher


def test_experiment_data_low_label_split(small_world):
    split, _ = small_world
    labelled, transfer = experiments.experiment_data(seed=0, labelled=50)
    assert len(labelled) == 50 and len(transfer) == 110
    assert set(labelled["row"]).isdisjoint(transfer["row"]) and (transfer["label"] == -1).all()
    assert (split["text"].to_numpy()[labelled["row"]] == labelled["text"].to_numpy()).all()
    assert not labelled["row"].equals(experiments.experiment_data(seed=1, labelled=50)[0]["row"])
    full, empty = experiments.experiment_data(seed=0)
    assert len(full) == 160 and len(empty) == 0
    with pytest.raises(ValueError):
        experiments.experiment_data(seed=0, labelled=500)


def test_recipe_keys():
    ce = experiments.recipe_key(experiments.Recipe("tiny", "ce", temperature=2.0))[0]
    assert ce == experiments.recipe_key(experiments.Recipe("tiny", "ce", temperature=8.0))[0]  # T is unused without KD
    kd2 = experiments.recipe_key(experiments.Recipe("tiny", "kd", temperature=2.0))[0]
    assert kd2 != experiments.recipe_key(experiments.Recipe("tiny", "kd", temperature=4.0))[0]
    assert kd2 != experiments.recipe_key(experiments.Recipe("tiny", "kd", temperature=2.0, seed=1))[0]
    with pytest.raises(ValueError, match="arch"):
        experiments.recipe_key(experiments.Recipe("huge"))
    assert "KD (T=2" in experiments.Recipe("tiny", "kd", temperature=2.0).label()


def test_train_student_caches_and_seed_study(small_world, monkeypatch):
    recipe = experiments.Recipe("tiny", "kd", temperature=2.0, labelled=60)
    first = experiments.train_student(recipe, progress=False)
    assert first.meta["settings"]["train_rows"] == 160 and first.name == recipe.label()
    with monkeypatch.context() as m:
        m.setattr(distill, "distill", lambda *a, **k: (_ for _ in ()).throw(AssertionError("retrained")))
        again = experiments.train_student(recipe, progress=False)
    texts = ["free prize call now", "ok see you"]
    np.testing.assert_allclose(again.logits(texts), first.logits(texts), atol=1e-6)
    pseudo = experiments.train_student(experiments.Recipe("tiny", "pseudo", labelled=60), progress=False)
    assert pseudo.logits(texts).shape == (2, 2)
    study = experiments.seed_study([experiments.Recipe("tiny", "ce", labelled=60), recipe], seeds=(0, 1), progress=False)
    assert set(study["model"]) == {"teacher", "tiny · no KD", recipe.label()}
    assert len(study) == 1 + 2 * 2 and study["sms_f1"].between(0, 1).all() and study["youtube_acc"].between(0, 1).all()
    table = stats.summarize(study)
    assert table.loc[("60 labels", recipe.label()), "n"] == 2 and "±" in table.loc[("60 labels", recipe.label()), "sms_f1"]
    sweep = experiments.temperature_sweep([1.0, 2.0], labelled=60, seeds=(0,), progress=False)
    assert list(sweep["temperature"]) == [1.0, 2.0]


def test_half_student_and_few_label_teacher(small_world, monkeypatch):
    few = experiments.Recipe("tiny", "kd", labelled=40, teacher="few")
    calls = []

    def fake_low_label_teacher(n, seed=0, progress=True):
        calls.append((n, seed))
        return small_world[1]

    monkeypatch.setattr(experiments, "low_label_teacher", fake_low_label_teacher)
    assert experiments.teacher_for(few) is small_world[1] and calls == [(40, 0)]
    assert "few-label teacher" in few.label()
    assert experiments.recipe_key(few)[0] != experiments.recipe_key(experiments.Recipe("tiny", "kd", labelled=40))[0]


def test_chapter_plan_is_consistent():
    plan = experiments.chapter_plan()
    assert len(plan["seeds"]) >= 2 and plan["from_teacher"].arch == "half"
    assert all(r.labelled == plan["low_labels"] for r in plan["low_label"])


# --------------------------------------------------------------------------- explorer and flips


def test_temperature_explorer_redraws():
    logits = np.array([[4.0, -3.0], [-2.0, 2.5], [0.3, 0.1]], dtype=np.float32)
    sweep = pd.DataFrame({"temperature": [1.0, 4.0, 1.0, 4.0], "sms_f1": [0.9, 0.93, 0.91, 0.94]})
    box = explorers.temperature_explorer(["ham msg", "spam msg", "unsure"], logits, sweep=sweep, labels=[0, 1, 0])
    t_slider, a_slider = box.children[0].children
    readout = box.children[1]
    first = readout.value
    t_slider.value = 16.0
    assert readout.value != first and "T = 16.00" in readout.value
    a_slider.value = 1.0
    assert "α = 1.00" in readout.value
    assert "Temperature explorer" in repr(box) and "2 temperatures" in repr(box)
    soft = distill.soft_targets(logits, 1e6)
    np.testing.assert_allclose(soft, 0.5, atol=1e-4)
    with pytest.raises(ValueError):
        explorers.temperature_explorer(["one"], logits)
    plt.close("all")


def test_flip_report(tok):
    class P:
        def __init__(self, p):
            self.spam_prob = np.asarray(p)
            self.labels = (self.spam_prob >= 0.5).astype(int)

    class Bench:
        texts = ["win a prize now", "see you soon", "call me maybe", "free entry txt"]
        labels = [1, 0, 0, 1]
        predictions = {"teacher": P([0.9, 0.1, 0.55, 0.8]), "student": P([0.3, 0.1, 0.2, 0.9])}

    table, summary = stats.flip_report(Bench(), "teacher", "student", ["see you soon", "win a prize"], tok)
    assert summary["flips"] == 2 and summary["baseline_right"] == 1 and summary["variant_right"] == 1
    assert set(table["right"]) == {"teacher", "student"} and (table["rare pieces"] >= 0).all()


def test_low_label_teacher_is_trained_once(small_world, monkeypatch, tok):
    built = []

    def fake_load_teacher(seed=0, **kwargs):
        built.append(seed)
        return _tiny(tok, seed=seed)

    monkeypatch.setattr(experiments.models, "load_teacher", fake_load_teacher)
    first = experiments.low_label_teacher(40, seed=0, progress=False)
    again = experiments.low_label_teacher(40, seed=0, progress=False)
    assert built == [0] and first.meta["settings"]["labelled"] == 40
    np.testing.assert_allclose(first.logits(["win now"]), again.logits(["win now"]), atol=1e-6)


def test_result_helpers():
    study = pd.DataFrame({
        "model": ["teacher", "a", "a", "a", "b", "b", "b"], "setting": ["s"] * 7, "seed": [0, 0, 1, 2, 0, 1, 2],
        "sms_f1": [0.98, 0.90, 0.91, 0.92, 0.95, 0.96, 0.97], "youtube_f1": [0.5, 0.3, 0.31, 0.3, 0.3, 0.29, 0.31],
    })
    assert "consistent" in stats.describe_effect(study, "s", "sms_f1", "a", "b")
    assert "+0.050" in stats.describe_effect(study, "s", "sms_f1", "a", "b")
    varied = study.assign(sms_f1=[0.98, 0.80, 0.90, 0.85, 0.95, 0.93, 0.96])
    assert "every seed" in stats.describe_effect(varied, "s", "sms_f1", "a", "b")
    assert "noise" in stats.describe_effect(study, "s", "youtube_f1", "a", "b")
    assert "-0.0" in stats.describe_effect(study, "s", "sms_f1", "teacher", "b")
    with pytest.raises(KeyError):
        stats.describe_effect(study, "s", "sms_f1", "a", "nope")
    fig = plots.plot_seed_results(study, [("s", "sms_f1", "one"), ("s", "youtube_f1", "two")])
    assert len(fig.axes) == 2
    logits = np.array([[6.8, -6.8], [6.7, -6.9], [-6.5, 6.4], [0.2, -0.1], [-1.0, 2.0]], dtype=np.float32)
    frame = pd.DataFrame({"text": list("abcde"), "label": [0, 0, 1, 0, 1]})
    ex = experiments.pick_examples(frame, logits)
    assert list(ex.index) == ["confident spam", "confident ham", "least sure"] and ex.loc["least sure", "text"] == "d"
    table = experiments.soft_target_table(logits[:2], (1, 4), index=["x", "y"])
    assert list(table.columns) == ["T=1", "T=4"] and table.loc["x", "T=4"] > table.loc["x", "T=1"]
    certainty = experiments.teacher_certainty({"sure": logits[:3], "mixed": logits}, temperature=4.0)
    assert certainty.loc["sure", "saturated (T=1)"] == 1.0 and certainty.loc["mixed", "saturated (T=1)"] < 1.0
    ax = plots.plot_margins({"sure": logits[:3], "mixed": logits})
    assert ax.get_legend() is not None
    plt.close("all")


def test_train_with_your_loss_trains_like_the_library(tmp_cache, splits):
    """The chapter-02 exercise's last step: distill(..., loss=my_kd_loss) next to loss="kl", same seed."""
    train_df = splits.train.iloc[:24].reset_index(drop=True)
    logits = torch.randn(len(train_df), 2, generator=torch.Generator().manual_seed(0)).numpy() * 3
    table = exercise.train_with_your_loss(distill.distillation_loss, train_df, logits, splits.test.iloc[:16],
                                          rows=24, epochs=1, progress=False)
    assert list(table.index) == ["your loss", "library loss (distill.distillation_loss)"]
    assert (table["steps"] > 0).all()
    assert table.attrs["max step difference"] < 1e-4  # the same loss, the same batches: the same curve
    shifted = exercise.train_with_your_loss(lambda *a: distill.distillation_loss(*a) + 1.0, train_df, logits,
                                            splits.test.iloc[:16], rows=24, epochs=1, progress=False)
    assert shifted.attrs["max step difference"] == pytest.approx(1.0, abs=1e-3)
