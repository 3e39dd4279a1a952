"""Chapter 02's cached experiments: which students are trained (:class:`Recipe`), on what data,
from which teacher, and the studies over seeds and temperatures built from them; plus the tables
the chapter shows. The technique itself (the loss, :func:`~course_lib.distill.distill`) is in
:mod:`course_lib.distill`.

Every trained student is cached with :func:`course_lib.models.save_classifier` under a key of
everything that produced it (:func:`recipe_key`), so a second run of the notebook loads instead of
training.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from .. import config, data, distill, models, students, train
from ..evaluate import quality
from ..models import TextClassifier, cached_logits, texts_digest


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
        return train_df, train_df.iloc[:0].assign(label=distill.UNLABELLED)
    if not 2 <= labelled < len(train_df):
        raise ValueError(f"labelled must be between 2 and {len(train_df) - 1} (the training split has {len(train_df)} rows); got {labelled}.")
    picked = data.sample(train_df, labelled, seed=seed)
    picked = picked.assign(row=picked["row"].astype(int))
    rest = train_df.drop(index=picked["row"].to_numpy()).reset_index(drop=True)
    return picked.reset_index(drop=True), rest.assign(label=distill.UNLABELLED)


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
            history = distill.distill(student, None, frame[["text", "label"]], temperature=recipe.temperature,
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
    from ..progress import progress_bar

    sets = eval_sets()
    jobs = [(replace(r, seed=s), s) for r in recipes for s in seeds]
    rows, seen = [], set()
    for recipe, seed in progress_bar(jobs, desc="students", disable=not progress):
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


# --------------------------------------------------------------------------- tables of the chapter


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
    table = pd.DataFrame({f"T={t:g}": distill.soft_targets(logits, t)[:, 1] for t in temperatures})
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
        pt = distill.soft_targets(logits, temperature)[:, 1]
        pred = logits.argmax(axis=1)
        spreads = [float(pt[pred == c].std()) for c in (0, 1) if (pred == c).sum() > 1]
        rows[name] = {"messages": len(logits), "saturated (T=1)": float(np.mean((p1 < 0.01) | (p1 > 0.99))),
                      "median |margin|": float(np.median(np.abs(logits[:, 1] - logits[:, 0]))),
                      f"soft-target spread (T={temperature:g})": float(np.mean(spreads)) if spreads else float("nan")}
    return pd.DataFrame(rows).T
