"""Paths the browser suite shares (imported by conftest.py and the tests)."""

from __future__ import annotations

import os
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BUILD = ROOT / "build" / "browser"   # screenshots, logs, report.json


def notebook_paths() -> list[Path]:
    """The notebooks to test: notebooks/*.ipynb, or the glob in $BROWSER_NOTEBOOKS."""
    pattern = os.environ.get("BROWSER_NOTEBOOKS", "*.ipynb")
    return sorted(p for p in (ROOT / "notebooks").glob(pattern) if ".ipynb_checkpoints" not in p.parts)
