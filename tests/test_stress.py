"""Perturbations, the greedy attack, tokenization, calibration, operational metrics and the report card."""

import difflib
import functools
import random

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, log_loss
from sklearn.pipeline import make_pipeline

from course_lib import baselines, data, evaluate, models, stats, students, stress

EDGE_TEXTS = ["a", "!", "ok", " x ", "🎉", "I", "12", "Free entry in 2 a wkly comp to win FA Cup final tkts 21st May 2005"]


@pytest.fixture(scope="module")
def sms_sample(splits):
    return data.sample(splits.test, 300, seed=0)


@pytest.fixture(scope="module")
def tfidf(splits):
    return baselines.tfidf_logreg(data.sample(splits.train, 1500, seed=0))


# --------------------------------------------------------------------------- perturbations


@pytest.mark.parametrize("kind", sorted(stress.PERTURBATIONS))
def test_perturbations_are_seeded_and_strength_zero_is_the_identity(kind, sms_sample):
    texts = sms_sample["text"].tolist()[:40]
    assert stress.perturb(texts, kind, 0.0, seed=3) == texts
    once = stress.perturb(texts, kind, 0.5, seed=3)
    assert once == stress.perturb(texts, kind, 0.5, seed=3)
    assert once != stress.perturb(texts, kind, 0.5, seed=4)
    assert once != texts
    assert stress.perturb(texts[::-1], kind, 0.5, seed=3) == once[::-1]  # seeded per text, not by position


@pytest.mark.parametrize("kind", sorted(stress.PERTURBATIONS))
def test_perturbations_never_produce_an_empty_message(kind):
    for strength in (0.3, 1.0):
        for seed in range(5):
            assert all(t.strip() for t in stress.perturb(EDGE_TEXTS, kind, strength, seed))
    for text in EDGE_TEXTS:  # the functions themselves, before perturb's guard
        for seed in range(5):
            assert stress.PERTURBATIONS[kind](text, 1.0, random.Random(seed)).strip()


def test_perturbations_do_what_their_names_say():
    rng = random.Random(0)
    assert stress.leetspeak("free prize", 1.0, rng) == "fr33 pr1z3"
    assert stress.case_change("free", 1.0, rng) == "FREE"
    spaced = stress.spacing("free", 1.0, rng)
    assert spaced.replace(spaced[1], "") == "free" and len(spaced) == 7
    glyphs = stress.homoglyphs("cash prize", 1.0, rng)
    assert glyphs != "cash prize" and len(glyphs) == len("cash prize") and not glyphs.isascii()
    assert stress.ham_padding("win cash now", 1.0, rng).startswith("win cash now ")
    assert len(stress.ham_padding("win cash now", 1.0, rng).split()) == 6
    assert sum(c in stress.EMOJI for c in stress.emoji("win cash now", 1.0, rng)) == 3
    typo = stress.typos("winner", 1.0, rng)
    assert typo != "winner" and abs(len(typo) - 6) <= 1
    with pytest.raises(ValueError, match="unknown perturbation"):
        stress.perturb(["x"], "rot13", 0.5)
    with pytest.raises(ValueError, match="strength"):
        stress.perturb(["x"], "typo", 1.5)


# --------------------------------------------------------------------------- attack


def test_attack_respects_its_budget_and_never_edits_ham(tfidf, sms_sample):
    texts, labels = sms_sample["text"].tolist(), sms_sample["label"].to_numpy()
    result = stress.attack(tfidf, texts, budget=2, seed=0, labels=labels)
    caught = (labels == 1) & (np.exp(tfidf.predict_logits(texts)).argmax(axis=1) == 1)
    np.testing.assert_array_equal(result.attacked, caught)
    assert result.attacked.sum() >= 10
    for i, (before, after) in enumerate(zip(texts, result.texts)):
        ops = difflib.SequenceMatcher(a=before.split(), b=after.split(), autojunk=False).get_opcodes()
        changed_words = sum(i2 - i1 for tag, i1, i2, _, _ in ops if tag != "equal")  # words of the original
        assert changed_words == result.edits[i] <= 2
        if not result.attacked[i]:
            assert after == before and result.edits[i] == 0 and not result.success[i]
    assert (result.p_after[result.attacked] <= result.p_before[result.attacked] + 1e-9).all()
    assert result.success.sum() > 0  # a bag-of-words model loses words it has never seen spelled this way
    assert np.all(result.p_after[result.success] < 0.5)
    assert stress.attack(tfidf, texts, budget=2, seed=0, labels=labels).texts == result.texts  # seeded
    untouched = stress.attack(tfidf, texts, budget=0, labels=labels)
    assert untouched.texts == texts and untouched.success.sum() == 0
    more = stress.attack(tfidf, texts, budget=4, seed=0, labels=labels)
    assert more.success.sum() >= result.success.sum()


# --------------------------------------------------------------------------- tokenization


def test_tokenization_change_case_is_free_homoglyphs_cost_pieces(sms_sample):
    tokenizer = students._teacher_tokenizer()  # uncased: lower-cases before splitting
    spam = sms_sample[sms_sample["label"] == 1]["text"].tolist()
    case = stress.tokenization_change(tokenizer, spam, "case", 1.0)
    assert case["texts_changed"] == 0.0 and case["piece_ratio"] == 1.0
    glyphs = stress.tokenization_change(tokenizer, spam, "homoglyph", 1.0)
    assert glyphs["piece_ratio"] > 1.2
    trimmed = students.trimmed_tokenizer(tokenizer, students.used_token_ids(tokenizer, sms_sample["text"].tolist()))
    trimmed_glyphs = stress.tokenization_change(trimmed, spam, "homoglyph", 1.0)
    assert trimmed_glyphs["unk_after"] > glyphs["unk_after"]  # the trimmed vocabulary lost the look-alike letters


# --------------------------------------------------------------------------- calibration


def test_ece_is_near_zero_when_calibrated_and_larger_when_overconfident():
    rng = np.random.default_rng(0)
    confidence = rng.uniform(0.5, 1.0, 20000)
    correct = rng.random(20000) < confidence  # right exactly as often as it says
    y = rng.integers(0, 2, 20000)
    pred = np.where(correct, y, 1 - y)
    p_spam = np.where(pred == 1, confidence, 1 - confidence)
    calibrated = stats.expected_calibration_error(y, p_spam)
    assert calibrated < 0.02
    over = np.where(pred == 1, confidence ** 0.25, 1 - confidence ** 0.25)  # same predictions, surer
    assert stats.expected_calibration_error(y, over) > calibrated + 0.1
    table = stats.reliability_table(y, over)
    assert table["count"].sum() == 20000 and (table["gap"] < 0).all()
    two_columns = np.column_stack([1 - p_spam, p_spam])
    assert stats.expected_calibration_error(y, two_columns) == pytest.approx(calibrated)


def test_temperature_scaling_lowers_nll_on_the_data_it_was_fitted_on():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(500, 3)) * 2
    y = np.array([rng.choice(3, p=np.exp(l) / np.exp(l).sum()) for l in logits])
    overconfident = 4 * logits
    t = stats.fit_temperature(overconfident, y)
    assert t == stats.fit_temperature(overconfident, y)  # deterministic
    assert t > 2
    assert stats.nll(overconfident, y, t) < stats.nll(overconfident, y, 1.0)
    probs = np.exp(overconfident) / np.exp(overconfident).sum(axis=1, keepdims=True)
    assert stats.nll(overconfident, y) == pytest.approx(log_loss(y, probs), rel=1e-6)


# --------------------------------------------------------------------------- operations


def test_latency_percentiles_and_throughput_report_their_threads(tfidf, sms_sample):
    texts = sms_sample["text"].tolist()
    lat = evaluate.latency_ms(tfidf, texts[:20], runs=30, warmup=2, threads=1)
    assert 0 < lat["median_ms"] <= lat["p95_ms"] <= lat["p99_ms"] and lat["threads"] == 1 and lat["runs"] == 30
    curve = evaluate.throughput_curve(tfidf, texts[:64], batch_sizes=(1, 8, 64), threads=1)
    assert curve["batch_size"].tolist() == [1, 8, 64] and (curve["samples_per_s"] > 0).all()


def test_serving_footprint_measures_a_fresh_process(tmp_cache, sms_sample):
    tiny = students.small_bert(layers=1, hidden=32, heads=2, intermediate=64)
    models.save_classifier(tiny, "tiny-serving")
    out = evaluate.serving_footprint(functools.partial(models.load_classifier, "tiny-serving"),
                                   sms_sample["text"].tolist()[:16], threads=1)
    assert out["peak_mb"] >= out["baseline_mb"] > 100  # the interpreter with torch and transformers
    assert 0 < out["serving_mb"] < 500 and out["load_s"] > 0 and out["threads"] == 1
    with pytest.raises(TypeError, match="module-level function"):
        evaluate.serving_footprint(lambda: tiny, ["hi"])


# --------------------------------------------------------------------------- report card


def test_report_card_on_the_binary_task(tfidf, sms_sample, splits):
    tiny = students.small_bert(layers=1, hidden=32, heads=2, intermediate=64)
    youtube = data.sample(data.load_youtube_spam(), 100, seed=0)
    texts, labels = sms_sample["text"].tolist(), sms_sample["label"].tolist()
    card = stress.report_card({"tfidf": tfidf, "tiny": tiny}, texts, labels, shift=youtube, n_boot=300,
                              latency_runs=5, attack_n=10, budget=2, progress=False, threads=1)
    assert list(card.index) == ["tfidf", "tiny"] and card.attrs["metric"] == "F1 (class 1)"
    row = card.loc["tfidf"]
    assert row["f1"] == pytest.approx(f1_score(labels, np.exp(tfidf.predict_logits(texts)).argmax(axis=1)))
    assert row["f1_low"] <= row["f1"] <= row["f1_high"]
    assert row["f1_case"] == row["f1"]  # TF-IDF lower-cases its input: case changes cannot move it
    for kind in stress.PERTURBATIONS:
        assert 0 <= card.loc["tiny", f"f1_{kind}"] <= 1
    assert 0 <= row["attack_success"] <= 1 and row["attacked"] <= 10
    assert row["shift_drop_points"] == pytest.approx(100 * (row["f1"] - row["shift_f1"]))
    assert row["verdict"] == "baseline"
    assert card.loc["tiny", "verdict"] in {"within noise", "good", "bad", "depends on the use case"}
    assert card.loc["tiny", "change_low"] <= card.loc["tiny", "f1_change_points"] <= card.loc["tiny", "change_high"]
    assert 0 <= card.loc["tiny", "mcnemar_p"] <= 1 and (card["threads"] == 1).all()
    assert (card["size_mb"] > 0).all() and (card["latency_p95_ms"] >= card["latency_p50_ms"]).all()


def _three_class_csv(path, n=150, seed=0):
    rng = np.random.default_rng(seed)
    vocab = {0: "meeting agenda project report deadline office", 1: "win prize free cash claim offer",
             2: "pizza dinner recipe cheese pasta salad"}
    rows = []
    for i in range(n):
        label = i % 3
        own, other = vocab[label].split(), vocab[(label + 1) % 3].split()
        words = [rng.choice(own) if rng.random() < 0.8 else rng.choice(other) for _ in range(6)]
        rows.append({"text": " ".join(words), "label": label})
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_report_card_on_a_three_class_csv(tmp_path):
    from transformers import BertConfig, BertForSequenceClassification

    frame = pd.read_csv(_three_class_csv(tmp_path / "three.csv"))
    train, test = frame.iloc[:90], frame.iloc[90:]
    linear = baselines.SklearnVariant(make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=500)).fit(
        train["text"], train["label"]), name="tf-idf 3 classes")
    tokenizer = students._teacher_tokenizer()  # students.small_bert builds 2-class heads only
    cfg = BertConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=64, num_labels=3)
    bert = models.TextClassifier(BertForSequenceClassification(cfg).eval(), tokenizer, max_length=64, name="bert 3")
    texts, labels = test["text"].tolist(), test["label"].tolist()
    card = stress.report_card({"linear": linear, "bert": bert}, texts, labels, n_boot=200, latency_runs=5,
                              attack_n=12, budget=2, kinds=("typo", "homoglyph"), progress=False, threads=1)
    assert card.attrs["metric"] == "macro F1" and card.attrs["stressed"] == "every message"
    predicted = np.exp(linear.predict_logits(texts)).argmax(axis=1)
    assert card.loc["linear", "f1"] == pytest.approx(f1_score(labels, predicted, average="macro"))
    assert card.loc["linear", "f1"] > 0.8
    assert {"f1_typo", "f1_homoglyph", "attack_success", "ece", "verdict"} <= set(card.columns)
    assert 0 < card.loc["linear", "attacked"] <= 12 and 0 <= card.loc["linear", "ece"] <= 1
    assert card.loc["bert", "verdict"] in {"within noise", "good", "bad", "depends on the use case"}


def test_attack_with_a_scorer_is_the_same_attack_and_messages_are_independent(tfidf, sms_sample):
    texts, labels = sms_sample["text"].tolist(), sms_sample["label"].to_numpy()
    spam = [t for t, y in zip(texts, labels) if y == 1][:12]
    calls = []

    def scorer(batch):
        calls.append(len(batch))
        return stress._probs(tfidf, batch)

    plain = stress.attack(tfidf, spam, budget=2, seed=0)
    scored = stress.attack(tfidf, spam, budget=2, seed=0, scorer=scorer)
    assert calls and scored.texts == plain.texts and (scored.success == plain.success).all()
    half = stress.attack(tfidf, spam[:6], budget=2, seed=0)  # each message's attack depends on it alone
    assert half.texts == plain.texts[:6] and (half.edits == plain.edits[:6]).all()


def test_report_card_reads_outputs_from_probs_and_still_times_the_model(tfidf, sms_sample, splits):
    texts, labels = sms_sample["text"].tolist(), sms_sample["label"].tolist()
    youtube = data.sample(data.load_youtube_spam(), 80, seed=0)

    class Counting:  # the TF-IDF model, counting how many texts each call predicts
        def __init__(self):
            self.sizes = []

        def predict_logits(self, batch, batch_size=64):
            self.sizes.append(len(batch))
            return tfidf.predict_logits(batch, batch_size=batch_size)

    kept = {}

    def probs(name, batch):
        kept.setdefault(name, 0)
        kept[name] += len(batch)
        return stress._probs(tfidf, batch)

    common = dict(shift=youtube, n_boot=200, latency_runs=5, attack_n=8, budget=2, progress=False, threads=1)
    plain = stress.report_card({"a": tfidf}, texts, labels, **common)
    counting = Counting()
    card = stress.report_card({"a": counting}, texts, labels, probs=probs, **common)
    assert kept["a"] > len(texts) + len(youtube)  # test, shift, perturbed and attacked texts came from probs
    assert counting.sizes and max(counting.sizes) == 1  # the model itself only ran the batch-1 latency calls
    quality = ["f1", "f1_low", "f1_high", "shift_f1", "attack_success", "ece"] + [f"f1_{k}" for k in stress.PERTURBATIONS]
    pd.testing.assert_series_equal(card.loc["a", quality], plain.loc["a", quality])
