"""Chapter 07's exercise: the reference chain passes, a stub is "not written yet", each mistake is named."""

from __future__ import annotations

import pytest

from course_lib import onnx_runtime, ship, students
from course_lib.exercises import capstone as ex
from course_lib.studies import capstone
from course_lib.studies import distillation as ch02


@pytest.fixture(scope="module")
def goals():
    return ex.targets()


def _check(fn, goals, **kw):
    return ex.check_chain(fn, budget_mb=kw.get("budget_mb", goals["budget_mb"]),
                          f1_floor=kw.get("f1_floor", goals["f1_floor"]))


def test_targets_are_met_by_the_reference(goals):
    assert goals["reference_mb"] <= goals["budget_mb"] <= goals["reference_mb"] * 1.15 + 0.05
    assert goals["f1_floor"] <= goals["reference_f1"]


def test_reference_passes(goals):
    assert _check(ex.reference_chain, goals) == "passed"


def test_stub_is_not_written_yet(goals):
    def stub(student, train_texts, path):
        raise NotImplementedError

    assert _check(stub, goals).startswith("not written yet")


def test_an_exception_is_reported(goals):
    def broken(student, train_texts, path):
        return 1 / 0

    assert "ZeroDivisionError" in _check(broken, goals)


def _trim_then_ship(texts_of=None, quantize=True, prune=True):
    def chain(student, train_texts, path):
        clf = capstone.pruned(student) if prune else student
        texts = train_texts if texts_of is None else texts_of()
        return ship.ship(students.trim_vocabulary(clf, texts), path, quantize=quantize)
    return chain


@pytest.mark.parametrize("chain, words", [
    (lambda s, t, p: None, "nothing was written"),
    (lambda s, t, p: onnx_runtime.export_onnx(students.trim_vocabulary(s, t), p), "no tokenizer inside"),
    (lambda s, t, p: ship.ship(capstone.pruned(s), p), "vocabulary is not trimmed"),
    (_trim_then_ship(texts_of=lambda: ch02.eval_sets()["sms"]["text"].tolist()), "test set leak"),
    (_trim_then_ship(quantize=False), "stored in fp32"),
])
def test_mistakes_are_named(chain, words, goals):
    message = _check(chain, goals)
    assert message.startswith("not yet") and words in message, message


def test_over_budget_and_below_the_floor_are_named(goals):
    over = _check(ex.reference_chain, goals, budget_mb=goals["reference_mb"] * 0.5)
    assert "over the" in over and "budget" in over
    low = _check(ex.reference_chain, goals, f1_floor=1.01)
    assert "below the floor 1.010" in low
