"""Configuration from environment variables, with defaults for the embedded (one machine) mode.

Every variable any component reads is a field here (field name = variable name, lowercased)
and a row of the README's table. Reading happens when `Settings.from_env()` is called, never
at import time. Each field has its type (str, int, float, bool, Path): the value is parsed and
checked once, here; a bad value raises `SettingsError` naming the variable and the value.
"""

from __future__ import annotations

import math
import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from bukva.registry import CHAMPION_URI

__all__ = ["ENV_VARS", "Settings", "SettingsError"]

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


class SettingsError(ValueError):
    """An environment variable holds a value its setting cannot take."""


def _bounded(default: float | None, low: float, high: float | None = None) -> typing.Any:
    """A number field whose values must lie in [low, high] (high None: no upper bound)."""
    return field(default=default, metadata={"range": (low, high)})


def _cache_default() -> Path:
    return Path.home() / ".cache" / "bukva"


@dataclass(frozen=True)
class Settings:
    """All knobs that come from the environment. Field name = variable name, lowercased."""

    # The project checkout; relative paths below are resolved against it. Unset: BUKVA_HOME of
    # the process, else the working directory (resolved when the settings are read).
    bukva_home: Path = field(default_factory=Path.cwd)
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
    bukva_feedback_outbox: Path = Path("feedback-outbox")
    # Most records that outbox holds while the store is down; when full, new feedback is
    # refused with a message (what is queued is kept). Put the outbox on a volume that
    # survives a pod restart.
    bukva_feedback_outbox_max: int = _bounded(1000, 1)
    # Feedback saves allowed per app session in any 60 s (the app says why when refused).
    bukva_feedback_per_minute: int = _bounded(20, 1)
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
    # `make tune` budget defaults (minutes None or 0: no time limit); --trials / --minutes /
    # --epochs win.
    bukva_tune_trials: int = _bounded(10, 1)
    bukva_tune_minutes: float | None = _bounded(None, 0)
    bukva_tune_epochs: int = _bounded(4, 1)
    # Prometheus HTTP API for the monitoring page.
    bukva_prometheus_url: str = "http://127.0.0.1:9090"
    # Milliseconds the app waits after sending a new answer, before the rest of the rerun (the
    # probabilities, the canvas, the feedback form): the browser paints the answer on its own
    # instead of after all of it (docs/frontend.md, "Stroke-to-answer latency"); 0 turns it off.
    bukva_answer_paint_ms: float = _bounded(20.0, 0, 1000)
    # Port of the app's own Prometheus /metrics endpoint; 0 turns it off.
    bukva_metrics_port: int = _bounded(9102, 0, 65535)
    # Address that endpoint listens on (all interfaces, so Prometheus in a cluster reaches it).
    bukva_metrics_address: str = "0.0.0.0"
    # Log level of the KServe servers (KServe reads KSERVE_LOGLEVEL itself; the launchers pass
    # this default). WARNING in production: request latency is in the metrics, not the log.
    kserve_loglevel: str = "WARNING"
    # True: the servers log a latency trace line per request (kserve.trace, seen at INFO).
    bukva_request_trace: bool = False
    # `ingest` without a local mirror (pipelines/upstream.py): where downloads are cached and the
    # upstream hosts' base URLs (tests point them at a loopback server).
    bukva_data_cache: Path = field(default_factory=_cache_default)
    bukva_rukopys_url: str = "https://codeload.github.com"
    bukva_mnist_url: str = "https://ossci-datasets.s3.amazonaws.com/mnist"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read every field from `env` (default: os.environ); unset or empty keeps the default.

        Raises:
            SettingsError: a value its field cannot take (named with its variable).
        """
        env = os.environ if env is None else env
        types = typing.get_type_hints(cls)
        values: dict[str, typing.Any] = {}
        for f in fields(cls):
            raw = env.get(f.name.upper(), "")
            if raw.strip():
                values[f.name] = _parse(f.name.upper(), raw, types[f.name], f.metadata)
        if "bukva_home" not in values:
            values["bukva_home"] = Path(os.environ.get("BUKVA_HOME") or os.getcwd()).resolve()
        return cls(**values)

    @property
    def home(self) -> Path:
        """The project checkout (BUKVA_HOME)."""
        return self.bukva_home

    @property
    def tracking_uri(self) -> str:
        """MLflow URI; the embedded default is a SQLite file under mlruns/."""
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{self.home / 'mlruns' / 'mlflow.db'}"

    @property
    def model_uri(self) -> str:
        return self.storage_uri or self.bukva_model_uri


def _parse(name: str, raw: str, kind: typing.Any, metadata: Mapping[str, typing.Any]) -> typing.Any:
    """The value of variable `name` as its field's type (`T | None`: as T)."""
    kind = next((k for k in typing.get_args(kind) if k is not type(None)), kind)
    text = raw.strip()
    if kind is str:
        return raw
    if kind is Path:
        return Path(text).expanduser()
    if kind is bool:
        if text.lower() in TRUE_WORDS | FALSE_WORDS:
            return text.lower() in TRUE_WORDS
        raise SettingsError(f"{name}={raw!r}: not true or false (1/0, yes/no, on/off)")
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value):
        what = "a whole number" if kind is int else "a number"
        raise SettingsError(f"{name}={raw!r}: not {what}")
    low, high = metadata.get("range", (None, None))
    if (low is not None and value < low) or (high is not None and value > high):
        bound = f"at least {low}" if high is None else f"between {low} and {high}"
        raise SettingsError(f"{name}={raw!r}: must be {bound}")
    return value


ENV_VARS: tuple[str, ...] = tuple(f.name.upper() for f in fields(Settings))
