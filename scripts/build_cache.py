"""Pre-build the workbook's cache: train and measure, before the course starts, what the chapters
would otherwise train on a learner's first run (the teacher, chapter 02's students, the sweeps, ...).

    python scripts/build_cache.py                    # every chapter (make cache)
    python scripts/build_cache.py --chapters 01,02   # the teacher and chapter 02's students only

It runs each chosen notebook headless (scripts/run_notebooks.py, outputs thrown away), so exactly
what the chapter uses lands in the cache, under the same keys: nothing here can drift from the
notebooks. Results go to the normal cache (``COURSE_CACHE``, else the user cache folder); the mode
follows ``COURSE_FAST`` (full unless it is 1). A chapter that fails is reported and, with
``--keep-going`` (Binder's postBuild), the others still run: the failed one trains on first use.

At the end ``prebuilt.json`` in the cache folder lists what was built, when, with which code
version (``course_lib.models.CACHE_VERSION``, part of every cache key, so entries made by other
code are never used) and how long each chapter took.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def chapters_available() -> list[str]:
    """The two-digit chapter numbers of the notebooks, in order ("00", "01", ...)."""
    return sorted(p.name[:2] for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def choose(spec: str) -> list[str]:
    """The chapters named by ``spec`` ("all" or a comma list such as "1,02"); a clear error for unknown ones."""
    available = chapters_available()
    if spec.strip().lower() in ("all", ""):
        return available
    chosen = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        if not part.isdigit() or f"{int(part):02d}" not in available:
            raise SystemExit(f"Unknown chapter {part!r}: the notebooks are chapters {', '.join(available)} "
                             f"(use e.g. --chapters 01,02 or --chapters all).")
        chosen.append(f"{int(part):02d}")
    return sorted(set(chosen))


def cache_entries(cache: Path) -> set[str]:
    """Every cached model / sweep / export (relative paths, one level under the cache's folders)."""
    found = set()
    for folder in ("models", "onnx", "logits", "studies", "sweeps", "stress"):
        base = cache / folder
        if base.is_dir():
            found.update(f"{folder}/{p.name}" for p in base.iterdir() if not p.name.startswith("."))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chapters", default="all", help="'all' (default) or a comma list of chapter numbers")
    parser.add_argument("--keep-going", action="store_true", help="run the other chapters when one fails; exit 0")
    args = parser.parse_args(argv)

    from course_lib import config, models

    chapters = choose(args.chapters)
    fast = config.fast_mode()
    cache = config.cache_dir()
    mode = "fast" if fast else "full"
    print(f"Pre-building the {mode}-mode cache in {cache} for chapter(s) {', '.join(chapters)} "
          f"(cache version {models.CACHE_VERSION})", flush=True)
    results, failed = [], 0
    with tempfile.TemporaryDirectory(prefix="workbook-cache-run-") as out:
        for chapter in chapters:
            before = cache_entries(cache)
            start = time.perf_counter()
            cmd = [sys.executable, str(ROOT / "scripts" / "run_notebooks.py"), "--only", f"{chapter}_",
                   "--out", out, "--no-html", "--no-timings"] + (["--fast"] if fast else [])
            proc = subprocess.run(cmd, cwd=ROOT, env=dict(os.environ, COURSE_CACHE=str(cache)))
            seconds = round(time.perf_counter() - start, 1)
            new = sorted(cache_entries(cache) - before)
            ok = proc.returncode == 0
            failed += not ok
            results.append({"chapter": chapter, "ok": ok, "seconds": seconds, "new_entries": len(new)})
            print(f"chapter {chapter}: {'ok' if ok else 'FAILED'} in {seconds:.0f} s, {len(new)} new cache entries",
                  flush=True)
            if not ok and not args.keep_going:
                break
    manifest = {"mode": mode, "cache_version": models.CACHE_VERSION, "built_at": time.strftime("%Y-%m-%d %H:%M:%S"),
                "chapters": results, "total_seconds": round(sum(r["seconds"] for r in results), 1),
                "entries": sorted(cache_entries(cache))}
    (cache / "prebuilt.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    print(f"total {manifest['total_seconds']:.0f} s; {len(manifest['entries'])} cache entries; "
          f"{failed} chapter(s) failed", flush=True)
    return 0 if (failed == 0 or args.keep_going) else 1


if __name__ == "__main__":
    sys.exit(main())
