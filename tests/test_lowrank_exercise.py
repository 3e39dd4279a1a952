"""Chapter 05's exercise checkers: the reference passes, a stub is 'not written yet', each mistake is named."""

from __future__ import annotations

import torch

from course_lib.exercises import lowrank as ex


def _pair(layer, rank, first_w, second_w, bias_first=False, bias_second=True):
    first = torch.nn.Linear(first_w.shape[1], first_w.shape[0], bias=bias_first)
    second = torch.nn.Linear(second_w.shape[1], second_w.shape[0], bias=bias_second)
    with torch.no_grad():
        first.weight.copy_(first_w)
        second.weight.copy_(second_w)
        if bias_second:
            second.bias.copy_(layer.bias)
    return torch.nn.Sequential(first, second)


def _svd(layer):
    return torch.linalg.svd(layer.weight.detach(), full_matrices=False)


def test_reference_and_sqrt_split_pass():
    assert ex.check_factorize_linear(ex.reference_factorize_linear) == "passed"

    def sqrt_split(layer, rank):
        u, s, vh = _svd(layer)
        return _pair(layer, rank, s[:rank, None].sqrt() * vh[:rank], u[:, :rank] * s[:rank].sqrt())

    assert ex.check_factorize_linear(sqrt_split) == "passed"
    assert ex.check_break_even_rank(ex.reference_break_even_rank) == "passed"


def test_stubs_and_errors():
    def stub(*args):
        raise NotImplementedError

    assert ex.check_factorize_linear(stub).startswith("not written yet")
    assert ex.check_break_even_rank(stub).startswith("not written yet")
    assert "raised ZeroDivisionError" in ex.check_break_even_rank(lambda m, n: 1 // 0)


def test_factorize_mistakes_are_named():
    def sigma_twice(layer, rank):
        u, s, vh = _svd(layer)
        return _pair(layer, rank, s[:rank, None] * vh[:rank], u[:, :rank] * s[:rank])

    def no_sigma(layer, rank):
        u, s, vh = _svd(layer)
        return _pair(layer, rank, vh[:rank], u[:, :rank])

    def smallest(layer, rank):
        u, s, vh = _svd(layer)
        return _pair(layer, rank, vh[-rank:], u[:, -rank:] * s[-rank:])

    def transposed(layer, rank):  # U as the first layer: fits only when the layer is square
        u, s, vh = _svd(layer)
        return _pair(layer, rank, u[:, :rank].T, vh[:rank].T * s[:rank])

    def swapped_shapes(layer, rank):
        first = torch.nn.Linear(layer.out_features, rank, bias=False)
        second = torch.nn.Linear(rank, layer.in_features)
        return torch.nn.Sequential(first, second)

    def bias_first(layer, rank):
        u, s, vh = _svd(layer)
        pair = _pair(layer, rank, vh[:rank], u[:, :rank] * s[:rank], bias_first=True)
        return pair

    def no_bias(layer, rank):
        u, s, vh = _svd(layer)
        return _pair(layer, rank, vh[:rank], u[:, :rank] * s[:rank], bias_second=False)

    def one_more(layer, rank):
        u, s, vh = _svd(layer)
        return _pair(layer, rank + 1, vh[:rank + 1], u[:, :rank + 1] * s[:rank + 1])

    assert "Σ is applied twice" in ex.check_factorize_linear(sigma_twice)
    assert "Σ is missing" in ex.check_factorize_linear(no_sigma)
    assert "smallest singular values" in ex.check_factorize_linear(smallest)
    message = ex.check_factorize_linear(transposed)
    assert "transpose" in message, message
    assert "transpose" in ex.check_factorize_linear(swapped_shapes)
    assert "first layer has a bias" in ex.check_factorize_linear(bias_first)
    assert "no bias" in ex.check_factorize_linear(no_bias)
    assert "off by one" in ex.check_factorize_linear(one_more)
    assert "Sequential" in ex.check_factorize_linear(lambda layer, rank: layer)


def test_break_even_mistakes_are_named():
    assert "one too high" in ex.check_break_even_rank(lambda m, n: m * n // (m + n) + 1)
    assert "one too low" in ex.check_break_even_rank(lambda m, n: -(-m * n // (m + n)) - 1)
    assert "square layer only" in ex.check_break_even_rank(lambda m, n: min(m, n) // 2)
    assert "fraction" in ex.check_break_even_rank(lambda m, n: m * n / (m + n))
    assert ex.check_break_even_rank(lambda m, n: float(m * n // (m + n))) == "passed"  # 192.0 is a whole number
    other = ex.check_break_even_rank(lambda m, n: 1)
    assert other.startswith("not yet") and "384×384" in other
