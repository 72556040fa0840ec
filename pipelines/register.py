"""DVC stage `register`: put the evaluated model in the MLflow registry, behind a promotion gate.

The model folder (safetensors + config.json, never a pickle) is registered as a new version of
`bukva-cnn` with its test metrics, its tensor signature, the git commit and the DVC data hash
as version tags, plus `model.onnx`: the same network exported for the predictor's ONNX
Runtime and checked against PyTorch. The alias `champion` (what the predictor serves) moves
to the new version only if it beats the current champion on the gate metric; otherwise the
stage says why and leaves the champion alone. MLflow stages are not used (deprecated).

Registering the same weights twice reuses the existing version (matched by their sha256), so
`dvc repro --force` does not litter the registry.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from bukva.contract import (
    CHAMPION_ALIAS,
    CONFIG_FILE,
    METRIC_TAG,
    ONNX_FILE,
    ONNX_WEIGHTS_SHA,
    PREDICTOR_INPUTS,
    PREDICTOR_OUTPUTS,
    REGISTERED_MODEL,
    WEIGHTS_FILE,
)
from bukva.settings import Settings
from pipelines import tracking
from pipelines.common import PARAMS_FILE, StageError, load_params, log, run_cli, write_json

ARTIFACT_PATH = "model"
SIGNATURE_FILE = "MLmodel"  # MLflow's model descriptor: here only the tensor signature


@dataclass(frozen=True)
class Gate:
    """When a new version may take `champion`."""

    metric: str = "label_accuracy"  # must be strictly higher by at least min_improvement
    min_improvement: float = 0.0
    guard_metric: str = "case_accuracy"  # may not drop by more than max_guard_drop
    max_guard_drop: float = 0.02


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str


def decide(new: dict[str, float], champion: dict[str, float] | None, gate: Gate) -> Decision:
    """The promotion gate, a pure function of the two versions' test metrics."""
    if gate.metric not in new:
        return Decision(False, f"new model has no {gate.metric} metric")
    if champion is None:
        return Decision(True, "there is no champion yet")
    if gate.metric not in champion:
        return Decision(True, f"the champion has no {gate.metric} metric to defend")
    ours, theirs = new[gate.metric], champion[gate.metric]
    if ours <= theirs + gate.min_improvement:
        return Decision(
            False,
            f"{gate.metric} {ours:.4f} does not beat the champion's {theirs:.4f}"
            f" by more than {gate.min_improvement:.4f}",
        )
    guard_new, guard_old = new.get(gate.guard_metric), champion.get(gate.guard_metric)
    if (
        guard_new is not None
        and guard_old is not None
        and guard_new < guard_old - gate.max_guard_drop
    ):
        return Decision(
            False,
            f"{gate.metric} improves ({ours:.4f} > {theirs:.4f}) but {gate.guard_metric} "
            f"drops from {guard_old:.4f} to {guard_new:.4f}",
        )
    return Decision(True, f"{gate.metric} {ours:.4f} beats the champion's {theirs:.4f}")


def signature_yaml() -> str:
    """An MLmodel file holding only the v2 tensor signature (no flavor, nothing to unpickle)."""
    import numpy as np
    from mlflow.models import Model, ModelSignature
    from mlflow.types.schema import Schema, TensorSpec

    signature = ModelSignature(
        inputs=Schema([TensorSpec(np.dtype("float32"), t.shape, t.name) for t in PREDICTOR_INPUTS]),
        outputs=Schema(
            [TensorSpec(np.dtype("float32"), t.shape, t.name) for t in PREDICTOR_OUTPUTS]
        ),
    )
    return Model(artifact_path=ARTIFACT_PATH, signature=signature).to_yaml()


def export_onnx(model_dir: Path, out_dir: Path, weights_sha: str) -> Path:
    """`model.onnx` for the predictor (ONNX Runtime), tagged with the weights' sha256, after
    checking that it answers as PyTorch does (logits within 1e-4 on a random batch).

    Raises:
        StageError: the exported graph disagrees with PyTorch.
    """
    import numpy as np
    import onnxruntime as ort
    import torch

    from bukva import network

    net = network.load(model_dir)
    path = network.export_onnx(net, out_dir / ONNX_FILE, {ONNX_WEIGHTS_SHA: weights_sha})
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {i.name: rng.random((5, *i.shape[1:]), dtype=np.float32) for i in session.get_inputs()}
    names = [o.name for o in session.get_outputs()]
    with torch.inference_mode():
        expected = net(*(torch.from_numpy(feeds[i.name]) for i in session.get_inputs()))
    for name, got, want in zip(names, session.run(names, feeds), expected, strict=True):
        worst = float(np.abs(got - want.numpy()).max())
        if worst > 1e-4:
            raise StageError(f"{ONNX_FILE}: {name} differs from PyTorch by {worst:.2e}")
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def dvc_data_tags(lock_path: Path) -> dict[str, str]:
    """`dvc_data_hash` (md5 of data/raw in dvc.lock) plus one tag per data dep of `train`."""
    if not lock_path.is_file():
        return {"dvc_data_hash": "unknown"}
    stages = (yaml.safe_load(lock_path.read_text()) or {}).get("stages", {})
    tags = {}
    for dep in stages.get("train", {}).get("deps", []):
        if str(dep.get("path", "")).startswith("data/") and "md5" in dep:
            tags[f"dvc.{dep['path']}"] = dep["md5"]
    raw = [o for s in stages.values() for o in s.get("outs", []) if o.get("path") == "data/raw"]
    if raw and "md5" in raw[0]:
        tags["dvc_data_hash"] = raw[0]["md5"]
    else:
        joined = "".join(f"{k}={v};" for k, v in sorted(tags.items()))
        tags["dvc_data_hash"] = hashlib.md5(joined.encode()).hexdigest() if joined else "unknown"
    return tags


def _float_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}


def _version_metrics(client, version) -> dict[str, float]:
    tags = version.tags or {}
    return {k[len(METRIC_TAG) :]: float(v) for k, v in tags.items() if k.startswith(METRIC_TAG)}


def _existing_version(client, weights_sha: str):
    for version in client.search_model_versions(f"name = '{REGISTERED_MODEL}'"):
        if (version.tags or {}).get("weights_sha256") == weights_sha:
            return version
    return None


def _training_run(client, model_dir: Path) -> str | None:
    """The MLflow run that trained these weights (config.json's extra), if this store has it."""
    from mlflow.exceptions import MlflowException

    config = json.loads((model_dir / CONFIG_FILE).read_text())
    run_id = (config.get("extra") or {}).get("mlflow_run_id")
    if not run_id:
        return None
    try:
        client.get_run(run_id)
    except MlflowException:
        return None
    return run_id


def _champion(client):
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(REGISTERED_MODEL, CHAMPION_ALIAS)
    except MlflowException:
        return None


def register(model_dir: Path, metrics_path: Path, lock_path: Path, gate: Gate) -> dict[str, Any]:
    """Register (or reuse) the model's version and apply the promotion gate.

    Returns:
        What happened: version, promoted, reason, the champion before and after, metrics.
    Raises:
        StageError: a missing input file, or a registry that cannot be reached.
    """
    for path in (model_dir / WEIGHTS_FILE, model_dir / CONFIG_FILE, metrics_path):
        if not path.is_file():
            raise StageError(f"register needs {path}, which does not exist (run evaluate first)")
    metrics = _float_metrics(json.loads(metrics_path.read_text()))
    weights_sha = sha256(model_dir / WEIGHTS_FILE)

    from mlflow.tracking import MlflowClient

    tracking.connect()  # fails fast naming a dead server; creates the embedded store's folder
    client = MlflowClient()
    training_run = _training_run(client, model_dir)
    with tracking.stage_run("register", run_id=training_run, verify=False) as run:
        version = _existing_version(client, weights_sha)
        if version is None:
            logged = tracking.artifact_files(run.run_id, ARTIFACT_PATH)
            if f"{ARTIFACT_PATH}/{WEIGHTS_FILE}" not in logged:  # not the training run's store
                run.log_artifacts(model_dir, ARTIFACT_PATH)
                run.log_metrics({f"test_{k}": v for k, v in metrics.items()})
            client.log_text(run.run_id, signature_yaml(), f"{ARTIFACT_PATH}/{SIGNATURE_FILE}")
            with tempfile.TemporaryDirectory() as tmp:
                onnx = export_onnx(model_dir, Path(tmp), weights_sha)
                client.log_artifact(run.run_id, str(onnx), ARTIFACT_PATH)
            tags = {f"{METRIC_TAG}{k}": f"{v:.6f}" for k, v in metrics.items()}
            tags |= dvc_data_tags(lock_path)
            tags |= {"git_commit": tracking.git_commit(), "weights_sha256": weights_sha}
            version = tracking.register_verified(
                run.run_id,
                ARTIFACT_PATH,
                REGISTERED_MODEL,
                required=[WEIGHTS_FILE, CONFIG_FILE, SIGNATURE_FILE, ONNX_FILE],
                tags=tags,
            )
            log("register", f"{REGISTERED_MODEL} version {version.version} registered")
        else:
            log("register", f"same weights as version {version.version}; not registering again")
        champion = _champion(client)
        before = champion.version if champion else None
        if before == version.version:
            decision = Decision(False, f"version {version.version} is already the champion")
        else:
            champion_metrics = _version_metrics(client, champion) if champion else None
            decision = decide(metrics, champion_metrics, gate)
        if decision.promote:
            client.set_registered_model_alias(REGISTERED_MODEL, CHAMPION_ALIAS, version.version)
        client.set_model_version_tag(
            REGISTERED_MODEL, version.version, "promotion", decision.reason
        )
    after = version.version if decision.promote else before
    verdict = "promoted to" if decision.promote else "not promoted to"
    log("register", f"version {version.version} {verdict} @{CHAMPION_ALIAS}: {decision.reason}")
    return {
        "model": REGISTERED_MODEL,
        "version": int(version.version),
        "promoted": decision.promote,
        "reason": decision.reason,
        "champion_before": int(before) if before else None,
        "champion": int(after) if after else None,
        "gate": asdict(gate),
        "metrics": metrics,
    }


def has_champion() -> bool:
    """True when the registry at the configured tracking URI has `bukva-cnn@champion`."""
    from mlflow.tracking import MlflowClient

    settings = Settings.from_env()
    uri = settings.tracking_uri
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        return False  # no embedded store yet: nothing was ever registered
    tracking.connect(settings, verify=False)
    return _champion(MlflowClient()) is not None


def load_gate(path: str | Path = PARAMS_FILE) -> Gate:
    """The gate from params.yaml's `register:` section; defaults where it is absent."""
    try:
        values = load_params("register", path)
    except StageError:
        return Gate()
    unknown = set(values) - set(Gate.__dataclass_fields__)
    if unknown:
        raise StageError(f"{path}: unknown register params {sorted(unknown)}")
    return Gate(**values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/model", help="model folder to register")
    parser.add_argument("--metrics", default="reports/metrics.json", help="evaluate's test metrics")
    parser.add_argument("--lock", default="dvc.lock", help="where the DVC data hash comes from")
    parser.add_argument("--out", default="reports/registration.json", help="what happened")
    parser.add_argument(
        "--has-champion",
        action="store_true",
        help="register nothing; exit 0 if the registry has a champion, else 1 (for `make up`)",
    )
    args = parser.parse_args()
    if args.has_champion:
        sys.exit(0 if has_champion() else 1)
    gate = load_gate()
    result = register(Path(args.model), Path(args.metrics), Path(args.lock), gate)
    write_json(args.out, result)


if __name__ == "__main__":
    run_cli("register", main)
