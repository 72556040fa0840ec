"""The cluster scripts: valid shell, and `make cluster-up` on a machine without the tools
stops at once and names what is missing (it never half-creates anything)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from k8s_support import ROOT, make_images

pytestmark = pytest.mark.k8s

SCRIPTS = [
    *sorted((ROOT / "scripts").glob("cluster-*.sh")),
    ROOT / "scripts" / "get-helm.sh",
    ROOT / "kustomize" / "base" / "job" / "run-stages.sh",
]
# What the scripts need before they reach the prerequisite check.
BASICS = ["bash", "dirname", "sort", "head", "sed", "grep", "tr", "cat", "mktemp", "rm"]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_is_valid_bash(script: Path) -> None:
    out = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    if shutil.which("shellcheck"):
        out = subprocess.run(
            ["shellcheck", "-x", str(script.relative_to(ROOT))],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        assert out.returncode == 0, out.stdout


def _bare_path(tmp_path: Path, extra: dict[str, str] | None = None) -> str:
    """A PATH with only the basic tools (and `extra` name -> fake script)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in BASICS:
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    for name, body in (extra or {}).items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    return str(bin_dir)


def test_cluster_up_names_every_missing_tool(tmp_path: Path) -> None:
    env = {"PATH": _bare_path(tmp_path), "HOME": str(tmp_path), "BUKVA_HELM": "/nonexistent/helm"}
    env["CLUSTER_TOOL"] = "kind"
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "cluster-up.sh")], env=env, capture_output=True, text=True
    )
    assert out.returncode != 0
    for tool in ("docker", "kind", "kubectl"):
        assert f"missing: {tool}" in out.stderr, out.stderr
    assert "run 'make cluster-up' again" in out.stderr


def test_cluster_up_stops_when_the_docker_daemon_is_down(tmp_path: Path) -> None:
    fakes = {"docker": '[ "$1" = info ] && exit 1; exit 0', "k3d": "exit 0", "kubectl": "exit 0"}
    env = {"PATH": _bare_path(tmp_path, fakes), "HOME": str(tmp_path)}
    env["BUKVA_HELM"] = str(tmp_path / "bin" / "kubectl")  # any executable: helm is "present"
    env["CLUSTER_TOOL"] = "k3d"
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "cluster-up.sh")], env=env, capture_output=True, text=True
    )
    assert out.returncode != 0
    assert "daemon is not running" in out.stderr, out.stderr
    assert "missing" not in out.stderr


def test_make_exposes_the_cluster_targets() -> None:
    out = subprocess.run(
        ["make", "--no-print-directory", "help"], capture_output=True, text=True, cwd=ROOT
    )
    for target in ("cluster-up", "cluster-down", "train-job", "cluster", "images", "k8s-check"):
        assert target in out.stdout
    env = os.environ | {"IMAGE_TAG": "9.9.9"}
    assert "bukva/trainer:9.9.9" in make_images(env)
