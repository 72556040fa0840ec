"""How the modes and the twin rule read a trained model on the evaluation sets: the figures
behind `bukva.reading.TWIN_RATIO` and the modes' accuracies (docs/serving.md, "Modes and twins").

For each set `evaluate` uses (scanned test split, canvas-redrawn, block letters) and all of them
together, the model's logits are read as the transformer reads them (`bukva.reading`):

- modes: digits accuracy in mode "anything" and in mode "digits", letters accuracy in
  "anything" and in "letters";
- twins, for each ratio on a grid: of the twin mix-ups in mode "anything" (the top-1 is the
  twin of the truth, `bukva.alphabet.TWINS`), how many the rule names the truth for
  (`caught`), and how many right answers it doubts (`doubted`, an alternative shown beside a
  right top-1); plus the digit/letter mix-ups that no twin pair covers;
- priors, for each digit log-prior on a grid: digits and letters accuracy in mode "anything"
  when every digit's logit is raised by that much (what a digit-favouring prior would buy and
  cost; the served model uses none, docs/serving.md "Why no digit prior").

    python -m bench.twins [--model_dir models/model] [--out reports/twins.json]
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np

from bukva.alphabet import CLASSES, DIGITS, TWINS, are_twins, is_digit
from bukva.reading import NO_CLASS, alternatives, probabilities, ranked

PRIORS = (-0.5, 0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
RATIOS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7, 0.85, 1.0)


def logits_of(model_dir: Path, sets: dict) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per set: (label logits [N, 43], true class [N]) from the trained network."""
    import torch

    from bukva.network import load

    model = load(model_dir).eval()
    out = {}
    with torch.inference_mode():
        for name, ds in sets.items():
            chunks = [
                model(ds.images[i : i + 512], ds.geometry[i : i + 512])[0]
                for i in range(0, len(ds), 512)
            ]
            out[name] = (torch.cat(chunks).numpy().astype(np.float64), ds.labels.numpy())
    return out


def mode_figures(logits: np.ndarray, truth: np.ndarray) -> dict[str, float | int]:
    """Digits and letters accuracy in mode anything and in their own mode."""
    digit = truth < 10
    figures: dict[str, float | int] = {"digits": int(digit.sum()), "letters": int((~digit).sum())}
    for kind, rows, mode in (("digits", digit, "digits"), ("letters", ~digit, "letters")):
        if not rows.any():
            continue
        for reading in ("anything", mode):
            top = ranked(probabilities(logits[rows], reading), 1, reading)[:, 0]
            figures[f"{kind}_{reading}"] = round(float((top == truth[rows]).mean()), 4)
    return figures


def prior_figures(logits: np.ndarray, truth: np.ndarray) -> list[dict[str, float]]:
    """Mode anything with each digit log-prior in PRIORS: digits and letters accuracy."""
    digit = truth < 10
    curve = []
    for prior in PRIORS:
        shifted = logits.copy()
        shifted[:, [CLASSES.index(d) for d in DIGITS]] += prior
        top = ranked(probabilities(shifted, "anything"), 1, "anything")[:, 0]
        right = top == truth
        point = {"prior": prior}
        for kind, rows in (("digits", digit), ("letters", ~digit)):
            if rows.any():
                point[kind] = round(float(right[rows].mean()), 4)
        curve.append(point)
    return curve


def twin_figures(logits: np.ndarray, truth: np.ndarray) -> dict:
    """The rule at each ratio, in mode anything: mix-ups caught, right answers doubted."""
    probs = probabilities(logits, "anything")
    top = ranked(probs, 1, "anything")[:, 0]
    right = top == truth
    mixups = np.array([are_twins(CLASSES[t], CLASSES[y]) for t, y in zip(top, truth, strict=True)])
    uncovered = Counter(
        f"{CLASSES[y]}->{CLASSES[t]}"
        for t, y in zip(top, truth, strict=True)
        if t != y
        and is_digit(CLASSES[t]) != is_digit(CLASSES[y])
        and not are_twins(CLASSES[t], CLASSES[y])
    )
    curve = []
    for ratio in RATIOS:
        alt = alternatives(probs, "anything", ratio)
        named = alt != NO_CLASS
        curve.append(
            {
                "ratio": ratio,
                "caught": int((mixups & (alt == truth)).sum()),
                "doubted": int((right & named).sum()),
                "named": int(named.sum()),
            }
        )
    return {
        "images": len(truth),
        "right": int(right.sum()),
        "twin_mixups": int(mixups.sum()),
        "uncovered_digit_letter_mixups": dict(uncovered.most_common()),
        "curve": curve,
    }


def main() -> None:
    from pipelines.evaluate import load_sets

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir", default="models/model", type=Path)
    parser.add_argument("--prepared", default="data/prepared", type=Path)
    parser.add_argument("--split", default="data/split", type=Path)
    parser.add_argument("--drawn", default="data/drawn", type=Path)
    parser.add_argument("--out", default="reports/twins.json", type=Path)
    args = parser.parse_args()
    sets = logits_of(args.model_dir, load_sets(args.prepared, args.split, args.drawn))
    sets["all"] = tuple(np.concatenate(parts) for parts in zip(*sets.values(), strict=True))
    report = {
        "twins": sorted("/".join(sorted(pair)) for pair in TWINS),
        "sets": {
            name: {
                "modes": mode_figures(*data),
                "priors": prior_figures(*data),
                **twin_figures(*data),
            }
            for name, data in sets.items()
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    for name, figures in report["sets"].items():
        print(name, figures["modes"], f"twin mix-ups {figures['twin_mixups']}")
        for point in figures["curve"]:
            print("   ", point)
        print("    not covered:", figures["uncovered_digit_letter_mixups"])
        for point in figures["priors"]:
            print("    digit prior", point)


if __name__ == "__main__":
    main()
