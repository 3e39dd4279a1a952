"""Chapter 06's study (cached, keyed), explorer (responds to its controls) and exercise checkers (the
reference passes, known mistakes are named)."""

from __future__ import annotations

import random

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from course_lib import baselines, config, data, explorers
from course_lib.exercises import stress as exercise
from course_lib.studies import stress as study


# --------------------------------------------------------------------------- the study: cached and keyed


@pytest.fixture
def tfidf_zoo():
    train = data.sample(data.sms_splits(seed=0).train, 600, seed=0)
    zoo = study.Zoo()
    zoo.add("tfidf a", baselines.tfidf_logreg(train, seed=0), "tfidf-a")
    zoo.add("tfidf b", baselines.tfidf_logreg(data.sample(train, 300, seed=1), seed=0), "tfidf-b")
    return zoo


def _files():
    folder = config.cache_dir() / "stress"
    return sorted(p.name for p in folder.glob("sweep_*.json")) if folder.is_dir() else []


def test_sweep_is_cached_and_keyed_by_models_and_settings(tmp_cache, tfidf_zoo):
    first = study.perturbation_sweep(tfidf_zoo, kinds=("leetspeak", "case"), strengths=(0, 1.0), progress=False)
    assert len(_files()) == 1
    again = study.perturbation_sweep(tfidf_zoo, kinds=("leetspeak", "case"), strengths=(0, 1.0), progress=False)
    assert again["seconds"] == first["seconds"] and len(_files()) == 1  # read back, not recomputed
    pd.testing.assert_frame_equal(first["table"], again["table"])
    table = first["table"].set_index(["model", "kind", "strength"])
    assert set(table.index.get_level_values("model")) == {"tfidf a", "tfidf b"}
    assert table.loc[("tfidf a", "case", 1.0), "f1"] == table.loc[("tfidf a", "case", 0.0), "f1"]  # TF-IDF lower-cases
    test = study.eval_sets()["sms"]
    pred = np.exp(tfidf_zoo.models["tfidf a"].predict_logits(test["text"].tolist())).argmax(1)
    assert table.loc[("tfidf a", "leetspeak", 0.0), "f1"] == pytest.approx(f1_score(test["label"], pred))
    ex = first["examples"]
    assert len(ex) == 2 * 2 * 3 and {"P(spam) tfidf a", "P(spam) tfidf b", "text"} <= set(ex.columns)
    originals = ex[ex["strength"] == 0]["text"].tolist()
    assert ex[(ex["kind"] == "leetspeak") & (ex["strength"] == 1.0)]["text"].tolist() != originals[:3]
    study.perturbation_sweep(tfidf_zoo, kinds=("leetspeak", "case"), strengths=(0, 0.5), progress=False)
    assert len(_files()) == 2  # other strengths: another key
    tfidf_zoo.keys["tfidf b"] = "tfidf-b-retrained"
    study.perturbation_sweep(tfidf_zoo, kinds=("leetspeak", "case"), strengths=(0, 1.0), progress=False)
    assert len(_files()) == 3  # another model key: another key


def test_attack_study_is_cached_and_counts_what_it_attacked(tmp_cache, tfidf_zoo):
    out = study.attack_study(tfidf_zoo, n=6, budget=2, progress=False)
    table = out["table"]
    assert list(table.index) == ["tfidf a", "tfidf b"]
    assert (table["attacked"] <= 6).all() and table["success_rate"].between(0, 1).all()
    assert study.attack_study(tfidf_zoo, n=6, budget=2, progress=False)["seconds"] == out["seconds"]


def test_calibration_and_threshold_tables(tmp_cache, tfidf_zoo):
    cal = study.calibration_table(tfidf_zoo)
    assert (cal["temperature"] > 0).all() and cal["ece"].between(0, 1).all()
    assert (cal["nll_scaled"] <= cal["nll"] + 0.05).all()  # fitted on validation, scored on test: close, usually lower
    thresholds = study.threshold_transfer(tfidf_zoo, reference="tfidf a")
    assert set(thresholds.index.get_level_values("threshold")) == {"shared", "own"}
    assert (thresholds.xs("shared", level="threshold")["t"] == thresholds.attrs["threshold"]).all()


# --------------------------------------------------------------------------- the explorer


def _fake_sweep():
    rows, ex = [], []
    for model, base in [("teacher", 0.95), ("student", 0.9)]:
        for kind, slope in [("leetspeak", 0.3), ("homoglyph", 0.6)]:
            for s in (0.0, 0.5, 1.0):
                rows.append({"model": model, "kind": kind, "strength": s, "f1": base - slope * s, "precision": 1, "recall": 1})
    for kind in ("leetspeak", "homoglyph"):
        for s in (0.0, 0.5, 1.0):
            for j in range(3):
                ex.append({"kind": kind, "strength": s, "example": j, "text": f"msg {j} {kind} {s}",
                           "P(spam) teacher": 0.9 - 0.1 * s, "P(spam) student": 0.8 - 0.3 * s})
    return {"table": pd.DataFrame(rows), "examples": pd.DataFrame(ex)}


def test_stress_explorer_updates_readout_and_plot_when_kind_or_strength_change(monkeypatch):
    drawn = []  # (title, x of the strength marker) of every figure the explorer shows
    monkeypatch.setattr(plt, "show", lambda: drawn.append((plt.gcf().axes[0].get_title(),
                                                           plt.gcf().axes[0].lines[-1].get_xdata()[0])))
    box = explorers.stress_explorer(_fake_sweep(), strength=0.5)
    kind, strength, readout, out = box.children
    assert "course-toggle" in kind._dom_classes and "course-slider" in strength._dom_classes
    assert "course-readout" in readout._dom_classes and "course-plot" in out._dom_classes
    first = readout.value
    assert "leetspeak at strength 0.50" in first and "teacher 0.800" in first and "msg 0 leetspeak 0.5" in first
    strength.value = 1.0
    assert "strength 1.00" in readout.value and "student 0.600" in readout.value  # F1 of the leetspeak curve at 1
    kind.value = "homoglyph"
    assert "homoglyph at strength 1.00" in readout.value and "teacher 0.350" in readout.value and "student 0.300" in readout.value
    assert "P(spam)" in readout.value and "msg 2 homoglyph 1.0" in readout.value
    assert [t for t, _ in drawn] == ["F1 under leetspeak (only the spam is perturbed)"] * 2 + \
        ["F1 under homoglyph (only the spam is perturbed)"]  # redrawn on every change
    assert [x for _, x in drawn] == [0.5, 1.0, 1.0]
    assert "Stress explorer" in repr(box)
    with pytest.raises(ValueError, match="not in the sweep"):
        explorers.stress_explorer(_fake_sweep(), models=["int8"])
    plt.close("all")


# --------------------------------------------------------------------------- the exercise checkers


def test_paired_bootstrap_checker_passes_the_reference_and_names_mistakes():
    assert exercise.check_paired_bootstrap(exercise.reference_paired_bootstrap) == "passed"

    def stub(y, a, b, n_boot=1000, seed=0):
        raise NotImplementedError

    assert exercise.check_paired_bootstrap(stub).startswith("not written yet")

    def no_seed(y, a, b, n_boot=1000, seed=0):
        y, a, b = map(np.asarray, (y, a, b))
        idx = np.random.randint(0, len(y), (n_boot, len(y)))
        return np.array([f1_score(y[i], b[i]) - f1_score(y[i], a[i]) for i in idx])

    assert "forgot the seed" in exercise.check_paired_bootstrap(no_seed)

    def unpaired(y, a, b, n_boot=1000, seed=0):
        y, a, b = map(np.asarray, (y, a, b))
        rng = np.random.default_rng(seed)
        out = []
        for _ in range(n_boot):
            i, j = rng.integers(0, len(y), len(y)), rng.integers(0, len(y), len(y))
            out.append(f1_score(y[j], b[j]) - f1_score(y[i], a[i]))
        return np.array(out)

    assert "unpaired" in exercise.check_paired_bootstrap(unpaired)

    def wrong_way(y, a, b, n_boot=1000, seed=0):
        return -exercise.reference_paired_bootstrap(y, a, b, n_boot, seed)

    assert "F1(a) − F1(b)" in exercise.check_paired_bootstrap(wrong_way)

    def no_resampling(y, a, b, n_boot=1000, seed=0):
        return np.full(n_boot, f1_score(b, y) - f1_score(a, y))

    assert "resample the messages" in exercise.check_paired_bootstrap(no_resampling)

    def half_resamples(y, a, b, n_boot=1000, seed=0):
        y, a, b = map(np.asarray, (y, a, b))
        rng = np.random.default_rng(seed)
        idx = [rng.integers(0, len(y), len(y) // 2) for _ in range(n_boot)]
        return np.array([f1_score(y[i], b[i], zero_division=0) - f1_score(y[i], a[i], zero_division=0) for i in idx])

    assert "all n, with replacement" in exercise.check_paired_bootstrap(half_resamples)
    assert "seed argument is not used" in exercise.check_paired_bootstrap(
        lambda y, a, b, n_boot=1000, seed=0: exercise.reference_paired_bootstrap(y, a, b, n_boot, 0))
    assert "200 numbers" in exercise.check_paired_bootstrap(lambda y, a, b, n_boot=1000, seed=0: np.zeros(10))


def test_perturbation_checker_passes_the_reference_and_names_mistakes():
    model = baselines.tfidf_logreg(data.sample(data.sms_splits(seed=0).train, 800, seed=0))
    assert exercise.check_perturbation(exercise.reference_perturbation, model=model) == "passed"

    def stub(text, strength, rng):
        raise NotImplementedError

    assert exercise.check_perturbation(stub, model=model).startswith("not written yet")
    always = lambda text, strength, rng: text.upper() + "!"  # noqa: E731
    assert "strength 0" in exercise.check_perturbation(always, model=model)
    global_random = lambda text, strength, rng: "".join(  # noqa: E731
        c * 2 if random.random() < strength else c for c in text)
    assert "not from the random module" in exercise.check_perturbation(global_random, model=model)
    assert "changed none" in exercise.check_perturbation(lambda text, strength, rng: text, model=model)
    spammy = lambda text, strength, rng: text if strength == 0 else text + " WIN a FREE prize, call now to claim"  # noqa: E731
    assert "changed the label" in exercise.check_perturbation(spammy, model=model)
    assert "empty message" in exercise.check_perturbation(lambda t, s, rng: t if s == 0 else " ", model=model)


def test_report_card_study_reads_the_sweep_and_attack_from_the_logits_cache(tmp_cache, tfidf_zoo, monkeypatch):
    study.perturbation_sweep(tfidf_zoo, progress=False)  # every kind at 0.5 (fast mode: 0, 0.5, 1)
    study.attack_study(tfidf_zoo, progress=False)
    test, youtube = study.eval_sets()["sms"], study.eval_sets()["youtube"]
    for name in tfidf_zoo.models:
        study.logits(tfidf_zoo, name, youtube["text"].tolist())
    sizes = []
    for name, model in tfidf_zoo.models.items():
        original = model.predict_logits

        def counted(batch, batch_size=64, original=original):
            sizes.append(len(batch))
            return original(batch, batch_size=batch_size)

        monkeypatch.setattr(model, "predict_logits", counted)
    card = study.report_card_study(tfidf_zoo, progress=False)
    assert list(card.index) == list(tfidf_zoo.models)
    assert sizes and max(sizes) == 1  # only the latency calls ran a model: every output was in the cache
    sweep = study.perturbation_sweep(tfidf_zoo, progress=False)["table"]
    at_half = sweep[(sweep["strength"] == 0.5) & (sweep["kind"] == "leetspeak")].set_index("model")["f1"]
    assert card.loc["tfidf a", "f1_leetspeak"] == pytest.approx(at_half["tfidf a"])
