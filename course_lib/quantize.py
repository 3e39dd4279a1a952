"""Quantization: from scratch (to see how it works) and for real (to make a model smaller and faster).

From scratch — the arithmetic every int8 library does:

- :func:`quantize_tensor` maps floats to ``bits``-bit integers with a *scale* (the float size
  of one integer step) and a *zero point* (the integer that stands for 0.0):
  ``q = clamp(round(x / scale) + zero_point, qmin, qmax)``;
- :func:`dequantize` maps them back: ``x ≈ (q - zero_point) * scale``;
- :func:`fake_quantize` = dequantize(quantize(x)): floats that can only take ``2**bits`` values,
  so the *accuracy* of a k-bit model can be measured with ordinary float code.

Two schemes, two granularities:

- ``"symmetric"``: integers in ``[-(2**(bits-1) - 1), 2**(bits-1) - 1]`` (e.g. ±127 at 8 bits), zero
  point 0, ``scale = max|x| / (2**(bits-1) - 1)``. Cheap to compute with; the usual choice for weights.
- ``"asymmetric"``: integers in ``[0, 2**bits - 1]``, ``scale = (max - min) / (2**bits - 1)`` over a
  range stretched to include 0 (so 0.0 is exact), and a zero point. Uses every level when the values
  are lopsided (e.g. after a ReLU).
- ``"per_tensor"``: one scale for the whole tensor; ``"per_channel"``: one scale per slice along
  ``axis`` (axis 0 of a Linear weight = one per output neuron), so a row of small weights is not
  crushed by another row's outlier.

For real — see :func:`pytorch_dynamic_int8` (``torch.quantization.quantize_dynamic``),
:mod:`course_lib.onnx_runtime` (ONNX Runtime int8) and :func:`cast_classifier` (fp16 / bf16).
:func:`packed_size_mb` gives the honest storage size of a k-bit model, and
:func:`bit_width_sweep` / :func:`bit_width_explorer` measure and show the accuracy drop vs bits.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import math
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import pandas as pd
import torch

from . import config

MIN_BITS, MAX_BITS = 2, 8
SCHEMES = ("symmetric", "asymmetric")
GRANULARITIES = ("per_tensor", "per_channel")
SWEEP_VERSION = 1


# --------------------------------------------------------------------------- from scratch


def _check_settings(bits, scheme: str, granularity: str) -> int:
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)):
        raise ValueError(f"bits must be a whole number from {MIN_BITS} to {MAX_BITS}, got {bits!r}.")
    bits = int(bits)
    if not MIN_BITS <= bits <= MAX_BITS:
        raise ValueError(
            f"bits must be from {MIN_BITS} to {MAX_BITS}, got {bits}. (1 bit leaves no symmetric levels "
            f"besides 0; above 8 bits the integers no longer fit in one byte — use fp16/bf16 instead.)"
        )
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}.")
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {GRANULARITIES}, got {granularity!r}.")
    return bits


def integer_range(bits: int, scheme: str = "symmetric") -> tuple[int, int]:
    """``(qmin, qmax)``: the integers a ``bits``-bit code may use.

    Symmetric: ``(-(2**(bits-1) - 1), 2**(bits-1) - 1)`` (the "restricted" range: -128 is left out so
    that +x and -x quantize to +q and -q). Asymmetric: ``(0, 2**bits - 1)``.
    """
    bits = _check_settings(bits, scheme, "per_tensor")
    if scheme == "symmetric":
        qmax = 2 ** (bits - 1) - 1
        return -qmax, qmax
    return 0, 2**bits - 1


@dataclass
class QuantizedTensor:
    """Result of :func:`quantize_tensor`; unpacks as ``q, scale, zero_point = quantize_tensor(...)``.

    ``values``: the integers, same shape as the input (``torch.int8`` for symmetric, ``torch.uint8``
    for asymmetric; a ``bits``-bit code is *stored* in a byte here, :func:`packed_size_mb` counts it
    packed). ``scale`` (float32) and ``zero_point`` (int32) are 0-d for per-tensor, and shaped to
    broadcast against ``values`` for per-channel (e.g. ``(rows, 1)`` for axis 0 of a matrix).
    """

    values: torch.Tensor
    scale: torch.Tensor
    zero_point: torch.Tensor
    bits: int
    scheme: str
    granularity: str
    axis: int | None = None

    def __iter__(self):
        return iter((self.values, self.scale, self.zero_point))

    @property
    def qmin(self) -> int:
        return integer_range(self.bits, self.scheme)[0]

    @property
    def qmax(self) -> int:
        return integer_range(self.bits, self.scheme)[1]

    def dequantize(self) -> torch.Tensor:
        """Back to float32: ``(values - zero_point) * scale``."""
        return (self.values.to(torch.int32) - self.zero_point).to(torch.float32) * self.scale

    def levels(self, channel: int | None = None) -> np.ndarray:
        """The float values the integers stand for (every level, ascending), for one channel if per-channel."""
        scale, zp = self.scale, self.zero_point
        if self.granularity == "per_channel":
            channel = 0 if channel is None else int(channel)
            scale, zp = scale.flatten()[channel], zp.flatten()[channel]
        q = torch.arange(self.qmin, self.qmax + 1, dtype=torch.int32)
        return ((q - zp) * scale.float()).numpy()


def quantize_tensor(
    x,
    bits: int = 8,
    scheme: str = "symmetric",
    granularity: str = "per_tensor",
    axis: int = 0,
) -> QuantizedTensor:
    """Quantize a float tensor to ``bits``-bit integers (2 ≤ bits ≤ 8).

    ``x``: a float tensor (anything ``torch.as_tensor`` accepts). ``axis``: the channel axis for
    ``granularity="per_channel"`` (ignored per-tensor). Returns a :class:`QuantizedTensor`:
    ``q = clamp(round(x / scale) + zero_point, qmin, qmax)``. A tensor (or channel) that is all zeros
    gets scale 1.0, so nothing divides by zero. Raises ``ValueError`` for bits outside 2..8, an unknown
    scheme/granularity, an empty tensor, NaN/inf, or a 0-d tensor per-channel.
    """
    bits = _check_settings(bits, scheme, granularity)
    x = torch.as_tensor(x)
    if not torch.is_floating_point(x):
        x = x.to(torch.float32)
    if x.numel() == 0:
        raise ValueError("Cannot quantize an empty tensor.")
    work = x.detach().to(torch.float64 if x.dtype == torch.float64 else torch.float32)
    if not torch.isfinite(work).all():
        raise ValueError("x contains NaN or inf; quantization needs finite values.")
    if granularity == "per_channel":
        if work.dim() == 0:
            raise ValueError("per_channel quantization needs a tensor with at least one dimension.")
        if not -work.dim() <= axis < work.dim():
            raise ValueError(f"axis {axis} is out of range for a tensor of shape {tuple(work.shape)}.")
        axis = axis % work.dim()
        dims = [d for d in range(work.dim()) if d != axis]
        reduce = (lambda t, fn: fn(t, dim=dims, keepdim=True)) if dims else (lambda t, fn: t)
    else:
        axis = None
        reduce = lambda t, fn: fn(t)  # noqa: E731 - whole-tensor reduction (0-d result)

    qmin, qmax = integer_range(bits, scheme)
    if scheme == "symmetric":
        amax = reduce(work.abs(), torch.amax)
        scale = amax / qmax
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        zero_point = torch.zeros_like(scale, dtype=torch.int32)
        dtype = torch.int8
    else:
        lo = torch.clamp(reduce(work, torch.amin), max=0.0)  # the range always includes 0.0 ...
        hi = torch.clamp(reduce(work, torch.amax), min=0.0)  # ... so that 0.0 is stored exactly
        scale = (hi - lo) / (qmax - qmin)
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        zero_point = torch.clamp(torch.round(qmin - lo / scale), qmin, qmax).to(torch.int32)
        dtype = torch.uint8
    q = torch.clamp(torch.round(work / scale) + zero_point, qmin, qmax).to(dtype)
    return QuantizedTensor(q, scale.to(torch.float32), zero_point, bits, scheme, granularity, axis)


def dequantize(q, scale=None, zero_point=None) -> torch.Tensor:
    """Integers back to float32: ``(q - zero_point) * scale``.

    Pass a :class:`QuantizedTensor`, or the three parts (``zero_point`` defaults to 0).
    """
    if isinstance(q, QuantizedTensor):
        return q.dequantize()
    if scale is None:
        raise ValueError("dequantize(q, scale, zero_point): the scale is needed unless q is a QuantizedTensor.")
    q = torch.as_tensor(q).to(torch.int32)
    zp = torch.as_tensor(0 if zero_point is None else zero_point).to(torch.int32)
    return (q - zp).to(torch.float32) * torch.as_tensor(scale, dtype=torch.float32)


def fake_quantize(x, bits: int = 8, scheme: str = "symmetric", granularity: str = "per_tensor", axis: int = 0):
    """``dequantize(quantize_tensor(x, ...))`` in ``x``'s dtype and shape: floats restricted to 2**bits values."""
    x = torch.as_tensor(x)
    out = quantize_tensor(x, bits, scheme, granularity, axis).dequantize()
    return out.to(x.dtype) if torch.is_floating_point(x) else out


def quantization_error(x, bits: int = 8, scheme: str = "symmetric", granularity: str = "per_tensor",
                       axis: int = 0) -> dict:
    """How much quantizing ``x`` changes it: ``rmse``, ``max_abs`` error, ``relative`` (rmse / rms of x),
    the median ``step`` (scale) and the number of distinct ``levels_used``."""
    x = torch.as_tensor(x).detach().float()
    return _error_stats(x, quantize_tensor(x, bits, scheme, granularity, axis))


def _error_stats(x: torch.Tensor, qt: QuantizedTensor) -> dict:
    err = qt.dequantize() - x
    rms = float(x.pow(2).mean().sqrt())
    rmse = float(err.pow(2).mean().sqrt())
    return {
        "rmse": rmse,
        "max_abs": float(err.abs().max()),
        "relative": rmse / rms if rms > 0 else 0.0,
        "step": float(qt.scale.flatten().median()),
        "levels_used": int(torch.unique(qt.values).numel()),
    }


@contextlib.contextmanager
def _one_thread():
    """Run torch ops on one thread: quantizing a weight is a few cheap element-wise passes, and on a
    shared 2-core machine a multi-threaded pass waits for a descheduled thread (measured: 8x slower)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


# --------------------------------------------------------------------------- whole models


def _split(model_or_clf):
    from .models import TextClassifier

    if isinstance(model_or_clf, TextClassifier):
        return model_or_clf, model_or_clf.model
    if isinstance(model_or_clf, torch.nn.Module):
        return None, model_or_clf
    raise TypeError(f"Expected a TextClassifier or a torch.nn.Module, got {type(model_or_clf).__name__}.")


def _rewrap(clf, model: torch.nn.Module, suffix: str, info: dict):
    from .models import TextClassifier

    if clf is None:
        return model
    meta = {**(clf.meta or {}), "quantization": info}
    return TextClassifier(model=model, tokenizer=clf.tokenizer, max_length=clf.max_length,
                          name=f"{clf.name} · {suffix}", meta=meta)


def _quantized_weights(model: torch.nn.Module, include_embeddings: bool) -> list[tuple[str, torch.nn.Module]]:
    kinds = (torch.nn.Linear, torch.nn.Embedding) if include_embeddings else (torch.nn.Linear,)
    return [(name, m) for name, m in model.named_modules() if isinstance(m, kinds)]


def fake_quantize_model(model_or_clf, bits: int, scheme: str = "symmetric", granularity: str = "per_tensor",
                        include_embeddings: bool = False):
    """A NEW model (deep copy) whose every ``nn.Linear`` weight (and, optionally, every
    ``nn.Embedding`` table) is fake-quantized to ``bits`` bits; the original is left untouched.

    Per-channel uses axis 0: one scale per output neuron of a Linear, one per token row of an
    embedding table. Biases, LayerNorms and (by default) embeddings stay fp32 — as in PyTorch's
    dynamic quantization. Pass a :class:`~course_lib.models.TextClassifier` to get one back (same
    tokenizer, name suffixed with the settings), or a bare module to get a module.
    """
    bits = _check_settings(bits, scheme, granularity)
    clf, model = _split(model_or_clf)
    new = copy.deepcopy(model)
    with torch.no_grad(), _one_thread():
        for _, module in _quantized_weights(new, include_embeddings):
            module.weight.copy_(fake_quantize(module.weight, bits, scheme, granularity, axis=0))
    new.eval()
    info = {"bits": bits, "scheme": scheme, "granularity": granularity, "include_embeddings": include_embeddings,
            "kind": "fake"}
    suffix = f"fake int{bits} {scheme} {granularity.replace('_', '-')}" + (" +emb" if include_embeddings else "")
    return _rewrap(clf, new, suffix, info)


def packed_size_parts(model_or_clf, bits: int, scheme: str = "symmetric", granularity: str = "per_tensor",
                      include_embeddings: bool = False) -> dict:
    """Bytes of a ``bits``-bit model stored tightly: ``weights`` (each quantized weight packed at
    ``bits`` bits per value, rounded up to whole bytes per tensor), ``scales`` (one fp32 scale per tensor
    or per channel, plus a 1-byte zero point each when asymmetric) and ``rest`` (every other tensor of
    the state dict at its own dtype: biases, LayerNorms, unquantized embeddings). Tied tensors count once.
    """
    bits = _check_settings(bits, scheme, granularity)
    _, model = _split(model_or_clf)
    targets = {id(m.weight) for _, m in _quantized_weights(model, include_embeddings)}
    by_ptr = {}
    for name, p in model.named_parameters():
        if id(p) in targets:
            by_ptr[(p.data_ptr(), tuple(p.shape))] = p
    parts = {"weights": 0, "scales": 0, "rest": 0}
    seen = set()
    for key, t in model.state_dict(keep_vars=True).items():
        if not isinstance(t, torch.Tensor):
            continue
        ident = (t.data_ptr(), tuple(t.shape), t.dtype)
        if ident in seen:
            continue
        seen.add(ident)
        if (t.data_ptr(), tuple(t.shape)) in by_ptr and torch.is_floating_point(t):
            parts["weights"] += math.ceil(t.numel() * bits / 8)
            n_scales = t.shape[0] if granularity == "per_channel" else 1
            parts["scales"] += n_scales * (4 + (1 if scheme == "asymmetric" else 0))
        else:
            parts["rest"] += t.numel() * t.element_size()
    return parts


def packed_size_mb(model_or_clf, bits: int, scheme: str = "symmetric", granularity: str = "per_tensor",
                   include_embeddings: bool = False) -> float:
    """The true storage size in MB (10^6 bytes) of the model at ``bits`` bits: packed weights + scales
    and zero points + the fp32 rest (see :func:`packed_size_parts`). The honest size axis for 2–8 bits
    (a fake-quantized model is still stored in fp32, so its ``size_mb()`` would not shrink)."""
    return sum(packed_size_parts(model_or_clf, bits, scheme, granularity, include_embeddings).values()) / 1e6


# --------------------------------------------------------------------------- real low precision on CPU


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


def pytorch_dynamic_int8(model_or_clf):
    """PyTorch dynamic int8 quantization, exactly as the cheat sheet writes it::

        torch.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)

    Linear weights are stored as int8 (per-tensor, symmetric); activations are quantized on the fly
    for each matmul ("dynamic"); embeddings, LayerNorms and biases stay fp32. Returns a new
    classifier/module (the original is untouched). In torch ≥ 2.9 this API (``torch.ao.quantization``)
    is deprecated in favour of torchao's ``quantize_(model, Int8DynamicActivationInt8WeightConfig())``;
    the deprecation warnings are silenced here (the notebook shows them).
    """
    clf, model = _split(model_or_clf)
    model.eval()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=UserWarning, message=".*quantiz.*")
        qmodel = torch.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    return _rewrap(clf, qmodel, "PyTorch dynamic int8",
                   {"kind": "pytorch_dynamic", "dtype": "qint8", "engine": torch.backends.quantized.engine})


def cast_classifier(model_or_clf, dtype: torch.dtype):
    """A copy of the model with every parameter cast to ``dtype`` (``torch.float16`` or ``torch.bfloat16``).

    Halves the size. Whether it is faster depends on the hardware: GPUs have fast fp16/bf16 units;
    on a CPU, PyTorch often converts back and forth, so measure before you choose.
    """
    if dtype not in (torch.float16, torch.bfloat16, torch.float32):
        raise ValueError(f"dtype must be torch.float16, torch.bfloat16 or torch.float32, got {dtype}.")
    clf, model = _split(model_or_clf)
    new = copy.deepcopy(model).to(dtype).eval()
    label = str(dtype).replace("torch.", "").replace("float16", "fp16").replace("bfloat16", "bf16")
    return _rewrap(clf, new, f"{label} cast", {"kind": "cast", "dtype": str(dtype)})


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


def machine_load() -> str:
    """The 1-minute load average and core count as a sentence (every running program counts, this one
    included), or a note that the OS does not report it (Windows)."""
    getloadavg = getattr(os, "getloadavg", None)
    if getloadavg is None:
        return "load average not available on this OS"
    return f"load average {getloadavg()[0]:.1f} (1 min) on {os.cpu_count()} cores"


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


# --------------------------------------------------------------------------- bit-width sweep


def model_fingerprint(model_or_clf) -> str:
    """A short hash of the model's weights (names, shapes and values): the cache key of what is derived from it."""
    _, model = _split(model_or_clf)
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        if not isinstance(t, torch.Tensor) or t.is_quantized:
            continue
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().contiguous().cpu().view(-1).view(torch.uint8).numpy().tobytes()
                 if t.numel() else b"")
    return h.hexdigest()[:16]


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
    from tqdm.auto import tqdm

    from .evaluate import quality
    from .train import predict

    texts, labels = list(texts), [int(y) for y in labels]
    bits = [_check_settings(b, "symmetric", "per_tensor") for b in bits]
    schemes, granularities = list(schemes), list(granularities)
    for s in schemes:
        _check_settings(8, s, "per_tensor")
    for g in granularities:
        _check_settings(8, "symmetric", g)
    name = name or getattr(clf, "name", "model")
    settings = {"model": model_fingerprint(clf), "data": _texts_fingerprint(texts, labels), "bits": bits,
                "schemes": schemes, "granularities": granularities, "include_embeddings": include_embeddings,
                "version": SWEEP_VERSION}
    from .models import cache_key

    path = sweep_path(cache_key(kind="quant_sweep", **settings))
    if use_cache and path.is_file():
        stored = json.loads(path.read_text(encoding="utf-8"))
        frame = pd.DataFrame(stored["rows"])
        frame["model"] = name
        frame.attrs.update({"seconds": 0.0, "cached": True, "path": str(path)})
        return frame

    start = time.perf_counter()
    config.set_threads()
    base = predict(clf, texts, batch_size=64)
    rows = [{"bits": 32, "scheme": "fp32", "granularity": "-", **_quality_row(quality(labels, base.labels)),
             "agreement": 1.0, "packed_mb": float(clf.size_mb())}]
    combos = [(b, s, g) for s in schemes for g in granularities for b in bits]
    bar = tqdm(combos, desc=f"bit-width sweep {name}", disable=not progress, leave=False)
    for b, s, g in bar:
        bar.set_postfix(bits=b, scheme=s[:4], gran=g[4:8])
        variant = fake_quantize_model(clf, b, s, g, include_embeddings)
        pred = predict(variant, texts, batch_size=64)
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
    from .models import load_classifier

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


# --------------------------------------------------------------------------- the bit-width widget


def pick_weight(model_or_clf) -> tuple[str, torch.Tensor]:
    """A Linear weight that shows why per-channel matters: the one whose rows differ most in range
    (largest ratio of the biggest row max|w| to the median row max|w|). Returns ``(name, weight)``."""
    _, model = _split(model_or_clf)
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


def bit_width_explorer(weight, sweep: pd.DataFrame | None = None, weight_name: str = "weight",
                       initial_bits: int = 4, initial_scheme: str = "symmetric",
                       initial_granularity: str = "per_tensor", channel: int | None = None,
                       sweep_label: str = "validation messages"):
    """A bits slider (2–8) and symmetric/asymmetric and per-tensor/per-channel toggles that redraw, live:

    - left: the histogram of a real weight matrix ``weight`` (2-D) with the quantization levels over it
      (per-channel: the levels of one channel, ``channel``, default the row with the median range, over
      that row's weights, with the per-tensor levels faint for contrast);
    - right: the measured spam-F1 and accuracy drop (points below fp32) vs bits from ``sweep`` (a
      :func:`bit_width_sweep` frame, several models concatenated if you like).

    Everything is precomputed or cheap (quantizing one matrix), so a move redraws in well under 1 s.
    """
    import ipywidgets as W
    import matplotlib.pyplot as plt

    from .widgets import Explorer

    weight = torch.as_tensor(weight).detach().float()
    if weight.dim() != 2:
        raise ValueError(f"weight must be a 2-D matrix (a Linear weight), got shape {tuple(weight.shape)}.")
    row_range = weight.abs().amax(dim=1)
    if channel is None:
        channel = int(torch.argsort(row_range)[len(row_range) // 2])
    flat = weight.flatten().numpy()
    row = weight[channel].numpy()
    amax = float(np.abs(flat).max())
    # the view: the bulk of the weights (a few outliers can be 50x larger than the rest; they are counted
    # in a note, since they are what sets the per-tensor scale)
    view = min(amax, 1.5 * float(np.quantile(np.abs(flat), 0.999))) * 1.05 or 1.0
    bins = np.linspace(-view, view, 121)
    hist_all, _ = np.histogram(flat, bins=bins)
    outside = int((np.abs(flat) > view).sum())
    row_lim = float(max(np.abs(row).max(), 1e-12)) * 1.15
    row_bins = np.linspace(-row_lim, row_lim, 61)
    hist_row, _ = np.histogram(row, bins=row_bins)

    # everything a move needs, computed once: levels and error for each (bits, scheme, granularity)
    precomputed: dict = {}
    with _one_thread():
        for b, sch, gr in [(b, sch, gr) for b in range(MIN_BITS, MAX_BITS + 1) for sch in SCHEMES
                           for gr in GRANULARITIES]:
            qt = quantize_tensor(weight, b, sch, gr, axis=0)
            precomputed[(b, sch, gr)] = (qt.levels(channel if gr == "per_channel" else None),
                                         _error_stats(weight, qt))

    def stats(bits, scheme, gran):
        return precomputed[(bits, scheme, gran)]

    sweep = sweep.copy() if sweep is not None else None
    models_in = list(dict.fromkeys(sweep["model"])) if sweep is not None else []

    bits_w = W.IntSlider(value=int(initial_bits), min=MIN_BITS, max=MAX_BITS, step=1, description="bits",
                         continuous_update=True)
    bits_w.add_class("course-slider")
    scheme_w = W.ToggleButtons(options=list(SCHEMES), value=initial_scheme, description="scheme")
    scheme_w.add_class("course-toggle")
    gran_w = W.ToggleButtons(options=[("per-tensor", "per_tensor"), ("per-channel", "per_channel")],
                             value=initial_granularity, description="granularity")
    gran_w.add_class("course-toggle")
    readout = W.HTML()
    readout.add_class("course-readout")
    out = W.Output()
    out.add_class("course-plot")
    colors = plt.cm.tab10.colors

    def redraw(change=None) -> None:
        b, s, g = int(bits_w.value), scheme_w.value, gran_w.value
        levels, err = stats(b, s, g)
        lines = [f"<b>{b} bits, {s}, {g.replace('_', '-')}</b>: {len(levels)} levels, step "
                 f"{err['step']:.2e}; weight error (RMSE / RMS) {err['relative'] * 100:.1f}% "
                 f"(max {err['max_abs']:.2e})"]
        if sweep is not None:
            for m in models_in:
                hit = sweep[(sweep["model"] == m) & (sweep["bits"] == b) & (sweep["scheme"] == s)
                            & (sweep["granularity"] == g)]
                if len(hit):
                    r = hit.iloc[0]
                    lines.append(f"{m}: spam-F1 {r.f1:.3f} ({-r.f1_drop:+.1f} pts) · accuracy {r.accuracy:.3f} "
                                 f"({-r.accuracy_drop:+.1f} pts) · agreement with fp32 {r.agreement:.1%} · "
                                 f"packed {r.packed_mb:.1f} MB")
        readout.value = "<br>".join(lines)
        with out:
            out.clear_output(wait=True)
            ncols = 2 if sweep is not None else 1
            fig, axes = plt.subplots(1, ncols, figsize=(6.2 * ncols, 3.6), squeeze=False)
            fig.subplots_adjust(left=0.07, right=0.98, bottom=0.15, top=0.9, wspace=0.22)
            ax = axes[0][0]
            if g == "per_channel":
                half = row_lim
                ax.stairs(hist_row, row_bins, fill=True, color="tab:blue", alpha=0.6,
                          label=f"row {channel} ({len(row)} weights)")
                tensor_levels, _ = stats(b, s, "per_tensor")
                shown_t = tensor_levels[np.abs(tensor_levels) <= half]
                ax.vlines(shown_t, 0, 1, transform=ax.get_xaxis_transform(), colors="black", linewidth=1.2,
                          alpha=0.5, linestyles="dotted", label=f"per-tensor levels ({len(shown_t)} in view)")
                ax.set_title(f"{weight_name}, row {channel}: its own {len(levels)} levels", fontsize=9)
            else:
                half = view
                ax.stairs(hist_all, bins, fill=True, color="tab:blue", alpha=0.6,
                          label=f"{flat.size - outside:,} of {flat.size:,} weights")
                ax.set_title(f"{weight_name}: {len(levels)} levels for the whole matrix", fontsize=9)
                if outside:
                    ax.text(0.02, 0.96, f"{outside:,} weights lie outside this view,\nup to ±{amax:.2f}: they set "
                            f"the step", transform=ax.transAxes, fontsize=7, va="top")
            shown = levels[np.abs(levels) <= half]
            ax.vlines(shown, 0, 1, transform=ax.get_xaxis_transform(), colors="tab:red",
                      linewidth=0.9 if len(shown) <= 40 else 0.4, alpha=0.8,
                      label=f"quantization levels ({len(shown)} in view)")
            ax.set_xlim(-half, half)
            ax.set_xlabel("weight value")
            ax.set_ylabel("count")
            ax.legend(fontsize=7, loc="upper right")
            if sweep is not None:
                ax2 = axes[0][1]
                for i, m in enumerate(models_in):
                    part = sweep[(sweep["model"] == m) & (sweep["scheme"] == s)]
                    for gg, style, alpha in ((g, "-", 1.0), ("per_tensor" if g == "per_channel" else "per_channel",
                                                               ":", 0.45)):
                        cur = part[part["granularity"] == gg].sort_values("bits")
                        if cur.empty:
                            continue
                        tag = f"{m}, {gg.replace('_', '-')}" if len(models_in) > 1 else gg.replace("_", "-")
                        ax2.plot(cur["bits"], cur["f1_drop"], style, marker="o", color=colors[(2 * i) % 10],
                                 alpha=alpha, label=f"F1 drop, {tag}")
                        if gg == g:
                            ax2.plot(cur["bits"], cur["accuracy_drop"], "--", marker="s", markersize=3,
                                     color=colors[(2 * i + 1) % 10], alpha=0.8, label=f"accuracy drop, {tag}")
                ax2.axvline(b, color="black", linewidth=0.8)
                ax2.axhspan(-100, 2.0, color="tab:green", alpha=0.08)
                ax2.axhline(2.0, color="tab:green", linewidth=0.6, linestyle="--")
                ax2.set_yscale("symlog", linthresh=2.0)
                ax2.set_ylim(-1.0, 100.0)
                ax2.set_xticks(range(MIN_BITS, MAX_BITS + 1))
                ax2.set_xlabel("bits per weight")
                ax2.set_ylabel("drop vs fp32 (points)")
                ax2.set_title(f"measured on {sweep_label} ({s}); green: drop ≤ 2 points", fontsize=9)
                if ax2.get_legend_handles_labels()[0]:
                    ax2.legend(fontsize=6.5, loc="upper right")
                else:
                    ax2.text(0.5, 0.5, f"no {s} rows in the sweep", ha="center", transform=ax2.transAxes)
                ax2.grid(alpha=0.3)
            plt.show()
            plt.close(fig)

    for w in (bits_w, scheme_w, gran_w):
        w.observe(redraw, names="value")
    redraw()
    text = (f"Bit-width explorer: {weight_name} {tuple(weight.shape)}"
            + (f", sweep of {', '.join(models_in)}" if models_in else "")
            + " (move the slider and toggles in JupyterLab).")
    return Explorer([bits_w, scheme_w, gran_w, readout, out], text)


# --------------------------------------------------------------------------- the exercise


def _fmt(v) -> str:
    return f"{float(v):.6g}"


def check_symmetric_quantize(fn: Callable) -> str:
    """Check a learner's ``fn(x, bits, scale=None) -> (q, scale)``: symmetric per-tensor quantization.

    Expected: ``qmax = 2**(bits-1) - 1``; if ``scale`` is None, ``scale = max|x| / qmax`` (1.0 for an
    all-zero x); ``q = clamp(round(x / scale), -qmax, qmax)`` as ``torch.int8``. Returns ``"passed"`` or
    one sentence saying what is wrong (wrong scale, no rounding, no clamping, floats instead of ints,
    wrong dtype, ...).
    """
    gen = torch.Generator().manual_seed(0)
    normal = torch.randn(64, 32, generator=gen) * 0.05
    outliers = torch.cat([torch.randn(200, generator=gen) * 0.02, torch.tensor([0.9, -1.3, 2.0])])
    cases = [
        ("a random 64x32 weight matrix at 8 bits", normal, 8, None),
        ("the same matrix at 4 bits", normal, 4, None),
        ("a vector with outliers at 8 bits and a given (calibrated) scale=0.001", outliers, 8, 0.001),
        ("an all-zero tensor at 8 bits", torch.zeros(5, 3), 8, None),
    ]
    for label, x, bits, given in cases:
        qmax = 2 ** (bits - 1) - 1
        try:
            result = fn(x.clone(), bits) if given is None else fn(x.clone(), bits, scale=given)
        except Exception as exc:  # noqa: BLE001 - report any failure as feedback
            return f"On {label}, your function raised {type(exc).__name__}: {exc}"
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            return f"On {label}: return a pair (q, scale), got {type(result).__name__}."
        q, scale = result
        try:
            q = torch.as_tensor(q)
            scale_v = float(torch.as_tensor(scale).float().flatten()[0]) if torch.as_tensor(scale).numel() else float("nan")
        except Exception as exc:  # noqa: BLE001
            return f"On {label}: q must be a tensor and scale a number ({type(exc).__name__}: {exc})."
        if torch.as_tensor(scale).numel() != 1:
            return f"On {label}: scale should be one number (per-tensor), got {torch.as_tensor(scale).numel()} values."
        if tuple(q.shape) != tuple(x.shape):
            return f"On {label}: q has shape {tuple(q.shape)}, expected the shape of x, {tuple(x.shape)}."
        if not math.isfinite(scale_v) or scale_v <= 0:
            if x.abs().max() == 0:
                return (f"On {label}: scale is {scale_v} — max|x| is 0, so max|x|/qmax is 0 and x/scale is NaN. "
                        "Use scale = 1.0 (any positive number) when max|x| is 0.")
            return f"On {label}: scale must be a positive number, got {scale_v}."
        amax = float(x.abs().max())
        expected_scale = given if given is not None else (amax / qmax if amax > 0 else 1.0)
        if torch.is_floating_point(q):
            if not torch.isfinite(q).all():
                return f"On {label}: q contains NaN or inf."
            if not torch.equal(q, torch.round(q)):
                frac = q[q != torch.round(q)].flatten()[0]
                return (f"On {label}: no rounding — q holds fractions like {float(frac):.3f}. "
                        "Round to the nearest level with torch.round(x / scale).")
            return (f"On {label}: returns floats instead of ints (q has dtype {q.dtype}). "
                    "Convert the rounded values with .to(torch.int8): that is where the 4x saving comes from.")
        if given is not None and not math.isclose(scale_v, given, rel_tol=1e-6):
            return (f"On {label}: when a scale is given, use it (got scale {_fmt(scale_v)} instead of {given}); "
                    "a calibrated scale clips outliers on purpose.")
        if given is None and not math.isclose(scale_v, expected_scale, rel_tol=1e-5):
            hints = [
                (amax / 2 ** (bits - 1), f"you divided by 2^(bits-1) = {2 ** (bits - 1)}, but the largest "
                                         f"level is 2^(bits-1) - 1 = {qmax}"),
                (amax / (2**bits - 1), f"you divided by 2^bits - 1 = {2 ** bits - 1}: that is the number of "
                                       f"steps of the asymmetric (unsigned) range, not the symmetric one"),
                (float(x.max()) / qmax, "you used max(x) instead of max(|x|): a large negative weight would be clipped"),
                (float(x.max() - x.min()) / (2**bits - 1), "that is the asymmetric scale (max - min) / (2^bits - 1)"),
                (amax / 127, "you hard-coded 127: the largest level depends on bits, 2^(bits-1) - 1"),
                (qmax / amax if amax else 0.0, "the scale is upside down: scale = max|x| / qmax (float per step)"),
            ]
            for value, why in hints:
                if value and math.isclose(scale_v, value, rel_tol=1e-5):
                    return (f"On {label}: wrong scale {_fmt(scale_v)} — {why}. "
                            f"Expected max|x| / (2^(bits-1) - 1) = {_fmt(expected_scale)}.")
            return (f"On {label}: wrong scale {_fmt(scale_v)}; expected max|x| / (2^(bits-1) - 1) = "
                    f"{_fmt(expected_scale)}" + (" (and 1.0 for an all-zero tensor)." if amax == 0 else "."))
        if q.dtype == torch.uint8:
            return ("q has dtype torch.uint8, which cannot hold the negative levels: wrong dtype, use torch.int8 "
                    "for symmetric quantization.")
        if q.dtype != torch.int8:
            return (f"Wrong dtype: q is {q.dtype}; store the {bits}-bit levels as torch.int8 (one byte each) — "
                    f"{q.dtype} takes {torch.empty(0, dtype=q.dtype).element_size()} bytes per value.")
        raw = x.double() / scale_v
        expected = torch.clamp(torch.round(raw), -qmax, qmax).to(torch.int8)
        # a value within 1e-3 of a .5 tie may round either way in float32 arithmetic: not a mistake
        tie = ((raw - torch.floor(raw)) - 0.5).abs() < 1e-3
        wrong = (q != expected) & ~tie
        if not bool(wrong.any()):
            continue
        outside = raw.abs() > qmax + 0.5
        if bool((wrong & outside).any()):
            i = int(torch.nonzero(wrong & outside).flatten()[0]) if x.dim() == 1 else None
            example = (f"x/scale = {float(raw[i]):.0f} became q = {int(q[i])}" if i is not None
                       else "values beyond the range wrapped around")
            return (f"On {label}: no clamping — {example} (int8 wraps around). "
                    f"Clamp to [-{qmax}, {qmax}] with torch.clamp before converting to int8.")
        raw32 = x.float() / torch.tensor(scale_v, dtype=torch.float32)
        for cut in (torch.trunc, torch.floor):
            cut_q = torch.clamp(cut(raw32), -qmax, qmax)
            agree = (q[wrong].to(torch.float32) - cut_q[wrong]).abs() <= 1
            near = (q[wrong].to(torch.float32) == cut_q[wrong]) | ((raw32[wrong] - torch.round(raw32[wrong])).abs() < 1e-4)
            if bool(agree.all()) and float(near.float().mean()) > 0.9:
                return (f"On {label}: no rounding — converting with .to(torch.int8) (or floor) cuts the fraction "
                        "off instead of rounding to the nearest level; use torch.round(x / scale) first.")
        if int(q.abs().max()) > qmax:
            return f"On {label}: q reaches {int(q.abs().max())}, beyond ±{qmax}; clamp to [-{qmax}, {qmax}]."
        return (f"On {label}: {int(wrong.sum())} of {q.numel()} values differ from "
                "clamp(round(x / scale), -qmax, qmax).")
    return "passed"


def reference_symmetric_quantize(x: torch.Tensor, bits: int, scale=None):
    """A correct solution of the exercise (what :func:`check_symmetric_quantize` expects)."""
    qmax = 2 ** (bits - 1) - 1
    if scale is None:
        amax = float(x.abs().max())
        scale = amax / qmax if amax > 0 else 1.0
    q = torch.clamp(torch.round(x / scale), -qmax, qmax).to(torch.int8)
    return q, scale
