"""The shape of course_lib (course_lib/README.md): every module imports alone, and imports point one way.

Layers, from the bottom: foundation (the top-level modules that are not techniques) <- techniques
(distill, quantize, prune, lowrank, stress) <- studies/, explorers/, exercises/ (one file per chapter
each) <- notebooks. quiz/ stands apart: it uses the foundation only. A module's layer comes from
where it lives, so a new file in any of these folders is checked without editing this test.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import course_lib

ROOT = Path(course_lib.__file__).resolve().parent
TECHNIQUES = {"distill", "quantize", "prune", "lowrank", "stress", "augment", "distill_layers", "ship"}
BUILT_ON_TECHNIQUES = {"studies", "explorers", "exercises"}
APART = {"quiz"}
# what each layer may import (besides itself, and its own package)
ALLOWED = {
    "foundation": {"foundation"},
    "technique": {"foundation", "technique"},
    "studies": {"foundation", "technique", "studies", "explorers", "exercises"},
    "explorers": {"foundation", "technique", "studies", "explorers", "exercises"},
    "exercises": {"foundation", "technique", "studies", "explorers", "exercises"},
    "quiz": {"foundation", "quiz"},
}


def module_names() -> list[str]:
    """Every module of course_lib as a dotted name, packages as their own name (``course_lib.quiz``)."""
    names = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        parts = list(rel.parts)
        if "__pycache__" in parts:
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(parts))
    return names


def layer(name: str) -> str | None:
    """``foundation``, ``technique``, ``studies``, ``explorers``, ``exercises``, ``quiz``; None for the root package."""
    parts = name.split(".")[1:]
    if not parts:
        return None
    if parts[0] in BUILT_ON_TECHNIQUES | APART:
        return parts[0]
    if len(parts) > 1:
        raise AssertionError(f"{name}: a sub-package course_lib/{parts[0]}/ that course_lib/README.md and "
                             "tests/test_layout.py do not know; add it to the layout first.")
    return "technique" if parts[0] in TECHNIQUES else "foundation"


def _path(name: str) -> Path:
    rel = Path(*name.split(".")[1:])
    package = ROOT / rel / "__init__.py"
    return package if package.is_file() else (ROOT / rel).with_suffix(".py")


def imports_of(name: str, known: set[str]) -> set[str]:
    """The course_lib modules ``name`` imports, anywhere in its file (function-level imports too)."""
    path = _path(name)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("course_lib"):
                continue
            for alias in node.names:  # `from . import data` names a module; `from .data import x`, an attribute
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in known else target)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("course_lib"))
    found = {f for f in found if f in known}
    found.discard(name)
    return found


KNOWN = set(module_names())
GRAPH = {name: imports_of(name, KNOWN) for name in KNOWN}


def test_every_module_has_a_layer():
    for name in KNOWN:
        layer(name)  # raises for an unknown sub-package
    assert {"course_lib.config", "course_lib.distill", "course_lib.quiz"} <= KNOWN


def test_imports_point_one_way():
    wrong = []
    for name, targets in sorted(GRAPH.items()):
        mine = layer(name)
        if mine is None:
            continue
        for target in sorted(targets):
            theirs = layer(target)
            if theirs is not None and theirs not in ALLOWED[mine]:
                wrong.append(f"{name} ({mine}) imports {target} ({theirs})")
    assert not wrong, "imports against the layout (course_lib/README.md):\n" + "\n".join(wrong)


def test_no_import_cycles():
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(GRAPH[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(path[path.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_graph_sees_imports():
    """The parser finds relative, package-level and function-level imports (so the tests above can fail)."""
    assert "course_lib.config" in GRAPH["course_lib.data"]
    assert "course_lib.distill" in GRAPH["course_lib.studies.distillation"]
    assert "course_lib.explorers.base" in GRAPH["course_lib.explorers.threshold"]
    assert "course_lib.quiz.views" in GRAPH["course_lib.quiz.notebook"]  # imported inside a function
    assert layer("course_lib.prune") == "technique" and layer("course_lib.stats") == "foundation"
    assert layer("course_lib.explorers.sparsity") == "explorers"


IMPORT_EACH_ALONE = """
import importlib, json, sys, traceback
failed = {}
for name in json.loads(sys.argv[1]):
    for loaded in [m for m in sys.modules if m == "course_lib" or m.startswith("course_lib.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception:
        failed[name] = traceback.format_exc(limit=3)
print(json.dumps(failed))
"""


def test_every_module_imports_alone():
    """Each module imported first, in an interpreter where no other course_lib module is loaded yet."""
    names = sorted(KNOWN)
    done = subprocess.run([sys.executable, "-c", IMPORT_EACH_ALONE, json.dumps(names)], capture_output=True,
                          text=True, timeout=600, cwd=ROOT.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    failed = json.loads(done.stdout.strip().splitlines()[-1])
    assert not failed, "\n\n".join(f"{k}:\n{v}" for k, v in failed.items())


def test_shipped_predict_batch_matches_the_config():
    from course_lib import config, shipped
    assert shipped.PREDICT_BATCH_SIZE == config.PREDICT_BATCH_SIZE
