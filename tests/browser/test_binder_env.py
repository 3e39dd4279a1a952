"""The Binder environment, built from binder/ as repo2docker builds it (see binder_env.py).

The browser suite's notebooks run in it (BROWSER_LAB_ENV=binder, the default); these tests
check the rest of what a Binder launch relies on: the CPU build of torch, the workbook
importable from the checkout with its quiz bank, a consistent install, and the launch URL.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request

import pytest
from suite_paths import ROOT

LAUNCH_PATH = "lab/tree/notebooks/00_welcome.ipynb"  # the README badge's urlpath


@pytest.fixture(scope="module")
def binder_python(lab_python):
    python, _ = lab_python
    if not python.parent.parent.name.startswith("binder-venv-"):
        pytest.skip("BROWSER_LAB_ENV=dev: the Binder environment is not under test in this run")
    return python


def _run(python, code: str) -> dict:
    out = subprocess.run([str(python), "-c", code], cwd=ROOT / "notebooks", capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_binder_env_has_cpu_torch_and_the_workbook(binder_python):
    info = _run(binder_python, """
import json, torch, ipywidgets, jupyterlab, course_lib, course_lib.quiz as q
print(json.dumps({"torch": torch.__version__, "cuda": torch.version.cuda,
                  "ipywidgets": ipywidgets.__version__, "jupyterlab": jupyterlab.__version__,
                  "course_lib": course_lib.__file__, "bank": str(q.bank_dir()),
                  "quizzes": len(q.load_bank())}))
""")
    print(info)
    assert info["torch"].endswith("+cpu") and info["cuda"] is None, f"not the CPU build of torch: {info}"
    assert info["course_lib"].startswith(str(ROOT / "course_lib")), "course_lib is not the checkout's (editable)"
    assert info["bank"] == str(ROOT / "quizzes") and info["quizzes"] >= 2
    assert info["jupyterlab"].startswith("4.") and info["ipywidgets"].startswith("8.")


def test_binder_env_is_consistent(binder_python):
    out = subprocess.run([str(binder_python), "-m", "pip", "check"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr


def test_binder_env_kernel_and_launch_url(binder_python, lab):
    """The launch URL answers, and a kernel started by the server runs in the Binder environment."""
    with urllib.request.urlopen(lab.url(LAUNCH_PATH), timeout=30) as r:
        assert r.status == 200
    kernel = lab.api("api/kernels", method="POST", body={"name": "python3"})
    try:
        import psutil

        deadline = time.monotonic() + 60
        exe = None
        while time.monotonic() < deadline and exe is None:
            for p in psutil.Process(lab.proc.pid).children(recursive=True):
                if "ipykernel" in " ".join(p.cmdline()):
                    exe = p.cmdline()[0]
            time.sleep(0.2)
        assert exe is not None, "no kernel process appeared"
        assert exe.startswith(str(binder_python.parent)), f"the kernel runs {exe}, not the Binder environment"
    finally:
        lab.api(f"api/kernels/{kernel['id']}", method="DELETE")
