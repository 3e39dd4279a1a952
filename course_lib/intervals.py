"""Is a difference real? Bootstrap intervals, the paired bootstrap of a difference, McNemar's test,
stratified k-fold indices, and a verdict that says "within noise" when the interval allows it.

Metric names are those of :func:`course_lib.evaluate.quality`: ``accuracy``, ``precision``,
``recall``, ``f1``. With labels 0/1 they are the binary metrics of class 1 (spam); with more
classes, precision, recall and F1 are macro averages over the classes. Point estimates come
from scikit-learn; the resamples are scored from their confusion matrices in NumPy (the same
formulas, checked against scikit-learn in the tests), so thousands of resamples take milliseconds.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import stats as scipy_stats
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score
from sklearn.model_selection import StratifiedKFold

from . import config

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
    To feed :func:`verdict_with_interval` with a as the baseline: drop in points = ``-100 * diff``,
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


def verdict_with_interval(quality_drop_points: float, drop_low: float, drop_high: float,
                          size_ratio: float, speedup: float) -> tuple[str, str]:
    """The rule of thumb of :func:`course_lib.evaluate.verdict`, told by the interval of the drop.

    ``quality_drop_points``: baseline minus variant in percentage points; ``drop_low``/``drop_high``:
    the interval of that drop (e.g. from :func:`paired_bootstrap_diff`), in points.
    ``size_ratio``: baseline MB / variant MB; ``speedup``: baseline latency / variant latency.

    - the interval spans 0: **within noise** (this test set cannot tell the two apart); the reason
      gives the gains, and warns when the interval still allows a drop above the "bad" line;
    - the interval lies above the "bad" line (5 points): **bad**;
    - otherwise the drop is real (or a real gain) and the rule of thumb applies to it as it is.
    """
    from .evaluate import BAD_MIN_DROP, verdict  # a foundation module, imported when called

    if drop_low > drop_high:
        raise ValueError(f"drop_low ({drop_low}) is above drop_high ({drop_high}); pass the interval in order.")
    interval = f"[{drop_low:+.1f}, {drop_high:+.1f}] points"
    gains = f"{size_ratio:.1f}x smaller / {speedup:.1f}x faster"
    if drop_low <= 0 <= drop_high:
        reason = f"the quality drop {quality_drop_points:+.1f} has interval {interval}, which includes 0: {gains}"
        if drop_high > BAD_MIN_DROP:
            reason += f"; but a drop of up to {drop_high:.1f} points is not ruled out: evaluate on more messages"
        return "within noise", reason
    if drop_low > BAD_MIN_DROP:
        return "bad", f"even the interval's best case {interval} drops more than {BAD_MIN_DROP:g} points"
    label, reason = verdict(quality_drop_points, size_ratio, speedup)
    return label, f"{reason} (drop interval {interval}, excludes 0)"

