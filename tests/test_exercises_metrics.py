"""Chapter 01's exercise: precision, recall and F1 of spam from a [[TN, FP], [FN, TP]] confusion matrix."""

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix

from course_lib import evaluate
from course_lib.exercises import metrics as exercise


def _stub(confusion):
    raise NotImplementedError


def test_reference_passes_and_agrees_with_scikit_learn():
    assert exercise.check_precision_recall_f1(exercise.reference_precision_recall_f1) == "passed"
    y_true = np.array([0] * 95 + [0] * 10 + [1] * 5 + [1] * 90)
    y_pred = np.array([0] * 95 + [1] * 10 + [0] * 5 + [1] * 90)
    q = evaluate.quality(y_true, y_pred)
    cm = confusion_matrix(y_true, y_pred)  # [[TN, FP], [FN, TP]]: the layout the exercise uses
    assert cm.tolist() == [[95, 10], [5, 90]]
    p, r, f = exercise.reference_precision_recall_f1(cm)
    assert (p, r, f) == pytest.approx((q["precision"], q["recall"], q["f1"]))
    assert (p, r) == pytest.approx((0.9, 90 / 95))


def test_stub_is_not_written_yet():
    assert exercise.check_precision_recall_f1(_stub).startswith("not written yet")


@pytest.mark.parametrize("index", range(len(exercise.MISTAKES)))
def test_each_catalogued_mistake_is_named(index):
    description, wrong = exercise.MISTAKES[index]
    assert exercise.check_precision_recall_f1(wrong) == f"not yet: {description}."


def _plain(confusion, as_list):
    (tn, fp), (fn, tp) = confusion.tolist() if as_list else confusion
    p, r = tp / (tp + fp), tp / (tp + fn)
    return p, r, 2 * p * r / (p + r)


@pytest.mark.parametrize("as_list, words", [(True, "ZeroDivisionError"), (False, "NaN")])
def test_division_by_zero_when_nothing_is_flagged_is_explained(as_list, words):
    message = exercise.check_precision_recall_f1(lambda c: _plain(c, as_list))
    assert words in message and "zero_division=0" in message


def test_malformed_and_unknown_answers():
    assert "three numbers" in exercise.check_precision_recall_f1(lambda c: 0.5)
    assert "raised KeyError" in exercise.check_precision_recall_f1(lambda c: {}["x"])
    assert "expected precision" in exercise.check_precision_recall_f1(lambda c: (0.5, 0.5, 0.5))
