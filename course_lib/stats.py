"""Statistics every chapter shares.

- The spread of a result over seeds (:func:`summarize`, :func:`describe_effect`) and the messages
  on which two models disagree (:func:`flip_report`).
- Is a difference real? (chapter 06) Bootstrap intervals (:func:`bootstrap_ci`), the *paired*
  bootstrap of a difference (:func:`paired_bootstrap_diff`), McNemar's test (:func:`mcnemar`) and
  stratified k-fold indices (:func:`kfold_indices`).
- Calibration (chapter 06): the reliability table, expected calibration error, NLL and
  temperature scaling (:func:`fit_temperature`).

A *study* here is a frame with one row per (model, setting, seed) and a column per metric, as
:func:`course_lib.studies.distillation.seed_study` returns it; a *benchmark* is an
:class:`course_lib.evaluate.Benchmark` that kept each model's predictions.

Metric names are those of :func:`course_lib.evaluate.quality`: ``accuracy``, ``precision``,
``recall``, ``f1``. With labels 0/1 they are the binary metrics of class 1 (spam); with more
classes, precision, recall and F1 are macro averages over the classes. Point estimates come
from scikit-learn; bootstrap resamples are scored from their confusion matrices in NumPy (the same
formulas, checked against scikit-learn in the tests), so thousands of resamples take milliseconds.
This module imports no other course module but :mod:`course_lib.config`
(:mod:`course_lib.evaluate` builds on it, never the reverse).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score
from sklearn.model_selection import StratifiedKFold

from . import config


def summarize(study: pd.DataFrame, metrics: Sequence[str] = ("sms_f1", "sms_acc", "youtube_f1")) -> pd.DataFrame:
    """Mean ± standard deviation over seeds, one row per (setting, model), as ``"0.966 ± 0.004"`` strings,
    plus the number of seeds ``n``. Numeric means and stds are in ``.attrs["mean"]`` / ``.attrs["std"]``."""
    groups = study.groupby(["setting", "model"], sort=False)
    mean = groups[list(metrics)].mean()
    std = groups[list(metrics)].std(ddof=1).fillna(0.0)
    table = pd.DataFrame(index=mean.index)
    for m in metrics:
        table[m] = [f"{a:.3f} ± {b:.3f}" for a, b in zip(mean[m], std[m])]
    table["n"] = groups.size()
    table.attrs["mean"] = mean
    table.attrs["std"] = std
    return table


def describe_effect(study: pd.DataFrame, setting: str, metric: str, baseline: str, variant: str) -> str:
    """One sentence on ``variant`` − ``baseline`` for ``metric`` in ``setting``, from the numbers in ``study``:
    the mean difference over seeds, its spread, and whether it is larger than the seed-to-seed noise."""
    part = study[study["setting"] == setting]
    a = part[part["model"] == baseline].set_index("seed")[metric]
    b = part[part["model"] == variant].set_index("seed")[metric]
    if a.empty or b.empty:
        raise KeyError(f"no rows for {baseline!r} and {variant!r} in setting {setting!r}.")
    if len(a) == 1:  # a single model (the teacher): compare every seed of the other with it
        a = pd.Series(float(a.iloc[0]), index=b.index)
    common = a.index.intersection(b.index)
    diff = (b[common] - a[common]).to_numpy()
    mean = float(diff.mean())
    spread = float(diff.std(ddof=1)) if len(diff) > 1 else float("nan")
    noise = float(np.nanmax([a.std(ddof=1) if len(a) > 1 else np.nan, b.std(ddof=1) if len(b) > 1 else np.nan, 0.0]))
    wins = int((diff > 0).sum())
    same_sign = len(diff) > 1 and (wins == len(diff) or wins == 0) and not np.any(diff == 0)
    if len(diff) > 1 and abs(mean) > 2 * max(spread, 1e-9):
        verdict = "a consistent difference (larger than twice its seed-to-seed spread)"
    elif same_sign and abs(mean) > spread:
        verdict = "the same direction for every seed, though its size varies a lot from seed to seed"
    elif len(diff) > 1 and abs(mean) <= max(noise, spread):
        verdict = "within the seed-to-seed noise: no measurable effect"
    else:
        verdict = "a difference, but not much larger than the noise: more seeds would be needed to be sure"
    return (f"{setting}, {metric.replace('_', ' ')}: {variant} − {baseline} = {mean:+.3f}"
            + (f" ± {spread:.3f}" if len(diff) > 1 else "")
            + f" over {len(diff)} seed(s) ({wins}/{len(diff)} better) → {verdict}.")


def flip_report(bench, baseline: str, variant: str, train_texts: Sequence[str], tokenizer) -> tuple[pd.DataFrame, dict]:
    """The messages on which two benchmarked models disagree, with facts that help explain why.

    Columns: ``text``, ``label`` (true), ``right`` (which model got it right), ``P(spam)`` of each,
    ``teacher margin`` (|P(spam) − 0.5| of the baseline: small = the baseline was unsure),
    ``tokens`` and ``rare pieces`` (word pieces seen fewer than 3 times in ``train_texts``).
    The summary dict compares flipped messages with all messages: median baseline margin and
    rare-piece share.
    """
    counts: dict[int, int] = {}
    for ids in tokenizer(list(train_texts), truncation=True, max_length=128)["input_ids"]:
        for i in ids:
            counts[i] = counts.get(i, 0) + 1
    special = set(tokenizer.all_special_ids)

    def facts(text):
        ids = [i for i in tokenizer(text, truncation=True, max_length=128)["input_ids"] if i not in special]
        rare = sum(1 for i in ids if counts.get(i, 0) < 3)
        return len(ids), rare

    a, b = bench.predictions[baseline], bench.predictions[variant]
    labels = np.asarray(bench.labels)
    margin_all = np.abs(a.spam_prob - 0.5)
    changed = np.flatnonzero(a.labels != b.labels)
    rows = []
    for i in changed:
        n_tok, rare = facts(bench.texts[i])
        right = baseline if a.labels[i] == labels[i] else variant
        rows.append({"text": bench.texts[i], "label": "spam" if labels[i] else "ham", "right": right,
                     f"P(spam) {baseline}": float(a.spam_prob[i]), f"P(spam) {variant}": float(b.spam_prob[i]),
                     "teacher margin": float(margin_all[i]), "tokens": n_tok, "rare pieces": rare})
    table = pd.DataFrame(rows)
    rare_all = np.array([facts(t)[1] > 0 for t in bench.texts])
    summary = {
        "flips": int(len(changed)),
        "baseline_right": int(sum(r["right"] == baseline for r in rows)),
        "variant_right": int(sum(r["right"] == variant for r in rows)),
        "median_margin_flipped": float(np.median(margin_all[changed])) if len(changed) else float("nan"),
        "median_margin_all": float(np.median(margin_all)),
        "share_rare_flipped": float(np.mean(rare_all[changed])) if len(changed) else float("nan"),
        "share_rare_all": float(np.mean(rare_all)),
    }
    return table, summary


# --------------------------------------------------------------------------- is a difference real?

METRICS = ("accuracy", "precision", "recall", "f1")
MCNEMAR_EXACT_BELOW = 25  # fewer discordant pairs than this: exact binomial test, else chi-square


def _check(y_true, *preds) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """Integer arrays of equal length, and the sorted classes seen in any of them."""
    y = np.asarray(y_true, dtype=int)
    ps = [np.asarray(p, dtype=int) for p in preds]
    if y.ndim != 1 or len(y) == 0:
        raise ValueError("y_true must be a non-empty 1-D sequence of class labels.")
    for p in ps:
        if p.shape != y.shape:
            raise ValueError(f"y_true has {len(y)} labels but a prediction has {p.shape[0]}; pass one label per message.")
    classes = np.unique(np.concatenate([y, *ps]))
    return y, ps, classes


def _is_binary(classes: np.ndarray) -> bool:
    return set(classes.tolist()) <= {0, 1}


def score(y_true: Sequence[int], y_pred: Sequence[int], metric: str = "f1") -> float:
    """One metric by scikit-learn: binary (class 1 positive) for 0/1 labels, macro average otherwise."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}.")
    y, (p,), classes = _check(y_true, y_pred)
    if metric == "accuracy":
        return float(accuracy_score(y, p))
    fn = {"precision": precision_score, "recall": recall_score, "f1": f1_score}[metric]
    if _is_binary(classes):
        return float(fn(y, p, pos_label=1, average="binary", zero_division=0))
    return float(fn(y, p, labels=classes, average="macro", zero_division=0))


def _confusions(y: np.ndarray, p: np.ndarray, classes: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Confusion matrices (B, K, K) [true, predicted] of the B resamples ``idx`` (B, n) of (y, p)."""
    k = len(classes)
    cell = np.searchsorted(classes, y) * k + np.searchsorted(classes, p)  # (n,) cell of each message
    flat = cell[idx] + (np.arange(len(idx)) * k * k)[:, None]  # one block of k*k cells per resample
    return np.bincount(flat.ravel(), minlength=len(idx) * k * k).reshape(len(idx), k, k)


def _metric_from_confusions(cm: np.ndarray, metric: str, binary: bool) -> np.ndarray:
    """The metric of each confusion matrix in ``cm`` (B, K, K); 0 where a ratio is 0/0 (as zero_division=0)."""
    tp = np.diagonal(cm, axis1=1, axis2=2).astype(float)  # (B, K)
    if metric == "accuracy":
        return tp.sum(axis=1) / cm.sum(axis=(1, 2))
    predicted = cm.sum(axis=1).astype(float)  # column sums: predicted as class k
    actual = cm.sum(axis=2).astype(float)  # row sums: truly class k
    if metric == "precision":
        num, den = tp, predicted
    elif metric == "recall":
        num, den = tp, actual
    else:  # f1 = 2 TP / (2 TP + FP + FN)
        num, den = 2 * tp, predicted + actual
    per_class = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
    return per_class[:, 1] if binary else per_class.mean(axis=1)


def _resample_scores(y, preds, classes, metric, n_boot, seed, same_indices=True, chunk=2_000_000):
    """Metric of each prediction array on ``n_boot`` resamples of the messages: array (len(preds), n_boot).

    ``same_indices=True``: every prediction array is scored on the same resampled messages (paired).
    Resamples are drawn in chunks so the index matrix stays under ``chunk`` entries.
    """
    rng = np.random.default_rng(seed)
    n, binary = len(y), _is_binary(classes)
    out = np.empty((len(preds), n_boot))
    step = max(1, chunk // n)
    for start in range(0, n_boot, step):
        b = min(step, n_boot - start)
        shared = rng.integers(0, n, size=(b, n))
        for j, p in enumerate(preds):
            idx = shared if same_indices else rng.integers(0, n, size=(b, n))
            out[j, start : start + b] = _metric_from_confusions(_confusions(y, p, classes, idx), metric, binary)
    return out


def _percentiles(values: np.ndarray, alpha: float) -> tuple[float, float]:
    low, high = np.percentile(values, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(low), float(high)


def _check_alpha(alpha: float, n_boot: int) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1 (0.05 gives a 95 % interval), got {alpha}.")
    if n_boot < 100:
        raise ValueError(f"n_boot={n_boot} is too few resamples for percentile intervals; use at least 100 (1,000+ is usual).")


def bootstrap_ci(y_true, y_pred, metric: str = "f1", n_boot: int | None = None, alpha: float = 0.05,
                 seed: int = 0) -> dict:
    """Percentile bootstrap interval of ``metric`` on these messages: the messages are resampled with
    replacement ``n_boot`` times (default 2,000; 1,000 in fast mode) and the metric recomputed on each.

    Returns ``metric``, ``value`` (on all messages), ``low``/``high`` (the ``1 - alpha`` interval),
    ``std`` (bootstrap standard error), ``level``, ``n`` (messages), ``n_boot`` and ``seed``.
    """
    n_boot = int(n_boot or config.pick(2000, 1000))
    _check_alpha(alpha, n_boot)
    value = score(y_true, y_pred, metric)
    y, (p,), classes = _check(y_true, y_pred)
    boot = _resample_scores(y, [p], classes, metric, n_boot, seed)[0]
    low, high = _percentiles(boot, alpha)
    return {"metric": metric, "value": value, "low": low, "high": high, "std": float(boot.std(ddof=1)),
            "level": 1 - alpha, "n": len(y), "n_boot": n_boot, "seed": seed}


def paired_bootstrap_diff(y_true, pred_a, pred_b, metric: str = "f1", n_boot: int | None = None,
                          alpha: float = 0.05, seed: int = 0, paired: bool = True) -> dict:
    """Bootstrap interval of ``metric(b) - metric(a)`` for two models scored on the same messages.

    Paired (the default): each resample draws the same messages for both models, so what they
    have in common (the easy and the hard messages) cancels out of the difference. ``paired=False``
    resamples each model's messages independently, for comparison: a wider interval.
    To feed :func:`course_lib.evaluate.verdict_with_interval` with a as the baseline: drop in points = ``-100 * diff``,
    its interval ``(-100 * high, -100 * low)``.

    Returns ``metric``, ``a``, ``b`` (values on all messages), ``diff`` (b - a), ``low``/``high``,
    ``std``, ``p_b_worse`` (share of resamples where b scores below a), ``level``, ``n``,
    ``n_boot``, ``seed`` and ``paired``.
    """
    n_boot = int(n_boot or config.pick(2000, 1000))
    _check_alpha(alpha, n_boot)
    a, b = score(y_true, pred_a, metric), score(y_true, pred_b, metric)
    y, (pa, pb), classes = _check(y_true, pred_a, pred_b)
    boot = _resample_scores(y, [pa, pb], classes, metric, n_boot, seed, same_indices=paired)
    diffs = boot[1] - boot[0]
    low, high = _percentiles(diffs, alpha)
    return {"metric": metric, "a": a, "b": b, "diff": b - a, "low": low, "high": high,
            "std": float(diffs.std(ddof=1)), "p_b_worse": float(np.mean(diffs < 0)), "level": 1 - alpha,
            "n": len(y), "n_boot": n_boot, "seed": seed, "paired": paired}


def mcnemar(y_true, pred_a, pred_b) -> dict:
    """McNemar's test: do models a and b make errors at different rates on the same messages?

    Only the discordant messages count: ``a_only_right`` (a right, b wrong) and ``b_only_right``.
    With fewer than 25 of them, the exact two-sided binomial test (are they a fair coin's
    heads and tails?); otherwise the chi-square test with continuity correction,
    ``(|a_only - b_only| - 1)^2 / (a_only + b_only)`` on 1 degree of freedom. ``method`` says which.
    """
    y, (pa, pb), _ = _check(y_true, pred_a, pred_b)
    right_a, right_b = pa == y, pb == y
    a_only, b_only = int(np.sum(right_a & ~right_b)), int(np.sum(~right_a & right_b))
    discordant = a_only + b_only
    if discordant < MCNEMAR_EXACT_BELOW:
        method = "exact binomial"
        statistic = float(min(a_only, b_only))
        p_value = 1.0 if discordant == 0 else float(scipy_stats.binomtest(a_only, discordant, 0.5).pvalue)
    else:
        method = "chi-square with continuity correction"
        statistic = (abs(a_only - b_only) - 1) ** 2 / discordant
        p_value = float(scipy_stats.chi2.sf(statistic, df=1))
    return {"a_only_right": a_only, "b_only_right": b_only, "both_right": int(np.sum(right_a & right_b)),
            "both_wrong": int(np.sum(~right_a & ~right_b)), "discordant": discordant,
            "statistic": float(statistic), "p_value": min(1.0, p_value), "method": method}


def kfold_indices(labels: Sequence[int], k: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` stratified folds (scikit-learn's ``StratifiedKFold``, shuffled with ``seed``) as
    ``(train_indices, test_indices)`` pairs: each message is in exactly one test fold, and every
    fold keeps the class proportions of ``labels``."""
    labels = np.asarray(labels)
    if k < 2:
        raise ValueError(f"k-fold needs k >= 2 folds, got {k}.")
    _, counts = np.unique(labels, return_counts=True)
    if counts.min() < k:
        raise ValueError(f"the rarest class has {counts.min()} example(s), fewer than k={k} folds; "
                         "use fewer folds or more data.")
    folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return [(train, test) for train, test in folds.split(np.zeros(len(labels)), labels)]


# --------------------------------------------------------------------------- calibration


def _top_label(y_true, prob) -> tuple[np.ndarray, np.ndarray]:
    """Confidence (the top probability) and correctness of each prediction; ``prob`` is (n,) P(class 1)
    for two classes or (n, K) class probabilities."""
    prob = np.asarray(prob, dtype=float)
    prob = np.column_stack([1 - prob, prob]) if prob.ndim == 1 else prob
    y = np.asarray(y_true, dtype=int)
    if len(y) != len(prob) or len(y) == 0:
        raise ValueError(f"need one probability row per label; got {len(prob)} rows and {len(y)} labels.")
    return prob.max(axis=1), prob.argmax(axis=1) == y


def reliability_table(y_true, prob, n_bins: int = 10) -> pd.DataFrame:
    """Predictions grouped by confidence into ``n_bins`` equal-width bins over [0, 1]: per bin, the
    ``count``, mean ``confidence``, ``accuracy`` and ``gap`` (accuracy − confidence; < 0 is overconfident).
    Empty bins are left out. Confidence is the top-label probability (Guo et al., 2017)."""
    conf, correct = _top_label(y_true, prob)
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    rows = [{"low": b / n_bins, "high": (b + 1) / n_bins, "count": int((bins == b).sum()),
             "confidence": float(conf[bins == b].mean()), "accuracy": float(correct[bins == b].mean())}
            for b in range(n_bins) if (bins == b).any()]
    table = pd.DataFrame(rows)
    table["gap"] = table["accuracy"] - table["confidence"]
    return table


def expected_calibration_error(y_true, prob, n_bins: int = 10) -> float:
    """ECE: the bins' |accuracy − confidence| averaged with weights count / n (0 = perfectly calibrated)."""
    table = reliability_table(y_true, prob, n_bins)
    return float((table["count"] * table["gap"].abs()).sum() / table["count"].sum())


def nll(logits, y_true, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood (nats) of the labels under ``softmax(logits / temperature)``."""
    z = log_softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=1)
    return float(-z[np.arange(len(z)), np.asarray(y_true, dtype=int)].mean())


def fit_temperature(logits_val, y_val, bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """The temperature T (one number) that minimises the NLL of ``softmax(logits_val / T)`` on the
    validation labels (scipy's bounded scalar search over log T: deterministic). Dividing the test
    logits by T changes the confidence of each prediction, never which class wins."""
    result = minimize_scalar(lambda log_t: nll(logits_val, y_val, math.exp(log_t)),
                             bounds=(math.log(bounds[0]), math.log(bounds[1])), method="bounded",
                             options={"xatol": 1e-5})
    return float(math.exp(result.x))
