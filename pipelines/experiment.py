"""MLflow run handling for the pipeline stages: one run per training, resumed by `evaluate`.

The tracking URI comes from `bukva.settings` (MLFLOW_TRACKING_URI; unset: a SQLite store in
mlruns/ inside the project, artifacts beside it), so `make up` needs no server.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bukva.settings import Settings
from pipelines.common import StageError

EXPERIMENT = "bukva"


def git_commit() -> str:
    """The checkout's commit (with -dirty when it has changes), or 'unknown'."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _flatten(values: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out |= _flatten(value, f"{name}.")
        elif isinstance(value, int | float | str | bool):
            out[name] = value
    return out


@dataclass
class RunLog:
    """What a stage may log into its run."""

    run_id: str

    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        import mlflow

        mlflow.log_metrics(
            {
                k: float(v)
                for k, v in _flatten(metrics).items()
                if isinstance(v, int | float) and v == v
            },
            step=step,
        )

    def log_artifacts(self, folder: str | Path, artifact_path: str | None = None) -> None:
        import mlflow

        mlflow.log_artifacts(str(folder), artifact_path)


def _experiment_id(settings: Settings) -> str:
    import mlflow

    experiment = mlflow.get_experiment_by_name(EXPERIMENT)
    if experiment is not None:
        return experiment.experiment_id
    location = None
    if not settings.mlflow_tracking_uri:  # embedded: artifacts next to the SQLite file
        location = (settings.home / "mlruns" / "artifacts").as_uri()
    return mlflow.create_experiment(EXPERIMENT, artifact_location=location)


@contextmanager
def stage_run(
    stage: str, params: dict | None = None, run_id: str | None = None
) -> Iterator[RunLog]:
    """Start (or, with run_id, resume) the MLflow run a stage logs into.

    Raises:
        StageError: the tracking store cannot be reached (names the URI).
    """
    import mlflow

    settings = Settings.from_env()
    uri = settings.tracking_uri
    if not settings.mlflow_tracking_uri:
        (settings.home / "mlruns").mkdir(parents=True, exist_ok=True)
    else:  # seconds, naming the server / PostgreSQL / S3, instead of MLflow's retries
        from pipelines import tracking

        try:
            tracking.check(uri)
        except tracking.TrackingUnavailable as exc:
            raise StageError(str(exc)) from None
    mlflow.set_tracking_uri(uri)
    try:
        experiment_id = _experiment_id(settings)
    except Exception as exc:
        raise StageError(f"MLflow tracking store {uri} is unreachable: {exc}") from None
    if run_id is not None:
        try:
            mlflow.get_run(run_id)
        except Exception:
            print(f"{stage}: run {run_id} is not in {uri}; logging into a new run", flush=True)
            run_id = None
    with mlflow.start_run(
        run_id=run_id,
        experiment_id=None if run_id else experiment_id,
        run_name=None if run_id else stage,
    ):
        active = mlflow.active_run()
        if run_id is None:
            mlflow.set_tags({"bukva.stage": stage, "git_commit": git_commit()})
        if params:
            mlflow.log_params(_flatten(params))
        yield RunLog(active.info.run_id)
