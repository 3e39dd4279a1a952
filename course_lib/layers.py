"""The transformer layers of a BERT-family classifier, seen by role.

``layers(model_or_clf)`` returns one :class:`Layer` per transformer layer; ``layer["ffn_in"]`` is its
first FFN Linear, and so on for the roles in :data:`ROLES`. Pruning (chapter 04) and low-rank
factorization (chapter 05) both walk the model this way, so they support the same models:

- BERT, MiniLM and RoBERTa: ``encoder.layer[i].attention.self.query`` ...;
- DistilBERT: ``transformer.layer[i].attention.q_lin`` ...;
- the students of :mod:`course_lib.students` (BERT-shaped).

Anything else (GPT-2's ``Conv1D``, a plain module, a layer already replaced by something that is not
a ``torch.nn.Linear``) raises ``TypeError`` saying what is supported.

What a layer receives: :func:`feed_inputs` (hooks), :func:`calibration_inputs` (the inputs themselves) and
:func:`input_moments` (their second moment and mean, for data-aware factorization in chapter 05).
"""

from __future__ import annotations

from typing import Iterable, Sequence

import torch

from .models import TextClassifier

ROLES = ("query", "key", "value", "attn_out", "ffn_in", "ffn_out")
GROUPS = {"attention": ROLES[:4], "ffn": ROLES[4:], **{role: (role,) for role in ROLES}}
SUPPORTED = ("BERT-family encoders: BERT, MiniLM, RoBERTa (encoder.layer[i].attention.self.query ...), "
             "DistilBERT (transformer.layer[i].attention.q_lin ...) and course_lib.students models")
# container of the layer stack, where each role sits inside one layer, the module that holds the head size
_LAYOUTS = [
    ("encoder", dict(zip(ROLES, ("attention.self.query", "attention.self.key", "attention.self.value",
                                 "attention.output.dense", "intermediate.dense", "output.dense"))), "attention.self"),
    ("transformer", dict(zip(ROLES, ("attention.q_lin", "attention.k_lin", "attention.v_lin",
                                     "attention.out_lin", "ffn.lin1", "ffn.lin2"))), "attention"),
]


#: Per role, the module paths (inside one layer) of every supported layout, e.g. "attention.self.query".
PATHS = {role: tuple(paths[role] for _, paths, _ in _LAYOUTS) for role in ROLES}


class Layer:
    """One transformer layer seen by role: ``layer["ffn_in"]`` is its first FFN Linear, and so on.
    ``layer[role] = linear`` replaces that Linear (e.g. by a sliced one)."""

    def __init__(self, module: torch.nn.Module, paths: dict, attention_path: str, index: int):
        self.module, self.paths, self.index = module, paths, index
        self.attention = module.get_submodule(attention_path)
        self.head_size = int(self.attention.attention_head_size)

    def __getitem__(self, role: str) -> torch.nn.Linear:
        return self.module.get_submodule(self.paths[role])

    def __setitem__(self, role: str, linear: torch.nn.Module) -> None:
        parent, _, attr = self.paths[role].rpartition(".")
        setattr(self.module.get_submodule(parent), attr, linear)

    @property
    def num_heads(self) -> int:
        return self["query"].out_features // self.head_size

    @property
    def num_neurons(self) -> int:
        return self["ffn_in"].out_features


def module_of(model_or_clf) -> torch.nn.Module:
    """The ``torch.nn.Module`` inside a :class:`TextClassifier` (or the module itself)."""
    if isinstance(model_or_clf, TextClassifier):
        return model_or_clf.model
    if isinstance(model_or_clf, torch.nn.Module):
        return model_or_clf
    raise TypeError(f"Expected a TextClassifier or a torch.nn.Module, got {type(model_or_clf).__name__}.")


def layers(model_or_clf, what: str = "course_lib") -> list[Layer]:
    """The transformer layers of a supported model, or ``TypeError`` naming what is supported.
    ``what`` names the caller in that message (e.g. ``"course_lib.prune"``)."""
    model = module_of(model_or_clf)
    base = getattr(model, getattr(model, "base_model_prefix", "") or "-", model)
    for container, paths, attention_path in _LAYOUTS:
        stack = getattr(getattr(base, container, None), "layer", None)
        if not isinstance(stack, torch.nn.ModuleList) or not len(stack):
            continue
        try:
            found = [Layer(layer, paths, attention_path, i) for i, layer in enumerate(stack)]
            for layer in found:
                for role in ROLES:
                    if type(layer[role]) is not torch.nn.Linear:
                        raise TypeError(f"layer {layer.index} {role} is {type(layer[role]).__name__}, not "
                                        "torch.nn.Linear; prune the model before quantizing or factorizing it.")
        except AttributeError:
            continue
        return found
    conv = any(type(m).__name__ == "Conv1D" for m in model.modules())
    hint = " (its layers are transformers' Conv1D, as in GPT-2)" if conv else ""
    raise TypeError(f"{what} cannot handle {type(model).__name__}{hint}; it supports {SUPPORTED}.")


def encoder_parameters(model_or_clf) -> int:
    """Parameters of the transformer layers (embeddings, pooler and classifier head excluded)."""
    return sum(p.numel() for layer in layers(model_or_clf) for p in layer.module.parameters())


@torch.no_grad()
def feed_inputs(clf: TextClassifier, texts: list[str], modules: dict, on_input, batch_size: int = 32) -> None:
    """Run ``texts`` through ``clf`` in eval mode and call ``on_input(key, x)`` with the input each module of
    ``modules`` ({key: module}) receives, x (tokens, in_features), non-padding tokens only (forward pre-hooks,
    removed afterwards; the model's train/eval mode is restored)."""
    model, state = clf.model, {}
    hooks = [module.register_forward_pre_hook(lambda mod, args, key=key: on_input(key, args[0][state["keep"]]))
             for key, module in modules.items()]
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(texts), batch_size):
            enc = clf.encode(texts[start:start + batch_size])
            state["keep"] = enc["attention_mask"].bool()
            model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)


def _feed(clf: TextClassifier, texts: Sequence[str], names: Iterable[str], on_input) -> None:
    """Call ``on_input(name, x)`` with each named layer's inputs on ``texts``, x (tokens, in), non-padding only."""
    from .data import check_texts

    texts = check_texts(texts)
    if not texts:
        raise ValueError("Calibration needs at least one text.")
    with torch.inference_mode():
        feed_inputs(clf, texts, {n: clf.model.get_submodule(n) for n in names}, on_input)


def calibration_inputs(clf: TextClassifier, texts: Sequence[str], names: Iterable[str]) -> dict[str, torch.Tensor]:
    """Inputs each named layer receives on ``texts``: name → float32 tensor (non-padding tokens, in_features)."""
    parts: dict[str, list] = {n: [] for n in names}
    _feed(clf, texts, parts, lambda n, x: parts[n].append(x.float()))
    return {n: torch.cat(p) for n, p in parts.items()}


def input_moments(clf: TextClassifier, texts: Sequence[str], names: Iterable[str]) -> dict[str, dict]:
    """Per named layer: ``cov`` = E[x xᵀ] (in × in, float64, uncentred), ``mean`` = E[x] (in,), ``tokens`` (count)."""
    acc: dict[str, dict] = {n: {"cov": 0.0, "mean": 0.0, "tokens": 0} for n in names}

    def add(n, x):  # each batch's Gram matrix in float32 (twice as fast), summed in float64
        acc[n]["cov"] = acc[n]["cov"] + (x.T.float() @ x.float()).double()
        acc[n]["mean"] = acc[n]["mean"] + x.double().sum(0)
        acc[n]["tokens"] += x.shape[0]

    _feed(clf, texts, acc, add)
    return {n: {"cov": a["cov"] / a["tokens"], "mean": a["mean"] / a["tokens"], "tokens": a["tokens"]}
            for n, a in acc.items()}
