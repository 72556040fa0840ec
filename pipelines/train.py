"""Stage `train`: fine-tune the two-headed CNN on letters and digits.

Trains on `pipelines.training.training_set` (the one builder `make tune` uses too): the training
split (scans) plus the `draw` stage's training drawings (canvas redrawings, font block letters),
and, when `synthetic_capitals` is on, small cursive shapes at capital size as capitals. The body
starts from the `pretrain` stage's weights, both heads fresh; the loop is
`pipelines.training.fit`, the knobs are params.yaml's `train` section (`TrainParams`). Writes
models/model/ (safetensors + config.json with the MLflow run id) and logs the run.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict

from bukva.network import save
from pipelines import cpu
from pipelines.common import load_params, log, run_cli
from pipelines.data import add_split_arguments, load_splits
from pipelines.tracking import stage_run
from pipelines.training import TrainParams, body_state, fit, reporter, training_set


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_split_arguments(parser)
    parser.add_argument("--drawn", default="data/drawn", help="the draw stage's drawings")
    parser.add_argument("--pretrained", default="models/pretrained")
    parser.add_argument("--out", default="models/model")
    args = parser.parse_args()
    params = TrainParams.from_dict(load_params("train"))
    splits = load_splits(args.prepared, args.split)
    train_set = training_set(splits["train"], args.drawn, params)
    log("train", f"{len(train_set)} training images ({len(splits['train'])} scanned)")
    log("train", cpu.summary())
    init = body_state(args.pretrained, params) if args.pretrained else None
    with stage_run("train", params=asdict(params)) as run:
        report = reporter("train", params.epochs, run.log_metrics)
        model, _ = fit(params, train_set, splits["val"], init, report)
        save(model, args.out, extra={"mlflow_run_id": run.run_id})
        run.log_artifacts(args.out, "model")
    log("train", f"model written to {args.out}")


if __name__ == "__main__":
    run_cli("train", main)
