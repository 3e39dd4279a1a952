"""Is a timing trustworthy? Signs that a speed measurement was taken on a busy (shared) machine.

A latency measured while other programs use the cores measures the queue for the CPU, not the model:
on two shared cores the teacher's batch-1 latency read 430 ms median instead of 11 ms. :func:`watch`
wraps a timing and checks, when it ends (:meth:`Watch.check`), four signs of noise:

- **load**: the 1-minute load average (before or after) above the core count: more runnable threads
  than cores, so the measured threads waited for a core;
- **other programs**: the cores' worth of CPU that *other* processes used during the timing (the
  machine's busy CPU time minus this process's own), more than the cores the timing's threads leave
  free (e.g. any other work above 0.5 core when 2 threads run on 2 cores);
- **spread**: p95 / p50 of the timed calls above :data:`SPREAD_LIMIT` (a quiet batch-1 run of the
  workbook's models stays well below it; texts differ in length, so some spread is normal);
- **reference**: a fixed small matrix product timed before and after the measurement that disagrees
  by more than :data:`REFERENCE_LIMIT` (the machine's speed changed during the run).

Every source is injectable (``load=``, ``cpu=``, ``reference=``), so tests are deterministic. The
result, a :class:`NoiseCheck`, says what it saw and what to do (:data:`ADVICE`).
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

LOAD_MARGIN = 0.5  # load average this far above the core count counts as a busy machine
OTHER_CPU_MARGIN = 0.5  # other programs may use this many cores beyond those the timing leaves free
SPREAD_LIMIT = 2.0  # p95 / p50 above this is far above a quiet batch-1 run
REFERENCE_LIMIT = 1.5  # the reference loop before vs after disagreeing by more than this factor
ADVICE = ("rerun when the machine is quiet, or with fewer threads (COURSE_THREADS=1), and compare speeds "
          "as interleaved ratios (evaluate.speed_ratio / bench.compare(..., interleaved=True))")


def load_average() -> float | None:
    """The 1-minute load average (runnable threads, averaged), or None where the OS has none (Windows)."""
    getloadavg = getattr(os, "getloadavg", None)
    return float(getloadavg()[0]) if getloadavg is not None else None


def cpu_seconds() -> tuple[float, float] | None:
    """(busy CPU seconds of the whole machine, CPU seconds of this process) since boot/start, or None
    where psutil is missing. Busy = user + nice + system + irq + softirq + steal (steal: a virtual
    machine's host gave the core to someone else)."""
    try:
        import psutil
    except ImportError:
        return None
    t = psutil.cpu_times()
    busy = sum(getattr(t, k, 0.0) for k in ("user", "nice", "system", "irq", "softirq", "steal"))
    own = psutil.Process().cpu_times()
    return float(busy), float(own.user + own.system)


def reference_ms(size: int = 256, repeats: int = 15) -> float:
    """Median ms of a fixed ``size``×``size`` fp32 matrix product, on torch's current thread count:
    the yardstick timed before and after a measurement."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(size, size, generator=g), torch.randn(size, size, generator=g)
    a @ b  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append((time.perf_counter() - start) * 1000.0)
    return float(statistics.median(times))


@dataclass
class NoiseCheck:
    """What :meth:`Watch.check` saw. ``reasons``: one short phrase per sign of noise (empty: clean).

    ``load``: the higher 1-min load average of before/after (None if unknown); ``other_cores``: cores'
    worth of CPU other programs used during the timing (None if unknown); ``spread``: p95/p50;
    ``reference_ratio``: reference loop after / before (None if not timed); ``threads``, ``cores``.
    """

    threads: int
    cores: int
    load: float | None = None
    other_cores: float | None = None
    spread: float | None = None
    reference_ratio: float | None = None
    reasons: list[str] = field(default_factory=list)

    @property
    def noisy(self) -> bool:
        return bool(self.reasons)

    @property
    def label(self) -> str:
        """``"ok"`` or ``"noisy: <reasons>"``: short, for a table column."""
        return "noisy: " + "; ".join(self.reasons) if self.reasons else "ok"

    def note(self) -> str:
        """One sentence: clean, or noisy with why and what to do."""
        if not self.reasons:
            return f"timing looks clean ({self._context()})"
        return f"timing is unreliable ({'; '.join(self.reasons)}): {ADVICE}"

    def _context(self) -> str:
        parts = [f"{self.threads} thread(s) on {self.cores} cores"]
        if self.load is not None:
            parts.append(f"load average {self.load:.1f}")
        if self.other_cores is not None:
            parts.append(f"other programs {self.other_cores:.1f} cores")
        return ", ".join(parts)

    def as_dict(self) -> dict:
        return {"noisy": self.noisy, "label": self.label, "load": self.load, "other_cores": self.other_cores,
                "spread": self.spread, "reference_ratio": self.reference_ratio, "threads": self.threads,
                "cores": self.cores}


def judge(threads: int, cores: int, load: float | None = None, other_cores: float | None = None,
          spread: float | None = None, reference_ratio: float | None = None) -> NoiseCheck:
    """The rules of this module applied to measured signs (see the module docstring)."""
    reasons = []
    if load is not None and load > cores + LOAD_MARGIN:
        reasons.append(f"load average {load:.1f} on {cores} cores")
    if other_cores is not None and other_cores > max(cores - threads, 0) + OTHER_CPU_MARGIN:
        reasons.append(f"other programs used {other_cores:.1f} of {cores} cores")
    if threads > cores:
        reasons.append(f"{threads} threads on {cores} cores")
    if spread is not None and spread > SPREAD_LIMIT:
        reasons.append(f"p95/p50 {spread:.1f}")
    if reference_ratio is not None and max(reference_ratio, 1 / reference_ratio) > REFERENCE_LIMIT:
        word = "slower" if reference_ratio > 1 else "faster"
        reasons.append(f"reference loop {max(reference_ratio, 1 / reference_ratio):.1f}x {word} after than before")
    return NoiseCheck(threads=threads, cores=cores, load=load, other_cores=other_cores, spread=spread,
                      reference_ratio=reference_ratio, reasons=reasons)


class Watch:
    """Signs of noise around one timing; use :func:`watch`. Call :meth:`check` after the block."""

    def __init__(self, threads: int, cores: int | None = None, load: Callable[[], float | None] = load_average,
                 cpu: Callable[[], tuple[float, float] | None] = cpu_seconds,
                 reference: Callable[[], float] | None = reference_ms, clock: Callable[[], float] = time.perf_counter):
        self.threads, self.cores = int(threads), int(cores or os.cpu_count() or 1)
        self._load, self._cpu, self._reference, self._clock = load, cpu, reference, clock
        self.load_before = self.load_after = None
        self.ref_before = self.ref_after = None
        self._cpu_before = self._cpu_after = None
        self._t0 = self._t1 = None

    def __enter__(self) -> "Watch":
        self.load_before = self._load()
        self.ref_before = self._reference() if self._reference else None
        self._cpu_before, self._t0 = self._cpu(), self._clock()
        return self

    def __exit__(self, *exc) -> None:
        self._cpu_after, self._t1 = self._cpu(), self._clock()
        self.ref_after = self._reference() if self._reference else None
        self.load_after = self._load()

    def other_cores(self) -> float | None:
        """Cores' worth of CPU used by other processes during the block (None if unknown)."""
        if self._cpu_before is None or self._cpu_after is None or not self._t1 or self._t1 <= self._t0:
            return None
        busy = self._cpu_after[0] - self._cpu_before[0]
        own = self._cpu_after[1] - self._cpu_before[1]
        return max(busy - own, 0.0) / (self._t1 - self._t0)

    def check(self, p50_ms: float | None = None, p95_ms: float | None = None) -> NoiseCheck:
        """Judge the block (``p50_ms``/``p95_ms``: the timed calls' median and 95th percentile, ms)."""
        loads = [x for x in (self.load_before, self.load_after) if x is not None]
        ratio = (self.ref_after / self.ref_before if self.ref_before and self.ref_after else None)
        spread = p95_ms / p50_ms if p50_ms and p95_ms is not None else None
        return judge(self.threads, self.cores, load=max(loads) if loads else None, other_cores=self.other_cores(),
                     spread=spread, reference_ratio=ratio)


def watch(threads: int | None = None, **sources) -> Watch:
    """``with noise.watch(threads) as w: <timing>`` then ``w.check(p50_ms, p95_ms)``. ``threads``: the
    timing's thread count (default torch's current one); ``sources``: see :class:`Watch`."""
    return Watch(int(threads or torch.get_num_threads()), **sources)
