"""Chapter 06's cached experiments: the models of the earlier chapters side by side (:func:`chapter_models`),
their logits on the evaluation sets, the perturbation sweep, the greedy attack, k-fold cross-validation of
the cheap recipes and the three variances of one pair of models. The technique itself (perturbations,
attack, report card) is in :mod:`course_lib.stress`; intervals and calibration in :mod:`course_lib.stats`.

Every result is cached as JSON (tables as records) in ``cache_dir()/stress`` under a key of everything
that produced it: the models' keys (the settings they were trained or derived from), the messages, the
settings of the study and :data:`STUDY_VERSION`. A second run of the notebook only reads files.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
import sklearn
import torch

from .. import baselines, config, data, distill, models, quantize, stats, stress, students, train
from . import distillation as ch02

STUDY_VERSION = 1
KD = dict(temperature=4.0, alpha=0.5)  # chapter 02's distillation settings
LATER_CHAPTERS = ("pruning", "lowrank")  # studies that may offer models (chapters 04 and 05)


# --------------------------------------------------------------------------- the models so far


@dataclass
class Zoo:
    """The models of the chapter: ``models`` {name: model with ``predict_logits``}, ``keys`` {name: the
    cache key of what produced it}, ``notes``: what was left out and why."""

    models: dict = field(default_factory=dict)
    keys: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

    def add(self, name: str, model, key: str) -> None:
        self.models[name] = model
        self.keys[name] = str(key)


def teacher_key() -> str:
    return models.cache_key(kind="teacher", **train.teacher_settings(0))


def _tfidf(train_df: pd.DataFrame):
    clf = baselines.tfidf_logreg(train_df, seed=0)
    clf.name = "TF-IDF + logistic regression"
    key = models.cache_key(kind="tfidf", data=models.texts_digest(train_df["text"].tolist()), sklearn=sklearn.__version__)
    return clf, key


def chapter_models(progress: bool = True, int8: bool = True) -> Zoo:
    """Every model the earlier chapters built, loaded from the cache (trained once where missing):
    the teacher, the TF-IDF baseline, chapter 02's tiny students without and with KD (seed 0), the KD
    student with a vocabulary trimmed to the training messages, the teacher in PyTorch dynamic int8
    (chapter 03), and the models of chapters 04–05 where their studies exist and offer
    ``stress_models()`` (else a note says they were skipped)."""
    zoo = Zoo()
    teacher = train.finetuned_teacher(progress=progress)
    zoo.add("teacher", teacher, teacher_key())
    train_df = ch02.training_split()
    zoo.add("TF-IDF", *_tfidf(train_df))
    for name, recipe in [("student (no KD)", ch02.Recipe("tiny", "ce")), ("student (KD)", ch02.Recipe("tiny", "kd", **KD))]:
        zoo.add(name, ch02.train_student(recipe, progress=progress), ch02.recipe_key(recipe)[0])
    trimmed = students.trim_vocabulary(zoo.models["student (KD)"], train_df["text"].tolist())
    zoo.add("student (KD), trimmed vocab", trimmed,
            models.cache_key(kind="trimmed", of=zoo.keys["student (KD)"], corpus=models.texts_digest(train_df["text"].tolist())))
    if int8:
        zoo.add("teacher int8", quantize.pytorch_dynamic_int8(teacher),
                models.cache_key(kind="pytorch_dynamic_int8", of=zoo.keys["teacher"], torch=torch.__version__,
                                 engine=torch.backends.quantized.engine))
    for chapter in LATER_CHAPTERS:
        name = f"course_lib.studies.{chapter}"
        if importlib.util.find_spec(name) is None:
            zoo.notes.append(f"{name} does not exist in this workbook yet: its models are skipped.")
            continue
        offer = getattr(importlib.import_module(name), "stress_models", None)
        if offer is None:
            zoo.notes.append(f"{name} offers no stress_models(): its models are skipped.")
            continue
        for model_name, (model, key) in offer(progress=progress).items():
            zoo.add(model_name, model, key)
    return zoo


def eval_sets() -> dict[str, pd.DataFrame]:
    """SMS test split and YouTube comments (chapter 02's sets: 200 each in fast mode) and the SMS
    validation split (temperature scaling is fitted on it; 200 in fast mode)."""
    sets = ch02.eval_sets()
    sets["val"] = data.for_mode(data.sms_splits(seed=0).val, 200)
    return sets


def _path(kind: str, key: str):
    folder = config.cache_dir() / "stress"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{kind}_{key}.json"


def _cached(kind: str, settings: dict, compute, progress: bool = True):
    """``compute()`` (a JSON-able dict) read from / saved to the cache under a key of ``settings``;
    prints how long it took when computed."""
    key = models.cache_key(kind=kind, version=STUDY_VERSION, fast=config.fast_mode(), **settings)
    path = _path(kind, key)
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    start = time.perf_counter()
    result = compute()
    result["seconds"] = time.perf_counter() - start
    result["key"] = key
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result), encoding="utf-8")
    tmp.replace(path)
    if progress:
        print(f"{kind}: computed in {result['seconds']:.0f} s (cached for the next run)")
    return result


def logits(zoo: Zoo, name: str, texts: Sequence[str]) -> np.ndarray:
    """Logits (n, classes) of model ``name`` on ``texts``, cached as JSON under (model key, texts)."""
    texts = data.check_texts(texts)
    out = _cached("logits", {"model": zoo.keys[name], "texts": models.texts_digest(texts), "n": len(texts)},
                  lambda: {"logits": np.asarray(zoo.models[name].predict_logits(texts), dtype=float).tolist()},
                  progress=False)
    return np.asarray(out["logits"], dtype=np.float64)


def probs(zoo: Zoo, name: str, texts: Sequence[str]) -> np.ndarray:
    """Softmax of :func:`logits` (n, classes)."""
    z = logits(zoo, name, texts)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# --------------------------------------------------------------------------- perturbation sweep and attack


def pick_examples(frame: pd.DataFrame, n: int = 3) -> list[int]:
    """Positions of ``n`` spam messages of ``frame`` to show perturbed: spread over the lengths of the
    spam between 40 and 160 characters (short enough to read), deterministic."""
    spam = frame.reset_index(drop=True)
    lengths = spam["text"].str.len()
    ok = spam.index[(spam["label"] == 1) & lengths.between(40, 160)].to_numpy()
    ok = ok[np.argsort(lengths[ok].to_numpy(), kind="stable")]
    if len(ok) < n:
        raise ValueError(f"only {len(ok)} spam messages of 40-160 characters; need {n}.")
    return [int(ok[i]) for i in np.linspace(0, len(ok) - 1, n).round().astype(int)]


def perturbation_sweep(zoo: Zoo, kinds: Sequence[str] = tuple(stress.PERTURBATIONS),
                       strengths: Sequence[float] | None = None, seed: int = 0, progress: bool = True) -> dict:
    """F1, precision and recall of every model on the SMS test split with its spam perturbed by each kind
    at each strength (ham is left as it is: its senders do not obfuscate), plus three example spam
    messages as they are perturbed, with each model's P(spam). Cached.

    Returns ``{"table": DataFrame (model, kind, strength, f1, precision, recall), "examples": DataFrame
    (kind, strength, example, text, P(spam) <model>...), "seconds"}``. Strengths default to
    0, 0.25, 0.5, 1 (0, 0.5, 1 in fast mode). Each model's outputs on each perturbed set are kept in the
    logits cache (:func:`logits`), so the report card at strength 0.5 reads them instead of predicting again."""
    strengths = [float(s) for s in (strengths or config.pick((0, 0.25, 0.5, 1.0), (0, 0.5, 1.0)))]
    test = eval_sets()["sms"].reset_index(drop=True)
    texts, y = test["text"].tolist(), test["label"].to_numpy()
    spam = np.flatnonzero(y == 1)
    examples = pick_examples(test)

    def compute():
        jobs = [(k, s) for k in kinds for s in strengths if s > 0]
        perturbed = {(k, s): stress.perturb([texts[i] for i in spam], k, s, seed) for k, s in jobs}
        ex_text = {(k, s): stress.perturb([texts[i] for i in examples], k, s, seed) for k, s in jobs}
        rows, ex_rows = [], []
        for name in zoo.models:
            start = time.perf_counter()
            base = probs(zoo, name, texts)
            shown = [t for k, s in jobs for t in ex_text[(k, s)]]
            p_shown = probs(zoo, name, shown)[:, 1] if shown else np.zeros(0)
            offset = 0
            for kind in kinds:
                for s in strengths:
                    pred = base.argmax(axis=1)
                    p_ex = base[examples, 1]
                    if s > 0:
                        pred = pred.copy()
                        pred[spam] = probs(zoo, name, perturbed[(kind, s)]).argmax(axis=1)
                        p_ex = p_shown[offset:offset + len(examples)]
                        offset += len(examples)
                    rows.append({"model": name, "kind": kind, "strength": s,
                                 **{m_: stats.score(y, pred, m_) for m_ in ("f1", "precision", "recall")}})
                    for j, i in enumerate(examples):
                        ex_rows.append({"model": name, "kind": kind, "strength": s, "example": j,
                                        "text": texts[i] if s == 0 else ex_text[(kind, s)][j], "p_spam": float(p_ex[j])})
            if progress:
                print(f"  sweep {name}: {time.perf_counter() - start:.0f} s for "
                      f"{len(jobs) * len(spam) + len(shown)} perturbed messages")
        return {"table": rows, "examples": ex_rows}

    settings = {"models": zoo.keys, "kinds": list(kinds), "strengths": strengths, "seed": seed,
                "texts": models.texts_digest(texts), "examples": examples}
    out = _cached("sweep", settings, compute, progress)
    ex = pd.DataFrame(out["examples"])
    wide = ex.pivot_table(index=["kind", "strength", "example"], columns="model", values="p_spam", sort=False)
    wide.columns = [f"P(spam) {c}" for c in wide.columns]
    text = ex.drop_duplicates(["kind", "strength", "example"]).set_index(["kind", "strength", "example"])["text"]
    return {"table": pd.DataFrame(out["table"]), "examples": wide.join(text).reset_index(), "seconds": out["seconds"]}


def attack_n() -> int:
    """Spam messages attacked per model, by :func:`attack_study` and by the report card: 20 (6 in fast mode)."""
    return config.pick(20, 6)


def attack_study(zoo: Zoo, n: int | None = None, budget: int = 3, seed: int = 0,
                 names: Sequence[str] | None = None, progress: bool = True) -> dict:
    """:func:`course_lib.stress.attack` on ``n`` spam messages of the SMS test split (default
    :func:`attack_n`) for each model in ``names`` (default all): per model ``attacked`` (spam it caught),
    ``success_rate``, ``mean_edits`` (words changed, successful attacks), and one successful attack
    (``before`` / ``after``). Cached; the model's outputs on the rewrites go to the logits cache, and the
    messages are those the report card attacks (the same seeded pick), so the card reads them."""
    n = n or attack_n()
    names = list(names or zoo.models)
    test = eval_sets()["sms"].reset_index(drop=True)
    spam_at = np.flatnonzero(test["label"].to_numpy() == 1)
    picked = test["text"].iloc[stress.attack_pick(spam_at, n, seed)].tolist()

    def compute():
        rows = []
        for name in names:
            start = time.perf_counter()
            result = stress.attack(zoo.models[name], picked, budget=budget, seed=seed,
                                   scorer=lambda batch, name=name: probs(zoo, name, batch))
            won = np.flatnonzero(result.success)
            rows.append({"model": name, "attacked": int(result.attacked.sum()), "success_rate": result.success_rate,
                         "mean_edits": float(result.edits[won].mean()) if len(won) else float("nan"),
                         "before": picked[won[0]] if len(won) else "", "after": result.texts[won[0]] if len(won) else "",
                         "seconds": time.perf_counter() - start})
            if progress:
                print(f"  attack {name}: {rows[-1]['seconds']:.0f} s")
        return {"table": rows}

    settings = {"models": {k: zoo.keys[k] for k in names}, "n": n, "budget": budget, "seed": seed,
                "texts": models.texts_digest(picked)}
    out = _cached("attack", settings, compute, progress)
    return {"table": pd.DataFrame(out["table"]).set_index("model"), "seconds": out["seconds"]}


def tokenization_table(zoo: Zoo, kinds: Sequence[str] = tuple(stress.PERTURBATIONS), strength: float = 0.5,
                       tokenizers: Sequence[str] = ("teacher", "student (KD), trimmed vocab")) -> pd.DataFrame:
    """:func:`course_lib.stress.tokenization_change` of each kind at ``strength`` on the SMS test spam,
    for the tokenizers of the models ``tokenizers`` (the full vocabulary and the trimmed one)."""
    test = eval_sets()["sms"]
    spam = test[test["label"] == 1]["text"].tolist()
    rows = []
    for name in tokenizers:
        for kind in kinds:
            change = stress.tokenization_change(zoo.models[name].tokenizer, spam, kind, strength)
            rows.append({"tokenizer": name, **change})
    return pd.DataFrame(rows).set_index(["tokenizer", "kind"])


# --------------------------------------------------------------------------- k-fold and the three variances


def kfold_plan() -> dict:
    """k folds over chapter 02's training split, epochs per tiny student: 3 folds and 2 epochs in full
    mode (short: k-fold multiplies the training), 2 folds and 1 epoch in fast mode."""
    return {"k": config.pick(3, 2), "epochs": config.pick(2, 1), "lr": 1e-3, "batch_size": 32, "seed": 0}


def kfold_study(plan: dict | None = None, progress: bool = True) -> dict:
    """Stratified k-fold cross-validation of three recipes on chapter 02's training split: TF-IDF, the tiny
    student without KD and with KD (T=4, α=0.5; the teacher's logits on the split). Each fold trains on
    the other k−1 folds and scores F1 on its own. Cached (trained models are not kept, only scores).

    Returns ``{"folds": DataFrame (fold, model, f1, n_test), "summary": DataFrame (mean, std per model
    and for the KD − no-KD difference), "seconds"}``."""
    plan = {**kfold_plan(), **(plan or {})}
    train_df = ch02.training_split()
    texts, y = train_df["text"].tolist(), train_df["label"].to_numpy()

    def compute():
        teacher = train.finetuned_teacher(progress=progress)
        split_logits = models.cached_logits(teacher, texts)
        rows = []
        for fold, (tr, te) in enumerate(stats.kfold_indices(y, plan["k"], plan["seed"])):
            start = time.perf_counter()
            part, held = train_df.iloc[tr][["text", "label"]], [texts[i] for i in te]
            tfidf = baselines.tfidf_logreg(part, seed=plan["seed"])
            rows.append({"fold": fold, "model": "TF-IDF", "f1": stats.score(y[te], np.argmax(tfidf.predict_logits(held), 1)), "n_test": len(te)})
            common = dict(epochs=plan["epochs"], lr=plan["lr"], batch_size=plan["batch_size"], seed=plan["seed"], progress=False)
            for name, method in [("student (no KD)", "ce"), ("student (KD)", "kd")]:
                student = students.small_bert(**students.TINY, seed=plan["seed"])
                if method == "ce":
                    train.fine_tune(student, part, **common)
                else:
                    distill.distill(student, None, part, teacher_logits=split_logits[tr], loss="kl", **KD, **common)
                rows.append({"fold": fold, "model": name, "f1": stats.score(y[te], student.logits(held).argmax(1)), "n_test": len(te)})
            if progress:
                print(f"  fold {fold + 1}/{plan['k']}: {time.perf_counter() - start:.0f} s")
        return {"folds": rows}

    settings = {**plan, "teacher": teacher_key(), "data": models.texts_digest(texts), "tiny": students.TINY, "kd": KD}
    out = _cached("kfold", settings, compute, progress)
    folds = pd.DataFrame(out["folds"])
    wide = folds.pivot(index="fold", columns="model", values="f1")
    wide["KD − no KD"] = wide["student (KD)"] - wide["student (no KD)"]
    summary = pd.DataFrame({"mean": wide.mean(), "std": wide.std(ddof=1), "folds": len(wide)})
    return {"folds": folds, "summary": summary, "seconds": out["seconds"]}


def three_variances(zoo: Zoo, kfold: dict, seeds: Sequence[int] | None = None, n_boot: int | None = None,
                    progress: bool = True) -> pd.DataFrame:
    """The spread of F1 of the tiny students without and with KD, and of their difference, from three sources
    (standard deviations, F1 in [0, 1]):

    - **split** (which messages train and which test): across the k folds of :func:`kfold_study`;
    - **training** (initialisation and batch order): across chapter 02's seeds, on the SMS test split;
    - **sampling** (which test messages we happened to get): bootstrap of the SMS test split, seed 0
      models; the difference by the paired bootstrap.
    """
    seeds = tuple(seeds or ch02.chapter_plan()["seeds"])
    recipes = [ch02.Recipe("tiny", "ce"), ch02.Recipe("tiny", "kd", **KD)]
    study = ch02.seed_study(recipes, seeds, progress=progress, include_teacher=False)
    by_seed = study.pivot(index="seed", columns="model", values="sms_f1")
    no_kd, kd = recipes[0].label(), recipes[1].label()
    test = eval_sets()["sms"]
    y = test["label"].to_numpy()
    pa = probs(zoo, "student (no KD)", test["text"].tolist()).argmax(1)
    pb = probs(zoo, "student (KD)", test["text"].tolist()).argmax(1)
    ba, bb = stats.bootstrap_ci(y, pa, n_boot=n_boot), stats.bootstrap_ci(y, pb, n_boot=n_boot)
    diff = stats.paired_bootstrap_diff(y, pa, pb, n_boot=n_boot)
    s = kfold["summary"]["std"]
    rows = {
        f"split ({int(kfold['summary']['folds'].iloc[0])} folds)": [s["student (no KD)"], s["student (KD)"], s["KD − no KD"]],
        f"training ({len(seeds)} seeds)": [by_seed[no_kd].std(ddof=1), by_seed[kd].std(ddof=1), (by_seed[kd] - by_seed[no_kd]).std(ddof=1)],
        f"sampling (bootstrap of {len(y)} test messages)": [ba["std"], bb["std"], diff["std"]],
    }
    return pd.DataFrame(rows, index=["std F1 no KD", "std F1 KD", "std of KD − no KD"]).T


# --------------------------------------------------------------------------- calibration and the report card


def calibration_table(zoo: Zoo, n_bins: int = 10) -> pd.DataFrame:
    """Per model: ECE on the SMS test split before and after temperature scaling fitted on the validation
    split (:func:`course_lib.stats.fit_temperature`), the temperature T, and the test NLL before/after."""
    sets = eval_sets()
    rows = []
    for name in zoo.models:
        z_val, z_test = logits(zoo, name, sets["val"]["text"].tolist()), logits(zoo, name, sets["sms"]["text"].tolist())
        y_val, y_test = sets["val"]["label"].to_numpy(), sets["sms"]["label"].to_numpy()
        t = stats.fit_temperature(z_val, y_val)
        scaled = np.exp(z_test / t - (z_test / t).max(1, keepdims=True))
        scaled /= scaled.sum(1, keepdims=True)
        rows.append({"model": name, "ece": stats.expected_calibration_error(y_test, probs(zoo, name, sets["sms"]["text"].tolist()), n_bins),
                     "temperature": t, "ece_scaled": stats.expected_calibration_error(y_test, scaled, n_bins),
                     "nll": stats.nll(z_test, y_test), "nll_scaled": stats.nll(z_test, y_test, t)})
    return pd.DataFrame(rows).set_index("model")


def report_card_study(zoo: Zoo, names: Sequence[str] | None = None, loaders: dict | None = None,
                      progress: bool = True, **kwargs) -> pd.DataFrame:
    """:func:`course_lib.stress.report_card` of the models ``names`` (default all) on the SMS test split,
    YouTube comments as the shift, cached as JSON (speed and memory columns are those measured when it
    was computed). ``kwargs`` go to ``report_card`` (attack_n defaults to :func:`attack_n`). The models'
    outputs come through the logits cache (:func:`logits`): what the sections before computed (SMS test,
    YouTube, the sweep at 0.5, the attack) is read, not predicted again; latency is measured."""
    names = list(names or zoo.models)
    sets = eval_sets()
    kwargs = {"attack_n": attack_n(), "n_boot": config.pick(1000, 200), "latency_runs": config.pick(50, 5), **kwargs}

    def compute():
        card = stress.report_card({n: zoo.models[n] for n in names}, sets["sms"]["text"].tolist(),
                                  sets["sms"]["label"].tolist(), shift=sets["youtube"], loaders=loaders,
                                  probs=lambda name, texts: probs(zoo, name, texts), progress=progress, **kwargs)
        return {"card": card.reset_index().to_dict(orient="records"), "attrs": card.attrs}

    settings = {"models": {n: zoo.keys[n] for n in names}, "loaders": sorted(loaders or {}), **kwargs,
                "texts": models.texts_digest(sets["sms"]["text"].tolist() + sets["youtube"]["text"].tolist())}
    out = _cached("report_card", settings, compute, progress)
    card = pd.DataFrame(out["card"]).set_index("name")
    card.attrs.update(out["attrs"], seconds=out["seconds"])
    return card


def threshold_transfer(zoo: Zoo, threshold: float | None = None, reference: str = "teacher") -> pd.DataFrame:
    """What a threshold chosen for one model does to the others (chapter 01's decision "spam if
    P(spam) ≥ t"). ``threshold``: default the one with the best F1 of ``reference`` on the validation
    split. Per model on the SMS test split: precision, recall and false alarms at that threshold, and at
    the model's own best validation threshold."""
    from ..evaluate import threshold_table

    sets = eval_sets()
    grid = np.round(np.linspace(0.05, 0.95, 19), 2)

    def best(name):
        table = threshold_table(sets["val"]["label"], probs(zoo, name, sets["val"]["text"].tolist())[:, 1], grid)
        return float(table.loc[table["f1"].idxmax(), "threshold"])

    threshold = float(threshold if threshold is not None else best(reference))
    rows = []
    y = sets["sms"]["label"].to_numpy()
    for name in zoo.models:
        p = probs(zoo, name, sets["sms"]["text"].tolist())[:, 1]
        own = best(name)
        for label, t in [("shared", threshold), ("own", own)]:
            r = threshold_table(y, p, [t]).iloc[0]
            rows.append({"model": name, "threshold": label, "t": t, "precision": r["precision"], "recall": r["recall"],
                         "f1": r["f1"], "false_alarms": int(r["false_alarms"]), "missed_spam": int(r["missed_spam"])})
    out = pd.DataFrame(rows).set_index(["model", "threshold"])
    out.attrs["threshold"] = threshold
    return out


def plot_reliability(zoo: Zoo, names: Sequence[str], n_bins: int = 10):
    """Reliability diagrams (accuracy vs confidence per bin, SMS test split) of the models ``names``."""
    import matplotlib.pyplot as plt

    test = eval_sets()["sms"]
    fig, axes = plt.subplots(1, len(names), figsize=(3.3 * len(names), 3.2), squeeze=False)
    for ax, name in zip(axes[0], names):
        table = stats.reliability_table(test["label"], probs(zoo, name, test["text"].tolist()), n_bins)
        ax.bar(table["confidence"], table["accuracy"], width=0.9 / n_bins, alpha=0.7, label="accuracy")
        ax.plot([0.5, 1], [0.5, 1], color="black", ls=":", lw=1, label="calibrated")
        for _, r in table.iterrows():
            ax.annotate(str(int(r["count"])), (r["confidence"], r["accuracy"]), fontsize=6, ha="center", va="bottom")
        ax.set_xlim(0.45, 1.02)
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("confidence (top probability)")
        ax.set_title(f"{name}\nECE {stats.expected_calibration_error(test['label'], probs(zoo, name, test['text'].tolist()), n_bins):.3f}", fontsize=8)
    axes[0][0].set_ylabel("accuracy in the bin")
    axes[0][0].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- serving (fresh processes)


def load_teacher_for_serving():
    """The fine-tuned teacher, loaded from the cache (a module-level loader for :func:`course_lib.evaluate.serving_footprint`)."""
    return train.finetuned_teacher(progress=False)


def load_teacher_int8_for_serving():
    """The teacher in PyTorch dynamic int8, built at load time as a server would."""
    return quantize.pytorch_dynamic_int8(train.finetuned_teacher(progress=False))


def load_kd_student_for_serving():
    """Chapter 02's KD student (seed 0), loaded from the cache."""
    return ch02.train_student(ch02.Recipe("tiny", "kd", **KD), progress=False)


SERVING_LOADERS = {"teacher": load_teacher_for_serving, "teacher int8": load_teacher_int8_for_serving,
                   "student (KD)": load_kd_student_for_serving}
