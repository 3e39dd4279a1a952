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

For real — :func:`pytorch_dynamic_int8` (``torch.quantization.quantize_dynamic``),
:mod:`course_lib.onnx_runtime` (ONNX Runtime int8) and :func:`cast_classifier` (fp16 / bf16).
:func:`packed_size_mb` gives the honest storage size of a k-bit model. The chapter's bit-width
sweep and tables are in :mod:`course_lib.studies.quantization`, its explorer in
:mod:`course_lib.explorers.bit_width`, its exercise in :mod:`course_lib.exercises.quantization`.
"""

from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from .config import one_thread
from .models import conv1d_to_linear, projection_layers, rewrap, unwrap

MIN_BITS, MAX_BITS = 2, 8
SCHEMES = ("symmetric", "asymmetric")
GRANULARITIES = ("per_tensor", "per_channel")


# --------------------------------------------------------------------------- from scratch


def check_settings(bits, scheme: str, granularity: str) -> int:
    """``bits`` as an int after checking it (2..8) and the scheme and granularity names; else ``ValueError``."""
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
    bits = check_settings(bits, scheme, "per_tensor")
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
    bits = check_settings(bits, scheme, granularity)
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


# --------------------------------------------------------------------------- whole models


def fake_quantize_model(model_or_clf, bits: int, scheme: str = "symmetric", granularity: str = "per_tensor",
                        include_embeddings: bool = False):
    """A NEW model (deep copy) whose every ``nn.Linear`` and transformers ``Conv1D`` weight (GPT-2's
    projections) and, optionally, every ``nn.Embedding`` table is fake-quantized to ``bits`` bits;
    the original is left untouched.

    Per-channel uses one scale per output channel: axis 0 of a Linear weight (out, in), axis 1 of a
    Conv1D weight (in, out), one per token row of an embedding table. Biases, LayerNorms and (by
    default) embeddings stay fp32 — as in PyTorch's dynamic quantization. A layer kind it cannot
    reach raises ``TypeError`` (see :func:`course_lib.models.projection_layers`). Pass a
    :class:`~course_lib.models.TextClassifier` to get one back (same tokenizer, name suffixed with the
    settings; ``meta["quantization"]["layers"]`` counts the quantized layers), or a bare module.
    """
    bits = check_settings(bits, scheme, granularity)
    clf, model = unwrap(model_or_clf)
    new = copy.deepcopy(model)
    layers = projection_layers(new, include_embeddings)
    with torch.no_grad(), one_thread():
        for _, module, axis in layers:
            module.weight.copy_(fake_quantize(module.weight, bits, scheme, granularity, axis=axis))
    new.eval()
    info = {"bits": bits, "scheme": scheme, "granularity": granularity, "include_embeddings": include_embeddings,
            "kind": "fake", "layers": len(layers)}
    suffix = f"fake int{bits} {scheme} {granularity.replace('_', '-')}" + (" +emb" if include_embeddings else "")
    return rewrap(clf, new, suffix, info)


def packed_size_parts(model_or_clf, bits: int, scheme: str = "symmetric", granularity: str = "per_tensor",
                      include_embeddings: bool = False) -> dict:
    """Bytes of a ``bits``-bit model stored tightly: ``weights`` (each quantized weight packed at
    ``bits`` bits per value, rounded up to whole bytes per tensor), ``scales`` (one fp32 scale per tensor
    or per channel, plus a 1-byte zero point each when asymmetric) and ``rest`` (every other tensor of
    the state dict at its own dtype: biases, LayerNorms, unquantized embeddings). Tied tensors count once.
    """
    bits = check_settings(bits, scheme, granularity)
    _, model = unwrap(model_or_clf)
    axes = {id(m.weight): axis for _, m, axis in projection_layers(model, include_embeddings)}
    by_ptr = {}
    for name, p in model.named_parameters():
        if id(p) in axes:
            by_ptr[(p.data_ptr(), tuple(p.shape))] = axes[id(p)]
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
            n_scales = t.shape[by_ptr[(t.data_ptr(), tuple(t.shape))]] if granularity == "per_channel" else 1
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


def pytorch_dynamic_int8(model_or_clf):
    """PyTorch dynamic int8 quantization, exactly as the cheat sheet writes it::

        torch.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)

    Linear weights are stored as int8 (per-tensor, symmetric); activations are quantized on the fly
    for each matmul ("dynamic"); embeddings, LayerNorms and biases stay fp32. PyTorch's dynamic
    quantization only knows ``nn.Linear``: GPT-2's ``Conv1D`` projections are first converted to the
    equivalent ``nn.Linear`` (:func:`course_lib.models.conv1d_to_linear`), so they are int8 too;
    ``meta["quantization"]`` says how many (``converted_conv1d``) and how many layers are int8
    (``layers``). Works on a deep copy: the original's weights and train/eval mode are untouched.
    Other layer kinds with weights raise ``TypeError``. In torch ≥ 2.9 this API (``torch.ao.quantization``)
    is deprecated in favour of torchao's ``quantize_(model, Int8DynamicActivationInt8WeightConfig())``;
    the deprecation warnings are silenced here (the notebook shows them).
    """
    clf, model = unwrap(model_or_clf)
    projection_layers(model)  # refuses layer kinds that would silently stay fp32
    work = copy.deepcopy(model).eval()
    converted = conv1d_to_linear(work)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=UserWarning, message=".*quantiz.*")
        qmodel = torch.quantization.quantize_dynamic(work, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
    left = [name for name, m in qmodel.named_modules() if type(m) is torch.nn.Linear]
    if left:
        raise RuntimeError(f"PyTorch dynamic quantization left {len(left)} Linear layer(s) in fp32: {left[:3]}.")
    layers = sum(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in qmodel.modules())
    return rewrap(clf, qmodel, "PyTorch dynamic int8",
                   {"kind": "pytorch_dynamic", "dtype": "qint8", "engine": torch.backends.quantized.engine,
                    "layers": layers, "converted_conv1d": converted})


def cast_classifier(model_or_clf, dtype: torch.dtype):
    """A copy of the model with every parameter cast to ``dtype`` (``torch.float16`` or ``torch.bfloat16``).

    Halves the size. Whether it is faster depends on the hardware: GPUs have fast fp16/bf16 units;
    on a CPU, PyTorch often converts back and forth, so measure before you choose.
    """
    if dtype not in (torch.float16, torch.bfloat16, torch.float32):
        raise ValueError(f"dtype must be torch.float16, torch.bfloat16 or torch.float32, got {dtype}.")
    clf, model = unwrap(model_or_clf)
    new = copy.deepcopy(model).to(dtype).eval()
    label = str(dtype).replace("torch.", "").replace("float16", "fp16").replace("bfloat16", "bf16")
    return rewrap(clf, new, f"{label} cast", {"kind": "cast", "dtype": str(dtype)})
