"""The model registry, known in one place: what the registered model and its alias are called,
the URIs that name a version, the tags `register` writes on each version, the weights' digest
that ties a model folder to its version, and the two questions the components ask of it.

Standard library only, so the app (no mlflow package) asks the same questions as the predictor,
the pipeline and the monitoring. Each question takes `registry`: either the URL of an MLflow
server, asked over its REST API with one short request (MLflow's own client retries a dead
server for minutes), or an MLflow client (`mlflow.MlflowClient`, for the embedded SQLite store
and for writers that hold one anyway). Both answer with the same `Version`.

    version_by_alias(registry)            which version `champion` points at (None: no alias)
    version_by_weights(registry, digest)  which version holds these weights (None: not there)

Writing (new versions, tags, aliases) is the pipeline's, through MLflow's client
(`pipelines.tracking`, `pipelines.register`).
"""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bukva.contract import ONNX_WEIGHTS_SHA, WEIGHTS_FILE

REGISTERED_MODEL = "bukva-cnn"  # the MLflow registered model
CHAMPION_ALIAS = "champion"  # the alias the promotion gate moves and `make serve` serves
CHAMPION_URI = f"models:/{REGISTERED_MODEL}@{CHAMPION_ALIAS}"

# Version tags (`pipelines.register` writes them; the app, the monitoring and the gate read them).
METRIC_TAG = "metric."  # prefix: one tag per test figure, `metric.<set>.<figure>`
WEIGHTS_TAG = ONNX_WEIGHTS_SHA  # sha256 of the weights: the same key as in model.onnx's metadata
GIT_COMMIT_TAG = "git_commit"
DATA_HASH_TAG = "dvc_data_hash"  # md5 of data/raw in dvc.lock
PROMOTION_TAG = "promotion"  # the gate's reason for promoting or not

TIMEOUT_S = 3.0  # one REST request; a registry that does not answer in time is unavailable
API = "/api/2.0/mlflow"


class RegistryUnavailable(RuntimeError):
    """The registry could not be asked (down, refused, or not a server); the message says which."""


def version_uri(version: str | int, name: str = REGISTERED_MODEL) -> str:
    """`models:/bukva-cnn/3`: one version, pinned (what the cluster serves)."""
    return f"models:/{name}/{version}"


@dataclass(frozen=True)
class ModelUri:
    """A parsed `models:/` URI: `name` and either `version` or `alias`."""

    name: str
    version: str = ""
    alias: str = ""


def parse_uri(uri: str) -> ModelUri | None:
    """`models:/name/3` or `models:/name@alias`; None for anything else (a folder, s3://,
    runs:/, or a `models:/name/<stage>`: MLflow's deprecated stages are not used here)."""
    if not uri.startswith("models:/"):
        return None
    rest = uri.removeprefix("models:/")
    if "@" in rest:
        name, _, alias = rest.partition("@")
        return ModelUri(name, alias=alias) if name and alias else None
    name, _, version = rest.partition("/")
    return ModelUri(name, version=version) if name and version.isdigit() else None


def weights_digest(model_dir: str | Path) -> str:
    """sha256 of the folder's weights file: the `weights_sha256` tag of its registry version
    and of its `model.onnx`. Read in blocks (weights can be large)."""
    digest = hashlib.sha256()
    with (Path(model_dir) / WEIGHTS_FILE).open("rb") as weights:
        for block in iter(lambda: weights.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def metric_tags(metrics: Mapping[str, float]) -> dict[str, str]:
    """The version tags of flattened test figures (`<set>.<figure>` -> `metric.<set>.<figure>`)."""
    return {f"{METRIC_TAG}{name}": f"{value:.6f}" for name, value in metrics.items()}


def metrics_from_tags(tags: Mapping[str, Any]) -> dict[str, float]:
    """The test figures back from a version's tags (tags that are not numbers are left out)."""
    found = {}
    for key, value in tags.items():
        if key.startswith(METRIC_TAG):
            try:
                found[key.removeprefix(METRIC_TAG)] = float(value)
            except (TypeError, ValueError):
                continue
    return found


@dataclass(frozen=True)
class Version:
    """One registry version, however it was read."""

    version: str
    tags: Mapping[str, str] = field(default_factory=dict)
    description: str = ""
    run_id: str = ""
    source: str = ""  # where its files are (`runs:/<run>/model`)

    @classmethod
    def of(cls, record: Any) -> Version:
        """From the REST API's JSON (tags as a list of key/value pairs) or an MLflow client's
        ModelVersion (tags as a dict)."""
        if isinstance(record, Mapping):
            tags = {t["key"]: t.get("value", "") for t in record.get("tags") or [] if "key" in t}
            get = record.get
        else:
            tags = dict(getattr(record, "tags", None) or {})

            def get(name: str, default: str = "") -> Any:
                return getattr(record, name, default)

        return cls(
            str(get("version", "")),
            tags,
            get("description", "") or "",
            get("run_id", "") or "",
            get("source", "") or "",
        )

    @property
    def metrics(self) -> dict[str, float]:
        return metrics_from_tags(self.tags)

    @property
    def weights(self) -> str:
        """The sha256 of its weights (empty when untagged)."""
        return self.tags.get(WEIGHTS_TAG, "")


def is_server(uri: str) -> bool:
    """True for an MLflow server's URL (asked over REST); False for a database URI."""
    return uri.startswith(("http://", "https://"))


def version_by_alias(
    registry: Any, alias: str = CHAMPION_ALIAS, name: str = REGISTERED_MODEL
) -> Version | None:
    """The version `alias` points at; None when the model or the alias does not exist.

    Raises:
        RegistryUnavailable: the registry could not be asked.
    """
    if isinstance(registry, str):
        found = _rest(registry, "registered-models/alias", {"name": name, "alias": alias})
        return Version.of(found["model_version"]) if found else None
    try:
        return Version.of(registry.get_model_version_by_alias(name, alias))
    except Exception as exc:  # MlflowException: RESOURCE_DOES_NOT_EXIST or the store failed
        if _missing(getattr(exc, "error_code", ""), str(exc)):
            return None
        raise RegistryUnavailable(f"cannot ask the registry for {name}@{alias}: {exc}") from exc


def versions(registry: Any, name: str = REGISTERED_MODEL) -> list[Version]:
    """Every version of `name` (none when it is not registered).

    Raises:
        RegistryUnavailable: the registry could not be asked.
    """
    query = f"name = '{name}'"
    if not isinstance(registry, str):
        try:
            return [Version.of(v) for v in registry.search_model_versions(query)]
        except Exception as exc:
            raise RegistryUnavailable(f"cannot list the versions of {name}: {exc}") from exc
    found, token = [], ""
    while True:
        params = {"filter": query, "max_results": "1000"} | ({"page_token": token} if token else {})
        page = _rest(registry, "model-versions/search", params) or {}
        found += [Version.of(v) for v in page.get("model_versions") or []]
        token = page.get("next_page_token") or ""
        if not token:
            return found


def version_by_weights(registry: Any, digest: str, name: str = REGISTERED_MODEL) -> Version | None:
    """The first version registered with these weights (`weights_digest`); None if none.

    Raises:
        RegistryUnavailable: the registry could not be asked.
    """
    held = [v for v in versions(registry, name) if v.weights == digest]
    return min(held, key=lambda v: int(v.version)) if held else None


def _missing(code: str, message: str) -> bool:
    """MLflow's answer for a model that is not registered, or an alias it does not have
    (INVALID_PARAMETER_VALUE "Registered model alias <alias> not found", in MLflow 3)."""
    return code == "RESOURCE_DOES_NOT_EXIST" or (
        code == "INVALID_PARAMETER_VALUE" and "alias" in message and "not found" in message
    )


def _rest(server: str, path: str, params: Mapping[str, str]) -> dict | None:
    """GET an MLflow REST endpoint: its JSON, None when what it names does not exist."""
    if not is_server(server):
        raise RegistryUnavailable(f"{server} is not an MLflow server (http or https URL)")
    url = f"{server.rstrip('/')}{API}/{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as answer:
            return json.load(answer)
    except urllib.error.HTTPError as exc:
        try:
            body = json.load(exc)
        except ValueError:
            body = {}
        if _missing(body.get("error_code", ""), body.get("message", "")):
            return None
        reason = body.get("message") or exc.reason
        raise RegistryUnavailable(f"MLflow at {server} answered {exc.code}: {reason}") from None
    except (OSError, ValueError) as exc:  # refused, timed out, not JSON
        raise RegistryUnavailable(f"MLflow at {server} does not answer: {exc}") from None
