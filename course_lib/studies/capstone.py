"""Chapter 07's cached experiments: the chain distil -> prune -> trim the vocabulary -> quantize -> ship,
each step a row of one :class:`~course_lib.evaluate.Benchmark`; the order question (distil then quantize
or quantize the teacher then distil; prune after or before distilling); the Pareto frontier of every
model the workbook has cached; the report card of the shipped file. The technique (one file that ships)
is in :mod:`course_lib.ship`, its torch-free loader in :mod:`course_lib.shipped`.

Everything trained here is a small tiny-student training, cached with
:func:`course_lib.models.save_classifier` under a key of everything that produced it; measured qualities
of models that are rebuilt at load time (int8 copies) are cached as JSON. Timings are measured in the run.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import time
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from .. import config, data, distill, evaluate, models, onnx_runtime, prune, quantize, ship, shipped, stats, students, train
from . import distillation as ch02

VERSION = 1
KD = dict(temperature=4.0, alpha=0.5)  # chapter 02's distillation settings
STUDENTS_MODULE = "course_lib.studies.capstone_students"  # the distillation that pays (built in parallel)


def chapter_plan() -> dict:
    """The settings of chapter 07 (the notebook and ``benchmarks/capstone.py`` share them)."""
    return {
        "prune_ratio": 0.5,                   # share of FFN neurons removed in every layer
        "calibration": config.pick(256, 32),  # training messages that rank the neurons
        "ft_passes": 1, "ft_lr": 5e-4,        # the short distillation after pruning (passes over the split)
        "order_seeds": (0,),
        "latency_runs": config.pick(100, 15),
        "latency_runs_2t": config.pick(30, 5),  # 2 threads: a shared 2-core machine makes these slow to take
        "pareto_runs": config.pick(40, 5),
        "threads": (1, 2),
        "targets": {"size_ratio": 50.0, "speedup": 10.0, "f1_loss_points": 1.0},
        "kd": dict(KD),
    }


# --------------------------------------------------------------------------- the student and the cache


def has_capstone_students() -> bool:
    return importlib.util.find_spec(STUDENTS_MODULE) is not None


def student(progress: bool = True) -> models.TextClassifier:
    """The tiny student the chain starts from: the capstone's best tiny student (the recipe with the highest
    mean SMS F1 of its ablation, which need not be a distilled one) where ``studies.capstone_students``
    exists, else chapter 02's tiny KD student (both cached)."""
    if has_capstone_students():
        clf = importlib.import_module(STUDENTS_MODULE).best_student(progress=progress)
    else:
        clf = ch02.train_student(ch02.Recipe("tiny", "kd", **KD), progress=progress)
    clf.name = "tiny student"
    return clf


def student_source() -> str:
    if has_capstone_students():
        module = importlib.import_module(STUDENTS_MODULE)
        recipe = module.best_recipe()
        return (f"the capstone's best tiny student ({recipe}, seed {module.best_seed(recipe)}, both chosen on the "
                "validation split; studies.capstone_students.best_student)")
    return "chapter 02's tiny KD student (T = 4, α = 0.5, seed 0)"


def _json_path(kind: str, key: str):
    folder = config.cache_dir() / "capstone"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{kind}_{key}.json"


def _cached_json(kind: str, settings: dict, compute):
    path = _json_path(kind, models.cache_key(kind=kind, version=VERSION, fast=config.fast_mode(), **settings))
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    result = compute()
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result), encoding="utf-8")
    tmp.replace(path)
    return result


def _cached_model(settings: dict, build, name: str) -> models.TextClassifier:
    """The model of ``settings``: loaded from the cache, or ``build() -> (clf, history)`` once and saved."""
    key = models.cache_key(version=VERSION, fast=config.fast_mode(), **settings)
    if not models.is_cached(key):
        clf, history = build()
        with models._quiet_transformers():
            models.save_classifier(clf, key, {"settings": settings, "train_seconds": history["seconds"]})
    clf = models.load_classifier(key)
    clf.name = name
    return clf


def teacher_id() -> str:
    return models.cache_key(kind="teacher", **train.teacher_settings(0))


def _kd(clf, logits: np.ndarray, passes: int, lr: float, seed: int, progress: bool) -> dict:
    frame = ch02.training_split()[["text", "label"]]
    return distill.distill(clf, None, frame, teacher_logits=logits, epochs=passes, lr=lr, batch_size=32,
                           seed=seed, progress=progress, **KD)


def teacher_logits(progress: bool = True) -> np.ndarray:
    """The fine-tuned teacher's logits on the training split (n, 2), cached."""
    return models.cached_logits(train.finetuned_teacher(progress=progress), ch02.training_split()["text"].tolist())


def int8_teacher_logits(progress: bool = True) -> np.ndarray:
    """The teacher in PyTorch dynamic int8 (chapter 03): its logits on the training split, cached as .npy."""
    texts = ch02.training_split()["text"].tolist()
    key = models.cache_key(kind="capstone_int8_teacher_logits", teacher=teacher_id(), texts=models.texts_digest(texts),
                           torch=torch.__version__, engine=torch.backends.quantized.engine)
    path = config.cache_dir() / "capstone" / f"logits_{key}.npy"
    if path.is_file():
        return np.load(path, allow_pickle=False)
    logits = quantize.pytorch_dynamic_int8(train.finetuned_teacher(progress=progress)).logits(texts)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, logits, allow_pickle=False)
    return logits


# --------------------------------------------------------------------------- the steps of the chain


def calibration_texts(plan: dict | None = None) -> list[str]:
    plan = plan or chapter_plan()
    return data.sample(ch02.training_split(), plan["calibration"], seed=1)["text"].tolist()


def pruned(clf: models.TextClassifier, plan: dict | None = None, seed: int = 0,
           progress: bool = True) -> models.TextClassifier:
    """``clf`` with the share ``plan["prune_ratio"]`` of its FFN neurons removed in every layer
    (:func:`course_lib.prune.activation`, ranked on calibration messages), then distilled from the teacher
    for ``ft_passes`` passes over the training split to recover. Trained once, cached."""
    plan = plan or chapter_plan()
    settings = {"kind": "capstone_pruned", "of": models.model_fingerprint(clf), "teacher": teacher_id(),
                "ratio": plan["prune_ratio"], "calibration": plan["calibration"], "passes": plan["ft_passes"],
                "lr": plan["ft_lr"], "seed": seed, **KD}

    def build():
        cut = prune.activation(clf, calibration_texts(plan), plan["prune_ratio"])
        return cut, _kd(cut, teacher_logits(progress), plan["ft_passes"], plan["ft_lr"], seed, progress)

    return _cached_model(settings, build, f"{clf.name} + pruned FFN {plan['prune_ratio']:.0%}")


def trimmed(clf: models.TextClassifier) -> models.TextClassifier:
    """``clf`` with the vocabulary the training messages use (:func:`course_lib.students.trim_vocabulary`)."""
    out = students.trim_vocabulary(clf, ch02.training_split()["text"].tolist())
    out.name = f"{clf.name} + trimmed vocabulary"
    return out


def chain(progress: bool = True, plan: dict | None = None, start: models.TextClassifier | None = None) -> dict:
    """The chain's models in order: ``{"steps": {step name: model} (teacher first), "path": the shipped file}``.
    ``start``: the student to start from (default :func:`student`)."""
    plan = plan or chapter_plan()
    teacher = train.finetuned_teacher(progress=progress)
    s = start if start is not None else student(progress)
    p = pruned(s, plan, progress=progress)
    t = trimmed(p)
    path = ship.ship_cached(t)
    int8 = onnx_runtime.onnx_variants(t, threads=1)[1]
    return {"steps": {"teacher": teacher, "1 tiny student": s,
                      f"2 + pruned FFN {plan['prune_ratio']:.0%}": p, "3 + trimmed vocabulary": t,
                      "4 + int8 (ONNX Runtime)": int8, "5 shipped file": shipped.load(path, threads=1)},
            "path": path, "plan": plan}


def _tokenizer_mb(tokenizer) -> float:
    return len(ship.tokenizer_json(tokenizer).encode("utf-8")) / 1e6


def _with_threads(model, threads: int):
    """The same model for a timing at ``threads``: ONNX Runtime sessions fix their threads when created."""
    if isinstance(model, shipped.ShippedClassifier):
        return shipped.load(model.path, threads=threads)
    if isinstance(model, onnx_runtime.OnnxClassifier):
        return onnx_runtime.OnnxClassifier(model.path, model.tokenizer, model.max_length, model.name, threads, model.meta)
    return model


def chain_benchmark(steps: dict, progress: bool = True, plan: dict | None = None) -> tuple[evaluate.Benchmark, pd.DataFrame]:
    """Every step of the chain measured the same way: a :class:`~course_lib.evaluate.Benchmark` at 1 thread
    (SMS test split: quality, size, b1 latency, throughput) and the chapter's table, one row per step:
    ``ships_mb`` (what ships: model file plus tokenizer, MB), ``latency_1t_ms``/``latency_2t_ms`` (b1
    median at 1 and 2 threads), ``throughput_b32`` (messages/s, 1 thread), ``f1`` with ``f1_low``/``f1_high``
    (95 % bootstrap), ``youtube_f1``, ``size_x``/``speed_x`` (teacher ÷ step) and ``verdict`` vs the teacher
    (:meth:`Benchmark.compare` with the paired interval)."""
    plan = plan or chapter_plan()
    sets = ch02.eval_sets()
    bench = evaluate.Benchmark.from_frame(sets["sms"], threads=1, latency_runs=plan["latency_runs"])
    rows = []
    for name, model in steps.items():
        bench.run(name, model, progress=progress)
        r = bench.row(name)
        two = _with_threads(model, 2)
        lat2 = evaluate.latency_ms(two, bench.latency_texts, runs=plan["latency_runs_2t"], warmup=bench.warmup, threads=2)
        tok = 0.0 if isinstance(model, shipped.ShippedClassifier) else _tokenizer_mb(model.tokenizer)
        ci = stats.bootstrap_ci(bench.labels, bench.predictions[name].labels, "f1")
        y_yt = sets["youtube"]["label"].to_numpy()
        yt_texts = sets["youtube"]["text"].tolist()
        cached = isinstance(model, models.TextClassifier) and (model.meta or {}).get("key")
        yt_logits = models.cached_logits(model, yt_texts) if cached else model.predict_logits(yt_texts)
        yt = evaluate.quality(y_yt, yt_logits.argmax(axis=1))["f1"]
        rows.append({"step": name, "ships_mb": r["size_mb"] + tok, "latency_1t_ms": r["latency_ms"],
                     "latency_2t_ms": lat2["median_ms"], "throughput_b32": r["throughput_b32"], "f1": r["f1"],
                     "f1_low": ci["low"], "f1_high": ci["high"], "youtube_f1": yt})
    table = pd.DataFrame(rows).set_index("step")
    base = table.iloc[0]
    table["size_x"] = base["ships_mb"] / table["ships_mb"]
    table["speed_x"] = base["latency_1t_ms"] / table["latency_1t_ms"]
    first = table.index[0]
    table["verdict"] = ["baseline"] + [bench.compare(first, n, interval=True).attrs["verdict"] for n in table.index[1:]]
    return bench, table


def targets_met(table: pd.DataFrame, plan: dict | None = None) -> pd.DataFrame:
    """The issue's three targets for the last row (the shipped file) vs the first (the teacher)."""
    plan = plan or chapter_plan()
    t, last = plan["targets"], table.iloc[-1]
    loss = 100 * (table.iloc[0]["f1"] - last["f1"])
    rows = [("size on disk", f"≥ {t['size_ratio']:g}x smaller", last["size_x"], last["size_x"] >= t["size_ratio"]),
            ("b1 latency, 1 thread", f"≥ {t['speedup']:g}x faster", last["speed_x"], last["speed_x"] >= t["speedup"]),
            ("spam-F1 loss (points)", f"≤ {t['f1_loss_points']:g}", loss, loss <= t["f1_loss_points"])]
    return pd.DataFrame(rows, columns=["target", "wanted", "measured", "met"]).set_index("target")


# --------------------------------------------------------------------------- the order question


def kd_student(logits: np.ndarray, intermediate: int = students.TINY["intermediate"], seed: int = 0,
               source: str = "teacher", progress: bool = True) -> models.TextClassifier:
    """A tiny student (chapter 02's shape and schedule, FFN width ``intermediate``) distilled from
    ``logits`` (the training split's, from the teacher named by ``source``). Cached."""
    arch = {**students.TINY, "intermediate": int(intermediate)}
    passes, lr = ch02.default_schedule(ch02.Recipe("tiny", "kd"), len(ch02.training_split()))[0], 1e-3
    settings = {"kind": "capstone_student", "arch": arch, "source": source, "teacher": teacher_id(), "seed": seed,
                "passes": passes, "lr": lr, "logits": models.texts_digest([f"{v:.4f}" for v in np.ravel(logits)]), **KD}

    def build():
        clf = students.small_bert(**arch, seed=seed)
        return clf, _kd(clf, logits, passes, lr, seed, progress)

    return _cached_model(settings, build, f"tiny student (FFN {intermediate}) distilled from the {source}")


def order_models(plan: dict | None = None, seed: int = 0, progress: bool = True) -> dict:
    """The four orders, each ending as an int8 ONNX model with a trimmed vocabulary:
    ``{name: (the PyTorch model before int8, what it is)}``. All start from chapter 02's tiny KD recipe."""
    plan = plan or chapter_plan()
    base = ch02.train_student(ch02.Recipe("tiny", "kd", seed=seed, **KD), progress=progress)
    narrow = int(round(students.TINY["intermediate"] * (1 - plan["prune_ratio"])))
    return {
        "distil → int8": (base, "chapter 02's KD student, quantized after training"),
        "int8 teacher → distil → int8": (kd_student(int8_teacher_logits(progress), seed=seed, source="int8 teacher",
                                                   progress=progress),
                                        "the teacher quantized first; the student learns from its int8 logits"),
        "distil → prune → int8": (pruned(base, plan, seed=seed, progress=progress),
                                  f"KD student, {plan['prune_ratio']:.0%} of FFN neurons pruned, short KD to recover"),
        "prune → distil → int8": (kd_student(teacher_logits(progress), intermediate=narrow, seed=seed,
                                            progress=progress),
                                  f"the pruned shape (FFN {narrow}) distilled from the start"),
    }


def order_study(plan: dict | None = None, progress: bool = True) -> pd.DataFrame:
    """One row per (order, seed): ``f1_torch`` (before int8), ``f1`` (the shipped int8 file) with its 95 %
    interval, ``youtube_f1``, ``ships_mb``, ``params_m`` and ``train_seconds`` (what the trainings cost once)."""
    plan = plan or chapter_plan()
    sets = ch02.eval_sets()
    y = sets["sms"]["label"].to_numpy()
    rows = []
    for seed in plan["order_seeds"]:
        for name, (clf, what) in order_models(plan, seed, progress).items():
            small = trimmed(clf)
            path = ship.ship_cached(small)
            served = shipped.load(path, threads=1)
            pred = served.predict_logits(sets["sms"]["text"].tolist()).argmax(axis=1)
            ci = stats.bootstrap_ci(y, pred, "f1")
            yt = served.predict_logits(sets["youtube"]["text"].tolist()).argmax(axis=1)
            rows.append({"order": name, "seed": seed, "what": what,
                         "f1_torch": ch02.evaluate_model(clf, sets)["sms_f1"], "f1": ci["value"],
                         "f1_low": ci["low"], "f1_high": ci["high"],
                         "youtube_f1": evaluate.quality(sets["youtube"]["label"].to_numpy(), yt)["f1"],
                         "ships_mb": served.size_mb(), "params_m": clf.num_parameters() / 1e6,
                         "train_seconds": float((clf.meta or {}).get("train_seconds", np.nan))})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- the Pareto frontier


def pareto_front(frame: pd.DataFrame, minimize: Sequence[str] = ("size_mb", "latency_ms"),
                 maximize: Sequence[str] = ("f1",)) -> pd.Series:
    """True for every row no other row dominates: another row is at least as good on every column
    (``minimize``: lower is better, ``maximize``: higher) and strictly better on one."""
    cols = list(minimize) + list(maximize)
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise ValueError(f"pareto_front needs the columns {missing}; the frame has {list(frame.columns)}.")
    values = np.column_stack([frame[c].to_numpy(float) for c in minimize] + [-frame[c].to_numpy(float) for c in maximize])
    keep = np.ones(len(values), dtype=bool)
    for i, v in enumerate(values):
        better_or_equal = (values <= v).all(axis=1)
        strictly = (values < v).any(axis=1)
        keep[i] = not (better_or_equal & strictly).any()
    return pd.Series(keep, index=frame.index, name="on_front")


def meeting(frame: pd.DataFrame, f1_floor: float) -> dict:
    """The models with ``f1 >= f1_floor``: ``{"smallest": name or None, "fastest": name or None, "count": n}``."""
    ok = frame[frame["f1"] >= f1_floor]
    if ok.empty:
        return {"smallest": None, "fastest": None, "count": 0}
    return {"smallest": ok["size_mb"].idxmin(), "fastest": ok["latency_ms"].idxmin(), "count": len(ok)}


def workbook_models(notes: list | None = None, teacher=None):
    """Every model the earlier chapters have cached, loaded one at a time (never trained): yields
    ``(name, model, chapter, cache key)``, so a caller that drops each model keeps one in memory at a time.
    ``notes`` (a list) receives what was left out. The TF-IDF baseline is refitted (a second); int8 copies of
    the teacher are made at load. ``teacher``: the fine-tuned teacher if already loaded."""
    from .. import baselines
    from .stress import LATER_CHAPTERS

    notes = notes if notes is not None else []
    teacher = teacher or train.finetuned_teacher(progress=False)
    yield "teacher", teacher, "01", teacher_id()
    train_df = ch02.training_split()
    yield ("TF-IDF + LR", baselines.tfidf_logreg(train_df, seed=0), "01",
           models.cache_key(kind="tfidf", data=models.texts_digest(train_df["text"].tolist())))
    for name, recipe in [("tiny, no KD", ch02.Recipe("tiny", "ce")), ("tiny, KD", ch02.Recipe("tiny", "kd", **KD)),
                         ("half teacher, KD", ch02.Recipe("half", "kd", **KD))]:
        key = ch02.recipe_key(recipe)[0]
        if models.is_cached(key):
            yield name, ch02.train_student(recipe, progress=False), "02", key
        else:
            notes.append(f"chapter 02's {recipe.label()} is not cached: left out.")
    yield "teacher int8 (PyTorch)", quantize.pytorch_dynamic_int8(teacher), "03", f"int8:{teacher_id()}"
    if (onnx_runtime.onnx_dir(teacher) / "model.int8.onnx").is_file():
        yield "teacher int8 (ONNX Runtime)", onnx_runtime.onnx_variants(teacher, threads=1)[1], "03", f"onnx8:{teacher_id()}"
    else:
        notes.append("chapter 03's ONNX Runtime int8 teacher is not exported yet: left out.")
    for chapter, number in zip(LATER_CHAPTERS, ("04", "05")):
        offer = getattr(importlib.import_module(f"course_lib.studies.{chapter}"), "stress_models", None)
        found = offer(progress=False) if offer else {}
        if not found:
            notes.append(f"chapter {number} has cached no model for other chapters: left out.")
        while found:
            name, (model, key) = found.popitem()
            yield name, model, number, key
            del model


def pareto_table(chain_table: pd.DataFrame | None = None, progress: bool = True, plan: dict | None = None,
                 teacher=None) -> pd.DataFrame:
    """Size (MB), b1 latency (ms, 1 thread, measured now) and SMS F1 (cached per model) of every model of
    :func:`workbook_models`, plus the chain's rows (``chain_table`` of :func:`chain_benchmark`), with
    ``on_front`` (:func:`pareto_front`). ``attrs["notes"]``: what was left out."""
    from ..progress import progress_bar

    plan = plan or chapter_plan()
    test = ch02.eval_sets()["sms"]
    texts, y = test["text"].tolist(), test["label"].to_numpy()
    notes, rows = [], []
    for name, model, chapter, key in progress_bar(workbook_models(notes, teacher), desc="workbook models",
                                                  disable=not progress):
        def compute(model=model):
            return {"pred": model.predict_logits(texts).argmax(axis=1).tolist()}

        pred = np.asarray(_cached_json("pred", {"model": key, "texts": models.texts_digest(texts)}, compute)["pred"])
        ci = stats.bootstrap_ci(y, pred, "f1")
        with config.one_thread():
            lat = evaluate.latency_ms(_with_threads(model, 1), texts[:100], runs=plan["pareto_runs"], warmup=2, threads=1)
        rows.append({"model": name, "chapter": chapter, "size_mb": float(model.size_mb()), "latency_ms": lat["median_ms"],
                     "f1": ci["value"], "f1_low": ci["low"], "f1_high": ci["high"]})
        del model, compute
    config.release_memory()
    if chain_table is not None:
        for step, r in chain_table.iloc[1:].iterrows():
            rows.append({"model": f"chain {step}", "chapter": "07", "size_mb": r["ships_mb"],
                         "latency_ms": r["latency_1t_ms"], "f1": r["f1"], "f1_low": r["f1_low"], "f1_high": r["f1_high"]})
    table = pd.DataFrame(rows).set_index("model")
    table["on_front"] = pareto_front(table)
    table.attrs["notes"] = notes
    return table


# --------------------------------------------------------------------------- the shipped file in use


def report_card(steps: dict, path, progress: bool = True) -> pd.DataFrame:
    """Chapter 06's report card (:func:`course_lib.studies.stress.report_card_study`, cached) of the teacher
    and the shipped file."""
    from . import stress as ch06

    zoo = ch06.Zoo()
    zoo.add("teacher", steps["teacher"], teacher_id())
    zoo.add("shipped file", shipped.load(path, threads=config.num_threads()), f"shipped:{path.stem}")
    return ch06.report_card_study(zoo, progress=progress)


def serving(path, teacher_loader=None, threads: int = 1) -> pd.DataFrame:
    """Load time (ms) and peak memory (MB) of serving the shipped file (fresh process, no torch) and of the
    teacher (fresh process, :func:`course_lib.evaluate.serving_footprint`), one message at a time."""
    from .stress import load_teacher_for_serving

    texts = ch02.eval_sets()["sms"]["text"].tolist()[:config.pick(64, 16)]
    mine = ship.footprint(path, texts, threads=threads)
    theirs = evaluate.serving_footprint(teacher_loader or load_teacher_for_serving, texts, threads=threads)
    return pd.DataFrame([
        {"model": "shipped file (onnxruntime + tokenizers)", "load_ms": mine["load_ms"], "peak_mb": mine["peak_mb"],
         "serving_mb": mine["serving_mb"], "torch_imported": mine["torch_imported"]},
        {"model": "teacher (PyTorch + transformers)", "load_ms": 1000 * theirs["load_s"], "peak_mb": theirs["peak_mb"],
         "serving_mb": theirs["serving_mb"], "torch_imported": True},
    ]).set_index("model")


def timed(fn, *args, **kwargs):
    """``(result, seconds)`` of ``fn(*args, **kwargs)``: for the chapter's "this took" lines."""
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start
