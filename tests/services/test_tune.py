"""Optuna tuning: the search space maps onto params.yaml, the best values are written in place,
and a study stored in PostgreSQL resumes after an interruption with its trials as nested
MLflow runs on the tracking server."""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

import optuna
import pytest
import torch
import yaml
from optuna.trial import TrialState

from pipelines import tune
from pipelines.common import StageError
from pipelines.data import Dataset
from pipelines.fit import TrainParams, fit
from pipelines.tune_space import (
    suggest,
    train_values_of,
    trial_params_of,
    widths_for,
    write_train_params,
)

PARAMS = """\
# top comment
prepare:
  use_csv_bbox: true

train:
  epochs: 30
  optimizer: adamw  # adamw | sgd
  lr: 0.003
  schedule: onecycle  # onecycle | cosine
  weight_decay: 0.0005
  aug_strength: 1.0  # scales augmentation
  width: 32

evaluate:
  top_k: 3
  lr: 9  # not train's
"""


def test_baseline_params_round_trip_through_the_search_space() -> None:
    train = {"optimizer": "sgd", "lr": 0.05, "schedule": "cosine", "weight_decay": 1e-4}
    train |= {"aug_strength": 0.5, "width": 24}
    train |= {"mix_scanned": 0.4, "mix_drawn": 0.3, "mix_fonts": 0.3, "synthetic_capitals": False}
    fixed = trial_params_of(train)
    assert fixed["sgd_lr"] == 0.05 and "adamw_lr" not in fixed
    assert train_values_of(fixed) == train
    sampled = suggest(optuna.trial.FixedTrial(fixed))
    assert sampled == train


def test_suggest_without_width_leaves_width_alone() -> None:
    fixed = trial_params_of(
        {"optimizer": "adamw", "lr": 1e-3, "schedule": "onecycle", "weight_decay": 1e-3}
        | {"aug_strength": 1.0, "width": 32, "mix_drawn": 0.2, "mix_fonts": 0.1}
        | {"synthetic_capitals": True},
        tune_width=False,
    )
    assert "width" not in fixed
    assert "width" not in suggest(optuna.trial.FixedTrial(fixed), widths=None)


def test_the_training_material_is_searched_and_its_shares_stay_valid() -> None:
    values = suggest(
        optuna.trial.FixedTrial(
            trial_params_of(
                asdict(TrainParams(mix_drawn=0.55, mix_fonts=0.5, synthetic_capitals=True))
            )
        )
    )
    assert values["synthetic_capitals"] is True
    mix = [values[k] for k in ("mix_scanned", "mix_drawn", "mix_fonts")]
    assert mix[0] == 0.1 and sum(mix) == pytest.approx(1.0)  # scans keep at least 0.1
    assert mix[1] > mix[2] > 0
    assert set(TrainParams.__dataclass_fields__) >= set(values)


def test_every_trial_trains_on_the_train_stage_material(tmp_path: Path) -> None:
    """run_study builds each trial's training set from its own knobs (synthetic capitals on or
    off change the material), through the builder it is given."""
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_experiment("material")
    built, seen = [], []

    def build(params: TrainParams) -> Dataset:
        built.append(params.synthetic_capitals)
        return tiny_split(24 if params.synthetic_capitals else 12, 0)

    def recording_fit(params, train, val, init, on_epoch):
        seen.append((params.synthetic_capitals, len(train)))
        return None, [{"val_label_accuracy": 0.5, "train_loss": 1.0, "seconds": 0.0}]

    study = tune.open_study("material", f"sqlite:///{tmp_path / 'optuna.db'}", "median", 1, 1)
    try:
        with mlflow.start_run():
            tune.run_study(study, replace(BASE, epochs=1), build, None, 4, fit_fn=recording_fit)
    finally:
        while mlflow.active_run():
            mlflow.end_run()
        mlflow.set_tracking_uri(None)
    assert len(seen) == 4 and built == [capitals for capitals, _ in seen]
    assert all(n == (24 if capitals else 12) for capitals, n in seen)
    assert seen[0][0] is BASE.synthetic_capitals  # the baseline trial: the hand-set value


def test_an_unusual_hand_set_width_joins_the_choices() -> None:
    assert widths_for(8) == (8, 16, 24, 32, 48)
    assert widths_for(32) == (16, 24, 32, 48)


def test_balanced_metric_weighs_letters_and_digits_equally() -> None:
    metrics = {"val_letters_accuracy": 0.6, "val_digits_accuracy": 1.0, "val_label_accuracy": 0.95}
    assert tune.metric_value(metrics, tune.BALANCED) == pytest.approx(0.8)
    assert tune.metric_value(metrics, "val_label_accuracy") == 0.95
    nan = tune.metric_value({"val_digits_accuracy": 1.0}, tune.BALANCED)
    assert nan != nan


def test_write_train_params_changes_only_train_values(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(PARAMS)
    write_train_params(path, {"optimizer": "sgd", "lr": 0.0421337, "width": 48})
    text = path.read_text()
    assert "  optimizer: sgd  # adamw | sgd\n" in text
    assert "  lr: 0.04213\n" in text and "  lr: 9  # not train's\n" in text
    assert text.startswith("# top comment\n")
    values = yaml.safe_load(text)
    assert (
        values["train"] | {"optimizer": "adamw", "lr": 0.003, "width": 32}
        == yaml.safe_load(PARAMS)["train"]
    )
    assert values["evaluate"] == {"top_k": 3, "lr": 9}


def test_write_train_params_keeps_tiny_floats_floats(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(PARAMS)
    write_train_params(path, {"weight_decay": 1.5e-5, "aug_strength": 1.0})
    train = yaml.safe_load(path.read_text())["train"]
    assert train["weight_decay"] == pytest.approx(1.5e-5)
    assert train["aug_strength"] == 1.0 and isinstance(train["aug_strength"], float)


def test_write_train_params_rejects_unknown_keys(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(PARAMS)
    with pytest.raises(StageError, match=r"no key.*momentum"):
        write_train_params(path, {"momentum": 0.9})
    assert path.read_text() == PARAMS
    path.write_text("prepare: {}\n")
    with pytest.raises(StageError, match="no top-level `train:`"):
        write_train_params(path, {"lr": 0.1})


def tiny_split(n: int, seed: int) -> Dataset:
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 12  # digits and two letters
    images = torch.rand(n, 1, 28, 28, generator=gen) * 0.2
    images[torch.arange(n), 0, labels + 4, 4:24] = 1.0  # a stroke whose row encodes the class
    upper = torch.where(labels >= 10, labels % 2, torch.full_like(labels, -1))
    rows = [{"id": str(i)} for i in range(n)]
    return Dataset(images, labels, upper, rows, torch.zeros(n, 5))


BASE = TrainParams(epochs=2, batch_size=16, samples_per_epoch=32, hidden=16, seed=3)


@pytest.mark.integration
def test_study_in_postgresql_resumes_after_an_interruption(platform_env, database) -> None:
    import mlflow

    train_set, val_set = tiny_split(48, 0), tiny_split(24, 1)
    calls: list[int] = []

    def interrupted_fit(params, train, val, init, on_epoch):
        trial_index = len(calls)
        calls.append(trial_index)

        def hook(epoch: int, metrics: dict) -> None:
            on_epoch(epoch, metrics)
            if trial_index == 1:
                raise KeyboardInterrupt  # Ctrl-C in the middle of the second trial

        return fit(params, train, val, init, hook)

    tune_experiment = "tune-test"
    from pipelines import tracking

    tracking.setup(tune_experiment)
    study = tune.open_study("resume", database, "median", BASE.epochs, seed=1)
    with mlflow.start_run(run_name="tune") as parent, pytest.raises(KeyboardInterrupt):
        tune.run_study(study, BASE, train_set, val_set, trials=3, fit_fn=interrupted_fit)
    states = [t.state for t in study.trials]
    assert states == [TrialState.COMPLETE, TrialState.FAIL]
    first_value = study.trials[0].value

    # Same command again: a new process would open the same study by name.
    again = tune.open_study("resume", database, "median", BASE.epochs, seed=1)
    with mlflow.start_run(run_id=parent.info.run_id):
        tune.run_study(again, BASE, train_set, val_set, trials=3)
    trials = again.trials
    assert tune.finished(again) == 3
    assert trials[0].value == first_value and trials[0].user_attrs == {"baseline": 1}
    assert [t.state for t in trials[:2]] == [TrialState.COMPLETE, TrialState.FAIL]
    assert len(trials) == 4  # the failed one does not count; no extra trial ran

    children = mlflow.search_runs(
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
        output_format="list",
    )
    assert len(children) == 4
    assert sorted(int(r.data.tags["optuna.trial"]) for r in children) == [0, 1, 2, 3]
    assert {r.data.params["epochs"] for r in children} == {"2"}
    summary = tune.summary(again, tune.DEFAULT_METRIC)
    assert summary["baseline"]["number"] == 0 and summary["trials"]["FAIL"] == 1


@pytest.mark.integration
def test_trials_that_fall_behind_are_pruned(tmp_path: Path, monkeypatch) -> None:
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_experiment("prune")

    def scripted_fit(params, train, val, init, on_epoch):
        # The first three trials do well, later ones badly: the median pruner stops them.
        good = len(study.trials) <= 3
        history = []
        for epoch in range(1, params.epochs + 1):
            metrics = {"train_loss": 1.0, "seconds": 0.0}
            history.append(metrics | {"val_label_accuracy": 0.9 if good else 0.1})
            on_epoch(epoch, history[-1])
        return None, history

    study = tune.open_study("prune", f"sqlite:///{tmp_path / 'optuna.db'}", "median", 4, 1)
    try:
        with mlflow.start_run():
            base = replace(BASE, epochs=4)
            tune.run_study(
                study, base, None, None, 5, metric="val_label_accuracy", fit_fn=scripted_fit
            )
        states = [t.state for t in study.trials]
        assert states[:3] == [TrialState.COMPLETE] * 3
        assert states[3:] == [TrialState.PRUNED] * 2
        # pruned at epoch 2, the first one after the warm-up, of 4
        assert [len(t.intermediate_values) for t in study.trials[3:]] == [2, 2]
        pruned = mlflow.search_runs(
            filter_string="tags.`optuna.state` = 'PRUNED'", output_format="list"
        )
        assert len(pruned) == 2 and {r.info.status for r in pruned} == {"FINISHED"}
    finally:
        while mlflow.active_run():
            mlflow.end_run()
        mlflow.set_tracking_uri(None)
