"""Fine-tuning (prediction lives in :mod:`course_lib.evaluate`; ``train.predict`` is the same function).

SMS messages are short (median 19 tokens), so batches are built from messages of
similar length ("length bucketing"): far less padding, several times faster than
padding every batch to a fixed length.

Memory: the activations of one training step grow with batch size × sequence length
(MiniLM, batch 32 × 128 tokens: about 1.1 GB on top of the 0.9 GB of model, gradients and
optimizer state). A batch of long messages is therefore split into micro-batches of at most
:data:`MAX_TOKENS_PER_STEP` padded tokens whose gradients add up to the batch's gradient
(most SMS batches are far below the cap and run whole). With ``MALLOC_MMAP_THRESHOLD_``
set as ``binder/start`` sets it, fine-tuning the teacher stays under Binder's 2 GB.
"""

from __future__ import annotations

import math
import random
import time
from typing import Callable, Sequence

import pandas as pd
import torch

from . import config, data, models
from .evaluate import Predictions, headline_metric, predict, quality, softmax  # noqa: F401 - also train.predict / .softmax
from .models import TextClassifier
from .progress import progress_bar


def length_bucketed_batches(
    lengths: Sequence[int], batch_size: int, seed: int = 0, bucket_factor: int = 50
) -> list[list[int]]:
    """Indices grouped into batches of similar length, in a seeded random order.

    The data is shuffled, cut into chunks of ``batch_size * bucket_factor``, each chunk
    is sorted by length and cut into batches; the batch order is then shuffled, so
    every epoch sees a different mix while padding stays small.
    """
    rng = random.Random(seed)
    idx = list(range(len(lengths)))
    rng.shuffle(idx)
    chunk = batch_size * bucket_factor
    batches = []
    for start in range(0, len(idx), chunk):
        part = sorted(idx[start : start + chunk], key=lambda i: lengths[i])
        batches.extend(part[b : b + batch_size] for b in range(0, len(part), batch_size))
    rng.shuffle(batches)
    return batches


MAX_TOKENS_PER_STEP = 2048
"""Most (padded) tokens in one forward/backward pass of :func:`fine_tune`; longer batches are split."""


def micro_batches(batch: Sequence[int], lengths: Sequence[int], max_tokens: int | None) -> list[list[int]]:
    """Split ``batch`` (indices into ``lengths``) into consecutive parts whose padded size
    ``len(part) * max(lengths in part)`` is at most ``max_tokens`` (a single row always forms a part).

    ``max_tokens=None`` keeps the batch whole.
    """
    batch = list(batch)
    if not batch:
        return []
    if max_tokens is None:
        return [batch]
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be a positive number of tokens (or None), got {max_tokens}.")
    parts, longest = [[]], 0
    for i in batch:
        longest = max(longest, lengths[i])
        if parts[-1] and longest * (len(parts[-1]) + 1) > max_tokens:
            parts.append([])  # this row starts a new part
            longest = lengths[i]
        parts[-1].append(i)
    return parts


def _encode_all(clf: TextClassifier, texts: list[str]) -> list[list[int]]:
    enc = clf.tokenizer(texts, truncation=True, max_length=clf.max_length)
    return enc["input_ids"]


def _collate(clf: TextClassifier, ids: list[list[int]]) -> dict:
    return clf.tokenizer.pad({"input_ids": ids}, padding=True, return_tensors="pt")


def fine_tune(
    clf: TextClassifier,
    train_df: pd.DataFrame,
    val_df: pd.DataFrame | None = None,
    epochs: int = 3,
    lr: float = 1e-4,
    batch_size: int = 32,
    weight_decay: float = 0.01,
    warmup_ratio: float = 0.06,
    seed: int = 0,
    loss_fn: Callable | None = None,
    progress: bool = True,
    max_tokens: int | None = MAX_TOKENS_PER_STEP,
    fused: bool = False,
) -> dict:
    """Fine-tune ``clf.model`` on ``train_df`` (columns text/label) with AdamW and a linear schedule.

    ``loss_fn(logits, labels, batch_indices)`` may replace cross-entropy (distillation uses it);
    it must return the mean over the rows it is given. A batch longer than ``max_tokens``
    padded tokens is run as micro-batches (see :func:`micro_batches`), each loss weighted by its
    share of the batch, so the update equals the whole batch's and peak memory stays bounded.
    Labels are class ids below the model's ``config.num_labels`` (any number of classes).
    Only parameters with ``requires_grad`` are trained (see :func:`freeze_lower`); ``fused=True``
    uses PyTorch's fused AdamW kernel (same update rule, other rounding; benchmarks/training.py times it).
    Returns a history dict: per-step ``loss``, per-epoch ``val_f1`` (if ``val_df``: spam F1 for two
    classes, macro F1 for more), ``seconds`` (wall time) and ``steps``.
    """
    from transformers import get_linear_schedule_with_warmup

    num_labels = int(getattr(getattr(clf.model, "config", None), "num_labels", 2))
    train_df = data.validate(train_df, "train_df", num_classes=num_labels)
    if val_df is not None and int(data.label_ids(val_df["label"], "val_df").max()) >= num_labels:
        raise data.DataError(f"val_df has labels up to {int(val_df['label'].max())} but the model has "
                             f"{num_labels} classes; build it with num_labels={int(val_df['label'].max()) + 1}.")
    texts, labels = data.as_lists(train_df)
    config.seed_everything(seed)
    config.set_threads()
    ids = _encode_all(clf, texts)
    lengths = [len(x) for x in ids]
    label_t = torch.tensor(labels, dtype=torch.long)
    batches_per_epoch = math.ceil(len(ids) / batch_size)
    total = batches_per_epoch * epochs
    model = clf.model
    no_decay = ("bias", "LayerNorm.weight", "layer_norm", "norm")
    groups = [
        {"params": [p for n, p in model.named_parameters() if p.requires_grad and not any(k in n for k in no_decay)],
         "weight_decay": weight_decay},
        {"params": [p for n, p in model.named_parameters() if p.requires_grad and any(k in n for k in no_decay)],
         "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    if not groups:
        raise ValueError("Every parameter of the model is frozen (requires_grad=False): nothing to fine-tune.")
    optimizer = torch.optim.AdamW(groups, lr=lr, fused=fused)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(warmup_ratio * total), total)
    history = {"loss": [], "val_f1": [], "steps": total}
    start = time.perf_counter()
    bar = progress_bar(total=total, desc=f"fine-tune {clf.name}", disable=not progress)
    for epoch in range(epochs):
        model.train()
        for batch in length_bucketed_batches(lengths, batch_size, seed=seed * 1000 + epoch):
            loss = 0.0
            for part in micro_batches(batch, lengths, max_tokens):
                enc = _collate(clf, [ids[i] for i in part])
                out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
                if loss_fn is None:
                    part_loss = torch.nn.functional.cross_entropy(out.logits, label_t[part])
                else:
                    part_loss = loss_fn(out.logits, label_t[part], torch.tensor(part))
                part_loss = part_loss * (len(part) / len(batch))
                part_loss.backward()
                loss += part_loss.detach()
            torch.nn.utils.clip_grad_norm_([p for g in groups for p in g["params"]], 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            history["loss"].append(float(loss.detach()))
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{history['loss'][-1]:.3f}")
        if val_df is not None:
            val_pred = predict(clf, val_df["text"].tolist()).labels
            q = quality(val_df["label"].to_numpy(), val_pred, num_classes=num_labels)
            history["val_f1"].append(q[headline_metric(num_labels)])
    bar.close()
    model.eval()
    history["seconds"] = time.perf_counter() - start
    del optimizer, scheduler
    config.release_memory()
    return history


def freeze_lower(clf: TextClassifier, layers: int, embeddings: bool = True) -> int:
    """Freeze the embeddings and the first ``layers`` encoder blocks of a BERT-family classifier.

    Frozen parameters get ``requires_grad=False``: they still run forward, but backward stops
    above them and the optimizer skips them (the word-embedding table alone is about half of
    MiniLM's 22.7 M parameters). Returns the number of frozen parameters.
    """
    model = getattr(clf, "model", clf)
    base = getattr(model, getattr(model, "base_model_prefix", ""), None)
    blocks = getattr(getattr(base, "encoder", None), "layer", None)
    if base is None or blocks is None or not hasattr(base, "embeddings"):
        raise TypeError(f"freeze_lower needs a BERT-family model (.<base>.embeddings and .<base>.encoder.layer), "
                        f"got {type(model).__name__}.")
    if not 0 <= layers <= len(blocks):
        raise ValueError(f"layers must be between 0 and {len(blocks)} (the model's encoder blocks), got {layers}.")
    frozen = ([base.embeddings] if embeddings else []) + list(blocks[:layers])
    count = 0
    for module in frozen:
        for p in module.parameters():
            p.requires_grad_(False)
            count += p.numel()
    return count


def teacher_settings(seed: int = 0) -> dict:
    """The settings of the workbook's fine-tuned teacher in the current mode (full or fast)."""
    return {
        "base": models.TEACHER_HUB_NAME,
        "data": "sms_spam",
        "data_sha256": data.SMS_SHA256[:12],
        "split_seed": 0,
        "train_rows": config.pick(None, 800),
        "epochs": config.pick(3, 2),
        "lr": 1e-4,
        "batch_size": 32,
        "max_tokens_per_step": MAX_TOKENS_PER_STEP,
        "max_length": models.DEFAULT_MAX_LENGTH,
        "seed": seed,
    }


def finetuned_teacher(seed: int = 0, progress: bool = True, retrain: bool = False) -> TextClassifier:
    """The teacher fine-tuned on the SMS training split: loaded from the cache, or trained once and saved.

    The cache key covers every setting that changes the weights (mode included), so a
    fast-mode teacher is never mistaken for the full one.
    """
    settings = teacher_settings(seed)
    key = models.cache_key(kind="teacher", **settings)
    if models.is_cached(key) and not retrain:
        clf = models.load_classifier(key)
        if progress:
            trained = (clf.meta or {}).get("train_seconds")
            how = f", trained in {trained:.0f} s" if isinstance(trained, (int, float)) else ""
            print(f"Loaded the fine-tuned teacher from the cache (entry {key}{how}); "
                  f"finetuned_teacher(retrain=True) trains it again.")
        return clf
    splits = data.sms_splits(seed=settings["split_seed"])
    train_df = splits.train if settings["train_rows"] is None else data.sample(splits.train, settings["train_rows"], seed)
    clf = models.load_teacher(max_length=settings["max_length"], seed=seed)
    history = fine_tune(
        clf, train_df, splits.val, epochs=settings["epochs"], lr=settings["lr"],
        batch_size=settings["batch_size"], seed=seed, progress=progress,
    )
    clf.name = "teacher (MiniLM-L6, fine-tuned)"
    models.save_classifier(clf, key, {"settings": settings, "train_seconds": history["seconds"],
                                      "val_f1": history["val_f1"], "threads": config.num_threads()})
    return models.load_classifier(key)
