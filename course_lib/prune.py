"""Pruning a BERT-family classifier: remove weights, neurons and attention heads.

Three kinds, each returning a NEW model (the one passed in is never changed):

- **zero (magnitude) pruning** — :func:`magnitude`: the smallest |w| of the encoder's Linear weights
  become exactly 0 (``torch.nn.utils.prune``, per layer or one global threshold). The model stays
  dense: same shapes, same file size, same speed, until it is stored sparse.
- **activation pruning (structured)** — :func:`activation` removes the FFN neurons whose output after
  the GELU is smallest on average on calibration texts; :func:`heads` removes the attention heads
  with the smallest importance (Michel et al. 2019). Both slice the Linear layers
  (``transformers.pytorch_utils.prune_linear_layer``), so the model really has fewer parameters.
- **redundancy pruning** — :func:`redundancy`: a neuron that nearly duplicates another on the
  calibration texts is dropped and its outgoing weights are folded into its twin.

Supported: the BERT-family models that :func:`course_lib.layers.layers` walks; anything else raises
``TypeError`` saying so. Sizes in sparse formats and the masks pitfall are measured in
:mod:`course_lib.studies.pruning`.
"""

from __future__ import annotations

import copy
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torch.nn.utils import prune as torch_prune
from transformers.pytorch_utils import prune_linear_layer

from . import data, train
from .layers import GROUPS, ROLES, Layer, module_of as _model  # noqa: F401
from .layers import feed_inputs
from .layers import layers as _layers
from .models import TextClassifier


def layers(model_or_clf) -> list[Layer]:
    """The transformer layers of a supported model (see :mod:`course_lib.layers`)."""
    return _layers(model_or_clf, "course_lib.prune")


def _fraction(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise ValueError(f"{name} must be a number in [0, 1), e.g. 0.5 for 50 %; got {value!r}.")
    if not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{name} must be in [0, 1) (a share, e.g. 0.5 for 50 %); got {value}.")
    return float(value)


def _calibration(texts) -> list[str]:
    texts = data.check_texts(texts, "calibration texts")
    if not texts:
        raise ValueError("Pass at least one calibration text (e.g. a few hundred training messages).")
    return texts


def remove_masks(model: torch.nn.Module) -> torch.nn.Module:
    """Make every ``torch.nn.utils.prune`` mask permanent (``prune.remove``): ``weight_orig`` and
    ``weight_mask`` are replaced by a plain ``weight`` holding the zeros. Changes ``model`` in place."""
    for module in model.modules():
        for hook in list(module._forward_pre_hooks.values()):
            if isinstance(hook, torch_prune.BasePruningMethod):
                torch_prune.remove(module, hook._tensor_name)
    return model


def _no_masks(model: torch.nn.Module) -> torch.nn.Module:
    if any(hasattr(m, "weight_orig") for m in model.modules()):
        raise ValueError("This model has pruning masks attached (weight_orig + weight_mask); "
                         "call course_lib.prune.remove_masks(model) first.")
    return model


def _copy(model: torch.nn.Module) -> torch.nn.Module:
    return copy.deepcopy(_no_masks(model))  # deepcopy raises while masks are attached


def _result(source, model: torch.nn.Module, what: str, info: dict):
    """``model`` returned the way ``source`` came: a bare module, or a TextClassifier with the step in its meta."""
    model.eval()
    if not isinstance(source, TextClassifier):
        return model
    meta = {k: v for k, v in (source.meta or {}).items() if k not in ("key", "edited_shapes")}
    if "key" in (source.meta or {}):
        meta["pruned_from"] = source.meta["key"]
    meta["pruning"] = [*meta.get("pruning", []), {"method": what, **info}]
    return TextClassifier(model=model, tokenizer=source.tokenizer, max_length=source.max_length,
                          name=f"{source.name} ({what})", meta=meta)


# --------------------------------------------------------------------------- zero (magnitude) pruning


def magnitude(model_or_clf, sparsity: float, scope: str = "layer", groups: Sequence[str] = ("attention", "ffn"),
              layer_ids: Sequence[int] | None = None):
    """Zero the share ``sparsity`` of smallest-|w| weights in the encoder's Linear layers (L1 pruning).

    ``scope="layer"``: every Linear loses that share of its own weights (``prune.l1_unstructured``);
    ``scope="global"``: one threshold over all of them (``prune.global_unstructured``), so layers lose
    different shares. ``groups`` (names in :data:`GROUPS`) and ``layer_ids`` limit which Linear layers are
    pruned. Masks are made permanent: the result is dense, with exactly-zero weights.
    """
    sparsity = _fraction(sparsity, "sparsity")
    if scope not in ("layer", "global"):
        raise ValueError(f'scope must be "layer" or "global", got {scope!r}.')
    groups = (groups,) if isinstance(groups, str) else tuple(groups)
    unknown = [g for g in groups if g not in GROUPS]
    if unknown or not groups:
        raise ValueError(f"groups must be names from {sorted(GROUPS)}; got {list(groups)}.")
    model = _copy(_model(model_or_clf))
    stack = layers(model)
    bad = [i for i in (layer_ids or []) if not 0 <= i < len(stack)]
    if bad:
        raise ValueError(f"layer_ids {bad} out of range: the model has layers 0..{len(stack) - 1}.")
    roles = [r for r in ROLES if any(r in GROUPS[g] for g in groups)]
    targets = [(layer[r], "weight") for layer in stack if layer_ids is None or layer.index in layer_ids for r in roles]
    if scope == "layer":
        for module, name in targets:
            torch_prune.l1_unstructured(module, name, amount=sparsity)
    else:
        torch_prune.global_unstructured(targets, pruning_method=torch_prune.L1Unstructured, amount=sparsity)
    remove_masks(model)
    info = {"scope": scope, "asked": sparsity, "groups": list(groups), "layers": layer_ids, "sparsity": sparsity_of(model)}
    return _result(model_or_clf, model, f"magnitude {scope} {sparsity:.0%}", info)


def prune_group(clf, group: str, sparsity: float, layer: int | None = None):
    """One step of a sensitivity scan: magnitude-prune only ``group`` (e.g. "query", "ffn_in",
    "attention") of layer ``layer`` (or of every layer) to ``sparsity``; a new model."""
    return magnitude(clf, sparsity, "layer", groups=(group,), layer_ids=None if layer is None else [layer])


def sparsity_of(model_or_clf) -> float:
    """Share (0..1) of exactly-zero weights over all the encoder's Linear weight matrices (biases excluded)."""
    report = sparsity_report(model_or_clf)
    return float(report["zeros"].sum() / report["weights"].sum())


sparsity = sparsity_of  # the chapter's name: prune.sparsity(model_or_clf)


def sparsity_report(model_or_clf) -> pd.DataFrame:
    """One row per encoder Linear: layer, role, shape (out×in), weights, zeros, sparsity (0..1)."""
    rows = []
    for layer in layers(model_or_clf):
        for role in ROLES:
            w = layer[role].weight.detach()
            zeros = int((w == 0).sum())
            rows.append({"layer": layer.index, "role": role, "shape": "×".join(map(str, w.shape)),
                         "weights": w.numel(), "zeros": zeros, "sparsity": zeros / w.numel()})
    return pd.DataFrame(rows)


def structure(model_or_clf) -> pd.DataFrame:
    """One row per layer: attention heads, FFN neurons and parameters the layer really has."""
    return pd.DataFrame([{"layer": l.index, "heads": l.num_heads, "ffn_neurons": l.num_neurons,
                          "parameters": sum(p.numel() for p in l.module.parameters())} for l in layers(model_or_clf)])


# --------------------------------------------------------------------------- structured: neurons and heads


def remove_neurons(model_or_clf, plan: dict[int, Sequence[int]]):
    """Remove FFN neurons: ``plan`` maps a layer index to the neuron indices to drop there. The first FFN
    Linear loses those rows, the second those columns (``prune_linear_layer``); a new model."""
    return _sliced(model_or_clf, plan, "neurons", "neurons removed", {})


def remove_heads(model_or_clf, plan: dict[int, Sequence[int]]):
    """Remove attention heads: ``plan`` maps a layer index to the heads to drop. Q, K and V lose those
    heads' rows, the attention output Linear their columns (attention reshapes with -1 heads); a new model."""
    return _sliced(model_or_clf, plan, "heads", "heads removed", {})


def _sliced(source, plan: dict, unit: str, what: str, info: dict):
    model = _copy(_model(source))
    _slice(model, plan, unit)
    column = "ffn_neurons" if unit == "neurons" else "heads"
    return _result(source, model, what, {**info, column: structure(model)[column].tolist()})


def _slice(model: torch.nn.Module, plan: dict, unit: str) -> None:
    stack = layers(model)
    for i, drop in plan.items():
        if not 0 <= int(i) < len(stack):
            raise ValueError(f"layer {i} out of range: the model has layers 0..{len(stack) - 1}.")
        layer = stack[int(i)]
        n = layer.num_neurons if unit == "neurons" else layer.num_heads
        drop = {int(j) for j in drop}
        if any(not 0 <= j < n for j in drop):
            raise ValueError(f"layer {i} has {unit} 0..{n - 1}; cannot remove {sorted(drop)}.")
        keep = [j for j in range(n) if j not in drop]
        if not keep:
            raise ValueError(f"this would remove every one of the {n} {unit} of layer {i}; keep at least one.")
        if unit == "neurons":
            index = torch.tensor(keep, dtype=torch.long)
            layer["ffn_in"] = prune_linear_layer(layer["ffn_in"], index, dim=0)
            layer["ffn_out"] = prune_linear_layer(layer["ffn_out"], index, dim=1)
            continue
        d = layer.head_size
        index = torch.tensor([h * d + k for h in keep for k in range(d)], dtype=torch.long)
        for role in ("query", "key", "value"):
            layer[role] = prune_linear_layer(layer[role], index, dim=0)
        layer["attn_out"] = prune_linear_layer(layer["attn_out"], index, dim=1)
        for attr in ("num_attention_heads", "n_heads"):  # informational: the forward pass infers it (-1)
            if hasattr(layer.attention, attr):
                setattr(layer.attention, attr, len(keep))
        if hasattr(layer.attention, "all_head_size"):
            layer.attention.all_head_size = len(keep) * d


@torch.no_grad()
def ffn_statistics(clf: TextClassifier, texts, covariance: bool = False, batch_size: int = 32) -> list[dict]:
    """Per layer, statistics of the FFN neurons' outputs after the activation (the input of the second
    FFN Linear) over the non-padding tokens of ``texts``: ``mean_abs`` and ``mean`` (n,), ``tokens``, and
    with ``covariance=True`` ``cov`` (n, n), float64. GELU outputs are never exactly 0, so mean |a| is used
    rather than a share of zeros."""
    texts, stack = _calibration(texts), layers(clf)
    sums = [{"abs": 0.0, "sum": 0.0, "outer": 0.0, "tokens": 0} for _ in stack]

    def record(i, a):  # a: (tokens, n), the neurons' outputs on the non-padding tokens
        sums[i]["abs"] += a.abs().sum(0).double()
        sums[i]["sum"] += a.sum(0).double()
        sums[i]["tokens"] += a.shape[0]
        if covariance:
            sums[i]["outer"] += (a.T @ a).double()

    feed_inputs(clf, texts, {i: layer["ffn_out"] for i, layer in enumerate(stack)}, record, batch_size)
    tokens = sums[0]["tokens"]
    out = []
    for s in sums:
        mean = (s["sum"] / tokens).numpy()
        stats = {"mean_abs": (s["abs"] / tokens).numpy(), "mean": mean, "tokens": tokens}
        if covariance:
            stats["cov"] = (s["outer"] / tokens).numpy() - np.outer(mean, mean)
        out.append(stats)
    return out


def _count(ratio: float, n: int) -> int:
    return min(int(round(ratio * n)), n - 1)


def activation(clf: TextClassifier, texts, ratio: float, batch_size: int = 32, stats: list | None = None) -> TextClassifier:
    """Remove, in every layer, the share ``ratio`` of FFN neurons with the smallest mean |output after
    the GELU| over the non-padding tokens of the calibration ``texts`` (at least one neuron stays).
    ``stats``: this model's :func:`ffn_statistics`, if already computed (to try several ratios)."""
    ratio = _fraction(ratio, "ratio")
    stats = stats or ffn_statistics(clf, texts, batch_size=batch_size)
    plan = {i: np.argsort(s["mean_abs"], kind="stable")[:_count(ratio, len(s["mean_abs"]))] for i, s in enumerate(stats)}
    return _sliced(clf, plan, "neurons", f"activation {ratio:.0%} of FFN neurons", {"ratio": ratio})


def head_importance(clf: TextClassifier, texts, labels: Sequence[int] | None = None, batch_size: int = 16) -> list[np.ndarray]:
    """Per layer, each head's importance (Michel et al. 2019): the mean over texts of |dLoss/dg_h|, where
    g_h = 1 multiplies head h's output; cross-entropy against ``labels`` (default: the model's own
    predictions), each layer's scores divided by their L2 norm. A list of (heads,) float64 arrays."""
    texts, stack = _calibration(texts), layers(clf)
    y = torch.as_tensor(train.predict(clf, texts).labels if labels is None else np.asarray(labels), dtype=torch.long)
    if len(y) != len(texts):
        raise ValueError(f"labels has {len(y)} entries for {len(texts)} texts.")
    gates, scores = {}, [np.zeros(layer.num_heads) for layer in stack]

    def hook(i, d):
        return lambda module, args: (args[0] * gates[i].repeat_interleave(d, dim=1)[:, None, :],)

    handles = [layer["attn_out"].register_forward_pre_hook(hook(i, layer.head_size)) for i, layer in enumerate(stack)]
    clf.model.eval()
    try:
        for start in range(0, len(texts), batch_size):
            enc = clf.encode(texts[start:start + batch_size])
            for layer in stack:  # one gate per text, so each text's gradient is its own
                gates[layer.index] = torch.ones(len(enc["input_ids"]), layer.num_heads, requires_grad=True)
            logits = clf.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
            loss = torch.nn.functional.cross_entropy(logits, y[start:start + batch_size], reduction="sum")
            for i, grad in enumerate(torch.autograd.grad(loss, [gates[l.index] for l in stack])):
                scores[i] += grad.abs().sum(0).double().numpy()
    finally:
        for handle in handles:
            handle.remove()
    return [s / len(texts) / max(np.linalg.norm(s / len(texts)), 1e-12) for s in scores]


def heads(clf: TextClassifier, texts, ratio: float, labels: Sequence[int] | None = None,
          scores: list | None = None) -> TextClassifier:
    """Remove the share ``ratio`` of all attention heads with the lowest :func:`head_importance`
    (ranked across layers; every layer keeps at least one head). ``scores``: precomputed importances."""
    ratio = _fraction(ratio, "ratio")
    scores = scores or head_importance(clf, texts, labels)
    ranked = sorted((s, i, h) for i, layer_scores in enumerate(scores) for h, s in enumerate(layer_scores))
    left, plan, target = [len(s) for s in scores], {i: [] for i in range(len(scores))}, int(round(ratio * len(ranked)))
    for _, i, h in ranked:
        if sum(len(p) for p in plan.values()) >= target:
            break
        if left[i] > 1:  # never the last head of a layer
            plan[i].append(h)
            left[i] -= 1
    return _sliced(clf, plan, "heads", f"heads {ratio:.0%}", {"ratio": ratio})


# --------------------------------------------------------------------------- redundancy pruning


def redundancy(clf: TextClassifier, texts, threshold: float = 0.9, ratio: float | None = None,
               batch_size: int = 32, stats: list | None = None, logits: np.ndarray | None = None) -> TextClassifier:
    """Merge FFN neurons that nearly duplicate another on the calibration ``texts``.

    Neuron j's twin i is the neuron whose activations correlate most with its own (|ρ|: the cosine of the
    centred activation vectors over non-padding tokens). Least squares gives a_j ≈ α·a_i + β
    (α = cov_ij / var_i, β = mean_j − α·mean_i); the merge drops j, adds α·w_out[:, j] to w_out[:, i] and
    β·w_out[:, j] to the output bias. The error it adds has expected squared norm
    ‖w_out[:, j]‖² · var_j · (1 − ρ²); merges are made cheapest first (not "most correlated first").
    Pairs count when |ρ| ≥ ``threshold``; ``ratio`` caps the share of each layer's neurons removed.
    A neuron that received a twin is not dropped; a pair whose twin is gone is skipped.
    ``meta["pruning"][-1]`` reports pairs found and merged per layer and the logit change on ``texts``.
    ``stats``: this model's ``ffn_statistics(..., covariance=True)``, if already computed; ``logits``:
    ``clf.logits(texts)`` (n texts, classes), if already computed (the logit change is measured against them).
    """
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
        raise ValueError(f"threshold must be a correlation in [0, 1], e.g. 0.9; got {threshold!r}.")
    ratio = None if ratio is None else _fraction(ratio, "ratio")
    texts = _calibration(texts)
    stats = stats or ffn_statistics(clf, texts, covariance=True, batch_size=batch_size)
    model = _copy(clf.model)
    plan, found = {}, []
    for layer, s in zip(layers(model), stats):
        cov, mean, n = s["cov"], s["mean"], len(s["mean"])
        var = np.clip(np.diag(cov), 1e-12, None)
        rho = cov / np.sqrt(np.outer(var, var))
        np.fill_diagonal(rho, 0.0)
        twin = np.abs(rho).argmax(axis=1)
        r = rho[np.arange(n), twin]
        w = layer["ffn_out"].weight.data  # (hidden, n)
        cost = (w.double() ** 2).sum(0).numpy() * var * (1 - r ** 2)
        candidates = np.flatnonzero(np.abs(r) >= threshold)
        found.append(len(candidates))
        limit = len(candidates) if ratio is None else _count(ratio, n)
        dropped, receivers = set(), set()
        for j in candidates[np.argsort(cost[candidates], kind="stable")]:
            i = int(twin[j])
            if len(dropped) >= limit:
                break
            if j in receivers or i in dropped:
                continue
            alpha = cov[i, j] / var[i]
            beta = mean[j] - alpha * mean[i]
            w[:, i] += float(alpha) * w[:, j]
            layer["ffn_out"].bias.data += float(beta) * w[:, j]
            dropped.add(int(j))
            receivers.add(i)
        plan[layer.index] = sorted(dropped)
    _slice(model, plan, "neurons")
    merged = TextClassifier(model=model.eval(), tokenizer=clf.tokenizer, max_length=clf.max_length)
    before = clf.logits(texts) if logits is None else np.asarray(logits)
    if before.shape[0] != len(texts):
        raise ValueError(f"logits must have one row per calibration text ({len(texts)}); got shape {before.shape}. "
                         "Pass clf.logits(texts) for these same texts, or leave logits out.")
    change = np.abs(before - merged.logits(texts))
    info = {"threshold": threshold, "ratio": ratio, "pairs_found": found, "merged": [len(p) for p in plan.values()],
            "ffn_neurons": structure(model)["ffn_neurons"].tolist(),
            "logit_change_mean": float(change.mean()), "logit_change_max": float(change.max())}
    return _result(clf, model, f"redundancy ρ≥{threshold:g}", info)


# --------------------------------------------------------------------------- fine-tuning that keeps the zeros


def fine_tune_pruned(clf: TextClassifier, train_df, val_df=None, inplace: bool = False,
                     freeze_embeddings: bool = False, **kwargs) -> tuple[TextClassifier, dict]:
    """Fine-tune a copy of a pruned classifier so that its zero weights stay zero.

    Each encoder Linear that holds zeros gets a fixed mask (``prune.custom_from_mask``) for the run: the
    forward pass uses ``weight_orig * weight_mask``, gradients go to ``weight_orig``; the masks are made
    permanent afterwards. Sliced layers stay sliced. ``kwargs`` go to :func:`course_lib.train.fine_tune`.
    ``inplace=True`` trains ``clf``'s own model instead of a copy (one model less in memory: ~90 MB for
    MiniLM; for a model the caller made for this and will not use untrained). ``freeze_embeddings=True``
    trains only the encoder and head (pruning never touches the embeddings), on the model being trained:
    with ``inplace=False`` the caller's model keeps its own settings.
    Returns (the fine-tuned classifier, the training history).
    """
    if not isinstance(clf, TextClassifier):
        raise TypeError(f"fine_tune_pruned needs a TextClassifier (model + tokenizer), got {type(clf).__name__}.")
    model = _no_masks(clf.model) if inplace else _copy(clf.model)
    for layer in layers(model):
        for role in ROLES:
            keep = layer[role].weight.detach() != 0
            if not bool(keep.all()):
                torch_prune.custom_from_mask(layer[role], "weight", keep)
    tuned = _result(clf, model, "fine-tuned", {})
    if freeze_embeddings:
        train.freeze_lower(tuned, 0, embeddings=True)
    try:
        history = train.fine_tune(tuned, train_df, val_df, **kwargs)
    finally:
        remove_masks(model)
    tuned.meta["pruning"][-1].update(sparsity=sparsity_of(model), steps=history["steps"])
    return tuned, history
