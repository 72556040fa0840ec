"""dvc.yaml is complete: every stage depends on every project module its code imports and
declares every params.yaml section its code reads, so `dvc status` / `dvc params diff` see
every change that can change a stage's output."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from tests.support import imports

# The packages a stage runs: pipelines, the core and the model package (registration).
PACKAGES = {"pipelines", "bukva", "model"}
# Package markers without code: importing them changes nothing a stage does. (The pipelines
# package is not one: it sets the CPU kernel caps, pipelines/cpu.py, in every stage process.)
IGNORED = {
    "src/bukva/__init__.py",
    "model/__init__.py",
}


def module_file(name: str) -> Path | None:
    """The stage-side project file of a dotted module name (pipelines, the core, the model
    package), or None."""
    return imports.module_file(name) if name.split(".")[0] in PACKAGES else None


def imported_files(path: Path) -> set[Path]:
    """Project files `path` imports anywhere (lazy imports in functions too), with the
    `__init__.py` of every package on the way."""
    found = set()
    for name in imports.imported_names(path):
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            file = module_file(".".join(parts[:i]))
            if file is not None:
                found.add(file)
    return found


def closure(path: Path) -> set[Path]:
    """`path` and every project file it imports, transitively."""
    return imports.reach([path], imported_files)


def stages() -> dict[str, dict]:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]


def stage_module(stage: dict) -> Path:
    match = re.search(r"python -m ([\w.]+)", stage["cmd"])
    assert match, f"not a `python -m` stage: {stage['cmd']}"
    file = module_file(match.group(1))
    assert file is not None, match.group(1)
    return file


@pytest.mark.parametrize("name", sorted(stages()))
def test_stage_depends_on_every_project_module_it_imports(name):
    stage = stages()[name]
    needed = {str(p.relative_to(ROOT)) for p in closure(stage_module(stage))} - IGNORED
    missing = sorted(needed - set(stage.get("deps", [])))
    assert not missing, f"dvc.yaml stage {name} lacks deps {missing}"


@pytest.mark.parametrize("name", sorted(stages()))
def test_stage_declares_every_params_section_it_reads(name):
    stage = stages()[name]
    declared = {str(p).split(".")[0] for p in stage.get("params", [])}
    read = set()
    for file in closure(stage_module(stage)):
        read |= set(re.findall(r"load_params\(\s*\"(\w+)\"", file.read_text(encoding="utf-8")))
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    assert read <= declared, f"stage {name} reads params {sorted(read - declared)} undeclared"
    assert declared <= set(params), f"params.yaml lacks {sorted(declared - set(params))}"


def test_the_checker_sees_lazy_imports_and_subpackages():
    """The closure is not vacuous: train reaches the network, ingest its lazy imports."""
    train = {str(p.relative_to(ROOT)) for p in closure(ROOT / "pipelines" / "train.py")}
    assert {"pipelines/fit.py", "pipelines/data.py", "src/bukva/alphabet.py"} <= train
    ingest = {str(p.relative_to(ROOT)) for p in closure(ROOT / "pipelines" / "ingest.py")}
    assert {"src/bukva/settings.py", "pipelines/sources/__init__.py"} <= ingest


@pytest.mark.parametrize("name", sorted(stages()))
def test_every_stage_depends_on_the_cpu_kernel_caps(name):
    """The caps are set in pipelines/__init__.py (pipelines/cpu.py): torch's kernels for the
    stages that train or evaluate, numpy's and OpenBLAS's for every stage (the drawings'
    float64 exp), so changing them must re-run every stage."""
    deps = set(stages()[name].get("deps", []))
    assert {"pipelines/__init__.py", "pipelines/cpu.py"} <= deps
