"""Chapter 04's cached experiments: what pruning the fine-tuned teacher costs and gains, measured.

- :func:`sparsity_sweep`: validation spam-F1, parameters, real sizes (dense and sparse-stored) and b1
  latency vs sparsity for each method, one-shot and after a short fine-tune;
- :func:`sensitivity_scan`: F1 when only one group of Linear layers (a role in every layer, or one
  whole layer) is magnitude-pruned;
- :func:`recovered`: structured pruning (FFN neurons + heads) followed by a real recovery fine-tune (one
  epoch on the whole training split), the chapter's deliverable model;
- :func:`source_table`: the source's table (:func:`recovered` at several ratios) on the SMS test split,
  with the verdict;
- :func:`one_shot_vs_iterative`: the same final sparsity reached at once or in steps, same training;
- :func:`storage_mb` and :func:`masks_pitfall`: what a pruned model really weighs.

Every table is cached as JSON and every fine-tuned model as safetensors (``models.save_classifier``),
keyed by the teacher's key, the data, the settings (:func:`plan`) and :data:`VERSION`. The technique
is in :mod:`course_lib.prune`; "sparsity" here is always the share of the encoder's Linear weights that
are gone (zero or removed), measured on the model, never the share asked for.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from typing import Callable

import numpy as np
import pandas as pd
import torch
from torch.nn.utils import prune as torch_prune

from .. import config, data, evaluate, models, prune
from ..layers import ROLES, encoder_parameters, layers

VERSION = 1
METHODS = {"magnitude_layer": "magnitude, per layer", "magnitude_global": "magnitude, global",
           "activation": "activation (FFN neurons + heads)", "redundancy": "redundancy (merged FFN neurons)"}


def plan(**overrides) -> dict:
    """The chapter's settings in the current mode (fast mode: a few points on small subsets)."""
    settings = {
        "levels": config.pick([0.0, 0.3, 0.5, 0.7, 0.9, 0.95], [0.0, 0.5, 0.9]),
        # fine-tuned points: at 0.8 every method but redundancy collapsed to F1 0 after the short fine-tune
        # (measured), so 0.7, where one-shot magnitude pruning is damaged but not yet dead
        "tuned_levels": config.pick([0.5, 0.7], [0.5]),
        "calibration": config.pick(256, 32),
        "val_n": config.pick(300, 120),  # validation messages (a stratified sample) for the sweeps
        "scan_val_n": config.pick(200, 60),
        "scan_levels": config.pick([0.7, 0.9], [0.9]),  # roles at each; whole layers at the last one
        "scan_layers": config.pick(True, False),
        "ft_rows": config.pick(256, 48),
        "ft_epochs": 1, "ft_lr": 5e-5, "ft_batch": config.pick(32, 16),
        "ft_freeze_embeddings": True,  # as in the recovery: pruning never touches the embeddings (and less memory)
        # the deliverable (target_ratio) and where "almost as accurate" ends: the source's "~70 % smaller"
        "table_ratios": config.pick([0.4, 0.7], [0.5]),
        # the recovery fine-tune of the table's structured models: one epoch on the whole training split
        # (None), not the sweep's short one (measured: 40 % fewer encoder parameters, -0.7 F1 points on the
        # test split after it vs -2 to -3 after the short one)
        "recovery_rows": config.pick(None, 48), "recovery_epochs": 1, "recovery_lr": 1e-4,
        "recovery_batch": config.pick(32, 16), "target_ratio": config.pick(0.4, 0.5),
        # pruning leaves the embeddings (half the parameters) as they were: train only what changed. Measured
        # at 40 %: same test F1 (0.973) and validation F1 (0.980) as training everything, 56 s instead of 77 s
        "recovery_freeze_embeddings": True,
        "iterative_target": config.pick(0.7, 0.5), "iterative_steps": 2,  # one-shot = the sweep's tuned point
        "latency_runs": config.pick(10, 3), "seed": 0,
    }
    unknown = set(overrides) - set(settings)
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)}; known: {sorted(settings)}.")
    return {**settings, **overrides}


# --------------------------------------------------------------------------- honest sizes


def storage_mb(model_or_clf) -> pd.DataFrame:
    """Size in MB (10^6 bytes) of the whole model if its encoder Linear weights were stored as:

    dense; CSR (torch's ``to_sparse_csr``: int64 row pointers and column indices + the non-zeros);
    bitmask (1 bit per weight + the non-zeros). Each with fp32 values, and with int8 values (plus one
    fp32 scale per output row). Every other tensor is counted dense fp32. CSR at fp32 costs ~12 bytes
    per non-zero against 4 per dense weight: smaller only above ~67 % sparsity.
    """
    model = prune._no_masks(models.unwrap(model_or_clf)[1])
    unique = {(v.data_ptr(), tuple(v.shape)): v for v in model.state_dict().values()}  # tied weights once
    weights = [layer[r].weight.detach() for layer in layers(model) for r in ROLES]
    rest = sum(v.numel() * v.element_size() for v in unique.values()) - sum(w.numel() * 4 for w in weights)
    with warnings.catch_warnings():  # "sparse CSR support is in beta"
        warnings.simplefilter("ignore", UserWarning)
        csr = [w.to_sparse_csr() for w in weights]
    numel, nnz = sum(w.numel() for w in weights), sum(int((w != 0).sum()) for w in weights)
    csr_index = sum(t.numel() * t.element_size() for c in csr for t in (c.crow_indices(), c.col_indices()))
    bitmask = sum(len(np.packbits(w.ne(0).numpy().ravel())) for w in weights)
    rows = []
    for values, nbytes, scales in (("fp32", 4, 0), ("int8", 1, sum(w.shape[0] * 4 for w in weights))):
        for fmt, size in (("dense", numel * nbytes), ("CSR", csr_index + nnz * nbytes), ("bitmask", bitmask + nnz * nbytes)):
            rows.append({"format": fmt, "values": values, "encoder_linear_mb": (size + scales) / 1e6,
                         "model_mb": (rest + size + scales) / 1e6})
    table = pd.DataFrame(rows)
    table["vs_dense_fp32"] = table["model_mb"] / table["model_mb"].iloc[0]
    return table


def masks_pitfall(clf, sparsity: float = 0.5) -> dict:
    """What a checkpoint weighs (MB) before pruning, with ``torch.nn.utils.prune`` masks still attached
    (``weight_orig`` + ``weight_mask`` per pruned Linear) and after ``prune.remove``; and the state-dict
    names of one pruned Linear in each case."""
    sparsity = prune._fraction(sparsity, "sparsity")
    model = prune._copy(models.unwrap(clf)[1])
    before = models.serialized_size_mb(model)
    first = layers(model)[0]["ffn_in"]
    name = next(n for n, m in model.named_modules() if m is first)
    for layer in layers(model):
        for role in ROLES:
            torch_prune.l1_unstructured(layer[role], "weight", amount=sparsity)
    attached_keys = [k for k in model.state_dict() if k.startswith(name + ".")]
    attached = models.serialized_size_mb(model)
    prune.remove_masks(model)
    return {"dense_mb": before, "masks_attached_mb": attached, "after_remove_mb": models.serialized_size_mb(model),
            "keys_with_masks": attached_keys, "keys_after_remove": [k for k in model.state_dict() if k.startswith(name + ".")],
            "sparsity": prune.sparsity(model)}


def removed_share(clf, reference) -> float:
    """Share (0..1) of ``reference``'s encoder Linear weights that ``clf`` no longer has (zero or sliced away)."""
    count = lambda m, test: sum(int(test(l[r].weight).sum()) for l in layers(m) for r in ROLES)  # noqa: E731
    return 1.0 - count(clf, lambda w: w != 0) / count(reference, lambda w: torch.ones_like(w, dtype=torch.bool))


# --------------------------------------------------------------------------- cache helpers


def _key(kind: str, teacher, settings: dict, **extra) -> str:
    return models.cache_key(kind=f"pruning_{kind}", teacher=models.fingerprint(teacher), version=VERSION,
                            data=data.SMS_SHA256[:12], **settings, **extra)


def _cached_table(kind: str, key: str, compute: Callable[[], list[dict]]) -> pd.DataFrame:
    path = config.cache_dir() / "studies" / f"pruning_{kind}_{key}.json"
    if path.is_file():
        stored = json.loads(path.read_text(encoding="utf-8"))
        frame = pd.DataFrame(stored["rows"])
        frame.attrs.update(seconds=0.0, cached=True, computed_in=stored["seconds"], path=str(path))
        return frame
    start = time.perf_counter()
    rows = compute()
    seconds = time.perf_counter() - start
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"key": key, "seconds": seconds, "rows": rows}, indent=1, default=float), encoding="utf-8")
    os.replace(tmp, path)
    frame = pd.DataFrame(rows)
    frame.attrs.update(seconds=seconds, cached=False, computed_in=seconds, path=str(path))
    return frame


def _by_length(df):
    """Rows sorted by text length: batches hold messages of similar length (less padding, same F1)."""
    return df.iloc[np.argsort(df["text"].str.len().to_numpy(), kind="stable")]


def _subsets(settings: dict) -> dict:
    splits = data.sms_splits()
    val = splits.val if settings["val_n"] is None else data.sample(splits.val, settings["val_n"], seed=0)
    return {"train": splits.train, "val": _by_length(val), "test": data.for_mode(splits.test, fast_n=120),
            "scan_val": _by_length(data.sample(splits.val, min(settings["scan_val_n"], len(splits.val)), seed=0)),
            "calibration": data.sample(splits.train, settings["calibration"], seed=0)["text"].tolist(),
            "ft": data.sample(splits.train, settings["ft_rows"], seed=1)}


# --------------------------------------------------------------------------- variants


_STATS: dict = {}


def calibration_statistics(teacher, calibration) -> dict:
    """The teacher's FFN statistics (``"ffn"``, with covariance), head importances (``"heads"``) and logits
    (``"logits"``, n texts × classes) on ``calibration``, computed once per (teacher, texts) in this session
    and reused by every variant, the sweep, the table and the notebook's own cells."""
    key = (models.fingerprint(teacher), models.texts_digest(calibration))
    if key not in _STATS:
        _STATS.clear()
        _STATS[key] = {"ffn": prune.ffn_statistics(teacher, calibration, covariance=True),
                       "heads": prune.head_importance(teacher, calibration),
                       "logits": teacher.logits(calibration)}
    return _STATS[key]


def variant(teacher, method: str, level: float, calibration) -> models.TextClassifier:
    """``teacher`` pruned one-shot by ``method`` (a key of :data:`METHODS`) at ``level``: the share of
    weights (magnitude), of FFN neurons and heads (activation: neurons by mean |activation|, heads by
    importance, both measured on the teacher) or of FFN neurons (redundancy, merged cheapest first)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}; got {method!r}.")
    if level == 0:
        return teacher
    if method.startswith("magnitude"):
        return prune.magnitude(teacher, level, scope=method.split("_")[1])
    stats = calibration_statistics(teacher, calibration)
    if method == "activation":
        fewer = prune.activation(teacher, calibration, level, stats=stats["ffn"])
        return prune.heads(fewer, calibration, level, scores=stats["heads"])
    return prune.redundancy(teacher, calibration, threshold=0.0, ratio=level, stats=stats["ffn"], logits=stats["logits"])


def tuned_variant(teacher, method: str, level: float, settings: dict | None = None, progress: bool = True):
    """:func:`variant` fine-tuned briefly (``ft_rows`` training messages, ``ft_epochs``; zeros stay zero; the
    embeddings frozen if ``ft_freeze_embeddings``);
    trained once, then loaded from the cache. ``meta["fine_tune_seconds"]`` says what it cost."""
    settings = settings or plan()
    parts = {k: settings[k] for k in ("calibration", "ft_rows", "ft_epochs", "ft_lr", "ft_batch",
                                      "ft_freeze_embeddings", "seed")}
    key = _key("model", teacher, parts, method=method, level=level)
    if models.is_cached(key):
        return models.load_classifier(key)
    sets = _subsets(settings)
    pruned = variant(teacher, method, level, sets["calibration"])  # level 0: the teacher, so it is copied
    tuned, history = prune.fine_tune_pruned(pruned, sets["ft"], inplace=pruned is not teacher,
                                            freeze_embeddings=settings["ft_freeze_embeddings"],
                                            epochs=settings["ft_epochs"], lr=settings["ft_lr"],
                                            batch_size=settings["ft_batch"], seed=settings["seed"], progress=progress)
    tuned.name = f"{METHODS[method]} {level:.0%}, fine-tuned"
    models.save_classifier(tuned, key, {"fine_tune_seconds": history["seconds"], "fine_tune_steps": history["steps"]})
    return models.load_classifier(key)


RECOVERY = ("calibration", "recovery_rows", "recovery_epochs", "recovery_lr", "recovery_batch",
            "recovery_freeze_embeddings", "seed")


def recovered_key(teacher, ratio: float, settings: dict) -> str:
    """The cache key of :func:`recovered` (``teacher``, ``ratio``, the recovery settings)."""
    return _key("recovered", teacher, {k: settings[k] for k in RECOVERY}, ratio=ratio)


def recovered(teacher, ratio: float, settings: dict | None = None, progress: bool = True):
    """``teacher`` with the share ``ratio`` of FFN neurons (by mean |activation|) and of heads (by importance)
    sliced away, then fine-tuned for ``recovery_epochs`` on ``recovery_rows`` training messages (None: the
    whole training split) at ``recovery_lr``, the embeddings frozen if ``recovery_freeze_embeddings``: trained
    once (about a minute per epoch on 2 quiet cores in full mode), then loaded from the cache.
    ``meta["fine_tune_seconds"]`` says what it cost. ``ratio`` is a share in (0, 1)."""
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio < 1:
        raise ValueError(f"ratio must be a share of neurons and heads between 0 and 1 (exclusive), e.g. 0.4; got {ratio!r}.")
    settings = settings or plan()
    key = recovered_key(teacher, ratio, settings)
    if models.is_cached(key):
        return models.load_classifier(key)
    sets = _subsets(settings)
    rows = sets["train"] if settings["recovery_rows"] is None else data.sample(sets["train"], settings["recovery_rows"], seed=1)
    pruned = variant(teacher, "activation", ratio, sets["calibration"])  # a new model: trained in place
    tuned, history = prune.fine_tune_pruned(pruned, rows, inplace=True,
                                            freeze_embeddings=settings["recovery_freeze_embeddings"], epochs=settings["recovery_epochs"], lr=settings["recovery_lr"],
                                            batch_size=settings["recovery_batch"], seed=settings["seed"], progress=progress)
    tuned.name = f"structured {ratio:.0%} (FFN neurons + heads), recovered"
    models.save_classifier(tuned, key, {"fine_tune_seconds": history["seconds"], "fine_tune_steps": history["steps"],
                                        "fine_tune_rows": len(rows)})
    return models.load_classifier(key)


def _measure(clf, teacher, texts, labels, latency_texts, runs: int) -> dict:
    sizes = storage_mb(clf).set_index(["format", "values"])["model_mb"]
    q = evaluate.quality(labels, evaluate.predict(clf, texts).labels)
    b1 = evaluate.latency_ms(clf, latency_texts, runs=runs, warmup=2)["median_ms"] if runs else float("nan")
    return {"sparsity": removed_share(clf, teacher), "f1": float(q["f1"]), "accuracy": float(q["accuracy"]),
            "params_m": clf.num_parameters() / 1e6, "encoder_params_m": encoder_parameters(clf) / 1e6,
            "dense_mb": float(sizes[("dense", "fp32")]), "csr_mb": float(sizes[("CSR", "fp32")]),
            "bitmask_int8_mb": float(sizes[("bitmask", "int8")]), "b1_ms": b1}


# --------------------------------------------------------------------------- the studies


def sparsity_sweep(teacher, settings: dict | None = None, progress: bool = True) -> pd.DataFrame:
    """One row per (method, level, tuned): validation spam-F1 and its drop vs the teacher (points),
    the measured ``sparsity``, parameters (M), sizes (MB: dense fp32, CSR fp32, bitmask int8) and b1
    latency (ms, median of ``latency_runs`` one-message calls: noisy on a shared CPU)."""
    from ..progress import progress_bar

    settings = settings or plan()
    parts = {k: settings[k] for k in ("levels", "tuned_levels", "calibration", "val_n", "ft_rows", "ft_epochs",
                                      "ft_lr", "ft_batch", "ft_freeze_embeddings", "latency_runs", "seed")}

    def compute():
        config.set_threads()
        sets = _subsets(settings)
        texts, labels = data.as_lists(sets["val"])
        lat = texts[:10]
        base = _measure(teacher, teacher, texts, labels, lat, settings["latency_runs"])
        jobs = [(m, lv, False) for m in METHODS for lv in settings["levels"] if lv > 0]
        jobs += [(m, lv, True) for m in METHODS for lv in settings["tuned_levels"]]
        rows = [{"method": m, "level": 0.0, "tuned": t, **base} for m in METHODS for t in (False, True)]
        for method, level, tuned in progress_bar(jobs, desc="sparsity sweep", disable=not progress):
            clf = (tuned_variant(teacher, method, level, settings, progress=False) if tuned
                   else variant(teacher, method, level, sets["calibration"]))
            rows.append({"method": method, "level": level, "tuned": tuned,
                         **_measure(clf, teacher, texts, labels, lat, settings["latency_runs"])})
            del clf
            config.release_memory()
        for r in rows:
            r["f1_drop"] = 100.0 * (base["f1"] - r["f1"])
        return rows

    frame = _cached_table("sweep", _key("sweep", teacher, parts), compute)
    return frame.sort_values(["method", "tuned", "level"]).reset_index(drop=True)


def best_within(sweep: pd.DataFrame, method: str = "magnitude_global", tuned: bool = True, max_drop: float = 1.0):
    """The sweep row with the highest sparsity whose F1 drop is at most ``max_drop`` points (None if none)."""
    ok = sweep[(sweep["method"] == method) & (sweep["tuned"] == tuned) & (sweep["f1_drop"] <= max_drop)]
    return None if ok.empty else ok.sort_values("sparsity").iloc[-1]


def sensitivity_scan(teacher, settings: dict | None = None, progress: bool = True) -> pd.DataFrame:
    """F1 on ``scan_val_n`` validation messages when only one group is magnitude-pruned (per layer), one-shot:
    every role (query ... ffn_out) in all layers at each of ``scan_levels``, and (``scan_layers``) the
    attention or the FFN of one layer at the last of them."""
    from ..progress import progress_bar

    settings = settings or plan()
    parts = {k: settings[k] for k in ("scan_val_n", "scan_levels", "scan_layers")}

    def compute():
        config.set_threads()
        texts, labels = data.as_lists(_subsets(settings)["scan_val"])
        base = evaluate.quality(labels, evaluate.predict(teacher, texts).labels)["f1"]
        jobs = [((role, None), lv) for role in ROLES for lv in settings["scan_levels"]]
        if settings["scan_layers"]:
            jobs += [((g, i), settings["scan_levels"][-1]) for g in ("attention", "ffn") for i in range(len(layers(teacher)))]
        rows = []
        for (group, layer), level in progress_bar(jobs, desc="sensitivity scan", disable=not progress):
            clf = prune.prune_group(teacher, group, level, layer=layer)
            f1 = evaluate.quality(labels, evaluate.predict(clf, texts).labels)["f1"]
            rows.append({"group": group if layer is None else f"{group} L{layer}",
                         "what": "one role, all layers" if layer is None else "one layer",
                         "level": level, "f1": float(f1), "f1_drop": 100.0 * (base - f1)})
        return rows

    return _cached_table("scan", _key("scan", teacher, parts), compute)


def source_table(teacher, settings: dict | None = None, progress: bool = True) -> pd.DataFrame:
    """The source's table on our model: :func:`recovered` (FFN neurons by mean |activation| + heads by
    importance, then one recovery epoch) at each of ``table_ratios``; on the SMS test split: size (MB), parameters
    (M), encoder parameters (M), how much smaller the model and the encoder are, b1 latency (ms), spam-F1,
    its drop vs the teacher (points) and the workbook's verdict (:func:`course_lib.evaluate.verdict`)."""
    settings = settings or plan()
    parts = {k: settings[k] for k in ("table_ratios", "latency_runs", *RECOVERY)}

    def compute():
        config.set_threads()
        texts, labels = data.as_lists(_subsets(settings)["test"])
        lat, runs = texts[:10], max(settings["latency_runs"], 5)
        clfs = [("teacher", teacher)] + [(f"activation {r:.0%}", recovered(teacher, r, settings, progress))
                                         for r in settings["table_ratios"]]
        rows = []
        for (name, clf), ratio in zip(clfs, [0.0, *settings["table_ratios"]]):
            config.release_memory()
            q = evaluate.quality(labels, models.cached_logits(clf, texts).argmax(axis=1))  # kept for the benchmark
            rows.append({"variant": name, "ratio": ratio, "size_mb": clf.size_mb(), "params_m": clf.num_parameters() / 1e6,
                         "encoder_params_m": encoder_parameters(clf) / 1e6,
                         "b1_ms": evaluate.latency_ms(clf, lat, runs=runs, warmup=2)["median_ms"], "f1": float(q["f1"])})
        t = rows[0]
        for r in rows:
            r["smaller_model"] = 1 - r["size_mb"] / t["size_mb"]
            r["smaller_encoder"] = 1 - r["encoder_params_m"] / t["encoder_params_m"]
            r["f1_drop"] = 100.0 * (t["f1"] - r["f1"])
            r["verdict"], r["why"] = evaluate.verdict(r["f1_drop"], t["size_mb"] / r["size_mb"], t["b1_ms"] / r["b1_ms"])
        return rows

    return _cached_table("table", _key("table", teacher, parts), compute).set_index("variant")


def one_shot_vs_iterative(teacher, settings: dict | None = None, progress: bool = True) -> pd.DataFrame:
    """Global magnitude pruning to ``iterative_target`` once (then one fine-tune) or in
    ``iterative_steps`` steps (sparsity 1 - (1 - target)^(i/steps), each step fine-tuned on its own share
    of the same ``ft_rows`` messages, so both see the same training); validation F1 after each step."""
    settings = settings or plan()
    parts = {k: settings[k] for k in ("iterative_target", "iterative_steps", "val_n", "calibration", "ft_rows",
                                      "ft_epochs", "ft_lr", "ft_batch", "ft_freeze_embeddings", "seed")}

    def compute():
        config.set_threads()
        sets = _subsets(settings)
        texts, labels = data.as_lists(sets["val"])
        f1 = lambda clf: float(evaluate.quality(labels, evaluate.predict(clf, texts).labels)["f1"])  # noqa: E731
        target, steps = settings["iterative_target"], settings["iterative_steps"]
        one = tuned_variant(teacher, "magnitude_global", target, settings, progress)
        rows = [{"schedule": "one-shot", "step": 1, "sparsity": removed_share(one, teacher), "f1": f1(one),
                 "train_rows": settings["ft_rows"], "seconds": one.meta.get("fine_tune_seconds")}]
        del one  # one model at a time in memory (Binder allows ~2 GB)
        # step i prunes the current model globally to the new overall level: its zeros are the smallest
        # |w| already, so they stay zero and only the extra share is added
        labels_ft = sets["ft"]["label"].to_numpy()  # each step gets its share of spam and of ham
        parts_by_label = [np.array_split(np.flatnonzero(labels_ft == y), steps) for y in (0, 1)]
        clf, chunks = teacher, [np.sort(np.concatenate([p[i] for p in parts_by_label])) for i in range(steps)]
        for i, chunk in enumerate(chunks, start=1):
            level = 1 - (1 - target) ** (i / steps)
            start = time.perf_counter()
            pruned = prune.magnitude(clf, level, "global")
            del clf  # the previous step's model: the new one starts from its copy
            config.release_memory()
            clf, _ = prune.fine_tune_pruned(pruned, sets["ft"].iloc[chunk], inplace=True,
                                            freeze_embeddings=settings["ft_freeze_embeddings"],
                                            epochs=settings["ft_epochs"], lr=settings["ft_lr"],
                                            batch_size=settings["ft_batch"], seed=settings["seed"], progress=False)
            rows.append({"schedule": "iterative", "step": i, "sparsity": removed_share(clf, teacher), "f1": f1(clf),
                         "train_rows": len(chunk), "seconds": time.perf_counter() - start})
        base = f1(teacher)
        for r in rows:
            r["f1_drop"] = 100.0 * (base - r["f1"])
        return rows

    return _cached_table("iterative", _key("iterative", teacher, parts), compute)



def stress_models(progress: bool = True) -> dict:
    """Chapter 04's structured-pruned, recovered teacher (:func:`recovered` at ``target_ratio``) if it is
    already in the cache, for chapter 06's stress tests: ``{name: (classifier, cache key)}``. Never trains:
    if chapter 04 has not made it, it is left out."""
    from .. import train

    settings = plan()
    teacher = train.finetuned_teacher(progress=progress)
    level = settings["target_ratio"]
    key = recovered_key(teacher, level, settings)
    if not models.is_cached(key):
        return {}
    return {f"pruned (structured {level:.0%}, recovered)": (models.load_classifier(key), key)}
