"""Intermediate-layer distillation (TinyBERT / MiniLM style) and a teacher-initialised student
(chapter 07). :mod:`course_lib.distill` matches the teacher's *outputs*; this module matches what
happens inside:

- :func:`hidden_state_loss`: MSE between the student's hidden states, mapped to the teacher's width
  by a learned projection ``W`` (student width -> teacher width), and the teacher's (TinyBERT,
  Jiao et al. 2020): ``MSE(H_s W, H_t)`` over the real (non-padding) tokens;
- :func:`attention_loss`: KL divergence between the teacher's and the student's attention
  distributions over the keys, for each real query token (TinyBERT / MiniLM, Wang et al. 2020);
  heads are averaged first, so a 2-head student can follow a 12-head teacher;
- :func:`layer_map`: which teacher layer each student layer follows (uniform: with 2 of 6, layers 3 and 6);
- :func:`distill_layers`: a training loop for these losses (the teacher runs on every batch, so
  this is TinyBERT's first stage: a short pass before the usual logit distillation of
  :func:`course_lib.distill.distill`);
- :func:`cls_self_attention`: how much of [CLS]'s attention stays on [CLS], per layer (a layer that
  reads nothing of the message there is a bad one to copy);
- :func:`init_embeddings_from_teacher`: the student's word (and position, token-type) embeddings
  set to the teacher's, projected on their first principal components (PCA) to the student's width.

Shapes: hidden states (batch, seq, width); attentions (batch, heads, seq, seq), rows summing to 1;
``attention_mask`` (batch, seq) with 1 for a real token.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from . import config, data, train
from .models import TextClassifier
from .progress import progress_bar


# --------------------------------------------------------------------------- losses


def _token_weights(attention_mask: torch.Tensor | None, shape: tuple[int, int]) -> torch.Tensor:
    if attention_mask is None:
        return torch.ones(shape)
    if tuple(attention_mask.shape) != tuple(shape):
        raise ValueError(f"attention_mask {tuple(attention_mask.shape)} must be (batch, seq) = {tuple(shape)}.")
    return attention_mask.float()


def hidden_state_loss(student_hidden: torch.Tensor, teacher_hidden: torch.Tensor,
                      projection: torch.nn.Module | None = None,
                      attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error between ``projection(student_hidden)`` (batch, seq, teacher width) and
    ``teacher_hidden`` (batch, seq, teacher width), averaged over the real tokens and the teacher's
    width. ``projection=None`` needs equal widths. Zero when they are equal; the teacher is detached."""
    mapped = student_hidden if projection is None else projection(student_hidden)
    if tuple(mapped.shape) != tuple(teacher_hidden.shape):
        raise ValueError(f"student hidden states map to {tuple(mapped.shape)} but the teacher's are "
                         f"{tuple(teacher_hidden.shape)}; pass a projection Linear(student width, teacher width).")
    w = _token_weights(attention_mask, tuple(mapped.shape[:2])).to(mapped.dtype)
    sq = ((mapped - teacher_hidden.detach().to(mapped.dtype)) ** 2).mean(dim=-1)  # (batch, seq)
    return (sq * w).sum() / w.sum().clamp(min=1.0)


def attention_loss(student_attention: torch.Tensor, teacher_attention: torch.Tensor,
                   attention_mask: torch.Tensor | None = None, eps: float = 1e-8) -> torch.Tensor:
    """``KL(teacher ‖ student)`` between the head-averaged attention distributions over the keys,
    averaged over the real query tokens. ``student_attention`` (batch, h_s, seq, seq), ``teacher_attention``
    (batch, h_t, seq, seq); the numbers of heads may differ. Zero when they are equal."""
    if student_attention.dim() != 4 or teacher_attention.dim() != 4:
        raise ValueError("attentions must be (batch, heads, seq, seq) tensors.")
    if student_attention.shape[0] != teacher_attention.shape[0] or student_attention.shape[2:] != teacher_attention.shape[2:]:
        raise ValueError(f"student attention {tuple(student_attention.shape)} and teacher attention "
                         f"{tuple(teacher_attention.shape)} must share batch and sequence sizes.")
    p_s = student_attention.mean(dim=1)  # (batch, seq, seq)
    p_t = teacher_attention.detach().to(p_s.dtype).mean(dim=1)
    kl = (p_t * (torch.log(p_t + eps) - torch.log(p_s + eps))).sum(dim=-1)  # (batch, seq): one per query
    w = _token_weights(attention_mask, tuple(kl.shape)).to(kl.dtype)
    return (kl * w).sum() / w.sum().clamp(min=1.0)


def layer_map(student_layers: int, teacher_layers: int) -> list[tuple[int, int]]:
    """``(student layer, teacher layer)`` pairs, 1-based, uniform (TinyBERT): student layer m follows
    teacher layer round(m · teacher_layers / student_layers); e.g. 2 of 6 -> [(1, 3), (2, 6)]."""
    if not 1 <= student_layers <= teacher_layers:
        raise ValueError(f"need 1 <= student layers ({student_layers}) <= teacher layers ({teacher_layers}).")
    return [(m, int(round(m * teacher_layers / student_layers))) for m in range(1, student_layers + 1)]


def attention_pairs(student_layers: int, teacher_layers: int, which: str = "all") -> list[tuple[int, int]]:
    """The :func:`layer_map` pairs whose attention the student copies: ``"all"`` (TinyBERT) or ``"last"``
    (MiniLM: the last student layer follows the last teacher layer)."""
    if which not in ("all", "last"):
        raise ValueError(f"attention_layers must be 'all' or 'last', got {which!r}.")
    pairs = layer_map(student_layers, teacher_layers)
    return pairs if which == "all" else pairs[-1:]


def _layers(clf: TextClassifier) -> int:
    return int(clf.model.config.num_hidden_layers)


def _width(clf: TextClassifier) -> int:
    return int(clf.model.config.hidden_size)


# --------------------------------------------------------------------------- embedding initialisation


def init_embeddings_from_teacher(student: TextClassifier, teacher: TextClassifier) -> dict:
    """Set ``student``'s word, position and token-type embeddings (in place) to the teacher's projected
    on the first ``d`` principal components of the teacher's word-embedding matrix (``d`` = the
    student's width): ``E_s = (E_t − mean) V_d`` for words, ``P_t V_d`` for positions and token types.

    Needs the same vocabulary. Returns ``{"width": d, "explained_variance": share of the word
    embeddings' variance the d components keep}``.
    """
    t_emb, s_emb = teacher.model.base_model.embeddings, student.model.base_model.embeddings
    if teacher.tokenizer.get_vocab() != student.tokenizer.get_vocab():
        raise ValueError("student and teacher must share a vocabulary (build the student with the teacher's tokenizer).")
    d = _width(student)
    if d > _width(teacher):
        raise ValueError(f"the student ({d}) is wider than the teacher ({_width(teacher)}): nothing to project.")
    with torch.no_grad():
        words = t_emb.word_embeddings.weight.float()
        mean = words.mean(dim=0)
        _, s, vt = torch.linalg.svd(words - mean, full_matrices=False)
        basis = vt[:d].T  # (teacher width, d)
        s_emb.word_embeddings.weight.copy_((words - mean) @ basis)
        n_pos = s_emb.position_embeddings.weight.shape[0]
        s_emb.position_embeddings.weight.copy_(t_emb.position_embeddings.weight[:n_pos].float() @ basis)
        n_type = s_emb.token_type_embeddings.weight.shape[0]
        s_emb.token_type_embeddings.weight.copy_(t_emb.token_type_embeddings.weight[:n_type].float() @ basis)
    share = float((s[:d] ** 2).sum() / (s ** 2).sum())
    student.meta = {**(student.meta or {}), "embedding_init": {"from": "teacher PCA", "width": d, "explained_variance": share}}
    return {"width": d, "explained_variance": share}


# --------------------------------------------------------------------------- training


def distill_layers(student: TextClassifier, teacher: TextClassifier, texts, epochs: int = 1, lr: float = 1e-3,
                   batch_size: int = 32, seed: int = 0, hidden_weight: float = 1.0, attention_weight: float = 1.0,
                   student_layers=None, attention_layers: str = "all", progress: bool = True) -> dict:
    """Train ``student`` in place so its hidden states (through a learned projection, embeddings
    included: layer 0 -> 0) and attention maps follow the teacher's mapped layers (:func:`layer_map`).

    ``texts``: a list of texts or a frame with ``text`` (labels are not used). The teacher runs on
    every batch (no gradient); AdamW with a linear schedule, length-bucketed batches as in
    :func:`course_lib.train.fine_tune`. The projection is thrown away afterwards (the student keeps
    its shape). ``student_layers``: the student layers (1-based) that follow the teacher (default: all); 0, the
    embeddings, always does. ``attention_layers``: ``"all"`` (TinyBERT: every mapped layer's attention) or
    ``"last"`` (MiniLM: the last layer's only; the hidden states still follow every mapped layer). Returns ``loss`` (per step), ``hidden`` / ``attention`` (per step), ``seconds``, ``steps``.
    """
    from transformers import get_linear_schedule_with_warmup

    texts = data.check_texts(texts["text"].tolist() if hasattr(texts, "columns") else texts)
    if not texts:
        raise data.DataError("distill_layers needs at least one text.")
    if hidden_weight < 0 or attention_weight < 0 or hidden_weight + attention_weight == 0:
        raise ValueError("hidden_weight and attention_weight must be >= 0, and not both 0.")
    if teacher.tokenizer.get_vocab() != student.tokenizer.get_vocab():
        raise ValueError("student and teacher must share a vocabulary: both read the same token ids.")
    pairs = [(0, 0)] + layer_map(_layers(student), _layers(teacher))
    if student_layers is not None:
        unknown = sorted(set(student_layers) - {s for s, _ in pairs[1:]})
        if unknown:
            raise ValueError(f"student_layers {unknown} are not layers of the student (1 ... {_layers(student)}).")
        pairs = [(s, t) for s, t in pairs if s == 0 or s in set(student_layers)]
    chosen = set(attention_pairs(_layers(student), _layers(teacher), attention_layers))
    att_pairs = [(s, t) for s, t in pairs if (s, t) in chosen]
    config.seed_everything(seed)
    config.set_threads()
    projection = torch.nn.Linear(_width(student), _width(teacher), bias=False)
    ids = student.tokenizer(texts, truncation=True, max_length=min(student.max_length, teacher.max_length))["input_ids"]
    lengths = [len(x) for x in ids]
    total = math.ceil(len(ids) / batch_size) * epochs
    params = list(student.model.parameters()) + list(projection.parameters())
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(0.06 * total), total)
    use_attention = attention_weight > 0
    before = [(m, m.model.config._attn_implementation) for m in (student, teacher)]
    if use_attention:  # PyTorch's fused attention does not return the attention maps
        for m in (student, teacher):
            m.model.set_attn_implementation("eager")
    history = {"loss": [], "hidden": [], "attention": [], "steps": total, "pairs": pairs,
               "attention_pairs": att_pairs if use_attention else []}
    start = time.perf_counter()
    bar = progress_bar(total=total, desc=f"layer distillation {student.name}", disable=not progress)
    try:
        for epoch in range(epochs):
            student.model.train()
            for batch in train.length_bucketed_batches(lengths, batch_size, seed=seed * 1000 + epoch):
                enc = student.tokenizer.pad({"input_ids": [ids[i] for i in batch]}, padding=True, return_tensors="pt")
                inputs = dict(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                              output_hidden_states=True, output_attentions=use_attention)
                with torch.no_grad():
                    t_out = teacher.model(**inputs)
                s_out = student.model(**inputs)
                mask = enc["attention_mask"]
                hid = torch.stack([hidden_state_loss(s_out.hidden_states[s], t_out.hidden_states[t], projection, mask)
                                   for s, t in pairs]).mean()
                att = (torch.stack([attention_loss(s_out.attentions[s - 1], t_out.attentions[t - 1], mask)
                                    for s, t in att_pairs]).mean() if use_attention else torch.zeros(()))
                loss = hidden_weight * hid + attention_weight * att
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                history["loss"].append(float(loss.detach()))
                history["hidden"].append(float(hid.detach()))
                history["attention"].append(float(att.detach()))
                bar.update(1)
                bar.set_postfix(epoch=epoch + 1, hidden=f"{history['hidden'][-1]:.3f}", attention=f"{history['attention'][-1]:.3f}")
    finally:
        bar.close()
        for m, impl in before:
            m.model.set_attn_implementation(impl)
        student.model.eval()
    history["seconds"] = time.perf_counter() - start
    del optimizer, scheduler
    config.release_memory()
    return history


def cls_self_attention(clf: TextClassifier, texts, batch_size: int = 32) -> list[float]:
    """Per layer (1-based order), the mean share of the [CLS] token's attention that goes to [CLS] itself,
    heads averaged, over ``texts``: near 1 means the layer's [CLS] reads nothing of the message. A student
    layer made to copy such a layer's attention learns to ignore the message at [CLS], the token the
    classifier reads (why chapter 07 follows the teacher's last layer only, as MiniLM does)."""
    texts = data.check_texts(texts)
    if not texts:
        raise data.DataError("cls_self_attention needs at least one text.")
    impl = clf.model.config._attn_implementation
    clf.model.set_attn_implementation("eager")
    sums, n = None, 0
    try:
        with torch.no_grad():
            for i in range(0, len(texts), batch_size):
                enc = clf.tokenizer(texts[i:i + batch_size], padding=True, truncation=True,
                                    max_length=clf.max_length, return_tensors="pt")
                out = clf.model(**enc, output_attentions=True)
                share = torch.stack([a.mean(dim=1)[:, 0, 0] for a in out.attentions])  # (layers, batch)
                sums = share.sum(dim=1) if sums is None else sums + share.sum(dim=1)
                n += share.shape[1]
    finally:
        clf.model.set_attn_implementation(impl)
    return [float(x) for x in sums / n]


def layer_report(history: dict) -> dict:
    """First and last ten steps' mean hidden-state and attention losses of a :func:`distill_layers` run."""
    def ends(values):
        values = np.asarray(values, dtype=float)
        return float(values[:10].mean()), float(values[-10:].mean())
    (h0, h1), (a0, a1) = ends(history["hidden"]), ends(history["attention"])
    return {"hidden_first": h0, "hidden_last": h1, "attention_first": a0, "attention_last": a1}
