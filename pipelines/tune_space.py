"""The tuning search space, and how its best point gets into params.yaml.

Optuna parameter names differ from `train:` keys where a range depends on another choice
(`adamw_lr` / `sgd_lr` both become `lr`); `train_values_of` maps back. `write_train_params`
updates the `train:` section of params.yaml in place, so comments and every other stage's
section stay exactly as they were and `git diff params.yaml` shows only the tuned values.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from pipelines.common import StageError

WIDTHS = (16, 24, 32, 48)
TUNED_KEYS = (
    "optimizer",
    "lr",
    "schedule",
    "weight_decay",
    "aug_strength",
    "width",
    "mix_scanned",
    "mix_drawn",
    "mix_fonts",
    "synthetic_capitals",
)
MIX_MAX = 0.6  # the most of a class's samples canvas redrawings or font letters may take each


def widths_for(base_width: int) -> tuple[int, ...]:
    """The width choices: WIDTHS plus the hand-set width, so the baseline trial fits in."""
    return tuple(sorted({*WIDTHS, base_width}))


def suggest(trial: Any, widths: tuple[int, ...] | None = WIDTHS) -> dict[str, Any]:
    """Sample one point of the search space; keys are `TrainParams` field names.

    Args:
        widths: the width choices, or None to leave the width alone (pretrained body).
    """
    optimizer = trial.suggest_categorical("optimizer", ["adamw", "sgd"])
    # SGD with momentum wants a learning rate ~10x AdamW's: separate, conditional ranges.
    low, high = (3e-4, 1e-2) if optimizer == "adamw" else (1e-2, 3e-1)
    values = {
        "optimizer": optimizer,
        "lr": trial.suggest_float(f"{optimizer}_lr", low, high, log=True),
        "schedule": trial.suggest_categorical("schedule", ["onecycle", "cosine"]),
        "weight_decay": trial.suggest_float("weight_decay", 1e-5, 5e-2, log=True),
        "aug_strength": trial.suggest_float("aug_strength", 0.0, 1.5),
    }
    # The training material (pipelines.fit.training_set): the in-class shares of canvas
    # redrawings and font block letters, scans the rest; synthetic capitals on or off.
    drawn = trial.suggest_float("mix_drawn", 0.0, MIX_MAX)
    fonts = trial.suggest_float("mix_fonts", 0.0, MIX_MAX)
    values |= mix_of(drawn, fonts)
    values["synthetic_capitals"] = trial.suggest_categorical("synthetic_capitals", [True, False])
    if widths:
        values["width"] = trial.suggest_categorical("width", list(widths))
    return values


def mix_of(drawn: float, fonts: float) -> dict[str, float]:
    """The three `mix_*` shares from the two searched ones: scans take the rest (at least 0.1,
    else all three are scaled down to sum to 1)."""
    scanned = 1.0 - drawn - fonts
    if scanned < 0.1:
        scale = 0.9 / (drawn + fonts)
        drawn, fonts, scanned = drawn * scale, fonts * scale, 0.1
    return {"mix_scanned": round(scanned, 4), "mix_drawn": drawn, "mix_fonts": fonts}


def trial_params_of(train: dict[str, Any], tune_width: bool = True) -> dict[str, Any]:
    """The Optuna parameter names and values that reproduce `train` (to enqueue a baseline;
    its `mix_scanned` must be what the other two shares leave, as `mix_of` makes it)."""
    fixed = {
        "optimizer": train["optimizer"],
        f"{train['optimizer']}_lr": train["lr"],
        "schedule": train["schedule"],
        "weight_decay": train["weight_decay"],
        "aug_strength": train["aug_strength"],
        "mix_drawn": train["mix_drawn"],
        "mix_fonts": train["mix_fonts"],
        "synthetic_capitals": train["synthetic_capitals"],
    }
    if tune_width:
        fixed["width"] = train["width"]
    return fixed


def train_values_of(optuna_params: dict[str, Any]) -> dict[str, Any]:
    """Map a trial's Optuna parameters back to `train:` keys of params.yaml."""
    named = dict(optuna_params, lr=optuna_params[f"{optuna_params['optimizer']}_lr"])
    if "mix_drawn" in named and "mix_fonts" in named:
        named |= mix_of(named["mix_drawn"], named["mix_fonts"])
    return {k: named[k] for k in TUNED_KEYS if k in named}


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):  # 4 significant digits, and always a float to YAML
        text = f"{value:.4g}" if 1e-4 <= abs(value) < 1e4 else f"{value:.3e}"
        return text if any(c in text for c in ".en") else f"{text}.0"
    return str(value)


def write_train_params(path: str | Path, updates: dict[str, Any]) -> str:
    """Set `updates` in the top-level `train:` section of a YAML file, keeping everything else.

    Only scalar lines `  key: value  # comment` are rewritten (value replaced, indentation and
    comment kept), so comments and the other stages' sections stay as they were. Returns the
    new text, also written to `path` (atomically).

    Raises:
        StageError: no `train:` section, or a key that the section does not have.
    """
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    try:
        start = next(i for i, line in enumerate(lines) if re.match(r"^train:\s*(#.*)?$", line))
    except StopIteration:
        raise StageError(f"{path} has no top-level `train:` section") from None
    pending = dict(updates)
    for i in range(start + 1, len(lines)):
        line = lines[i]
        if line.strip() and not line[0].isspace():
            break  # the next top-level section
        m = re.match(r"^(\s+)([A-Za-z_][\w]*):(\s*)([^#\n]*?)(\s*#.*)?(\n?)$", line)
        if m and m.group(2) in pending:
            indent, key, gap, _, comment, newline = m.groups()
            value = _yaml_scalar(pending.pop(key))
            lines[i] = f"{indent}{key}:{gap or ' '}{value}{comment or ''}{newline}"
    if pending:
        raise StageError(f"{path} `train:` has no key(s) {', '.join(sorted(pending))}")
    text = "".join(lines)
    tmp = path.with_name(f".{path.name}.tune.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return text
