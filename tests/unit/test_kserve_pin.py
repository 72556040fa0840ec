"""One KServe version: the Python SDK the servers run (pyproject.toml, requirements.lock) is the
controller version `make cluster-up` installs and whose CRD schema the offline checks read
(`KSERVE_VERSION` in k8s/versions.env)."""

from __future__ import annotations

import re

from tests.conftest import ROOT


def controller_version() -> str:
    """KSERVE_VERSION of k8s/versions.env, without its leading "v"."""
    text = (ROOT / "k8s" / "versions.env").read_text()
    match = re.search(r"^KSERVE_VERSION=v?(\S+)$", text, re.MULTILINE)
    assert match, "k8s/versions.env has no KSERVE_VERSION"
    return match[1]


def pinned(path: str) -> list[str]:
    """Every `kserve==X` pin in the file at `path` (a lock line or a pyproject requirement)."""
    return re.findall(r"^\s*\"?kserve==([^\s\",;]+)", (ROOT / path).read_text(), re.MULTILINE)


def test_the_locked_sdk_is_the_controller_version():
    assert pinned("requirements.lock") == [controller_version()]


def test_pyproject_pins_the_locked_sdk():
    assert pinned("pyproject.toml") == pinned("requirements.lock")
