"""The one-hop baseline `make bench` compares the two KServe hops with: `python -m bench.onehop`.

The least a user could deploy instead of transformer -> predictor: one uvicorn process, one
worker, a Starlette app that takes the transformer's v2 JSON request for one or more PNG/JPEG
images (`{"inputs":[{"name":"image","datatype":"BYTES","shape":[N],"data":[<base64>]}]}`) at
the same path (`bukva.contract.infer_path()`), decodes each with `bukva.preprocess.decode_image`,
normalises it with `bukva.preprocess.normalize_with_geometry`, runs the same `model.onnx` with
ONNX Runtime on one thread (`model.runtime.onnx_net`), and answers the transformer's six
outputs (top-3 labels and probabilities, uppercase probability, case flag, status,
alternative; mode `anything`) as v2 JSON.

It is a yardstick, not a product: no metrics, no gRPC, no binary extension, no batching
across requests. `bench.load` starts it with the servers' environment
(`launch.serve.server_env`: one OpenBLAS thread, the same malloc settings) and the same event
loop (uvloop), so the ratio between the two measures the architecture, not the settings.
Bad input gets HTTP 400 with a reason, as from the transformer.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import sys
from pathlib import Path

import numpy as np
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bukva.alphabet import CLASSES, has_case
from bukva.contract import (
    ALTERNATIVE,
    CASE_KNOWN,
    DEFAULT_MODE,
    GEOMETRY,
    GEOMETRY_SIZE,
    INPUT,
    LABEL,
    LABEL_LOGITS,
    MODEL_NAME,
    PROBABILITY,
    STATUS,
    STATUS_BLANK,
    STATUS_OK,
    UPPERCASE_LOGIT,
    UPPERCASE_PROBABILITY,
    infer_path,
)
from bukva.preprocess import BlankImageError, ImageError, decode_image, normalize_with_geometry
from bukva.reading import alternatives, probabilities, ranked

TOP_K = 3
MAX_IMAGES = 64  # the transformer's default --max_batch_size
HAS_CASE = np.array([has_case(c) for c in CLASSES])
READY_PATH = "/v2/health/ready"


class BadRequest(ValueError):
    """The request cannot be answered; the message says why (HTTP 400)."""


def images_of(body: bytes) -> list[bytes]:
    """The PNG/JPEG bytes of a v2 JSON request with one BYTES input named `image`."""
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"body is not valid JSON ({exc})") from None
    inputs = request.get("inputs") if isinstance(request, dict) else None
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise BadRequest(f"expected {{'inputs': [one input named '{INPUT}']}}")
    spec = inputs[0]
    if spec.get("name") != INPUT or spec.get("datatype") != "BYTES":
        raise BadRequest(f"the input must be named '{INPUT}' with datatype BYTES")
    data = spec.get("data")
    if not isinstance(data, list) or not 1 <= len(data) <= MAX_IMAGES:
        raise BadRequest(f"'data' must list 1..{MAX_IMAGES} base64 images")
    if spec.get("shape") != [len(data)]:
        raise BadRequest(f"'shape' must be [{len(data)}], got {spec.get('shape')!r}")
    images = []
    for index, item in enumerate(data):
        if not isinstance(item, str):
            raise BadRequest(f"image {index}: expected base64 text")
        try:
            images.append(base64.b64decode(item, validate=True))
        except (binascii.Error, ValueError):
            raise BadRequest(f"image {index}: not base64") from None
    return images


class OneHop:
    """Decode, normalise, run the network, build the answer: all in the request's handler."""

    def __init__(self, net):
        self.net = net
        self.net(self.feeds([np.zeros((28, 28), np.float32)], [np.zeros(GEOMETRY_SIZE)]))

    @staticmethod
    def feeds(rows: list[np.ndarray], frames: list[np.ndarray]) -> dict[str, np.ndarray]:
        return {
            INPUT: np.stack(rows)[:, None].astype(np.float32),
            GEOMETRY: np.stack(frames).astype(np.float32),
        }

    def answer(self, pngs: list[bytes]) -> dict:
        """The transformer's six outputs for these images, as a v2 JSON response."""
        n = len(pngs)
        rows, frames, inked = [], [], []
        for index, png in enumerate(pngs):
            try:
                row, frame = normalize_with_geometry(decode_image(png))
            except BlankImageError:
                continue
            except ImageError as exc:
                raise BadRequest(f"image {index}: {exc}") from None
            rows.append(row)
            frames.append(frame.vector())
            inked.append(index)
        labels = [[""] * TOP_K for _ in range(n)]
        probability = np.zeros((n, TOP_K), np.float32)
        uppercase = np.zeros(n, np.float32)
        case_known = np.zeros(n, bool)
        alternative = [""] * n
        if rows:
            logits = self.net(self.feeds(rows, frames))
            probs = probabilities(logits[LABEL_LOGITS], DEFAULT_MODE)
            top = ranked(probs, TOP_K, DEFAULT_MODE)
            twins = alternatives(probs, DEFAULT_MODE)
            chosen = np.take_along_axis(probs, top, axis=1)
            case = 1.0 / (1.0 + np.exp(-logits[UPPERCASE_LOGIT][:, 0]))
            for row, index in enumerate(inked):
                labels[index] = [CLASSES[int(c)] for c in top[row]]
                probability[index], uppercase[index] = chosen[row], case[row]
                case_known[index] = HAS_CASE[top[row, 0]]
                alternative[index] = CLASSES[int(twins[row])] if twins[row] >= 0 else ""
        status = [STATUS_BLANK] * n
        for index in inked:
            status[index] = STATUS_OK
        tensors = [
            (LABEL, "BYTES", [n, TOP_K], [x for row in labels for x in row]),
            (PROBABILITY, "FP32", [n, TOP_K], probability.ravel().tolist()),
            (UPPERCASE_PROBABILITY, "FP32", [n], uppercase.tolist()),
            (CASE_KNOWN, "BOOL", [n], case_known.tolist()),
            (STATUS, "BYTES", [n], status),
            (ALTERNATIVE, "BYTES", [n], alternative),
        ]
        outputs = [{"name": a, "datatype": b, "shape": c, "data": d} for a, b, c, d in tensors]
        return {"model_name": MODEL_NAME, "outputs": outputs}


def app(net) -> Starlette:
    """The baseline's ASGI app around a loaded network (`model.runtime.OnnxNet`)."""
    server = OneHop(net)

    async def infer(request: Request) -> Response:
        try:
            return Response(
                orjson.dumps(server.answer(images_of(await request.body()))),
                media_type="application/json",
            )
        except BadRequest as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)

    async def ready(_request: Request) -> Response:
        return JSONResponse({"ready": True})

    return Starlette(
        routes=[
            Route(infer_path(), infer, methods=["POST"]),
            Route(READY_PATH, ready, methods=["GET"]),
        ]
    )


def model_folder(model_dir: str | None, model_uri: str | None, download_dir: Path) -> Path:
    """The folder asked for, else the URI (default: the predictor's, `bukva.settings`), as a
    local folder (`model.source.resolve`)."""
    from bukva.settings import Settings
    from model.source import resolve

    settings = Settings.from_env()
    uri = model_dir or model_uri or settings.model_uri
    return resolve(uri, settings.tracking_uri, download_dir)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.onehop", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--model_dir", help="model folder (default: the predictor's model URI)")
    parser.add_argument("--model_uri", help="or this URI (default: models:/bukva-cnn@champion)")
    parser.add_argument("--download_dir", help="where a download goes (default: a temp dir)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8070)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import tempfile

    import uvicorn

    from model.runtime import onnx_net
    from model.source import ModelSourceError

    try:
        download_dir = Path(args.download_dir or tempfile.mkdtemp(prefix="bukva-onehop-"))
        folder = model_folder(args.model_dir, args.model_uri, download_dir)
        net = onnx_net(folder, threads=1)
    except ModelSourceError as exc:
        print(f"onehop: cannot load the model: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # unreadable files: safetensors, JSON, ONNX and torch errors vary
        print(f"onehop: cannot load the model: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:
        loop = "asyncio"
    uvicorn.run(
        app(net),
        host=args.host,
        port=args.port,
        workers=1,
        loop=loop,
        log_level="warning",
        access_log=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
