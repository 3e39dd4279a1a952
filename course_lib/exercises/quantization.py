"""Chapter 03's exercise: symmetric per-tensor quantization. :func:`check_symmetric_quantize`
runs the learner's ``fn(x, bits, scale=None) -> (q, scale)`` on a weight matrix at 8 and 4 bits,
on outliers with a given scale and on an all-zero tensor, and says ``"passed"`` or names the
mistake: the scale (with the usual wrong formulas recognised), the rounding, the clamping, the
dtype. :func:`reference_symmetric_quantize` is a correct solution.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from .runner import PASSED, run_cases


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
