"""Fixtures for the serving tests: a model folder, sample drawings, and real servers on loopback.

Servers run as subprocesses exactly as `make serve` and the Helm charts start them
(`python -m model ...`, `python -m transformer ...`) on free 127.0.0.1 ports, and are stopped
(SIGTERM, then SIGKILL) when the fixture's scope ends.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from serving_helpers import MAX_BATCH, MAX_BYTES, MAX_REQUEST_BYTES, MAX_REQUEST_PIXELS, Server


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    """A BukvaNet with fixed random weights (the contract, not accuracy, is under test), with
    its model.onnx as registration writes it (else every predictor start would export it)."""
    import torch

    from bukva.network import BukvaNet, save
    from model.runtime import export

    torch.manual_seed(0)
    net = BukvaNet()
    with torch.no_grad():  # spread the untrained logits so top-k has clear winners
        net.label_head.weight.mul_(20.0)
    folder = save(net, tmp_path_factory.mktemp("model") / "model")
    export(folder, folder / "model.onnx")
    return folder


@pytest.fixture(scope="session")
def pngs(raw_data: Path) -> list[bytes]:
    """A few real Rukopys glyphs (200x200 black-on-white PNG)."""
    return [f.read_bytes() for f in sorted((raw_data / "rukopys" / "glyphs").glob("*.png"))[:4]]


@pytest.fixture(scope="session")
def blank_png() -> bytes:
    buf = io.BytesIO()
    Image.new("L", (64, 64), 255).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="session")
def canvas() -> np.ndarray:
    """A 1x96x96 RGBA canvas with a vertical stroke on a transparent background."""
    array = np.zeros((1, 96, 96, 4), dtype=np.uint8)
    array[0, 15:80, 44:52] = (0, 0, 0, 255)
    return array


@pytest.fixture(scope="session")
def logs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("server-logs")


@pytest.fixture(scope="session")
def predictor(model_dir, logs) -> Iterator[Server]:
    server = Server("model", ["--model_dir", str(model_dir)], logs).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def transformer(predictor, logs) -> Iterator[Server]:
    args = ["--predictor_host", f"127.0.0.1:{predictor.http_port}", "--predictor_protocol", "v2"]
    args += ["--max_batch_size", str(MAX_BATCH), "--max_image_bytes", str(MAX_BYTES)]
    args += ["--max_request_pixels", str(MAX_REQUEST_PIXELS)]
    args += ["--max_request_bytes", str(MAX_REQUEST_BYTES)]
    server = Server("transformer", args, logs).start()
    yield server
    server.stop()
