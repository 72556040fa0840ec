"""Where the predictor's model files come from: a local folder or anything MLflow can download.

KServe's convention is a storage-initializer that copies `STORAGE_URI` into a local folder
(`/mnt/models`) before the server starts; the server then reads a plain directory. Locally we
also accept a registry URI (`bukva.contract.CHAMPION_URI`), an MLflow run URI, or an object-store
URL, and download it once at start-up with MLflow's artifact repositories. No pickles: the
folder holds `model.safetensors` + `config.json` (see `bukva.network`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bukva.contract import CONFIG_FILE, WEIGHTS_FILE


class ModelSourceError(RuntimeError):
    """The model could not be found or fetched; the message names what was tried."""


def is_local(uri: str) -> bool:
    """True for a plain path or a file:// URI (no download needed)."""
    if uri.startswith("file://"):
        return True
    return "://" not in uri and not uri.startswith(("models:/", "runs:/"))


def _model_folder(root: Path, uri: str) -> Path:
    """The folder under `root` that holds the model files (the root or its only child)."""
    if (root / CONFIG_FILE).is_file():
        return root
    children = [p for p in root.iterdir() if p.is_dir() and (p / CONFIG_FILE).is_file()]
    if len(children) == 1:
        return children[0]
    raise ModelSourceError(f"{uri}: no {WEIGHTS_FILE} + {CONFIG_FILE} model folder in {root}")


def resolve(uri: str, tracking_uri: str, download_dir: str | Path | None = None) -> Path:
    """A local folder holding the model files named by `uri`, downloading if needed.

    Args:
        uri: a folder path, file:// URI, `models:/name@alias`, `runs:/id/path`, or a URL
            MLflow can download (s3://, gs://, http(s)://, ...).
        tracking_uri: MLflow tracking/registry URI used to resolve models:/ and runs:/.
        download_dir: where downloads go (default: a new temporary folder).

    Raises:
        ModelSourceError: naming the URI (and registry) when nothing usable is there.
    """
    if is_local(uri):
        path = Path(uri.removeprefix("file://")).expanduser()
        if not path.is_dir():
            raise ModelSourceError(f"model directory {path} does not exist")
        return _model_folder(path, uri)

    import mlflow  # imported only when a download is needed: it takes seconds

    target = Path(download_dir or tempfile.mkdtemp(prefix="bukva-model-"))
    try:
        # models:/ URIs resolve through the registry URI, which does not follow the
        # tracking_uri argument; the registry lives in the tracking store here.
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(tracking_uri)
        local = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(target))
    except Exception as exc:  # MLflow raises many types (registry, S3, HTTP)
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelSourceError(
            f"cannot download {uri} (MLflow tracking URI {tracking_uri}): {first_line}"
        ) from None
    return _model_folder(Path(local), uri)


def weights_digest(model_dir: Path) -> str:
    """sha256 of the weights file, as `register` tags each registry version with it."""
    import hashlib

    digest = hashlib.sha256()
    with (model_dir / WEIGHTS_FILE).open("rb") as weights:
        for block in iter(lambda: weights.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def registry_version(uri: str, tracking_uri: str, model_dir: Path) -> str:
    """The registry version of the model served from `uri` (loaded into `model_dir`).

    `models:/name/3` is version 3; `models:/name@alias` is what the registry says the alias
    points at; any other source is looked up in a registry server (http(s) tracking URI) by the
    weights' sha256, which `register` tags every version with. Where no registry knows the
    weights (a local folder in development or tests), the version is `sha256:<12 hex>` of the
    weights: it still names exactly which model answered. Never raises.
    """
    digest = weights_digest(model_dir)
    try:
        if uri.startswith("models:/"):
            name, _, ref = uri.removeprefix("models:/").partition("@")
            if not ref:  # models:/name/<version>
                name, _, ref = name.partition("/")
                if ref.isdigit():
                    return ref
            else:
                from mlflow import MlflowClient

                return str(MlflowClient(tracking_uri).get_model_version_by_alias(name, ref).version)
        elif tracking_uri.startswith(("http://", "https://")):
            for version in _registry_versions(tracking_uri):
                tags = {t.get("key"): t.get("value") for t in version.get("tags") or []}
                if tags.get("weights_sha256") == digest:
                    return str(version["version"])
    except Exception:  # a registry that does not answer leaves the digest as the version
        pass
    return f"sha256:{digest[:12]}"


def _registry_versions(tracking_uri: str, timeout_s: float = 3.0) -> list[dict]:
    """Every version of the registered model, from an MLflow server's REST API: one request
    with a short timeout (MLflow's own client retries an unreachable server for minutes)."""
    import json
    import urllib.parse
    import urllib.request

    from bukva.contract import REGISTERED_MODEL

    query = urllib.parse.urlencode({"filter": f"name = '{REGISTERED_MODEL}'", "max_results": 1000})
    url = f"{tracking_uri.rstrip('/')}/api/2.0/mlflow/model-versions/search?{query}"
    with urllib.request.urlopen(url, timeout=timeout_s) as answer:  # http(s) only: see caller
        return json.load(answer).get("model_versions") or []
