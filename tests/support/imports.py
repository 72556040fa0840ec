"""One reader of the project's imports for every test that needs them (import rules, dvc.yaml
dependencies, what an image must install).

It reads source statically, so a lazy import inside a function counts like any other. For each
import it yields the absolute dotted names it brings in: `import a.b` gives `a.b`;
`from a import b` gives `a` and `a.b` (b may be a module or an attribute: callers that care ask
`module_file`); relative imports are resolved against the importing module's package. An import
in the body of a `try:` that catches ImportError is marked optional: the file works without it.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]
COMPONENTS = ("model", "transformer", "frontend", "pipelines")
TOOLING = ("bench", "launch", "monitoring")  # may import the components; nothing imports them
PACKAGES = {"bukva": ROOT / "src" / "bukva"} | {p: ROOT / p for p in COMPONENTS + TOOLING}


@dataclass(frozen=True)
class Imported:
    name: str  # absolute dotted name
    optional: bool  # inside `try: ... except ImportError`


def module_name(path: Path) -> str:
    """Dotted name of a project file (src/ is the import root of bukva)."""
    parts = list(path.resolve().relative_to(ROOT).with_suffix("").parts)
    parts = parts[1:] if parts[0] == "src" else parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_file(name: str) -> Path | None:
    """The project file of a dotted module name, or None (third party, or an attribute)."""
    top, *rest = name.split(".")
    if top not in PACKAGES:
        return None
    base = PACKAGES[top].joinpath(*rest)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@cache
def project_modules() -> dict[str, Path]:
    """Every module of the core, the components and the tooling packages."""
    return {
        module_name(py): py
        for folder in PACKAGES.values()
        if (folder / "__init__.py").is_file()
        for py in sorted(folder.rglob("*.py"))
        if "__pycache__" not in py.parts
    }


def _optional_nodes(tree: ast.AST) -> set[int]:
    """ids of the nodes in the body of a `try:` that catches ImportError."""
    names = {"ImportError", "ModuleNotFoundError"}
    optional = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
            {n.id for n in ast.walk(h.type) if isinstance(n, ast.Name)} & names
            for h in node.handlers
            if h.type is not None
        ):
            optional |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return optional


@cache
def imports(path: Path) -> frozenset[Imported]:
    """What the file at `path` imports, anywhere in it (see the module doc)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    optional = _optional_nodes(tree)
    try:
        name = module_name(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    except ValueError:  # a file outside the project: relative imports stay unresolved
        package = ""
    found = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                if not package:
                    continue
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            names = [base, *(f"{base}.{a.name}" for a in node.names)]
        found |= {Imported(n, id(node) in optional) for n in names if n}
    return frozenset(found)


def imported_names(path: Path, optional: bool = True) -> set[str]:
    """The dotted names `path` imports; `optional=False` leaves out the optional ones."""
    return {i.name for i in imports(path) if optional or not i.optional}


def project_imports(name: str) -> set[str]:
    """The project modules the module `name` imports directly (each name's module file)."""
    modules, found = project_modules(), set()
    for imported in imported_names(modules[name]):
        file = module_file(imported)
        if file is not None:
            found.add(module_name(file))
    return found


def reach(start: Iterable[T], edges: Callable[[T], Iterable[T]]) -> set[T]:
    """`start` and everything `edges` leads to from it, transitively."""
    seen: set[T] = set()
    pending = list(start)
    while pending:
        current = pending.pop()
        if current not in seen:
            seen.add(current)
            pending.extend(edges(current))
    return seen


def closure(names: Iterable[str]) -> set[str]:
    """`names` and every project module they import, transitively."""
    return reach(names, project_imports)


def third_party(name: str) -> set[str]:
    """Top-level names of what the module `name` imports from outside the project."""
    return {
        i.split(".")[0] for i in imported_names(project_modules()[name]) if module_file(i) is None
    } - set(PACKAGES)
