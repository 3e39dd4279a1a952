"""Chapter 03's new exercises: asymmetric scale and zero point, and the int8 matrix multiply (int32
accumulation and requantization), checked against course_lib.quantize."""

import pytest
import torch

from course_lib import quantize
from course_lib.exercises import quantization as exercise


def _stub(*args, **kwargs):
    raise NotImplementedError


# --------------------------------------------------------------------------- asymmetric scale and zero point


def test_asymmetric_reference_matches_the_library_and_passes():
    x = torch.tensor([0.1, 0.5, 2.0, 0.7])
    qt = quantize.quantize_tensor(x, 8, scheme="asymmetric")
    assert exercise.reference_asymmetric_qparams(x, 8) == pytest.approx((float(qt.scale), int(qt.zero_point)))
    assert exercise.check_asymmetric_qparams(exercise.reference_asymmetric_qparams) == "passed"


def test_asymmetric_stub_is_not_written_yet():
    assert exercise.check_asymmetric_qparams(_stub).startswith("not written yet")


@pytest.mark.parametrize("index", range(len(exercise.ASYMMETRIC_MISTAKES)))
def test_each_asymmetric_mistake_is_named(index):
    description, wrong = exercise.ASYMMETRIC_MISTAKES[index]
    assert exercise.check_asymmetric_qparams(wrong) == f"not yet: {description}."


def test_asymmetric_unrounded_zero_point_and_empty_range():
    def unrounded(x, bits):
        s, _ = exercise.reference_asymmetric_qparams(x, bits)
        return s, -min(float(x.min()), 0.0) / s

    def no_empty_range(x, bits):
        lo, hi = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
        s = (hi - lo) / (2**bits - 1)
        return s, round(-lo / s)

    assert "not a whole number" in exercise.check_asymmetric_qparams(unrounded)
    message = exercise.check_asymmetric_qparams(no_empty_range)
    assert "ZeroDivisionError" in message and "scale = 1.0" in message


# --------------------------------------------------------------------------- int8 matrix multiply


def _mm(acc_dtype=torch.int32, transpose=True, factor=lambda sx, sw, sy: sx * sw / sy, clamp=True, rnd=True):
    def fn(qx, sx, qw, sw, sy):
        w = qw.T if transpose else qw
        acc = qx.to(acc_dtype) @ w.to(acc_dtype)
        y = acc.double() * factor(sx, sw, sy)
        y = torch.round(y) if rnd else y
        y = torch.clamp(y, -127, 127) if clamp else y.to(torch.int64)
        return acc, y.to(torch.int8)
    return fn


def test_int8_matmul_reference_passes_and_agrees_with_dequantized_floats():
    assert exercise.check_int8_matmul(exercise.reference_int8_matmul) == "passed"
    assert exercise.check_int8_matmul(_mm()) == "passed"
    x, w = torch.randn(3, 16), torch.randn(5, 16)
    qx, qw = quantize.quantize_tensor(x, 8), quantize.quantize_tensor(w, 8)
    acc, _ = exercise.reference_int8_matmul(qx.values, float(qx.scale), qw.values, float(qw.scale), 1.0)
    assert acc.dtype == torch.int32
    assert torch.allclose(acc.double() * float(qx.scale) * float(qw.scale),
                          (quantize.dequantize(qx) @ quantize.dequantize(qw).T).double(), rtol=1e-5, atol=1e-5)


def test_int8_matmul_stub_is_not_written_yet():
    assert exercise.check_int8_matmul(_stub).startswith("not written yet")


@pytest.mark.parametrize("fn, words", [
    (_mm(acc_dtype=torch.int8), "overflowed"),
    (_mm(acc_dtype=torch.float32), "integer arithmetic"),
    (_mm(acc_dtype=torch.int64), "accumulate in int32"),
    (_mm(transpose=False), "q_x @ q_w.T"),
    (_mm(clamp=False), "no clamping"),
    (_mm(rnd=False), "no rounding"),
    (_mm(factor=lambda sx, sw, sy: sx * sw * sy), "you multiplied by s_y"),
    (_mm(factor=lambda sx, sw, sy: 1 / sy), "input scales are missing"),
    (_mm(factor=lambda sx, sw, sy: sx * sw), "output scale is missing"),
])
def test_int8_matmul_mistakes_are_named(fn, words):
    message = exercise.check_int8_matmul(fn)
    assert words in message, message
    assert message != "passed"
