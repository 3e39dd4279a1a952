"""The README's first command, ``make lab``, run as a learner runs it: JupyterLab starts (as root too),
answers on its REST API, serves the first notebook from a file browser rooted at the repository, and
stops again with nothing left running.

It runs the real ``make lab`` with ``LAB_ARGS`` that keep it headless (no browser, loopback, a free
port, a token of its own). Setup is a no-op by then (``make test`` has done it; the ``.installed``
stamp says so); if the stamp is out of date the test says so instead of re-installing.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = "notebooks/00_welcome.ipynb"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # report a redirect instead of following it
        return None


def _get(url: str, token: str, follow: bool = True, timeout: float = 5.0):
    """(status, headers, body) of a GET with the token; HTTP errors are returned, not raised."""
    opener = urllib.request.build_opener() if follow else urllib.request.build_opener(_NoRedirect)
    req = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    try:
        with opener.open(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a member we may not signal: still there
        return True
    return True


def _stop(proc: subprocess.Popen) -> bool:
    """SIGTERM the process group (make, the shell, JupyterLab), SIGKILL what is left; True if it is gone."""
    pgid = proc.pid  # start_new_session: the group id is make's pid
    for sig, wait_s in ((signal.SIGTERM, STOP_TIMEOUT_S), (signal.SIGKILL, 5.0)):
        if not _group_alive(pgid):
            break
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if proc.poll() is None:
                try:
                    proc.wait(timeout=0.2)
                except subprocess.TimeoutExpired:
                    pass
            if not _group_alive(pgid):
                break
            time.sleep(0.1)
    if proc.poll() is None:
        proc.wait(timeout=5)
    return not _group_alive(pgid)


def _make_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    # `make test` runs this test: do not pass the outer make's flags (-n, -j's jobserver, ...) down,
    # so the inner `make lab` is the plain command a learner types.
    for key in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "LAB_ARGS"):
        env.pop(key, None)
    # The learner's own Jupyter settings (a password, say) and runtime files stay out of the test.
    env.update({
        "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "jupyter-runtime"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "lab-workspaces"),
    })
    return env


def test_make_lab_serves_the_first_notebook_from_the_repository(tmp_path):
    env = _make_env(tmp_path)
    stale = subprocess.run(["make", "-q", "setup"], cwd=ROOT, env=env, capture_output=True, text=True)
    if stale.returncode != 0:
        pytest.fail("the environment is out of date with pyproject.toml (`make -q setup` says so): run "
                    "`make setup` (or `make test`, which does it) first; this test does not re-install. "
                    f"{stale.stdout}{stale.stderr}")

    port, token = _free_port(), secrets.token_hex(16)
    lab_args = (f"--no-browser --ServerApp.ip=127.0.0.1 --port {port} --ServerApp.port_retries=0 "
                f"--IdentityProvider.token={token}")
    log_path = tmp_path / "make-lab.log"
    base = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(["make", "lab", f"LAB_ARGS={lab_args}"], cwd=ROOT, env=env,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            status = None
            deadline = time.monotonic() + START_TIMEOUT_S
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    pytest.fail(f"`make lab` exited with code {proc.returncode} before the server answered:\n"
                                + log_path.read_text(errors="replace")[-3000:])
                try:
                    code, _, body = _get(f"{base}/api/status", token, timeout=2)
                    if code == 200:
                        status = json.loads(body)
                        break
                except (urllib.error.URLError, ConnectionError, OSError):
                    pass
                time.sleep(0.5)
            assert status is not None, (f"no answer on /api/status within {START_TIMEOUT_S:.0f} s:\n"
                                        + log_path.read_text(errors="replace")[-3000:])
            assert "started" in status

            # the first notebook is served, at its path relative to the repository
            code, _, body = _get(f"{base}/api/contents/{NOTEBOOK}?content=0", token)
            assert code == 200, body[:500]
            model = json.loads(body)
            assert model["type"] == "notebook" and model["path"] == NOTEBOOK
            # the file browser is rooted at the repository, not at notebooks/
            code, _, body = _get(f"{base}/api/contents/?content=1", token)
            assert code == 200, body[:500]
            top = {item["name"] for item in json.loads(body)["content"]}
            assert {"README.md", "notebooks", "quizzes", "course_lib"} <= top, sorted(top)
            # the server's default URL (where the browser goes, and where / redirects) is that notebook
            code, headers, _ = _get(f"{base}/", token, follow=False)
            assert code in (301, 302, 303, 307), code
            assert headers["Location"].split("?")[0] == f"/lab/tree/{NOTEBOOK}", headers["Location"]
            code, _, body = _get(f"{base}/lab/tree/{NOTEBOOK}", token)
            assert code == 200 and b"JupyterLab" in body
        finally:
            gone = _stop(proc)
    log_text = log_path.read_text(errors="replace")
    assert gone, "processes of `make lab` were still running after SIGTERM and SIGKILL"

    # make echoes the command it ran: --allow-root for root only, then the learner's flags
    command = next((line for line in log_text.splitlines() if "jupyter lab" in line), "")
    assert command, log_text[-3000:]
    assert ("--allow-root" in log_text) == (os.geteuid() == 0), log_text[-3000:]
    assert "Running as root is not recommended" not in log_text
    assert "pip install" not in log_text, "make lab re-installed the environment"
    # and nothing answers on the port any more
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
        _get(f"{base}/api/status", token, timeout=2)
