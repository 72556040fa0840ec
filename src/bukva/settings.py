"""Configuration from environment variables, with defaults for the embedded (one machine) mode.

Every variable any component reads is listed here and in the README's table. Reading happens
when `Settings.from_env()` is called, never at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

# The names live in the contract and the registry; imported here for the default below and
# for callers that already read them from settings.
from bukva.contract import MODEL_NAME
from bukva.registry import CHAMPION_ALIAS, CHAMPION_URI, REGISTERED_MODEL

__all__ = [
    "CHAMPION_ALIAS",
    "ENV_VARS",
    "MODEL_NAME",
    "REGISTERED_MODEL",
    "Settings",
    "project_root",
]


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
    bukva_model_uri: str = CHAMPION_URI
    # KServe's storage-initializer convention; when set it wins over BUKVA_MODEL_URI.
    storage_uri: str = ""
    # The transformer's v2 base URL as the frontend sees it.
    bukva_inference_url: str = "http://127.0.0.1:8080"
    # Feedback store: s3://bucket/prefix or a local folder.
    bukva_feedback_uri: str = "feedback"
    # Local queue for feedback while the store is down (relative to BUKVA_HOME). In a container
    # with a read-only root, point it at a writable volume (the app falls back to /tmp).
    bukva_feedback_outbox: str = "feedback-outbox"
    # Most records that outbox holds while the store is down; when full, new feedback is
    # refused with a message (what is queued is kept). Put the outbox on a volume that
    # survives a pod restart.
    bukva_feedback_outbox_max: str = "1000"
    # Feedback saves allowed per app session in any 60 s (the app says why when refused).
    bukva_feedback_per_minute: str = "20"
    # S3-compatible endpoint (MinIO in the cluster); empty means AWS itself.
    aws_endpoint_url: str = ""
    # The same endpoint for MLflow's own S3 client (tracking server, direct s3:// model reads).
    mlflow_s3_endpoint_url: str = ""
    # S3 credentials and region (boto3's names). Empty keys: boto3's other sources (profiles,
    # instance roles). Never printed: kept out of the repr.
    aws_access_key_id: str = field(default="", repr=False)
    aws_secret_access_key: str = field(default="", repr=False)
    aws_session_token: str = field(default="", repr=False)
    aws_default_region: str = "us-east-1"
    # `make services`: use this S3 endpoint (e.g. MinIO) instead of starting moto.
    bukva_s3_service_endpoint: str = ""
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
    # Address that endpoint listens on (all interfaces, so Prometheus in a cluster reaches it).
    bukva_metrics_address: str = "0.0.0.0"
    # Log level of the KServe servers (KServe reads KSERVE_LOGLEVEL itself; the launchers pass
    # this default). WARNING in production: request latency is in the metrics, not the log.
    kserve_loglevel: str = "WARNING"
    # "true": the servers log a latency trace line per request (kserve.trace, seen at INFO).
    bukva_request_trace: str = "false"
    # `ingest` without a local mirror (pipelines/fetch.py): where downloads are cached (empty:
    # ~/.cache/bukva) and the upstream hosts' base URLs (tests point them at a loopback server).
    bukva_data_cache: str = ""
    bukva_rukopys_url: str = "https://codeload.github.com"
    bukva_mnist_url: str = "https://ossci-datasets.s3.amazonaws.com/mnist"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
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

    @property
    def data_cache(self) -> Path:
        """The download cache of `ingest` (BUKVA_DATA_CACHE, default ~/.cache/bukva)."""
        return (
            Path(self.bukva_data_cache).expanduser()
            if self.bukva_data_cache
            else (Path.home() / ".cache" / "bukva")
        )

    @property
    def request_trace(self) -> bool:
        """BUKVA_REQUEST_TRACE as a boolean (1, true, yes, on)."""
        return self.bukva_request_trace.strip().lower() in {"1", "true", "yes", "on"}


ENV_VARS: tuple[str, ...] = tuple(f.name.upper() for f in fields(Settings))
