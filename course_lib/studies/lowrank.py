"""Chapter 05's cached experiments: low-rank factorization of the teacher, measured.

- :func:`rank_sweep`: spam-F1 on the validation split against the rank, per layer group (FFN, attention,
  all), plain SVD vs whitened, one-shot; then a fine-tune (one epoch) of a few factorized models (cached as
  safetensors) and their F1 after it. Parameter counts, kept energy, weight and output errors per row.
- :func:`largest_cut`: per method, the largest cut of the encoder's Linear parameters whose F1 stays within
  ``max_drop`` points of the teacher after fine-tuning.
- :func:`spectra`, :func:`cost_table`, :func:`matmul_timing`: the chapter's small measurements (spectra of
  teacher matrices vs a truly low-rank one, parameters/FLOPs of one matmul vs two thin ones, their time).

Results are JSON in ``cache_dir()/studies/lowrank/``, keyed by everything that produced them: the teacher's
weights, the evaluation and calibration texts, the plan and :data:`STUDY_VERSION`. Fine-tuned models go to
the model cache (:func:`course_lib.models.save_classifier`). Fast mode (``COURSE_FAST=1``) shrinks the plan.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from .. import config, data, lowrank, models, train
from ..evaluate import quality

STUDY_VERSION = 2
"""Part of every key of this study (sweep and fine-tuned models): bump it when what they hold changes."""
SWEEP_VERSION = 2
"""Part of the sweep's key only: bump it when the sweep's rows change but the fine-tuned models do not
(2: a rank at which some chosen layer would not shrink is not measured, e.g. rank 192 wherever the
384×384 attention matrices are chosen: their break-even rank)."""


def plan() -> dict:
    """The chapter's settings in the current mode (full or fast)."""
    return {
        "groups": config.pick(("ffn", "attention", "all"), ("ffn", "all")),
        "methods": lowrank.METHODS,
        "ranks": config.pick((32, 64, 128, 192), (16, 64, 128)),
        "val_n": config.pick(300, 100),           # validation messages, stratified (None: the whole split)
        "calibration_n": config.pick(256, 64),   # training messages whose inputs whiten the layers
        # one epoch on the whole training split (train_n None; a subset in fast mode). Measured in full mode
        # (SMS test split, all layers at rank 128, whitened): F1 0.960 one-shot, 0.952 after an epoch on 1,000
        # messages, 0.980 (the teacher's) after an epoch on the whole split (about 80 s on 2 quiet cores)
        # the embeddings are not factorized, so they stay frozen (measured, whitened r128: 54 s instead of 69 s;
        # test F1 0.973 vs 0.980, validation 0.973 vs 0.954: within the splits' noise of a few spam messages)
        "finetune": {"group": "all", "ranks": config.pick((128,), (64, 128)), "train_n": config.pick(None, 64),
                     "epochs": 1, "lr": config.pick(1e-4, 5e-5), "batch_size": config.pick(32, 16), "seed": 0,
                     "freeze_embeddings": True,
                     # micro-batches of at most 1,024 padded tokens (train.fine_tune; the library's default is
                     # 2,048): same update rule, half the activations held at once. Measured (rank 128, one epoch,
                     # MALLOC_MMAP_THRESHOLD_ as binder/start sets it): peak +689 MB instead of +861 MB, 87.3 s
                     # instead of 84.9 s; the chapter's peak was 1.65-2.06 GB with 2,048 (Binder allows 2 GB)
                     "max_tokens": 1024},
        "max_drop": 1.0,                         # F1 points: "within 1 point of the teacher"
    }


def _fingerprint(clf) -> str:
    """A short hash of a model's weights (the teacher's part of every key)."""
    h = hashlib.sha256()
    for name, t in clf.model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().contiguous().cpu().view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


def _texts_key(texts: Sequence[str], labels: Sequence[int] | None = None) -> str:
    h = hashlib.sha256()
    for i, t in enumerate(texts):
        h.update(t.encode("utf-8") + b"\x00" + (str(int(labels[i])).encode() if labels is not None else b"") + b"\x01")
    return h.hexdigest()[:16]


def study_path(key: str) -> Path:
    folder = config.cache_dir() / "studies" / "lowrank"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{key}.json"


def default_data(settings: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(validation frame, training frame) of the SMS split in the current mode."""
    splits = data.sms_splits()
    val = splits.val if settings["val_n"] is None else data.sample(splits.val, settings["val_n"])
    return val.reset_index(drop=True), splits.train.reset_index(drop=True)


def encoder_linear_params(clf) -> int:
    """Parameters (weights + biases) of every factorizable Linear of the encoder (Q, K, V, O, FFN in/out)."""
    return sum(lowrank.count_parameters(clf.model.get_submodule(n)) for n in lowrank.select_layers(clf, "all"))


def _row(teacher, clf, val, base: dict, linear_before: int, prepared: dict | None = None) -> dict:
    """Quality on ``val`` and what the factorization kept, for one factorized classifier."""
    rec = clf.meta["lowrank"]
    per = rec["per_layer"]
    removed = sum(v["params_before"] - v["params_after"] for v in per.values())
    werr = []
    for name, v in per.items():
        original = teacher.model.get_submodule(name)
        new = clf.model.get_submodule(name)
        if isinstance(new, torch.nn.Sequential):
            werr.append(lowrank.weight_error(original, new) / float(torch.linalg.matrix_norm(original.weight.detach().double())))
    q = quality(val["label"].to_numpy(), train.predict(clf, val["text"].tolist()).labels)
    return {"f1": q["f1"], "accuracy": q["accuracy"], "f1_drop": 100 * (base["f1"] - q["f1"]),
            "params_m": clf.num_parameters() / 1e6, "linear_params_m": (linear_before - removed) / 1e6,
            "param_cut": removed / linear_before, "size_mb": clf.size_mb(),
            "energy_kept": float(np.mean([v["energy_kept"] for v in per.values()])),
            "weight_error": float(np.mean(werr)) if werr else 0.0,
            "output_error": float(np.mean([v["output_error"] for v in per.values() if "output_error" in v]))
            if any("output_error" in v for v in per.values()) else float("nan")}


def finetune_key(teacher_key: str, calib_key: str, method: str, rank: int, settings: dict) -> str:
    ft = settings["finetune"]
    return models.cache_key(kind="lowrank_finetuned", teacher=teacher_key, calibration=calib_key,
                            calibration_n=settings["calibration_n"], method=method, group=ft["group"], rank=rank,
                            finetune=ft, fast=config.fast_mode(), version=STUDY_VERSION)


def finetuned(teacher, method: str, rank: int, settings: dict | None = None, train_df: pd.DataFrame | None = None,
              progress: bool = True, factorized=None):
    """The teacher factorized (``settings["finetune"]["group"]`` layers at ``rank``) and fine-tuned (one epoch on
    ``train_n`` training messages, None: all of them; the embeddings frozen if ``freeze_embeddings``):
    loaded from the model cache, or made once and saved (safetensors). ``meta["finetune_seconds"]`` is the
    training time it cost when it was made. ``factorized``: the factorized model, if the caller already made it
    (from the same calibration messages), so it can free its decomposition (hundreds of MB) before training."""
    settings = settings or plan()
    ft = settings["finetune"]
    if train_df is None:
        train_df = default_data(settings)[1]
    calib = data.sample(train_df, settings["calibration_n"], seed=1)["text"].tolist()
    key = finetune_key(_fingerprint(teacher), _texts_key(calib), method, rank, settings)
    if models.is_cached(key):
        return models.load_classifier(key)
    clf = factorized
    if clf is None:
        clf = lowrank.factorize_model(teacher, rank=rank, layers=ft["group"], method=method, texts=calib)
    if ft.get("freeze_embeddings", False):
        train.freeze_lower(clf, 0, embeddings=True)  # clf is a new model (factorized from the teacher)
    subset = train_df if ft["train_n"] is None else data.sample(train_df, ft["train_n"], seed=ft["seed"])
    history = train.fine_tune(clf, subset, epochs=ft["epochs"], lr=ft["lr"], batch_size=ft["batch_size"],
                              seed=ft["seed"], progress=progress,
                              max_tokens=ft.get("max_tokens", train.MAX_TOKENS_PER_STEP))
    clf.name = f"teacher · low-rank {method} r{rank} + fine-tune"
    models.save_classifier(clf, key, {"finetune": ft, "finetune_seconds": history["seconds"],
                                      "finetune_steps": history["steps"]})
    return models.load_classifier(key)


def rank_sweep(teacher, settings: dict | None = None, val: pd.DataFrame | None = None,
               train_df: pd.DataFrame | None = None, use_cache: bool = True, progress: bool = True) -> pd.DataFrame:
    """F1 on validation messages of the teacher factorized at every (group, method, rank) of the plan, one-shot,
    then after fine-tuning (:func:`finetuned`) for ``plan["finetune"]["ranks"]`` (both methods). Cached as JSON.

    One row per setting: ``group, method, rank, finetuned, f1, accuracy, f1_drop`` (points below the teacher),
    ``params_m`` (whole model, M), ``linear_params_m`` / ``param_cut`` (encoder Linear layers: M left, share
    removed), ``size_mb``, ``energy_kept`` (mean share of squared singular values kept), ``weight_error``
    (mean ‖W − W₂W₁‖/‖W‖), ``output_error`` (mean relative output error on the calibration inputs), plus
    ``finetune_seconds`` for fine-tuned rows. ``attrs``: teacher_f1, val_n, val_spam, seconds, cached, path.
    """
    from ..progress import progress_bar

    settings = settings or plan()
    if val is None or train_df is None:
        default_val, default_train = default_data(settings)
        val = default_val if val is None else val
        train_df = default_train if train_df is None else train_df
    ft = settings["finetune"]
    calib = data.sample(train_df, settings["calibration_n"], seed=1)["text"].tolist()
    teacher_key = _fingerprint(teacher)
    key = models.cache_key(kind="lowrank_sweep", teacher=teacher_key, val=_texts_key(val["text"], val["label"]),
                           calibration=_texts_key(calib), train=_texts_key(train_df["text"], train_df["label"]),
                           settings=settings, fast=config.fast_mode(), version=STUDY_VERSION,
                           sweep_version=SWEEP_VERSION)
    path = study_path(key)
    if use_cache and path.is_file():
        stored = json.loads(path.read_text(encoding="utf-8"))
        frame = pd.DataFrame(stored["rows"])
        frame.attrs.update({**stored["info"], "cached": True, "path": str(path)})
        return frame

    start = time.perf_counter()
    config.set_threads()
    base = quality(val["label"].to_numpy(), train.predict(teacher, val["text"].tolist()).labels)
    linear_before = encoder_linear_params(teacher)
    rows = [{"group": "none", "method": "teacher", "rank": None, "finetuned": False, "f1": base["f1"],
             "accuracy": base["accuracy"], "f1_drop": 0.0, "params_m": teacher.num_parameters() / 1e6,
             "linear_params_m": linear_before / 1e6, "param_cut": 0.0, "size_mb": teacher.size_mb(),
             "energy_kept": 1.0, "weight_error": 0.0, "output_error": 0.0}]
    groups = list(settings["groups"]) + ([ft["group"]] if ft["group"] not in settings["groups"] else [])
    combos = [(m, g, r) for m in settings["methods"] for g in groups for r in settings["ranks"]]
    bar = progress_bar(total=len(combos) + len(settings["methods"]) * len(ft["ranks"]), desc="rank sweep",
                       disable=not progress)
    # one calibration pass for both methods (input moments of every layer), then one SVD per layer and method
    moments = lowrank.input_moments(teacher, calib, lowrank.select_layers(teacher, "all"))
    ready = {}  # (method, rank) -> the factorized model to fine-tune, made while its decomposition exists
    for method in settings["methods"]:
        prepared = lowrank.decompose_model(teacher, "all", method, calib, moments=moments)
        for group in groups:
            shapes = [tuple(teacher.model.get_submodule(n).weight.shape) for n in lowrank.select_layers(teacher, group)]
            for r in settings["ranks"]:
                bar.set_postfix(method=method, group=group, rank=r)
                # every chosen layer must get smaller (at its break-even rank a pair is as large as the matrix,
                # and slower): otherwise the setting is not a compression and is not measured
                if any(lowrank.param_count(m, n, r) >= lowrank.param_count(m, n) for m, n in shapes):
                    bar.update(1)
                    continue
                clf = lowrank.factorize_model(teacher, rank=r, layers=group, method=method, prepared=prepared)
                rows.append({"group": group, "method": method, "rank": r, "finetuned": False,
                             **_row(teacher, clf, val, base, linear_before)})
                del clf
                bar.update(1)
        ready.update({(method, r): lowrank.factorize_model(teacher, rank=r, layers=ft["group"], method=method,
                                                           prepared=prepared)
                      for r in ft["ranks"]
                      if not models.is_cached(finetune_key(teacher_key, _texts_key(calib), method, r, settings))})
        del prepared
    # free the decompositions and moments (~0.4 GB of tensors per method in full mode) before training:
    # Binder allows ~2 GB
    del moments
    config.release_memory()
    for method in settings["methods"]:
        for r in ft["ranks"]:
            bar.set_postfix(method=method, finetune=r)
            clf = finetuned(teacher, method, r, settings, train_df, progress=False, factorized=ready.pop((method, r), None))
            rows.append({"group": ft["group"], "method": method, "rank": r, "finetuned": True,
                         **_row(teacher, clf, val, base, linear_before),
                         "finetune_seconds": float(clf.meta.get("finetune_seconds", float("nan")))})
            del clf
            bar.update(1)
    bar.close()
    config.release_memory()
    info = {"teacher_f1": base["f1"], "val_n": len(val), "val_spam": int(val["label"].sum()),
            "calibration_n": len(calib), "seconds": time.perf_counter() - start, "threads": config.num_threads(),
            "linear_params_m": linear_before / 1e6, "max_drop": settings["max_drop"], "finetune_group": ft["group"],
            "shapes": {g: [list(teacher.model.get_submodule(n).weight.shape) for n in lowrank.select_layers(teacher, g)]
                       for g in groups}}
    path.write_text(json.dumps({"rows": rows, "info": info, "settings": settings}, indent=1, default=float),
                    encoding="utf-8")
    frame = pd.DataFrame(rows)
    frame.attrs.update({**info, "cached": False, "path": str(path)})
    return frame


def largest_cut(sweep: pd.DataFrame, max_drop: float = 1.0, finetuned: bool = True) -> pd.DataFrame:
    """Per method: the row with the largest ``param_cut`` whose F1 is at most ``max_drop`` points below the
    teacher's (fine-tuned rows, or one-shot with ``finetuned=False``). A method with no such row gets a row of
    NaNs and ``found`` False (say so; do not pretend)."""
    out = []
    for method in [m for m in sweep["method"].unique() if m != "teacher"]:
        rows = sweep[(sweep["method"] == method) & (sweep["finetuned"] == finetuned)]
        if finetuned is False:
            rows = rows[rows["group"] == "all"] if (rows["group"] == "all").any() else rows
        ok = rows[rows["f1_drop"] <= max_drop + 1e-9]
        if ok.empty:
            out.append({"method": method, "found": False, **{c: np.nan for c in rows.columns if c != "method"},
                        "tried_ranks": sorted(rows["rank"].dropna().astype(int))})
            continue
        best = ok.sort_values(["param_cut", "f1"], ascending=False).iloc[0]
        out.append({"method": method, "found": True, **best.drop(labels=["method"]).to_dict(),
                    "tried_ranks": sorted(rows["rank"].dropna().astype(int))})
    return pd.DataFrame(out).set_index("method")


# --------------------------------------------------------------------------- small measurements


def spectra(teacher, layers: Sequence[int] | None = None, seed: int = 0) -> dict[str, np.ndarray]:
    """Singular values (descending) of teacher matrices (query, attention output, FFN in/out of the first and
    last layer) and of two random 384×1536-like references of the FFN's shape: a truly low-rank one (the
    product of two thin Gaussian matrices, rank 32) and a full-rank Gaussian one. name → σ (float64)."""
    names = lowrank.select_layers(teacher, "all")
    numbers = sorted({int(n.split(".layer.")[1].split(".")[0]) for n in names if ".layer." in n})
    layers = layers if layers is not None else (numbers[0], numbers[-1])
    out = {}
    for i in layers:
        for name, group in names.items():
            if f".layer.{i}." in name and group in ("query", "attn_out", "ffn_in", "ffn_out"):
                out[f"layer {i} {group}"] = lowrank.singular_values(teacher.model.get_submodule(name))
    ffn = next(teacher.model.get_submodule(n) for n, g in names.items() if g == "ffn_in")
    m, n = ffn.weight.shape
    g = torch.Generator().manual_seed(seed)
    thin = torch.randn(m, 32, generator=g, dtype=torch.float64) @ torch.randn(32, n, generator=g, dtype=torch.float64)
    out["random rank-32 product"] = lowrank.singular_values(thin)
    out["random Gaussian"] = lowrank.singular_values(torch.randn(m, n, generator=g, dtype=torch.float64))
    return out


def spectrum_table(curves: dict[str, np.ndarray], ranks: Sequence[int] = (32, 64, 128)) -> pd.DataFrame:
    """Per matrix: shape rank, share of squared singular values kept at each of ``ranks``, rank for 90 %."""
    rows = {}
    for name, s in curves.items():
        e = lowrank.energy_curve(s)
        rows[name] = {"full rank": len(s), **{f"energy kept at r={r}": float(e[r - 1]) for r in ranks if r <= len(s)},
                      "rank for 90 %": lowrank.rank_for_energy(s, 0.9), "σ1 / σ_last": float(s[0] / max(s[-1], 1e-300))}
    return pd.DataFrame(rows).T


def cost_table(m: int, n: int, ranks: Sequence[int], tokens: int = 1) -> pd.DataFrame:
    """Parameters and FLOPs of one m×n Linear (with bias) against its rank-r pairs, and the ratios."""
    rows = [{"layer": f"one {m}×{n}", "rank": None, "params": lowrank.param_count(m, n),
             "FLOPs": lowrank.flop_count(m, n, tokens=tokens)}]
    for r in ranks:
        rows.append({"layer": f"{n}→{r}→{m}", "rank": r, "params": lowrank.param_count(m, n, r),
                     "FLOPs": lowrank.flop_count(m, n, r, tokens=tokens)})
    table = pd.DataFrame(rows).set_index("layer")
    table["params ratio"] = table["params"] / table["params"].iloc[0]
    table["FLOPs ratio"] = table["FLOPs"] / table["FLOPs"].iloc[0]
    table.attrs["break_even"] = lowrank.break_even_rank(m, n)
    return table


@torch.inference_mode()
def matmul_timing(shapes: Sequence[tuple[int, int]], ranks: Sequence[int], tokens: int = 32, repeats: int | None = None,
                  seed: int = 0) -> pd.DataFrame:
    """Median time (µs) of one random Linear(n → m) against its rank-r pair, on (tokens, n) inputs, timed
    interleaved (layer, pair, layer, …) with the configured threads. Ranks above break-even are skipped."""
    repeats = repeats or config.pick(200, 30)
    config.set_threads()
    torch.manual_seed(seed)
    rows = []
    for m, n in shapes:
        layer = torch.nn.Linear(n, m)
        x = torch.randn(tokens, n)
        for r in ranks:
            if r > lowrank.break_even_rank(m, n):
                continue
            pair = lowrank.factorize_linear(layer, r)
            times = {"one": [], "pair": []}
            for _ in range(5):
                layer(x), pair(x)
            for _ in range(repeats):
                for name, f in (("one", layer), ("pair", pair)):
                    t0 = time.perf_counter()
                    f(x)
                    times[name].append((time.perf_counter() - t0) * 1e6)
            one, two = float(np.median(times["one"])), float(np.median(times["pair"]))
            rows.append({"shape": f"{m}×{n}", "rank": r, "FLOPs ratio": lowrank.flop_count(m, n, r) / lowrank.flop_count(m, n),
                         "one layer (µs)": one, "pair (µs)": two, "measured speed-up": one / two})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- the chapter's comparison


def chosen_models(teacher, sweep: pd.DataFrame, settings: dict | None = None) -> dict[str, dict]:
    """Per method: the fine-tuned model of the largest cut within ``max_drop`` points (``within`` True), or,
    when none stays within, the fine-tuned model with the smallest drop (``within`` False). Each value:
    ``{"clf", "rank", "within", "f1_drop", "param_cut"}`` (F1 drop on the validation messages, points)."""
    settings = settings or plan()
    out = {}
    best = largest_cut(sweep, settings["max_drop"], finetuned=True)
    for method in best.index:
        if bool(best.loc[method, "found"]):
            row, within = best.loc[method], True
        else:
            rows = sweep[(sweep["method"] == method) & sweep["finetuned"]]
            if rows.empty:
                continue
            row, within = rows.sort_values(["f1_drop", "param_cut"], ascending=[True, False]).iloc[0], False
        clf = finetuned(teacher, method, int(row["rank"]), settings, progress=False)
        out[method] = {"clf": clf, "rank": int(row["rank"]), "within": within, "f1_drop": float(row["f1_drop"]),
                       "param_cut": float(row["param_cut"])}
    return out


def cached_student():
    """Chapter 02's distilled student if it is in the cache (else None); never trains anything."""
    from .quantization import cached_student as find

    return find()


def int8_onnx(clf, threads: int | None = None):
    """ONNX Runtime int8 (dynamic, per channel) variant of ``clf`` (exported and quantized once, cached)."""
    from .. import onnx_runtime

    variant = onnx_runtime.onnx_variants(clf, threads=threads)[1]
    variant.name = f"{clf.name} · ONNX Runtime int8"
    return variant


def spectrum(model_or_clf, name: str) -> pd.DataFrame:
    """Spectrum of the layer called ``name`` (e.g. ``bert.encoder.layer.0.intermediate.dense``): one row per rank
    with σ and the share of squared singular values kept."""
    model = model_or_clf.model if isinstance(model_or_clf, models.TextClassifier) else model_or_clf
    try:
        layer = model.get_submodule(name)
    except AttributeError as exc:
        raise ValueError(f"{name!r} is not a layer of this model; see lowrank.select_layers(model) for names.") from exc
    s = lowrank.singular_values(layer)
    return pd.DataFrame({"rank": np.arange(1, len(s) + 1), "sigma": s, "energy": lowrank.energy_curve(s)})


def summary(clf: models.TextClassifier) -> pd.DataFrame:
    """One row per layer of what :func:`factorize_model` did (from ``clf.meta["lowrank"]``)."""
    record = (clf.meta or {}).get("lowrank")
    if record is None:
        raise ValueError(f"{clf.name} was not made by lowrank.factorize_model (no meta['lowrank']).")
    return pd.DataFrame.from_dict(record["per_layer"], orient="index").rename_axis("layer").reset_index()



def stress_models(progress: bool = True) -> dict:
    """Chapter 05's whitened, fine-tuned factorization at the largest fine-tuned rank if it is already in the
    cache, for chapter 06's stress tests: ``{name: (classifier, cache key)}``. Never trains."""
    settings = plan()
    teacher = train.finetuned_teacher(progress=progress)
    calib = data.sample(default_data(settings)[1], settings["calibration_n"], seed=1)["text"].tolist()
    rank = max(settings["finetune"]["ranks"])
    key = finetune_key(_fingerprint(teacher), _texts_key(calib), "whitened", rank, settings)
    if not models.is_cached(key):
        return {}
    return {f"low-rank (whitened, rank {rank})": (models.load_classifier(key), key)}
