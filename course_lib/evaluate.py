"""Prediction (:func:`predict`), quality metrics (:func:`quality`) and one benchmark that
measures every model variant the same way.

In the spirit of the ``PerformanceBenchmark`` of *NLP with Transformers* (ch. 8):
quality (scikit-learn metrics; for two classes spam = 1 is the positive class, for more classes
macro and weighted averages plus a per-class table), latency at batch 1 (ms),
throughput (samples/s), size on disk (MB) and parameter count, collected into one
table so every chapter adds rows and results compare.

A *variant* is any object with

- ``predict_logits(texts: list[str], batch_size: int) -> ndarray (n, num_classes)``,
- ``size_mb() -> float``: MB (10^6 bytes) of its serialized weights,
- optionally ``num_parameters() -> int``.

:class:`course_lib.models.TextClassifier` is one; an ONNX Runtime session wrapper is another.
"""

from __future__ import annotations

import json
import os
import weakref
import pickle
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    precision_score,
    recall_score,
)

from . import config, data, noise, stats
from .progress import progress_bar

GOOD_MAX_DROP = 2.0  # quality drop in points below which a compressed model with real gains is "good"
BAD_MIN_DROP = 5.0  # above this drop, the variant is "bad" whatever it gains
REAL_GAIN = 1.2  # a size or speed ratio at least this large counts as a real gain


@dataclass
class Predictions:
    """Output of :func:`predict` for n texts.

    ``logits`` (n, 2) float32, ``probs`` (n, 2) softmax probabilities,
    ``labels`` (n,) int argmax (1 = spam), ``spam_prob`` (n,) = ``probs[:, 1]``.
    """

    logits: np.ndarray
    probs: np.ndarray
    labels: np.ndarray

    @property
    def spam_prob(self) -> np.ndarray:
        return self.probs[:, 1] if len(self.probs) else np.zeros(0, dtype=np.float32)


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature`` (numerically stable)."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    if z.size == 0:
        return z.astype(np.float32)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def predict(clf, texts: Iterable[str], batch_size: int = config.PREDICT_BATCH_SIZE) -> Predictions:
    """Predict a list of texts with any variant that has ``predict_logits`` (or ``logits``).

    An empty list gives empty arrays; texts longer than the model's maximum length are truncated.
    """
    texts = data.check_texts(texts)
    fn = getattr(clf, "predict_logits", None) or clf.logits
    return predictions_from_logits(fn(texts, batch_size=batch_size))


def predictions_from_logits(logits) -> Predictions:
    """:class:`Predictions` (probabilities and labels) of logits (n, classes) already computed."""
    logits = np.asarray(logits, dtype=np.float32)
    probs = softmax(logits)
    labels = probs.argmax(axis=1).astype(np.int64) if len(probs) else np.zeros(0, dtype=np.int64)
    return Predictions(logits=logits, probs=probs, labels=labels)


def format_points(value: float, digits: int = 1) -> str:
    """A signed number as text with ``digits`` decimals, zero always as ``+0.0`` (never ``-0.0``).

    For quality changes in percentage points: ``format_points(-1.591, 3) == "-1.591"``.
    """
    rounded = round(float(value), digits)
    return f"{rounded + 0.0:+.{digits}f}"  # + 0.0 turns -0.0 into 0.0


def _num_classes(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int | None) -> int:
    seen = int(max(y_true.max(initial=0), y_pred.max(initial=0))) + 1
    if num_classes is None:
        return max(2, seen)
    if seen > num_classes:
        raise ValueError(f"labels go up to {seen - 1} but num_classes is {num_classes}.")
    return int(num_classes)


def quality(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int | None = None) -> dict:
    """Quality of predicted class ids against the true ones, all computed by scikit-learn.

    Two classes (the spam data): ``accuracy``, ``precision``, ``recall``, ``f1`` of spam = 1 (the
    positive class) and ``confusion`` [[TN, FP], [FN, TP]]. More classes (``num_classes`` > 2, or
    labels above 1): ``accuracy``, ``macro_precision``, ``macro_recall``, ``macro_f1`` (unweighted
    mean over classes), ``weighted_f1`` (weighted by each class's support) and the K×K ``confusion``
    (rows: true class, columns: predicted). Per-class figures: :func:`per_class`.
    """
    y_true = np.asarray(y_true, dtype=int)
    y_pred = np.asarray(y_pred, dtype=int)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has {y_true.shape[0]} labels but y_pred has {y_pred.shape[0]}.")
    if len(y_true) == 0:
        raise ValueError("quality() needs at least one labelled example.")
    k = _num_classes(y_true, y_pred, num_classes)
    labels = list(range(k))
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    if k == 2:
        return {
            "accuracy": float(accuracy_score(y_true, y_pred)),
            "precision": float(precision_score(y_true, y_pred, pos_label=1, zero_division=0)),
            "recall": float(recall_score(y_true, y_pred, pos_label=1, zero_division=0)),
            "f1": float(f1_score(y_true, y_pred, pos_label=1, zero_division=0)),
            "confusion": cm,
        }
    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels, average="macro", zero_division=0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_precision": float(p),
        "macro_recall": float(r),
        "macro_f1": float(f),
        "weighted_f1": float(f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0)),
        "confusion": cm,
    }


def headline_metric(num_classes: int) -> str:
    """The one quality figure a comparison uses: ``"f1"`` (spam F1) for two classes, ``"macro_f1"`` for more."""
    return "f1" if num_classes == 2 else "macro_f1"


def per_class(y_true: Sequence[int], y_pred: Sequence[int], class_names: Sequence[str] | None = None) -> pd.DataFrame:
    """Precision, recall, F1 and support of every class (scikit-learn's ``precision_recall_fscore_support``),
    one row per class (index: class name), in class-id order."""
    y_true = np.asarray(y_true, dtype=int)
    y_pred = np.asarray(y_pred, dtype=int)
    k = _num_classes(y_true, y_pred, len(class_names) if class_names is not None else None)
    names = list(class_names) if class_names is not None else data.default_class_names(k)
    p, r, f, n = precision_recall_fscore_support(y_true, y_pred, labels=list(range(k)), average=None, zero_division=0)
    return pd.DataFrame({"precision": p, "recall": r, "f1": f, "support": n.astype(int)},
                        index=pd.Index(names, name="class"))


def threshold_table(y_true: Sequence[int], spam_prob: Sequence[float], thresholds: Sequence[float] | None = None) -> pd.DataFrame:
    """Precision, recall and F1 of "spam if P(spam) >= t" for each threshold t (scikit-learn)."""
    y_true = np.asarray(y_true, dtype=int)
    spam_prob = np.asarray(spam_prob, dtype=float)
    if thresholds is None:
        thresholds = np.round(np.linspace(0.05, 0.95, 19), 2)
    rows = []
    for t in thresholds:
        pred = (spam_prob >= t).astype(int)
        p, r, f, _ = precision_recall_fscore_support(y_true, pred, average="binary", pos_label=1, zero_division=0)
        cm = confusion_matrix(y_true, pred, labels=[0, 1])
        rows.append({"threshold": float(t), "precision": p, "recall": r, "f1": f,
                     "false_alarms": int(cm[0, 1]), "missed_spam": int(cm[1, 0])})
    return pd.DataFrame(rows)


def _timed_ms(fn, text: str, clock: Callable[[], float] | None = None) -> float:
    """Milliseconds of one batch-1 call ``fn([text], batch_size=1)`` (the one timing every speed figure uses);
    ``clock``: default ``time.perf_counter`` (wall time)."""
    clock = clock or time.perf_counter
    t0 = clock()
    fn([text], batch_size=1)
    return (clock() - t0) * 1000.0


def latency_ms(variant, texts: Sequence[str], runs: int = 100, warmup: int = 10, threads: int | None = None,
               noise_sources: dict | None = None) -> dict:
    """Batch-1 latency: ``warmup`` untimed calls, then ``runs`` timed calls, one text each.

    Texts are cycled in order. Returns ``median_ms`` (= p50), ``p95_ms``, ``p99_ms``, ``mean_ms``
    (milliseconds) and ``runs``. ``threads``: torch's thread count during the timing (restored
    after), reported as ``threads``: the model's own where it keeps one (an ONNX Runtime session).
    The timing is watched for signs of a busy machine (:mod:`course_lib.noise`: load average, other
    programs' CPU use, p95/p50 spread, a reference loop before and after): ``noisy`` (bool),
    ``noise`` (``"ok"`` or ``"noisy: <why>"``) and ``noise_check`` (:class:`course_lib.noise.NoiseCheck`).
    ``noise_sources``: injected sources for :func:`course_lib.noise.watch` (tests).
    """
    if not texts:
        raise ValueError("latency_ms needs at least one text.")
    fn = getattr(variant, "predict_logits")
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        for i in range(warmup):
            fn([texts[i % len(texts)]], batch_size=1)
        with noise.watch(torch.get_num_threads(), **(noise_sources or {})) as probe:
            times = [_timed_ms(fn, texts[i % len(texts)]) for i in range(runs)]
    finally:
        torch.set_num_threads(previous)
    median, p95 = float(statistics.median(times)), float(np.percentile(times, 95))
    check = probe.check(median, p95)
    return {
        "median_ms": median,
        "p95_ms": p95,
        "p99_ms": float(np.percentile(times, 99)),
        "mean_ms": float(np.mean(times)),
        "runs": runs,
        "threads": int(getattr(variant, "threads", threads or previous)),
        "noisy": check.noisy,
        "noise": check.label,
        "noise_check": check,
    }


SPREAD_RELIABLE = 0.3  # an interleaved speedup whose 25-75 % range is wider than 30 % of it is unreliable


def speed_ratio(baseline, variant, texts: Sequence[str], rounds: int | None = None, runs: int | None = None,
                warmup: int | None = None, threads: int | None = None, statistic: str = "median",
                cpu_time: bool = False, noise_sources: dict | None = None) -> dict:
    """How many times faster ``variant`` is than ``baseline`` at batch 1, measured interleaved.

    One loop of ``rounds`` rounds; round r takes the r-th text (cycling) and times it ``runs`` times
    with each model in alternation (A, B, then B, A, ..., so neither always goes first), then takes
    the ratio of the two models' ``statistic`` over that round, baseline ms / variant ms (> 1: the
    variant is faster). Each pair of calls is a few milliseconds apart on the same text, so both
    models see the same load and the ratio survives a busy machine that makes each latency alone
    meaningless. ``statistic``: ``"median"`` (what a user waits, typically) or ``"min"`` (the fastest
    call: what the model costs when no other program takes the core away; robust when most calls
    are preempted, but fair only for calls of similar length, e.g. a test of per-call overhead: on a
    busy machine a short call sometimes runs untouched while a long one almost never does, so the
    fastest-call ratio of a 40 ms teacher to a 8 ms student came out 12-25 instead of about 6).
    ``cpu_time=True``: each call is timed in CPU time of this thread (``time.thread_time``) instead of
    wall time, so time the core spent on other programs does not count (caches they evict still do);
    only with ``threads=1``, where torch computes on the calling thread. For comparing per-call work
    (overhead tests), not what a user waits. torch runs on ``threads`` threads (default
    :func:`config.num_threads`) throughout.

    Returns ``speedup`` (median over rounds), ``low``/``high`` (25th/75th percentiles over rounds),
    ``p5``/``p95`` (5th/95th), ``rounds``, ``runs``, ``threads``, ``baseline_ms``/``variant_ms``
    (medians over all timed calls, ms: as noisy as any single latency), ``ratios`` (per round),
    ``reliable`` (the 25-75 % range within :data:`SPREAD_RELIABLE` of the speedup) and ``noise``
    (the :mod:`course_lib.noise` label of the whole loop, for the record).
    """
    texts = list(texts)
    if not texts:
        raise ValueError("speed_ratio needs at least one text.")
    rounds = int(rounds or config.pick(20, 8))
    runs = int(runs or config.pick(10, 5))
    warmup = config.pick(5, 2) if warmup is None else int(warmup)
    if rounds < 2 or runs < 1:
        raise ValueError(f"speed_ratio needs at least 2 rounds and 1 run per round (got {rounds}, {runs}).")
    if statistic not in ("median", "min"):
        raise ValueError(f"statistic must be 'median' or 'min', got {statistic!r}.")
    stat = statistics.median if statistic == "median" else min
    if cpu_time and int(threads or config.num_threads()) != 1:
        raise ValueError("cpu_time=True needs threads=1: with more, torch computes on other threads too.")
    clock = time.thread_time if cpu_time else None
    fns = [getattr(baseline, "predict_logits"), getattr(variant, "predict_logits")]
    threads = int(threads or config.num_threads())
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    times: list[list[float]] = [[], []]
    ratios = []
    try:
        for fn in fns:
            for i in range(warmup):
                fn([texts[i % len(texts)]], batch_size=1)
        with noise.watch(threads, **(noise_sources or {})) as probe:
            for r in range(rounds):
                batch = [texts[r % len(texts)]] * runs
                order = (0, 1) if r % 2 == 0 else (1, 0)
                this = [[], []]
                for i, t in enumerate(batch):
                    for k in (order if i % 2 == 0 else order[::-1]):
                        this[k].append(_timed_ms(fns[k], t, clock))
                ratios.append(stat(this[0]) / stat(this[1]))
                times[0] += this[0]
                times[1] += this[1]
    finally:
        torch.set_num_threads(previous)
    speedup = float(statistics.median(ratios))
    low, high, p5, p95 = (float(np.percentile(ratios, q)) for q in (25, 75, 5, 95))
    return {"speedup": speedup, "low": low, "high": high, "p5": p5, "p95": p95, "rounds": rounds, "runs": runs,
            "threads": threads, "baseline_ms": float(statistics.median(times[0])),
            "variant_ms": float(statistics.median(times[1])), "ratios": [float(x) for x in ratios],
            "reliable": bool((high - low) <= SPREAD_RELIABLE * speedup), "statistic": statistic, "cpu_time": cpu_time,
            "noise": probe.check().label}


def throughput(variant, texts: Sequence[str], batch_sizes: Sequence[int] = (1, 8, 32)) -> dict:
    """Samples per second when predicting ``texts`` at each batch size: ``{batch_size: samples/s}``."""
    if not texts:
        raise ValueError("throughput needs at least one text.")
    fn = getattr(variant, "predict_logits")
    fn(list(texts[: max(batch_sizes)]), batch_size=max(batch_sizes))  # warm-up
    out = {}
    for b in batch_sizes:
        t0 = time.perf_counter()
        fn(list(texts), batch_size=b)
        out[int(b)] = len(texts) / (time.perf_counter() - t0)
    return out


def num_parameters(variant) -> int | None:
    fn = getattr(variant, "num_parameters", None)
    return int(fn()) if callable(fn) else None


def verdict(quality_drop_points: float, size_ratio: float, speedup: float,
            metric_label: str = "quality", speed_reliable: bool = True) -> tuple[str, str]:
    """The workbook's rule of thumb for a compressed model, as (verdict, reason).

    ``quality_drop_points``: baseline minus variant, in percentage points (e.g. F1 0.973 → 0.951 is 2.2).
    ``size_ratio``: baseline MB / variant MB. ``speedup``: baseline latency / variant latency.
    The reason states the change as the comparison table does: variant minus baseline, 3 decimals
    (a drop of 1.591 points reads "-1.591"). ``metric_label`` names the quality figure in it.
    ``speed_reliable=False`` (the latencies were measured on a busy machine, :mod:`course_lib.noise`):
    the speedup counts for nothing, and the reason says it is unreliable instead of "faster"/"slower".

    - drop ≤ 2 points with a real gain (≥ 1.2× smaller or faster): **good**;
    - drop > 5 points: **bad**, whatever the gains;
    - anything else: **depends on the use case** (how much speed/size is worth to you).
    """
    counted_speed = speedup if speed_reliable else 1.0
    gain = max(size_ratio, counted_speed) >= REAL_GAIN
    change = f"{metric_label} change {format_points(-quality_drop_points, 3)} points"
    speed = f"{speedup:.1f}x faster" if speed_reliable else f"speed unreliable ({speedup:.1f}x on a noisy timing)"
    unreliable = "" if speed_reliable else f"; the speed was measured on a busy machine: {noise.ADVICE}"
    if quality_drop_points > BAD_MIN_DROP:
        return "bad", f"{change}, a drop of more than {BAD_MIN_DROP:g}: predictions become unreliable"
    if quality_drop_points <= GOOD_MAX_DROP and gain:
        return "good", (f"{change}, within the {GOOD_MAX_DROP:g}-point allowance, "
                        f"with {size_ratio:.1f}x smaller / {speed}{unreliable}")
    if not gain:
        speed_part = f"{speedup:.2f}x speed" if speed_reliable else f"speed unreliable ({speedup:.2f}x on a noisy timing)"
        return "depends on the use case", (f"{change} and no real size or {'' if speed_reliable else 'trusted '}"
                                           f"speed gain ({size_ratio:.2f}x size, {speed_part}){unreliable}")
    return "depends on the use case", (f"{change} for {size_ratio:.1f}x smaller / {speed}: "
                                       f"worth it only if speed/size matter more{unreliable}")


class BenchmarkTable(pd.DataFrame):
    """A ``pandas.DataFrame`` (one row per variant) that notebooks show in a horizontally scrolling box,
    so its many columns are never cut off at the right edge. Everything else is a plain DataFrame;
    selections and ``.round()`` keep the scrolling display."""

    @property
    def _constructor(self):
        return BenchmarkTable

    def noise_note(self) -> str:
        """A sentence about the rows shown whose latency was measured on a busy machine (their
        ``speed_check`` in :attr:`Benchmark.table`, kept in ``attrs`` so a column selection keeps it);
        empty when none was, or when no speed column is shown."""
        checks = {k: v for k, v in self.attrs.get("speed_checks", {}).items()
                  if k in self.index and str(v).startswith("noisy")}
        speed_cols = [c for c in self.columns if str(c).startswith(("latency", "throughput", "speed"))]
        if not checks or not speed_cols:
            return ""
        rows = "; ".join(f"{k}: {v[len('noisy: '):]}" for k, v in checks.items())
        return (f"Speed columns unreliable, measured on a busy machine ({rows}). "
                f"What to do: {noise.ADVICE}.")

    def __repr__(self) -> str:
        text = super().__repr__()
        note = self.noise_note()
        return f"{text}\n\n{note}" if note else text

    def _repr_html_(self):
        html = super()._repr_html_()
        if html is None:
            return None
        note = self.noise_note()
        note = (f'<p class="course-noise-note" style="color: #a94400;">&#9888; {escape(note)}</p>' if note else "")
        return f'<div style="overflow-x: auto; max-width: 100%;">{html}</div>{note}'


def _check_variant(variant) -> None:
    """A clear ``TypeError`` for something the benchmark cannot measure (e.g. a bare ``nn.Module``)."""
    has_logits = callable(getattr(variant, "predict_logits", None)) or callable(getattr(variant, "logits", None))
    if has_logits and callable(getattr(variant, "size_mb", None)):
        return
    hint = ""
    if isinstance(variant, torch.nn.Module):
        hint = (" A bare model has no tokenizer; wrap it: "
                "course_lib.models.TextClassifier(model=model, tokenizer=tokenizer) "
                "(the tokenizer it was trained with, e.g. teacher.tokenizer).")
    raise TypeError(
        f"The benchmark measures a TextClassifier (or any object with predict_logits(texts, batch_size) and "
        f"size_mb()); got a {type(variant).__name__}.{hint}"
    )


def _eval_mode(variant) -> None:
    """Put a variant's torch model in eval mode once, before it is measured (no dropout, no per-call cost)."""
    model = getattr(variant, "model", None)
    if isinstance(model, torch.nn.Module):
        model.eval()


@dataclass
class Benchmark:
    """Measures quality, latency, throughput and size of every variant the same way.

    ``texts``/``labels``: the labelled evaluation set (e.g. the SMS test split).
    ``latency_texts``: texts for the batch-1 timing (default: the first 100 of ``texts``).
    ``threads``: torch threads during timing (default :func:`course_lib.config.num_threads`);
    reported in every row. Runs are fewer in fast mode (COURSE_FAST=1).
    ``class_names``: names of the classes 0..K-1 (default: ``["ham", "spam"]`` for two classes;
    :meth:`from_frame` takes those :func:`course_lib.data.load_csv` stored). With two classes a row
    has spam precision/recall/F1 and tn/fp/fn/tp; with more, macro and weighted averages
    (:func:`quality`), and :meth:`per_class` / :meth:`confusion` give the per-class figures.

    Every latency is watched for a busy machine (:mod:`course_lib.noise`): the row's ``speed_check``
    says ``"ok"`` or ``"noisy: <why>"``, :attr:`noise_checks` keeps the details, the table shows a
    note under the numbers, and :meth:`compare` does not call a noisy speed a gain. For a speedup
    that survives a busy machine, ``compare(..., interleaved=True)`` times the two models interleaved.
    """

    texts: list[str]
    labels: list[int]
    latency_texts: list[str] | None = None
    threads: int | None = None
    latency_runs: int | None = None
    warmup: int | None = None
    batch_sizes: tuple[int, ...] = (1, 8, 32)
    throughput_n: int | None = None
    class_names: list[str] | None = None
    rows: list[dict] = field(default_factory=list)
    predictions: dict[str, Predictions] = field(default_factory=dict)
    noise_sources: dict | None = None  # injected load/CPU/reference sources for course_lib.noise (tests)
    noise_checks: dict[str, "noise.NoiseCheck"] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.texts = list(self.texts)
        labels = data.label_ids(pd.Series(list(self.labels), dtype=object), "Benchmark labels")
        self.labels = [int(x) for x in labels]
        if len(self.texts) != len(self.labels):
            raise ValueError(f"{len(self.texts)} texts but {len(self.labels)} labels.")
        seen = max(self.labels, default=0) + 1
        if self.class_names is None:
            self.class_names = data.default_class_names(max(2, seen))
        self.class_names = [str(c) for c in self.class_names]
        if len(self.class_names) < 2 or seen > len(self.class_names):
            raise ValueError(f"class_names {self.class_names} must name at least two classes and every label "
                             f"(labels go up to {seen - 1}).")
        if self.latency_texts is None:
            self.latency_texts = self.texts[:100]
        self._variants: dict[str, weakref.ref] = {}
        self.threads = self.threads or config.num_threads()
        self.latency_runs = self.latency_runs or config.pick(100, 15)
        self.warmup = self.warmup if self.warmup is not None else config.pick(10, 3)
        self.throughput_n = self.throughput_n or config.pick(256, 64)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def quality_metric(self) -> str:
        """The headline quality column: ``"f1"`` (spam F1) for two classes, ``"macro_f1"`` for more."""
        return headline_metric(self.num_classes)

    @classmethod
    def from_frame(cls, df: pd.DataFrame, **kwargs) -> "Benchmark":
        """A benchmark on a text/label frame (e.g. ``splits.test``); class names from ``df.attrs`` if set."""
        if "class_names" not in kwargs and df.attrs.get("class_names"):
            kwargs["class_names"] = list(df.attrs["class_names"])
        return cls(df["text"].tolist(), df["label"].tolist(), **kwargs)

    def run(self, name: str, variant, measure_speed: bool = True, progress: bool = True,
            logits: np.ndarray | None = None, **extra) -> dict:
        """Measure ``variant``, add (or replace) its row under ``name``, and return the row.

        ``measure_speed=False`` skips latency and throughput (quality and size only).
        ``logits``: ``variant``'s logits (n texts, classes) on this benchmark's texts where they were
        already computed (a cache): quality is scored from them instead of predicting again; size and
        speed are measured on ``variant`` as always.
        ``extra`` key/values (e.g. ``bits=8``) are stored in the row.
        """
        _check_variant(variant)
        _eval_mode(variant)
        previous = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        steps = ["quality", "size"] + (["latency", "throughput"] if measure_speed else [])
        bar = progress_bar(steps, desc=f"benchmark {name}", disable=not progress)
        try:
            row: dict = {"name": name}
            for step in bar:
                bar.set_postfix(step=step)
                if step == "quality":
                    pred = predict(variant, self.texts) if logits is None else self._from_logits(name, logits)
                    if pred.logits.shape[1] != self.num_classes:
                        raise ValueError(
                            f"{name} outputs {pred.logits.shape[1]} classes but the benchmark has "
                            f"{self.num_classes} ({self.class_names}): build the model with "
                            f"num_labels={self.num_classes} (e.g. load_teacher(num_labels={self.num_classes}))."
                        )
                    self.predictions[name] = pred
                    q = quality(self.labels, pred.labels, num_classes=self.num_classes)
                    cm = q.pop("confusion")
                    row.update(q)
                    if self.num_classes == 2:
                        row.update({"tn": int(cm[0, 0]), "fp": int(cm[0, 1]), "fn": int(cm[1, 0]), "tp": int(cm[1, 1])})
                    else:
                        row["classes_predicted"] = int(len(np.unique(pred.labels)))
                elif step == "size":
                    row["size_mb"] = float(variant.size_mb())
                    params = num_parameters(variant)
                    row["params_m"] = params / 1e6 if params is not None else np.nan
                elif step == "latency":
                    lat = latency_ms(variant, self.latency_texts, runs=self.latency_runs, warmup=self.warmup,
                                     noise_sources=self.noise_sources)
                    row["latency_ms"] = lat["median_ms"]
                    row["latency_p95_ms"] = lat["p95_ms"]
                    row["speed_check"] = lat["noise"]
                    self.noise_checks[name] = lat["noise_check"]
                else:
                    tp = throughput(variant, self.texts[: self.throughput_n], self.batch_sizes)
                    for b, v in tp.items():
                        row[f"throughput_b{b}"] = v
            row["threads"] = self.threads
            row.update(extra)
        finally:
            bar.close()
            torch.set_num_threads(previous)
        self.rows = [r for r in self.rows if r["name"] != name] + [row]
        if not measure_speed:
            self.noise_checks.pop(name, None)
        try:  # kept weakly, for compare(..., interleaved=True): the benchmark never keeps a model alive
            self._variants[name] = weakref.ref(variant)
        except TypeError:
            self._variants.pop(name, None)
        return row

    def _from_logits(self, name: str, logits) -> Predictions:
        logits = np.asarray(logits, dtype=np.float32)
        if logits.ndim != 2 or len(logits) != len(self.texts):
            raise ValueError(f"logits for {name} must have one row per benchmark text ({len(self.texts)}, classes); "
                             f"got shape {logits.shape}. Pass the variant's logits on bench.texts, or none.")
        return predictions_from_logits(logits)

    @property
    def table(self) -> BenchmarkTable:
        """All rows so far, one per variant (index = name): a DataFrame shown in a scrolling box."""
        if not self.rows:
            return BenchmarkTable()
        table = BenchmarkTable(pd.DataFrame(self.rows).set_index("name"))
        table.attrs["speed_checks"] = {r["name"]: r["speed_check"] for r in self.rows if "speed_check" in r}
        return table

    def per_class(self, name: str) -> pd.DataFrame:
        """Precision, recall, F1 and support of every class for the measured variant ``name`` (scikit-learn)."""
        self.row(name)
        return per_class(self.labels, self.predictions[name].labels, self.class_names)

    def confusion(self, name: str) -> pd.DataFrame:
        """The confusion matrix of ``name`` (rows: true class, columns: predicted), labelled with the class names."""
        self.row(name)
        cm = confusion_matrix(self.labels, self.predictions[name].labels, labels=list(range(self.num_classes)))
        return pd.DataFrame(cm, index=pd.Index(self.class_names, name="true"),
                            columns=pd.Index(self.class_names, name="predicted"))

    def row(self, name: str) -> dict:
        for r in self.rows:
            if r["name"] == name:
                return r
        raise KeyError(f"No benchmark row named {name!r}; measured so far: {[r['name'] for r in self.rows]}.")

    def compare(self, baseline: str, variant: str, metric: str | None = None, interval: bool = False,
                interleaved: bool = False, models: tuple | None = None, rounds: int | None = None,
                runs: int | None = None) -> pd.DataFrame:
        """Deltas of ``variant`` against ``baseline`` and the rule-of-thumb verdict (see :func:`compare`);
        ``metric`` defaults to :attr:`quality_metric`. ``interval=True``: the verdict also weighs the
        paired bootstrap interval of the drop, computed on the kept predictions
        (:func:`course_lib.stats.paired_bootstrap_diff`; macro metrics for more than two classes).

        ``interleaved=True``: the speedup is measured now by :func:`speed_ratio` (the two models timed
        in alternation over ``rounds`` rounds of ``runs`` calls, on :attr:`latency_texts` and
        :attr:`threads`) and reported with its spread over rounds; the verdict uses it instead of the
        ratio of the two rows' latencies. The models are the ones :meth:`run` measured (if they still
        exist) or ``models=(baseline_model, variant_model)``.
        """
        metric = metric or self.quality_metric
        diff = (stats.paired_bootstrap_diff(self.labels, self.predictions[baseline].labels,
                                            self.predictions[variant].labels, metric.replace("macro_", ""))
                if interval else None)
        speed = None
        if interleaved:
            pair = tuple(models) if models is not None else tuple(self._model(n) for n in (baseline, variant))
            speed = speed_ratio(pair[0], pair[1], self.latency_texts, rounds=rounds, runs=runs, threads=self.threads,
                                noise_sources=self.noise_sources)
        return compare(self.row(baseline), self.row(variant), metric=metric, interval=diff, speed=speed)

    def _model(self, name: str):
        self.row(name)
        ref = self._variants.get(name)
        model = ref() if ref is not None else None
        if model is None:
            raise ValueError(f"The model measured as {name!r} no longer exists (the benchmark keeps no model alive); "
                             "pass both: bench.compare(baseline, variant, interleaved=True, "
                             "models=(baseline_model, variant_model)).")
        return model

    def flips(self, baseline: str, variant: str) -> pd.DataFrame:
        """The messages whose predicted label differs between two measured variants."""
        a, b = self.predictions[baseline], self.predictions[variant]
        changed = np.flatnonzero(a.labels != b.labels)
        if self.num_classes != 2:
            names = np.asarray(self.class_names)
            return pd.DataFrame({"text": [self.texts[i] for i in changed],
                                 "label": names[np.asarray(self.labels, dtype=int)[changed]],
                                 baseline: names[a.labels[changed]], variant: names[b.labels[changed]]})
        return pd.DataFrame({
            "text": [self.texts[i] for i in changed],
            "label": [self.labels[i] for i in changed],
            baseline: a.labels[changed],
            variant: b.labels[changed],
            f"P(spam) {baseline}": a.spam_prob[changed],
            f"P(spam) {variant}": b.spam_prob[changed],
        })

    def agreement(self, baseline: str, variant: str) -> float:
        """Fraction of evaluation texts on which two variants predict the same label."""
        a, b = self.predictions[baseline], self.predictions[variant]
        return float(np.mean(a.labels == b.labels))


_COMPARED = [
    ("accuracy", "accuracy", "points"),
    ("precision", "precision (spam)", "points"),
    ("recall", "recall (spam)", "points"),
    ("f1", "F1 (spam)", "points"),
    ("macro_precision", "precision (macro)", "points"),
    ("macro_recall", "recall (macro)", "points"),
    ("macro_f1", "F1 (macro)", "points"),
    ("weighted_f1", "F1 (weighted)", "points"),
    ("size_mb", "size", "MB"),
    ("params_m", "parameters", "M"),
    ("latency_ms", "latency b1 (median)", "ms"),
    ("latency_p95_ms", "latency b1 (p95)", "ms"),
]


def _single_class(row: dict) -> str | None:
    """The class a benchmark row predicts for every message ("ham", "spam", "one class"), or None."""
    if all(k in row for k in ("tn", "fp", "fn", "tp")):
        if row["tp"] + row["fp"] == 0:
            return "ham"
        if row["tn"] + row["fn"] == 0:
            return "spam"
        return None
    return "one class" if row.get("classes_predicted") == 1 else None


def compare(baseline: dict, variant: dict, metric: str | None = None, interval=None, speed: dict | None = None) -> pd.DataFrame:
    """A table of variant vs baseline for quality, size and speed, with the verdict.

    Quality deltas are in percentage points; ``ratio`` is variant/baseline. ``metric``: the quality
    figure the verdict uses (default ``"f1"``, or ``"macro_f1"`` for rows with more than two classes).
    The frame's ``attrs`` hold ``verdict``, ``reason``, ``quality_drop_points``, ``size_ratio`` and
    ``speedup``. A row that predicts the same class for every message makes the comparison say so:
    ``"baseline predicts one class only"``, ``"both useless"``, or ``"bad"`` for such a variant.
    ``interval``: the uncertainty of the quality drop, either ``(low, high)`` in points or the dict of
    :func:`course_lib.stats.paired_bootstrap_diff` (a = baseline, b = variant); the verdict of two real
    classifiers is then :func:`verdict_with_interval`'s ("within noise" when the interval includes 0)
    and ``attrs`` also hold ``drop_low``/``drop_high``.

    Speed: without ``speed`` the speedup is the ratio of the rows' ``latency_ms``; if either row's
    ``speed_check`` says noisy (a busy machine, :mod:`course_lib.noise`), ``attrs["speed_reliable"]`` is
    False, the verdict counts no speed gain and its reason says the speed is unreliable. ``speed``: the
    dict of :func:`speed_ratio` (an interleaved measurement): its median speedup is used, a row
    ``speedup b1 (interleaved)`` shows it with its 25-75 % range over rounds, ``attrs`` add
    ``speedup_low``/``speedup_high``/``speedup_rounds``, and it is reliable when that range is narrow.
    """
    metric = metric or ("f1" if "f1" in baseline else "macro_f1")
    rows = []
    labels = {key: label for key, label, _ in _COMPARED}
    for key, label, unit in _COMPARED:
        if key not in baseline or key not in variant:
            continue
        b, v = baseline[key], variant[key]
        scale = 100.0 if unit == "points" else 1.0
        ratio = v / b if isinstance(b, (int, float)) and b else np.nan
        rows.append({"metric": label, "baseline": b, "variant": v, "delta": (v - b) * scale,
                     "unit": unit, "ratio": ratio})
    if speed is not None:
        rows.append({"metric": "speedup b1 (interleaved)", "baseline": 1.0, "variant": speed["speedup"],
                     "delta": np.nan, "unit": f"x (25-75 %: {speed['low']:.2f}-{speed['high']:.2f}, "
                                              f"{speed['rounds']} rounds)", "ratio": np.nan})
    table = pd.DataFrame(rows).set_index("metric")
    drop = (baseline[metric] - variant[metric]) * 100.0
    size_ratio = baseline["size_mb"] / variant["size_mb"] if variant.get("size_mb") else 1.0
    if "latency_ms" in baseline and "latency_ms" in variant and variant["latency_ms"]:
        speedup = baseline["latency_ms"] / variant["latency_ms"]
    else:
        speedup = 1.0
    noisy = [f"{who}: {row['speed_check'][len('noisy: '):]}" for who, row in (("baseline", baseline), ("variant", variant))
             if str(row.get("speed_check", "")).startswith("noisy")]
    speed_note = (f"latency measured on a busy machine ({'; '.join(noisy)})" if noisy else "")
    speed_reliable = not noisy
    if speed is not None:
        speedup, speed_reliable = float(speed["speedup"]), bool(speed["reliable"])
        speed_note = (f"interleaved over {speed['rounds']} rounds: {speedup:.2f}x, 25-75 % "
                      f"{speed['low']:.2f}-{speed['high']:.2f}" + ("" if speed_reliable else ", too wide to trust"))
    label = labels.get(metric, metric)
    b_only, v_only = _single_class(baseline), _single_class(variant)
    if b_only and v_only:
        v, reason = "both useless", (f"both predict only {b_only} for every message ({label} "
                                     f"{baseline[metric]:.3f} and {variant[metric]:.3f}): neither is a classifier, "
                                     "so their difference means nothing; train a real model first")
    elif b_only:
        v, reason = "baseline predicts one class only", (
            f"the baseline predicts only {b_only} for every message ({label} {baseline[metric]:.3f}): any model "
            "looks good next to it; compare against a real baseline (e.g. the fine-tuned teacher or TF-IDF + LR)")
    elif v_only:
        v, reason = "bad", (f"the variant predicts only {v_only} for every message ({label} "
                            f"{variant[metric]:.3f}): it has stopped classifying")
    else:
        v, reason = verdict(drop, size_ratio, speedup, metric_label=label, speed_reliable=speed_reliable)
    table.attrs.update({"verdict": v, "reason": reason, "quality_drop_points": drop,
                        "size_ratio": size_ratio, "speedup": speedup, "speed_reliable": speed_reliable,
                        "speed_note": speed_note})
    if speed is not None:
        table.attrs.update({"speedup_low": speed["low"], "speedup_high": speed["high"],
                            "speedup_rounds": speed["rounds"]})
    if interval is not None:  # a one-class model keeps its verdict above; the interval is still reported
        low, high = ((-100 * interval["high"], -100 * interval["low"]) if isinstance(interval, dict)
                     else (float(interval[0]), float(interval[1])))
        table.attrs.update({"drop_low": low, "drop_high": high})
        if not (b_only or v_only):
            v, reason = verdict_with_interval(drop, low, high, size_ratio, speedup, speed_reliable=speed_reliable)
            table.attrs.update({"verdict": v, "reason": reason})
    return table


def verdict_with_interval(quality_drop_points: float, drop_low: float, drop_high: float,
                          size_ratio: float, speedup: float, speed_reliable: bool = True) -> tuple[str, str]:
    """The rule of thumb of :func:`verdict`, told by the interval of the drop.

    ``quality_drop_points``: baseline minus variant in percentage points; ``drop_low``/``drop_high``:
    the interval of that drop (e.g. from :func:`course_lib.stats.paired_bootstrap_diff`), in points.
    ``size_ratio``: baseline MB / variant MB; ``speedup``: baseline latency / variant latency;
    ``speed_reliable=False``: the speedup was measured on a busy machine (see :func:`verdict`).

    - the interval spans 0: **within noise** (this test set cannot tell the two apart); the reason
      gives the gains, and warns when the interval still allows a drop above the "bad" line;
    - the interval lies above the "bad" line (5 points): **bad**;
    - otherwise the drop is real (or a real gain) and the rule of thumb applies to it as it is.
    """
    if drop_low > drop_high:
        raise ValueError(f"drop_low ({drop_low}) is above drop_high ({drop_high}); pass the interval in order.")
    interval = f"[{drop_low:+.1f}, {drop_high:+.1f}] points"
    gains = (f"{size_ratio:.1f}x smaller / {speedup:.1f}x faster" if speed_reliable else
             f"{size_ratio:.1f}x smaller / speed unreliable ({speedup:.1f}x on a noisy timing)")
    if drop_low <= 0 <= drop_high:
        reason = f"the quality drop {quality_drop_points:+.1f} has interval {interval}, which includes 0: {gains}"
        if drop_high > BAD_MIN_DROP:
            reason += f"; but a drop of up to {drop_high:.1f} points is not ruled out: evaluate on more messages"
        return "within noise", reason
    if drop_low > BAD_MIN_DROP:
        return "bad", f"even the interval's best case {interval} drops more than {BAD_MIN_DROP:g} points"
    label, reason = verdict(quality_drop_points, size_ratio, speedup, speed_reliable=speed_reliable)
    return label, f"{reason} (drop interval {interval}, excludes 0)"

# --------------------------------------------------------------------------- operations: memory, cold start, throughput

def throughput_curve(variant, texts: Sequence[str], batch_sizes: Sequence[int] = (1, 2, 4, 8, 16, 32, 64),
                     threads: int | None = None) -> pd.DataFrame:
    """Samples per second at each batch size (:func:`throughput`) as a frame with ``batch_size``,
    ``samples_per_s`` and ``threads`` (torch fixed to ``threads``, default :func:`config.num_threads`;
    reported as the model's own where it keeps one, as in :func:`latency_ms`)."""
    threads = int(threads or config.num_threads())
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        per_batch = throughput(variant, list(texts), batch_sizes)
    finally:
        torch.set_num_threads(previous)
    return pd.DataFrame({"batch_size": list(per_batch), "samples_per_s": list(per_batch.values()),
                         "threads": int(getattr(variant, "threads", threads))})




def _memory_mb() -> tuple[float, float]:
    """(current, peak) resident memory of this process in MB: VmRSS/VmHWM of /proc/self/status on Linux;
    elsewhere ru_maxrss (KiB on Linux, bytes on macOS) for both, the peak since the process started."""
    try:
        status = Path("/proc/self/status").read_text()
        current, peak = (int(re.search(rf"{k}:\s+(\d+) kB", status).group(1)) * 1024 / 1e6 for k in ("VmRSS", "VmHWM"))
        return current, peak
    except (OSError, AttributeError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak = peak / 1e6 if sys.platform == "darwin" else peak * 1024 / 1e6
        return peak, peak


def _reset_peak() -> bool:
    """Reset this process's peak RSS to its current RSS (Linux >= 4.0); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _serve() -> None:
    """Runs in a fresh process (see :func:`serving_footprint`): reads (load, texts, batch size, threads)
    from stdin, measures, and prints the result as JSON."""
    start = time.perf_counter()
    import transformers.models.bert.modeling_bert  # noqa: F401  the library code every workbook model needs
    from transformers import BertTokenizerFast  # noqa: F401  is part of the baseline, not of the model
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        pass
    import_s = time.perf_counter() - start
    load, texts, batch_size, threads = pickle.loads(sys.stdin.buffer.read())
    torch.set_num_threads(threads)
    reset = _reset_peak()
    baseline = _memory_mb()[0]
    start = time.perf_counter()
    clf = load()
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    clf.predict_logits(list(texts[:batch_size]), batch_size=batch_size)
    first_ms = (time.perf_counter() - start) * 1000
    clf.predict_logits(list(texts), batch_size=batch_size)
    method = "VmHWM reset after imports" if reset else "ru_maxrss since start (hides a model below the import peak)"
    print(json.dumps({"baseline_mb": baseline, "peak_mb": _memory_mb()[1], "import_s": import_s,
                      "load_s": load_s, "first_call_ms": first_ms, "method": method}))


def serving_footprint(load: Callable, texts: Sequence[str], batch_size: int = 1, threads: int | None = None,
                      timeout_s: float = 600) -> dict:
    """Peak resident memory and cold start of serving a model, measured in a fresh Python process.

    ``load``: a zero-argument function that returns the model, e.g.
    ``functools.partial(models.load_classifier, key)`` (it is sent to the new process, so it must be
    a module-level function of an importable module or a partial of one, not a lambda). The new process
    imports the libraries (torch, transformers' BERT code, ONNX Runtime: ``import_s``), resets its peak RSS to the current one (``baseline_mb``; Linux >= 4.0,
    ``method`` says how it was measured), times ``load()`` (``load_s``, cold start from the cache folder;
    the operating system may still hold the file in its page cache) and the first call
    (``first_call_ms``), predicts ``texts`` at ``batch_size``, then reads the peak RSS (``peak_mb``).
    ``serving_mb = peak_mb − baseline_mb`` is what serving this model costs: weights, activations,
    tokenizer. A fresh process because the notebook's own memory holds other models and the freed
    leftovers of training.
    """
    threads = int(threads or config.num_threads())
    try:
        payload = pickle.dumps((load, list(texts), int(batch_size), threads))
    except Exception as exc:  # noqa: BLE001
        raise TypeError("load must be a module-level function or functools.partial of one "
                        f"(it runs in a new process); got {load!r}.") from exc
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1]),
                                                                      os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", "from course_lib.evaluate import _serve; _serve()"], input=payload,
                          capture_output=True, timeout=timeout_s, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"serving_footprint: the fresh process failed:\n{done.stderr.decode()[-2000:]}")
    out = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return {**out, "serving_mb": out["peak_mb"] - out["baseline_mb"], "batch_size": int(batch_size),
            "threads": threads, "texts": len(texts)}
