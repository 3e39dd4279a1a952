"""Ship a classifier as ONE file: its int8 ONNX model with the tokenizer inside.

What a phone app (or a small server) receives is a single ``.onnx`` file:

1. :func:`course_lib.onnx_runtime.export_cached` exports the model (``torch.onnx``) and quantizes it with
   ONNX Runtime's dynamic int8 (weights int8 per channel, the embedding tables too; activations on the
   fly); ``quantize=False`` keeps fp32.
2. The tokenizer goes into the file's ``metadata_props`` as the JSON of a ``tokenizers.Tokenizer``
   (``course.tokenizer``), with the settings to run it (``course.meta``: max length, class names,
   padding token, vocabulary size, what the model was built from).

Its size on disk (:func:`size_mb`) is what ships. :mod:`course_lib.shipped` opens it with
``onnxruntime`` + ``tokenizers`` only (no PyTorch); :func:`footprint` measures that in a fresh process:
load time (ms) and peak memory (MB).

The steps before it are the earlier chapters': distil a student (:mod:`course_lib.distill`), prune its
FFN neurons (:func:`course_lib.prune.activation`), trim its vocabulary to the words the training messages
use (:func:`course_lib.students.trim_vocabulary`), then :func:`ship`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from . import config, onnx_runtime, shipped
from .models import TextClassifier, model_fingerprint

SHIP_VERSION = 1


def tokenizer_json(tokenizer) -> str:
    """The JSON of ``tokenizer``'s ``tokenizers.Tokenizer`` (a transformers *fast* tokenizer's backend)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise TypeError(f"Shipping needs a fast tokenizer (with .backend_tokenizer); got a {type(tokenizer).__name__}. "
                        "Load it with AutoTokenizer.from_pretrained(..., use_fast=True).")
    return backend.to_str()


def weight_elements(model) -> int:
    """Elements of the weight initializers of an ``onnx.ModelProto`` (scales, zero points, int64 shapes excluded)."""
    import onnx

    total = 0
    for init in model.graph.initializer:
        if init.name.endswith(("_scale", "_zero_point")) or init.data_type == onnx.TensorProto.INT64:
            continue
        total += int(np.prod(init.dims)) if len(init.dims) else 1
    return total


def weight_types(model) -> dict[str, int]:
    """Weight elements per stored type of an ``onnx.ModelProto``, e.g. ``{"INT8": 1_020_000, "FLOAT": 900}``."""
    import onnx

    out: dict[str, int] = {}
    for init in model.graph.initializer:
        if init.name.endswith(("_scale", "_zero_point")) or init.data_type == onnx.TensorProto.INT64:
            continue
        kind = onnx.TensorProto.DataType.Name(init.data_type)
        out[kind] = out.get(kind, 0) + (int(np.prod(init.dims)) if len(init.dims) else 1)
    return out


def ship(clf: TextClassifier, path=None, quantize: bool = True, class_names=("ham", "spam")) -> Path:
    """Write ``clf`` as one file: the (int8 unless ``quantize=False``) ONNX model with its tokenizer inside.

    ``path``: where (default: :func:`shipped_path`, in the cache folder). Returns the path. ``clf`` must be a
    :class:`~course_lib.models.TextClassifier` with a fast tokenizer; the export is cached by its weights.
    """
    import onnx

    if not isinstance(clf, TextClassifier):
        raise TypeError(f"ship needs a TextClassifier (model + tokenizer), got a {type(clf).__name__}.")
    tok = tokenizer_json(clf.tokenizer)
    fp32, int8 = onnx_runtime.export_cached(clf)
    model = onnx.load(str(int8 if quantize else fp32))
    num_labels = int(getattr(clf.model.config, "num_labels", len(class_names)))
    names = list(class_names) if len(class_names) == num_labels else [str(i) for i in range(num_labels)]
    meta = {
        "version": SHIP_VERSION, "name": clf.name, "max_length": int(clf.max_length), "class_names": names,
        "pad_id": int(clf.tokenizer.pad_token_id or 0), "pad_token": str(clf.tokenizer.pad_token),
        "vocab_size": int(len(clf.tokenizer)), "int8": bool(quantize),
        "weight_elements": weight_elements(model), "weight_types": weight_types(model),
        "source": {k: v for k, v in (clf.meta or {}).items() if k in ("key", "derived_from", "pruned_from", "arch",
                                                                        "trimmed_vocab", "pruning")},
    }
    del model.metadata_props[:]
    for key, value in ((shipped.TOKENIZER_KEY, tok), (shipped.META_KEY, json.dumps(meta, default=str))):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    path = Path(path) if path is not None else shipped_path(clf, quantize)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    onnx.save(model, str(tmp))
    os.replace(tmp, path)
    return path


def shipped_path(clf: TextClassifier, quantize: bool = True) -> Path:
    """The cache location of ``clf``'s shipped file (keyed by its weights and tokenizer)."""
    from .models import cache_key

    key = cache_key(kind="shipped", model=model_fingerprint(clf), vocab=len(clf.tokenizer), int8=quantize,
                    version=SHIP_VERSION, export=onnx_runtime.EXPORT_VERSION)
    return config.cache_dir() / "shipped" / f"{key}.onnx"


def ship_cached(clf: TextClassifier, quantize: bool = True) -> Path:
    """:func:`ship` into the cache once; later calls return the file already there."""
    path = shipped_path(clf, quantize)
    return path if path.is_file() else ship(clf, path, quantize=quantize)


def size_mb(path) -> float:
    """Size on disk of a shipped file in MB (10^6 bytes)."""
    return Path(path).stat().st_size / 1e6


def footprint(path, texts, threads: int = 1, timeout_s: float = 300) -> dict:
    """Serve a shipped file in a fresh Python process that imports only ``onnxruntime``, ``numpy`` and
    ``tokenizers`` (:func:`course_lib.shipped.serve`): ``import_ms``, ``load_ms``, ``first_call_ms``,
    ``peak_mb``, ``serving_mb`` (peak minus the memory after imports) and ``torch_imported`` (False
    unless something pulled PyTorch in). ``texts``: served one at a time, ``threads``: ONNX Runtime's."""
    texts = [str(t) for t in texts]
    if not texts:
        raise ValueError("footprint needs at least one text to serve.")
    code = ("import json, sys; from course_lib.shipped import serve; a = json.load(sys.stdin); "
            "print(json.dumps(serve(a['path'], a['texts'], a['threads'])))")
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", code], input=json.dumps({"path": str(path), "texts": texts,
                                                                         "threads": int(threads)}),
                          capture_output=True, text=True, timeout=timeout_s, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"footprint: the fresh process failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
