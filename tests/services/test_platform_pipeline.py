"""The whole loop on the local services: a tiny-profile `dvc repro` logs to the MLflow
tracking server (PostgreSQL + S3 artifacts; moto on loopback stands in for MinIO), `register`
puts a version behind `champion`, and the predictor serves it, configured by environment
variables only; it also loads the same files from an `s3://` folder. Tuning runs against the
same services and writes its best values into params.yaml."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml

from bukva import s3
from bukva.registry import CHAMPION_ALIAS, REGISTERED_MODEL
from launch import services
from tests.services.conftest import Platform, free_port
from tests.support.project import make_project, run

pytestmark = pytest.mark.integration
START_TIMEOUT_S = 180


@pytest.fixture(scope="module")
def project(platform: Platform, raw_data: Path, tmp_path_factory) -> Path:
    """A tiny-profile copy of the project, reproduced against the tracking server."""
    path = make_project(tmp_path_factory.mktemp("platform") / "project", raw_data)
    run([sys.executable, "-m", "dvc", "repro"], path, **platform.env)
    return path


def serve(env: dict[str, str], log: Path) -> tuple[subprocess.Popen, str]:
    """`python -m model` with only ports as flags: the model comes from the environment."""
    port = free_port()
    cmd = [sys.executable, "-m", "model", "--http_port", str(port), "--grpc_port", str(free_port())]
    full = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "BUKVA_"))}
    root = Path(__file__).resolve().parents[2]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=root, env=full | env, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{url}/v2/models/bukva/ready", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    proc.wait()
    raise AssertionError(f"predictor did not become ready:\n{log.read_text()[-3000:]}")


def infer(url: str) -> dict:
    image = np.zeros((1, 1, 28, 28), np.float32)
    image[0, 0, 4:24, 13:15] = 1.0  # a vertical stroke
    body = {"inputs": [{"name": "image", "shape": [1, 1, 28, 28], "datatype": "FP32"}]}
    body["inputs"][0]["data"] = image.flatten().tolist()
    response = httpx.post(f"{url}/v2/models/bukva/infer", json=body, timeout=30)
    response.raise_for_status()
    return {o["name"]: o for o in response.json()["outputs"]}


def test_stages_logged_to_the_tracking_server(platform_env: Platform, project: Path) -> None:
    import mlflow

    from bukva.registry import weights_digest
    from pipelines.tracking import training_run

    client = mlflow.MlflowClient(platform_env.tracking_uri)
    run_id = training_run(weights_digest(project / "models" / "model"), client)
    assert run_id is not None
    data = client.get_run(run_id).data
    assert data.params["epochs"] == "3" and "test_label_accuracy" in data.metrics
    keys = list(s3.list_keys(s3.S3Location(services.ARTIFACTS_BUCKET), s3.client()))
    assert any(k.endswith(f"{run_id}/artifacts/model/model.safetensors") for k in keys)


def test_register_put_a_complete_version_behind_champion(
    platform_env: Platform, project: Path
) -> None:
    import mlflow
    import mlflow.pyfunc

    client = mlflow.MlflowClient(platform_env.tracking_uri)
    version = client.get_model_version_by_alias(REGISTERED_MODEL, CHAMPION_ALIAS)
    for tag in ("git_commit", "dvc_data_hash", "metric.label_accuracy", "weights_sha256"):
        assert version.tags.get(tag), tag
    files = {a.path for a in client.list_artifacts(version.run_id, "model")}
    assert {"model/model.safetensors", "model/config.json", "model/model.onnx"} <= files
    assert {"model/MLmodel", "model/input_example.json", "model/requirements.txt"} <= files
    # MLflow's own loader reads it through the server's artifact proxy (S3 behind it).
    loaded = mlflow.pyfunc.load_model(f"models:/{REGISTERED_MODEL}/{version.version}")
    assert loaded.predict(loaded.input_example)["label_logits"].shape == (1, 43)


def test_predictor_serves_the_champion_from_the_registry(
    platform_env: Platform, project: Path, tmp_path: Path
) -> None:
    env = platform_env.env | {"BUKVA_MODEL_URI": f"models:/{REGISTERED_MODEL}@{CHAMPION_ALIAS}"}
    proc, url = serve(env, tmp_path / "predictor.log")
    try:
        outputs = infer(url)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert outputs["label_logits"]["shape"] == [1, 43]
    assert outputs["uppercase_logit"]["shape"] == [1, 1]


def test_predictor_loads_an_s3_model_folder(
    platform_env: Platform, project: Path, tmp_path: Path
) -> None:
    from model.model import BukvaPredictor
    from model.source import resolve

    local = project / "models" / "model"
    s3.upload_folder(local, f"s3://{services.ARTIFACTS_BUCKET}/exported/bukva-v1", s3.client())
    folder = resolve(
        f"s3://{services.ARTIFACTS_BUCKET}/exported/bukva-v1", platform_env.tracking_uri, tmp_path
    )
    assert (folder / "model.safetensors").read_bytes() == (local / "model.safetensors").read_bytes()
    predictor = BukvaPredictor("bukva", folder)
    assert predictor.load() is True


def test_tune_runs_on_the_services_and_writes_params(platform: Platform, project: Path) -> None:
    before = yaml.safe_load((project / "params.yaml").read_text())["train"]
    done = run(
        [sys.executable, "-m", "pipelines.tune", "--trials", "2", "--epochs", "1"],
        project,
        **platform.env,
    )
    assert "trial 1" in done.stdout and "wrote them into params.yaml" in done.stdout
    summary = json.loads((project / "reports" / "tuning.json").read_text())
    assert summary["trials"] == {"COMPLETE": 2} and summary["baseline"]["number"] == 0
    after = yaml.safe_load((project / "params.yaml").read_text())["train"]
    best = summary["best"]["train"]
    for key, value in best.items():  # floats are written with 4 significant digits
        assert after[key] == (pytest.approx(value, rel=1e-3) if isinstance(value, float) else value)
    untouched = {k: v for k, v in before.items() if k not in best}
    assert {k: after[k] for k in untouched} == untouched
