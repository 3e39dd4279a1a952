"""Instructors: execute every notebook headless and write the executed copies (and HTML).

    python scripts/run_notebooks.py --out build/notebooks            # full mode (what learners get)
    python scripts/run_notebooks.py --fast --only 01                   # fast mode, one chapter

Prints each notebook's wall time and the kernel's peak memory (RSS, MB), and exits
non-zero if any notebook fails. Trained models land in the normal cache
(COURSE_CACHE), so a second run reuses them. Each notebook that runs through is recorded in
notebooks/timings.json (course_lib.timings: seconds, peak MB, models trained during the run, the
machine and its load), which the chapters show as their time estimates; --no-timings skips that.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

import nbformat
import psutil
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]
BINDER_MB = 2000  # Binder gives about 2 GB: every notebook's kernel must stay under it (issue 6)


class PeakMemory:
    """Samples the RSS of a process and its children every 0.2 s; ``peak_mb`` in MB (10^6 bytes)."""

    def __init__(self, pid: int):
        self.proc = psutil.Process(pid)
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                procs = [self.proc] + self.proc.children(recursive=True)
                rss = sum(p.memory_info().rss for p in procs)
                self.peak_mb = max(self.peak_mb, rss / 1e6)
            except psutil.Error:
                pass
            self._stop.wait(0.2)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def run_one(path: Path, out_dir: Path, timeout: int, html: bool, cells: bool = False) -> tuple[float, float, str | None]:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    error = None
    start = time.perf_counter()
    peak = 0.0
    with client.setup_kernel():
        pid = client.km.provisioner.process.pid if client.km.provisioner else None
        monitor = PeakMemory(pid) if pid else None
        try:
            if monitor:
                monitor.__enter__()
            for index, cell in enumerate(nb.cells):
                t0 = time.perf_counter()
                client.execute_cell(cell, index)
                if cells and cell.cell_type == "code" and monitor:
                    print(f"    cell {index:3d}: {time.perf_counter() - t0:7.1f} s, peak so far {monitor.peak_mb:6.0f} MB",
                          flush=True)
        except CellExecutionError as exc:
            error = str(exc).splitlines()[-1] if str(exc) else repr(exc)
        finally:
            if monitor:
                monitor.__exit__()
                peak = monitor.peak_mb
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
    parser.add_argument("--timeout", type=int, default=1200,
                        help="per-cell timeout in seconds (default 1200: no cell needs 20 min on 2 cores; a stalled cell fails instead of waiting)")
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
        before = cached_models()
        seconds, peak, error = run_one(path, out_dir, args.timeout, html=not args.no_html, cells=args.cells)
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
