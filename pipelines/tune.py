"""Optuna search over the `train` stage's knobs, calling the pipeline's own `fit`.

    python -m pipelines.tune --trials 10 --minutes 15      # or: make tune

Searched: optimizer, learning rate (its range depends on the optimizer) and schedule, weight
decay, augmentation strength, network width, and the training material: the in-class shares of
scans, canvas redrawings and font block letters (`mix_*`) and the synthetic capitals. Every
trial trains on what the `train` stage trains on, built by the same function
(`pipelines.fit.training_set`), for a short budget (`--epochs`, default 4) from scratch
with the pipeline's other `train` values; the first trial of a new study is those hand-set
values, so the study says whether tuning beat them at equal cost.

The objective is what the promotion gate decides on: label accuracy on the combined evaluation
set (every image of the scanned, canvas and block sets, `pipelines.evaluate.load_sets`),
measured after every epoch (trials that fall behind are pruned, median or Hyperband). Choosing
among trials by these images makes them part of model selection: after a study, the figures
`evaluate` reports for the chosen values are a little optimistic, and the held-back upstream
sets (../shared/data/README.md) are the independent check. Every trial is a nested MLflow run
under one `tune` run.

The study lives in BUKVA_OPTUNA_STORAGE (PostgreSQL under `make services`) or `optuna.db`
(SQLite) in the project, so running the same command again resumes it: finished trials count
towards `--trials`, an interrupted trial is retried. At the end the best values are written
into params.yaml's `train:` section in place (comments kept), so the next `dvc repro` uses
them; `git diff params.yaml` shows what changed.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from optuna.trial import TrialState

from bukva.settings import SettingsError
from pipelines import tracking
from pipelines.common import PARAMS_FILE, StageError, load_params, log, write_json
from pipelines.data import add_split_arguments, load_splits
from pipelines.tune_space import (
    suggest,
    train_values_of,
    trial_params_of,
    widths_for,
    write_train_params,
)

# Mean of letter and digit accuracy of the set `fit` validates on (`--metric` may pick it).
BALANCED = "val_balanced_accuracy"
# Label accuracy on the combined evaluation set (`fit` validates on it here): the gate's figure.
COMBINED_METRIC = "val_label_accuracy"
DEFAULT_METRIC = COMBINED_METRIC
DEFAULT_STUDY = "bukva-train"
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED)  # what `--trials` counts (not failures)


def storage_url(value: str, home: Path) -> str:
    """The Optuna storage: `value` (a SQLAlchemy URL) or the project's optuna.db."""
    return value or f"sqlite:///{home / 'optuna.db'}"


def open_study(name: str, storage: str, pruner: str, epochs: int, seed: int) -> Any:
    """Create or load study `name`; stale trials (a killed process) are retried once.

    Raises:
        StageError: the storage database cannot be reached (named in the message).
    """
    import optuna

    try:
        tracking.check_database(storage)
    except tracking.TrackingUnavailable as exc:
        raise StageError(f"Optuna storage: {exc}") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        rdb = optuna.storages.RDBStorage(
            storage,
            heartbeat_interval=10,
            grace_period=30,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                max_retry=1
            ),
        )
    if pruner == "hyperband":
        chosen = optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs)
    else:
        # Pruning from epoch 2 on: one epoch says little (the schedule is still warming up).
        chosen = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2)
    study = optuna.create_study(
        study_name=name, storage=rdb, direction="maximize", pruner=chosen, load_if_exists=True
    )
    # Seeded, but a resumed study must not replay the first run's random start: offset it.
    study.sampler = optuna.samplers.TPESampler(seed=seed + len(study.trials), n_startup_trials=5)
    return study


def finished(study: Any) -> int:
    """Trials that count towards the budget: completed or pruned."""
    return len(study.get_trials(deepcopy=False, states=COUNTED))


def run_study(
    study: Any,
    base: Any,
    train_set: Any,
    val_set: Any,
    trials: int,
    minutes: float | None = None,
    metric: str = DEFAULT_METRIC,
    init_state: dict | None = None,
    fit_fn: Callable[..., Any] | None = None,
) -> Any:
    """Run trials until `trials` have finished (over all resumes) or `minutes` pass.

    Args:
        base: the TrainParams every trial starts from (epochs already shortened).
        train_set: the training Dataset, or a function of a trial's TrainParams that builds
            it (`training_set`: the material depends on the searched knobs).
        val_set: what every epoch is measured on (the combined evaluation set).
        init_state: pretrained weights; when given, width is not searched (it must match).
        fit_fn: the training function (default `pipelines.fit.fit`).
    Returns:
        The study.
    """
    import mlflow
    import optuna

    from pipelines.fit import epoch_line, fit

    fit_fn = fit_fn or fit
    widths = None if init_state is not None else widths_for(base.width)
    if not study.trials:
        baseline = trial_params_of(asdict(base), tune_width=widths is not None)
        study.enqueue_trial(baseline, user_attrs={"baseline": 1})
    remaining = trials - finished(study)
    if remaining <= 0:
        return study

    def objective(trial: optuna.Trial) -> float:
        params = replace(base, **suggest(trial, widths))

        def on_epoch(epoch: int, metrics: dict) -> None:
            log("tune", f"trial {trial.number} " + epoch_line(epoch, params.epochs, metrics))
            mlflow.log_metrics({k: v for k, v in metrics.items() if _finite(v)}, step=epoch)
            if _finite(value := metric_value(metrics, metric)):
                trial.report(value, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"{metric} {value} at epoch {epoch}")

        with mlflow.start_run(run_name=f"trial-{trial.number}", nested=True):
            mlflow.set_tags({"optuna.study": study.study_name, "optuna.trial": trial.number})
            mlflow.log_params(asdict(params))
            trained_on = train_set(params) if callable(train_set) else train_set
            try:
                _, history = fit_fn(params, trained_on, val_set, init_state, on_epoch)
            except optuna.TrialPruned as pruned:
                mlflow.set_tag("optuna.state", "PRUNED")  # a finished run, not a failed one
                stopped = pruned
            else:
                stopped = None
                mlflow.set_tag("optuna.state", "COMPLETE")
        if stopped is not None:
            raise stopped
        if not _finite(value := metric_value(history[-1], metric)):
            raise StageError(f"trial {trial.number}: no finite {metric} in {history[-1]}")
        return value

    def progress(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        done = finished(study)
        what = trial.state.name.lower()
        if trial.value is not None:
            what += f" {metric} {trial.value:.4f}"
        best = _best(study)
        tail = f" | best #{best.number} {best.value:.4f}" if best else ""
        log("tune", f"trial {trial.number} {what} ({done}/{trials} done){tail}")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.optimize(
            objective,
            n_trials=remaining,
            timeout=minutes * 60 if minutes else None,
            callbacks=[
                progress,
                optuna.study.MaxTrialsCallback(trials, states=COUNTED),
            ],
        )
    return study


def metric_value(metrics: dict, metric: str) -> float:
    """`metric` from one epoch's metrics; BALANCED is derived, NaN when a part is missing."""
    if metric == BALANCED:
        parts = [metrics.get("val_letters_accuracy"), metrics.get("val_digits_accuracy")]
        return sum(parts) / 2 if all(_finite(p) for p in parts) else float("nan")
    return metrics.get(metric, float("nan"))


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _best(study: Any) -> Any:
    try:
        return study.best_trial
    except ValueError:  # no completed trial yet
        return None


def summary(study: Any, metric: str) -> dict[str, Any]:
    """What the study found: best trial and its values, the baseline, counts per state."""
    best = _best(study)
    baseline = next((t for t in study.trials if t.user_attrs.get("baseline")), None)
    states: dict[str, int] = {}
    for t in study.trials:
        states[t.state.name] = states.get(t.state.name, 0) + 1
    return {
        "study": study.study_name,
        "metric": metric,
        "trials": states,
        "best": None
        if best is None
        else {"number": best.number, "value": best.value, "train": train_values_of(best.params)},
        "baseline": None
        if baseline is None or baseline.value is None
        else {"number": baseline.number, "value": baseline.value},
    }


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM ends the trial like Ctrl-C: marked failed, runs closed


def main(argv: list[str] | None = None) -> int:
    """CLI: tune, then write the best values into params.yaml (unless --no-write)."""
    from bukva.settings import Settings

    settings = Settings.from_env()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=settings.bukva_tune_trials)
    parser.add_argument("--minutes", type=float, default=settings.bukva_tune_minutes)
    parser.add_argument("--epochs", type=int, default=settings.bukva_tune_epochs)
    parser.add_argument("--study", default=DEFAULT_STUDY, help="resume it by name")
    parser.add_argument("--storage", default=settings.bukva_optuna_storage)
    parser.add_argument("--pruner", choices=["median", "hyperband"], default="median")
    parser.add_argument(
        "--metric", default=DEFAULT_METRIC, help="metric of the combined set to maximise"
    )
    add_split_arguments(parser)
    parser.add_argument("--drawn", default="data/drawn", help="the draw stage's drawings")
    parser.add_argument("--pretrained", default="", help="start trials from it (width fixed)")
    parser.add_argument("--params", default=PARAMS_FILE, help="read and update its train:")
    parser.add_argument("--summary", default="reports/tuning.json")
    parser.add_argument("--no-write", action="store_true", help="do not touch params.yaml")
    args = parser.parse_args(argv)

    import optuna

    from bukva.network import load
    from pipelines.fit import TrainParams, training_set
    from pipelines.metrics import combined_set, load_sets

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own progress lines suffice
    base = TrainParams.from_dict(load_params("train", args.params))
    base = replace(base, epochs=args.epochs)
    init_state = None
    if args.pretrained:
        pretrained = load(args.pretrained)
        base = replace(base, width=pretrained.config.width)
        init_state = pretrained.state_dict()
    tracking.connect(settings)  # before minutes of work: a dead store fails now, named
    storage = storage_url(args.storage, settings.home)
    study = open_study(args.study, storage, args.pruner, args.epochs, base.seed)
    splits = load_splits(args.prepared, args.split)
    evaluation = combined_set(load_sets(Path(args.prepared), Path(args.split), Path(args.drawn)))
    built: dict[bool, Any] = {}  # the material differs only by the synthetic capitals

    def train_set_for(params: TrainParams) -> Any:
        if params.synthetic_capitals not in built:
            built[params.synthetic_capitals] = training_set(splits["train"], args.drawn, params)
        return built[params.synthetic_capitals]

    log(
        "tune",
        f"study {args.study} in {storage.split('@')[-1]}: {finished(study)} of "
        f"{args.trials} trials done; {args.epochs} epochs per trial",
    )
    signal.signal(signal.SIGTERM, _interrupt)
    started = time.monotonic()
    parent = study.user_attrs.get("mlflow_run_id")
    with tracking.stage_run(
        "tune", params={"study": args.study, "epochs": args.epochs}, run_id=parent, verify=False
    ) as run:
        study.set_user_attr("mlflow_run_id", run.run_id)
        try:
            run_study(
                study,
                base,
                train_set_for,
                evaluation,
                args.trials,
                args.minutes,
                args.metric,
                init_state,
            )
        except KeyboardInterrupt:
            log(
                "tune",
                f"interrupted after {finished(study)} of {args.trials} trials; "
                "run the same command again to resume",
            )
            return 130
    result = summary(study, args.metric) | {"minutes": (time.monotonic() - started) / 60}
    write_json(args.summary, result)
    if result["best"] is None:
        raise StageError(f"study {args.study} has no completed trial yet")
    best, baseline = result["best"], result["baseline"]
    versus = f" (hand-set values: {baseline['value']:.4f})" if baseline else ""
    log("tune", f"best trial #{best['number']}: {args.metric} {best['value']:.4f}{versus}")
    log("tune", "best values: " + ", ".join(f"{k}={v}" for k, v in best["train"].items()))
    if not args.no_write:
        write_train_params(args.params, best["train"])
        log("tune", f"wrote them into {args.params} (train:); `dvc repro` trains with them")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (StageError, SettingsError) as exc:
        print(f"tune: error: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)
