"""Chapter 04's exercise, in two parts.

1. :func:`check_magnitude_masks` runs the learner's ``fn(weights, sparsity, scope) -> masks`` (one
   boolean keep-mask per weight matrix) per layer, globally and on a matrix full of ties, and names
   the mistake: kept the smallest, pruned by the signed value, the wrong count (rounding, or ties at the
   threshold all removed / all kept), global and per-layer mixed up.
2. :func:`check_remove_neurons` runs ``fn(ffn_in, ffn_out, drop) -> (new_in, new_out)`` on layer 0 of a
   small random BERT and compares the model's logits with the library's
   (:func:`course_lib.prune.remove_neurons`, equal to masking those neurons); it names the mistake:
   sliced the wrong dimension of the output Linear, forgot the first Linear's bias, changed the second
   Linear's bias, removed the neurons it should keep.

:func:`reference_magnitude_masks` and :func:`reference_remove_neurons` are correct solutions.
"""

from __future__ import annotations

import copy
from typing import Callable, Sequence

import numpy as np
import torch

from .. import prune
from ..layers import layers
from .runner import PASSED, name_mistake, run_cases

# --------------------------------------------------------------------------- part 1: the mask


def _count(sparsity: float, n: int) -> int:
    return int(round(sparsity * n))  # what torch.nn.utils.prune removes


def _keep_largest(scores: torch.Tensor, k_prune: int) -> torch.Tensor:
    keep = torch.ones(scores.numel(), dtype=torch.bool)
    if k_prune:
        keep[torch.argsort(scores.flatten(), stable=True)[:k_prune]] = False
    return keep.view_as(scores)


def _masks(scores: Sequence[torch.Tensor], sparsity: float, scope: str) -> list[torch.Tensor]:
    """Keep-masks removing the round(sparsity * n) lowest ``scores`` per matrix or over all of them."""
    if scope == "layer":
        return [_keep_largest(w, _count(sparsity, w.numel())) for w in scores]
    keep = _keep_largest(torch.cat([w.flatten() for w in scores]), _count(sparsity, sum(w.numel() for w in scores)))
    return [m.view_as(w) for m, w in zip(torch.split(keep, [w.numel() for w in scores]), scores)]


def reference_magnitude_masks(weights: Sequence[torch.Tensor], sparsity: float, scope: str = "layer") -> list[torch.Tensor]:
    """Keep-masks (True = kept) removing the ``round(sparsity * n)`` smallest |w|: of each matrix
    (``scope="layer"``) or of all of them together (``"global"``); ties at the threshold are broken by
    position, so exactly that many go."""
    return _masks([w.abs() for w in weights], sparsity, scope)


def _mistakes():
    def smallest(weights, s, scope):
        return _masks([-w.abs() for w in weights], s, scope)

    def signed(weights, s, scope):
        return _masks(list(weights), s, scope)

    def floor(weights, s, scope):
        if scope == "layer":
            return [_keep_largest(w.abs(), int(s * w.numel())) for w in weights]
        flat = torch.cat([w.abs().flatten() for w in weights])
        keep = _keep_largest(flat, int(s * flat.numel()))
        return [m.view_as(w) for m, w in zip(torch.split(keep, [w.numel() for w in weights]), weights)]

    def threshold(strict: bool):
        def fn(weights, s, scope):
            pools = [w.abs().flatten() for w in weights] if scope == "layer" else [torch.cat([w.abs().flatten() for w in weights])] * len(weights)
            out = []
            for w, pool in zip(weights, pools):
                k = _count(s, pool.numel())
                t = torch.sort(pool).values[max(k - 1, 0)] if k else -1.0
                out.append(w.abs() > t if strict else w.abs() >= t)
            return out
        return fn

    swapped = lambda weights, s, scope: reference_magnitude_masks(weights, s, "global" if scope == "layer" else "layer")  # noqa: E731
    return [
        ("you kept the smallest |w| and removed the largest: keep the weights with the LARGEST magnitude", smallest),
        ("you ranked the signed values, so large negative weights were removed: rank by |w| (w.abs())", signed),
        ("wrong count: int(s * n) rounds down; remove round(s * n) weights, as torch.nn.utils.prune does", floor),
        ("wrong tie handling: |w| > threshold removes every weight tied at the threshold (too many go); remove "
         "exactly round(s * n), e.g. the first k of torch.argsort(|w|)", threshold(True)),
        ("wrong tie handling: |w| >= threshold keeps every weight tied at the threshold (too few go); remove "
         "exactly round(s * n), e.g. the first k of torch.argsort(|w|)", threshold(False)),
        ("global and per-layer are mixed up: scope='layer' removes that share of EACH matrix, scope='global' "
         "one threshold over all matrices together", swapped),
    ]


def _mask_cases():
    gen = torch.Generator().manual_seed(0)
    small, large = torch.randn(16, 12, generator=gen) * 0.02, torch.randn(8, 24, generator=gen) * 0.2
    ties = torch.tensor([[0.1, -0.1, 0.1, 0.3], [-0.1, 0.2, 0.1, -0.3], [0.0, 0.1, -0.2, 0.1]])
    odd = torch.randn(6, 7, generator=gen)  # 42 weights: 30 % is 12.6 -> round 13, floor 12
    return [("two matrices per layer at 50 %", [small, large], 0.5, "layer"),
            ("the same two matrices, global at 50 %", [small, large], 0.5, "global"),
            ("a 6x7 matrix at 30 % (12.6 weights)", [odd], 0.3, "layer"),
            ("a matrix with many equal |w| (ties) at 50 %", [ties], 0.5, "layer")]


def _inspect_masks(case, masks) -> str | None:
    label, weights = case[0], case[1]
    if not isinstance(masks, (list, tuple)) or len(masks) != len(weights):
        return f"On {label}: return a list of {len(weights)} masks (one per weight matrix), got {type(masks).__name__}."
    for m, w in zip(masks, weights):
        if not isinstance(m, torch.Tensor) or tuple(m.shape) != tuple(w.shape):
            return f"On {label}: each mask must be a tensor shaped like its weight {tuple(w.shape)}."
        if m.dtype != torch.bool:
            return f"On {label}: masks must be boolean (True = kept), got {m.dtype}; e.g. use a comparison or .bool()."
    return None


def _same_masks(got, expected) -> bool:
    return all(all(torch.equal(a, b) for a, b in zip(g, e)) for g, e in zip(got, expected))


def _equivalent(got, case) -> bool:
    """Right count, and every kept |w| >= every removed |w| (ties may be broken any way)."""
    _, weights, s, scope = case
    groups = [(m, w) for m, w in zip(got, weights)] if scope == "layer" else [
        (torch.cat([m.flatten() for m in got]), torch.cat([w.flatten() for w in weights]))]
    for m, w in groups:
        if int((~m).sum()) != _count(s, w.numel()):
            return False
        if (~m).any() and m.any() and float(w.abs()[~m].max()) > float(w.abs()[m].min()):
            return False
    return True


def check_magnitude_masks(fn: Callable) -> str:
    """Check ``fn(weights: list of 2-D tensors, sparsity, scope) -> list of bool keep-masks``.
    Returns ``"passed"`` or one sentence naming the mistake."""
    cases = _mask_cases()
    got = run_cases(fn, cases, lambda f, c: f([w.clone() for w in c[1]], c[2], c[3]), what="your masks",
                    inspect=_inspect_masks, where=lambda c: f"On {c[0]}, ")
    if isinstance(got, str):
        return got
    if all(_equivalent(g, c) for g, c in zip(got, cases)):
        return PASSED
    named = name_mistake(got, [(c[1], c[2], c[3]) for c in cases], _mistakes(), _same_masks_many)
    if named:
        return named
    bad = next(c for g, c in zip(got, cases) if not _equivalent(g, c))
    return (f"not yet: on {bad[0]}, the masks should remove exactly round(s * n) weights, all with |w| no larger "
            "than any weight that is kept.")


def _same_masks_many(got, expected) -> bool:
    return all(_same_masks([g], [e]) for g, e in zip(got, expected))


# --------------------------------------------------------------------------- part 2: removing neurons


def reference_remove_neurons(ffn_in: torch.nn.Linear, ffn_out: torch.nn.Linear, drop: Sequence[int]):
    """New (ffn_in, ffn_out) without the neurons ``drop``: ffn_in loses those rows of its weight and
    entries of its bias; ffn_out loses those columns of its weight and keeps its bias."""
    keep = torch.tensor([j for j in range(ffn_in.out_features) if j not in set(int(d) for d in drop)])
    new_in = torch.nn.Linear(ffn_in.in_features, len(keep))
    new_out = torch.nn.Linear(len(keep), ffn_out.out_features)
    with torch.no_grad():
        new_in.weight.copy_(ffn_in.weight[keep])
        new_in.bias.copy_(ffn_in.bias[keep])
        new_out.weight.copy_(ffn_out.weight[:, keep])
        new_out.bias.copy_(ffn_out.bias)
    return new_in, new_out


_TEXTS = ["WINNER!! Claim your free prize now, call 0800 123", "see you at lunch tomorrow?",
          "URGENT: your account is locked, text BACK to 80082", "ok thanks, love you"]


def _tiny_bert():
    import transformers as tf

    from ..models import TextClassifier
    from ..students import _teacher_tokenizer

    tok = _teacher_tokenizer()
    cfg = tf.BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=66, initializer_range=0.3, num_labels=2,
                        pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    model = tf.BertForSequenceClassification(cfg).eval()
    with torch.no_grad():  # non-zero biases, so that a forgotten or fresh bias changes the logits
        for layer in layers(model):
            for role in ("ffn_in", "ffn_out"):
                layer[role].bias.normal_(0.0, 0.3)
    return TextClassifier(model=model, tokenizer=tok, max_length=48)


def check_remove_neurons(fn: Callable, drop: Sequence[int] = (3, 10, 11, 40)) -> str:
    """Check ``fn(ffn_in, ffn_out, drop) -> (new_in, new_out)`` on layer 0 of a small random BERT: the
    model with the new pair in place must give the library's logits (those of masking the neurons)."""
    clf = _tiny_bert()
    layer = layers(clf)[0]
    d_hidden, n = layer["ffn_out"].out_features, layer.num_neurons
    k = len(drop)

    def inspect(case, result):
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            return f"return a pair (new_in, new_out), got {type(result).__name__}."
        new_in, new_out = result
        if not all(isinstance(m, torch.nn.Linear) for m in result):
            return "both returned modules must be torch.nn.Linear (e.g. made with torch.nn.Linear or prune_linear_layer)."
        if new_in.weight.shape[0] == k != n - k:
            return (f"not yet: you kept the {k} neurons you were told to remove and removed the other {n - k}: "
                    "keep every j not in drop.")
        if tuple(new_out.weight.shape) == (d_hidden - k, n):
            return (f"not yet: you sliced the wrong dimension of the output Linear: its weight is (hidden={d_hidden}, "
                    f"neurons={n}); the neurons are its COLUMNS (dim=1), so it should become ({d_hidden}, {n - k}).")
        if tuple(new_in.weight.shape) == (n, d_hidden - k) or tuple(new_in.weight.shape) != (n - k, d_hidden):
            return (f"not yet: the first Linear's weight should lose {k} ROWS (one per neuron): ({n}, {d_hidden}) -> "
                    f"({n - k}, {d_hidden}); got {tuple(new_in.weight.shape)}.")
        if new_in.bias is None or new_in.bias.shape[0] != n - k:
            return ("not yet: you forgot the bias: the first Linear has one bias entry per neuron, so drop the same "
                    f"{k} entries ({n} -> {n - k}).")
        if tuple(new_out.weight.shape) != (d_hidden, n - k):
            return f"not yet: the output Linear's weight should be ({d_hidden}, {n - k}), got {tuple(new_out.weight.shape)}."
        if new_out.bias is None or new_out.bias.shape[0] != d_hidden:
            return f"not yet: the output Linear's bias belongs to the hidden size ({d_hidden}): keep it whole."
        return None

    got = run_cases(fn, [drop], lambda f, d: f(copy.deepcopy(layer["ffn_in"]), copy.deepcopy(layer["ffn_out"]), list(d)),
                    what="your neuron removal", inspect=inspect)
    if isinstance(got, str):
        return got
    new_in, new_out = got[0]
    model = copy.deepcopy(clf.model)
    target = layers(model)[0]
    target["ffn_in"], target["ffn_out"] = new_in, new_out
    from ..models import TextClassifier

    yours = TextClassifier(model=model.eval(), tokenizer=clf.tokenizer, max_length=clf.max_length).logits(_TEXTS)
    library = prune.remove_neurons(clf, {0: list(drop)}).logits(_TEXTS)
    if np.allclose(yours, library, atol=1e-5):
        return PASSED
    ref_in, ref_out = reference_remove_neurons(layer["ffn_in"], layer["ffn_out"], drop)
    same = lambda a, b: torch.equal(a.detach(), b.detach())  # noqa: E731
    if not same(new_in.weight, ref_in.weight):
        return "not yet: the first Linear kept the wrong rows: keep row j for every neuron j NOT in drop, in order."
    if not same(new_in.bias, ref_in.bias):
        return ("not yet: you forgot the bias: the first Linear's bias must lose the same entries as its rows "
                "(copy bias[keep], not a fresh bias).")
    if not same(new_out.weight, ref_out.weight):
        return "not yet: the output Linear's columns do not match the neurons kept: slice weight[:, keep] with the same indices."
    if not same(new_out.bias, ref_out.bias):
        return "not yet: you forgot the output Linear's bias: it belongs to the hidden size; copy it unchanged."
    return (f"not yet: the logits differ from masking those neurons by up to {np.abs(yours - library).max():.3g}; "
            "slice ffn_in's rows + bias and ffn_out's columns with the same kept indices.")
