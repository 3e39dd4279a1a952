"""ONNX Runtime on CPU: export a classifier to ONNX, quantize it to int8, run it as a benchmark variant.

The path practitioners use for fast CPU inference:

1. ``torch.onnx.export`` writes the model's graph and weights to a ``.onnx`` file. We use the
   TorchScript-based exporter (``dynamo=False``): the newer ``torch.export`` exporter (the default
   since torch 2.9) needs the ``onnxscript`` package, which the workbook does not install, and the
   TorchScript one traces this BERT correctly with dynamic batch and sequence axes (checked against
   PyTorch's logits in the tests). It warns that it is deprecated; the warnings are silenced here.
2. ``onnxruntime.quantization.quantize_dynamic(..., per_channel=True, weight_type=QuantType.QInt8)``
   stores every MatMul weight — and the embedding tables (Gather) — as int8 with one scale per
   channel, and quantizes activations on the fly (``DynamicQuantizeLinear`` + ``MatMulInteger``).
3. ``onnxruntime.InferenceSession`` runs it with a fixed number of threads.

Exported files are cached in ``cache_dir()/onnx/<key>/`` keyed by the source model's weights.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Iterable

import numpy as np
import torch

from . import config
from .shipped import cpu_session

OPSET = 17
EXPORT_VERSION = 1
_DUMMY_TEXTS = ["ok", "Free entry in 2 a wkly comp to win FA Cup final tkts, text FA to 87121 now"]


class OnnxClassifier:
    """A benchmark variant backed by an ``onnxruntime.InferenceSession``.

    ``path``: the ``.onnx`` file; ``tokenizer``/``max_length``: as the source classifier's;
    ``threads``: ONNX Runtime's intra-op threads (default :func:`course_lib.config.num_threads`, the
    same count the benchmark gives torch). Has ``predict_logits(texts, batch_size) -> (n, 2)``,
    ``size_mb()`` (the .onnx file) and ``num_parameters()`` (weight elements in the file).
    """

    def __init__(self, path, tokenizer, max_length: int = 128, name: str = "onnx", threads: int | None = None,
                 meta: dict | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"No ONNX model at {self.path}; export it first (onnx_variants / export_onnx).")
        self.tokenizer = tokenizer
        self.max_length = int(max_length)
        self.name = name
        self.meta = dict(meta or {})
        self.threads = int(threads or config.num_threads())
        self.session = cpu_session(self.path, self.threads)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self._params = None

    def __repr__(self) -> str:
        return f"OnnxClassifier({self.name!r}, {self.path.name}, {self.size_mb():.1f} MB, threads={self.threads})"

    def encode(self, texts) -> dict:
        enc = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length,
                             return_tensors="np")
        return {k: enc[k].astype(np.int64) for k in self.input_names if k in enc}

    def logits(self, texts: Iterable[str], batch_size: int = config.PREDICT_BATCH_SIZE) -> np.ndarray:
        """Logits, float32 (len(texts), num_classes), in the order given (texts grouped by length, as TextClassifier)."""
        from .data import check_texts

        texts = check_texts(texts)
        n_out = self.session.get_outputs()[0].shape[-1]
        n_out = n_out if isinstance(n_out, int) else 2
        if not texts:
            return np.zeros((0, n_out), dtype=np.float32)
        order = np.argsort([len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), n_out), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            idx = order[start : start + batch_size]
            result = self.session.run(None, self.encode([texts[i] for i in idx]))[0]
            out[idx] = result.astype(np.float32)
        return out

    def predict_logits(self, texts: Iterable[str], batch_size: int = config.PREDICT_BATCH_SIZE) -> np.ndarray:
        return self.logits(texts, batch_size=batch_size)

    def size_mb(self) -> float:
        """Size of the .onnx file (plus an external-data file, if any) in MB (10^6 bytes)."""
        total = self.path.stat().st_size
        data = self.path.with_suffix(self.path.suffix + ".data")
        if data.is_file():
            total += data.stat().st_size
        return total / 1e6

    def num_parameters(self) -> int:
        """Elements of the weight initializers in the file (quantization scales and zero points excluded)."""
        if self._params is None:
            import onnx

            model = onnx.load(str(self.path), load_external_data=False)
            total = 0
            for init in model.graph.initializer:
                if init.name.endswith(("_scale", "_zero_point")) or init.data_type == onnx.TensorProto.INT64:
                    continue
                total += int(np.prod(init.dims)) if len(init.dims) else 1
            self._params = total
        return self._params


class _LogitsByName(torch.nn.Module):
    """Calls a transformers classifier with its inputs BY NAME and returns only the logits.

    Passed by position, ``attention_mask`` lands in another parameter for some models (GPT-2's
    second one is ``past_key_values``); the key/value cache is switched off where the model has one."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model
        self.extra = {"use_cache": False} if "use_cache" in inspect.signature(model.forward).parameters else {}

    def forward(self, input_ids, attention_mask):
        return self.model(input_ids=input_ids, attention_mask=attention_mask, **self.extra).logits


def _check_classifier(clf, what: str) -> None:
    if not (hasattr(clf, "model") and hasattr(clf, "tokenizer") and hasattr(clf, "encode")):
        raise TypeError(
            f"{what} needs a TextClassifier (model + tokenizer), got a {type(clf).__name__}. Wrap a bare "
            "model: course_lib.models.TextClassifier(model=model, tokenizer=tokenizer)."
        )


def export_onnx(clf, path, opset: int = OPSET) -> Path:
    """Export ``clf.model`` (inputs ``input_ids``, ``attention_mask``, passed by name; output ``logits``)
    to ``path``, with dynamic batch and sequence axes. The dummy batch has padding, so the traced graph
    applies the attention mask for every input."""
    _check_classifier(clf, "export_onnx")
    model = _LogitsByName(clf.model.eval())
    enc = clf.encode(_DUMMY_TEXTS)
    path = Path(path)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
        torch.onnx.export(
            model,
            (enc["input_ids"], enc["attention_mask"]),
            str(path),
            dynamo=False,
            input_names=["input_ids", "attention_mask"],
            output_names=["logits"],
            dynamic_axes={"input_ids": {0: "batch", 1: "sequence"},
                          "attention_mask": {0: "batch", 1: "sequence"},
                          "logits": {0: "batch"}},
            opset_version=opset,
            do_constant_folding=True,
        )
    return path


def quantize_onnx(source, target, per_channel: bool = True) -> Path:
    """ONNX Runtime dynamic int8 quantization of ``source`` into ``target``: int8 weights (one scale per
    channel when ``per_channel``), activations quantized on the fly."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # onnxruntime logs a "consider pre-processing" hint on the root logger (and would configure it):
    # hold it back with a temporary null handler and level.
    root = logging.getLogger()
    level, guard = root.level, logging.NullHandler()
    root.addHandler(guard)
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(str(source), str(target), per_channel=per_channel, weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)
        root.removeHandler(guard)
    return Path(target)


def onnx_dir(clf) -> Path:
    """The cache folder for ``clf``'s ONNX files (keyed by its weights and the export settings)."""
    from .models import cache_key, model_fingerprint

    key = cache_key(kind="onnx", model=model_fingerprint(clf), opset=OPSET, exporter="torchscript",
                    max_length=clf.max_length, version=EXPORT_VERSION)
    return config.cache_dir() / "onnx" / key


def export_cached(clf, per_channel: bool = True) -> tuple[Path, Path]:
    """``(fp32_path, int8_path)`` for ``clf``: exported and quantized once, then taken from the cache."""
    folder = onnx_dir(clf)
    fp32, int8 = folder / "model.onnx", folder / ("model.int8.onnx" if per_channel else "model.int8-tensor.onnx")
    if not fp32.is_file():
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=folder.parent))
        try:
            export_onnx(clf, tmp / "model.onnx")
            folder.mkdir(parents=True, exist_ok=True)
            os.replace(tmp / "model.onnx", fp32)
            (folder / "meta.json").write_text(json.dumps(
                {"source": clf.name, "opset": OPSET, "torch": torch.__version__, "exporter": "torchscript"},
                indent=2), encoding="utf-8")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    if not int8.is_file():
        tmp = int8.with_name(f".{int8.name}.tmp")
        quantize_onnx(fp32, tmp, per_channel=per_channel)
        os.replace(tmp, int8)
    return fp32, int8


def onnx_variants(clf, threads: int | None = None) -> tuple[OnnxClassifier, OnnxClassifier]:
    """ONNX Runtime fp32 and int8 (per-channel, dynamic) variants of ``clf``, ready for the benchmark."""
    _check_classifier(clf, "onnx_variants")
    fp32, int8 = export_cached(clf)
    common = dict(tokenizer=clf.tokenizer, max_length=clf.max_length, threads=threads)
    return (OnnxClassifier(fp32, name=f"{clf.name} · ONNX Runtime fp32", meta={"kind": "onnx_fp32"}, **common),
            OnnxClassifier(int8, name=f"{clf.name} · ONNX Runtime int8", meta={"kind": "onnx_int8"}, **common))
