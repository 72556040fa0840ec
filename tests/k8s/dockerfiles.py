"""Dockerfile parsing and the dependency closure of an image's extra (for test_dockerfiles)."""

from __future__ import annotations

import fnmatch
import functools
import re
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from k8s_support import ROOT
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support.imports import imported_names, module_name

# image -> (Dockerfile, extra, project packages the image copies). The three light images are
# targets of the shared root Dockerfile, built with `--build-arg COMPONENT=<extra>`
# (mk/cluster.mk); the trainer has its own.
IMAGES = {
    "predictor": ("Dockerfile", "model", {"bukva", "model"}),
    "transformer": ("Dockerfile", "transformer", {"bukva", "transformer"}),
    "frontend": ("Dockerfile", "frontend", {"bukva", "frontend"}),
    "trainer": ("pipelines/Dockerfile", "pipelines", {"bukva", "pipelines"}),
}
SHARED = "Dockerfile"
PROJECT_PACKAGES = {"bukva", "model", "transformer", "frontend", "pipelines"}
PACKAGE_DIRS = {"bukva": ROOT / "src" / "bukva"} | {
    p: ROOT / p for p in PROJECT_PACKAGES - {"bukva"}
}


@dataclass
class Dockerfile:
    """The parts of a Dockerfile the checks need."""

    path: Path
    base: str = ""
    copies: list[list[str]] = field(default_factory=list)  # sources of each COPY
    targets: list[str] = field(default_factory=list)  # destination of each COPY
    user: str = ""
    exposes: set[int] = field(default_factory=set)
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    steps: list[tuple[str, str]] = field(default_factory=list)  # (instruction, rest), in order


def _json_or_shell(text: str) -> list[str]:
    import json

    text = text.strip()
    return json.loads(text) if text.startswith("[") else ["/bin/sh", "-c", text]


def _stages(text: str) -> tuple[list[tuple[str, str]], list[tuple[str, str, list]]]:
    """The instructions before the first FROM, and each stage as (FROM image, name, steps)."""
    head: list[tuple[str, str]] = []
    stages: list[tuple[str, str, list]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        op, _, rest = line.partition(" ")
        op, rest = op.upper(), rest.strip()
        if op == "FROM":
            words = rest.split()
            name = words[2] if len(words) > 2 and words[1].upper() == "AS" else ""
            stages.append((words[0], name, []))
        (stages[-1][2] if stages else head).append((op, rest))
    return head, stages


def parse_dockerfile(
    path: Path, target: str | None = None, build_args: dict[str, str] | None = None
) -> Dockerfile:
    """Parse the instructions that build `target` (the last stage when none is named): its
    stage and the stages it is built FROM, continuations joined, ARG values (defaults, then
    `build_args`) substituted as the builder does."""
    head, stages = _stages(re.sub(r"\\\n", " ", path.read_text()))
    by_name = {name: i for i, (_image, name, _steps) in enumerate(stages) if name}
    chain = [by_name[target] if target else len(stages) - 1]
    while stages[chain[0]][0] in by_name:
        chain.insert(0, by_name[stages[chain[0]][0]])
    given = build_args or {}
    out, args = Dockerfile(path), {}

    def subst(text: str) -> str:
        return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m[1] or m[2], m[0]), text)

    steps = [step for i in chain for step in stages[i][2]]
    for op, raw_rest in [*head, *steps]:
        rest = subst(raw_rest) if op != "ARG" else raw_rest
        out.steps.append((op, rest))
        if op == "ARG":
            key, _, value = rest.partition("=")
            args[key.strip()] = given.get(key.strip(), value.strip())
        elif op == "FROM":
            if rest.split()[0] not in by_name:
                out.base = rest.split()[0]
        elif op == "COPY":
            parts = [p for p in rest.split() if not p.startswith("--")]
            if not any(p.startswith("--from") for p in rest.split()):
                out.copies.append(parts[:-1])
                out.targets.append(parts[-1])
        elif op == "USER":
            out.user = rest.strip()
        elif op == "EXPOSE":
            out.exposes |= {int(p.split("/")[0]) for p in rest.split()}
        elif op == "ENTRYPOINT":
            out.entrypoint = _json_or_shell(rest)
        elif op == "CMD":
            out.cmd = _json_or_shell(rest)
        elif op == "RUN":
            out.runs.append(rest)
    return out


def build_args(name: str) -> dict[str, str]:
    """The `--build-arg`s `make images` gives an image (the shared Dockerfile's COMPONENT)."""
    path, extra, _own = IMAGES[name]
    return {"COMPONENT": extra} if path == SHARED else {}


def image(name: str) -> Dockerfile:
    """The instructions that build the image `name` (its target of the shared Dockerfile)."""
    path = IMAGES[name][0]
    return parse_dockerfile(ROOT / path, name if path == SHARED else None, build_args(name))


def package(name: str) -> str:
    """The component folder an image copies besides the shared core."""
    [own] = IMAGES[name][2] - {"bukva"}
    return own


# What the dependency layer may be keyed on: the project metadata and the lock, never the code.
DEPENDENCY_FILES = {"pyproject.toml", "requirements.lock"}
INSTALL = "uv pip install --system"


def layer_order_problems(df: Dockerfile) -> list[str]:
    """Why an edit of the code would reinstall the dependencies (empty: it would not).

    The image installs its extra's dependencies from `pyproject.toml` and the lock once (one
    `uv pip install -r pyproject.toml` after COPYing only those two), then copies the code and
    installs the project itself with `--no-deps`.
    """
    installs = [i for i, (op, rest) in enumerate(df.steps) if op == "RUN" and INSTALL in rest]
    deps = [i for i in installs if "-r pyproject.toml" in df.steps[i][1]]
    if len(deps) != 1:
        return [f"{len(deps)} dependency installs (`{INSTALL} ... -r pyproject.toml`), not 1"]
    problems = []
    for op, rest in df.steps[: deps[0]]:
        if op == "COPY" and "--from" not in rest:
            sources = [p for p in rest.split() if not p.startswith("--")][:-1]
            problems += [
                f"COPY {src} before the dependency install: every edit of it reinstalls"
                for src in sources
                if src not in DEPENDENCY_FILES
            ]
    problems += [
        f"RUN {df.steps[i][1][:60]}...: installs dependencies again (add --no-deps)"
        for i in installs
        if i != deps[0] and "--no-deps" not in df.steps[i][1]
    ]
    return problems


def dockerignore() -> list[str]:
    """Patterns of .dockerignore (comments and blanks dropped)."""
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [ln.strip().rstrip("/") for ln in lines if ln.strip() and not ln.startswith("#")]


def ignored(rel: str, patterns: list[str]) -> bool:
    """Whether the build context leaves `rel` (or a parent folder of it) out."""
    parts = Path(rel).parts
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        pat = pattern.removeprefix("**/")
        for cand in candidates:
            if fnmatch.fnmatch(cand, pattern) or fnmatch.fnmatch(Path(cand).name, pat):
                return True
    return False


@functools.cache
def extra_closure(extra: str) -> frozenset[str]:
    """Canonical names of every distribution `bukva[extra]` installs (from installed metadata)."""
    seen: set[str] = set()
    todo: list[tuple[str, frozenset[str]]] = [("bukva", frozenset({extra}))]
    while todo:
        name, extras = todo.pop()
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # an optional dependency for another platform
        key = canonicalize_name(name)
        if key in seen and not extras:
            continue
        seen.add(key)
        for spec in dist.requires or []:
            req = Requirement(spec)
            envs = [{"extra": e} for e in (extras or {""})]
            if req.marker and not any(req.marker.evaluate(env) for env in envs):
                continue
            todo.append((req.name, frozenset(req.extras)))
    return frozenset(seen)


@functools.cache
def module_owners() -> dict[str, frozenset[str]]:
    """Top-level importable module -> canonical names of distributions providing it."""
    return {
        mod: frozenset(canonicalize_name(d) for d in dists)
        for mod, dists in metadata.packages_distributions().items()
    }


def copied_python_files(df: Dockerfile) -> list[Path]:
    """The .py files an image's COPY instructions bring in (folders expanded)."""
    files: list[Path] = []
    for sources in df.copies:
        for src in sources:
            path = ROOT / src
            if path.is_dir():
                files += sorted(path.rglob("*.py"))
            elif path.suffix == ".py":
                files.append(path)
    return files


def imports_of(py: Path) -> set[str]:
    """Dotted names imported anywhere in a file (inside functions too), except optional ones
    (in a `try:` that catches ImportError: the predictor exports to ONNX only where torch is
    installed); tests/support/imports.py reads them."""
    return imported_names(py, optional=False)


def reachable(files: list[Path], entry: str) -> list[Path]:
    """The files among `files` that the `entry` package imports, directly or transitively.

    The shared core may import optional libraries lazily (bukva.s3 imports boto3 inside its
    functions); that only matters for images whose code reaches those modules.
    """
    by_name = {module_name(f): f for f in files}
    todo = [n for n in by_name if n == entry or n.startswith(entry + ".")]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen or name not in by_name:
            continue
        seen.add(name)
        for imported in imports_of(by_name[name]):
            parts = imported.split(".")
            todo += [".".join(parts[: i + 1]) for i in range(len(parts))]
    return [by_name[n] for n in sorted(seen)]


def foreign_imports(extra: str, files: list[Path], entry: str | None = None) -> list[str]:
    """Imports that neither `bukva[extra]` nor the copied files provide, in the files `entry`
    reaches (all of `files` when no entry is given)."""
    closure, owners = extra_closure(extra), module_owners()
    modules = {module_name(f) for f in files}
    bad = []
    for py in reachable(files, entry) if entry else files:
        where = str(py.relative_to(ROOT))
        for name in sorted(imports_of(py)):
            top = name.split(".")[0]
            if top in sys.stdlib_module_names or top == "__future__":
                continue
            if top in PROJECT_PACKAGES:
                # `from pkg import name` may name an attribute, not a module: accept either.
                if name not in modules and name.rsplit(".", 1)[0] not in modules:
                    bad.append(f"{name}: not copied into the image ({where})")
                continue
            dists = owners.get(top)
            if not dists or not dists & closure:
                bad.append(f"{top} ({', '.join(sorted(dists or {'?'}))}) in {where}")
    return sorted(set(bad))


# Run in a fresh interpreter: a meta-path finder refuses every module whose distribution is not
# in the extra's closure, then the component's modules are imported for real.
IMPORT_PROBE = r"""
import importlib, importlib.abc, json, pkgutil, sys
cfg = json.loads(sys.argv[1])
closure, own, owners = set(cfg["closure"]), set(cfg["own"]), cfg["owners"]
project = set(cfg["project"])

class OnlyTheExtra(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        top = fullname.split(".")[0]
        if top in sys.stdlib_module_names or top.startswith("_"):
            return None
        if top in project and top not in own:
            raise ModuleNotFoundError(f"{fullname}: project package not in this image")
        dists = owners.get(top)
        if top not in project and dists is not None and not set(dists) & closure:
            raise ModuleNotFoundError(f"{fullname} needs {dists}, not in the extra")
        return None

sys.meta_path.insert(0, OnlyTheExtra())
for name in cfg["modules"]:
    importlib.import_module(name)
for name in cfg["parsers"]:
    importlib.import_module(name).build_parser()
print("imported", len(cfg["modules"]), "modules")
"""


def component_modules(package: str) -> list[str]:
    """Dotted names of every module in a project package folder."""
    folder = PACKAGE_DIRS[package]
    out = []
    for py in sorted(folder.rglob("*.py")):
        rel = py.relative_to(folder).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"]
        out.append(".".join([package, *parts]))
    return out
