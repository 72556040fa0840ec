"""The one-hop baseline `make bench` compares with (`bench.onehop`), against the real servers.

The baseline runs as `bench.load` starts it (its own process, the servers' environment) on a
free loopback port, serving the same model folder as the predictor; the same PNGs go to it and
to the transformer (-> predictor), and both must give the same answer: a faster baseline that
answered something else would make the bench's ratios meaningless.
"""

from __future__ import annotations

import base64
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from serving_helpers import ROOT

from bench.load import canvas_png
from bukva.settings import Settings
from launch.processes import Process, free_port, stop_all
from launch.serve import server_env

pytestmark = pytest.mark.integration
INFER = "/v2/models/bukva/infer"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture(scope="module")
def onehop(model_dir, logs) -> Iterator[str]:
    port = free_port()
    cmd = [sys.executable, "-m", "bench.onehop", "--model_dir", str(model_dir)]
    url = f"http://127.0.0.1:{port}"
    env = server_env(Settings.from_env())
    log = logs / "onehop.log"
    cmd += ["--port", str(port)]
    process = Process("onehop", cmd, f"{url}/v2/health/ready", env, log, ROOT)
    process.start()
    yield url
    stop_all([process])


def v2(pngs: list[bytes]) -> dict:
    data = [base64.b64encode(p).decode() for p in pngs]
    return {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [len(data)], "data": data}]}


def outputs(url: str, body: dict) -> dict:
    answer = httpx.post(f"{url}{INFER}", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    return {o["name"]: o for o in answer.json()["outputs"]}


def test_same_answers_as_the_two_hops(onehop, transformer, pngs, blank_png):
    """The bench's canvas, the repository's canvas fixture, scanned glyphs and a blank image,
    in one request: same labels, status and case flag; same probabilities."""
    images = [
        canvas_png(),
        (FIXTURES / "canvas_rgba.png").read_bytes(),
        *pngs[:2],
        blank_png,
    ]
    one, two = outputs(onehop, v2(images)), outputs(transformer.url, v2(images))
    assert set(one) == set(two)
    for name in ("label", "status", "case_known"):
        assert one[name]["shape"] == two[name]["shape"], name
        assert one[name]["data"] == two[name]["data"], name
    for name in ("probability", "uppercase_probability"):
        assert one[name]["data"] == pytest.approx(two[name]["data"], rel=1e-6), name
    assert one["status"]["data"] == ["ok"] * 4 + ["blank"]
    # Random weights may give one top-1 label to all: the probabilities (apart by ~1e-5, far
    # more than the 1e-6 compared above) tell the images apart.
    top1 = one["probability"]["data"][::3]
    assert len({round(p, 6) for p in top1[:4]}) == 4, top1


def test_bad_input_is_a_400_with_a_reason(onehop):
    answers = [
        httpx.post(f"{onehop}{INFER}", content=b"not json", timeout=10),
        httpx.post(f"{onehop}{INFER}", json={"inputs": []}, timeout=10),
        httpx.post(f"{onehop}{INFER}", json=v2([b"not an image"]), timeout=10),
    ]
    assert [a.status_code for a in answers] == [400, 400, 400]
    reasons = [a.json()["error"] for a in answers]
    assert "not valid JSON" in reasons[0]
    assert "inputs" in reasons[1]
    assert "image 0" in reasons[2] and "PNG or JPEG" in reasons[2]
