"""Chapter 03's exercises, each checked against :mod:`course_lib.quantize`.

- :func:`check_symmetric_quantize`: the learner's ``fn(x, bits, scale=None) -> (q, scale)`` (symmetric
  per-tensor quantization) on a weight matrix at 8 and 4 bits, on outliers with a given scale and on an
  all-zero tensor; names the mistake: the scale (with the usual wrong formulas recognised), the rounding,
  the clamping, the dtype.
- :func:`check_asymmetric_qparams`: ``fn(x, bits) -> (scale, zero_point)`` for asymmetric per-tensor
  quantization, against :func:`course_lib.quantize.quantize_tensor` (``scheme="asymmetric"``); names a range
  that does not include 0, a wrong number of steps, a zero point of the wrong sign or not rounded.
- :func:`check_int8_matmul`: ``fn(q_x, s_x, q_w, s_w, s_y) -> (acc, q_y)``, the integer arithmetic of an int8
  Linear layer: int32 accumulation and requantization to the output's scale; names an int8 accumulator that
  overflowed, a missing transpose, clamp or rounding, and wrong requantization factors.

``reference_*`` functions are correct solutions.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from .. import quantize
from .runner import PASSED, name_mistake, run_cases


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
    outputs = run_cases(fn, cases, _call, what="your quantization", inspect=_inspect,
                        where=lambda case: f"On {case[0]}, ")
    return outputs if isinstance(outputs, str) else PASSED


def _call(fn: Callable, case):
    _, x, bits, given = case
    return fn(x.clone(), bits) if given is None else fn(x.clone(), bits, scale=given)


def _inspect(case, result) -> str | None:
    """What is wrong with the learner's ``(q, scale)`` on one case (the first problem found), or None."""
    label, x, bits, given = case
    qmax = 2 ** (bits - 1) - 1
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
        return None
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
    return None


def reference_symmetric_quantize(x: torch.Tensor, bits: int, scale=None):
    """A correct solution of the exercise (what :func:`check_symmetric_quantize` expects)."""
    qmax = 2 ** (bits - 1) - 1
    if scale is None:
        amax = float(x.abs().max())
        scale = amax / qmax if amax > 0 else 1.0
    q = torch.clamp(torch.round(x / scale), -qmax, qmax).to(torch.int8)
    return q, scale


# --------------------------------------------------------------------------- asymmetric scale and zero point


def reference_asymmetric_qparams(x: torch.Tensor, bits: int):
    """``(scale, zero_point)`` of asymmetric per-tensor quantization, as :func:`course_lib.quantize.quantize_tensor`
    computes them: the range [min(x), max(x)] stretched to include 0, ``scale = (hi - lo) / (2**bits - 1)``
    (1.0 when the range is empty), ``zero_point = round(-lo / scale)`` (an int in [0, 2**bits - 1])."""
    qmax = 2**bits - 1
    lo, hi = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
    scale = (hi - lo) / qmax if hi > lo else 1.0
    return scale, int(min(max(round(-lo / scale), 0), qmax))


def _library_qparams(x, bits):
    qt = quantize.quantize_tensor(x, bits, scheme="asymmetric")
    return float(qt.scale), int(qt.zero_point)


def _asym_cases():
    gen = torch.Generator().manual_seed(3)
    relu = torch.relu(torch.randn(40, 16, generator=gen)) * 0.7 + 0.05  # all positive, as after a ReLU (min > 0)
    mixed = torch.randn(300, generator=gen) * 0.4 + 0.3                 # lopsided, crosses 0
    negative = -torch.rand(8, 8, generator=gen) * 2.0 - 0.5             # all negative
    return [("activations after a ReLU (all positive, min 0.05) at 8 bits", relu, 8),
            ("a lopsided tensor that crosses 0 at 8 bits", mixed, 8),
            ("the same tensor at 4 bits", mixed, 4),
            ("an all-negative tensor at 8 bits", negative, 8),
            ("an all-zero tensor at 8 bits", torch.zeros(4, 4), 8)]


def _asym_no_zero(x, bits):  # min/max of x without stretching the range to include 0
    lo, hi = float(x.min()), float(x.max())
    s = (hi - lo) / (2**bits - 1) if hi > lo else 1.0
    return s, int(round(-lo / s))


def _asym_steps(divisor):
    def wrong(x, bits):
        lo, hi = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
        s = (hi - lo) / divisor(bits) if hi > lo else 1.0
        return s, int(min(max(round(-lo / s), 0), 2**bits - 1))
    return wrong


def _asym_zp_sign(x, bits):
    s, z = reference_asymmetric_qparams(x, bits)
    lo = min(float(x.min()), 0.0)
    return s, int(round(lo / s))


def _asym_symmetric(x, bits):
    amax = float(x.abs().max())
    return (amax / (2 ** (bits - 1) - 1) if amax else 1.0), 0


def _asym_zp_from_max(x, bits):
    s, _ = reference_asymmetric_qparams(x, bits)
    return s, int(round(max(float(x.max()), 0.0) / s))


ASYMMETRIC_MISTAKES = [
    ("the range must include 0: use lo = min(min(x), 0) and hi = max(max(x), 0), otherwise 0.0 (padding, a ReLU's "
     "zeros) has no exact integer", _asym_no_zero),
    ("you divided by 2^bits (256 at 8 bits); the range [0, 2^bits - 1] has 2^bits - 1 steps: scale = (hi - lo) / (2^bits - 1)",
     _asym_steps(lambda b: 2**b)),
    ("you divided by 2^(bits-1) - 1, the symmetric qmax: the asymmetric range [0, 2^bits - 1] has 2^bits - 1 steps",
     _asym_steps(lambda b: 2 ** (b - 1) - 1)),
    ("the zero point has the wrong sign: it is the integer that stands for 0.0, zero_point = round(-lo / scale) "
     "(0 - lo is how far 0.0 is above the bottom of the range)", _asym_zp_sign),
    ("that is the symmetric scale max|x| / (2^(bits-1) - 1) with zero point 0; asymmetric uses the range: "
     "scale = (hi - lo) / (2^bits - 1), zero_point = round(-lo / scale)", _asym_symmetric),
    ("the zero point is counted from the top of the range: zero_point = round(-lo / scale), from the bottom",
     _asym_zp_from_max),
]


def _asym_inspect(case, out) -> str | None:
    label, x, bits = case
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        return f"On {label}: return a pair (scale, zero_point), got {type(out).__name__}."
    scale, zp = out
    try:
        scale_v, zp_v = float(torch.as_tensor(scale)), float(torch.as_tensor(zp))
    except Exception as exc:  # noqa: BLE001
        return f"On {label}: scale and zero_point must each be one number ({type(exc).__name__}: {exc})."
    if not math.isfinite(scale_v) or scale_v <= 0:
        if float(x.abs().max()) == 0:
            return (f"On {label}: scale is {scale_v} — the range is empty (hi = lo = 0), so the formula gives 0 "
                    "and x / scale is NaN: use scale = 1.0 there.")
        return f"On {label}: scale must be a positive number, got {scale_v}."
    if not math.isfinite(zp_v) or zp_v != round(zp_v):
        return (f"On {label}: the zero point {zp_v:.4g} is not a whole number: round it (round(-lo / scale)) — it is "
                "the integer that stands for 0.0, so 0.0 is stored exactly.")
    return None


def _asym_call(fn: Callable, case):
    _, x, bits = case
    try:
        return fn(x.clone(), bits)
    except ZeroDivisionError as exc:
        raise ZeroDivisionError(f"{exc} — the range is empty (hi = lo = 0 for an all-zero tensor): "
                                "use scale = 1.0 there") from exc


def check_asymmetric_qparams(fn: Callable) -> str:
    """Check a learner's ``fn(x, bits) -> (scale, zero_point)`` against :func:`course_lib.quantize.quantize_tensor`
    with ``scheme="asymmetric"`` (per tensor). Returns ``"passed"`` or one sentence naming the mistake."""
    cases = _asym_cases()
    outputs = run_cases(fn, cases, _asym_call, what="your scale and zero point",
                        inspect=_asym_inspect, where=lambda case: f"On {case[0]}, ")
    if isinstance(outputs, str):
        return outputs
    got = [(float(torch.as_tensor(s)), int(round(float(torch.as_tensor(z))))) for s, z in outputs]
    want = [_library_qparams(x, bits) for _, x, bits in cases]

    def close(a, b):
        return all(math.isclose(sa, sb, rel_tol=1e-5) and za == zb for (sa, za), (sb, zb) in zip(a, b))

    if close(got, want):
        return PASSED
    named = name_mistake(got, [(x, bits) for _, x, bits in cases], ASYMMETRIC_MISTAKES, close)
    if named:
        return named
    for (label, _, _), (sg, zg), (sw, zw) in zip(cases, got, want):
        if not (math.isclose(sg, sw, rel_tol=1e-5) and zg == zw):
            return (f"not yet: on {label} the library gives scale {sw:.6g}, zero point {zw}; yours gives "
                    f"scale {sg:.6g}, zero point {zg}.")
    return PASSED


# --------------------------------------------------------------------------- int8 matrix multiply


def reference_int8_matmul(q_x: torch.Tensor, s_x: float, q_w: torch.Tensor, s_w: float, s_y: float):
    """The integer arithmetic of an int8 Linear layer (symmetric, zero points 0), without its bias.

    ``q_x``: int8 (batch, in), scale ``s_x``; ``q_w``: int8 (out, in) as ``nn.Linear`` stores it, scale ``s_w``;
    ``s_y``: the output's scale. Returns ``(acc, q_y)``: ``acc = q_x @ q_wᵀ`` accumulated in int32 (batch, out),
    and ``q_y = clamp(round(acc · s_x·s_w / s_y), -127, 127)`` as int8 — the requantized output.
    """
    acc = q_x.to(torch.int32) @ q_w.to(torch.int32).T
    q_y = torch.clamp(torch.round(acc.to(torch.float64) * (s_x * s_w / s_y)), -127, 127).to(torch.int8)
    return acc, q_y


def _mm_cases():
    """(label, q_x, s_x, q_w, s_w, s_y): float tensors quantized with :func:`course_lib.quantize.quantize_tensor`."""
    gen = torch.Generator().manual_seed(5)
    cases = []
    for label, batch, n_in, n_out, clip in [
            ("a batch of 4 rows through a 64 → 24 layer", 4, 64, 24, 1.0),
            ("a batch of 3 rows through a 384 → 16 layer (sums of 384 products)", 3, 384, 16, 1.0),
            ("an output scale that clips the largest outputs (a calibrated s_y)", 5, 48, 12, 0.5)]:
        x = torch.randn(batch, n_in, generator=gen)
        w = torch.randn(n_out, n_in, generator=gen) * 0.1
        qx, qw = quantize.quantize_tensor(x, 8), quantize.quantize_tensor(w, 8)
        y = quantize.dequantize(qx) @ quantize.dequantize(qw).T  # the float product of what the integers stand for
        s_y = clip * float(y.abs().max()) / 127
        cases.append((label, qx.values, float(qx.scale), qw.values, float(qw.scale), s_y))
    return cases


def _mm_library(case):
    """The requantized output computed in float from the library's dequantized tensors."""
    _, qx, sx, qw, sw, sy = case
    y = quantize.dequantize(qx, sx).double() @ quantize.dequantize(qw, sw).double().T
    return torch.clamp(torch.round(y / sy), -127, 127).to(torch.int8)


def _mm_inspect(case, out) -> str | None:
    label, qx, sx, qw, sw, sy = case
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        return f"On {label}: return a pair (acc, q_y), got {type(out).__name__}."
    acc, q_y = (torch.as_tensor(v) for v in out)
    want_shape = (qx.shape[0], qw.shape[0])
    for name, t in (("acc", acc), ("q_y", q_y)):
        if tuple(t.shape) != want_shape:
            hint = " (did you forget to transpose the weight? nn.Linear stores it as (out, in): q_x @ q_w.T)" \
                if tuple(t.shape) == want_shape[::-1] else ""
            return f"On {label}: {name} has shape {tuple(t.shape)}, expected (batch, out) = {want_shape}{hint}."
    exact = qx.to(torch.int64) @ qw.to(torch.int64).T
    if torch.is_floating_point(acc):
        return (f"On {label}: acc is {acc.dtype}: the point of int8 is integer arithmetic — multiply the int8 values "
                "as int32 (q_x.to(torch.int32) @ q_w.to(torch.int32).T) and keep the sum as int32.")
    if not torch.equal(acc.to(torch.int64), exact):
        if acc.dtype in (torch.int8, torch.int16, torch.uint8):
            return (f"On {label}: the accumulator overflowed: acc holds {acc.dtype} values that wrapped around "
                    f"(largest true sum {int(exact.abs().max()):,}; int8 holds ±127). Convert to int32 before the "
                    "matrix multiply: q_x.to(torch.int32) @ q_w.to(torch.int32).T.")
        return (f"On {label}: acc differs from the exact integer sum q_x @ q_wᵀ (the int8 values multiplied as "
                "integers, no scales yet).")
    if acc.dtype in (torch.int8, torch.int16, torch.uint8):
        return f"On {label}: acc is {acc.dtype}; keep the accumulator as torch.int32 (the sums exceed int8's range)."
    if acc.dtype == torch.int64:
        return (f"On {label}: acc is int64; int8 kernels accumulate in int32 (enough for these sums), "
                "so use .to(torch.int32).")
    if torch.is_floating_point(q_y):
        if not torch.equal(q_y, torch.round(q_y)):
            return f"On {label}: q_y is not rounded: torch.round(acc * (s_x * s_w / s_y)) before converting."
        return f"On {label}: q_y is {q_y.dtype}: convert the requantized output with .to(torch.int8)."
    if q_y.dtype != torch.int8:
        return f"On {label}: q_y is {q_y.dtype}; the requantized output is int8."
    return None


def _mm_variants(case):
    """What known wrong requantizations give on one case, as (description, q_y) pairs."""
    _, qx, sx, qw, sw, sy = case
    acc = (qx.to(torch.int64) @ qw.to(torch.int64).T).double()
    m = sx * sw / sy

    def wrap(v):  # what .to(torch.int8) does to an unclamped integer: wraps around
        return ((v.to(torch.int64) + 128) % 256 - 128).to(torch.int8)

    return [
        ("no clamping: outputs beyond ±127 wrapped around when converted to int8; clamp to [-127, 127] first",
         wrap(torch.round(acc * m))),
        ("no rounding: .to(torch.int8) cuts the fraction off; round to the nearest level with torch.round first",
         torch.clamp(torch.trunc(acc * m), -127, 127).to(torch.int8)),
        ("the requantization factor is s_x · s_w / s_y: acc · s_x · s_w is the float output, dividing by s_y "
         "puts it on the output's grid (you multiplied by s_y)",
         torch.clamp(torch.round(acc * sx * sw * sy), -127, 127).to(torch.int8)),
        ("the input scales are missing: the float output is acc · s_x · s_w, then divide by s_y",
         torch.clamp(torch.round(acc / sy), -127, 127).to(torch.int8)),
        ("the output scale is missing: q_y = round(acc · s_x · s_w / s_y) — without / s_y you return the float "
         "output rounded to whole numbers",
         torch.clamp(torch.round(acc * sx * sw), -127, 127).to(torch.int8)),
    ]


def check_int8_matmul(fn: Callable) -> str:
    """Check a learner's ``fn(q_x, s_x, q_w, s_w, s_y) -> (acc, q_y)`` (see :func:`reference_int8_matmul`):
    ``acc`` must be the exact int32 sum, ``q_y`` the output requantized with ``s_y``, equal to the float product
    of the library's dequantized tensors (:func:`course_lib.quantize.dequantize`) rounded to the output's grid.
    Returns ``"passed"`` or one sentence naming the mistake."""
    cases = _mm_cases()
    outputs = run_cases(fn, cases, _mm_call, what="your int8 matrix multiply", inspect=_mm_inspect,
                        where=lambda case: f"On {case[0]}, ")
    if isinstance(outputs, str):
        return outputs
    for case, (_, q_y) in zip(cases, outputs):
        q_y = torch.as_tensor(q_y)
        want = _mm_library(case)
        off = (q_y.to(torch.int32) - want.to(torch.int32)).abs()
        if int(off.max()) == 0:
            continue
        for description, wrong in _mm_variants(case):
            if torch.equal(q_y, wrong):
                return f"On {case[0]}: not yet: {description}."
        _, qx, sx, qw, sw, sy = case
        raw = (qx.to(torch.int64) @ qw.to(torch.int64).T).double() * (sx * sw / sy)
        if bool((raw[off > 0].abs() > 127.5).all()):
            return (f"On {case[0]}: not yet: no clamping: the outputs beyond ±127 came out wrong when converted to "
                    "int8; clamp to [-127, 127] first.")
        # float64 vs float32 arithmetic may round an exact .5 tie the other way: one level, rarely
        if int(off.max()) <= 1 and float((off > 0).float().mean()) < 0.02:
            continue
        return (f"On {case[0]}: not yet: {int((off > 0).sum())} of {off.numel()} outputs differ from "
                "clamp(round(acc · s_x · s_w / s_y), -127, 127).")
    return PASSED


def _mm_call(fn: Callable, case):
    _, qx, sx, qw, sw, sy = case
    try:
        return fn(qx.clone(), sx, qw.clone(), sw, sy)
    except RuntimeError as exc:
        if "shape" in str(exc) or "size" in str(exc):
            raise RuntimeError(f"{exc} — a shape mismatch: nn.Linear stores its weight as (out, in), so the product "
                               "is q_x @ q_w.T") from exc
        raise
