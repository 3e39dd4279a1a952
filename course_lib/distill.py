"""Knowledge distillation: the loss and the training loop (chapter 02).

The loss (Hinton et al., 2015), with α weighting the hard-label term as in *NLP with
Transformers* (ch. 8)::

    L = α · CE(student, labels) + (1 − α) · T² · KL( softmax(teacher / T) ‖ softmax(student / T) )

averaged over the batch. Beware: some texts put α on the distillation term instead; here α = 1
is plain fine-tuning on the labels and α = 0 is pure imitation of the teacher.

Rows without a label (a *transfer set* that only the teacher labels) get the distillation
term alone, i.e. α is treated as 0 for them; pass their label as -1 (or ``labels=None``
when no row has one).

Students are built in :mod:`course_lib.students`; the chapter's cached experiments (recipes,
seed studies, the temperature sweep) are in :mod:`course_lib.studies.distillation`, the
temperature explorer in :mod:`course_lib.explorers.temperature` and the exercise checker in
:mod:`course_lib.exercises.distillation`.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from . import data, train
from .models import TextClassifier, cached_logits

UNLABELLED = -1  # label value of a transfer-set row (only the teacher labels it)


# --------------------------------------------------------------------------- losses


def _check_temperature(temperature) -> float:
    t = float(temperature)
    if not math.isfinite(t) or t <= 0:
        raise ValueError(f"temperature must be a positive finite number (e.g. 2.0), got {temperature}.")
    return t


def _check_logits(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> None:
    if tuple(student_logits.shape) != tuple(teacher_logits.shape):
        raise ValueError(f"student logits {tuple(student_logits.shape)} and teacher logits "
                         f"{tuple(teacher_logits.shape)} must have the same shape (batch, classes).")


def kd_term(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Per-row ``T² · KL(softmax(teacher/T) ‖ softmax(student/T))``, shape (batch,).

    Zero when the two rows of logits are equal; the T² keeps its gradients on the scale of
    the hard-label loss whatever the temperature (the gradient of the KL scales as 1/T²).
    """
    t = _check_temperature(temperature)
    log_p_student = F.log_softmax(student_logits / t, dim=-1)
    log_p_teacher = F.log_softmax(teacher_logits.detach().to(student_logits.dtype) / t, dim=-1)
    kl = F.kl_div(log_p_student, log_p_teacher, reduction="none", log_target=True).sum(dim=-1)
    return kl * (t * t)


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor | None,
    temperature: float = 2.0,
    alpha: float = 0.5,
) -> torch.Tensor:
    """``α·CE(student, labels) + (1−α)·T²·KL(softmax(teacher/T) ‖ softmax(student/T))``, batch mean.

    ``student_logits``, ``teacher_logits``: (batch, classes). ``labels``: (batch,) class ids,
    where -1 marks a row without a label (its loss is the distillation term alone, as if α = 0);
    ``labels=None`` means no row has one. With every row labelled this equals
    ``α·F.cross_entropy(s, y) + (1−α)·T²·F.kl_div(F.log_softmax(s/T), F.softmax(t/T), reduction="batchmean")``.
    """
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}.")
    _check_logits(student_logits, teacher_logits)
    return _mix_with_labels(kd_term(student_logits, teacher_logits, temperature), student_logits, labels, alpha)


def _mix_with_labels(teacher_term: torch.Tensor, student_logits: torch.Tensor,
                     labels: torch.Tensor | None, alpha: float) -> torch.Tensor:
    """Batch mean of ``α·CE(student, label) + (1−α)·teacher_term`` per row; rows labelled -1
    (or ``labels=None``) get the teacher term alone. ``teacher_term``: shape (batch,)."""
    if labels is None:
        return teacher_term.mean()
    labels = torch.as_tensor(labels, dtype=torch.long, device=student_logits.device)
    if tuple(labels.shape) != (student_logits.shape[0],):
        raise ValueError(f"labels {tuple(labels.shape)} must hold one class id per row of the logits "
                         f"({student_logits.shape[0]},).")
    ce = F.cross_entropy(student_logits, labels.clamp(min=0), reduction="none")
    weight = torch.where(labels >= 0, torch.full_like(teacher_term, float(alpha)), torch.zeros_like(teacher_term))
    return (weight * ce + (1.0 - weight) * teacher_term).mean()


def mse_logit_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor | None = None,
    temperature: float = 1.0,
    alpha: float = 0.0,
) -> torch.Tensor:
    """``α·CE(student, labels) + (1−α)·MSE(student logits, teacher logits)``, batch mean.

    The "match the logits" variant (Ba & Caruana, 2014). ``temperature`` is accepted for the
    same signature as :func:`distillation_loss` and changes nothing: T²·MSE(s/T, t/T) = MSE(s, t).
    The MSE is the sum over classes of squared differences, averaged over rows.
    Labels of -1 (or ``labels=None``) work as in :func:`distillation_loss`.
    """
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}.")
    _check_temperature(temperature)
    _check_logits(student_logits, teacher_logits)
    mse = ((student_logits - teacher_logits.detach().to(student_logits.dtype)) ** 2).sum(dim=-1)
    return _mix_with_labels(mse, student_logits, labels, alpha)


LOSSES = {"kl": distillation_loss, "mse": mse_logit_loss}


# --------------------------------------------------------------------------- the teacher's soft targets

teacher_logits = cached_logits  # the teacher's logits on a list of texts, cached on disk (models.cached_logits)


def soft_targets(logits: np.ndarray, temperature: float) -> np.ndarray:
    """The teacher's softened probabilities ``softmax(logits / T)``, shape (n, classes)."""
    return train.softmax(np.asarray(logits, dtype=np.float32).reshape(-1, np.shape(logits)[-1]), temperature)


# --------------------------------------------------------------------------- training


def _as_frame(data_or_texts) -> pd.DataFrame:
    """A frame with ``text`` and ``label`` (-1 where there is no label) from a frame or a list of texts."""
    if isinstance(data_or_texts, pd.DataFrame):
        if "text" not in data_or_texts.columns:
            raise data.DataError(f"distill data needs a 'text' column; found {list(data_or_texts.columns)}.")
        texts = data.check_texts(data_or_texts["text"].tolist(), "data['text']")
        if "label" in data_or_texts.columns:
            raw = pd.to_numeric(data_or_texts["label"], errors="coerce").fillna(UNLABELLED)
            bad = sorted(set(raw[(raw != raw.round()) | (raw < UNLABELLED)].tolist()))
            if bad:
                raise data.DataError(f"labels must be class ids 0, 1, ..., or -1/NaN for a row without a label; "
                                     f"found {bad[:5]}.")
            labels = raw.astype(int).tolist()
        else:
            labels = [UNLABELLED] * len(texts)
    else:
        texts = data.check_texts(data_or_texts, "texts")
        labels = [UNLABELLED] * len(texts)
    if not texts:
        raise data.DataError("distill needs at least one text.")
    return pd.DataFrame({"text": texts, "label": labels})


def distill(
    student: TextClassifier,
    teacher: TextClassifier | None,
    data_or_texts,
    temperature: float = 2.0,
    alpha: float = 0.5,
    epochs: int = 10,
    lr: float = 5e-4,
    batch_size: int = 32,
    seed: int = 0,
    loss: str | Callable = "kl",
    val_df: pd.DataFrame | None = None,
    teacher_logits: np.ndarray | None = None,
    progress: bool = True,
) -> dict:
    """Train ``student`` in place to imitate ``teacher`` (and the labels, where there are any).

    ``data_or_texts``: a frame with ``text`` and ``label`` (label -1 or NaN = no label), a frame
    with only ``text``, or a list of texts (a transfer set labelled only by the teacher).
    The teacher's logits on these texts are computed once and cached on disk (``.npy``), or
    taken from ``teacher_logits`` (shape (n, classes), same order; classes = the student's ``num_labels``). ``loss``: ``"kl"``
    (:func:`distillation_loss`), ``"mse"`` (:func:`mse_logit_loss`) or a function with the
    same signature. Uses :func:`course_lib.train.fine_tune` (length-bucketed batches, AdamW,
    progress bar); returns its history plus ``labelled`` / ``unlabelled`` row counts.
    """
    frame = _as_frame(data_or_texts)
    texts = frame["text"].tolist()
    if teacher_logits is None:
        if teacher is None:
            raise ValueError("Pass a teacher, or its logits on the training texts (teacher_logits=...).")
        teacher_logits = cached_logits(teacher, texts)
    teacher_logits = np.asarray(teacher_logits, dtype=np.float32)
    classes = int(getattr(getattr(student.model, "config", None), "num_labels", 2))
    if teacher_logits.shape != (len(texts), classes):
        raise ValueError(f"teacher_logits has shape {teacher_logits.shape}; expected ({len(texts)}, {classes}): "
                         f"one row per text and one column per class of the student (num_labels={classes}).")
    if int(frame["label"].max()) >= classes:
        raise data.DataError(f"labels go up to {int(frame['label'].max())} but the student has {classes} classes; "
                             f"build it with num_labels={int(frame['label'].max()) + 1}.")
    loss_fn = LOSSES[loss] if isinstance(loss, str) else loss
    if isinstance(loss, str) and loss not in LOSSES:
        raise ValueError(f"loss must be one of {sorted(LOSSES)} or a function; got {loss!r}.")
    t_logits = torch.from_numpy(teacher_logits)
    true_labels = torch.tensor(frame["label"].to_numpy(), dtype=torch.long)
    # fine_tune wants 0/1 labels with both classes present; rows without a label get a
    # placeholder (alternating 0/1) that the loss never reads: it looks the row up in true_labels.
    placeholder = np.where(frame["label"].to_numpy() >= 0, frame["label"].to_numpy(), np.arange(len(frame)) % 2)
    train_df = pd.DataFrame({"text": texts, "label": placeholder})
    if train_df["label"].nunique() < 2:  # a single labelled row and nothing else
        raise data.DataError("distill needs at least two rows.")

    def batch_loss(logits, _labels, batch_indices):
        return loss_fn(logits, t_logits[batch_indices], true_labels[batch_indices], float(temperature), float(alpha))

    history = train.fine_tune(student, train_df, val_df, epochs=epochs, lr=lr, batch_size=batch_size,
                              seed=seed, loss_fn=batch_loss, progress=progress)
    history["labelled"] = int((true_labels >= 0).sum())
    history["unlabelled"] = int((true_labels < 0).sum())
    return history
