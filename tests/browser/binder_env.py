"""Build the Binder environment locally, the way repo2docker builds it, and cache it.

repo2docker, for a repository with ``binder/runtime.txt`` = ``python-3.X`` and
``binder/requirements.txt``:

1. makes a Python 3.X environment;
2. runs ``pip install -r binder/requirements.txt`` in it (before the repository is copied,
   which is why that file must not reference local paths);
3. copies the repository and runs ``./binder/postBuild`` from the repository root, with the
   environment's ``bin`` first on PATH;
4. starts the server through ``binder/start`` when that file exists.

``build_binder_venv`` does 1-3 in a fresh virtual environment under ``.cache/`` (same steps,
same files, same order), so the browser suite can start JupyterLab from it (step 4,
``binder_command``). The built environment is kept and reused while ``binder/``,
and the interpreter stay the same (their hash names the folder); any change to them builds a
fresh one. A change to ``pyproject.toml`` alone re-runs only postBuild, as on Binder. Differences from repo2docker, on purpose: pip's cache is used
(repo2docker passes ``--no-cache-dir``; the result is the same, only faster), and
``PIP_RETRIES=0`` is set (see below).

Offline (this project's machines): the CPU index of ``binder/requirements.txt``
(download.pytorch.org) cannot be reached. pip then finds ``torch==2.13.0+cpu`` through the
machine's pip configuration (a local wheel folder) and every other package on PyPI or its
mirror. An unreachable extra index is only a warning for pip, but by default it retries each
index page 5 times with back-off: measured here, about 9.5 s lost per package, several minutes
for the whole environment. ``PIP_RETRIES=0`` makes each miss cost milliseconds (the name does not
resolve, so there is no connect timeout to wait for) without changing what gets installed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

BINDER_FILES = ("runtime.txt", "requirements.txt", "postBuild", "start", "apt.txt", "environment.yml")


def runtime_version(root: Path) -> str:
    """The Python version that binder/runtime.txt asks for, e.g. "3.11"."""
    text = (root / "binder" / "runtime.txt").read_text().strip()
    if not text.startswith("python-"):
        raise ValueError(f"binder/runtime.txt should read 'python-3.X', not {text!r}")
    return text[len("python-"):]


def find_python(version: str) -> str:
    """An interpreter of ``version`` (``pythonX.Y`` on PATH, or this one if it matches)."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        base = getattr(sys, "_base_executable", None) or sys.executable
        if base and Path(base).exists():
            return base
    found = shutil.which(f"python{version}")
    if not found:
        raise RuntimeError(f"binder/runtime.txt asks for Python {version}, and python{version} is not on PATH")
    return found


def binder_key(root: Path, python: str) -> str:
    """A hash of what the heavy part of the environment is built from: binder/ and the interpreter."""
    h = hashlib.sha256()
    binder = root / "binder"
    for path in sorted(binder.iterdir()):
        if path.is_file():
            h.update(path.name.encode() + b"\0" + str(os.access(path, os.X_OK)).encode() + b"\0")
            h.update(path.read_bytes() + b"\0")
    version = subprocess.run([python, "-c", "import sys; print(sys.version)"], capture_output=True,
                             text=True, check=True).stdout.strip()
    h.update(version.encode())
    return h.hexdigest()[:16]


def build_env() -> dict[str, str]:
    """The environment for pip and postBuild (no coding-session variables leak into it)."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PIP_REQUIRE_VIRTUALENV"}}
    env["PIP_RETRIES"] = "0"                    # see the module docstring
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def build_binder_venv(root: Path, cache: Path, log_path: Path) -> tuple[Path, dict]:
    """The Binder virtual environment (built now, or reused); returns (venv, info).

    ``info``: ``{"key", "python", "built_now", "build_s", "steps": {step: seconds}}``.
    """
    python = find_python(runtime_version(root))
    key = binder_key(root, python)
    venv = cache / f"binder-venv-{key}"
    stamp = venv / ".binder-build.json"
    project = hashlib.sha256((root / "pyproject.toml").read_bytes()).hexdigest()[:16]
    if stamp.is_file():
        info = json.loads(stamp.read_text())
        info["built_now"] = False
        if info.get("project") != project:
            # pyproject.toml changed, binder/ did not: like repo2docker after a content commit,
            # only postBuild runs again (it installs the project)
            steps = _run_steps(root, venv, log_path, [("postBuild again", ["./binder/postBuild"])])
            info.update(project=project, postbuild_rerun_s=steps["postBuild again"])
            stamp.write_text(json.dumps({k: v for k, v in info.items() if k != "built_now"}))
        return venv, info

    cache.mkdir(parents=True, exist_ok=True)
    for old in cache.glob("binder-venv-*"):  # a stale or half-built one: ~1 GB each
        shutil.rmtree(old, ignore_errors=True)
    start = time.perf_counter()
    # 1. the environment (repo2docker: a conda env with that Python; here: a venv)
    steps = _run_steps(root, venv, log_path, [("venv", [python, "-m", "venv", str(venv)])], fresh_log=True)
    # 2. the requirements, from the repository root, as repo2docker runs them;
    # 3. postBuild, executed as a program (repo2docker: chmod +x, then ./binder/postBuild)
    todo = [("requirements", [str(venv / "bin" / "pip"), "install", "-r", "binder/requirements.txt"])]
    if (root / "binder" / "postBuild").exists():
        todo.append(("postBuild", ["./binder/postBuild"]))
    steps.update(_run_steps(root, venv, log_path, todo))
    info = {"key": key, "python": python, "project": project,
            "build_s": round(time.perf_counter() - start, 1), "steps": steps}
    stamp.write_text(json.dumps(info))
    info["built_now"] = True
    return venv, info


def _run_steps(root: Path, venv: Path, log_path: Path, steps: list[tuple[str, list[str]]],
               fresh_log: bool = False) -> dict[str, float]:
    """Run each (name, command) from the repository root with the venv first on PATH; log to log_path."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = build_env()
    env.update(PATH=str(venv / "bin") + os.pathsep + env.get("PATH", ""), VIRTUAL_ENV=str(venv))
    times: dict[str, float] = {}
    with open(log_path, "w" if fresh_log else "a") as log:
        for name, cmd in steps:
            log.write(f"\n$ {' '.join(cmd)}\n")
            log.flush()
            t = time.perf_counter()
            proc = subprocess.run(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL)
            times[name] = round(time.perf_counter() - t, 1)
            if proc.returncode != 0:
                raise RuntimeError(f"Binder environment: {name} failed (exit {proc.returncode}); see {log_path}")
    return times


def binder_command(root: Path, command: list[str]) -> list[str]:
    """``command`` run through binder/start when there is one (repo2docker's step 4)."""
    start = root / "binder" / "start"
    return [str(start), *command] if start.exists() else list(command)
