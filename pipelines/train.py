"""Stage `train`: fine-tune the two-headed CNN on letters and digits.

The body starts from the `pretrain` stage's weights, both heads fresh; the loop is
`pipelines.training.fit`, the knobs are params.yaml's `train` section (`TrainParams`). Writes
models/model/ (safetensors + config.json with the MLflow run id) and logs the run.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict

from bukva.network import save
from pipelines.common import load_params, log, run_cli
from pipelines.data import add_split_arguments, load_splits
from pipelines.tracking import stage_run
from pipelines.training import TrainParams, body_state, fit, reporter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_split_arguments(parser)
    parser.add_argument("--pretrained", default="models/pretrained")
    parser.add_argument("--out", default="models/model")
    args = parser.parse_args()
    params = TrainParams.from_dict(load_params("train"))
    splits = load_splits(args.prepared, args.split)
    init = body_state(args.pretrained, params) if args.pretrained else None
    with stage_run("train", params=asdict(params)) as run:
        report = reporter("train", params.epochs, run.log_metrics)
        model, history = fit(params, splits["train"], splits["val"], init, report)
        if "digit_offset" in history[-1]:
            calibration = {k: history[-1][k] for k in ("digit_offset", "val_balanced_accuracy")}
            log(
                "train",
                f"digit prior: offset {calibration['digit_offset']:+.2f}, balanced "
                f"validation accuracy {calibration['val_balanced_accuracy']:.4f}",
            )
            run.log_metrics(calibration)
        save(model, args.out, extra={"mlflow_run_id": run.run_id})
        run.log_artifacts(args.out, "model")
    log("train", f"model written to {args.out}")


if __name__ == "__main__":
    run_cli("train", main)
