"""Shared fixtures: project paths and the raw data mirror."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def shared_data_dir() -> Path:
    """The raw data mirror: BUKVA_TEST_DATA, else ../shared/data beside the checkout."""
    return Path(os.environ.get("BUKVA_TEST_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not (path / "rukopys" / "glyphs.csv").is_file():
        pytest.fail(f"raw data mirror not found at {path} (set BUKVA_TEST_DATA)")
    return path
