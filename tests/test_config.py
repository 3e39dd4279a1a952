import pytest
import torch

from course_lib import config


def test_fast_mode_reads_environment(monkeypatch):
    monkeypatch.setenv("COURSE_FAST", "1")
    assert config.fast_mode() and config.pick(10, 2) == 2
    monkeypatch.setenv("COURSE_FAST", "0")
    assert not config.fast_mode() and config.pick(10, 2) == 10
    monkeypatch.delenv("COURSE_FAST")
    assert not config.fast_mode()


def test_cache_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "c"))
    assert config.cache_dir() == tmp_path / "c" and (tmp_path / "c").is_dir()


def test_threads(monkeypatch):
    monkeypatch.setenv("COURSE_THREADS", "1")
    previous = torch.get_num_threads()
    try:
        assert config.set_threads() == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(previous)
    monkeypatch.setenv("COURSE_THREADS", "many")
    with pytest.raises(ValueError, match="whole number"):
        config.num_threads()


def test_seed_everything_repeats():
    config.seed_everything(3)
    a = torch.rand(3)
    config.seed_everything(3)
    assert torch.equal(a, torch.rand(3))


def test_release_memory_runs_where_glibc_has_malloc_trim():
    import platform

    released = config.release_memory()
    assert isinstance(released, bool)
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert released
