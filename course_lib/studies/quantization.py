"""Chapter 03's cached experiments and tables: the bit-width sweep (accuracy of the model
fake-quantized at every bits × scheme × granularity, cached as JSON), its tables, the int8
back-ends side by side, the number formats, and the helpers the notebook uses to pick what to
show. The technique itself is in :mod:`course_lib.quantize`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
import warnings
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import torch

from .. import config
from ..evaluate import predict, quality
from ..models import cache_key, load_classifier, model_fingerprint, unwrap
from ..quantize import (GRANULARITIES, MAX_BITS, MIN_BITS, SCHEMES, check_settings, fake_quantize_model,
                        integer_range, packed_size_mb)

SWEEP_VERSION = 1


# --------------------------------------------------------------------------- the bit-width sweep


def _texts_fingerprint(texts: Sequence[str], labels: Sequence[int]) -> str:
    h = hashlib.sha256()
    for t, y in zip(texts, labels):
        h.update(t.encode("utf-8"))
        h.update(b"\x00" + str(int(y)).encode() + b"\x01")
    return h.hexdigest()[:16]


def sweep_path(key: str) -> Path:
    return config.cache_dir() / "sweeps" / f"quantization_{key}.json"


def bit_width_sweep(
    clf,
    texts: Sequence[str],
    labels: Sequence[int],
    bits: Iterable[int] = range(MIN_BITS, MAX_BITS + 1),
    schemes: Iterable[str] = SCHEMES,
    granularities: Iterable[str] = GRANULARITIES,
    include_embeddings: bool = False,
    name: str | None = None,
    use_cache: bool = True,
    progress: bool = True,
) -> pd.DataFrame:
    """Accuracy and spam-F1 of ``clf`` fake-quantized at every (bits, scheme, granularity), measured on
    ``texts``/``labels``; computed once and cached as JSON in ``cache_dir()/sweeps`` (keyed by the model's
    weights, the evaluation set and the settings).

    Returns one row per setting plus an ``fp32`` reference row (``bits`` = 32) with columns
    ``model, bits, scheme, granularity, accuracy, precision, recall, f1, agreement`` (fraction of labels
    equal to fp32's), ``f1_drop``/``accuracy_drop`` (points below fp32) and ``packed_mb``.
    ``frame.attrs["seconds"]`` is the compute time (0 when loaded from the cache).
    """
    from ..progress import progress_bar

    texts, labels = list(texts), [int(y) for y in labels]
    bits = [check_settings(b, "symmetric", "per_tensor") for b in bits]
    schemes, granularities = list(schemes), list(granularities)
    for s in schemes:
        check_settings(8, s, "per_tensor")
    for g in granularities:
        check_settings(8, "symmetric", g)
    name = name or getattr(clf, "name", "model")
    settings = {"model": model_fingerprint(clf), "data": _texts_fingerprint(texts, labels), "bits": bits,
                "schemes": schemes, "granularities": granularities, "include_embeddings": include_embeddings,
                "version": SWEEP_VERSION}
    path = sweep_path(cache_key(kind="quant_sweep", **settings))
    if use_cache and path.is_file():
        stored = json.loads(path.read_text(encoding="utf-8"))
        frame = pd.DataFrame(stored["rows"])
        frame["model"] = name
        frame.attrs.update({"seconds": 0.0, "cached": True, "path": str(path)})
        return frame

    start = time.perf_counter()
    config.set_threads()
    base = predict(clf, texts)
    rows = [{"bits": 32, "scheme": "fp32", "granularity": "-", **_quality_row(quality(labels, base.labels)),
             "agreement": 1.0, "packed_mb": float(clf.size_mb())}]
    combos = [(b, s, g) for s in schemes for g in granularities for b in bits]
    bar = progress_bar(combos, desc=f"bit-width sweep {name}", disable=not progress)
    for b, s, g in bar:
        bar.set_postfix(bits=b, scheme=s[:4], gran=g[4:8])
        variant = fake_quantize_model(clf, b, s, g, include_embeddings)
        pred = predict(variant, texts)
        rows.append({"bits": b, "scheme": s, "granularity": g, **_quality_row(quality(labels, pred.labels)),
                     "agreement": float(np.mean(pred.labels == base.labels)),
                     "packed_mb": packed_size_mb(clf, b, s, g, include_embeddings)})
        del variant
    bar.close()
    seconds = time.perf_counter() - start
    for r in rows:
        r["f1_drop"] = (rows[0]["f1"] - r["f1"]) * 100.0
        r["accuracy_drop"] = (rows[0]["accuracy"] - r["accuracy"]) * 100.0
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"settings": settings, "name": name, "seconds": seconds, "n": len(texts),
                               "rows": rows}, indent=1), encoding="utf-8")
    os.replace(tmp, path)
    frame = pd.DataFrame(rows)
    frame["model"] = name
    frame.attrs.update({"seconds": seconds, "cached": False, "path": str(path)})
    return frame


def _quality_row(q: dict) -> dict:
    return {k: float(q[k]) for k in ("accuracy", "precision", "recall", "f1")}


def sweep_table(sweep: pd.DataFrame, bits: Sequence[int] = (8, 6, 4, 3, 2), metric: str = "f1",
                scheme: str | None = None) -> pd.DataFrame:
    """``metric`` at the given bit widths, one row per (model, scheme, granularity), fp32 as a column."""
    data = sweep[sweep["bits"] != 32]
    if scheme is not None:
        data = data[data["scheme"] == scheme]
    table = data[data["bits"].isin(list(bits))].pivot_table(
        index=["model", "scheme", "granularity"], columns="bits", values=metric)
    table = table[[b for b in bits if b in table.columns]]
    table.columns = [f"{b} bits" for b in table.columns]
    fp32 = sweep[sweep["bits"] == 32].set_index("model")[metric]
    table.insert(0, "fp32", [fp32.get(m, np.nan) for m in table.index.get_level_values("model")])
    return table


def fewest_good_bits(sweep: pd.DataFrame, max_drop: float = 2.0, metric: str = "f1") -> pd.DataFrame:
    """For each (model, scheme, granularity): the fewest bits whose ``metric`` drop stays within ``max_drop``
    points of fp32 (and every wider setting too), with the score and packed size there (NaN when none does)."""
    rows = []
    data = sweep[sweep["bits"] != 32]
    for (model, scheme, gran), part in data.groupby(["model", "scheme", "granularity"], sort=True):
        part = part.sort_values("bits", ascending=False)
        ok = None
        for _, r in part.iterrows():  # walk down from 8 bits; stop at the first setting that is too lossy
            if r[f"{metric}_drop"] > max_drop:
                break
            ok = r
        rows.append({"model": model, "scheme": scheme, "granularity": gran,
                     "fewest bits": int(ok["bits"]) if ok is not None else np.nan,
                     metric: float(ok[metric]) if ok is not None else np.nan,
                     f"{metric} drop (pts)": float(ok[f"{metric}_drop"]) if ok is not None else np.nan,
                     "packed MB": float(ok["packed_mb"]) if ok is not None else np.nan})
    return pd.DataFrame(rows).set_index(["model", "scheme", "granularity"])


def cached_student():
    """The chapter-02 student if one was trained into this cache (else ``None``); never trains anything.

    Reads the saved models' ``meta.json``: among students (``settings.kind == "student"``) trained in
    the current mode (fast or full), prefers the distilled one (method ``kd``) trained on every label
    with the full teacher, seed 0, then the newest. Its ``name`` becomes ``"student (<recipe>)"``.
    """
    root = config.cache_dir() / "models"
    if not root.is_dir():
        return None
    found = []
    for meta_path in root.glob("*/meta.json"):
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        settings = meta.get("settings") if isinstance(meta.get("settings"), dict) else {}
        is_student = settings.get("kind") == "student" or "student" in str(meta.get("name", "")).lower()
        if not is_student or settings.get("fast", config.fast_mode()) != config.fast_mode():
            continue
        score = (4 * (settings.get("method") == "kd") + 2 * (settings.get("labelled") is None)
                 + (not str(settings.get("teacher") or "").startswith("few")) + (settings.get("arch") == "tiny")
                 + (settings.get("seed", 0) == 0))
        found.append((score, meta_path.stat().st_mtime, meta_path.parent, meta.get("name", "student")))
    for _, _, folder, name in sorted(found, key=lambda f: (f[0], f[1]), reverse=True):
        try:
            student = load_classifier(folder)
        except Exception:  # noqa: BLE001 - a student we cannot load is the same as no student
            continue
        student.name = f"student ({name})"
        return student
    return None


def pick_weight(model_or_clf) -> tuple[str, torch.Tensor]:
    """A Linear weight that shows why per-channel matters: the one whose rows differ most in range
    (largest ratio of the biggest row max|w| to the median row max|w|). Returns ``(name, weight)``."""
    _, model = unwrap(model_or_clf)
    best = None
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and module.weight.shape[0] >= 16:
            w = module.weight.detach().float()
            rows = w.abs().amax(dim=1)
            spread = float(rows.max() / rows.median().clamp_min(1e-12))
            if best is None or spread > best[0]:
                best = (spread, f"{name}.weight", w.clone())
    if best is None:
        raise ValueError("The model has no Linear layer with at least 16 output rows.")
    return best[1], best[2]


# --------------------------------------------------------------------------- tables of the chapter


def number_formats(n_params: int | None = None) -> pd.DataFrame:
    """The number formats a model can be stored in, with their ranges and precision (read from
    ``torch.finfo``/:func:`integer_range`, not typed), and the size of ``n_params`` weights in each.

    For floats, ``relative step`` is the gap between 1.0 and the next number (machine epsilon): every
    value keeps about that relative precision over a huge range. For integers, a single scale maps the
    largest |weight| to the largest integer, so the step is ``1 / qmax`` of that largest |weight| everywhere:
    small weights lose relative precision.
    """
    rows = []
    for label, dtype in (("fp32", torch.float32), ("fp16", torch.float16), ("bf16", torch.bfloat16)):
        info = torch.finfo(dtype)
        rows.append({"format": label, "bits": info.bits, "kind": "float (sign, exponent, mantissa)",
                     "largest": float(info.max), "smallest normal > 0": float(info.tiny),
                     "relative step": float(info.eps)})
    for bits in (8, 4, 2):
        lo, hi = integer_range(bits, "symmetric")
        rows.append({"format": f"int{bits}", "bits": bits, "kind": f"integer {lo}..{hi} × scale",
                     "largest": float(hi), "smallest normal > 0": 1.0, "relative step": 1.0 / hi})
    frame = pd.DataFrame(rows).set_index("format")
    if n_params is not None:
        frame["MB for this model"] = frame["bits"] * int(n_params) / 8 / 1e6
    return frame


def int8_summary(bench, baseline: str, names: Sequence[str] | None = None, batch: int = 32) -> pd.DataFrame:
    """Each variant against ``baseline`` in one table: how many times smaller and faster (batch 1), the
    throughput ratio at ``batch``, the spam-F1 and accuracy change in points, the agreement with the
    baseline's predictions (and the number of flipped messages), and the rule-of-thumb verdict."""
    names = [n for n in (names or [r["name"] for r in bench.rows]) if n != baseline]
    base = bench.row(baseline)
    rows = []
    for name in names:
        r = bench.row(name)
        verdict = bench.compare(baseline, name).attrs["verdict"]
        tp = f"throughput_b{batch}"
        rows.append({
            "variant": name,
            "size_mb": r["size_mb"],
            "x smaller": base["size_mb"] / r["size_mb"],
            "latency_b1_ms": r.get("latency_ms", np.nan),
            "x faster (b1)": base["latency_ms"] / r["latency_ms"] if "latency_ms" in r else np.nan,
            f"throughput ratio (b{batch})": r[tp] / base[tp] if tp in r and tp in base else np.nan,
            "F1 change (pts)": (r["f1"] - base["f1"]) * 100.0,
            "accuracy change (pts)": (r["accuracy"] - base["accuracy"]) * 100.0,
            "agreement": bench.agreement(baseline, name),
            "flips": int(len(bench.flips(baseline, name))),
            "verdict": verdict,
        })
    return pd.DataFrame(rows).set_index("variant")


@contextlib.contextmanager
def report_warnings(max_lines: int = 1):
    """Run a block, then print each distinct warning it raised (category and first lines), once.

    Used around library calls whose warnings the chapter explains (deprecations), so they stay
    visible but short.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught
    shown = set()
    for w in caught:
        message = str(w.message).split(" (Triggered internally")[0]  # drop C++ source locations
        text = "\n    ".join(line.strip() for line in message.strip().splitlines()[:max_lines])
        key = (w.category.__name__, text)
        if key in shown:
            continue
        shown.add(key)
        print(f"{w.category.__name__}: {text}")
