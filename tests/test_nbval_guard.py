"""The root conftest's guard for nbval: a lost execute_reply ends the wait once the kernel is idle, no output lost."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from queue import Empty

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def guard(monkeypatch):
    spec = importlib.util.spec_from_file_location("workbook_root_conftest", ROOT / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "REPLY_GRACE_S", 0.2)
    monkeypatch.setattr(module, "POLL_S", 0.05)
    module.LOST_REPLIES.clear()
    return module


def _msg(parent, kind, **content):
    return {"parent_header": {"msg_id": parent}, "msg_type": kind, "content": content}


def _fake_kernel(shell, iopub):
    """A kernel class whose channels hold the given messages (then time out, as a quiet channel does)."""

    class Kernel:
        def __init__(self):
            self.queues = {"shell": list(shell), "iopub": list(iopub)}

        def get_message(self, stream, timeout=None):
            if self.queues[stream]:
                return self.queues[stream].pop(0)
            raise Empty

    return Kernel


def test_a_reply_that_comes_is_taken_at_once(guard):
    kernel_class = _fake_kernel([_msg("other", "execute_reply", status="ok"), _msg("m1", "execute_reply", status="ok")],
                                [_msg("m1", "stream", text="hi")])
    guard.install(kernel_class)
    k = kernel_class()
    k.await_reply("m1", timeout=5)
    assert k.get_message("iopub")["content"]["text"] == "hi"
    assert guard.LOST_REPLIES == []


def test_a_lost_reply_after_idle_ends_the_wait_and_keeps_every_output_in_order(guard):
    iopub = [_msg("m1", "status", execution_state="busy"), _msg("m1", "stream", text="out"),
             _msg("m1", "error", ename="ValueError"), _msg("m1", "status", execution_state="idle")]
    kernel_class = _fake_kernel([], iopub)
    guard.install(kernel_class)
    k = kernel_class()
    k._course_where = "05_low_rank.ipynb: cell 16"
    k.await_reply("m1", timeout=60)
    assert [k.get_message("iopub") for _ in iopub] == iopub  # nbval still sees the error output
    with pytest.raises(Empty):
        k.get_message("iopub")
    assert guard.LOST_REPLIES == ["05_low_rank.ipynb: cell 16"]


def test_no_reply_and_no_idle_is_still_a_timeout(guard):
    kernel_class = _fake_kernel([], [_msg("m1", "status", execution_state="busy")])
    guard.install(kernel_class)
    with pytest.raises(Empty):
        kernel_class().await_reply("m1", timeout=0.3)
    assert guard.LOST_REPLIES == []


def test_the_guard_patches_nbval_once():
    from nbval.kernel import RunningKernel

    assert getattr(RunningKernel, "_course_lost_reply_guard", False)  # installed by the root conftest
