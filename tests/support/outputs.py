"""Tests that need the pipeline's outputs (the trained model, evaluate's predictions).

Outside CI a checkout may not have trained yet (`make repro` takes minutes): such tests skip and
say what to run. Under CI (`CI` set, as `.ci/run` runs) the model is trained first, so a missing
output is a failure: the behavioural tests and the served-vs-offline parity gate every change.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require(paths: list[Path], what: str, run: str = "make repro") -> None:
    """Skip (fail under CI) unless every path exists."""
    missing = [str(p) for p in paths if not p.exists()]
    if not missing:
        return
    message = f"needs {what}: {', '.join(missing)} missing (run `{run}`)"
    if under_ci():
        pytest.fail(f"{message}; under CI the pipeline runs first, so this is a failure")
    pytest.skip(message)
