"""Bootstrap intervals, the paired bootstrap, McNemar's test, k-fold indices and the interval verdict."""

import math

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from course_lib import evaluate, stats


def _noisy_copy(y, error_rate, rng):
    """Predictions that disagree with ``y`` on a random ``error_rate`` of the messages (binary)."""
    return np.where(rng.random(len(y)) < error_rate, 1 - y, y)


def test_resampled_metrics_equal_scikit_learn():
    rng = np.random.default_rng(1)
    for k in (2, 3):
        y, p = rng.integers(0, k, 200), rng.integers(0, k, 200)
        classes = np.unique(np.concatenate([y, p]))
        idx = rng.integers(0, 200, size=(5, 200))
        cms = stats._confusions(y, p, classes, idx)
        avg = {"average": "binary", "pos_label": 1} if k == 2 else {"average": "macro", "labels": classes}
        sk = {"accuracy": lambda a, b: accuracy_score(a, b),
              "precision": lambda a, b: precision_score(a, b, zero_division=0, **avg),
              "recall": lambda a, b: recall_score(a, b, zero_division=0, **avg),
              "f1": lambda a, b: f1_score(a, b, zero_division=0, **avg)}
        for metric, fn in sk.items():
            fast = stats._metric_from_confusions(cms, metric, binary=(k == 2))
            slow = [fn(y[i], p[i]) for i in idx]
            np.testing.assert_allclose(fast, slow, err_msg=f"{metric}, {k} classes")
            assert stats.score(y, p, metric) == pytest.approx(fn(y, p))


def test_score_matches_evaluate_quality_on_binary_labels():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 300)
    p = _noisy_copy(y, 0.2, rng)
    q = evaluate.quality(y, p)
    for metric in stats.METRICS:
        assert stats.score(y, p, metric) == pytest.approx(q[metric])


def test_bootstrap_ci_is_seeded_and_contains_the_estimate():
    rng = np.random.default_rng(3)
    y = (rng.random(500) < 0.2).astype(int)
    p = _noisy_copy(y, 0.1, rng)
    a = stats.bootstrap_ci(y, p, "f1", n_boot=500, seed=7)
    assert a == stats.bootstrap_ci(y, p, "f1", n_boot=500, seed=7)
    assert a["low"] != stats.bootstrap_ci(y, p, "f1", n_boot=500, seed=8)["low"]
    assert a["low"] < a["value"] < a["high"]
    assert a["n"] == 500 and a["level"] == pytest.approx(0.95)


def test_bootstrap_interval_covers_the_true_f1_at_about_the_nominal_rate():
    # population: 30 % spam, recall 0.85, false-positive rate 0.05 -> the true (population) F1 is known
    prevalence, recall, fpr, n = 0.3, 0.85, 0.05, 400
    tp, fn, fp = prevalence * recall, prevalence * (1 - recall), (1 - prevalence) * fpr
    true_f1 = 2 * tp / (2 * tp + fp + fn)
    rng = np.random.default_rng(0)
    covered = []
    for dataset in range(200):
        y = (rng.random(n) < prevalence).astype(int)
        p = np.where(y == 1, rng.random(n) < recall, rng.random(n) < fpr).astype(int)
        ci = stats.bootstrap_ci(y, p, "f1", n_boot=500, seed=dataset)
        covered.append(ci["low"] <= true_f1 <= ci["high"])
    coverage = float(np.mean(covered))
    assert 0.90 <= coverage <= 0.99, coverage


def test_paired_interval_is_narrower_than_unpaired_on_correlated_models():
    rng = np.random.default_rng(4)
    y = (rng.random(1000) < 0.15).astype(int)
    a = _noisy_copy(y, 0.06, rng)
    b = a.copy()
    flip = rng.choice(1000, 15, replace=False)  # b = a except on 15 messages: strongly correlated
    b[flip] = 1 - b[flip]
    paired = stats.paired_bootstrap_diff(y, a, b, "f1", n_boot=1000, seed=0)
    unpaired = stats.paired_bootstrap_diff(y, a, b, "f1", n_boot=1000, seed=0, paired=False)
    assert paired["diff"] == pytest.approx(f1_score(y, b) - f1_score(y, a))
    assert paired["diff"] == unpaired["diff"]
    assert paired["low"] <= paired["diff"] <= paired["high"]
    assert (paired["high"] - paired["low"]) < 0.5 * (unpaired["high"] - unpaired["low"])


def _pairs(a_only, b_only, both_right=50, both_wrong=5):
    """Labels and two models' predictions with exactly these discordant counts (binary)."""
    y = np.array([1] * (a_only + b_only + both_right + both_wrong))
    a = np.array([1] * a_only + [0] * b_only + [1] * both_right + [0] * both_wrong)
    b = np.array([0] * a_only + [1] * b_only + [1] * both_right + [0] * both_wrong)
    return y, a, b


def test_mcnemar_exact_branch_matches_a_hand_computation():
    y, a, b = _pairs(2, 8)
    result = stats.mcnemar(y, a, b)
    # 10 discordant pairs, 2 of one kind: p = 2 * P(X <= 2), X ~ Binomial(10, 1/2) = 2 * (1 + 10 + 45) / 1024
    assert result["method"] == "exact binomial"
    assert (result["a_only_right"], result["b_only_right"], result["both_right"], result["both_wrong"]) == (2, 8, 50, 5)
    assert result["p_value"] == pytest.approx(2 * (1 + 10 + 45) / 1024)
    assert stats.mcnemar(*_pairs(0, 0))["p_value"] == 1.0


def test_mcnemar_chi_square_branch_matches_a_hand_computation():
    y, a, b = _pairs(10, 30)
    result = stats.mcnemar(y, a, b)
    statistic = (abs(10 - 30) - 1) ** 2 / 40  # 9.025
    assert result["method"] == "chi-square with continuity correction"
    assert result["statistic"] == pytest.approx(statistic)
    # chi-square with 1 degree of freedom: P(X > x) = erfc(sqrt(x / 2))
    assert result["p_value"] == pytest.approx(math.erfc(math.sqrt(statistic / 2)))
    assert result["p_value"] == pytest.approx(0.00266, abs=1e-5)


def test_kfold_folds_are_disjoint_cover_everything_and_are_stratified():
    rng = np.random.default_rng(5)
    labels = (rng.random(503) < 0.13).astype(int)
    folds = stats.kfold_indices(labels, k=5, seed=0)
    tests = [test for _, test in folds]
    assert len(folds) == 5
    assert sorted(np.concatenate(tests).tolist()) == list(range(503))  # each message tested exactly once
    for train, test in folds:
        assert not set(train) & set(test)
        assert len(train) + len(test) == 503
        expected = labels.sum() * len(test) / 503
        assert abs(labels[test].sum() - expected) <= 1  # the spam share of every fold is the overall one
    assert [t.tolist() for t in tests] == [t.tolist() for _, t in stats.kfold_indices(labels, k=5, seed=0)]
    with pytest.raises(ValueError, match="rarest class"):
        stats.kfold_indices([0] * 20 + [1] * 3, k=5)


def test_verdict_with_interval_says_within_noise_when_the_interval_spans_zero():
    # the example: a 0.5-point drop whose interval spans about +-1.5 points
    assert evaluate.verdict(0.5, 2.0, 2.0)[0] == "good"
    label, reason = evaluate.verdict_with_interval(0.5, -1.0, 2.0, size_ratio=2.0, speedup=2.0)
    assert label == "within noise" and "includes 0" in reason
    label, reason = evaluate.verdict_with_interval(1.0, -2.0, 7.5, 2.0, 2.0)
    assert label == "within noise" and "not ruled out" in reason
    assert evaluate.verdict_with_interval(1.0, 0.4, 1.6, 2.0, 2.0)[0] == "good"
    assert evaluate.verdict_with_interval(8.0, 6.0, 10.0, 3.0, 3.0)[0] == "bad"
    assert evaluate.verdict_with_interval(3.5, 2.0, 5.0, 2.0, 2.0)[0] == "depends on the use case"
    with pytest.raises(ValueError, match="in order"):
        evaluate.verdict_with_interval(1.0, 2.0, -1.0, 1.0, 1.0)


def test_compare_takes_the_interval_into_account():
    base = {"f1": 0.950, "size_mb": 90.0, "latency_ms": 10.0}
    small = {"f1": 0.945, "size_mb": 45.0, "latency_ms": 5.0}  # a 0.5-point drop, 2x smaller and faster
    assert evaluate.compare(base, small).attrs["verdict"] == "good"
    noisy = evaluate.compare(base, small, interval=(-1.0, 2.0))  # the drop's interval spans about +-1.5
    assert noisy.attrs["verdict"] == "within noise" and noisy.attrs["drop_low"] == -1.0
    # a paired_bootstrap_diff dict (b - a, as fractions) is read as the interval of the drop
    diff = {"diff": -0.005, "low": -0.020, "high": 0.010}
    assert evaluate.compare(base, small, interval=diff).attrs["drop_high"] == pytest.approx(2.0)
    assert evaluate.compare(base, small, interval=(0.2, 0.8)).attrs["verdict"] == "good"


def test_benchmark_compare_with_interval_uses_the_kept_predictions():
    class Fixed:  # a "model" that answers from a table
        def __init__(self, answers):
            self.answers = answers

        def predict_logits(self, texts, batch_size=64):
            return np.eye(2)[[self.answers[t] for t in texts]] * 5.0

        def size_mb(self):
            return 1.0

    rng = np.random.default_rng(3)
    y = (rng.random(300) < 0.3).astype(int)
    texts = [f"m{i}" for i in range(300)]
    a = Fixed(dict(zip(texts, _noisy_copy(y, 0.05, rng))))
    b = Fixed(dict(zip(texts, _noisy_copy(y, 0.06, rng))))
    bench = evaluate.Benchmark(texts, y.tolist())
    bench.run("a", a, measure_speed=False, progress=False)
    bench.run("b", b, measure_speed=False, progress=False)
    table = bench.compare("a", "b", interval=True)
    diff = stats.paired_bootstrap_diff(y, bench.predictions["a"].labels, bench.predictions["b"].labels)
    assert table.attrs["drop_low"] == pytest.approx(-100 * diff["high"])
    assert table.attrs["drop_low"] <= table.attrs["quality_drop_points"] <= table.attrs["drop_high"]
    assert "interval" in table.attrs["reason"]


def test_bad_input_gets_a_clear_error():
    with pytest.raises(ValueError, match="one label per message"):
        stats.bootstrap_ci([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="metric must be one of"):
        stats.bootstrap_ci([0, 1], [0, 1], metric="auc")
    with pytest.raises(ValueError, match="at least 100"):
        stats.bootstrap_ci([0, 1], [0, 1], n_boot=10)
