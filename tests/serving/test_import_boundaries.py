"""The import rules of docs/architecture.md ("Import rules"), enforced.

A static scan reads every import of every project module (inside functions too, so a lazy
import counts like any other) and checks: the core stays free of the heavy libraries except in
its two documented optional modules, the components never import each other, and no project
module reaches itself through imports. A subprocess check then imports the light packages for
real and looks at what ended up in `sys.modules`.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.imports import (
    COMPONENTS,
    ROOT,
    TOOLING,
    closure,
    imported_names,
    project_imports,
    project_modules,
    third_party,
)

HEAVY = frozenset({"torch", "kserve", "mlflow", "streamlit"})
# Core modules (a package: with its modules) that may use one heavy library, behind an extra
# of pyproject.toml.
OPTIONAL_CORE = {"bukva.network": {"torch"}, "bukva.serving": {"kserve"}}
# What each component must not reach, through any chain of project imports, besides the other
# components. The predictor's lazy path to torch (export at load, where torch is installed)
# and the trainer's to ONNX Runtime are theirs to have.
COMPONENT_HEAVY = {
    "transformer": {"torch", "mlflow", "streamlit"},
    "frontend": {"torch", "kserve", "mlflow"},
    "model": {"streamlit"},
    "pipelines": {"kserve", "streamlit"},
}


def imports_of(name: str) -> set[str]:
    return imported_names(project_modules()[name])


def top(name: str) -> str:
    return name.split(".")[0]


def optional_core(name: str) -> str | None:
    """The optional core module `name` is, or belongs to (`bukva.serving.rest`: bukva.serving)."""
    return next((o for o in OPTIONAL_CORE if name == o or name.startswith(o + ".")), None)


def test_the_scan_sees_the_project():
    modules = project_modules()
    assert {"bukva.contract", "bukva.network", "bukva.serving", "model.model"} <= set(modules)
    assert "bukva.serving.rest" in modules  # the optional package's modules too
    assert optional_core("bukva.serving.rest") == "bukva.serving"
    assert optional_core("bukva.servings") is None
    assert "torch" in {top(i) for i in imports_of("bukva.network")}  # the scan reads imports
    assert "bukva.network" in imports_of("model.runtime")


def test_core_imports_no_heavy_library_and_no_component():
    bad = []
    for name in project_modules():
        if top(name) != "bukva":
            continue
        own = optional_core(name)
        allowed = OPTIONAL_CORE.get(own, set())
        for imported in imports_of(name):
            if top(imported) in (HEAVY - allowed) | set(COMPONENTS + TOOLING):
                bad.append(f"{name} imports {imported}")
            if optional_core(imported) not in (None, own):
                bad.append(f"{name} imports the optional {imported}")
    assert not bad, "\n".join(bad)


def reach_violations(component: str, forbidden: set[str]) -> list[str]:
    """Each module of `component` that reaches a `forbidden` library through project imports,
    with the chain that gets there."""
    bad = []
    for name in sorted(n for n in project_modules() if top(n) == component):
        parents: dict[str, str | None] = {name: None}
        pending = [name]
        while pending:  # breadth first: the shortest chain to each reached module
            current = pending.pop(0)
            if hit := third_party(current) & forbidden:
                chain, at = [], current
                while at is not None:
                    chain.append(at)
                    at = parents[at]
                bad.append(" -> ".join(reversed(chain)) + f" imports {sorted(hit)}")
            for nxt in sorted(project_imports(current)):
                if nxt not in parents:
                    parents[nxt] = current
                    pending.append(nxt)
    return bad


@pytest.mark.parametrize("component", sorted(COMPONENT_HEAVY))
def test_components_reach_no_forbidden_library_through_the_core(component):
    """Transitive: the transformer importing `bukva.network` (torch) or the app importing
    `bukva.serving` (kserve) breaks the rule as surely as importing torch itself."""
    bad = reach_violations(component, COMPONENT_HEAVY[component])
    assert not bad, "\n".join(bad)


def test_the_transitive_rule_sees_a_chain():
    """The rule can fail: the predictor's lazy export path reaches torch through the core."""
    chains = reach_violations("model", {"torch"})
    assert any("bukva.network imports ['torch']" in c for c in chains), chains
    assert "bukva.network" in closure({"model.runtime"})


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
    # `from pkg import sub` inside pkg/__init__.py names pkg itself: not an edge.
    graph = {name: {i for i in imports_of(name) if i in modules} - {name} for name in modules}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_can_fail():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


CHECK = """
import importlib, pkgutil, sys
package = importlib.import_module("{package}")
skip = set({skip!r})

def walk(path, prefix):  # pkgutil.walk_packages, without importing a skipped package
    for m in pkgutil.iter_modules(path, prefix):
        if m.name in skip:
            continue
        yield m.name
        if m.ispkg:
            yield from walk(importlib.import_module(m.name).__path__, m.name + ".")

names = list(walk(package.__path__, package.__name__ + "."))
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
        ("frontend", (), ("torch", "kserve", "mlflow", "torchvision"), 8),
        ("model", (), ("torch", "streamlit", "torchvision"), 4),
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
