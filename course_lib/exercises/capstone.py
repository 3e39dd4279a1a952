"""Chapter 07's exercise: assemble your own chain under a size budget. The learner writes
``my_chain(student, train_texts, path)`` from the library's steps (:func:`course_lib.studies.capstone.pruned`,
:func:`course_lib.students.trim_vocabulary`, :func:`course_lib.ship.ship`); :func:`check_chain` opens the
file it wrote with the torch-free loader and checks it against the budget (MB on disk) and the F1 floor
(SMS test split), naming the first mistake it finds: nothing written, no tokenizer inside, the vocabulary
not trimmed, trimmed on messages other than the training ones (the test set leaks into the model),
weights left in fp32, over budget, or F1 below the floor.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from .. import evaluate, ship, shipped, students
from ..studies import capstone
from ..studies import distillation as ch02
from .runner import PASSED, run_cases


def reference_chain(student, train_texts, path):
    """Prune half the FFN neurons (with the short distillation that recovers), keep only the word pieces
    of the training messages, and ship in int8 with the tokenizer inside."""
    small = capstone.pruned(student)
    small = students.trim_vocabulary(small, train_texts)
    return ship.ship(small, path)


def _f1(path, frame) -> float:
    clf = shipped.load(path, threads=1)
    pred = clf.predict_logits(frame["text"].tolist()).argmax(axis=1)
    return float(evaluate.quality(frame["label"].to_numpy(), pred)["f1"])


def targets(student=None) -> dict:
    """The exercise's budget and floor for ``student`` (default the chapter's): ``budget_mb`` = 1.15 × the
    reference chain's file, rounded up to 0.05 MB; ``f1_floor`` = the lower of the student's own SMS F1
    minus 2 points and the reference file's minus 0.5; also ``reference_mb``, ``reference_f1``, ``student_f1``."""
    student = student or capstone.student(progress=False)
    test = ch02.eval_sets()["sms"]
    with tempfile.TemporaryDirectory(prefix="chain-ref-") as folder:
        path = reference_chain(student, ch02.training_split()["text"].tolist(), Path(folder) / "reference.onnx")
        ref_mb, ref_f1 = ship.size_mb(path), _f1(path, test)
    own = float(evaluate.quality(test["label"].to_numpy(),
                                 student.predict_logits(test["text"].tolist()).argmax(axis=1))["f1"])
    return {"budget_mb": math.ceil(ref_mb * 1.15 * 20) / 20, "f1_floor": max(0.0, min(own - 0.02, ref_f1 - 0.005)),
            "reference_mb": ref_mb, "reference_f1": ref_f1, "student_f1": own}


def check_chain(fn: Callable, budget_mb: float | None = None, f1_floor: float | None = None, student=None) -> str:
    """Run ``fn(student, train_texts, path)`` once and check the file it wrote at ``path``: ``"passed"`` or
    one sentence naming the mistake. Defaults for ``budget_mb`` / ``f1_floor``: :func:`targets`."""
    student = student or capstone.student(progress=False)
    if budget_mb is None or f1_floor is None:
        t = targets(student)
        budget_mb = t["budget_mb"] if budget_mb is None else budget_mb
        f1_floor = t["f1_floor"] if f1_floor is None else f1_floor
    train_texts = ch02.training_split()["text"].tolist()
    test = ch02.eval_sets()["sms"]
    with tempfile.TemporaryDirectory(prefix="my-chain-") as folder:
        path = Path(folder) / "my_spam_filter.onnx"
        got = run_cases(fn, [(student, train_texts, path)], lambda f, case: f(*case),
                        "your chain: prune, trim the vocabulary, then ship.ship(clf, path)")
        if isinstance(got, str):
            return got
        return _inspect(path, student, train_texts, test, budget_mb, f1_floor)


def _inspect(path: Path, student, train_texts, test, budget_mb: float, f1_floor: float) -> str:
    if not path.is_file():
        return f"not yet: nothing was written to `path` ({path.name}); finish with ship.ship(clf, path)."
    try:
        clf = shipped.load(path, threads=1)
    except Exception:  # noqa: BLE001 - a plain ONNX export, or not ONNX at all
        return ("not yet: the file is not a shipped model (no tokenizer inside); write it with ship.ship(clf, path), "
                "not onnx_runtime.export_onnx or torch.save.")
    vocab = clf.tokenizer.get_vocab()
    if len(vocab) >= len(student.tokenizer):
        return (f"not yet: the vocabulary is not trimmed: all {len(vocab):,} word pieces ship, most never used by a "
                "message; students.trim_vocabulary(clf, train_texts) keeps the ones the training messages use.")
    allowed = set(students.used_token_ids(student.tokenizer, train_texts, max_length=student.max_length))
    extra = sorted(set(student.tokenizer.convert_tokens_to_ids(list(vocab))) - allowed)
    if extra:
        return (f"not yet: the vocabulary was trimmed on other messages than the training ones ({len(extra)} word "
                "pieces the training messages never use, e.g. "
                f"{student.tokenizer.convert_ids_to_tokens(extra[:3])}); trimming on the test messages lets the test "
                "set leak into the model: trim on train_texts.")
    if not clf.meta.get("int8", False):
        return (f"not yet: the weights are stored in fp32 ({clf.size_mb():.2f} MB); ship.ship(clf, path) quantizes "
                "them to int8 unless you pass quantize=False.")
    if clf.size_mb() > budget_mb:
        return (f"not yet: {clf.size_mb():.2f} MB is over the {budget_mb:.2f} MB budget; remove FFN neurons "
                "first (capstone.pruned(student) prunes half of them and recovers with a short distillation).")
    f1 = _f1(path, test)
    if f1 < f1_floor:
        pruning = clf.meta.get("source", {}).get("pruning") or []
        how = f" (pruning steps: {[p.get('method') for p in pruning]})" if pruning else ""
        return (f"not yet: the shipped file's SMS F1 is {f1:.3f}, below the floor {f1_floor:.3f}{how}: you removed "
                "too much, or pruned without the recovery distillation; prune less (capstone.pruned with a smaller "
                "prune_ratio in its plan).")
    return PASSED


def chain_report(path, budget_mb: float, f1_floor: float) -> dict:
    """Size, F1 and what the file holds, for the notebook's line under the checker."""
    clf = shipped.load(path, threads=1)
    f1 = _f1(path, ch02.eval_sets()["sms"])
    return {"size_mb": clf.size_mb(), "budget_mb": budget_mb, "f1": f1, "f1_floor": f1_floor,
            "vocab": clf.meta["vocab_size"], "int8": clf.meta["int8"], "weights": clf.meta["weight_elements"],
            "within": bool(clf.size_mb() <= budget_mb and f1 >= f1_floor),
            "int8_share": float(np.sum([v for k, v in clf.meta["weight_types"].items() if "INT8" in k])
                                / max(1, clf.meta["weight_elements"]))}
