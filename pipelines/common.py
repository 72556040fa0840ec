"""Small helpers every stage shares: params, progress output, errors for the CLI."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from bukva.settings import SettingsError

PARAMS_FILE = "params.yaml"


class StageError(RuntimeError):
    """A stage cannot go on; the message names the file or value at fault."""


def load_params(stage: str, path: str | Path = PARAMS_FILE) -> dict[str, Any]:
    """The `stage` section of params.yaml.

    Raises:
        StageError: the file or the section is missing.
    """
    path = Path(path)
    if not path.is_file():
        raise StageError(f"params file not found: {path}")
    data = yaml.safe_load(path.read_text()) or {}
    if stage not in data:
        raise StageError(f"{path} has no `{stage}:` section")
    return dict(data[stage] or {})


def log(stage: str, message: str) -> None:
    """One line of progress output, flushed at once."""
    print(f"[{time.strftime('%H:%M:%S')}] {stage}: {message}", flush=True)


def write_json(path: str | Path, data: Any) -> None:
    """Write JSON (UTF-8, sorted keys, trailing newline), creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n")


def run_cli(stage: str, main) -> None:
    """Run a stage's main(); turn StageError (or a bad setting) into a one-line message and
    exit code 1."""
    try:
        main()
    except (StageError, SettingsError) as exc:
        print(f"{stage}: error: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)
