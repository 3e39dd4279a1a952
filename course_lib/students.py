"""Student models for distillation, and vocabulary trimming.

Three ways to get a small model, all returned as :class:`course_lib.models.TextClassifier`
(so the benchmark, ``train.fine_tune`` and the cache treat them like the teacher):

- :func:`small_bert` — a small BERT built from a ``BertConfig`` (layers, hidden size, heads),
  randomly initialised, using the teacher's tokenizer. The default (2 layers, hidden 128)
  has 4.3M parameters, 3.9M of them in the word-embedding table.
- :func:`student_from_teacher` — a copy of the teacher that keeps every other layer, as
  DistilBERT does: it starts from the teacher's weights instead of from random numbers.
- :func:`trim_vocabulary` — keep only the word pieces a corpus uses (plus the special
  tokens): the embedding matrix loses its unused rows and a real ``BertTokenizer`` is built
  from the smaller vocabulary, so the model still saves and loads through
  :func:`course_lib.models.save_classifier` / :func:`~course_lib.models.load_classifier`.
"""

from __future__ import annotations

import copy
import functools
import json
import tempfile
from collections import Counter
from pathlib import Path
from typing import Iterable

import torch

from . import config, data, models
from .models import TextClassifier

#: The small from-scratch student of this chapter (BERT-tiny's shape): 4.3M parameters.
TINY = {"layers": 2, "hidden": 128, "heads": 2, "intermediate": 512}


@functools.lru_cache(maxsize=1)
def _teacher_tokenizer():
    """The teacher's tokenizer (the packaged MiniLM's, i.e. bert-base-uncased's 30,522 word pieces)."""
    from transformers import AutoTokenizer

    with models._quiet_transformers():
        return AutoTokenizer.from_pretrained(models.packaged_teacher_path())


def small_bert(
    layers: int = 2,
    hidden: int = 128,
    heads: int = 2,
    intermediate: int = 512,
    tokenizer=None,
    max_length: int = models.DEFAULT_MAX_LENGTH,
    dropout: float = 0.1,
    seed: int = 0,
    name: str | None = None,
    num_labels: int = 2,
) -> TextClassifier:
    """A randomly initialised BERT classifier of the given shape, with ``tokenizer`` (default: the teacher's).

    ``num_labels``: the number of classes (2 for spam / ham; your own data may have more).
    ``hidden`` must be a multiple of ``heads``. The vocabulary size is the tokenizer's
    (30,522 for the teacher's), position embeddings cover ``max_length`` tokens.
    """
    from transformers import BertConfig, BertForSequenceClassification

    if layers < 1 or hidden < 1 or heads < 1 or intermediate < 1:
        raise ValueError(f"layers, hidden, heads and intermediate must be positive; got {layers}, {hidden}, {heads}, {intermediate}.")
    if hidden % heads:
        raise ValueError(f"hidden ({hidden}) must be a multiple of heads ({heads}).")
    if isinstance(num_labels, bool) or not isinstance(num_labels, int) or num_labels < 2:
        raise ValueError(f"num_labels must be a whole number of classes, at least 2; got {num_labels!r}.")
    tokenizer = tokenizer if tokenizer is not None else _teacher_tokenizer()
    cfg = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=intermediate,
        max_position_embeddings=max_length,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
        pad_token_id=tokenizer.pad_token_id or 0,
        num_labels=num_labels,
    )
    config.seed_everything(seed)
    with models._quiet_transformers():
        model = BertForSequenceClassification(cfg)
    model.eval()
    name = name or f"student {layers}L-{hidden}H (scratch)"
    meta = {"arch": {"layers": layers, "hidden": hidden, "heads": heads, "intermediate": intermediate}, "init_seed": seed}
    return TextClassifier(model=model, tokenizer=tokenizer, max_length=max_length, name=name, meta=meta)


def student_from_teacher(teacher: TextClassifier, keep_every: int = 2, name: str | None = None) -> TextClassifier:
    """A copy of ``teacher`` with every ``keep_every``-th transformer layer (0, 2, 4 of 6 by default).

    Embeddings, pooler and classification head are copied as they are, so the student
    starts close to the teacher (DistilBERT's initialisation). The teacher is not changed.
    """
    if keep_every < 1:
        raise ValueError(f"keep_every must be at least 1, got {keep_every}.")
    model = copy.deepcopy(teacher.model)
    base = getattr(model, model.base_model_prefix, model)
    encoder = getattr(base, "encoder", None)
    if encoder is None or not hasattr(encoder, "layer"):
        raise TypeError("student_from_teacher needs a BERT-like model (model.<base>.encoder.layer).")
    kept = list(range(0, len(encoder.layer), keep_every))
    encoder.layer = torch.nn.ModuleList([encoder.layer[i] for i in kept])
    model.config.num_hidden_layers = len(kept)
    for i, layer in enumerate(encoder.layer):  # keep the per-layer index consistent (used by some attention caches)
        attn = getattr(getattr(layer, "attention", None), "self", None)
        if attn is not None and hasattr(attn, "layer_idx"):
            attn.layer_idx = i
    model.eval()
    name = name or f"student {len(kept)}L from teacher"
    meta = {"arch": {"from_teacher": teacher.meta.get("key", teacher.name), "kept_layers": kept}}
    return TextClassifier(model=model, tokenizer=teacher.tokenizer, max_length=teacher.max_length, name=name, meta=meta)


# --------------------------------------------------------------------------- vocabulary trimming


def used_token_ids(tokenizer, texts: Iterable[str], max_length: int | None = None, min_count: int = 1) -> list[int]:
    """Sorted ids of the word pieces ``tokenizer`` produces on ``texts`` (at least ``min_count`` times),
    plus every special token ([PAD], [UNK], [CLS], [SEP], [MASK])."""
    texts = data.check_texts(texts)
    counts: Counter = Counter()
    for start in range(0, len(texts), 512):
        enc = tokenizer(texts[start : start + 512], truncation=max_length is not None, max_length=max_length)
        for ids in enc["input_ids"]:
            counts.update(ids)
    keep = {i for i, c in counts.items() if c >= min_count}
    keep.update(int(i) for i in tokenizer.all_special_ids)
    return sorted(keep)


def trimmed_tokenizer(tokenizer, keep_ids: list[int]):
    """A real ``BertTokenizer`` whose vocabulary is ``keep_ids`` of ``tokenizer`` (in that order).

    On any text whose word pieces are all kept it tokenizes exactly as the original (WordPiece
    takes the longest known prefix, and every piece the original chose is still known);
    other words fall back to shorter pieces or [UNK].
    """
    from transformers import AutoTokenizer

    vocab = tokenizer.convert_ids_to_tokens(list(keep_ids))
    init = getattr(tokenizer, "init_kwargs", {}) or {}
    settings = {
        "do_lower_case": bool(getattr(tokenizer, "do_lower_case", init.get("do_lower_case", True))),
        "tokenize_chinese_chars": init.get("tokenize_chinese_chars", True),
        "strip_accents": init.get("strip_accents", None),
        "tokenizer_class": "BertTokenizer",
        "model_max_length": int(getattr(tokenizer, "model_max_length", 512)),
    }
    special = {k: str(v) for k, v in tokenizer.special_tokens_map.items() if isinstance(v, str)}
    missing = [t for t in special.values() if t not in vocab]
    if missing:
        raise ValueError(f"keep_ids must include the special tokens; missing {missing}.")
    with tempfile.TemporaryDirectory(prefix="trimmed-vocab-") as folder:
        path = Path(folder)
        (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
        (path / "tokenizer_config.json").write_text(json.dumps({**settings, **special}), encoding="utf-8")
        (path / "special_tokens_map.json").write_text(json.dumps(special), encoding="utf-8")
        with models._quiet_transformers():
            new = AutoTokenizer.from_pretrained(folder)
    if len(new) != len(vocab):
        raise RuntimeError(f"trimmed tokenizer has {len(new)} tokens, expected {len(vocab)} (duplicate pieces?).")
    return new


def trim_vocabulary(clf: TextClassifier, texts: Iterable[str], min_count: int = 1, name: str | None = None) -> TextClassifier:
    """A copy of ``clf`` that knows only the word pieces ``texts`` use (plus special tokens).

    The word-embedding matrix keeps only those rows (in the original order) and the
    tokenizer is rebuilt on the smaller vocabulary, so on texts of the corpus the trimmed
    model gives the same logits as the original. Words the corpus never used may be split
    differently or become [UNK]. ``clf`` itself is not changed.
    """
    texts = data.check_texts(texts)
    if not texts:
        raise ValueError("trim_vocabulary needs at least one text to know which word pieces to keep.")
    keep = used_token_ids(clf.tokenizer, texts, max_length=clf.max_length, min_count=min_count)
    tokenizer = trimmed_tokenizer(clf.tokenizer, keep)
    model = copy.deepcopy(clf.model)
    old = model.get_input_embeddings()
    index = torch.tensor(keep, dtype=torch.long)
    new = torch.nn.Embedding(len(keep), old.embedding_dim, padding_idx=tokenizer.pad_token_id)
    with torch.no_grad():
        new.weight.copy_(old.weight.index_select(0, index))
    model.set_input_embeddings(new)
    model.config.vocab_size = len(keep)
    model.config.pad_token_id = tokenizer.pad_token_id
    model.eval()
    meta = models.derived_meta(clf, trimmed_vocab={"kept": len(keep), "original": int(old.num_embeddings),
                                                 "corpus_texts": len(texts), "min_count": min_count})
    return TextClassifier(model=model, tokenizer=tokenizer, max_length=clf.max_length,
                          name=name or f"{clf.name} (trimmed vocab)", meta=meta)


def embedding_share(clf: TextClassifier) -> float:
    """Fraction of ``clf``'s parameters that sit in the word-embedding table."""
    emb = clf.model.get_input_embeddings().weight.numel()
    return emb / max(1, clf.num_parameters())
