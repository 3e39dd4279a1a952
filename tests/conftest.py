"""Shared fixtures. Tests run in fast mode with a throw-away cache unless the caller set them."""

from __future__ import annotations

import os
import tempfile

import matplotlib
import pytest

matplotlib.use("Agg")
os.environ.setdefault("COURSE_FAST", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
if "COURSE_CACHE" not in os.environ:
    os.environ["COURSE_CACHE"] = tempfile.mkdtemp(prefix="course-cache-")


@pytest.fixture(scope="session")
def sms():
    from course_lib import data

    return data.load_sms_spam()


@pytest.fixture(scope="session")
def splits(sms):
    from course_lib import data

    return data.split(sms, seed=0)


@pytest.fixture(scope="session")
def teacher():
    """The pretrained MiniLM with a fresh (seeded) 2-class head; not fine-tuned. Do not train it in place."""
    from course_lib import models

    return models.load_teacher(seed=0)


@pytest.fixture(scope="session")
def finetuned():
    """The fast-mode fine-tuned teacher (trained once per cache, then loaded)."""
    from course_lib import train

    return train.finetuned_teacher(progress=False)


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    """A fresh, empty COURSE_CACHE for one test."""
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"
