"""Transfer-set augmentation for distillation (chapter 07), after Tang et al. (2019),
"Distilling task-specific knowledge from BERT into simple neural networks", §3.3.

A teacher fine-tuned on a training split is saturated on those messages: its soft targets say
little more than the hard label. New messages *near* the training ones (a word masked, a word
swapped for a similar one, a short n-gram of the message) are ones it is less sure about, so its
soft targets on them carry information. Three operations, each seeded:

- **masking**: each word becomes ``[MASK]`` with probability ``p_mask``;
- **substitution**: each (other) word becomes one of its nearest neighbours in the teacher's
  word-embedding space with probability ``p_sub``. The packaged MiniLM has no masked-LM head to
  propose substitutes, so :func:`neighbour_table` builds them offline: cosine similarity between
  the rows of the word-embedding matrix that are whole words, the ``k`` most similar words of each
  (never the word itself), cached as a small ``.npz`` keyed by the weights' fingerprint;
- **n-gram sampling**: with probability ``p_ngram`` only a random n-gram (n from 1 to
  ``max_ngram`` words) of the message is kept.

:func:`augmented_transfer_set` makes ``copies`` augmented messages per training message. An
augmented message keeps its source's label and the id of its source: augmentation never changes
a label (whether the *teacher* still calls it spam is what its soft targets say).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from . import config, data, models

WORD = re.compile(r"\w+|[^\w\s]")
"""A word (letters, digits, underscore) or one other character (punctuation, a symbol). The BERT tokenizer
splits ASCII punctuation the same way, so the pieces joined by spaces tokenize as the original text does
(a symbol glued to a word, "£100", becomes two words: "£ 100")."""


def words_of(text: str) -> list[str]:
    """The words and punctuation marks of ``text``, in order (see :data:`WORD`)."""
    return WORD.findall(text)


# --------------------------------------------------------------------------- nearest neighbours


@dataclass
class NeighbourTable:
    """The ``k`` nearest whole words of each whole word of a vocabulary (cosine, word embeddings).

    ``words``: (n,) the whole words; ``neighbours``: (n, k) indices into ``words``, most similar first
    (a word is never its own neighbour); ``similarity``: (n, k) their cosine similarities.
    """

    words: list[str]
    neighbours: np.ndarray
    similarity: np.ndarray

    def __post_init__(self) -> None:
        self._index = {w: i for i, w in enumerate(self.words)}

    @property
    def k(self) -> int:
        return int(self.neighbours.shape[1])

    def of(self, word: str) -> list[str]:
        """The neighbours of ``word`` (lower-cased), most similar first; [] for a word not in the table."""
        i = self._index.get(word.lower())
        return [] if i is None else [self.words[j] for j in self.neighbours[i]]


def whole_word_ids(tokenizer, min_length: int = 2) -> list[int]:
    """Vocabulary ids of whole words: alphabetic entries of at least ``min_length`` letters that are
    neither continuation pieces (``##ing``) nor special or ``[unused]`` tokens."""
    special = set(tokenizer.all_special_tokens)
    vocab = tokenizer.get_vocab()
    return sorted(i for tok, i in vocab.items()
                  if tok not in special and tok.isalpha() and len(tok) >= min_length and tok.isascii())


def _matrix_digest(matrix: torch.Tensor) -> str:
    return hashlib.sha256(matrix.detach().float().contiguous().cpu().numpy().tobytes()).hexdigest()[:16]


def neighbour_table(clf: models.TextClassifier, k: int = 8, chunk: int = 1024) -> NeighbourTable:
    """The ``k`` nearest whole words of every whole word in ``clf``'s word-embedding matrix (cosine).

    Computed once and cached in ``<cache>/neighbours/<key>.npz``, the key built from the embedding
    matrix's bytes, the vocabulary and ``k``. MiniLM: about 22,000 whole words; a few seconds.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1 neighbour, got {k}.")
    weight = clf.model.get_input_embeddings().weight.detach().float()
    ids = whole_word_ids(clf.tokenizer)
    if len(ids) <= k:
        raise ValueError(f"the vocabulary has only {len(ids)} whole words; k={k} needs more than k.")
    words = clf.tokenizer.convert_ids_to_tokens(ids)
    key = models.cache_key(kind="neighbours", weights=_matrix_digest(weight), words=models.texts_digest(words), k=k)
    path = config.cache_dir() / "neighbours" / f"{key}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as saved:
            return NeighbourTable(words, saved["neighbours"], saved["similarity"])
    vectors = torch.nn.functional.normalize(weight[torch.tensor(ids)], dim=1)  # (n, dim), unit rows
    neighbours = np.zeros((len(ids), k), dtype=np.int32)
    similarity = np.zeros((len(ids), k), dtype=np.float16)
    with torch.no_grad():
        for start in range(0, len(ids), chunk):
            sims = vectors[start : start + chunk] @ vectors.T  # (chunk, n) cosine similarities
            rows = torch.arange(sims.shape[0])
            sims[rows, rows + start] = -float("inf")  # a word is never its own neighbour
            top = sims.topk(k, dim=1)
            neighbours[start : start + chunk] = top.indices.numpy()
            similarity[start : start + chunk] = top.values.numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, neighbours=neighbours, similarity=similarity)
    tmp.replace(path)
    return NeighbourTable(words, neighbours, similarity)


# --------------------------------------------------------------------------- augmenting messages


def _check_probability(name: str, p: float) -> float:
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} must be a probability between 0 and 1, got {p}.")
    return p


def augment_text(text: str, rng: np.random.Generator, table: NeighbourTable | None = None,
                 p_mask: float = 0.1, p_sub: float = 0.1, p_ngram: float = 0.25, max_ngram: int = 5,
                 mask_token: str = "[MASK]") -> str:
    """One augmented version of ``text`` (Tang et al., 2019): for each word, ``[MASK]`` with probability
    ``p_mask``, else a random one of its ``table`` neighbours with probability ``p_sub`` (words not in the
    table, and every word when ``table`` is None, are kept); then, with probability ``p_ngram``, only
    a random n-gram of n = 1 ... ``max_ngram`` words is kept. Words are joined by single spaces."""
    p_mask, p_sub, p_ngram = (_check_probability(n, p) for n, p in
                              (("p_mask", p_mask), ("p_sub", p_sub), ("p_ngram", p_ngram)))
    if max_ngram < 1:
        raise ValueError(f"max_ngram must be at least 1 word, got {max_ngram}.")
    words = words_of(text)
    if not words:
        return text
    out = []
    for word in words:
        u = rng.random()
        if u < p_mask:
            out.append(mask_token)
        elif u < p_mask + p_sub and table is not None and (options := table.of(word)):
            out.append(options[int(rng.integers(len(options)))])
        else:
            out.append(word)
    if rng.random() < p_ngram:
        n = int(rng.integers(1, max_ngram + 1))
        if n < len(out):
            start = int(rng.integers(0, len(out) - n + 1))
            out = out[start : start + n]
    return " ".join(out)


def augmented_transfer_set(frame: pd.DataFrame, copies: int = 3, seed: int = 0, table: NeighbourTable | None = None,
                           p_mask: float = 0.1, p_sub: float = 0.1, p_ngram: float = 0.25, max_ngram: int = 5,
                           include_original: bool = True, mask_token: str = "[MASK]", tries: int = 5) -> pd.DataFrame:
    """``copies`` augmented messages (:func:`augment_text`) of every row of ``frame`` (columns ``text``,
    ``label``; an optional ``row`` column is the source id, else the row's position).

    Returns columns ``text``, ``label`` (the source's, unchanged), ``source`` (id of the source row) and
    ``copy`` (0 = the original, kept when ``include_original``; 1 ... ``copies`` = augmented): the originals
    first, then each source's copies together. A copy equal to its original or to an earlier copy is drawn again (up to ``tries`` times).
    Each message gets its own random generator seeded by (``seed``, source id): the same seed gives
    the same set, and a message's copies do not depend on the other messages.
    """
    if "text" not in frame.columns or "label" not in frame.columns:
        raise data.DataError(f"augmented_transfer_set needs 'text' and 'label' columns; found {list(frame.columns)}.")
    if copies < 0 or (copies == 0 and not include_original):
        raise ValueError(f"copies must be a whole number >= 1 (or 0 with include_original=True), got {copies}.")
    texts = data.check_texts(frame["text"].tolist(), "frame['text']")
    labels = frame["label"].tolist()
    sources = frame["row"].astype(int).tolist() if "row" in frame.columns else list(range(len(frame)))
    rows = [{"text": t, "label": y, "source": s, "copy": 0} for t, y, s in zip(texts, labels, sources)] if include_original else []
    for text, label, source in zip(texts, labels, sources):
        rng = np.random.default_rng([int(seed), int(source)])
        seen = {text}
        for c in range(1, copies + 1):
            for _ in range(max(1, tries)):
                new = augment_text(text, rng, table, p_mask, p_sub, p_ngram, max_ngram, mask_token)
                if new not in seen:
                    break
            seen.add(new)
            rows.append({"text": new, "label": label, "source": source, "copy": c})
    return pd.DataFrame(rows, columns=["text", "label", "source", "copy"])
