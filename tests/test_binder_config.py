"""binder/ is a repo2docker configuration that launches the workbook; checked without building it.

The build itself (a fresh environment from these files, JupyterLab started from it, every
notebook used in a browser) is the browser suite: ``make test-browser``, tests/browser/.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"
LAUNCH = "urlpath=lab/tree/notebooks/00_welcome.ipynb"


def requirement_lines() -> list[str]:
    lines = []
    for raw in (BINDER / "requirements.txt").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            lines.append(line)
    return lines


def requirements() -> dict[str, Requirement]:
    return {canonicalize_name(r.name): r for r in
            (Requirement(line) for line in requirement_lines() if not line.startswith("-"))}


def test_runtime_pins_python_311():
    assert (BINDER / "runtime.txt").read_text().strip() == "python-3.11"


def test_requirements_install_before_the_repo_is_copied():
    """No local reference (-e ., ., -r, -c, file://): repo2docker then installs the requirements in an
    image layer of their own, before it copies the repository, so a content commit reuses torch."""
    for line in requirement_lines():
        arg = line.split(None, 1)[-1] if line.startswith("-") else line
        assert not line.startswith(("-r", "-c", "--requirement", "--constraint", "-e", "--editable")), line
        assert "file://" not in line and not arg.startswith("."), f"local reference in requirements.txt: {line}"


def test_torch_is_the_cpu_build():
    reqs = requirements()
    torch = reqs["torch"]
    (spec,) = list(torch.specifier)
    assert spec.operator == "==" and spec.version.endswith("+cpu"), f"pin the CPU build: {torch}"
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in requirement_lines()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    project_torch = next(Requirement(d) for d in project["dependencies"] if canonicalize_name(Requirement(d).name) == "torch")
    assert Version(spec.version) in project_torch.specifier, f"{torch} is outside pyproject's {project_torch}"


def test_requirements_cover_every_project_dependency():
    """postBuild installs the project with --no-deps: every dependency must come from requirements.txt,
    with the same bounds as pyproject.toml."""
    reqs = requirements()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for dep in map(Requirement, project["dependencies"]):
        name = canonicalize_name(dep.name)
        assert name in reqs, f"binder/requirements.txt lacks {dep}"
        if name != "torch":
            assert reqs[name].specifier == dep.specifier, f"binder has {reqs[name]}, pyproject has {dep}"


@pytest.mark.parametrize("script", ["postBuild", "start"])
def test_scripts_are_executable_bash(script):
    path = BINDER / script
    assert os.access(path, os.X_OK), f"binder/{script} must be executable (git update-index --chmod=+x)"
    assert path.read_text().startswith("#!/bin/bash\n")


def test_postbuild_installs_the_project_without_dependencies():
    text = (BINDER / "postBuild").read_text()
    assert re.search(r"pip install .*--no-deps.* -e \.$", text, re.M), text


def test_start_hands_over_to_the_server():
    assert (BINDER / "start").read_text().rstrip().endswith('exec "$@"')


def test_readme_badge_opens_the_first_notebook_in_jupyterlab():
    readme = (ROOT / "README.md").read_text()
    badge = re.search(r"\[!\[Binder\]\(https://mybinder\.org/badge_logo\.svg\)\]\((https://mybinder\.org/v2/[^)]+)\)", readme)
    assert badge, "README needs the 'launch binder' badge"
    assert badge.group(1).endswith("?" + LAUNCH), badge.group(1)
    assert (ROOT / "notebooks" / "00_welcome.ipynb").is_file()




def test_start_sets_threads_and_memory_defaults_but_keeps_user_choices():
    import subprocess

    names = {"COURSE_THREADS", "MALLOC_MMAP_THRESHOLD_"}

    def env_after_start(extra: dict) -> dict:
        env = {k: v for k, v in os.environ.items() if k not in names}
        out = subprocess.run(["bash", str(BINDER / "start"), "env"], env={**env, **extra},
                             capture_output=True, text=True, check=True).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    default = env_after_start({})
    assert default["COURSE_THREADS"] == "2" and default["MALLOC_MMAP_THRESHOLD_"] == "2097152"
    chosen = env_after_start({"COURSE_THREADS": "4", "MALLOC_MMAP_THRESHOLD_": "65536"})
    assert chosen["COURSE_THREADS"] == "4" and chosen["MALLOC_MMAP_THRESHOLD_"] == "65536"
