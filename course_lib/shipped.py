"""Use a shipped model: load the one file :func:`course_lib.ship.ship` wrote and classify texts with
``onnxruntime``, ``numpy`` and the ``tokenizers`` library only. Importing this module (or running it)
never imports PyTorch or transformers: it is what a phone app or a small server would run.

The file is an int8 ONNX model whose ``metadata_props`` hold the tokenizer (``course.tokenizer``, the
JSON of a ``tokenizers.Tokenizer``) and the settings to run it (``course.meta``: ``max_length``,
``class_names``, input names, what the model was built from).

    from course_lib import shipped
    clf = shipped.load("spam_filter.onnx", threads=1)
    clf.spam_probability("WINNER! Claim your free prize now")   # a float in [0, 1]
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Iterable

import numpy as np

TOKENIZER_KEY = "course.tokenizer"
META_KEY = "course.meta"
PREDICT_BATCH_SIZE = 16  # course_lib.config.PREDICT_BATCH_SIZE, repeated: this module must not import torch


def cpu_session(path, threads: int):
    """An ONNX Runtime CPU session on ``path`` with ``threads`` intra-op threads, one inter-op thread, sequential
    execution, every graph optimisation, warnings off: the settings every ONNX model of the workbook runs with."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class ShippedClassifier:
    """A classifier backed by one shipped ``.onnx`` file (tokenizer inside). A benchmark variant:
    ``predict_logits(texts, batch_size) -> (n, classes)`` float32, ``size_mb()`` (the file),
    ``num_parameters()`` (weight elements in the file). ``load_ms``: how long opening it took (ms)."""

    def __init__(self, path, threads: int | None = None, name: str | None = None):
        from tokenizers import Tokenizer

        start = time.perf_counter()
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"No shipped model at {self.path}; build it with course_lib.ship.ship(student, path).")
        self.threads = int(threads or os.environ.get("COURSE_THREADS") or min(4, os.cpu_count() or 1))
        self.session = cpu_session(self.path, self.threads)
        props = self.session.get_modelmeta().custom_metadata_map
        if TOKENIZER_KEY not in props or META_KEY not in props:
            raise ValueError(f"{self.path.name} is an ONNX model but not a shipped one (no tokenizer inside); "
                             "build it with course_lib.ship.ship(student, path).")
        self.meta = json.loads(props[META_KEY])
        self.max_length = int(self.meta["max_length"])
        self.class_names = list(self.meta.get("class_names") or ["ham", "spam"])
        self.tokenizer = Tokenizer.from_str(props[TOKENIZER_KEY])
        self.tokenizer.enable_truncation(max_length=self.max_length)
        self.tokenizer.enable_padding(pad_id=int(self.meta["pad_id"]), pad_token=self.meta["pad_token"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.name = name or self.meta.get("name", self.path.stem)
        self.load_ms = (time.perf_counter() - start) * 1000.0

    def __repr__(self) -> str:
        return f"ShippedClassifier({self.path.name}, {self.size_mb():.2f} MB, threads={self.threads})"

    def encode(self, texts: list[str]) -> dict:
        """``{"input_ids", "attention_mask"}``: int64 arrays (batch, longest text in the batch)."""
        encodings = self.tokenizer.encode_batch(texts)
        feeds = {"input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
                 "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64)}
        return {k: feeds[k] for k in self.input_names}

    def predict_logits(self, texts: Iterable[str], batch_size: int = PREDICT_BATCH_SIZE) -> np.ndarray:
        """Logits, float32 (len(texts), classes), in the order given (texts batched by length)."""
        if isinstance(texts, str):
            raise TypeError("Pass a list of texts, e.g. [message], not a single string.")
        texts = list(texts)
        bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
        if bad:
            raise TypeError(f"Every text must be a string; item {bad[0]} is a {type(texts[bad[0]]).__name__}.")
        out = np.zeros((len(texts), len(self.class_names)), dtype=np.float32)
        order = np.argsort([len(t) for t in texts], kind="stable")
        for start in range(0, len(texts), max(1, int(batch_size))):
            idx = order[start:start + batch_size]
            out[idx] = self.session.run(None, self.encode([texts[i] for i in idx]))[0]
        return out

    def predict_proba(self, texts: Iterable[str], batch_size: int = PREDICT_BATCH_SIZE) -> np.ndarray:
        """Class probabilities (softmax of the logits), float32 (n, classes)."""
        z = self.predict_logits(texts, batch_size)
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    def spam_probability(self, text: str) -> float:
        """P(spam) of one message (class 1), a float in [0, 1]."""
        if not isinstance(text, str):
            raise TypeError(f"Pass one message as a string; got a {type(text).__name__}.")
        return float(self.predict_proba([text])[0, 1])

    def size_mb(self) -> float:
        """Size of the shipped file on disk in MB (10^6 bytes): model, weights and tokenizer."""
        return self.path.stat().st_size / 1e6

    def num_parameters(self) -> int:
        """Weight elements stored in the file (read from the meta written when it was shipped)."""
        return int(self.meta.get("weight_elements", 0))


def load(path, threads: int | None = None) -> ShippedClassifier:
    """Open a shipped file (see :class:`ShippedClassifier`); ``threads``: ONNX Runtime's intra-op threads."""
    return ShippedClassifier(path, threads=threads)


def _status_mb(field: str) -> float:
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+) kB", text).group(1)) * 1024 / 1e6


def serve(path, texts: list[str], threads: int = 1) -> dict:
    """Measure serving ``path`` in THIS process (run it in a fresh one, see ``course_lib.ship.footprint``):
    ``import_ms`` (onnxruntime + tokenizers), ``load_ms`` (open the file), ``first_call_ms``, the peak
    resident memory (``peak_mb``) and what serving added to it (``serving_mb``, Linux: VmHWM reset after the
    imports), and whether torch was ever imported (``torch_imported``)."""
    import sys

    start = time.perf_counter()
    import onnxruntime  # noqa: F401
    import tokenizers  # noqa: F401
    import_ms = (time.perf_counter() - start) * 1000.0
    try:
        Path("/proc/self/clear_refs").write_text("5")
        base = _status_mb("VmRSS")
        method = "VmHWM reset after imports"
    except OSError:
        base, method = float("nan"), "unavailable (not Linux)"
    clf = load(path, threads=threads)
    start = time.perf_counter()
    clf.predict_logits(texts[:1], batch_size=1)
    first_ms = (time.perf_counter() - start) * 1000.0
    clf.predict_logits(texts, batch_size=1)
    try:
        peak = _status_mb("VmHWM")
    except OSError:
        peak = float("nan")
    return {"import_ms": import_ms, "load_ms": clf.load_ms, "first_call_ms": first_ms, "baseline_mb": base,
            "peak_mb": peak, "serving_mb": peak - base, "method": method, "threads": threads, "texts": len(texts),
            "torch_imported": "torch" in sys.modules, "transformers_imported": "transformers" in sys.modules}


if __name__ == "__main__":  # python -m course_lib.shipped FILE "a message" ...: P(spam) of each message
    import sys

    if len(sys.argv) < 3:
        raise SystemExit('usage: python -m course_lib.shipped spam_filter.onnx "a message" ["another" ...]')
    model = load(sys.argv[1], threads=1)
    for message, p in zip(sys.argv[2:], model.predict_proba(sys.argv[2:])[:, 1]):
        print(f"P(spam) = {p:.3f}  {message}")
