"""Batch prediction and the metrics every stage reports (validation during training, test in
`evaluate`), the evaluation sets and their combination (what `evaluate` reports, the promotion
gate and tuning decide on), and the statistics behind the intervals and the gate."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from bukva.alphabet import CLASSES
from bukva.contract import NUM_DIGITS
from bukva.network import BukvaNet, load
from pipelines.common import StageError
from pipelines.data import Dataset, load_prepared, load_splits


@torch.inference_mode()
def predict(
    model: BukvaNet,
    images: torch.Tensor,
    geometry: torch.Tensor | None = None,
    batch_size: int = 512,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Class probabilities [N, 43] and uppercase probabilities [N] for images [N, 1, 28, 28]
    and their geometry [N, 5] (None: unknown)."""
    model.eval()
    probs, upper = [], []
    for start in range(0, len(images), batch_size):
        end = start + batch_size
        logits, case = model(images[start:end], None if geometry is None else geometry[start:end])
        probs.append(torch.softmax(logits, dim=1))
        upper.append(torch.sigmoid(case[:, 0]))
    if not probs:
        return torch.zeros(0, len(CLASSES)), torch.zeros(0)
    return torch.cat(probs), torch.cat(upper)


def _mean(mask: torch.Tensor) -> float:
    return float(mask.float().mean()) if mask.numel() else float("nan")


def compute_metrics(
    probs: torch.Tensor,
    upper: torch.Tensor,
    labels: torch.Tensor,
    uppercase: torch.Tensor,
    top_k: int = 3,
) -> dict:
    """Accuracy overall, letters only, digits only, top-k; case accuracy where case is known;
    each with its 95% Wilson interval (`<name>_interval`) and the counts behind it; per-class
    accuracy and per-letter case accuracy."""
    pred = probs.argmax(dim=1)
    correct = pred == labels
    is_digit = labels < NUM_DIGITS
    topk = probs.topk(min(top_k, probs.shape[1]), dim=1).indices
    known = uppercase >= 0
    case_ok = (upper[known] > 0.5).long() == uppercase[known]
    per_class = {
        c: round(_mean(correct[labels == i]), 4)
        for i, c in enumerate(CLASSES)
        if bool((labels == i).any())
    }
    case_right = (upper > 0.5).long() == uppercase
    per_letter_case = {
        c: round(_mean(case_right[known & (labels == i)]), 4)
        for i, c in enumerate(CLASSES)
        if bool((known & (labels == i)).any())
    }
    rates = {
        "label_accuracy": correct,
        "letters_accuracy": correct[~is_digit],
        "digits_accuracy": correct[is_digit],
        f"top{top_k}_accuracy": (topk == labels[:, None]).any(dim=1),
        "case_accuracy": case_ok,
    }
    figures: dict = {}
    for name, hits in rates.items():
        figures[name] = _mean(hits)
        figures[f"{name}{INTERVAL}"] = interval(int(hits.sum()), hits.numel())
    return figures | {
        "count": len(labels),
        "letters_count": int((~is_digit).sum()),
        "digits_count": int(is_digit.sum()),
        "case_count": int(known.sum()),
        "per_class": per_class,
        "per_letter_case": per_letter_case,
    }


INTERVAL = "_interval"  # `<figure>_interval`: its 95% Wilson interval [low, high]


def interval(successes: int, n: int) -> list[float] | None:
    """The 95% Wilson interval as [low, high] rounded to 4 places; None when n is 0."""
    if n <= 0:
        return None
    return [round(v, 4) for v in wilson(successes, n)]


# Two-sided 95%: the standard normal quantile 0.975.
Z95 = 1.959963984540054


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion `successes / n` (95% by default): unlike
    p +- z*se it stays inside [0, 1] and is honest near 0 and 1 and for small n; (nan, nan)
    when n is 0."""
    if n <= 0:
        return float("nan"), float("nan")
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def mcnemar_exact(gained: int, lost: int) -> float:
    """One-sided exact McNemar test on paired predictions of the same images: the probability,
    were the two models equally good, that of the `gained + lost` images exactly one of them
    reads right, the new one would read right `gained` or more (binomial, p = 1/2). Small:
    the new model is better beyond chance. 1.0 when no image differs."""
    n = gained + lost
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(gained, n + 1))
    return min(1.0, tail / 2**n)


SETS = ("scanned", "canvas", "block")  # test split as scanned; redrawn on the canvas; fonts
COMBINED = "combined"  # every image of every set together: what the promotion gate decides on


def load_sets(prepared: Path, split: Path, drawn: Path) -> dict[str, Dataset]:
    """The three evaluation sets: the scanned test split, the test glyphs and digits redrawn
    as canvas strokes, and the held-out fonts' block letters (`pipelines/draw.py`)."""
    sets = {"scanned": load_splits(prepared, split)["test"]}
    for name in SETS[1:]:
        sets[name] = load_prepared(drawn / name)
    for name, ds in sets.items():
        if not len(ds):
            raise StageError(f"the {name} evaluation set is empty")
    return sets


def combined_set(sets: dict[str, Dataset]) -> Dataset:
    """Every evaluation image in one set, in `sets` order (scanned, canvas, block)."""
    parts = list(sets.values())
    combined = parts[0]
    for part in parts[1:]:
        combined = combined + part
    return combined


def correct(model_dir: Path, sets: dict[str, Dataset]) -> torch.Tensor:
    """Per image of the combined set (`combined_set` order): whether the model's top answer is
    right. The promotion gate pairs two models' answers on the same images."""
    model = load(model_dir)
    ds = combined_set(sets)
    probs, _ = predict(model, ds.images, ds.geometry)
    return probs.argmax(dim=1) == ds.labels


def numbers(metrics: dict, prefix: str = "") -> dict[str, float]:
    """The numeric figures of metrics.json, nested sets as `<set>.<figure>` (intervals as
    `<figure>_interval_low` / `_high`), for MLflow metrics and registry tags."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            out |= numbers(value, f"{prefix}{key}.")
        elif isinstance(value, list) and len(value) == 2 and key.endswith(INTERVAL):
            out[f"{prefix}{key}_low"], out[f"{prefix}{key}_high"] = map(float, value)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[f"{prefix}{key}"] = float(value)
    return out
