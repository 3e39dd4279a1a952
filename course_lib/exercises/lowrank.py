"""Chapter 05's exercise: factorize one Linear layer with ``torch.linalg.svd``, then find its break-even rank.

:func:`check_factorize_linear` runs the learner's ``fn(layer, rank) -> nn.Sequential`` on a wide, a tall and a
square layer and says ``"passed"`` or names the mistake: the structure (two Linear layers, in → rank → out),
a missing transpose, Σ applied twice or not at all, the smallest singular values kept instead of the largest,
the bias on the first layer or lost. Any split of Σ between the layers whose product is the truncated SVD
passes. :func:`check_break_even_rank` checks ``fn(m, n) -> int``: the largest rank at which the pair (with
the bias) has no more parameters than the layer, and names an off-by-one, a float, or the square-only rule.
:func:`reference_factorize_linear` and :func:`reference_break_even_rank` are correct solutions.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from .runner import PASSED, name_mistake, run_cases


def reference_factorize_linear(layer: torch.nn.Linear, rank: int) -> torch.nn.Sequential:
    """W (out × in) ≈ (U_r Σ_r)(V_rᵀ): first Linear in → rank (V_rᵀ, no bias), second rank → out (U_r Σ_r, bias)."""
    u, s, vh = torch.linalg.svd(layer.weight.detach(), full_matrices=False)
    first = torch.nn.Linear(layer.in_features, rank, bias=False)
    second = torch.nn.Linear(rank, layer.out_features, bias=layer.bias is not None)
    with torch.no_grad():
        first.weight.copy_(vh[:rank])
        second.weight.copy_(u[:, :rank] * s[:rank])
        if layer.bias is not None:
            second.bias.copy_(layer.bias)
    return torch.nn.Sequential(first, second)


def reference_break_even_rank(m: int, n: int) -> int:
    """Largest r with r(m + n) + m <= mn + m (the pair with its bias is not larger than the m×n layer)."""
    return (m * n) // (m + n)


# --------------------------------------------------------------------------- factorize_linear


def _layers():
    torch.manual_seed(0)
    return [("a wide 24×40 layer (out × in) at rank 5", torch.nn.Linear(40, 24), 5),
            ("a tall 40×16 layer at rank 3", torch.nn.Linear(16, 40), 3),
            ("a square 20×20 layer at rank 6", torch.nn.Linear(20, 20), 6)]


def _svd(layer):
    return torch.linalg.svd(layer.weight.detach().double(), full_matrices=False)


# Known wrong versions: each returns the product W₂W₁ it would build (out × in), or None when the shapes
# would not even fit (those are named from the shapes instead).
def _sigma_twice(layer, r):
    u, s, vh = _svd(layer)
    return (u[:, :r] * s[:r] ** 2) @ vh[:r]


def _no_sigma(layer, r):
    u, s, vh = _svd(layer)
    return u[:, :r] @ vh[:r]


def _smallest(layer, r):
    u, s, vh = _svd(layer)
    return (u[:, -r:] * s[-r:]) @ vh[-r:]


def _transposed(layer, r):  # the truncated SVD of Wᵀ put back as it is: only fits a square layer
    u, s, vh = _svd(layer)
    return ((u[:, :r] * s[:r]) @ vh[:r]).T


MISTAKES = [
    ("Σ is applied twice (W₂W₁ = U Σ² Vᵀ): put Σ in one of the two layers (or √Σ in each), not in both", _sigma_twice),
    ("Σ is missing (W₂W₁ = U Vᵀ): multiply U_r by Σ_r (u[:, :rank] * s[:rank]) for the second layer", _no_sigma),
    ("you kept the smallest singular values: torch.linalg.svd returns them in descending order, so keep the first "
     "`rank` (u[:, :rank], s[:rank], vh[:rank])", _smallest),
    ("the product is Wᵀ, not W — you forgot a transpose: nn.Linear stores its weight as (out, in), so the first "
     "layer's weight is vh[:rank] (rank × in) and the second's is U_r Σ_r (out × rank)", _transposed),
]


def check_factorize_linear(fn: Callable) -> str:
    """Check a learner's ``fn(layer, rank) -> nn.Sequential`` (see the module docstring). Returns ``"passed"`` or
    one sentence naming the mistake."""
    cases = _layers()
    outputs = run_cases(fn, cases, _call, what="your factorization", inspect=_inspect,
                        where=lambda case: f"On {case[0]}, ")
    if isinstance(outputs, str):
        return outputs
    for (label, layer, r), pair in zip(cases, outputs):
        got = pair[1].weight.detach().double() @ pair[0].weight.detach().double()
        u, s, vh = _svd(layer)
        best = (u[:, :r] * s[:r]) @ vh[:r]
        if _close(got, best):
            continue
        named = name_mistake([got], [(layer, r)], MISTAKES, lambda a, b: b[0] is not None and _close(a[0], b[0]))
        if named:
            return f"On {label}: {named}"
        rel = float(torch.linalg.matrix_norm(got - best) / torch.linalg.matrix_norm(best))
        return (f"not yet: on {label}, W₂W₁ differs from the truncated SVD (relative error {rel:.2g}); the first layer "
                "should hold V_rᵀ = vh[:rank], the second U_r Σ_r = u[:, :rank] * s[:rank].")
    return PASSED


def _call(fn: Callable, case):
    """The learner's pair for one case; a shape error gets the usual cause added (a transpose)."""
    _, layer, rank = case
    try:
        return fn(layer, rank)
    except RuntimeError as exc:
        if any(word in str(exc) for word in ("size", "shape", "match")):
            raise RuntimeError(f"{exc} — a shape mismatch: did you forget a transpose? nn.Linear stores its weight "
                               "as (out, in): the first layer's is (rank, in) = vh[:rank], the second's (out, rank)") from exc
        raise


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return tuple(a.shape) == tuple(b.shape) and float(torch.linalg.matrix_norm(a - b)) <= 1e-4 * float(
        torch.linalg.matrix_norm(b)) + 1e-6


def _inspect(case, pair) -> str | None:
    """Structure and bias of the learner's pair (the first problem found), or None."""
    label, layer, r = case
    out_f, in_f = layer.out_features, layer.in_features
    if not isinstance(pair, torch.nn.Sequential) or len(pair) != 2 or not all(isinstance(p, torch.nn.Linear) for p in pair):
        return (f"On {label}: return torch.nn.Sequential(first, second) of two nn.Linear layers, got "
                f"{type(pair).__name__}.")
    first, second = pair
    if (first.in_features, second.out_features) != (in_f, out_f):
        if (first.in_features, second.out_features) == (out_f, in_f):
            return (f"On {label}: the pair maps {first.in_features} → {second.out_features} features, the layer "
                    f"{in_f} → {out_f}: you forgot a transpose (nn.Linear's weight is (out, in)).")
        return f"On {label}: the pair must map {in_f} → {out_f} features like the layer, got {first.in_features} → {second.out_features}."
    if first.out_features != r or second.in_features != r:
        return (f"On {label}: the inner width must be the rank, {r}; got {first.out_features} → {second.in_features}"
                + (" (off by one: keep exactly `rank` singular values, s[:rank])" if abs(first.out_features - r) == 1 else "") + ".")
    if first.bias is not None:
        return (f"On {label}: the first layer has a bias. The layer computes W x + b, and W₂(W₁x + b₁) adds W₂b₁ "
                "instead of b: create the first layer with bias=False and give the original bias to the second.")
    if second.bias is None:
        return f"On {label}: the second layer has no bias: the layer's bias is lost (copy layer.bias into it)."
    if not torch.allclose(second.bias.detach(), layer.bias.detach(), atol=1e-6):
        return f"On {label}: the second layer's bias is not the layer's bias (copy layer.bias into second.bias)."
    return None


# --------------------------------------------------------------------------- break-even rank

_SHAPES = [(384, 384), (1536, 384), (10, 7), (6, 3), (384, 1536)]


def _plus_one(m, n):
    return reference_break_even_rank(m, n) + 1


def _strict(m, n):  # r(m+n) < mn: loses the rank at which both are exactly equal
    return math.ceil(m * n / (m + n)) - 1


def _square_rule(m, n):
    return min(m, n) // 2


def check_break_even_rank(fn: Callable) -> str:
    """Check a learner's ``fn(m, n) -> int`` for layers of shape m×n (out × in) with a bias. Returns ``"passed"``
    or one sentence naming the mistake."""
    cases = [(m, n) for m, n in _SHAPES]
    outputs = run_cases(fn, cases, lambda f, c: f(*c), what="your break-even rank",
                        where=lambda c: f"For a {c[0]}×{c[1]} layer, ")
    if isinstance(outputs, str):
        return outputs
    expected = [reference_break_even_rank(*c) for c in cases]
    for (m, n), got, want in zip(cases, outputs, expected):
        if isinstance(got, float) and not float(got).is_integer():
            return (f"not yet: for a {m}×{n} layer you returned {got:.4g}, a fraction: a rank is a whole number; "
                    "return the largest whole r with r(m+n) <= mn (floor division, //).")
    if [int(g) for g in outputs] == expected:
        return PASSED
    catalogue = [
        ("off by one, one too high: at that rank the two factors already hold more parameters than the layer "
         "(check r·(m+n) + m <= m·n + m at your answer)", _plus_one),
        ("off by one, one too low: when m·n/(m+n) is a whole number (384×384 → 192) the pair has exactly as "
         "many parameters as the layer, so it does not grow — keep the equality (<=, floor division)", _strict),
        ("min(m, n)/2 is the break-even of a square layer only; in general it is m·n/(m+n) "
         "(e.g. 307 for 1536×384, not 192)", _square_rule),
    ]
    named = name_mistake([int(g) for g in outputs], cases, catalogue, lambda a, b: list(a) == list(b))
    if named:
        return named
    bad = next((c, g, w) for c, g, w in zip(cases, outputs, expected) if int(g) != w)
    (m, n), g, w = bad
    return (f"not yet: for a {m}×{n} layer you returned {g}, but the pair of rank r has r·({m}+{n}) + {m} parameters "
            f"against {m}·{n} + {m}: the largest r that does not grow it is {w}.")
