"""The import rules of docs/architecture.md ("Import rules"), enforced.

A static scan reads every import of every project module (inside functions too, so a lazy
import counts like any other) and checks: the core stays free of the heavy libraries except in
its two documented optional modules, the components never import each other, and no project
module reaches itself through imports. A subprocess check then imports the light packages for
real and looks at what ended up in `sys.modules`.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPONENTS = ("model", "transformer", "frontend", "pipelines")
TOOLING = ("bench", "launch", "monitoring")  # may import the components; nothing imports them
PACKAGES = {"bukva": ROOT / "src" / "bukva"} | {
    p: ROOT / p for p in COMPONENTS + TOOLING if (ROOT / p / "__init__.py").is_file()
}
HEAVY = frozenset({"torch", "kserve", "mlflow", "streamlit"})
# Core modules that may use one heavy library, behind an extra of pyproject.toml.
OPTIONAL_CORE = {"bukva.network": {"torch"}, "bukva.serving": {"kserve"}}
# What each component must not import besides the other components.
COMPONENT_HEAVY = {"transformer": {"torch", "mlflow"}, "frontend": {"torch", "kserve"}}


def module_name(path: Path) -> str:
    """Dotted name of a project file (src/ is the import root of bukva)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    parts = parts[1:] if parts[0] == "src" else parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def project_modules() -> dict[str, Path]:
    """Every module of the core, the components and the tooling packages."""
    return {
        module_name(py): py
        for folder in PACKAGES.values()
        for py in sorted(folder.rglob("*.py"))
        if "__pycache__" not in py.parts
    }


def imports_of(name: str) -> set[str]:
    """Absolute dotted names a module imports; `from a import b` gives `a.b` when that is a
    module, else `a`. Relative imports are resolved against the module's package."""
    path, modules = project_modules()[name], project_modules()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in modules else base)
    return found


def top(name: str) -> str:
    return name.split(".")[0]


def test_the_scan_sees_the_project():
    modules = project_modules()
    assert {"bukva.contract", "bukva.network", "bukva.serving", "model.model"} <= set(modules)
    assert "torch" in {top(i) for i in imports_of("bukva.network")}  # the scan reads imports
    assert "bukva.network" in imports_of("model.runtime")


def test_core_imports_no_heavy_library_and_no_component():
    bad = []
    for name in project_modules():
        if top(name) != "bukva":
            continue
        allowed = OPTIONAL_CORE.get(name, set())
        for imported in imports_of(name):
            if top(imported) in (HEAVY - allowed) | set(COMPONENTS + TOOLING):
                bad.append(f"{name} imports {imported}")
            if imported in OPTIONAL_CORE and name not in OPTIONAL_CORE:
                bad.append(f"{name} imports the optional {imported}")
    assert not bad, "\n".join(bad)


def test_components_never_import_each_other():
    bad = []
    for name in project_modules():
        owner = top(name)
        if owner not in COMPONENTS:
            continue
        forbidden = (set(COMPONENTS) - {owner}) | set(TOOLING) | COMPONENT_HEAVY.get(owner, set())
        bad += [f"{name} imports {i}" for i in sorted(imports_of(name)) if top(i) in forbidden]
    assert not bad, "\n".join(bad)


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (as a closed path) in `graph`, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycles_among_project_modules():
    modules = project_modules()
    graph = {name: {i for i in imports_of(name) if i in modules} for name in modules}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_can_fail():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


CHECK = """
import importlib, pkgutil, sys
package = importlib.import_module("{package}")
skip = set({skip!r})
names = [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
names = [n for n in names if n not in skip]
for name in names:
    module = importlib.import_module(name)
    if hasattr(module, "build_parser"):  # __main__: building the CLI must stay light too
        module.build_parser()
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
print(",".join(heavy) or "clean", len(names))
"""


@pytest.mark.parametrize(
    ("package", "skip", "heavy", "least"),
    [
        ("transformer", (), ("torch", "mlflow", "torchvision", "streamlit"), 4),
        ("bukva", tuple(OPTIONAL_CORE), ("torch", "mlflow", "kserve", "streamlit"), 6),
    ],
)
def test_light_packages_load_no_heavy_library(package, skip, heavy, least):
    result = subprocess.run(
        [sys.executable, "-c", CHECK.format(package=package, skip=skip, heavy=heavy)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    verdict, count = result.stdout.split()
    assert verdict == "clean", f"importing {package} pulled in {verdict}"
    assert int(count) >= least  # the walk really found the modules
