"""The CPU facts every benchmark prints next to its ratios: int8 / bf16 speed-ups depend on them, and a
shared CPU (the load average) makes timings pessimistic.

Imported by the scripts in this folder (``python benchmarks/x.py`` puts benchmarks/ on sys.path).
"""

from __future__ import annotations

WANTED = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


def cpu_flags() -> set[str] | None:
    """The CPU's flags from /proc/cpuinfo, or None where it cannot be read."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            line = next(l for l in f if l.startswith("flags"))
    except (OSError, StopIteration):
        return None
    return set(line.split(":", 1)[1].split())


def cpu_features() -> str:
    """The vector / int8 / bf16 features the CPU has, e.g. "avx2 avx512f avx512_vnni" (short form)."""
    flags = cpu_flags()
    if flags is None:
        return "unknown (no /proc/cpuinfo)"
    return " ".join(f for f in WANTED if f in flags) or "none of " + ", ".join(WANTED)


def cpu_line() -> str:
    """One line: every feature that matters, yes or no, and torch's CPU capability (long form)."""
    import torch

    flags = cpu_flags()
    shown = ", ".join(f"{w} {'yes' if w in flags else 'no'}" for w in WANTED) if flags else "flags not readable"
    return f"CPU features: {shown} · torch CPU capability {torch.backends.cpu.get_cpu_capability()}"


def load_report(start: float, load_before: tuple) -> str:
    """The script's wall time since ``start`` (time.perf_counter()) and the 1-minute load average at its
    start (``os.getloadavg()`` taken before the script loaded anything) and now, flagged when the CPU was shared."""
    import os
    import time

    cores = os.cpu_count() or 1
    shared = load_before[0] > 0.5 * cores
    return (f"wall time {time.perf_counter() - start:.0f} s · load average at start {load_before[0]:.2f}, now "
            f"{os.getloadavg()[0]:.2f} (1 min, this script included) on {cores} cores"
            + (" — other programs were using the CPU: timings are pessimistic, read the ratios" if shared else ""))
