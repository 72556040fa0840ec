"""Stage `evaluate`: metrics, predictions and plots on three test sets and on all of them
together, for `dvc metrics` / `dvc plots`, and the model card generated from them.

The sets (`pipelines.metrics.load_sets`): `scanned`, the test split as scanned; `canvas`, the
same glyphs and digits redrawn as the app's canvas records strokes; `block`, block letters (33
letters in both cases, digits) from fonts training never sees; and `combined`, every image of
the three (what the promotion gate and tuning decide on). Writes reports/metrics.json
(headline figures: accuracy overall, letters, digits, top-3, case, each with its 95% Wilson
interval and the count behind it; the scanned set's at the top level, the others under their
names), reports/metrics/<set>.json (the same, short, for `dvc metrics show`),
reports/per_class.json (per-class accuracy and per-letter case accuracy of every set),
reports/predictions.csv (every evaluated image with its prediction), reports/model_card.md
(`pipelines.model_card`) and reports/plots/ (scanned; canvas/ and block/ beside it): confusion
data for labels and case (CSV, DVC's confusion template), per-class accuracy (CSV, bar chart)
and the same as PNG images. Logs it all into the training run.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import torch

from bukva.alphabet import CLASSES, DIGITS
from bukva.network import load
from bukva.registry import weights_digest
from pipelines import cpu, model_card
from pipelines.common import load_params, log, run_cli, write_json
from pipelines.data import Dataset, add_split_arguments
from pipelines.metrics import (
    COMBINED,
    INTERVAL,
    combined_set,
    compute_metrics,
    load_sets,
    numbers,
    predict,
)
from pipelines.tracking import connect, stage_run, training_run


def write_predictions(path: Path, results: dict, top_k: int) -> None:
    """One row per evaluated image of every set: set, where it came from, truth, top-k,
    uppercase probability."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "set",
                "id",
                "source",
                "file",
                "item",
                "label",
                "uppercase",
                "predicted",
                "probability",
                "top_k",
                "uppercase_probability",
            ]
        )
        for name, (ds, probs, upper, _) in results.items():
            top = probs.topk(top_k, dim=1)
            for i, row in enumerate(ds.rows):
                chars = [CLASSES[j] for j in top.indices[i].tolist()]
                w.writerow(
                    [
                        name,
                        row["id"],
                        row["source"],
                        row["file"],
                        row["item"],
                        row["label"],
                        row["uppercase"],
                        chars[0],
                        f"{float(top.values[i, 0]):.6f}",
                        "".join(chars),
                        f"{float(upper[i]):.6f}",
                    ]
                )


def write_plots(
    out: Path, ds: Dataset, probs: torch.Tensor, upper: torch.Tensor, metrics: dict, name: str
) -> None:
    """CSV data for DVC's templates and PNG renderings of the same plots, for set `name`."""
    out.mkdir(parents=True, exist_ok=True)
    pred = probs.argmax(dim=1).tolist()
    with (out / "confusion_labels.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["actual", "predicted"])
        w.writerows((CLASSES[a], CLASSES[p]) for a, p in zip(ds.labels.tolist(), pred, strict=True))
    known = [i for i, u in enumerate(ds.uppercase.tolist()) if u >= 0]
    with (out / "confusion_case.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["actual", "predicted"])
        case = {0: "lower", 1: "upper"}
        w.writerows((case[int(ds.uppercase[i])], case[int(upper[i] > 0.5)]) for i in known)
    with (out / "per_class.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["class", "accuracy"])
        w.writerows(metrics["per_class"].items())
    render_pngs(out, ds, pred, upper, metrics, name)


def render_pngs(
    out: Path, ds: Dataset, pred: list[int], upper: torch.Tensor, metrics: dict, name: str
) -> None:
    """Confusion matrices and the per-class bar chart as PNG (matplotlib, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(CLASSES)
    matrix = torch.zeros(n, n, dtype=torch.int64)
    for a, p in zip(ds.labels.tolist(), pred, strict=True):
        matrix[a, p] += 1
    fig, ax = plt.subplots(figsize=(11, 10))
    ax.imshow(matrix.float().log1p(), cmap="Blues")
    ax.set_xticks(range(n), CLASSES)
    ax.set_yticks(range(n), CLASSES)
    for a, p in zip(*torch.nonzero(matrix, as_tuple=True), strict=True):
        ax.text(
            int(p),
            int(a),
            int(matrix[a, p]),
            ha="center",
            va="center",
            fontsize=6,
            color="red" if a != p else "black",
        )
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(f"Labels, {name} (accuracy {metrics['label_accuracy']:.4f})")
    fig.tight_layout()
    fig.savefig(out / "confusion_labels.png", dpi=110)
    plt.close(fig)

    case = torch.zeros(2, 2, dtype=torch.int64)
    for i, u in enumerate(ds.uppercase.tolist()):
        if u >= 0:
            case[u, int(upper[i] > 0.5)] += 1
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.imshow(case, cmap="Blues")
    for a in range(2):
        for p in range(2):
            ax.text(p, a, int(case[a, p]), ha="center", va="center")
    ax.set_xticks([0, 1], ["lower", "upper"])
    ax.set_yticks([0, 1], ["lower", "upper"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(f"Case, {name} (accuracy {metrics['case_accuracy']:.4f})")
    fig.tight_layout()
    fig.savefig(out / "confusion_case.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(12, 3.5))
    chars = list(metrics["per_class"])
    ax.bar(
        range(len(chars)),
        [metrics["per_class"][c] for c in chars],
        color=["tab:orange" if c in DIGITS else "tab:blue" for c in chars],
    )
    ax.set_xticks(range(len(chars)), chars)
    ax.set_ylim(0.5, 1.0)
    ax.set_ylabel("accuracy")
    ax.set_title(f"Per-class accuracy, {name}")
    fig.tight_layout()
    fig.savefig(out / "per_class.png", dpi=110)
    plt.close(fig)


PER_SET = ("per_class", "per_letter_case")  # kept out of metrics.json: reports/per_class.json


def evaluate(model_dir: Path, sets: dict[str, Dataset], top_k: int) -> dict[str, tuple]:
    """Per set, then `combined` (all sets' images together): (dataset, probabilities,
    uppercase probabilities, metrics)."""
    model = load(model_dir)
    results = {}
    for name, ds in sets.items():
        probs, upper = predict(model, ds.images, ds.geometry)
        metrics = compute_metrics(probs, upper, ds.labels, ds.uppercase, top_k=top_k)
        results[name] = (ds, probs, upper, metrics)
    ds = combined_set(sets)
    probs = torch.cat([r[1] for r in results.values()])
    upper = torch.cat([r[2] for r in results.values()])
    metrics = compute_metrics(probs, upper, ds.labels, ds.uppercase, top_k=top_k)
    return results | {COMBINED: (ds, probs, upper, metrics)}


def headline(results: dict[str, tuple]) -> dict:
    """metrics.json: the scanned test split's figures at the top level (as before the drawn
    sets existed, so registry and monitoring compare like with like), each other set's and the
    combined figures under their names; every accuracy with its 95% Wilson interval."""
    figures = {
        name: {k: v for k, v in r[3].items() if k not in PER_SET} for name, r in results.items()
    }
    return figures["scanned"] | {name: figures[name] for name in figures if name != "scanned"}


# reports/metrics/<set>.json: the headline accuracies under short names, one file a set, so
# `dvc metrics show` prints one row a set with the same few columns, each accuracy followed by
# the bounds of its 95% Wilson interval (`<name>_lo`, `<name>_hi`).
SHORT = {
    "letters": "letters_accuracy",
    "digits": "digits_accuracy",
    "case": "case_accuracy",
    "all": "label_accuracy",
}


def per_set_headlines(results: dict[str, tuple], top_k: int) -> dict[str, dict[str, float]]:
    """Per set: the headline accuracies rounded to 4 places, keyed by their short names (top-k
    as `top<k>`, the key `compute_metrics` gives it), each with its interval's bounds; `n`, the
    number of images."""
    short = SHORT | {f"top{top_k}": f"top{top_k}_accuracy"}
    out = {}
    for name, r in results.items():
        row: dict[str, float] = {}
        for column, key in short.items():
            row[column] = round(float(r[3][key]), 4)
            low, high = r[3][f"{key}{INTERVAL}"] or (float("nan"), float("nan"))
            row[f"{column}_lo"], row[f"{column}_hi"] = low, high
        out[name] = row | {"n": r[3]["count"]}
    return out


def confusions(results: dict[str, tuple], limit: int = 12) -> list[dict]:
    """The most frequent mistakes on the combined set: actual -> predicted, how many, and the
    share of the actual class's images that went there."""
    ds, probs, _, _ = results[COMBINED]
    pred = probs.argmax(dim=1).tolist()
    truth = ds.labels.tolist()
    per_class: dict[int, int] = {}
    pairs: dict[tuple[int, int], int] = {}
    for a, p in zip(truth, pred, strict=True):
        per_class[a] = per_class.get(a, 0) + 1
        if a != p:
            pairs[a, p] = pairs.get((a, p), 0) + 1
    top = sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    return [
        {
            "actual": CLASSES[a],
            "predicted": CLASSES[p],
            "count": n,
            "share": round(n / per_class[a], 4),
        }
        for (a, p), n in top
    ]


def summary_line(figures: dict) -> str:
    """`label_accuracy 0.9300 [0.9215, 0.9377] | ...` for the log."""
    parts = []
    for key, value in figures.items():
        if key.endswith("accuracy"):
            bounds = figures.get(f"{key}{INTERVAL}")
            shown = f" [{bounds[0]:.4f}, {bounds[1]:.4f}]" if bounds else ""
            parts.append(f"{key} {value:.4f}{shown}")
    return " | ".join(parts) + f" | {figures['count']} images"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_split_arguments(parser)
    parser.add_argument("--drawn", default="data/drawn")
    parser.add_argument("--model", default="models/model")
    parser.add_argument("--reports", default="reports")
    args = parser.parse_args()
    top_k = int(load_params("evaluate").get("top_k", 3))
    log("evaluate", cpu.summary())
    sets = load_sets(Path(args.prepared), Path(args.split), Path(args.drawn))
    model_dir, reports = Path(args.model), Path(args.reports)
    results = evaluate(model_dir, sets, top_k)
    metrics = headline(results)
    write_json(reports / "metrics.json", metrics)
    for name, figures in per_set_headlines(results, top_k).items():
        write_json(reports / "metrics" / f"{name}.json", figures)
    per_class = {name: {k: r[3][k] for k in PER_SET} for name, r in results.items()}
    write_json(reports / "per_class.json", per_class)
    mistakes = confusions(results)
    card = model_card.render(metrics, mistakes, top_k)
    (reports / model_card.FILE).write_text(card, encoding="utf-8")
    per_set = {name: r for name, r in results.items() if name != COMBINED}
    write_predictions(reports / "predictions.csv", per_set, top_k)
    for name, (ds, probs, upper, figures) in results.items():
        if name != COMBINED:  # the sets' own plots; the combined set is their sum
            folder = reports / "plots" / ("" if name == "scanned" else name)
            write_plots(folder, ds, probs, upper, figures, name)
        log("evaluate", f"{name}: " + summary_line(figures))

    connect()  # the store the training logged into (named if it is down)
    run_id = training_run(weights_digest(model_dir))
    with stage_run("evaluate", run_id=run_id, verify=False) as run:
        run.log_metrics({f"test_{k}": v for k, v in numbers(metrics).items()})
        run.log_artifacts(reports / "plots", "plots")
        run.log_artifact(reports / model_card.FILE)
        if run.run_id != run_id:  # a fresh run (the training run is not in this store)
            run.log_artifacts(model_dir, "model")
    log("evaluate", f"metrics in {reports / 'metrics.json'}, plots in {reports / 'plots'}")


if __name__ == "__main__":
    run_cli("evaluate", main)
