"""Every benchmark script starts: its imports resolve (benchmarks/cpu.py included) and --help prints its usage.

The benchmarks themselves print measured figures and are run by hand (they are not timed tests).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p for p in (ROOT / "benchmarks").glob("*.py") if p.name != "cpu.py")


def test_there_are_benchmarks():
    assert len(SCRIPTS) >= 8


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_benchmark_script_starts(script):
    proc = subprocess.run([sys.executable, str(script), "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "usage:" in proc.stdout


def test_cpu_features_name_what_the_cpu_has():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import cpu
    finally:
        sys.path.pop(0)
    short, line = cpu.cpu_features(), cpu.cpu_line()
    assert short and "CPU features:" in line and "torch CPU capability" in line
    flags = cpu.cpu_flags()
    if flags is not None:
        assert all((f in flags) == (f"{f} yes" in line) for f in cpu.WANTED)
