"""Knowledge distillation: the loss, the training loop, cached experiments, the exercise
checker and the temperature explorer of chapter 02.

The loss (Hinton et al., 2015), with α weighting the hard-label term as in *NLP with
Transformers* (ch. 8)::

    L = α · CE(student, labels) + (1 − α) · T² · KL( softmax(teacher / T) ‖ softmax(student / T) )

averaged over the batch. Beware: some texts put α on the distillation term instead; here α = 1
is plain fine-tuning on the labels and α = 0 is pure imitation of the teacher.

Rows without a label (a *transfer set* that only the teacher labels) get the distillation
term alone, i.e. α is treated as 0 for them; pass their label as -1 (or ``labels=None``
when no row has one).

Students are built in :mod:`course_lib.students`; every trained student is cached with
:func:`course_lib.models.save_classifier` under a key of everything that produced it, so a
second run of the notebook loads instead of training.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from dataclasses import asdict, dataclass, replace
from typing import Callable, Iterable, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from . import config, data, models, students, train
from .models import TextClassifier

UNLABELLED = -1  # label value of a transfer-set row (only the teacher labels it)


# --------------------------------------------------------------------------- losses


def kd_term(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Per-row ``T² · KL(softmax(teacher/T) ‖ softmax(student/T))``, shape (batch,).

    Zero when the two rows of logits are equal; the T² keeps its gradients on the scale of
    the hard-label loss whatever the temperature (the gradient of the KL scales as 1/T²).
    """
    t = float(temperature)
    if t <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}.")
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
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student logits {tuple(student_logits.shape)} and teacher logits "
                         f"{tuple(teacher_logits.shape)} must have the same shape.")
    return _mix_with_labels(kd_term(student_logits, teacher_logits, temperature), student_logits, labels, alpha)


def _mix_with_labels(teacher_term: torch.Tensor, student_logits: torch.Tensor,
                     labels: torch.Tensor | None, alpha: float) -> torch.Tensor:
    """Batch mean of ``α·CE(student, label) + (1−α)·teacher_term`` per row; rows labelled -1
    (or ``labels=None``) get the teacher term alone. ``teacher_term``: shape (batch,)."""
    if labels is None:
        return teacher_term.mean()
    labels = torch.as_tensor(labels, dtype=torch.long, device=student_logits.device)
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
    mse = ((student_logits - teacher_logits.detach().to(student_logits.dtype)) ** 2).sum(dim=-1)
    return _mix_with_labels(mse, student_logits, labels, alpha)


LOSSES = {"kl": distillation_loss, "mse": mse_logit_loss}


# --------------------------------------------------------------------------- teacher logits (cached)


def fingerprint(clf: TextClassifier) -> str:
    """A short id of a model's weights: its cache key when it came from the cache, else a hash of its tensors."""
    key = (clf.meta or {}).get("key")
    if key:
        return str(key)
    h = hashlib.sha256()
    for name, tensor in sorted(clf.model.state_dict().items()):
        h.update(name.encode())
        if isinstance(tensor, torch.Tensor):
            h.update(tensor.detach().float().contiguous().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def texts_digest(texts: Sequence[str]) -> str:
    """sha256 (first 16 hex digits) of a list of texts, order included."""
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()[:16]


def cached_logits(clf: TextClassifier, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """``clf.logits(texts)``, computed once and kept as ``.npy`` in the cache (keyed by model + texts)."""
    texts = data.check_texts(texts)
    key = models.cache_key(kind="logits", model=fingerprint(clf), texts=texts_digest(texts),
                           n=len(texts), max_length=clf.max_length)
    path = config.cache_dir() / "logits" / f"{key}.npy"
    if path.is_file():
        return np.load(path, allow_pickle=False)
    logits = clf.logits(texts, batch_size=batch_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, logits, allow_pickle=False)
    tmp.replace(path)
    return logits


teacher_logits = cached_logits  # the name the chapter uses for the teacher's soft targets


# --------------------------------------------------------------------------- training


def _as_frame(data_or_texts) -> pd.DataFrame:
    """A frame with ``text`` and ``label`` (-1 where there is no label) from a frame or a list of texts."""
    if isinstance(data_or_texts, pd.DataFrame):
        if "text" not in data_or_texts.columns:
            raise data.DataError(f"distill data needs a 'text' column; found {list(data_or_texts.columns)}.")
        texts = data.check_texts(data_or_texts["text"].tolist(), "data['text']")
        if "label" in data_or_texts.columns:
            raw = pd.to_numeric(data_or_texts["label"], errors="coerce").fillna(UNLABELLED).astype(int)
            bad = sorted(set(raw) - {0, 1, UNLABELLED})
            if bad:
                raise data.DataError(f"labels must be 0, 1, or -1/NaN for a row without a label; found {bad}.")
            labels = raw.tolist()
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
    taken from ``teacher_logits`` (shape (n, 2), same order). ``loss``: ``"kl"``
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
    if teacher_logits.shape != (len(texts), 2):
        raise ValueError(f"teacher_logits has shape {teacher_logits.shape}; expected ({len(texts)}, 2).")
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


# --------------------------------------------------------------------------- cached experiments


@dataclass(frozen=True)
class Recipe:
    """Everything that produces one trained student (its cache key is built from this).

    - ``arch``: ``"tiny"`` (:func:`students.small_bert`, 2 layers × 128, random init) or
      ``"half"`` (:func:`students.student_from_teacher`, every other teacher layer).
    - ``method``: ``"ce"`` (labels only, no teacher), ``"kd"`` (:func:`distillation_loss`),
      ``"mse"`` (:func:`mse_logit_loss`), ``"pseudo"`` (the teacher's hard labels on the
      transfer set, plain cross-entropy: do the soft targets help, or only the extra data?).
    - ``labelled``: ``None`` = every training label; ``n`` = only ``n`` labelled messages (a
      stratified sample that depends on the seed); ``"ce"`` then trains on those ``n`` alone and
      the other methods add the rest of the training split as an unlabelled transfer set.
    - ``teacher``: ``"full"`` = the chapter's teacher (fine-tuned on every training label; with
      ``labelled=n`` this is the usual KD situation: a strong model exists, the student's own
      labels are few); ``"few"`` = the pretrained MiniLM fine-tuned on the same ``n`` labels
      only (:func:`low_label_teacher`; slower, the stricter test).
    - ``epochs``/``lr``: ``None`` = :func:`default_schedule`.
    """

    arch: str = "tiny"
    method: str = "ce"
    temperature: float = 4.0
    alpha: float = 0.5
    labelled: int | None = None
    seed: int = 0
    teacher: str = "full"
    epochs: int | None = None
    lr: float | None = None

    def label(self) -> str:
        """A short human name, e.g. ``tiny · KD (T=4, α=0.5)``."""
        what = {"ce": "no KD", "kd": f"KD (T={self.temperature:g}, α={self.alpha:g})",
                "mse": f"MSE logits (α={self.alpha:g})", "pseudo": "teacher hard labels"}[self.method]
        who = " · few-label teacher" if self.teacher == "few" and self.labelled is not None else ""
        return f"{self.arch} · {what}{who}"


ARCHS = ("tiny", "half")
METHODS = ("ce", "kd", "mse", "pseudo")
TEACHERS = ("full", "few")


def default_schedule(recipe: Recipe, n_rows: int) -> tuple[int, float]:
    """(epochs, learning rate) for a recipe trained on ``n_rows`` messages.

    The tiny student starts from random weights and needs a high learning rate. Every tiny
    run gets the same number of optimizer steps, 6 passes over the whole training split
    (1 in fast mode): a run on 300 labelled messages makes more passes over them, so the
    no-KD baseline is not under-trained (which would flatter distillation). The student cut
    from the teacher already knows the task: one short, gentle pass.
    """
    if recipe.arch == "half":
        return 1, 5e-5
    passes = config.pick(6, 1)
    return int(math.ceil(passes * len(training_split()) / max(1, n_rows))), 1e-3


def experiment_data(seed: int = 0, labelled: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(labelled_df, transfer_df)`` from the SMS training split in the current mode.

    Fast mode uses 400 training messages. ``labelled=None``: every
    row labelled, an empty transfer set. ``labelled=n``: a stratified sample of ``n`` rows
    (seeded), and the remaining rows as the transfer set, their labels dropped (-1).
    Both frames carry a ``row`` column: the position in the training split (so the teacher's
    logits on the split, computed once, can be looked up).
    """
    train_df = training_split()
    train_df = train_df.assign(row=np.arange(len(train_df)))
    if labelled is None:
        return train_df, train_df.iloc[:0].assign(label=UNLABELLED)
    if not 2 <= labelled < len(train_df):
        raise ValueError(f"labelled must be between 2 and {len(train_df) - 1} (the training split has {len(train_df)} rows); got {labelled}.")
    picked = data.sample(train_df, labelled, seed=seed)
    picked = picked.assign(row=picked["row"].astype(int))
    rest = train_df.drop(index=picked["row"].to_numpy()).reset_index(drop=True)
    return picked.reset_index(drop=True), rest.assign(label=UNLABELLED)


def training_split() -> pd.DataFrame:
    """The SMS training split the students train on: all of it, or 400 messages in fast mode."""
    splits = data.sms_splits(seed=0)
    rows = config.pick(None, 400)
    part = splits.train if rows is None else data.sample(splits.train, rows, seed=0)
    return part.reset_index(drop=True)


def teacher_for(recipe: Recipe, progress: bool = True) -> TextClassifier:
    """The teacher a recipe learns from (see :class:`Recipe`'s ``teacher``)."""
    if recipe.labelled is None or recipe.teacher == "full":
        return train.finetuned_teacher(progress=progress)
    return low_label_teacher(recipe.labelled, seed=recipe.seed, progress=progress)


def low_label_teacher(n: int, seed: int = 0, progress: bool = True) -> TextClassifier:
    """The pretrained MiniLM fine-tuned on only the ``n`` labelled messages of ``seed`` (cached).

    The strict low-label setting: the teacher knows only the labels the student gets; what it
    adds is its pretraining (and, through distillation, the unlabelled transfer set)."""
    labelled_df, _ = experiment_data(seed, n)
    epochs = max(3, int(math.ceil(config.pick(1500, 600) / n)))
    settings = {"kind": "low_label_teacher", "base": models.TEACHER_HUB_NAME, "data": "sms_spam",
                "data_sha256": data.SMS_SHA256[:12], "labelled": n, "seed": seed, "epochs": epochs,
                "lr": 1e-4, "batch_size": 16, "max_tokens_per_step": train.MAX_TOKENS_PER_STEP,
                "fast": config.fast_mode(),
                "rows": texts_digest(labelled_df["text"].tolist())}
    key = models.cache_key(**settings)
    if models.is_cached(key):
        return models.load_classifier(key)
    clf = models.load_teacher(seed=seed)
    history = train.fine_tune(clf, labelled_df, epochs=epochs, lr=1e-4, batch_size=16, seed=seed, progress=progress)
    clf.name = f"teacher fine-tuned on {n} labels"
    with models._quiet_transformers():
        models.save_classifier(clf, key, {"settings": settings, "train_seconds": history["seconds"]})
    return models.load_classifier(key)


def _teacher_id(recipe: Recipe) -> str:
    if recipe.labelled is None or recipe.teacher == "full":
        return models.cache_key(kind="teacher", **train.teacher_settings(0))
    return f"few:{recipe.labelled}:{recipe.seed}"


def recipe_key(recipe: Recipe) -> tuple[str, dict]:
    """The cache key of a recipe's student and the settings it is built from."""
    if recipe.arch not in ARCHS:
        raise ValueError(f"arch must be one of {ARCHS}, got {recipe.arch!r}.")
    if recipe.method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {recipe.method!r}.")
    if recipe.teacher not in TEACHERS:
        raise ValueError(f"teacher must be one of {TEACHERS}, got {recipe.teacher!r}.")
    labelled_df, transfer_df = experiment_data(recipe.seed, recipe.labelled)
    n_rows = len(labelled_df) + (len(transfer_df) if recipe.method != "ce" else 0)
    epochs, lr = default_schedule(recipe, n_rows)
    resolved = replace(recipe, epochs=recipe.epochs or epochs, lr=recipe.lr or lr)
    uses_teacher = recipe.method != "ce" or recipe.arch == "half"
    settings = {
        "kind": "student", "version": 1, **asdict(resolved),
        "teacher": _teacher_id(recipe) if uses_teacher else None,
        "fast": config.fast_mode(), "train_rows": n_rows, "batch_size": 32,
        "max_tokens_per_step": train.MAX_TOKENS_PER_STEP,
        "data": texts_digest(labelled_df["text"].tolist() + (transfer_df["text"].tolist() if recipe.method != "ce" else [])),
        "arch_config": students.TINY if recipe.arch == "tiny" else {"keep_every": 2},
    }
    if recipe.method == "ce":  # no teacher term: these settings change nothing
        settings.pop("temperature")
        settings.pop("alpha")
    return models.cache_key(**settings), settings


def train_student(recipe: Recipe, progress: bool = True, retrain: bool = False) -> TextClassifier:
    """The student of ``recipe``: loaded from the cache, or trained once and saved."""
    key, settings = recipe_key(recipe)
    if models.is_cached(key) and not retrain:
        clf = models.load_classifier(key)
        clf.name = recipe.label()
        return clf
    labelled_df, transfer_df = experiment_data(recipe.seed, recipe.labelled)
    teacher = teacher_for(recipe, progress=progress) if settings["teacher"] else None
    if recipe.arch == "tiny":
        student = students.small_bert(**students.TINY, seed=recipe.seed)
    else:
        student = students.student_from_teacher(teacher)
    student.name = recipe.label()
    epochs, lr = settings["epochs"], settings["lr"]
    common = dict(epochs=epochs, lr=lr, batch_size=settings["batch_size"], seed=recipe.seed, progress=progress)
    if recipe.method == "ce":
        history = train.fine_tune(student, labelled_df, **common)
    else:
        # the teacher's logits on the whole training split, computed once (cached) and looked up by row
        split_logits = cached_logits(teacher, training_split()["text"].tolist())
        frame = pd.concat([labelled_df, transfer_df], ignore_index=True)
        logits = split_logits[frame["row"].to_numpy()]
        if recipe.method == "pseudo":
            frame = frame.assign(label=np.where(frame["label"] >= 0, frame["label"], logits.argmax(axis=1)))
            history = train.fine_tune(student, frame[["text", "label"]], **common)
        else:
            history = distill(student, None, frame[["text", "label"]], temperature=recipe.temperature,
                              alpha=recipe.alpha, loss="kl" if recipe.method == "kd" else "mse",
                              teacher_logits=logits, **common)
    with models._quiet_transformers():
        models.save_classifier(student, key, {"settings": settings, "train_seconds": history["seconds"],
                                              "final_loss": float(np.mean(history["loss"][-10:]))})
    clf = models.load_classifier(key)
    clf.name = recipe.label()
    return clf


def eval_sets() -> dict[str, pd.DataFrame]:
    """The evaluation sets of the chapter: the SMS test split and YouTube comments (distribution shift).

    Fast mode uses stratified subsets (200 SMS, 200 comments)."""
    splits = data.sms_splits(seed=0)
    return {"sms": data.for_mode(splits.test, 200), "youtube": data.for_mode(data.load_youtube_spam(), 200)}


def evaluate_model(clf: TextClassifier, sets: dict[str, pd.DataFrame] | None = None) -> dict:
    """F1, accuracy, precision and recall (spam) of ``clf`` on each evaluation set, e.g. ``{"sms_f1": ..., "youtube_acc": ...}``.

    Logits are cached per model and set, so re-evaluating a cached model is instant."""
    from .evaluate import quality

    sets = sets or eval_sets()
    out = {}
    for name, frame in sets.items():
        logits = cached_logits(clf, frame["text"].tolist())
        q = quality(frame["label"].to_numpy(), logits.argmax(axis=1))
        out[f"{name}_f1"] = q["f1"]
        out[f"{name}_acc"] = q["accuracy"]
        out[f"{name}_precision"] = q["precision"]
        out[f"{name}_recall"] = q["recall"]
    return out


def seed_study(recipes: Iterable[Recipe], seeds: Sequence[int], progress: bool = True,
               include_teacher: bool = True) -> pd.DataFrame:
    """Train (or load) every recipe at every seed and evaluate it: one row per (recipe, seed).

    Columns: ``model`` (the recipe's label), ``setting`` ("all labels" / "300 labels"), ``seed``,
    ``sms_f1``, ``sms_acc``, ``youtube_f1``, ``youtube_acc``, ``train_seconds``. With
    ``include_teacher`` each setting's teacher gets rows too (model ``"teacher"``): one row for the
    chapter's teacher (a single model), one per seed for few-label teachers.
    """
    from tqdm.auto import tqdm

    sets = eval_sets()
    jobs = [(replace(r, seed=s), s) for r in recipes for s in seeds]
    rows, seen = [], set()
    for recipe, seed in tqdm(jobs, desc="students", disable=not progress, leave=False):
        setting = "all labels" if recipe.labelled is None else f"{recipe.labelled} labels"
        if include_teacher:
            few = recipe.labelled is not None and recipe.teacher == "few"
            tag = (setting, "few", seed) if few else (setting, "full")
            if tag not in seen:
                seen.add(tag)
                teacher = teacher_for(recipe, progress=progress)
                rows.append({"model": "teacher (few labels)" if few else "teacher", "setting": setting,
                             "seed": seed if few else 0, **evaluate_model(teacher, sets),
                             "train_seconds": float(teacher.meta.get("train_seconds", np.nan))})
        clf = train_student(recipe, progress=progress)
        rows.append({"model": recipe.label(), "setting": setting, "seed": seed, **evaluate_model(clf, sets),
                     "train_seconds": float(clf.meta.get("train_seconds", np.nan))})
    return pd.DataFrame(rows)


def chapter_plan() -> dict:
    """The experiments of chapter 02 (the notebook and ``benchmarks/distillation.py`` share them).

    Full mode: 3 seeds, 300 labelled messages in the low-label setting, 3 temperatures in the
    sweep; fast mode: 2 seeds, 100 labelled messages, 2 temperatures.
    """
    kd = dict(temperature=4.0, alpha=0.5)
    low = config.pick(300, 100)
    return {
        "seeds": config.pick((0, 1, 2), (0, 1)),
        "in_distribution": [Recipe("tiny", "ce"), Recipe("tiny", "kd", **kd)],
        "from_teacher": Recipe("half", "kd", **kd),  # one seed: it starts from the teacher, little varies
        "low_labels": low,
        "low_label": [Recipe("tiny", "ce", labelled=low), Recipe("tiny", "kd", labelled=low, **kd)],
        "sweep": {"temperatures": config.pick((1.0, 4.0, 16.0), (1.0, 4.0)), "alpha": kd["alpha"],
                  "labelled": low, "seeds": (0,)},
    }


def temperature_sweep(temperatures: Sequence[float], alpha: float = 0.5, labelled: int | None = None,
                      seeds: Sequence[int] = (0,), progress: bool = True) -> pd.DataFrame:
    """Student quality vs temperature: one tiny KD student per (T, seed), cached.

    Returns rows with ``temperature``, ``alpha``, ``seed``, ``sms_f1``, ``sms_acc``, ``youtube_f1``.
    """
    recipes = [Recipe("tiny", "kd", temperature=float(t), alpha=alpha, labelled=labelled) for t in temperatures]
    study = seed_study(recipes, seeds, progress=progress, include_teacher=False)
    study["temperature"] = [float(t) for t in temperatures for _ in seeds]
    study["alpha"] = alpha
    return study


# --------------------------------------------------------------------------- showing results


def pick_examples(frame: pd.DataFrame, logits: np.ndarray) -> pd.DataFrame:
    """Three messages that show what soft targets carry: the teacher's most confident spam,
    its most confident ham, and the message it is least sure about.

    ``frame``: text/label rows; ``logits``: the teacher's logits on them (n, 2). Returns the
    three rows with ``logit ham``, ``logit spam`` and ``P(spam)`` at T = 1."""
    logits = np.asarray(logits, dtype=np.float32)
    p = train.softmax(logits)[:, 1]
    margin = logits[:, 1] - logits[:, 0]
    picks = [("confident spam", int(np.argmax(margin))), ("confident ham", int(np.argmin(margin))),
             ("least sure", int(np.argmin(np.abs(p - 0.5))))]
    rows = [{"example": kind, "text": frame["text"].iloc[i], "label": int(frame["label"].iloc[i]),
             "logit ham": float(logits[i, 0]), "logit spam": float(logits[i, 1]), "P(spam)": float(p[i])}
            for kind, i in picks]
    return pd.DataFrame(rows).set_index("example")


def soft_target_table(logits: np.ndarray, temperatures: Sequence[float] = (1, 2, 4, 8, 16),
                      index: Sequence[str] | None = None) -> pd.DataFrame:
    """P(spam) = softmax(logits / T)[:, 1] for each temperature (columns ``T=1``, ``T=2``, ...)."""
    logits = np.asarray(logits, dtype=np.float32)
    table = pd.DataFrame({f"T={t:g}": soft_targets(logits, t)[:, 1] for t in temperatures})
    if index is not None:
        table.index = list(index)
    return table


def teacher_certainty(logits_by_set: dict[str, np.ndarray], temperature: float = 4.0) -> pd.DataFrame:
    """How much the teacher's soft targets say beyond the hard label, per set of messages.

    Columns: ``messages``; ``saturated (T=1)``: share with P(spam) < 0.01 or > 0.99;
    ``median |margin|``: median |logit spam − logit ham|; ``soft-target spread (T=…)``: standard
    deviation of P(spam) at ``temperature`` within each predicted class, averaged over the
    two classes. A spread near 0 means every message of a class gets the same soft target:
    distillation then teaches little more than smoothed labels.
    """
    rows = {}
    for name, logits in logits_by_set.items():
        logits = np.asarray(logits, dtype=np.float32)
        p1 = train.softmax(logits)[:, 1]
        pt = soft_targets(logits, temperature)[:, 1]
        pred = logits.argmax(axis=1)
        spreads = [float(pt[pred == c].std()) for c in (0, 1) if (pred == c).sum() > 1]
        rows[name] = {"messages": len(logits), "saturated (T=1)": float(np.mean((p1 < 0.01) | (p1 > 0.99))),
                      "median |margin|": float(np.median(np.abs(logits[:, 1] - logits[:, 0]))),
                      f"soft-target spread (T={temperature:g})": float(np.mean(spreads)) if spreads else float("nan")}
    return pd.DataFrame(rows).T


# --------------------------------------------------------------------------- exercise checker


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
    got = []
    for s, t, y, temp, alpha in cases:
        s_in = s.clone().requires_grad_(True)
        try:
            out = fn(s_in, t.clone(), y.clone(), temp, alpha)
        except NotImplementedError:
            return "not written yet: replace the `raise NotImplementedError` with your loss."
        except Exception as exc:  # noqa: BLE001 - any learner error is reported, not raised
            return f"your function raised {type(exc).__name__}: {exc}"
        if not isinstance(out, torch.Tensor):
            return (f"return a torch tensor (got {type(out).__name__}); compute the loss with torch "
                    "functions so that it can be backpropagated.")
        if out.numel() != 1:
            return f"return a single number (the batch mean), not a tensor of shape {tuple(out.shape)}."
        if not out.requires_grad:
            return ("the result is not connected to the student logits (no gradient would flow): "
                    "do not detach them or convert them to NumPy.")
        value = float(out.detach())
        if math.isnan(value):
            return ("the loss is NaN. If you give F.kl_div log-probabilities as the target, pass log_target=True; "
                    "otherwise give it probabilities (F.softmax(teacher_logits / T)).")
        got.append(value)
    with torch.no_grad():
        want = [float(ok(*c)) for c in cases]
    if np.allclose(got, want, rtol=1e-4, atol=1e-5):
        return "passed"
    for description, variant in mistakes:
        with torch.no_grad():
            other = [float(variant(*c)) for c in cases]
        if np.allclose(got, other, rtol=1e-4, atol=1e-5):
            return f"not yet: {description}."
    worst = int(np.argmax(np.abs(np.array(got) - np.array(want))))
    s, t, y, temp, alpha = cases[worst]
    return (f"not yet: on a batch of {len(y)} rows with T={temp:g}, alpha={alpha:g} the loss should be "
            f"{want[worst]:.4f} but yours gives {got[worst]:.4f}. Check each part: alpha * CE on the labels, "
            "(1 - alpha) * T² * KL(softmax(teacher/T) ‖ softmax(student/T)), averaged over the batch.")


# --------------------------------------------------------------------------- temperature explorer


def soft_targets(logits: np.ndarray, temperature: float) -> np.ndarray:
    """The teacher's softened probabilities ``softmax(logits / T)``, shape (n, classes)."""
    return train.softmax(np.asarray(logits, dtype=np.float32).reshape(-1, np.shape(logits)[-1]), temperature)


def temperature_explorer(texts: Sequence[str], logits: np.ndarray, sweep: pd.DataFrame | None = None,
                         labels: Sequence[int] | None = None, initial_temperature: float = 4.0,
                         initial_alpha: float = 0.5, metric: str = "sms_f1"):
    """Sliders for T and α with a live plot of the teacher's soft targets for ``texts`` and,
    if ``sweep`` (from :func:`temperature_sweep`) is given, the measured student quality vs T.

    ``logits``: the teacher's logits for ``texts``, shape (n, 2). ``labels`` (optional): the true
    labels, used for the α-blended target ``α·one-hot + (1−α)·soft``. Everything is
    precomputed; a slider move only redraws.
    """
    import ipywidgets as W
    import matplotlib.pyplot as plt

    from .widgets import Explorer

    texts = list(texts)
    logits = np.asarray(logits, dtype=np.float32)
    if logits.shape != (len(texts), 2):
        raise ValueError(f"logits must have shape ({len(texts)}, 2), got {logits.shape}.")
    hard = np.asarray(labels if labels is not None else logits.argmax(axis=1), dtype=int)
    short = [t if len(t) <= 48 else t[:45] + "..." for t in texts]
    curve = None
    if sweep is not None and len(sweep):
        g = sweep.groupby("temperature")[metric]
        curve = pd.DataFrame({"mean": g.mean(), "std": g.std(ddof=1).fillna(0.0)}).sort_index()

    t_slider = W.FloatLogSlider(value=initial_temperature, base=2, min=-1, max=5, step=0.25,
                                description="T", continuous_update=True, readout_format=".2f")
    a_slider = W.FloatSlider(value=initial_alpha, min=0.0, max=1.0, step=0.05, description="α",
                             continuous_update=True, readout_format=".2f")
    for s in (t_slider, a_slider):
        s.add_class("course-slider")
    readout = W.HTML()
    readout.add_class("course-readout")
    out = W.Output()
    out.add_class("course-plot")

    def redraw(change=None) -> None:
        temp, alpha = float(t_slider.value), float(a_slider.value)
        soft = soft_targets(logits, temp)
        onehot = np.eye(2)[hard]
        blend = alpha * onehot + (1 - alpha) * soft
        entropy = -(soft * np.log2(np.clip(soft, 1e-12, 1))).sum(axis=1)
        parts = [f"<b>T = {temp:.2f}, α = {alpha:.2f}</b>"]
        for name, p, h in zip(short, soft[:, 1], entropy):
            parts.append(f"“{name}”: P(spam) {p:.3f}, entropy {h:.2f} bits")
        readout.value = "<br>".join(parts)
        with out:
            out.clear_output(wait=True)
            ncols = 2 if curve is not None else 1
            fig, axes = plt.subplots(1, ncols, figsize=(5.2 * ncols, 0.55 * len(texts) + 1.8), squeeze=False)
            ax = axes[0][0]
            y = np.arange(len(texts))
            ax.barh(y, soft[:, 1], height=0.38, color="tab:red", label="teacher soft target P(spam)")
            ax.barh(y + 0.38, blend[:, 1], height=0.38, color="tab:gray", alpha=0.7,
                    label="α·label + (1−α)·soft target")
            ax.set_yticks(y + 0.19, short, fontsize=8)
            ax.invert_yaxis()
            ax.set_xlim(0, 1)
            ax.axvline(0.5, color="black", lw=0.6, ls=":")
            ax.set_xlabel("P(spam)")
            ax.set_title(f"what the student is taught at T = {temp:.2f}", fontsize=10)
            ax.legend(fontsize=7, loc="lower right")
            if curve is not None:
                ax2 = axes[0][1]
                ax2.errorbar(curve.index, curve["mean"], yerr=curve["std"], marker="o", capsize=3)
                ax2.set_xscale("log", base=2)
                # The x-axis spans the whole slider range, so the T marker is always on the plot
                # and the axis does not jump when T moves past the swept values.
                ax2.set_xlim(t_slider.base ** t_slider.min / 1.25, t_slider.base ** t_slider.max * 1.25)
                ax2.axvline(temp, color="gray", ls="--")
                ax2.set_xlabel("distillation temperature T (trained)")
                ax2.set_ylabel(metric.replace("_", " "))
                ax2.set_title("student quality vs T (measured)", fontsize=10)
                ax2.grid(alpha=0.3)
            fig.tight_layout()
            plt.show()
            plt.close(fig)

    t_slider.observe(redraw, names="value")
    a_slider.observe(redraw, names="value")
    redraw()
    n_sweep = 0 if curve is None else len(curve)
    return Explorer([W.HBox([t_slider, a_slider]), readout, out],
                    f"Temperature explorer: soft targets of {len(texts)} messages"
                    + (f", student quality at {n_sweep} temperatures" if n_sweep else "")
                    + " (move the sliders in JupyterLab).")
