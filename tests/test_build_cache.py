"""scripts/build_cache.py (make cache, Binder's postBuild): chapter choice, and one real pre-build run."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("build_cache", ROOT / "scripts" / "build_cache.py")
build_cache = importlib.util.module_from_spec(spec)
spec.loader.exec_module(build_cache)


def test_chapters_are_chosen_by_number_or_all():
    available = build_cache.chapters_available()
    assert available[:2] == ["00", "01"] and available == sorted(available)
    assert build_cache.choose("all") == available
    assert build_cache.choose("2, 01,1") == ["01", "02"]


def test_an_unknown_chapter_is_a_clear_error():
    with pytest.raises(SystemExit, match="Unknown chapter '42'.*--chapters 01,02"):
        build_cache.choose("01,42")


def test_a_pre_build_runs_the_chapter_and_writes_its_manifest(tmp_cache, monkeypatch):
    monkeypatch.setenv("COURSE_FAST", "1")
    assert build_cache.main(["--chapters", "00"]) == 0
    manifest = json.loads((tmp_cache / "prebuilt.json").read_text())
    from course_lib import models

    assert manifest["mode"] == "fast" and manifest["cache_version"] == models.CACHE_VERSION
    (chapter,) = manifest["chapters"]
    assert chapter["chapter"] == "00" and chapter["ok"] and chapter["seconds"] > 0
