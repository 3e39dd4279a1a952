"""Chapter 02's exercise: write the distillation loss. :func:`check_kd_loss` runs the learner's
function on random batches, says ``"passed"`` when it matches the reference
(:func:`course_lib.distill.distillation_loss` with every row labelled), or names the mistake it
makes from a catalogue of common ones (a missing T², the KL the wrong way round, α swapped, ...).
:func:`train_with_your_loss` then trains a tiny student with the learner's loss
(``distill.distill(..., loss=my_kd_loss)``) next to one trained with the library's.
"""

from __future__ import annotations

import math
import time
import warnings
from typing import Callable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from .. import config, distill, evaluate, students
from .runner import PASSED, name_mistake, run_cases


def _reference_variants():
    """The correct loss and common mistakes, each as (description, function)."""

    def ce(s, y):
        return F.cross_entropy(s, y)

    def kl(p_from, q_to, t, reduction="batchmean"):  # KL(q_to || p_from) on logits
        return F.kl_div(F.log_softmax(p_from / t, -1), F.log_softmax(q_to / t, -1), reduction=reduction, log_target=True)

    ok = lambda s, t, y, T, a: a * ce(s, y) + (1 - a) * T * T * kl(s, t, T)  # noqa: E731
    mistakes = [
        ("the KD term is missing the T² factor (multiply the KL by temperature**2)",
         lambda s, t, y, T, a: a * ce(s, y) + (1 - a) * kl(s, t, T)),
        ("the KD term is multiplied by T, not T² (temperature**2)",
         lambda s, t, y, T, a: a * ce(s, y) + (1 - a) * T * kl(s, t, T)),
        ("the KL divergence goes the wrong way: it must be KL(teacher ‖ student), i.e. "
         "F.kl_div(log_softmax(student/T), teacher probabilities) — the student's log-probabilities are the input",
         lambda s, t, y, T, a: a * ce(s, y) + (1 - a) * T * T * kl(t, s, T)),
        ("alpha is swapped: alpha weights the cross-entropy on the labels, (1 - alpha) the KD term",
         lambda s, t, y, T, a: (1 - a) * ce(s, y) + a * T * T * kl(s, t, T)),
        ("the KD term is summed over the batch instead of averaged (use reduction='batchmean')",
         lambda s, t, y, T, a: a * ce(s, y) + (1 - a) * T * T * kl(s, t, T, "sum")),
        ("the KD term is averaged over every element (reduction='mean' also divides by the number of "
         "classes); use reduction='batchmean'",
         lambda s, t, y, T, a: a * ce(s, y) + (1 - a) * T * T * kl(s, t, T, "mean")),
        ("both terms are summed over the batch instead of averaged (divide by the batch size)",
         lambda s, t, y, T, a: a * F.cross_entropy(s, y, reduction="sum") + (1 - a) * T * T * kl(s, t, T, "sum")),
        ("the teacher's logits are not divided by the temperature (soften both: teacher/T and student/T)",
         lambda s, t, y, T, a: a * ce(s, y) + (1 - a) * T * T * F.kl_div(
             F.log_softmax(s / T, -1), F.log_softmax(t, -1), reduction="batchmean", log_target=True)),
        ("the student's logits are not divided by the temperature (soften both: teacher/T and student/T)",
         lambda s, t, y, T, a: a * ce(s, y) + (1 - a) * T * T * F.kl_div(
             F.log_softmax(s, -1), F.log_softmax(t / T, -1), reduction="batchmean", log_target=True)),
        ("the cross-entropy uses the softened student logits; the hard-label term uses the plain logits (T = 1)",
         lambda s, t, y, T, a: a * ce(s / T, y) + (1 - a) * T * T * kl(s, t, T)),
        ("the cross-entropy term on the labels is missing (alpha * CE(student_logits, labels))",
         lambda s, t, y, T, a: (1 - a) * T * T * kl(s, t, T)),
        ("the KD term is missing ((1 - alpha) * T² * KL(teacher ‖ student))",
         lambda s, t, y, T, a: a * ce(s, y)),
        ("kl_div got probabilities, not log-probabilities, as its first argument (use F.log_softmax(student/T))",
         lambda s, t, y, T, a: a * ce(s, y) + (1 - a) * T * T * F.kl_div(
             F.softmax(s / T, -1), F.softmax(t / T, -1), reduction="batchmean")),
    ]
    return ok, mistakes


def _check_cases():
    g = torch.Generator().manual_seed(1234)
    cases = []
    for batch, classes, temp, alpha, scale in [(8, 2, 3.0, 0.3, 2.0), (5, 3, 2.0, 0.8, 3.0), (6, 2, 5.0, 0.0, 4.0),
                                               (7, 4, 1.5, 0.65, 2.5), (4, 2, 4.0, 1.0, 3.0)]:
        s = torch.randn(batch, classes, generator=g) * scale
        t = torch.randn(batch, classes, generator=g) * scale
        y = torch.randint(0, classes, (batch,), generator=g)
        cases.append((s, t, y, temp, alpha))
    return cases


def _close(got, other) -> bool:
    return bool(np.allclose(got, [float(v) for v in other], rtol=1e-4, atol=1e-5))


def _inspect(case, out) -> str | None:
    """What is wrong with one output of the learner's loss, or None."""
    if not isinstance(out, torch.Tensor):
        return (f"return a torch tensor (got {type(out).__name__}); compute the loss with torch "
                "functions so that it can be backpropagated.")
    if out.numel() != 1:
        return f"return a single number (the batch mean), not a tensor of shape {tuple(out.shape)}."
    if not out.requires_grad:
        return ("the result is not connected to the student logits (no gradient would flow): "
                "do not detach them or convert them to NumPy.")
    if math.isnan(float(out.detach())):
        return ("the loss is NaN. If you give F.kl_div log-probabilities as the target, pass log_target=True; "
                "otherwise give it probabilities (F.softmax(teacher_logits / T)).")
    return None


def check_kd_loss(fn: Callable) -> str:
    """Check a learner's ``fn(student_logits, teacher_logits, labels, temperature, alpha)``.

    Returns ``"passed"`` when it matches ``α·CE + (1−α)·T²·KL(teacher ‖ student)`` (batch mean) on
    several random batches, otherwise a sentence saying what is wrong (a known mistake when
    the result matches one, e.g. a missing T² or a swapped α).
    """
    with warnings.catch_warnings():  # kl_div warns about reduction="mean"; the verdict says it better
        warnings.simplefilter("ignore")
        return _check_kd_loss(fn)


def _check_kd_loss(fn: Callable) -> str:
    ok, mistakes = _reference_variants()
    cases = _check_cases()
    outputs = run_cases(fn, cases, lambda f, c: f(c[0].clone().requires_grad_(True), c[1].clone(), c[2].clone(),
                                                  c[3], c[4]),
                        what="your loss", inspect=_inspect)
    if isinstance(outputs, str):
        return outputs
    got = [float(out.detach()) for out in outputs]
    with torch.no_grad():
        want = [float(ok(*c)) for c in cases]
        if _close(got, want):
            return PASSED
        mistake = name_mistake(got, cases, mistakes, _close)
    if mistake:
        return mistake
    worst = int(np.argmax(np.abs(np.array(got) - np.array(want))))
    s, t, y, temp, alpha = cases[worst]
    return (f"not yet: on a batch of {len(y)} rows with T={temp:g}, alpha={alpha:g} the loss should be "
            f"{want[worst]:.4f} but yours gives {got[worst]:.4f}. Check each part: alpha * CE on the labels, "
            "(1 - alpha) * T² * KL(softmax(teacher/T) ‖ softmax(student/T)), averaged over the batch.")


def train_with_your_loss(loss_fn: Callable, train_df, teacher_logits, eval_df, rows: int | None = None,
                         epochs: int | None = None, temperature: float = 4.0, alpha: float = 0.5,
                         seed: int = 0, progress: bool = True):
    """Train two tiny students from the same initialisation with :func:`course_lib.distill.distill`: one with
    ``loss=loss_fn`` (the learner's ``my_kd_loss``), one with the library's ``loss="kl"``; same data, seed and
    batches. ``train_df``: labelled rows (``text``, ``label``); ``teacher_logits``: the teacher's logits on them,
    shape (len(train_df), 2); the first ``rows`` rows are used (default 800, 200 in fast mode) for ``epochs``
    epochs (default 2, 1 in fast mode). Returns a frame with one row per loss: ``steps``, ``first loss``,
    ``last loss``, ``spam F1`` on ``eval_df``, ``seconds``; ``attrs["max step difference"]`` is the largest
    difference between the two loss curves, step by step.
    """
    rows = config.pick(800, 200) if rows is None else int(rows)
    epochs = config.pick(2, 1) if epochs is None else int(epochs)
    part = train_df.iloc[:rows].reset_index(drop=True)
    logits = np.asarray(teacher_logits, dtype=np.float32)[:rows]
    results, curves = {}, {}
    for name, loss in (("your loss", loss_fn), ("library loss (distill.distillation_loss)", "kl")):
        student = students.small_bert(**students.TINY, seed=seed)
        start = time.perf_counter()
        history = distill.distill(student, None, part, temperature=temperature, alpha=alpha, epochs=epochs,
                                  seed=seed, loss=loss, teacher_logits=logits, progress=progress)
        seconds = time.perf_counter() - start
        pred = evaluate.predict(student, eval_df["text"].tolist()).logits.argmax(axis=1)
        curves[name] = np.asarray(history["loss"], dtype=float)
        results[name] = {"steps": len(history["loss"]), "first loss": curves[name][0], "last loss": curves[name][-1],
                         "spam F1": evaluate.quality(eval_df["label"], pred)["f1"], "seconds": seconds}
    table = pd.DataFrame(results).T
    a, b = curves.values()
    table.attrs["max step difference"] = float(np.max(np.abs(a - b))) if len(a) == len(b) else float("nan")
    return table
