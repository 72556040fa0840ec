"""Stage `pretrain`: the CNN body learns strokes on MNIST digits (training split only).

Uses the same `pipelines.fit.fit` as the `train` stage, restricted to digits; the
network shape (width, hidden, dropout, pool) comes from params.yaml's `train` section so the
fine-tuning stage can start from these weights.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict

from bukva.contract import NUM_DIGITS
from bukva.network import save
from pipelines import cpu
from pipelines.common import load_params, log, run_cli
from pipelines.data import add_split_arguments, load_splits
from pipelines.fit import NETWORK_SHAPE, TrainParams, fit, reporter
from pipelines.tracking import stage_run, tag_weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_split_arguments(parser)
    parser.add_argument("--out", default="models/pretrained")
    args = parser.parse_args()
    shape = {k: v for k, v in load_params("train").items() if k in NETWORK_SHAPE}
    params = TrainParams.from_dict(load_params("pretrain") | shape | {"case_weight": 0.0})
    splits = load_splits(args.prepared, args.split)
    train, val = (splits[s].subset(splits[s].labels < NUM_DIGITS) for s in ("train", "val"))
    log("pretrain", f"{len(train)} training digits, {len(val)} validation digits")
    log("pretrain", cpu.summary(params.threads))
    with stage_run("pretrain", params=asdict(params)) as run:
        report = reporter("pretrain", params.epochs, run.log_metrics)
        model, _ = fit(params, train, val, on_epoch=report)
        save(model, args.out)
        tag_weights(run, args.out)
    log("pretrain", f"pretrained weights written to {args.out}")


if __name__ == "__main__":
    run_cli("pretrain", main)
