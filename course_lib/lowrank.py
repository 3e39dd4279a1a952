"""Low-rank factorization: replace one m×n Linear by two thin ones, in → r → out.

The truncated SVD W = U Σ Vᵀ ≈ (U_r Σ_r)(V_rᵀ) is the best rank-r approximation of W
(Eckart–Young): its Frobenius error is sqrt(σ_{r+1}² + … + σ_k²). The thin pair has r(m+n)
weights instead of mn, so it is smaller (and needs fewer multiply-adds) only when
r < mn/(m+n), the break-even rank. Pretrained weights are rarely low-rank, but their
*inputs* are: the data-aware variant ("whitened") minimises the error of the layer's outputs
on calibration inputs instead of the error of the weights, by taking the SVD of W·C^{1/2}
(C = E[x xᵀ] of the inputs) and mapping back with C^{-1/2} (as SVD-LLM / DRONE do; the root
used is C's Cholesky factor).

Shapes follow ``torch.nn.Linear``: weight (out=m, in=n), inputs (tokens, n).
"""

from __future__ import annotations

import copy
import warnings
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from . import config
from .layers import PATHS, calibration_inputs, input_moments  # noqa: F401 - the latter two were lowrank's; still here
from .models import TextClassifier, derived_meta

METHODS = ("svd", "whitened")
#: Layer groups of BERT-family encoders and the name endings that mark them (course_lib.layers' layouts);
#: ffn_out (".output.dense") is checked after attn_out (".attention.output.dense"), which also ends in it.
GROUPS = {role: tuple("." + path for path in paths) for role, paths in PATHS.items()}
ALIASES = {"attention": ("query", "key", "value", "attn_out"), "ffn": ("ffn_in", "ffn_out"), "all": tuple(GROUPS)}


# --------------------------------------------------------------------------- counting


def break_even_rank(m: int, n: int) -> int:
    """Largest rank r at which an m×n Linear with bias does not grow: r(m+n) + m <= mn + m, i.e. r <= mn/(m+n)."""
    if int(m) != m or int(n) != n or m < 1 or n < 1:
        raise ValueError(f"m and n must be positive whole numbers (a layer's out and in features); got {m}, {n}.")
    return (int(m) * int(n)) // (int(m) + int(n))


def param_count(m: int, n: int, rank: int | None = None, bias: bool = True) -> int:
    """Parameters of one m×n Linear (``rank=None``: mn) or of its rank-r pair (r·n + m·r), plus m for the bias."""
    return (m * n if rank is None else rank * (m + n)) + (m if bias else 0)


def flop_count(m: int, n: int, rank: int | None = None, tokens: int = 1) -> int:
    """FLOPs of the layer on ``tokens`` inputs (2 per multiply-add, bias adds ignored): 2·t·mn, or 2·t·r(m+n)
    for the rank-r pair."""
    return 2 * tokens * (m * n if rank is None else rank * (m + n))


def count_parameters(model: torch.nn.Module) -> int:
    """Parameters the model really has (counted from its tensors, shared tensors once)."""
    return int(sum(p.numel() for p in model.parameters()))


# --------------------------------------------------------------------------- one layer


def _weight(layer: torch.nn.Module) -> torch.Tensor:
    """The layer's weight as (out, in) float64; a GPT-2 Conv1D stores it transposed, (in, out)."""
    from transformers.pytorch_utils import Conv1D

    if isinstance(layer, Conv1D):
        return layer.weight.detach().double().T
    if isinstance(layer, torch.nn.Linear):
        return layer.weight.detach().double()
    raise TypeError(f"Expected a torch.nn.Linear (or a GPT-2 Conv1D), got {type(layer).__name__}.")


def _input_root(cov: torch.Tensor) -> torch.Tensor:
    """A square root L of the inputs' second moment C (C = L Lᵀ, Cholesky, lower-triangular), damped by
    1e-6 of C's mean eigenvalue so it inverts (10× more, up to 1e-2, while C is numerically singular: fewer
    calibration tokens than input features, or float32 rounding). Any root gives the same optimum, because
    ‖(W − W')Xᵀ‖² = N·‖(W − W')L‖²; Cholesky is ~10× faster than the symmetric C^{1/2}."""
    cov = cov.double()
    eye = torch.eye(cov.shape[0], dtype=cov.dtype)
    mean_eig = float(torch.trace(cov)) / cov.shape[0] + 1e-12
    for damp in (1e-6, 1e-5, 1e-4, 1e-3, 1e-2):
        root, info = torch.linalg.cholesky_ex(cov + damp * mean_eig * eye)
        if int(info) == 0:
            return root
    raise ValueError("The calibration inputs' covariance is not positive definite even with 1 % damping; "
                     "check the calibration texts (are they empty or all the same?).")


def decompose(layer: torch.nn.Module, covariance: torch.Tensor | None = None):
    """SVD (U, S, Vh) of the layer's weight W (out × in), or of W·L when ``covariance`` C = L Lᵀ (in × in) is
    given; returns (U, S, Vh, L), L None for plain SVD. S is descending (float64)."""
    w = _weight(layer)
    root = None
    if covariance is not None:
        if tuple(covariance.shape) != (w.shape[1], w.shape[1]):
            raise ValueError(f"covariance must be ({w.shape[1]}, {w.shape[1]}) for this layer (in × in), "
                             f"got {tuple(covariance.shape)}.")
        root = _input_root(covariance)
        w = w @ root
    u, s, vh = torch.linalg.svd(w, full_matrices=False)
    return u, s, vh, root


def factorize_linear(layer: torch.nn.Module, rank: int, covariance: torch.Tensor | None = None) -> torch.nn.Sequential:
    """Two Linear layers, in → rank → out, whose product approximates ``layer`` (Linear or GPT-2 Conv1D).

    W ≈ (U_r Σ_r)(V_rᵀ): the first layer (no bias) holds V_rᵀ (rank × in), the second holds U_r Σ_r
    (out × rank) and the original bias, so all of Σ sits in the second layer. With ``covariance``
    (C = E[x xᵀ] of the layer's inputs, in × in, see :func:`input_moments`) the SVD is of W·C^{1/2}
    (C^{1/2} = its Cholesky root L) and the first layer becomes V_rᵀ L^{-1}: the pair then minimises
    the error of the outputs on those inputs, not of the weights. A rank above :func:`break_even_rank`
    is allowed here (the layer grows; :func:`factorize_model` refuses it); one outside 1..min(in, out) raises.
    """
    return _pair(layer, decompose(layer, covariance), rank)


def _pair(layer: torch.nn.Module, parts, rank: int) -> torch.nn.Sequential:
    """The thin pair of ``layer`` at ``rank`` from its :func:`decompose` parts."""
    u, s, vh, root = parts
    out_f, in_f = u.shape[0], vh.shape[1]
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or not 1 <= rank <= len(s):
        raise ValueError(f"rank must be a whole number from 1 to {len(s)} (= min(in, out)) for a {out_f}×{in_f} layer; "
                         f"got {rank!r}.")
    first_w = vh[:rank] if root is None else torch.linalg.solve_triangular(root, vh[:rank], upper=False, left=False)
    second_w = u[:, :rank] * s[:rank]
    bias = getattr(layer, "bias", None)
    dtype = layer.weight.dtype
    pair = torch.nn.Sequential(torch.nn.Linear(in_f, rank, bias=False), torch.nn.Linear(rank, out_f, bias=bias is not None))
    with torch.no_grad():
        pair[0].weight.copy_(first_w.to(dtype))
        pair[1].weight.copy_(second_w.to(dtype))
        if bias is not None:
            pair[1].bias.copy_(bias.detach())
    return pair.to(layer.weight.device)


def tail_error(layer_or_weight, rank: int) -> float:
    """Eckart–Young: Frobenius error ‖W − W_r‖ of the best rank-r approximation = sqrt(sum of discarded σ²)."""
    s = singular_values(layer_or_weight)
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or not 0 <= rank <= len(s):
        raise ValueError(f"rank must be a whole number from 0 to {len(s)}; got {rank!r}.")
    return float(np.sqrt(np.sum(s[rank:] ** 2)))


def weight_error(layer: torch.nn.Module, pair: torch.nn.Sequential) -> float:
    """Frobenius error ‖W − W₂W₁‖ measured by multiplying the pair's weights back together."""
    product = pair[1].weight.detach().double() @ pair[0].weight.detach().double()
    return float(torch.linalg.matrix_norm(_weight(layer) - product))


@torch.no_grad()
def output_error(layer: torch.nn.Module, pair: torch.nn.Module, inputs: torch.Tensor) -> float:
    """Relative output error ‖layer(X) − pair(X)‖_F / ‖layer(X)‖_F on inputs X (tokens × in); no unit."""
    ref = layer(inputs).double()
    return float(torch.linalg.norm(ref - pair(inputs).double()) / torch.linalg.norm(ref).clamp_min(1e-30))


def singular_values(layer_or_weight) -> np.ndarray:
    """Singular values (descending, float64) of a Linear's weight, a Conv1D's, or a 2-D tensor."""
    w = layer_or_weight.detach().double() if isinstance(layer_or_weight, torch.Tensor) else _weight(layer_or_weight)
    return torch.linalg.svdvals(w).numpy()


def energy_curve(s) -> np.ndarray:
    """Share of squared singular values kept at rank 1, 2, …, k (last entry 1.0)."""
    sq = np.asarray(s, dtype=np.float64) ** 2
    return np.cumsum(sq) / sq.sum()


def rank_for_energy(s, energy: float) -> int:
    """Smallest rank keeping at least ``energy`` (in (0, 1]) of the squared singular values."""
    _check_energy(energy)
    curve = energy_curve(s)
    return int(min(np.searchsorted(curve, energy - 1e-12) + 1, len(curve)))


def moment_output_error(layer: torch.nn.Module, pair: torch.nn.Sequential, moments: dict) -> float:
    """:func:`output_error` from the inputs' moments alone: ‖D Xᵀ‖² = N·tr(D C Dᵀ) with D = W − W₂W₁, expanded
    as tr(W C Wᵀ) − 2 tr(W₂W₁ C Wᵀ) + tr(W₂ (W₁ C W₁ᵀ) W₂ᵀ) so only thin products are formed (C Wᵀ and
    tr(W C Wᵀ) are computed once per layer and kept in ``moments``); the bias enters ‖layer(X)‖ through the mean."""
    w, c, mu = _weight(layer), moments["cov"], moments["mean"]
    if "cw_t" not in moments:  # the same for every rank: computed on the first call
        moments["cw_t"] = c @ w.T
        moments["wcw"] = torch.sum(w.T * moments["cw_t"])
    w1, w2 = pair[0].weight.detach().double(), pair[1].weight.detach().double()
    cross = torch.sum(w2.T * (w1 @ moments["cw_t"]))
    inner = torch.sum((w2 @ (w1 @ c @ w1.T)) * w2)
    err = (moments["wcw"] - 2 * cross + inner).clamp_min(0)
    b = layer.bias.detach().double() if getattr(layer, "bias", None) is not None else torch.zeros(w.shape[0], dtype=w.dtype)
    ref = moments["wcw"] + 2 * b @ (w @ mu) + b @ b
    return float(torch.sqrt(err / ref.clamp_min(1e-30)))


# --------------------------------------------------------------------------- whole model


def _split(model_or_clf) -> tuple[TextClassifier | None, torch.nn.Module]:
    from transformers import PreTrainedModel

    if isinstance(model_or_clf, TextClassifier):
        return model_or_clf, model_or_clf.model
    if isinstance(model_or_clf, PreTrainedModel):
        return None, model_or_clf
    raise TypeError(f"Expected a TextClassifier or a transformers model (BERT family), got {type(model_or_clf).__name__}; "
                    "to factorize one layer of any model use lowrank.factorize_linear(layer, rank).")


def layer_group(name: str) -> str | None:
    """The group (``query`` … ``ffn_out``) of a BERT-family layer name, or None (pooler, classifier, …)."""
    for group, endings in GROUPS.items():
        if name.endswith(endings):
            return group
    return None


def resolve_groups(layers) -> tuple[str, ...]:
    """Group names from ``layers`` (a name or list of them: groups, or ``attention`` / ``ffn`` / ``all``)."""
    items = [layers] if isinstance(layers, str) else list(layers)
    out: list[str] = []
    for item in items:
        if item not in GROUPS and item not in ALIASES:
            raise ValueError(f"Unknown layer group {item!r}; choose from {sorted(GROUPS) + sorted(ALIASES)}.")
        out += [g for g in ALIASES.get(item, (item,)) if g not in out]
    if not out:
        raise ValueError("layers is empty; name at least one group, e.g. layers='ffn'.")
    return tuple(out)


def select_layers(model_or_clf, layers="all") -> dict[str, str]:
    """Name → group of the model's Linear layers in the chosen groups (in model order)."""
    from transformers.pytorch_utils import Conv1D

    model = _split(model_or_clf)[1]
    if any(isinstance(m, Conv1D) for m in model.modules()):
        raise TypeError(f"{type(model).__name__} uses GPT-2 Conv1D layers (fused Q/K/V, weight stored (in, out)); "
                        "factorize_model supports BERT-family encoders only. Factorize one Conv1D with factorize_linear.")
    groups = resolve_groups(layers)
    found = {n: layer_group(n) for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    chosen = {n: g for n, g in found.items() if g in groups}
    if not chosen:
        raise ValueError(f"No layers of groups {groups} in {type(model).__name__}; factorize_model knows BERT, "
                         "RoBERTa and DistilBERT layer names. Factorize single layers with factorize_linear.")
    return chosen


def _check_rank(rank, what: str = "rank") -> None:
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or rank < 1:
        raise ValueError(f"{what} must be a whole number >= 1 (the inner width of the thin pair); got {rank!r}.")


def _check_energy(energy) -> None:
    if isinstance(energy, bool) or not isinstance(energy, (int, float)) or not 0 < energy <= 1:
        raise ValueError(f"energy is the share of squared singular values kept, in (0, 1]; got {energy!r}.")


def decompose_model(model_or_clf, layers="all", method: str = "svd", texts: Sequence[str] | None = None,
                    moments: dict | None = None) -> dict:
    """The SVD of every chosen layer, computed once so that many ranks can be tried (:func:`factorize_model`'s
    ``prepared=``): ``{"method", "texts", "layers": {name: {"group", "parts": (U, S, Vh, L), "moments"}}}``.
    ``method="whitened"`` needs ``texts``; with ``texts`` the inputs' moments are kept for output errors.
    ``moments``: :func:`input_moments` of this model on ``texts``, when the caller already has them (both
    methods of a sweep share one calibration pass); they must cover the chosen layers."""
    clf, model = _split(model_or_clf)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}.")
    if texts is not None and clf is None:
        raise TypeError("Calibration texts need the tokenizer: pass the TextClassifier, not its model.")
    if method == "whitened" and texts is None:
        raise ValueError("method='whitened' needs calibration texts (texts=[...], e.g. a few hundred training messages).")
    if moments is not None and texts is None:
        raise ValueError("moments= are the inputs' moments on calibration texts: pass those texts= too.")
    targets = layers if isinstance(layers, dict) else select_layers(model, layers)  # a dict: select_layers' output
    config.set_threads()
    if moments is not None:
        missing = [n for n in targets if n not in moments]
        if missing:
            raise ValueError(f"moments= lack {missing[:3]}; compute input_moments over layers covering them.")
    elif texts is not None:
        moments = input_moments(clf, texts, targets)
    else:
        moments = {}
    out = {}
    for name, group in targets.items():
        cov = moments[name]["cov"] if method == "whitened" else None
        out[name] = {"group": group, "parts": decompose(model.get_submodule(name), cov), "moments": moments.get(name)}
    return {"method": method, "texts": None if texts is None else len(texts), "model": id(model), "layers": out}


def factorize_model(model_or_clf, rank: int | dict | None = None, energy: float | None = None, method: str = "svd",
                    texts: Sequence[str] | None = None, layers=None, prepared: dict | None = None
                    ) -> TextClassifier | torch.nn.Module:
    """A NEW classifier whose chosen Linear layers are rank-r pairs (:func:`factorize_linear`); the original is untouched.

    layers   groups to factorize: ``ffn_in``, ``ffn_out``, ``query``, ``key``, ``value``, ``attn_out``,
             or ``ffn`` (both FFN matrices; the default), ``attention``, ``all``. Not with a ``rank`` dict.
    rank     one rank for every chosen layer, or {layer name: rank} (names as in :func:`select_layers`).
             A rank above a layer's :func:`break_even_rank` (the layer would grow) raises ValueError.
    energy   instead of ``rank``: per layer, the smallest rank keeping this share of squared singular values
             (of W, or of W·C^{1/2} when whitened). A layer whose rank would pass break-even is left as it is,
             with a warning.
    method   ``svd`` (weights only) or ``whitened`` (needs ``texts``: calibration inputs collected on the
             original model, non-padding tokens). With ``texts`` every method also records each layer's
             relative output error on them.
    prepared :func:`decompose_model` of this same model (instead of ``method``/``texts``): reuses its SVDs and
             calibration, so a sweep over ranks computes them once. Its layers must cover the chosen ones.
    Returns a TextClassifier (or a model, if given one) whose ``meta["lowrank"]`` records, per layer, the
    shape, rank, break-even rank, energy kept, parameters before/after and what was done; parameter totals
    are counted from the models' tensors.
    """
    clf, model = _split(model_or_clf)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}.")
    if (rank is None) == (energy is None):
        raise ValueError("Give exactly one of rank= (a whole number or {layer name: rank}) or energy= (in (0, 1]).")
    if energy is not None:
        _check_energy(energy)
    checks = [(v, f"rank of {k}") for k, v in rank.items()] if isinstance(rank, dict) else [(rank, "rank")]
    for value, what in checks if rank is not None else []:
        _check_rank(value, what)
    if isinstance(rank, dict):
        if not rank:
            raise ValueError("The rank dict is empty; map at least one layer name to a rank.")
        if layers is not None:
            raise ValueError("A rank dict already names the layers; leave layers= out (or give one rank for all).")
        targets = select_layers(model, "all")
        unknown = [n for n in rank if n not in targets]
        if unknown:
            raise ValueError(f"Not factorizable layers of this model: {unknown[:3]}; see lowrank.select_layers(model).")
        targets = {n: g for n, g in targets.items() if n in rank}
    else:
        targets = select_layers(model, "ffn" if layers is None else layers)
    if prepared is None:
        prepared = decompose_model(model_or_clf, targets, method, texts)
    elif prepared.get("model") != id(model) or prepared.get("method") != method or texts is not None:
        raise ValueError("prepared= must be decompose_model() of this same model with the same method (and no texts=).")
    missing = [n for n in targets if n not in prepared["layers"]]
    if missing:
        raise ValueError(f"prepared= lacks {missing[:3]}; call decompose_model with layers covering them.")
    new_model, per_layer = copy.deepcopy(model), {}
    for name, group in targets.items():
        layer = model.get_submodule(name)
        m, n = layer.out_features, layer.in_features
        limit = break_even_rank(m, n)
        parts, layer_moments = prepared["layers"][name]["parts"], prepared["layers"][name]["moments"]
        s = parts[1].numpy()
        r = rank_for_energy(s, energy) if energy is not None else (rank[name] if isinstance(rank, dict) else rank)
        info = {"group": group, "shape": [m, n], "rank": int(r), "break_even": limit,
                "energy_kept": float(energy_curve(s)[min(int(r), len(s)) - 1]), "params_before": count_parameters(layer)}
        if r > limit:
            if energy is None:
                raise ValueError(f"Rank {r} would make {name} ({m}×{n}) bigger: its break-even rank is {limit} "
                                 f"(r(m+n) + m <= mn + m). Use a rank <= {limit}, a per-layer dict, or energy=.")
            warnings.warn(f"{name}: energy {energy} needs rank {r} > break-even {limit}; layer left unfactorized.")
            per_layer[name] = {**info, "done": "skipped (rank above break-even)", "params_after": info["params_before"]}
            continue
        pair = _pair(layer, parts, int(r))
        new_model.set_submodule(name, pair)
        per_layer[name] = {**info, "done": "factorized", "params_after": count_parameters(pair)}
        if layer_moments is not None:
            per_layer[name]["output_error"] = moment_output_error(layer, pair, layer_moments)
    new_model.eval()
    record = {"method": method, "rank": rank, "energy": energy, "layers": sorted(set(targets.values())),
              "calibration_texts": prepared["texts"], "per_layer": per_layer,
              "params_before": count_parameters(model), "params_after": count_parameters(new_model)}
    if clf is None:
        return new_model
    how = f"energy {energy:g}" if energy is not None else ("per-layer ranks" if isinstance(rank, dict) else f"rank {rank}")
    return TextClassifier(model=new_model, tokenizer=clf.tokenizer, max_length=clf.max_length,
                          name=f"{clf.name} · low-rank {method} ({how})", meta=derived_meta(clf, lowrank=record))
