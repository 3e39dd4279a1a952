"""Chapter 06's exercises.

- :func:`check_paired_bootstrap`: the learner's ``fn(y_true, pred_a, pred_b, n_boot, seed)`` returns
  ``n_boot`` bootstrap values of F1(b) − F1(a), resampling the *messages* (one set of indices per
  resample, shared by both models). Checked against :func:`reference_paired_bootstrap` on two
  correlated models; the mistakes named: no seed, the seed ignored, no resampling, the difference the
  wrong way round, each model resampled on its own (unpaired), resamples of the wrong size, the wrong number
  of resamples.
- :func:`check_perturbation`: the learner's own perturbation ``fn(text, strength, rng) -> text`` (the
  signature of :data:`course_lib.stress.PERTURBATIONS`), checked for strength 0 = identity, determinism
  under a seeded ``random.Random``, a change at strength 1, never an empty message, and for keeping ham
  ham (a model must not start calling ham messages spam: a stress test changes the form, not the label).
"""

from __future__ import annotations

import random
from typing import Callable, Sequence

import numpy as np
from sklearn.metrics import f1_score

from .runner import PASSED, run_cases


# --------------------------------------------------------------------------- the paired bootstrap


def reference_paired_bootstrap(y_true, pred_a, pred_b, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """``n_boot`` values of F1(b) − F1(a) (spam = 1), each on the same resample of the messages."""
    y, a, b = (np.asarray(v) for v in (y_true, pred_a, pred_b))
    rng = np.random.default_rng(seed)
    out = np.empty(n_boot)
    for i in range(n_boot):
        idx = rng.integers(0, len(y), len(y))  # messages drawn with replacement, the same for both models
        out[i] = f1_score(y[idx], b[idx], zero_division=0) - f1_score(y[idx], a[idx], zero_division=0)
    return out


def _pair(n: int = 400, seed: int = 1):
    """Labels and two correlated models: b repeats a's answers on most messages and is a bit better."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.25).astype(int)
    a = np.where(rng.random(n) < 0.10, 1 - y, y)
    b = np.where(rng.random(n) < 0.4, y, a)  # fixes 40 % of a's mistakes, keeps the rest of a
    return y, a, b


def _fast(y, a, b, n_boot: int, seed: int, paired: bool) -> np.ndarray:
    """The paired (or unpaired) bootstrap differences, computed by :mod:`course_lib.stats` (vectorized)."""
    from .. import stats

    classes = np.array([0, 1])
    scores = stats._resample_scores(y, [a, b], classes, "f1", n_boot, seed, same_indices=paired)
    return scores[1] - scores[0]


def check_paired_bootstrap(fn: Callable, n_boot: int = 200) -> str:
    """``"passed"``, or the first mistake found in ``fn(y_true, pred_a, pred_b, n_boot, seed)``.

    ``fn`` runs three times with ``n_boot`` resamples (a loop over scikit-learn's ``f1_score``, two calls per
    resample, costs about 4 ms per call: ~5 s for 200). The interval's tolerance widens as 1/√n_boot."""
    y, a, b = _pair()
    cases = [(y, a, b, n_boot, 0), (y, a, b, n_boot, 0), (y, a, b, n_boot, 1)]
    outputs = run_cases(fn, cases, lambda f, c: f(c[0].copy(), c[1].copy(), c[2].copy(), n_boot=c[3], seed=c[4]),
                        what="your paired bootstrap", inspect=_inspect_boot)
    if isinstance(outputs, str):
        return outputs
    first, again, other = (np.asarray(o, dtype=float).ravel() for o in outputs)
    if not np.array_equal(first, again):
        return ("not yet: two calls with seed=0 gave different resamples: you forgot the seed; draw from "
                "rng = np.random.default_rng(seed) instead of np.random directly.")
    if np.std(first) < 1e-12:
        return ("not yet: every resample gives the same difference: resample the messages with replacement "
                "(idx = rng.integers(0, n, n)) and recompute both F1 scores on each resample.")
    if np.array_equal(first, other):
        return "not yet: seed=0 and seed=1 gave the same resamples: the seed argument is not used (pass it to default_rng)."
    ref = _fast(y, a, b, n_boot, 0, paired=True)
    observed = f1_score(y, b) - f1_score(y, a)
    if abs(first.mean() + observed) < abs(first.mean() - observed):
        return "not yet: your differences are F1(a) − F1(b); the exercise asks for F1(b) − F1(a)."
    unpaired = _fast(y, a, b, n_boot, 0, paired=False)
    if np.std(first) > 1.5 * np.std(ref) and abs(np.std(first) - np.std(unpaired)) < abs(np.std(first) - np.std(ref)):
        return (f"not yet: your spread ({np.std(first):.4f}) matches resampling each model separately (unpaired, "
                f"{np.std(unpaired):.4f}), not the paired bootstrap ({np.std(ref):.4f}): draw ONE set of message "
                "indices per resample and score both models on it.")
    low, high = np.percentile(first, [2.5, 97.5])
    ref_low, ref_high = np.percentile(ref, [2.5, 97.5])
    # two percentile estimates from n_boot resamples each: their difference has a standard error of about
    # 3.8 / sqrt(n_boot) standard deviations (normal tails); the tolerance is ~2.7 of those
    tol = 10.0 / np.sqrt(n_boot) * np.std(ref) + 0.002
    if abs(low - ref_low) > tol or abs(high - ref_high) > tol or abs(first.mean() - ref.mean()) > tol:
        return (f"not yet: your 95 % interval [{low:+.4f}, {high:+.4f}] (mean {first.mean():+.4f}) is far from the "
                f"paired bootstrap's [{ref_low:+.4f}, {ref_high:+.4f}] (mean {ref.mean():+.4f}): resample all n "
                "messages with replacement and compute F1 (spam = 1) of each model on the resample.")
    spread = np.std(first) / np.std(ref)  # a standard deviation from n_boot resamples: ~1/sqrt(2 n_boot) relative error
    if not 0.8 < spread < 1.25:
        return (f"not yet: your differences spread {spread:.2f}× as much as the paired bootstrap's "
                f"({np.std(first):.4f} vs {np.std(ref):.4f}): each resample must draw n messages, all n, with "
                "replacement (a smaller resample spreads more, a larger one less).")
    return PASSED


def _inspect_boot(case, out) -> str | None:
    try:
        arr = np.asarray(out, dtype=float).ravel()
    except (TypeError, ValueError):
        return f"return an array of {case[3]} numbers (one F1 difference per resample), got {type(out).__name__}."
    if arr.shape != (case[3],):
        return f"return one F1 difference per resample: {case[3]} numbers, got {arr.size} (n_boot is the number of resamples)."
    if not np.all(np.isfinite(arr)):
        return "some of your differences are NaN or infinite: use f1_score(..., zero_division=0)."
    return None


# --------------------------------------------------------------------------- your own perturbation


HAM = ["Ok lar... Joking wif u oni...", "I'll be home late tonight, save me some dinner", "Sorry, I'll call later",
       "Are you coming to class tomorrow?", "Happy birthday mum! Love you lots", "Can you pick up some milk on the way home?",
       "I'm going to sleep now, good night", "Thanks for lunch, it was lovely", "Where are you? We're at the cafe",
       "Did you finish the homework for monday?"]
SPAM = ["WINNER!! You have won a £1000 cash prize. Call 09061701461 to claim now", "FREE entry to win a new phone, text WIN to 80086",
        "URGENT! Your mobile number has been awarded a £2000 bonus. Call 09066362231"]


def check_perturbation(fn: Callable, model=None, ham: Sequence[str] = HAM, max_new_spam: float = 0.2) -> str:
    """``"passed"``, or the first problem of the learner's ``fn(text, strength, rng) -> text``.

    ``model``: anything with ``predict_logits`` used to test that ham stays ham (default: a TF-IDF +
    logistic regression fitted on the SMS training split here, a second or two). At strength 1, at most
    ``max_new_spam`` of the ham messages the model calls ham may become spam."""
    texts = list(ham) + SPAM
    cases = [(t, s, seed) for t in texts for s, seed in [(0.0, 0), (1.0, 0), (0.5, 3), (0.5, 3)]]
    outputs = run_cases(fn, cases, lambda f, c: f(c[0], c[1], random.Random(c[2])), what="your perturbation",
                        inspect=_inspect_text, where=lambda c: f"On {c[0]!r} at strength {c[1]}, ")
    if isinstance(outputs, str):
        return outputs
    keys = [(c[0], c[1], i % 4) for i, c in enumerate(cases)]  # i % 4: which of the four calls on that text
    by = dict(zip(keys, outputs))
    for t in texts:
        if by[(t, 0.0, 0)] != t:
            return f"not yet: at strength 0 the text must come back unchanged; {t!r} became {by[(t, 0.0, 0)]!r}."
        if by[(t, 0.5, 2)] != by[(t, 0.5, 3)]:
            return ("not yet: two calls at strength 0.5 with random.Random(3) gave different texts: draw your random choices from "
                    "the rng argument (rng.random(), rng.choice), not from the random module.")
    if all(by[(t, 1.0, 1)] == t for t in texts):
        return "not yet: at strength 1 your perturbation changed none of the messages."
    if model is None:
        from .. import baselines, data

        model = baselines.tfidf_logreg(data.sms_splits(seed=0).train)
    ham = list(ham)
    before = np.asarray(model.predict_logits(ham)).argmax(1)
    after = np.asarray(model.predict_logits([by[(t, 1.0, 1)] for t in ham])).argmax(1)
    kept = before == 0
    turned = int(np.sum(kept & (after == 1)))
    if kept.any() and turned > max_new_spam * kept.sum():
        return (f"not yet: you changed the label: {turned} of {int(kept.sum())} ham messages now look like spam to the "
                "model. A stress test changes how a message is written, not what it says: do not add spam words.")
    return PASSED


def _inspect_text(case, out) -> str | None:
    if not isinstance(out, str):
        return f"On {case[0]!r}: return the perturbed text as a str, got {type(out).__name__}."
    if not out.strip():
        return f"On {case[0]!r} at strength {case[1]}: your perturbation returned an empty message."
    return None


def reference_perturbation(text: str, strength: float, rng: random.Random) -> str:
    """A solution: each vowel is doubled with probability ``strength`` ("free" → "freee")."""
    return "".join(c + c if c.lower() in "aeiou" and rng.random() < strength else c for c in text)
