"""Run-time settings shared by every chapter: fast mode, cache folder, seeds, threads, and
whether the Hugging Face Hub can be reached (:func:`hub_reachable`, :class:`OfflineError`).

Environment variables (all optional):

- ``COURSE_FAST=1``   fast mode: smaller data and fewer training steps, so the test
  suite stays quick. The notebooks run unchanged; numbers are rougher.
- ``COURSE_CACHE``    folder for trained models and sweeps (default: the user's cache
  folder, e.g. ``~/.cache/nlp-compression-workbook``).
- ``COURSE_THREADS``  CPU threads used by torch and by every latency measurement
  (default: ``min(4, cpu count)``). The benchmark reports the value it used.

Memory (read by glibc when the kernel starts, not by this module): ``binder/start`` and
``scripts/run_notebooks.py`` set ``MALLOC_MMAP_THRESHOLD_=2097152``, so blocks of 2 MB and
more (activations, batches) are mapped for themselves and go back to the system when freed.
Without it glibc raises that threshold as the program runs, keeps large freed blocks in its
heap, and a kernel that trains grows towards its high-water mark (30 steps on the longest
SMS: peak 1.81 GB without, 1.47 GB with; b1 latency about 10 % slower with it).
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import platformdirs
import torch

APP_NAME = "nlp-compression-workbook"

#: Messages per forward pass when a model only predicts (evaluation, benchmarks' quality, logit caches).
#: Texts are sorted by length first; smaller batches pad less. Measured on 2 cores (teacher, median of 3):
#: 300 validation messages 2.29 s at 16 vs 2.85 s at 64; 1,956 YouTube comments 20.3 s vs 23.1 s; the
#: 1,115-message test split the same (9.3-9.8 s either way); 120 messages (fast mode) 1.39 s vs 2.42 s.
PREDICT_BATCH_SIZE = 16


class OfflineError(RuntimeError):
    """A model or dataset needs the internet, and the Hugging Face Hub cannot be reached."""


def hub_reachable(timeout: float = 2.0) -> bool:
    """True if the Hugging Face Hub answers on its HTTPS port (False when HF_HUB_OFFLINE=1)."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}:
        return False
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    host = urlparse(endpoint).hostname or "huggingface.co"
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def fast_mode() -> bool:
    """True when ``COURSE_FAST`` is set to 1/true/yes (read each call, so tests can flip it)."""
    return os.environ.get("COURSE_FAST", "").strip().lower() in {"1", "true", "yes", "on"}


def pick(full, fast):
    """Return ``fast`` in fast mode and ``full`` otherwise (e.g. ``pick(3, 1)`` epochs)."""
    return fast if fast_mode() else full


def cache_dir() -> Path:
    """The folder where trained models, sweeps and quiz progress are kept (created if missing)."""
    env = os.environ.get("COURSE_CACHE", "").strip()
    path = Path(env).expanduser() if env else Path(platformdirs.user_cache_dir(APP_NAME))
    path.mkdir(parents=True, exist_ok=True)
    return path


def num_threads() -> int:
    """CPU threads for torch and latency measurements (``COURSE_THREADS`` or min(4, cores))."""
    env = os.environ.get("COURSE_THREADS", "").strip()
    if env:
        try:
            value = int(env)
        except ValueError as exc:
            raise ValueError(f"COURSE_THREADS must be a whole number, got {env!r}") from exc
        if value < 1:
            raise ValueError(f"COURSE_THREADS must be at least 1, got {value}")
        return value
    return max(1, min(4, os.cpu_count() or 1))


def threads_label(n: int | None = None) -> str:
    """``"1 thread"`` / ``"4 threads"``: a thread count for a readout (default :func:`num_threads`)."""
    n = num_threads() if n is None else int(n)
    return f"{n} thread" if n == 1 else f"{n} threads"


def set_threads(n: int | None = None) -> int:
    """Fix torch's intra-op thread count (default :func:`num_threads`) and return it."""
    n = num_threads() if n is None else int(n)
    torch.set_num_threads(n)
    return n


@contextlib.contextmanager
def one_thread():
    """Run torch ops on one thread inside the block: for a few cheap element-wise passes (quantizing
    a weight), where on a shared 2-core machine a multi-threaded pass waits for a descheduled
    thread (measured: 8x slower)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def machine_load() -> str:
    """The 1-minute load average and core count as a sentence (every running program counts, this one
    included), or a note that the OS does not report it (Windows)."""
    getloadavg = getattr(os, "getloadavg", None)
    if getloadavg is None:
        return "load average not available on this OS"
    return f"load average {getloadavg()[0]:.1f} (1 min) on {os.cpu_count()} cores"


def release_memory() -> bool:
    """Hand freed heap memory back to the operating system (glibc's ``malloc_trim``).

    Called after training, whose freed activations would otherwise stay in the process
    (resident memory, MB, that Binder counts against its ~2 GB): after 20 steps of fine-tuning
    the teacher, 1,381 MB before the call, 578 MB after. Returns False where the C
    library has no ``malloc_trim`` (macOS, Windows, musl): nothing to do there.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        trim = getattr(libc, "malloc_trim", None)
    except OSError:
        return False
    if trim is None:
        return False
    trim(0)
    return True


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and torch so a run can be repeated."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def describe() -> dict:
    """A small summary of the environment for the welcome notebook's check."""
    import sys

    import sklearn
    import transformers

    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "scikit-learn": sklearn.__version__,
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "fast_mode": fast_mode(),
        "hf_offline": os.environ.get("HF_HUB_OFFLINE", "0") in {"1", "true", "True"},
    }
