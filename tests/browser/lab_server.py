"""Start JupyterLab headless on a free loopback port with a random token, for the browser suite.

    with JupyterLab(python=Path(".venv/bin/python"), root_dir=ROOT, env=extra_env) as lab:
        page.goto(lab.url("lab/tree/notebooks/00_welcome.ipynb"))

The server runs in its own process group, with its own Jupyter config, data, runtime and
JupyterLab settings folders (temporary), so nothing of the user's Jupyter setup leaks in and
nothing of the test leaks out. The settings turn off JupyterLab's news and update checks
(no network here), notebook windowing (every cell stays in the page, so the test can see
every output) and autosave (the executed notebooks are never written back); checkpoints go to
the temporary folder too. Its log goes to ``log_path``.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

LAB_SETTINGS = {
    # no news / update checks: there is no network, and their toasts cover the notebook
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false", "checkForUpdates": False},
    # every cell in the DOM (the default windowing leaves far-away cells out of the page)
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    # never write the executed notebook back into the repository (autosave is on by default)
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
}


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class JupyterLab:
    """A JupyterLab server on 127.0.0.1:<free port> with a token; a context manager."""

    def __init__(self, python: Path, root_dir: Path, env: dict[str, str] | None = None,
                 log_path: Path | None = None, startup_timeout: float = 120.0,
                 wrapper: list[str] | None = None):
        self.python = Path(python)
        self.wrapper = list(wrapper or [])  # e.g. ["binder/start"]: runs the server through it
        self.root_dir = Path(root_dir)
        self.extra_env = dict(env or {})
        self.log_path = log_path
        self.startup_timeout = startup_timeout
        self.token = secrets.token_hex(16)
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._log = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "JupyterLab":
        self._tmp = tempfile.TemporaryDirectory(prefix="browser-lab-")
        tmp = Path(self._tmp.name)
        settings = tmp / "lab-settings"
        for rel, value in LAB_SETTINGS.items():
            path = settings / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(value))
        bin_dir = str(self.python.parent)
        env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV", "JUPYTER_PATH"}}
        env.update({
            "PATH": bin_dir + os.pathsep + env.get("PATH", ""),
            "VIRTUAL_ENV": str(self.python.parent.parent),
            "JUPYTER_CONFIG_DIR": str(tmp / "config"),
            "JUPYTER_DATA_DIR": str(tmp / "data"),
            "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
            "JUPYTERLAB_SETTINGS_DIR": str(settings),
            "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces"),
            "JUPYTER_PLATFORM_DIRS": "1",
            "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        })
        env.update(self.extra_env)
        self.port = free_port()
        cmd = self.wrapper + [
            str(self.python), "-m", "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root_dir}",
            "--ServerApp.open_browser=False",
            "--ServerApp.allow_root=True",          # CI runs as root
            "--LabApp.extension_manager=readonly",  # no PyPI look-ups from the extension manager
            f"--FileCheckpoints.checkpoint_dir={tmp / 'checkpoints'}",  # not notebooks/.ipynb_checkpoints
        ]
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, cwd=self.root_dir, env=env, stdin=subprocess.DEVNULL,
                                     stdout=self._log or subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        last = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with code {self.proc.returncode} during start-up; "
                                   f"see {self.log_path}")
            try:
                self.api("api/status")
                with urllib.request.urlopen(self.url("lab"), timeout=10) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, OSError) as exc:
                last = str(exc)
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"JupyterLab did not answer within {self.startup_timeout:.0f} s ({last}); "
                           f"see {self.log_path}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            # the server's own process group: the server and the kernels it started
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=10)
        if self._log:
            self._log.close()
            self._log = None
        if self._tmp:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> "JupyterLab":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ helpers
    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def url(self, path: str, **params: str) -> str:
        """``base + path`` with the token (and ``params``) in the query string."""
        query = "&".join([f"token={self.token}"] + [f"{k}={v}" for k, v in params.items()])
        sep = "&" if "?" in path else "?"
        return f"{self.base}{path.lstrip('/')}{sep}{query}"

    def api(self, path: str, method: str = "GET", body: dict | None = None, timeout: float = 10):
        """Call the REST API with the token; returns the decoded JSON (or None)."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path.lstrip("/"), data=data, method=method,
                                     headers={"Authorization": f"token {self.token}",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
        return json.loads(raw) if raw else None

    def shutdown_kernels(self) -> None:
        """Stop every running kernel (between notebooks, so memory is freed)."""
        for k in self.api("api/kernels") or []:
            try:
                self.api(f"api/kernels/{k['id']}", method="DELETE")
            except urllib.error.URLError:
                pass


class KernelMemory:
    """Peak RSS (MB) of the server's kernels while the block runs (sampled every 0.25 s)."""

    def __init__(self, lab: "JupyterLab"):
        self.lab = lab
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        server = psutil.Process(self.lab.proc.pid)
        while not self._stop.is_set():
            try:
                kernels = [p for p in server.children(recursive=True) if "ipykernel" in " ".join(p.cmdline())]
                total = 0
                for k in kernels:
                    total += k.memory_info().rss + sum(c.memory_info().rss for c in k.children(recursive=True))
                self.peak_mb = max(self.peak_mb, total / 1e6)
            except psutil.Error:
                pass
            self._stop.wait(0.25)

    def __enter__(self) -> "KernelMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
