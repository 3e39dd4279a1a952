"""Evaluation under stress: obfuscated and attacked input, calibration, and the cost of serving.

- **Perturbations** a spammer uses, each ``f(text, strength, rng) -> text`` with ``strength`` in
  [0, 1] (0 leaves the text as it is) and a ``random.Random`` ``rng``; :func:`perturb` applies one
  to a list of texts, seeded per text.
- **A greedy attack** (:func:`attack`): edit the words whose perturbation lowers P(spam) most.
- **Tokenization** (:func:`tokenization_change`): how many word pieces and [UNK]s a perturbation adds.
- **A report card** (:func:`report_card`): the whole checklist for any models on any labelled data.

What this chapter also uses lives in the foundation: intervals, McNemar, k-fold and calibration in
:mod:`course_lib.stats`; latency percentiles, throughput curves and serving memory in
:mod:`course_lib.evaluate`.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from scipy.special import softmax

from . import config, data, evaluate
from .stats import bootstrap_ci, expected_calibration_error, mcnemar, paired_bootstrap_diff, score

# --------------------------------------------------------------------------- perturbations

LEET = {"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7", "l": "1", "g": "9", "b": "8"}
HOMOGLYPHS = {  # Latin letter -> Cyrillic (or Greek ο, ν) letter that looks the same
    "a": "а", "c": "с", "e": "е", "i": "і", "j": "ј", "o": "ο", "p": "р", "s": "ѕ", "v": "ν", "x": "х",
    "y": "у", "A": "А", "B": "В", "C": "С", "E": "Е", "H": "Н", "K": "К", "M": "М", "O": "О", "P": "Р",
    "T": "Т", "X": "Х",
}
SEPARATORS = [".", " ", "-", "*", "_"]
EMOJI = ["💰", "🎉", "🔥", "😍", "👉", "📱", "✅", "⭐", "🎁", "💯"]
HAM_WORDS = ["ok", "see", "you", "later", "home", "love", "thanks", "sorry", "dinner", "tonight", "mum",
             "lunch", "tomorrow", "haha", "sure", "dear", "going", "sleep", "class", "friend"]


def _words(text: str) -> list[str]:
    """``text`` cut into words and the whitespace between them: ``"".join`` gives it back."""
    return re.split(r"(\s+)", text)


def leetspeak(text: str, strength: float, rng: random.Random) -> str:
    """Each letter that has a digit look-alike (e→3, i→1, o→0, ...) is replaced with probability ``strength``."""
    return "".join(LEET[c.lower()] if c.lower() in LEET and rng.random() < strength else c for c in text)


def spacing(text: str, strength: float, rng: random.Random) -> str:
    """Each word of 2+ characters is spelled out with separators ("free" → "f.r.e.e") with probability ``strength``."""
    parts = _words(text)
    for i in range(0, len(parts), 2):
        if len(parts[i]) >= 2 and rng.random() < strength:
            parts[i] = rng.choice(SEPARATORS).join(parts[i])
    return "".join(parts)


def homoglyphs(text: str, strength: float, rng: random.Random) -> str:
    """Each Latin letter with a Cyrillic/Greek twin ("a" → "а") is swapped with probability ``strength``."""
    return "".join(HOMOGLYPHS[c] if c in HOMOGLYPHS and rng.random() < strength else c for c in text)


def case_change(text: str, strength: float, rng: random.Random) -> str:
    """Each letter's case is flipped with probability ``strength`` ("free" → "fReE")."""
    return "".join(c.swapcase() if c.isalpha() and rng.random() < strength else c for c in text)


def typos(text: str, strength: float, rng: random.Random) -> str:
    """Each word of 3+ characters gets one typo (swap two neighbours, drop or double a character)
    with probability ``strength``. Words keep at least two characters, so the text never empties."""
    parts = _words(text)
    for i in range(0, len(parts), 2):
        w = parts[i]
        if len(w) < 3 or rng.random() >= strength:
            continue
        j, edit = rng.randrange(len(w) - 1), rng.choice(["swap", "drop", "double"])
        if edit == "swap":
            parts[i] = w[:j] + w[j + 1] + w[j] + w[j + 2:]
        elif edit == "drop":
            parts[i] = w[:j] + w[j + 1:]
        else:
            parts[i] = w[: j + 1] + w[j] + w[j + 1:]
    return "".join(parts)


def emoji(text: str, strength: float, rng: random.Random) -> str:
    """``ceil(strength × words)`` emoji inserted between words at random places."""
    words = text.split()
    for _ in range(math.ceil(strength * len(words))):
        words.insert(rng.randrange(len(words) + 1), rng.choice(EMOJI))
    return " ".join(words) if strength > 0 else text


def ham_padding(text: str, strength: float, rng: random.Random) -> str:
    """``ceil(strength × words)`` everyday ham words appended ("... ok see you later"): at strength 1
    the text doubles in length. Aimed at models that average evidence over the whole message."""
    n = math.ceil(strength * len(text.split()))
    return text if n == 0 else text + " " + " ".join(rng.choice(HAM_WORDS) for _ in range(n))


PERTURBATIONS: dict[str, Callable[[str, float, random.Random], str]] = {
    "leetspeak": leetspeak, "spacing": spacing, "homoglyph": homoglyphs, "case": case_change,
    "typo": typos, "emoji": emoji, "ham_padding": ham_padding,
}


def perturb(texts: Sequence[str], kind: str, strength: float, seed: int = 0) -> list[str]:
    """``texts`` perturbed by ``PERTURBATIONS[kind]`` at ``strength``; each text has its own
    random stream, seeded by (seed, text), so the result does not depend on the order of the list."""
    if kind not in PERTURBATIONS:
        raise ValueError(f"unknown perturbation {kind!r}; choose one of {sorted(PERTURBATIONS)}.")
    if not 0 <= strength <= 1:
        raise ValueError(f"strength must be between 0 (no change) and 1, got {strength}.")
    out = []
    for t in data.check_texts(texts):
        new = PERTURBATIONS[kind](t, strength, random.Random(f"{seed}|{kind}|{t}"))
        out.append(new if new.strip() else t)  # a perturbation never hands back an empty message
    return out


# --------------------------------------------------------------------------- a greedy attack


@dataclass
class AttackResult:
    """``texts``: the messages after the attack (unchanged where not attacked); per message:
    ``attacked`` (a target-class message the model got right), ``success`` (its prediction left the
    target class), ``edits`` (words changed), ``p_before``/``p_after`` (P(target))."""

    texts: list[str]
    attacked: np.ndarray
    success: np.ndarray
    edits: np.ndarray
    p_before: np.ndarray
    p_after: np.ndarray

    @property
    def success_rate(self) -> float:
        """Successes / attacked messages (NaN when nothing was attacked)."""
        return float(self.success.sum() / self.attacked.sum()) if self.attacked.any() else float("nan")


def _probs(clf, texts: Sequence[str], batch_size: int = config.PREDICT_BATCH_SIZE) -> np.ndarray:
    return softmax(np.asarray(clf.predict_logits(list(texts), batch_size=batch_size), dtype=np.float64), axis=1)


def attack(clf, texts: Sequence[str], budget: int = 3, seed: int = 0, labels: Sequence[int] | None = None,
           target: int = 1, kinds: Sequence[str] = ("leetspeak", "spacing", "homoglyph", "typo"),
           scorer: Callable[[list[str]], np.ndarray] | None = None) -> AttackResult:
    """A greedy word-level attack on the messages of class ``target`` (spam) that ``clf`` predicts right.

    Every word is rewritten by each perturbation in ``kinds`` at strength 1 and the rewrite scored
    by how much it lowers P(target); then the best rewrites (one per word, only those that lower
    it) are applied one by one, up to ``budget`` words, stopping as soon as the prediction flips.
    ``labels=None`` treats every text as class ``target``; messages of other classes are never edited.
    ``scorer(texts)`` → probabilities (n, classes) of ``clf`` on ``texts``, where they are kept elsewhere
    (a cache of this model's outputs); default: ``clf`` is run. Each message's attack depends only on
    that message, so attacking a list equals attacking its messages one by one.
    """
    score = scorer or (lambda batch: _probs(clf, batch))
    unknown = sorted(set(kinds) - set(PERTURBATIONS))
    if budget < 0 or unknown:
        raise ValueError(f"budget must be >= 0 words (got {budget}) and kinds among {sorted(PERTURBATIONS)} (unknown: {unknown}).")
    texts = list(texts)
    labels = np.full(len(texts), target) if labels is None else np.asarray(labels, dtype=int)
    if len(labels) != len(texts):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels.")
    p0 = score(texts)
    attacked = (labels == target) & (p0.argmax(axis=1) == target)
    result = [list(_words(t)) for t in texts]
    edits = np.zeros(len(texts), dtype=int)
    plans = {}  # message -> [(word position, rewritten word)] best first
    candidates, owners = [], []
    for m in np.flatnonzero(attacked):
        rng = random.Random(f"{seed}|attack|{texts[m]}")
        for pos in range(0, len(result[m]), 2):
            for kind in kinds:
                new = PERTURBATIONS[kind](result[m][pos], 1.0, rng)
                if new != result[m][pos] and new.strip():
                    parts = list(result[m])
                    parts[pos] = new
                    candidates.append("".join(parts))
                    owners.append((m, pos, new))
    p_cand = score(candidates)[:, target] if candidates else np.zeros(0)
    for (m, pos, new), p in zip(owners, p_cand):
        if p < p0[m, target]:
            plans.setdefault(m, []).append((p, pos, new))
    for m in plans:  # one rewrite per word: its best; words ordered by the drop they cause
        best = {}
        for p, pos, new in sorted(plans[m]):
            best.setdefault(pos, new)
        plans[m] = list(best.items())
    p_after = p0.copy()
    for step in range(budget):  # edit step + 1 words of every message not flipped yet
        todo = [m for m in plans if step < len(plans[m]) and p_after[m].argmax() == target]
        if not todo:
            break
        for m in todo:
            pos, new = plans[m][step]
            result[m][pos] = new
            edits[m] += 1
        p_after[todo] = score(["".join(result[m]) for m in todo])
    success = attacked & (p_after.argmax(axis=1) != target)
    return AttackResult(["".join(parts) for parts in result], attacked, success, edits, p0[:, target], p_after[:, target])


# --------------------------------------------------------------------------- tokenization


def tokenization_change(tokenizer, texts: Sequence[str], kind: str, strength: float, seed: int = 0) -> dict:
    """Word pieces and [UNK] tokens per text before and after ``perturb(texts, kind, strength, seed)``.

    A perturbation that splits words into many rare pieces, or into [UNK] (a character the vocabulary
    lacks: a trimmed vocabulary lacks many), leaves the model little of the word it learned.
    """
    def counts(batch):
        ids = tokenizer(list(batch), add_special_tokens=False, verbose=False)["input_ids"]  # no truncation
        return np.array([len(x) for x in ids]), np.array([x.count(tokenizer.unk_token_id) for x in ids])

    texts = list(texts)
    pieces0, unk0 = counts(texts)
    pieces1, unk1 = counts(perturb(texts, kind, strength, seed))
    return {"kind": kind, "strength": strength, "pieces_before": float(pieces0.mean()),
            "pieces_after": float(pieces1.mean()), "piece_ratio": float(pieces1.sum() / max(1, pieces0.sum())),
            "unk_before": float(unk0.mean()), "unk_after": float(unk1.mean()),
            "texts_changed": float(np.mean((pieces0 != pieces1) | (unk0 != unk1)))}


# --------------------------------------------------------------------------- the report card


def attack_pick(candidates: Sequence[int], n: int, seed: int = 0) -> np.ndarray:
    """``n`` of the message positions ``candidates`` (all if fewer), a seeded pick, in increasing order."""
    return np.sort(np.random.default_rng(seed).permutation(np.asarray(candidates))[:n])


def _scorer(name: str, clf, probs) -> Callable[[Sequence[str]], np.ndarray]:
    """texts → probabilities of model ``name``: from ``probs(name, texts)`` when given, else by running ``clf``."""
    if probs is None:
        return lambda batch: _probs(clf, batch)
    return lambda batch: np.asarray(probs(name, list(batch)), dtype=np.float64)


def report_card(models: dict, texts: Sequence[str], labels: Sequence[int], shift=None, baseline: str | None = None,
                kinds: Sequence[str] = tuple(PERTURBATIONS), strength: float = 0.5, budget: int = 3,
                attack_n: int | None = None, loaders: dict | None = None, n_boot: int | None = None,
                latency_runs: int | None = None, threads: int | None = None, seed: int = 0,
                probs: Callable[[str, list[str]], np.ndarray] | None = None, progress: bool = True) -> pd.DataFrame:
    """The whole checklist for every model (anything with ``predict_logits``) on labelled ``texts``: one row each.

    Columns: ``f1`` with its 95 % bootstrap interval (``f1_low``/``f1_high``), ``precision``, ``recall``
    (class 1 for 0/1 labels; macro averages over the classes otherwise, and F1 is then macro F1);
    ``shift_f1``/``shift_drop_points`` when ``shift`` = (texts, labels) or a text/label frame is given;
    ``f1_<kind>`` under each perturbation at ``strength``, applied to the *stressed* messages (the spam
    for 0/1 labels: senders of ham do not obfuscate; every message with more classes); ``attack_success``
    of :func:`attack` with ``budget`` words on up to ``attack_n`` stressed messages the model got right
    (with more classes each message is attacked away from its own class); ``ece``; ``size_mb`` (where the
    model has ``size_mb()``); b1 ``latency_p50_ms``/``latency_p95_ms`` with ``threads``; ``serving_mb``
    and ``load_s`` for the names in ``loaders`` (see :func:`course_lib.evaluate.serving_footprint`); and, against ``baseline``
    (default: the first model), the F1 change in points with its paired interval, McNemar's p-value and
    the verdict of :func:`course_lib.evaluate.verdict_with_interval`.
    ``probs(name, texts)`` → probabilities (n, classes) of model ``name`` on ``texts``, for outputs already
    kept elsewhere (a cache; chapter 06 passes its own); default: every model is run. Latency, size and
    serving are always measured on the models themselves.
    """
    from .progress import progress_bar

    texts, y = data.check_texts(texts), np.asarray(labels, dtype=int)
    if len(texts) != len(y) or not models:
        raise ValueError(f"need models and one label per text; got {len(models)} models, {len(texts)} texts, {len(y)} labels.")
    binary = set(np.unique(y).tolist()) <= {0, 1}
    stressed = np.flatnonzero(y == 1) if binary else np.arange(len(y))
    perturbed = {k: perturb([texts[i] for i in stressed], k, strength, seed) for k in kinds}
    attack_n = attack_n or config.pick(100, 16)
    attack_idx = attack_pick(stressed, attack_n, seed)
    if shift is not None:
        shift = (shift["text"].tolist(), shift["label"].tolist()) if isinstance(shift, pd.DataFrame) else shift
    baseline = baseline or next(iter(models))
    threads = int(threads or config.num_threads())
    previous, rows, preds = torch.get_num_threads(), [], {}
    torch.set_num_threads(threads)
    try:
        for name, clf in progress_bar(models.items(), desc="report card", disable=not progress):
            run = _scorer(name, clf, probs)
            prob = run(texts)
            preds[name] = pred = prob.argmax(axis=1)
            ci = bootstrap_ci(y, pred, "f1", n_boot=n_boot, seed=seed)
            row = {"name": name, "f1": ci["value"], "f1_low": ci["low"], "f1_high": ci["high"],
                   "precision": score(y, pred, "precision"), "recall": score(y, pred, "recall")}
            if shift is not None:
                row["shift_f1"] = score(shift[1], run(shift[0]).argmax(axis=1), "f1")
                row["shift_drop_points"] = 100 * (row["f1"] - row["shift_f1"])
            for kind, new_texts in perturbed.items():
                changed = pred.copy()
                changed[stressed] = run(new_texts).argmax(axis=1)
                row[f"f1_{kind}"] = score(y, changed, "f1")
            results = [attack(clf, [texts[i] for i in attack_idx[y[attack_idx] == c]], budget, seed, target=c, scorer=run)
                       for c in np.unique(y[attack_idx])]
            attacked = sum(int(r.attacked.sum()) for r in results)
            row["attacked"] = attacked
            row["attack_success"] = sum(int(r.success.sum()) for r in results) / attacked if attacked else np.nan
            row["ece"] = expected_calibration_error(y, prob)
            row["size_mb"] = float(clf.size_mb()) if callable(getattr(clf, "size_mb", None)) else np.nan
            lat = evaluate.latency_ms(clf, texts[:100], runs=latency_runs or config.pick(100, 15),
                                      warmup=config.pick(10, 3), threads=threads)
            row.update({"latency_p50_ms": lat["median_ms"], "latency_p95_ms": lat["p95_ms"], "threads": lat["threads"]})
            if loaders and name in loaders:
                footprint = evaluate.serving_footprint(loaders[name], texts[:64], threads=threads)
                row.update({"serving_mb": footprint["serving_mb"], "load_s": footprint["load_s"]})
            rows.append(row)
    finally:
        torch.set_num_threads(previous)
    if baseline not in preds:
        raise KeyError(f"baseline {baseline!r} is not one of the models {list(preds)}.")
    base = next(r for r in rows if r["name"] == baseline)
    for row in rows:
        if row["name"] == baseline:
            row.update(verdict="baseline", reason="the reference the others are compared with")
            continue
        diff = paired_bootstrap_diff(y, preds[baseline], preds[row["name"]], "f1", n_boot=n_boot, seed=seed)
        size_ratio = base["size_mb"] / row["size_mb"] if row["size_mb"] > 0 and base["size_mb"] > 0 else 1.0  # unknown: no gain
        speedup = base["latency_p50_ms"] / row["latency_p50_ms"]
        label, reason = evaluate.verdict_with_interval(-100 * diff["diff"], -100 * diff["high"], -100 * diff["low"],
                                              size_ratio, speedup)
        row.update(f1_change_points=100 * diff["diff"], change_low=100 * diff["low"], change_high=100 * diff["high"],
                   mcnemar_p=mcnemar(y, preds[baseline], preds[row["name"]])["p_value"], verdict=label, reason=reason)
    card = pd.DataFrame(rows).set_index("name")
    card.attrs.update({"metric": "F1 (class 1)" if binary else "macro F1", "strength": strength, "budget": budget,
                       "stressed": "class 1 (spam)" if binary else "every message", "n": len(y),
                       "baseline": baseline, "threads": threads, "level": 0.95})
    return card
