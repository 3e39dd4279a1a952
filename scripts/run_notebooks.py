"""Instructors: execute every notebook headless and write the executed copies (and HTML).

    python scripts/run_notebooks.py --out build/notebooks            # full mode (what learners get)
    python scripts/run_notebooks.py --fast --only 01                   # fast mode, one chapter

Prints each notebook's wall time and the kernel's peak memory (RSS, MB), and exits
non-zero if any notebook fails. Trained models land in the normal cache
(COURSE_CACHE), so a second run reuses them. Each notebook that runs through is recorded in
notebooks/timings.json (course_lib.timings: seconds, peak MB, models trained during the run, the
machine and its load), which the chapters show as their time estimates; --no-timings skips that.

A slow machine is not a broken one. The per-cell timeout (--cell-timeout, default 1200 s on a quiet machine)
is multiplied by a speed factor measured before each notebook: how much slower this machine is now than the
machines timings.json was recorded on (course_lib.timings.machine_speed) or how oversubscribed its cores are
(load average / cores), whichever is larger; --timeout-scale sets the factor instead. A cell that reaches it
while its kernel is still computing is reported as "slow". A *stalled* kernel — no output and no CPU use by the
kernel process (and its children) for --stall-timeout seconds (default 300) — is interrupted (then killed if it
does not stop) long before that, and reported as "stalled". Before the interrupt, the kernel is asked for the
Python stack of every thread (``faulthandler`` on SIGUSR1, installed when the kernel starts): it is printed
and saved next to the executed notebook as ``<name>.stall.txt``, so a stall says where it waited. A cell whose
kernel went idle but whose execute_reply never arrived (seen with ipykernel 7) is taken as finished after
30 s, with its status read from its outputs, and named in the log.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import nbformat
import psutil
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

ROOT = Path(__file__).resolve().parents[1]
BINDER_MB = 2000  # Binder gives about 2 GB: every notebook's kernel must stay under it (issue 6)
CELL_TIMEOUT_S = 1200  # per-cell timeout on a quiet machine: no cell needs 20 min on 2 quiet cores
STALL_S = 300  # no output and no kernel CPU for this long: the kernel is stalled, not slow
IDLE_CPU = 0.05  # kernel CPU below this fraction of one core counts as idle
POLL_S = 5.0  # how often the watchdog samples the kernel's CPU time
GRACE_S = 30.0  # after interrupting a stalled kernel, how long to wait before killing it
REPLY_GRACE_S = 30.0  # a cell whose kernel went idle: how long to wait for its execute_reply (see WatchedClient)


class Background:
    """A daemon thread running ``self._run`` for the length of a ``with`` block; ``_run`` ends once
    ``self._stop`` is set (on leaving the block)."""

    def __init__(self):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


class PeakMemory(Background):
    """Samples the RSS of a process and its children every 0.2 s; ``peak_mb`` in MB (10^6 bytes)."""

    def __init__(self, pid: int):
        self.proc = psutil.Process(pid)
        self.peak_mb = 0.0
        super().__init__()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                procs = [self.proc] + self.proc.children(recursive=True)
                rss = sum(p.memory_info().rss for p in procs)
                self.peak_mb = max(self.peak_mb, rss / 1e6)
            except psutil.Error:
                pass
            self._stop.wait(0.2)



def kernel_cpu_seconds(pid: int) -> float | None:
    """CPU seconds (user + system) used so far by process ``pid`` and its live children; None once it is gone."""
    try:
        proc = psutil.Process(pid)
        total = 0.0
        for p in [proc] + proc.children(recursive=True):
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
        return total
    except psutil.Error:
        return None


class CellWatch:
    """Tells a slow cell from a stalled one, from the kernel's output and CPU time.

    ``cpu_seconds()``: the kernel's CPU seconds so far (:func:`kernel_cpu_seconds`); ``clock()``: seconds.
    :meth:`start_cell` at each cell, :meth:`saw_output` on every message from the kernel, :meth:`poll`
    every few seconds. The cell is *stalled* when, for ``stall_s`` seconds, the kernel sent nothing and used
    less than ``idle_cpu`` of one core (0 or None: never); otherwise it is running, however slowly.
    """

    def __init__(self, cpu_seconds: Callable[[], float | None], stall_s: float | None = STALL_S,
                 idle_cpu: float = IDLE_CPU, clock: Callable[[], float] = time.monotonic):
        self.cpu_seconds, self.stall_s, self.idle_cpu, self.clock = cpu_seconds, stall_s, idle_cpu, clock
        self.start_cell(-1)

    def start_cell(self, index: int) -> None:
        now = self.clock()
        self.index, self.started, self.last_output, self.last_busy = index, now, now, now
        self.samples = [(now, self.cpu_seconds() or 0.0)]

    def saw_output(self) -> None:
        self.last_output = self.clock()

    def poll(self) -> str:
        """Sample the kernel's CPU time; ``"stalled"`` or ``"running"``."""
        now, cpu = self.clock(), self.cpu_seconds()
        t0, c0 = self.samples[-1]
        if cpu is not None:
            if now > t0 and (cpu - c0) / (now - t0) >= self.idle_cpu:
                self.last_busy = now
            self.samples.append((now, cpu))
            self.samples = [s for s in self.samples if s[0] >= now - 120] or self.samples[-1:]
        return self.state()

    def quiet_s(self) -> float:
        """Seconds since the kernel last sent output or used CPU."""
        return self.clock() - max(self.last_output, self.last_busy)

    def state(self) -> str:
        return "stalled" if self.stall_s and self.quiet_s() >= self.stall_s else "running"

    def cpu_share(self, window_s: float = 60.0) -> float | None:
        """The kernel's CPU use over the last ``window_s`` seconds, in cores (1.0 = one core busy)."""
        now = self.samples[-1][0]
        old = [s for s in self.samples if s[0] >= now - window_s]
        (t0, c0), (t1, c1) = old[0], self.samples[-1]
        return (c1 - c0) / (t1 - t0) if t1 > t0 else None

    def describe(self) -> str:
        """Why the cell is being stopped: ``"stalled: ..."`` or ``"slow: ..."``."""
        elapsed, quiet = self.clock() - self.started, self.quiet_s()
        where = f"cell {self.index}" if self.index >= 0 else "the kernel"
        if self.state() == "stalled":
            return f"stalled: {where} sent no output and used no CPU for {quiet:.0f} s (after {elapsed:.0f} s)"
        share = self.cpu_share()
        busy = f"kernel CPU {100 * share:.0f} % of a core over the last minute" if share is not None else "kernel CPU unknown"
        return (f"slow: {where} was still computing after {elapsed:.0f} s ({busy}, last output {self.clock() - self.last_output:.0f} s ago): "
                "a busy or slow machine; rerun with a larger --timeout-scale or --cell-timeout")


class WatchedClient(NotebookClient):
    """NotebookClient that tells its :class:`CellWatch` about every message from the kernel, and does not wait
    forever for an ``execute_reply`` that never comes.

    Seen in full-mode runs (ipykernel 7.4, nbclient 0.11, about one explorer cell in a few runs): the kernel ran
    the cell, published its outputs and went *idle* on IOPub, but the reply on the shell channel never reached
    the client, which then waits until the per-cell timeout. When the kernel has gone idle for the cell and no
    reply came within :data:`REPLY_GRACE_S`, the cell is taken as finished: its status is read from its outputs
    (an ``error`` output makes it an error) and the cell is listed in ``lost_replies``.
    """

    watch: CellWatch | None = None
    lost_replies: list[int] | None = None

    def process_message(self, msg, cell, cell_index):
        if self.watch is not None:
            self.watch.saw_output()
        return super().process_message(msg, cell, cell_index)

    async def _async_poll_for_reply(self, msg_id, cell, timeout, task_poll_output_msg, task_poll_kernel_alive):
        waiting = asyncio.ensure_future(super()._async_poll_for_reply(
            msg_id, cell, timeout, task_poll_output_msg, task_poll_kernel_alive))
        idle_since = None
        try:
            while True:
                done, _ = await asyncio.wait({waiting}, timeout=1.0)
                if done:
                    return waiting.result()
                if not task_poll_output_msg.done():  # the kernel has not finished the cell's outputs
                    continue
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since >= REPLY_GRACE_S:
                    task_poll_kernel_alive.cancel()
                    index = self.nb.cells.index(cell) if cell in self.nb.cells else -1
                    self.lost_replies = (self.lost_replies or []) + [index]
                    print(f"    cell {index}: the kernel went idle but its execute_reply never came "
                          f"(waited {REPLY_GRACE_S:.0f} s): taken as finished, status from its outputs", flush=True)
                    return synthetic_reply(msg_id, cell)
        finally:
            if not waiting.done():
                waiting.cancel()


def synthetic_reply(msg_id: str, cell) -> dict:
    """An ``execute_reply`` for a cell whose real reply was lost, from the outputs it produced: ``error`` if one
    of them is an error (its ename, evalue, traceback), else ``ok``."""
    errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    content = {"status": "ok", "execution_count": cell.get("execution_count")}
    if errors:
        content = {"status": "error", "execution_count": cell.get("execution_count"), "ename": errors[-1].get("ename", ""),
                   "evalue": errors[-1].get("evalue", ""), "traceback": errors[-1].get("traceback", [])}
    return {"parent_header": {"msg_id": msg_id}, "msg_type": "execute_reply", "header": {"msg_type": "execute_reply"},
            "metadata": {}, "content": content}


class Watchdog(Background):
    """A thread that polls a :class:`CellWatch` and stops a stalled kernel: SIGINT (KeyboardInterrupt in the
    cell), then, ``grace_s`` later if still stalled, kills it (nbclient then reports a dead kernel)."""

    def __init__(self, watch: CellWatch, pid: int, poll_s: float | None = None, grace_s: float | None = None,
                 stack_file: Path | None = None):
        self.watch, self.pid, self.stack_file = watch, pid, stack_file
        self.stacks: str | None = None  # the kernel's thread stacks when it stalled (see dump_stacks)
        self.poll_s, self.grace_s = poll_s or POLL_S, grace_s or GRACE_S
        self.stalled: str | None = None  # the description, once the kernel was stopped for stalling
        self._interrupted_at: float | None = None
        super().__init__()

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            if self.watch.poll() != "stalled":
                self._interrupted_at = None
                continue
            if self._interrupted_at is None:
                self.stalled = self.watch.describe()
                self.stacks = dump_stacks(self.pid, self.stack_file)
                print(f"    {self.stalled}: interrupting the kernel", flush=True)
                if self.stacks:
                    print("    where the kernel's threads were waiting:\n"
                          + "\n".join(f"      {line}" for line in self.stacks.splitlines()), flush=True)
                self._interrupted_at = time.monotonic()
                _signal(self.pid, signal.SIGINT)
            elif time.monotonic() - self._interrupted_at > self.grace_s:
                print("    the kernel did not stop after the interrupt: killing it", flush=True)
                _signal(self.pid, signal.SIGKILL if hasattr(signal, "SIGKILL") else signal.SIGTERM)
                self._interrupted_at = float("inf")



def stack_dump_code(path: Path) -> str:
    """Code run silently in a new kernel: on SIGUSR1, faulthandler writes every thread's Python stack to
    ``path``. It works while the main thread is blocked in C (no GIL needed), where an interrupt does not."""
    return (f"import faulthandler as _fh, signal as _sig\n"
            f"_fh.register(_sig.SIGUSR1, file=open({str(path)!r}, 'w'), all_threads=True, chain=False)\n"
            f"del _fh, _sig")


def dump_stacks(pid: int, path: Path | None, wait_s: float = 2.0) -> str | None:
    """Ask the kernel (``pid``) for its threads' stacks (see :func:`stack_dump_code`); the text, or None."""
    if path is None or not hasattr(signal, "SIGUSR1"):
        return None
    _signal(pid, signal.SIGUSR1)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        time.sleep(0.2)
        if path.is_file() and path.stat().st_size:
            time.sleep(0.2)  # let it finish writing
            return path.read_text(encoding="utf-8", errors="replace").strip() or None
    return None


def _signal(pid: int, sig) -> None:
    try:
        psutil.Process(pid).send_signal(sig)
    except psutil.Error:
        pass


def speed_factor(host: dict, recorded: dict, load: float | None = None) -> tuple[float, str]:
    """How many times longer than on a quiet machine cells may take here now, and why (a phrase).

    ``host``: :func:`course_lib.timings.machine` now; ``recorded``: :func:`course_lib.timings.load_timings`.
    The larger of (median GFLOP/s of the machines in ``recorded``) / (GFLOP/s here) and load average /
    cores, never below 1."""
    speeds = [e["machine"]["speed_gflops"] for runs in recorded.values() for e in runs.values()
              if e.get("machine", {}).get("speed_gflops")]
    here = host.get("speed_gflops")
    parts, factor = [], 1.0
    if speeds and here:
        ref = statistics.median(speeds)
        factor = max(factor, ref / here)
        parts.append(f"{here:.1f} GFLOP/s here now vs {ref:.1f} where timings.json was recorded")
    load = host.get("load") if load is None else load
    if load is not None and host.get("cores"):
        factor = max(factor, load / host["cores"])
        parts.append(f"load average {load:.1f} on {host['cores']} cores")
    return factor, ", ".join(parts) or "no measurement"


def run_one(path: Path, out_dir: Path, timeout: int, html: bool, cells: bool = False,
            stall_s: float | None = STALL_S) -> tuple[float, float, str | None]:
    """Execute one notebook; (seconds, peak kernel RSS in MB, error or None). ``timeout``: per cell, s.
    An error names a stalled kernel ("stalled: ...") or a cell still computing at the timeout ("slow: ...")."""
    nb = nbformat.read(path, as_version=4)
    client = WatchedClient(nb, timeout=timeout, kernel_name="python3",
                           resources={"metadata": {"path": str(path.parent)}})
    error = None
    start = time.perf_counter()
    peak = 0.0
    with client.setup_kernel():
        pid = client.km.provisioner.process.pid if client.km.provisioner else None
        monitor = PeakMemory(pid) if pid else None
        watch = CellWatch(lambda: kernel_cpu_seconds(pid) if pid else None, stall_s=stall_s)
        client.watch = watch
        stack_file = None
        if pid and stall_s and hasattr(signal, "SIGUSR1"):
            out_dir.mkdir(parents=True, exist_ok=True)
            stack_file = (out_dir / path.name).with_suffix(".stall.txt")
            stack_file.unlink(missing_ok=True)
            reply = client.wait_for_reply(client.kc.execute(stack_dump_code(stack_file), silent=True,
                                                            store_history=False))
            if not reply or reply["content"].get("status") != "ok":
                stack_file = None
        dog = Watchdog(watch, pid, stack_file=stack_file) if pid and stall_s else None
        try:
            if monitor:
                monitor.__enter__()
            if dog:
                dog.__enter__()
            for index, cell in enumerate(nb.cells):
                t0 = time.perf_counter()
                watch.start_cell(index)
                try:
                    client.execute_cell(cell, index)
                except (CellExecutionError, DeadKernelError) as exc:
                    if dog and dog.stalled:
                        raise CellExecutionError(dog.stalled, "", "") from exc
                    raise
                except CellTimeoutError as exc:
                    watch.poll()
                    raise CellExecutionError(f"{watch.describe()} (per-cell timeout {timeout} s)", "", "") from exc
                if cells and cell.cell_type == "code" and monitor:
                    print(f"    cell {index:3d}: {time.perf_counter() - t0:7.1f} s, peak so far {monitor.peak_mb:6.0f} MB",
                          flush=True)
        except CellExecutionError as exc:
            error = str(exc).splitlines()[-1] if str(exc) else repr(exc)
        except DeadKernelError as exc:
            error = f"the kernel died: {exc}"
        finally:
            if dog:
                dog.__exit__()
            if monitor:
                monitor.__exit__()
                peak = monitor.peak_mb
    if stack_file is not None and stack_file.is_file() and not stack_file.stat().st_size:
        stack_file.unlink()  # nothing stalled: no empty <notebook>.stall.txt left next to the output
    seconds = time.perf_counter() - start
    out_dir.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out_dir / path.name)
    if html:
        from nbconvert import HTMLExporter

        body, _ = HTMLExporter().from_notebook_node(nb)
        (out_dir / path.with_suffix(".html").name).write_text(body, encoding="utf-8")
    return seconds, peak, error


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="build/notebooks", help="folder for executed notebooks (default build/notebooks)")
    parser.add_argument("--fast", action="store_true", help="fast mode (COURSE_FAST=1) instead of full mode")
    parser.add_argument("--only", default="", help="run only notebooks whose name contains this text")
    parser.add_argument("--cell-timeout", "--timeout", dest="timeout", type=int, default=CELL_TIMEOUT_S,
                        help=f"per-cell timeout in seconds on a quiet machine (default {CELL_TIMEOUT_S}: no cell needs 20 min "
                             "on 2 quiet cores), multiplied by the timeout scale")
    parser.add_argument("--timeout-scale", type=float, default=None,
                        help="multiply the per-cell timeout by this (default: measured before each notebook, "
                             "how much slower or busier this machine is than where timings.json was recorded, at least 1)")
    parser.add_argument("--stall-timeout", type=float, default=STALL_S,
                        help=f"stop a kernel that sends no output and uses no CPU for this many seconds (default {STALL_S}; 0: never)")
    parser.add_argument("--no-html", action="store_true", help="skip the HTML copies")
    parser.add_argument("--cells", action="store_true", help="print each code cell's time and the peak memory so far")
    parser.add_argument("--no-timings", action="store_true", help="do not record the run times in notebooks/timings.json")
    args = parser.parse_args()

    os.environ["COURSE_FAST"] = "1" if args.fast else "0"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    # The memory setting of binder/start, so the peak RSS printed here is what Binder would see.
    os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", "2097152")
    out_dir = (ROOT / args.out) if not Path(args.out).is_absolute() else Path(args.out)
    notebooks = sorted(p for p in (ROOT / "notebooks").glob("*.ipynb") if args.only in p.name)
    if not notebooks:
        print(f"No notebooks match {args.only!r}.")
        return 1
    mode = "fast" if args.fast else "full"
    print(f"Running {len(notebooks)} notebook(s) in {mode} mode -> {args.out} "
          f"(MALLOC_MMAP_THRESHOLD_={os.environ['MALLOC_MMAP_THRESHOLD_']}, as binder/start)")
    print(f"{'notebook':40s} {'time (s)':>9s} {'peak RSS (MB)':>14s}  status")
    failed = 0
    total = 0.0
    sys.path.insert(0, str(ROOT))
    from course_lib import config, timings

    def cached_models() -> int:
        folder = config.cache_dir() / "models"
        return sum(1 for _ in folder.iterdir()) if folder.is_dir() else 0

    for path in notebooks:
        host = timings.machine()  # measured before the run, while the kernel is not yet loading the CPU
        if args.timeout_scale is not None:
            scale, why = args.timeout_scale, "--timeout-scale"
        else:
            scale, why = speed_factor(host, timings.load_timings())
        timeout = int(round(args.timeout * scale))
        print(f"  {path.name}: per-cell timeout {timeout} s = {args.timeout} s x {scale:.2f} ({why}); "
              + (f"a kernel silent and idle for {args.stall_timeout:.0f} s is stopped as stalled" if args.stall_timeout
                 else "no stall detection"), flush=True)
        before = cached_models()
        seconds, peak, error = run_one(path, out_dir, timeout, html=not args.no_html, cells=args.cells,
                                       stall_s=args.stall_timeout or None)
        if error is None and not args.no_timings:
            timings.record(path.stem, mode, seconds, peak, max(cached_models() - before, 0), host=host)
        total += seconds
        status = "ok" if error is None else f"FAILED: {error}"
        if peak > BINDER_MB:
            status += f"  (over Binder's ~{BINDER_MB} MB memory)"
        failed += error is not None
        print(f"{path.name:40s} {seconds:9.1f} {peak:14.0f}  {status}", flush=True)
    print(f"{'total':40s} {total:9.1f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
