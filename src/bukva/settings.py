"""Configuration from environment variables, with defaults for the embedded (one machine) mode.

Every variable any component reads is listed here and in the README's table. Reading happens
when `Settings.from_env()` is called, never at import time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

MODEL_NAME = "bukva"  # the v2 model name both KServe servers expose
REGISTERED_MODEL = "bukva-cnn"  # MLflow registered model
CHAMPION_ALIAS = "champion"


def project_root() -> Path:
    """The project checkout (BUKVA_HOME, or the working directory)."""
    return Path(os.environ.get("BUKVA_HOME", os.getcwd())).resolve()


@dataclass(frozen=True)
class Settings:
    """All knobs that come from the environment. Field name = variable name, lowercased."""

    bukva_home: str = ""
    # MLflow tracking + registry. Empty: a SQLite store inside the project (mlruns/).
    mlflow_tracking_uri: str = ""
    # What the predictor serves: a registry URI, a local folder or an s3:// folder.
    bukva_model_uri: str = f"models:/{REGISTERED_MODEL}@{CHAMPION_ALIAS}"
    # KServe's storage-initializer convention; when set it wins over BUKVA_MODEL_URI.
    storage_uri: str = ""
    # The transformer's v2 base URL as the frontend sees it.
    bukva_inference_url: str = "http://127.0.0.1:8080"
    # Feedback store: s3://bucket/prefix or a local folder.
    bukva_feedback_uri: str = "feedback"
    # Local queue for feedback while the store is down (relative to BUKVA_HOME). In a container
    # with a read-only root, point it at a writable volume (the app falls back to /tmp).
    bukva_feedback_outbox: str = "feedback-outbox"
    # S3-compatible endpoint (MinIO in the cluster); empty means AWS itself.
    aws_endpoint_url: str = ""
    # The same endpoint for MLflow's own S3 client (tracking server, direct s3:// model reads).
    mlflow_s3_endpoint_url: str = ""
    # PostgreSQL server (no database) where `make services` creates bukva_mlflow / bukva_optuna.
    bukva_postgres_url: str = "postgresql://postgres@127.0.0.1:5432"
    # Optuna storage for `make tune` (SQLAlchemy URL); empty: sqlite optuna.db in the project.
    bukva_optuna_storage: str = ""
    # `make tune` budget defaults; --trials / --minutes / --epochs win.
    bukva_tune_trials: str = "10"
    bukva_tune_minutes: str = ""
    bukva_tune_epochs: str = "4"
    # Prometheus HTTP API for the monitoring page.
    bukva_prometheus_url: str = "http://127.0.0.1:9090"
    # Port of the app's own Prometheus /metrics endpoint; "0" turns it off.
    bukva_metrics_port: str = "9102"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Read every field from `env` (default: os.environ), keeping defaults for unset ones."""
        env = os.environ if env is None else env
        values = {f.name: env[f.name.upper()] for f in fields(cls) if f.name.upper() in env}
        settings = cls(**values)
        if not settings.bukva_home:
            settings = cls(**(values | {"bukva_home": str(project_root())}))
        return settings

    @property
    def home(self) -> Path:
        return Path(self.bukva_home)

    @property
    def tracking_uri(self) -> str:
        """MLflow URI; the embedded default is a SQLite file under mlruns/."""
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{self.home / 'mlruns' / 'mlflow.db'}"

    @property
    def model_uri(self) -> str:
        return self.storage_uri or self.bukva_model_uri


ENV_VARS: tuple[str, ...] = tuple(f.name.upper() for f in fields(Settings))
