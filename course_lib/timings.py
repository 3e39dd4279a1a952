"""How long the chapters take: run times measured by ``make notebooks`` / ``scripts/run_notebooks.py``,
the machine they were measured on, and this machine's speed, so a time estimate is a measurement.

``scripts/run_notebooks.py`` calls :func:`record` after each notebook; the results live in
``notebooks/timings.json`` (one entry per notebook and mode: seconds, peak memory in MB, models trained
during the run, the machine and its load). A chapter shows :func:`estimate`, chapter 00 :func:`table` and
:func:`machine`. The speed is a rough yardstick: the GFLOP/s of a 256×256 fp32 matrix product on one
thread, measured now (a shared or busy machine measures slower, which is what its run times feel too).
"""

from __future__ import annotations

import json
import os
import platform
import time
from datetime import date
from pathlib import Path

import pandas as pd
import torch

from .config import one_thread

TIMINGS_FILE = Path(__file__).resolve().parents[1] / "notebooks" / "timings.json"


def machine_speed(size: int = 256, repeats: int = 15) -> float:
    """GFLOP/s of a ``size``×``size`` fp32 matrix product on one thread (median of ``repeats`` timed runs)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    times = []
    with one_thread():
        a @ b  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - start)
    return 2 * size**3 / sorted(times)[len(times) // 2] / 1e9


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def machine() -> dict:
    """This machine now: ``cpu``, ``cores``, ``load`` (1-minute load average, where the OS gives one) and
    ``speed_gflops`` (:func:`machine_speed`)."""
    try:
        load = round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        load = None
    return {"cpu": _cpu_name(), "cores": os.cpu_count(), "load": load, "speed_gflops": round(machine_speed(), 2)}


def load_timings(path: Path | str = TIMINGS_FILE) -> dict:
    """The recorded run times: ``{notebook stem: {mode: entry}}`` (empty if nothing was measured yet)."""
    path = Path(path)
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def record(notebook: str, mode: str, seconds: float, peak_mb: float, models_trained: int,
           host: dict | None = None, path: Path | str = TIMINGS_FILE) -> dict:
    """Store one measured run of ``notebook`` (a file stem, e.g. ``"03_quantization"``) in ``mode``
    (``"fast"`` or ``"full"``): wall time in s, peak memory in MB, the number of models trained during the
    run (0 = everything came from the cache), and ``host`` (default: :func:`machine` now)."""
    if mode not in ("fast", "full"):
        raise ValueError(f"mode must be 'fast' or 'full', got {mode!r}.")
    data = load_timings(path)
    entry = {"seconds": round(float(seconds), 1), "peak_mb": round(float(peak_mb)), "models_trained": int(models_trained),
             "date": date.today().isoformat(), "machine": host if host is not None else machine()}
    data.setdefault(notebook, {})[mode] = entry
    Path(path).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return entry


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def _describe(entry: dict) -> str:
    m = entry["machine"]
    load = f", load average {m['load']}" if m.get("load") is not None else ""
    cache = ("models trained during the run: " + str(entry["models_trained"])) if entry["models_trained"] \
        else "every model loaded from the cache"
    return (f"{_minutes(entry['seconds'])} ({cache}) on {m['cores']} cores of {m['cpu']}{load}, "
            f"{m['speed_gflops']:.1f} GFLOP/s, {entry['date']}")


def estimate(notebook: str, here: dict | None = None, path: Path | str = TIMINGS_FILE) -> str:
    """Markdown: the measured run times of ``notebook`` in each mode, with the machine they were measured
    on, scaled to this machine's speed (``here``, default :func:`machine` now); says so when none exists."""
    runs = load_timings(path).get(notebook, {})
    if not runs:
        return (f"*Run time: not measured yet for `{notebook}`. `make notebooks` (full mode) or "
                f"`python scripts/run_notebooks.py --fast --only {notebook[:2]}` measures it.*")
    here = here if here is not None else machine()
    lines = []
    for mode in ("full", "fast"):
        if mode in runs:
            entry = runs[mode]
            ratio = entry["machine"]["speed_gflops"] / here["speed_gflops"]
            lines.append(f"- **{mode} mode**: {_describe(entry)}. On this machine ({here['speed_gflops']:.1f} GFLOP/s "
                         f"now) that is roughly {_minutes(entry['seconds'] * ratio)}.")
        else:
            lines.append(f"- **{mode} mode**: not measured yet.")
    return "*Measured run time of this notebook* (`notebooks/timings.json`, written by `make notebooks`):\n\n" + \
        "\n".join(lines)


def table(path: Path | str = TIMINGS_FILE) -> pd.DataFrame:
    """One row per recorded notebook and mode: minutes, peak memory (MB), models trained, machine, speed, load."""
    rows = []
    for notebook, runs in sorted(load_timings(path).items()):
        for mode, e in sorted(runs.items()):
            m = e["machine"]
            rows.append({"notebook": notebook, "mode": mode, "minutes": round(e["seconds"] / 60, 1),
                         "peak memory (MB)": e["peak_mb"], "models trained": e["models_trained"],
                         "machine": f"{m['cores']} cores, {m['cpu']}", "GFLOP/s": m["speed_gflops"],
                         "load average": m.get("load"), "date": e["date"]})
    return pd.DataFrame(rows).set_index(["notebook", "mode"]) if rows else pd.DataFrame()
