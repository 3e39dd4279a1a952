"""Chapter 01's exercise: precision, recall and F1 of spam from a confusion matrix.

:func:`check_precision_recall_f1` runs the learner's ``fn(confusion) -> (precision, recall, f1)`` on
2×2 matrices in the workbook's layout (scikit-learn's, and what ``plots.confusion_matrix`` draws)::

    [[TN, FP],      rows: the truth (ham, spam)
     [FN, TP]]      columns: the prediction (ham, spam)

and says ``"passed"`` when the three numbers match scikit-learn's ``precision_recall_fscore_support``
(spam is the positive class, ``zero_division=0``), or names the mistake: the matrix read in the
metrics page's layout ``[[TP, FP], [FN, TN]]``, precision and recall swapped (or FP and FN read the
wrong way round), ham taken as the positive class, F1 as an arithmetic mean or without its factor 2,
accuracy instead of F1, percentages instead of fractions, a division by zero when nothing is flagged.
:func:`reference_precision_recall_f1` is a correct solution.
"""

from __future__ import annotations

import math
import warnings
from typing import Callable

import numpy as np
from sklearn.metrics import precision_recall_fscore_support

from .runner import PASSED, name_mistake, run_cases


def reference_precision_recall_f1(confusion) -> tuple[float, float, float]:
    """``(precision, recall, f1)`` of spam from ``[[TN, FP], [FN, TP]]``, with scikit-learn.

    The matrix is expanded back into true and predicted labels and scored by
    ``precision_recall_fscore_support(..., average="binary", zero_division=0)``.
    """
    (tn, fp), (fn, tp) = np.asarray(confusion, dtype=int)
    y_true = np.repeat([0, 0, 1, 1], [tn, fp, fn, tp])
    y_pred = np.repeat([0, 1, 0, 1], [tn, fp, fn, tp])
    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average="binary", pos_label=1, zero_division=0)
    return float(p), float(r), float(f)


def _div(a, b) -> float:
    return float(a) / float(b) if b else 0.0


def _f1(p, r) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def _from_counts(tp, fp, fn, f1=_f1):
    p, r = _div(tp, tp + fp), _div(tp, tp + fn)
    return p, r, f1(p, r)


def _cells(c):
    (tn, fp), (fn, tp) = np.asarray(c, dtype=int)
    return tn, fp, fn, tp


def _page_layout(c):  # reads [[TN, FP], [FN, TP]] as if it were [[TP, FP], [FN, TN]]
    tn, fp, fn, tp = _cells(c)
    return _from_counts(tn, fp, fn)


def _swapped(c):
    p, r, f = reference_precision_recall_f1(c)
    return r, p, f


def _ham_positive(c):
    tn, fp, fn, tp = _cells(c)
    return _from_counts(tn, fn, fp)


def _arithmetic_mean(c):
    tn, fp, fn, tp = _cells(c)
    return _from_counts(tp, fp, fn, f1=lambda p, r: (p + r) / 2)


def _no_factor_two(c):
    tn, fp, fn, tp = _cells(c)
    return _from_counts(tp, fp, fn, f1=lambda p, r: p * r / (p + r) if p + r else 0.0)


def _accuracy(c):
    tn, fp, fn, tp = _cells(c)
    p, r, _ = _from_counts(tp, fp, fn)
    return p, r, _div(tp + tn, tn + fp + fn + tp)


def _percent(c):
    return tuple(100 * v for v in reference_precision_recall_f1(c))


MISTAKES = [
    ("you read the matrix in the metrics page's layout [[TP, FP], [FN, TN]]; the workbook (scikit-learn, "
     "plots.confusion_matrix) uses [[TN, FP], [FN, TP]]: rows are the truth (ham, spam), columns the prediction, "
     "so TP = confusion[1][1] and TN = confusion[0][0]", _page_layout),
    ("precision and recall are swapped (or FP and FN read the wrong way round): precision = TP / (TP + FP), "
     "the share of flagged messages that are spam; recall = TP / (TP + FN), the share of spam that is flagged. "
     "FP = confusion[0][1] (ham predicted spam), FN = confusion[1][0] (spam predicted ham)", _swapped),
    ("you scored ham as the positive class: the positive class is spam (label 1), TP = confusion[1][1]",
     _ham_positive),
    ("F1 is the harmonic mean of precision and recall, 2·P·R / (P + R), not the arithmetic mean (P + R) / 2",
     _arithmetic_mean),
    ("F1 is missing its factor 2: F1 = 2·P·R / (P + R)", _no_factor_two),
    ("the third number is the accuracy (TP + TN) / total, not F1 = 2·P·R / (P + R)", _accuracy),
    ("return fractions between 0 and 1 (as scikit-learn does), not percentages", _percent),
]


def _cases():
    """(description, confusion [[TN, FP], [FN, TP]]) pairs; the first two are the metrics page's example."""
    return [
        ("the metrics page's original model (TP=90, FP=10, FN=5, TN=95)", np.array([[95, 10], [5, 90]])),
        ("the metrics page's distilled model (TP=88, FP=12, FN=7, TN=93)", np.array([[93, 12], [7, 88]])),
        ("an imbalanced test split like ours (TN=960, FP=4, FN=21, TP=130)", np.array([[960, 4], [21, 130]])),
        ("a model that flags nothing (TP = FP = 0: precision is 0/0)", np.array([[966, 0], [149, 0]])),
    ]


def _call(fn: Callable, case):
    _, confusion = case
    try:
        return fn(confusion.copy())
    except ZeroDivisionError as exc:
        raise ZeroDivisionError(f"{exc} — when a denominator is 0 (nothing flagged: TP + FP = 0), report 0 as "
                                "scikit-learn does with zero_division=0") from exc


def _inspect(case, out) -> str | None:
    label, _ = case
    if not isinstance(out, (tuple, list)) or len(out) != 3:
        return f"On {label}: return three numbers (precision, recall, f1), got {type(out).__name__}."
    try:
        values = [float(v) for v in out]
    except (TypeError, ValueError) as exc:
        return f"On {label}: precision, recall and f1 must be numbers ({exc})."
    if any(math.isnan(v) for v in values):
        return (f"On {label}: your result holds NaN — a 0/0 (nothing flagged as spam: TP + FP = 0). "
                "Report 0 in that case, as scikit-learn does with zero_division=0.")
    return None


def _close(got, want) -> bool:
    return all(np.allclose([float(v) for v in g], [float(v) for v in w], rtol=1e-6, atol=1e-9) for g, w in zip(got, want))


def check_precision_recall_f1(fn: Callable) -> str:
    """Check a learner's ``fn(confusion) -> (precision, recall, f1)`` for spam, with ``confusion`` a 2×2
    array ``[[TN, FP], [FN, TP]]``. Returns ``"passed"`` or one sentence naming the mistake."""
    cases = _cases()
    with warnings.catch_warnings():  # numpy's 0/0 warning: the verdict says it better
        warnings.simplefilter("ignore")
        outputs = run_cases(fn, cases, _call, what="your precision, recall and F1", inspect=_inspect,
                            where=lambda case: f"On {case[0]}, ")
    if isinstance(outputs, str):
        return outputs
    want = [reference_precision_recall_f1(c) for _, c in cases]
    if _close(outputs, want):
        return PASSED
    named = name_mistake(outputs, [(c,) for _, c in cases], MISTAKES, _close)
    if named:
        return named
    for (label, _), g, w in zip(cases, outputs, want):
        if not _close([g], [w]):
            return (f"not yet: on {label} expected precision {w[0]:.4f}, recall {w[1]:.4f}, F1 {w[2]:.4f}; got "
                    f"{float(g[0]):.4f}, {float(g[1]):.4f}, {float(g[2]):.4f}.")
    return PASSED
