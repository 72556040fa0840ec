"""The transformer and the core package never import torch (their images do not carry it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECK = """
import importlib, pkgutil, sys
package = importlib.import_module("{package}")
names = [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
for name in names:
    module = importlib.import_module(name)
    if hasattr(module, "build_parser"):  # __main__: building the CLI must stay light too
        module.build_parser()
heavy = sorted(m for m in ("torch", "mlflow", "torchvision") if m in sys.modules)
print(",".join(heavy) or "clean", len(names))
"""


@pytest.mark.parametrize(("package", "least"), [("transformer", 5), ("bukva", 3)])
def test_no_torch_in_transformer_or_core(package, least):
    result = subprocess.run(
        [sys.executable, "-c", CHECK.format(package=package)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    verdict, count = result.stdout.split()
    assert verdict == "clean", f"importing {package} pulled in {verdict}"
    assert int(count) >= least  # the walk really found the modules
