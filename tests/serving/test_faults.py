"""Faults: the predictor dies, hangs, or has no model. The transformer answers 503 within its
timeout and recovers; the predictor refuses to start without a model and says why."""

from __future__ import annotations

import base64
import socket
import subprocess
import sys
import time

import grpc
import httpx
import numpy as np
import pytest
from serving_helpers import ROOT, Server, grpc_infer

pytestmark = pytest.mark.integration
TIMEOUT_S = 2  # the fault transformers' --predictor_request_timeout_seconds
RECOVERY_S = 60  # how long a restarted predictor may take to be reachable again


def infer(server: Server, png: bytes) -> httpx.Response:
    data = [base64.b64encode(png).decode()]
    body = {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": data}]}
    return httpx.post(f"{server.url}/v2/models/bukva/infer", json=body, timeout=30)


def transformer_for(host: str, protocol: str, logs) -> Server:
    args = ["--predictor_host", host, "--predictor_protocol", protocol]
    args += ["--predictor_request_timeout_seconds", str(TIMEOUT_S)]
    return Server("transformer", args, logs)


@pytest.mark.parametrize("protocol", ["v2", "grpc-v2"])
def test_predictor_killed_then_restarted(model_dir, logs, pngs, protocol):
    predictor = Server("model", ["--model_dir", str(model_dir)], logs).start()
    port = predictor.http_port if protocol == "v2" else predictor.grpc_port
    transformer = transformer_for(f"127.0.0.1:{port}", protocol, logs).start()
    try:
        assert infer(transformer, pngs[0]).status_code == 200

        predictor.kill()
        response = infer(transformer, pngs[0])
        assert response.status_code == 503
        assert "redictor" in response.json()["error"]
        with pytest.raises(grpc.RpcError) as info:
            grpc_infer(transformer.grpc, "image", "BYTES", np.array([pngs[0]], dtype=object))
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert httpx.get(f"{transformer.url}/v2/health/live").status_code == 200

        predictor.start()  # same ports
        deadline = time.monotonic() + RECOVERY_S
        while (status := infer(transformer, pngs[0]).status_code) != 200:
            assert status == 503 and time.monotonic() < deadline, f"not recovered: {status}"
            time.sleep(0.5)
    finally:
        transformer.stop()
        predictor.stop()


def test_hung_predictor_gives_503_after_the_timeout(logs, pngs):
    """A predictor that accepts connections but never answers (a black hole)."""
    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(64)
        transformer = transformer_for(f"127.0.0.1:{hole.getsockname()[1]}", "v2", logs).start()
        try:
            response = infer(transformer, pngs[0])
            assert response.status_code == 503
            assert "did not answer in time" in response.json()["error"]
        finally:
            transformer.stop()


def run_module(args: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        env=os.environ | (env or {}),
    )


def test_missing_model_dir_exits_naming_it(tmp_path):
    missing = tmp_path / "no-such-model"
    result = run_module(["model", "--model_dir", str(missing), "--http_port", "0"])
    assert result.returncode == 2
    assert str(missing) in result.stderr


def test_unreadable_model_exits_naming_it(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"not safetensors")
    result = run_module(["model", "--model_dir", str(tmp_path)])
    assert result.returncode == 2
    assert str(tmp_path) in result.stderr


def test_missing_champion_exits_naming_the_registry_uri(tmp_path):
    env = {"BUKVA_HOME": str(tmp_path), "MLFLOW_TRACKING_URI": "", "STORAGE_URI": ""}
    result = run_module(["model", "--model_uri", "models:/bukva-cnn@champion"], env)
    assert result.returncode == 2
    assert "models:/bukva-cnn@champion" in result.stderr
    assert str(tmp_path) in result.stderr  # the tracking store it looked in


def test_transformer_needs_a_predictor_host():
    result = run_module(["transformer"])
    assert result.returncode == 2
    assert "--predictor_host" in result.stderr
