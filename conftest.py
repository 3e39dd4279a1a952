"""pytest, for the notebook half of ``make test`` (nbval): a cell whose reply is lost does not hang the suite.

Seen three times in full-mode runs (notebooks 03, 05, 07; ipykernel 7.4, jupyter_client 8.10): the kernel
finished a cell (IOPub status "idle" arrived, the kernel sat at 0 % CPU) but its ``execute_reply`` never
reached the client. nbval waits for that reply for ``--nbval-cell-timeout`` seconds (2,000 by default),
then fails the cell and skips the rest of the notebook. ``scripts/run_notebooks.py`` handles the same case
in its own client (``WatchedClient``); this is the nbval side of it.

:func:`await_reply` replaces ``nbval.kernel.RunningKernel.await_reply``: it waits for the reply in 1-second
polls, and between polls reads the IOPub messages that have arrived into a buffer that nbval reads first
(``get_message``), so nbval still sees every output, in order. If the cell's "idle" status has come and the
reply has not come :data:`REPLY_GRACE_S` seconds later, the cell is taken as finished: nbval then checks its
outputs as usual (an error output still fails the test), and the cell is named at the end of the run.
"""

from __future__ import annotations

import collections
import time
from queue import Empty

REPLY_GRACE_S = 30.0
"""Seconds to wait for a cell's execute_reply after its kernel went idle."""
POLL_S = 1.0

LOST_REPLIES: list[str] = []
"""``"<notebook>: cell <n>"`` for each cell taken as finished without its reply (this run)."""


def _buffer(kernel) -> collections.deque:
    return kernel.__dict__.setdefault("_course_iopub", collections.deque())


def install(kernel_class=None) -> None:
    """Patch nbval's ``RunningKernel`` (or ``kernel_class``) once; a no-op without nbval."""
    if kernel_class is None:
        try:
            from nbval.kernel import RunningKernel as kernel_class
        except ImportError:
            return
    if getattr(kernel_class, "_course_lost_reply_guard", False):
        return
    plain_get = kernel_class.get_message

    def get_message(self, stream, timeout=None):
        buffered = _buffer(self)
        if stream == "iopub" and buffered:
            return buffered.popleft()
        return plain_get(self, stream, timeout=timeout)

    def await_reply(self, msg_id, timeout=None):
        deadline = None if timeout is None else time.monotonic() + float(timeout)
        idle_since = None
        while True:
            try:
                msg = plain_get(self, "shell", timeout=POLL_S)
            except Empty:
                while True:  # what IOPub has so far, kept for nbval
                    try:
                        m = plain_get(self, "iopub", timeout=0.01)
                    except Empty:
                        break
                    _buffer(self).append(m)
                    if (m.get("parent_header", {}).get("msg_id") == msg_id and m.get("msg_type") == "status"
                            and m.get("content", {}).get("execution_state") == "idle"):
                        idle_since = time.monotonic()
                now = time.monotonic()
                if idle_since is not None and now - idle_since >= REPLY_GRACE_S:
                    where = getattr(self, "_course_where", "a notebook cell")
                    LOST_REPLIES.append(where)
                    print(f"\n{where}: the kernel went idle but its execute_reply never came (waited "
                          f"{REPLY_GRACE_S:.0f} s): taken as finished, its outputs checked as usual", flush=True)
                    return
                if deadline is not None and now >= deadline:
                    raise Empty
                continue
            if msg["parent_header"].get("msg_id") == msg_id:
                if msg["content"]["status"] == "aborted":
                    raise RuntimeError("Kernel aborted execution request")
                return

    kernel_class.get_message = get_message
    kernel_class.await_reply = await_reply
    kernel_class._course_lost_reply_guard = True


def pytest_configure(config):
    install()


def pytest_runtest_setup(item):
    kernel = getattr(getattr(item, "parent", None), "kernel", None)
    if kernel is not None and hasattr(item, "cell_num"):
        kernel._course_where = f"{item.parent.name}: cell {item.cell_num}"


def pytest_terminal_summary(terminalreporter):
    if LOST_REPLIES:
        terminalreporter.write_line(f"cells whose execute_reply never came (taken as finished after "
                                    f"{REPLY_GRACE_S:.0f} s idle): {', '.join(LOST_REPLIES)}")
