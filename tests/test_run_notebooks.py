"""scripts/run_notebooks.py under load: the per-cell timeout scales with the measured machine, and a stalled
kernel (no output, no CPU) is told apart from a slow one. The watch logic runs on a fake clock and fake CPU
counters; one test runs a real kernel on a two-cell notebook."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "run_notebooks.py"
spec = importlib.util.spec_from_file_location("run_notebooks", SCRIPT)
rn = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rn)


class FakeKernel:
    """A clock and a kernel CPU counter the test moves by hand."""

    def __init__(self):
        self.now, self.cpu = 0.0, 0.0

    def advance(self, seconds, cores=0.0):
        self.now += seconds
        self.cpu += seconds * cores


def _watch(stall_s=300):
    k = FakeKernel()
    return k, rn.CellWatch(lambda: k.cpu, stall_s=stall_s, clock=lambda: k.now)


def test_a_silent_idle_kernel_is_stalled():
    k, w = _watch()
    w.start_cell(7)
    for _ in range(59):
        k.advance(5)
        assert w.poll() == "running"
    k.advance(10)
    assert w.poll() == "stalled"
    assert w.describe().startswith("stalled: cell 7 sent no output and used no CPU for 305 s")


def test_a_silent_busy_kernel_is_slow_not_stalled():
    k, w = _watch()
    w.start_cell(3)
    for _ in range(400):  # 2000 s without output, but computing (on a busy machine: a third of a core)
        k.advance(5, cores=0.3)
        assert w.poll() == "running"
    text = w.describe()
    assert text.startswith("slow: cell 3 was still computing after 2000 s") and "30 % of a core" in text
    assert "--timeout-scale" in text


def test_output_keeps_an_idle_kernel_alive():
    k, w = _watch(stall_s=60)
    w.start_cell(0)
    for _ in range(30):  # waits on something, but prints every 20 s
        k.advance(20)
        w.saw_output()
        assert w.poll() == "running"
    k.advance(61)
    assert w.poll() == "stalled"
    _, never = _watch(stall_s=None)
    never.start_cell(0)
    assert never.poll() == "running"


def test_kernel_cpu_of_a_real_sleeping_process_is_near_zero():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        first = rn.kernel_cpu_seconds(proc.pid)
        assert first is not None and first < 5
    finally:
        proc.kill()
        proc.wait()
    assert rn.kernel_cpu_seconds(proc.pid) is None


def test_timeout_scales_with_the_measured_machine():
    recorded = {"01_x": {"full": {"machine": {"speed_gflops": 20.0}}},
                "02_y": {"full": {"machine": {"speed_gflops": 22.0}}, "fast": {"machine": {"speed_gflops": 18.0}}}}
    factor, why = rn.speed_factor({"speed_gflops": 10.0, "load": 1.0, "cores": 2}, recorded)
    assert factor == pytest.approx(2.0) and "10.0 GFLOP/s here now vs 20.0" in why
    factor, why = rn.speed_factor({"speed_gflops": 25.0, "load": 6.0, "cores": 2}, recorded)
    assert factor == pytest.approx(3.0) and "load average 6.0 on 2 cores" in why
    assert rn.speed_factor({"speed_gflops": 40.0, "load": 0.5, "cores": 2}, recorded)[0] == 1.0  # never below 1
    assert rn.speed_factor({"speed_gflops": 10.0}, {})[0] == 1.0


def test_a_real_stalled_kernel_is_stopped_and_a_busy_one_is_not(tmp_path, monkeypatch):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import time\nend = time.time() + 4\nwhile time.time() < end:\n    pass"),  # busy, silent
        nbformat.v4.new_code_cell("time.sleep(120)"),  # silent and idle: stalled
    ])
    path = tmp_path / "stall.ipynb"
    nbformat.write(nb, path)
    monkeypatch.setattr(rn, "POLL_S", 0.5)
    monkeypatch.setattr(rn, "GRACE_S", 5.0)
    seconds, _, error = rn.run_one(path, tmp_path / "out", timeout=300, html=False, stall_s=2.5)
    assert error is not None and error.startswith("stalled: cell 1"), error
    assert seconds < 60
    ran = nbformat.read(tmp_path / "out" / "stall.ipynb", as_version=4)
    assert ran.cells[0].execution_count == 1  # the busy cell ran through
    # where it waited: every thread's Python stack, taken before the interrupt
    stacks = (tmp_path / "out" / "stall.stall.txt").read_text()
    assert "Thread 0x" in stacks and "in <module>" in stacks, stacks


def test_a_real_busy_cell_at_the_timeout_is_reported_slow(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import time\nend = time.time() + 8\nwhile time.time() < end:\n    pass")])
    path = tmp_path / "slow.ipynb"
    nbformat.write(nb, path)
    _, _, error = rn.run_one(path, tmp_path / "out", timeout=3, html=False, stall_s=60)
    assert error is not None and error.startswith("slow: cell 0 was still computing"), error
    assert "per-cell timeout 3 s" in error
    assert not (tmp_path / "out" / "slow.stall.txt").exists()  # nothing stalled: no empty stack dump left behind


def test_a_lost_execute_reply_after_the_kernel_went_idle_does_not_hang_the_run(tmp_path, monkeypatch, capsys):
    # nbclient's own wait for the shell reply never returns (as when the reply is lost); the kernel still
    # publishes each cell's outputs and goes idle, so the runner takes the cell as finished, status from outputs
    import asyncio

    from nbclient import NotebookClient

    async def never(self, *args, **kwargs):
        await asyncio.sleep(3600)

    monkeypatch.setattr(NotebookClient, "_async_poll_for_reply", never)
    monkeypatch.setattr(rn, "REPLY_GRACE_S", 0.5)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 41 + 1\nprint(x)"),
                                         nbformat.v4.new_code_cell("raise ValueError('boom')")])
    path = tmp_path / "lost.ipynb"
    nbformat.write(nb, path)
    seconds, _, error = rn.run_one(path, tmp_path / "out", timeout=120, html=False, stall_s=60)
    assert seconds < 60
    assert error is not None and "boom" in error, error  # the error output still fails the notebook
    ran = nbformat.read(tmp_path / "out" / "lost.ipynb", as_version=4)
    assert ran.cells[0].outputs[0]["text"] == "42\n"
    assert capsys.readouterr().out.count("its execute_reply never came") == 2
