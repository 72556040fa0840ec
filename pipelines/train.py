"""Stage `train`: fine-tune the two-headed CNN on letters and digits.

Trains on `pipelines.fit.training_set` (the one builder `make tune` uses too): the training
split (scans) plus the `draw` stage's training drawings (canvas redrawings, font block letters),
and, when `synthetic_capitals` is on, small cursive shapes at capital size as capitals. The body
starts from the `pretrain` stage's weights, both heads fresh; the loop is
`pipelines.fit.fit`, the knobs are params.yaml's `train` section (`TrainParams`). Writes
models/model/ (safetensors + config.json) and logs the run, tagged with the weights' sha256
(how evaluate and register find it).
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path

from bukva.network import save
from bukva.storage import PROVENANCE_TAG, provenance_tag
from pipelines import cpu
from pipelines.common import load_params, log, run_cli
from pipelines.data import add_split_arguments, feedback_used, load_splits
from pipelines.fit import TrainParams, body_state, fit, reporter, training_set
from pipelines.tracking import stage_run, tag_weights

FEEDBACK_USED_FILE = "feedback_used.json"  # the run's artifact: id -> sha256, label, case, review


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_split_arguments(parser)
    parser.add_argument("--drawn", default="data/drawn", help="the draw stage's drawings")
    parser.add_argument("--pretrained", default="models/pretrained")
    parser.add_argument("--out", default="models/model")
    parser.add_argument(
        "--raw", default="data/raw", help="ingest's output: which feedback records it used"
    )
    args = parser.parse_args()
    params = TrainParams.from_dict(load_params("train"))
    splits = load_splits(args.prepared, args.split)
    train_set = training_set(splits["train"], args.drawn, params)
    log("train", f"{len(train_set)} training images ({len(splits['train'])} scanned)")
    log("train", cpu.summary(params.threads))
    init = body_state(args.pretrained, params) if args.pretrained else None
    with stage_run("train", params=asdict(params)) as run:
        report = reporter("train", params.epochs, run.log_metrics)
        model, _ = fit(params, train_set, splits["val"], init, report)
        save(model, args.out)
        tag_weights(run, args.out)
        run.log_artifacts(args.out, "model")
        # Provenance: the feedback drawings (by sha256) this model learned from; register
        # copies the per-class count onto the registry version (the Model page shows it).
        used = feedback_used(Path(args.raw))
        run.log_dict({"records": used}, FEEDBACK_USED_FILE)
        run.set_tags({PROVENANCE_TAG: provenance_tag(used)})
        log("train", f"{len(used)} feedback drawings in the training data")
    log("train", f"model written to {args.out}")


if __name__ == "__main__":
    run_cli("train", main)
