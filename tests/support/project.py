"""A throwaway copy of the project (git + DVC) with a tiny data profile, for pipeline tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import ROOT
from tests.support.mirror import make_mirror

COPIED = ("dvc.yaml", "params.yaml", "pipelines", "model", "src", ".dvc/config", ".dvcignore")

TINY_PARAMS = {
    "draw": {
        "rukopys_copies": 1,
        "mnist_every": 10,
        "font_copies": 0,  # the tiny profile trains on its few letters and digits only
        "eval_font_copies": 1,
        "fonts_per_role": 1,
        "strokebuilt": False,
    },
    # One torch thread: the net is tiny, and `make test` runs other workers beside it.
    "pretrain": {"epochs": 1, "batch_size": 32, "aug_strength": 0.5, "threads": 1},
    "train": {
        "epochs": 3,
        "batch_size": 32,
        "samples_per_epoch": 256,
        "width": 8,
        "hidden": 32,
        "threads": 1,
    },
}


def env(**extra: str) -> dict[str, str]:
    """Environment for stage subprocesses: the venv's python first on PATH, no tracking URI."""
    out = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "BUKVA_"))}
    out["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{out.get('PATH', '')}"
    out["PYTHONUNBUFFERED"] = "1"
    return out | extra


def run(cmd: list[str], cwd: Path, **extra: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        cmd, cwd=cwd, env=env(**extra), capture_output=True, text=True, timeout=900
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n"
            f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return proc


def make_project(
    dest: Path,
    raw_data: Path,
    letters: str = "абвгґ",
    per_letter: int = 6,
    digits: int = 300,
    params: dict | None = None,
) -> Path:
    """Copy the pipeline into `dest` as a fresh git + DVC repo reading a tiny data mirror."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        src = ROOT / name
        if not src.exists():
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, target, ignore=shutil.ignore_patterns("__pycache__", "Dockerfile"))
        else:
            shutil.copy2(src, target)
    mirror = make_mirror(
        raw_data,
        dest.parent / f"{dest.name}-mirror",
        letters=letters,
        per_letter=per_letter,
        digits=digits,
    )
    values = yaml.safe_load((ROOT / "params.yaml").read_text())
    values["ingest"]["source"] = str(mirror)
    for stage, overrides in (params or TINY_PARAMS).items():
        values.setdefault(stage, {}).update(overrides)
    (dest / "params.yaml").write_text(yaml.safe_dump(values, allow_unicode=True))
    run(["git", "init", "-q"], dest)
    run(
        [
            "git",
            "-c",
            "user.email=t@t",
            "-c",
            "user.name=t",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "init",
        ],
        dest,
    )
    if not (dest / ".dvc" / "config").exists():
        run([sys.executable, "-m", "dvc", "init", "-q"], dest)
    return dest
