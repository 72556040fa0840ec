"""Stage `evaluate`: test-split metrics, predictions and plots for `dvc metrics` / `dvc plots`.

Writes reports/metrics.json (accuracy overall, letters, digits, top-3, case on letters with known
case, per class), reports/predictions.csv (every test image with its prediction) and
reports/plots/: confusion data for labels and case (CSV, DVC's confusion template), per-class
accuracy (CSV, bar chart) and the same as PNG images. Logs it all into the training run.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import torch

from bukva.alphabet import CLASSES, DIGITS, has_case
from bukva.network import load
from pipelines.common import StageError, load_params, log, run_cli, write_json
from pipelines.data import Dataset, add_split_arguments, load_splits
from pipelines.metrics import compute_metrics, predict
from pipelines.tracking import stage_run


def write_predictions(
    path: Path, ds: Dataset, probs: torch.Tensor, upper: torch.Tensor, top_k: int
) -> None:
    """One row per test image: where it came from, truth, top-k, uppercase probability."""
    top = probs.topk(top_k, dim=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(
            [
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
        for i, row in enumerate(ds.rows):
            chars = [CLASSES[j] for j in top.indices[i].tolist()]
            w.writerow(
                [
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
    out: Path, ds: Dataset, probs: torch.Tensor, upper: torch.Tensor, metrics: dict
) -> None:
    """CSV data for DVC's templates and PNG renderings of the same plots."""
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
        name = {0: "lower", 1: "upper"}
        w.writerows((name[int(ds.uppercase[i])], name[int(upper[i] > 0.5)]) for i in known)
    with (out / "per_class.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["class", "accuracy"])
        w.writerows(metrics["per_class"].items())
    render_pngs(out, ds, pred, upper, metrics)


def render_pngs(
    out: Path, ds: Dataset, pred: list[int], upper: torch.Tensor, metrics: dict
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
    ax.set_title(f"Labels, test split (accuracy {metrics['label_accuracy']:.4f})")
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
    ax.set_title(f"Case (accuracy {metrics['case_accuracy']:.4f})")
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
    ax.set_title("Per-class accuracy, test split")
    fig.tight_layout()
    fig.savefig(out / "per_class.png", dpi=110)
    plt.close(fig)


def evaluate(model_dir: Path, test: Dataset, top_k: int) -> tuple[dict, torch.Tensor, torch.Tensor]:
    """Metrics for the model in `model_dir` on `test`, plus its probabilities."""
    if not len(test):
        raise StageError("the test split is empty")
    model = load(model_dir)
    probs, upper = predict(model, test.images)
    metrics = compute_metrics(probs, upper, test.labels, test.uppercase, top_k=top_k)
    metrics["case_known_letters"] = sorted(c for c in CLASSES if has_case(c))
    return metrics, probs, upper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_split_arguments(parser)
    parser.add_argument("--model", default="models/model")
    parser.add_argument("--reports", default="reports")
    args = parser.parse_args()
    top_k = int(load_params("evaluate").get("top_k", 3))
    test = load_splits(args.prepared, args.split)["test"]
    model_dir, reports = Path(args.model), Path(args.reports)
    metrics, probs, upper = evaluate(model_dir, test, top_k)
    write_json(reports / "metrics.json", metrics)
    write_predictions(reports / "predictions.csv", test, probs, upper, top_k)
    write_plots(reports / "plots", test, probs, upper, metrics)
    summary = {k: v for k, v in metrics.items() if k.endswith("accuracy")}
    log("evaluate", " | ".join(f"{k} {v:.4f}" for k, v in summary.items()))

    run_id = (
        json.loads((model_dir / "config.json").read_text()).get("extra", {}).get("mlflow_run_id")
    )
    with stage_run("evaluate", run_id=run_id) as run:
        run.log_metrics({f"test_{k}": v for k, v in metrics.items()})
        run.log_artifacts(reports / "plots", "plots")
        if run.run_id != run_id:  # a fresh run (the training run is not in this store)
            run.log_artifacts(model_dir, "model")
    log("evaluate", f"metrics in {reports / 'metrics.json'}, plots in {reports / 'plots'}")


if __name__ == "__main__":
    run_cli("evaluate", main)
