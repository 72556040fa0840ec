"""Where the predictor's model files come from: a local folder or anything MLflow can download.

KServe's convention is a storage-initializer that copies `STORAGE_URI` into a local folder
(`/mnt/models`) before the server starts; the server then reads a plain directory. Locally we
also accept a registry URI (`bukva.registry.CHAMPION_URI`), an MLflow run URI, or an object-store
URL, and download it once at start-up with MLflow's artifact repositories. No pickles: the
folder holds `model.safetensors` + `config.json` (see `bukva.network`).

Which registry version is served is said, not guessed: the version the predictor is deployed
with (`--model_version`, set by the Helm chart and the launcher), else the version a
`models:/` URI names or its alias points at (`pin`). The registry is never searched for the
weights.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bukva import registry
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


def pin(uri: str, tracking_uri: str, declared: str = "") -> tuple[str, str]:
    """The URI to download and the registry version it holds ("" when it is not a registry
    version). `models:/name@alias` is pinned to the version the alias points at now, before
    anything is downloaded: the alias may move meanwhile, and what is served is then still
    the version reported.

    Raises:
        ModelSourceError: the alias does not exist, the registry cannot be asked, or the
            `declared` version (`--model_version`) is not the one the URI holds.
    """
    parsed = registry.parse_uri(uri)
    if parsed is None:
        return uri, ""
    if parsed.version:
        pinned = uri, parsed.version
    else:
        try:
            found = registry.version_by_alias(_registry(tracking_uri), parsed.alias, parsed.name)
        except registry.RegistryUnavailable as exc:
            raise ModelSourceError(f"{uri}: {exc}") from None
        if found is None:
            raise ModelSourceError(f"{uri}: the registry at {tracking_uri} has no such alias")
        pinned = registry.version_uri(found.version, parsed.name), found.version
    if declared and declared != pinned[1]:
        raise ModelSourceError(f"--model_version {declared} but {uri} is version {pinned[1]}")
    return pinned


def _registry(tracking_uri: str):
    """What `bukva.registry` asks: a server over REST, a database through MLflow's client."""
    if registry.is_server(tracking_uri):
        return tracking_uri
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri, registry_uri=tracking_uri)


def served_version(declared: str, pinned: str, model_dir: Path) -> str:
    """The version the predictor reports: the one it is deployed with (`--model_version`),
    else the registry version its URI holds (`pin`), else `sha256:<12 hex>` of the weights: a
    folder or s3:// copy that nobody named still says exactly which model answered."""
    return declared or pinned or f"sha256:{registry.weights_digest(model_dir)[:12]}"
