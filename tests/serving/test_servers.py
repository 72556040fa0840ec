"""Real predictor + transformer on loopback, called by stock v2 clients (REST, gRPC, binary).

The transformer's answers are checked against the same model run offline in this process
(`bukva.preprocess` + `bukva.network`), so every path must agree with evaluation, not merely
return something well-formed.
"""

from __future__ import annotations

import base64

import httpx
import numpy as np
import pytest
import tritonclient.http as thttp
from serving_helpers import grpc_infer

from bukva.alphabet import CLASSES, are_twins, has_case
from bukva.preprocess import decode_image, normalize_with_geometry

pytestmark = pytest.mark.integration
OUTPUTS = ["label", "probability", "uppercase_probability", "case_known", "status", "alternative"]


@pytest.fixture(scope="module")
def expected(model_dir, pngs):
    """Offline answer for each PNG: (top-1 character, its probability, uppercase probability)."""
    import torch

    from bukva.network import load

    net = load(model_dir)
    drawings = [normalize_with_geometry(decode_image(p)) for p in pngs]
    batch = np.stack([image for image, _ in drawings])[:, None]
    geometry = np.stack([frame.vector() for _, frame in drawings])
    with torch.inference_mode():
        logits, case = net(torch.from_numpy(batch), torch.from_numpy(geometry))
    probs = torch.softmax(logits, 1).numpy()
    return [
        (CLASSES[int(p.argmax())], float(p.max()), float(torch.sigmoid(c)[0]))
        for p, c in zip(probs, case, strict=True)
    ]


def bytes_request(pngs: list[bytes], binary: bool):
    """One BYTES tensor: raw PNGs (binary extension) or their base64 text (JSON)."""
    tensor = thttp.InferInput("image", [len(pngs)], "BYTES")
    items = pngs if binary else [base64.b64encode(p) for p in pngs]
    tensor.set_data_from_numpy(np.array(items, dtype=object), binary_data=binary)
    return [tensor]


def text(array: np.ndarray) -> list:
    """BYTES output as str (tritonclient gives bytes from binary data, str from JSON)."""
    return [x.decode() if isinstance(x, bytes) else x for x in array.ravel().tolist()]


def check_answers(result, expected) -> None:
    labels = result.as_numpy("label")
    probability = result.as_numpy("probability")
    assert labels.shape == (len(expected), 3)
    assert text(result.as_numpy("status")) == ["ok"] * len(expected)
    for row, (char, p_top, p_upper) in enumerate(expected):
        assert text(labels[row])[0] == char
        assert probability[row, 0] == pytest.approx(p_top, abs=1e-5)
        assert np.all(np.diff(probability[row]) <= 0), "top-k must be sorted"
        assert result.as_numpy("uppercase_probability")[row] == pytest.approx(p_upper, abs=1e-5)
        assert bool(result.as_numpy("case_known")[row]) == has_case(char)
        twin = text(result.as_numpy("alternative"))[row]
        assert twin == "" or (are_twins(char, twin) and twin == text(labels[row])[1])


def test_health_and_metadata(predictor, transformer):
    for server in (predictor, transformer):
        assert httpx.get(f"{server.url}/v2/health/live").json() == {"live": True}
        assert httpx.get(f"{server.url}/v2/models/bukva/ready").status_code == 200
    meta = httpx.get(f"{predictor.url}/v2/models/bukva").json()
    assert [o["name"] for o in meta["outputs"]] == ["label_logits", "uppercase_logit"]
    served = meta["versions"]  # the predictor's: a local folder's is its weights' digest
    assert len(served) == 1 and served[0].startswith("sha256:")
    meta = httpx.get(f"{transformer.url}/v2/models/bukva").json()
    assert [o["name"] for o in meta["outputs"]] == [*OUTPUTS, "model_input"]  # that one if asked
    assert meta["outputs"][-1] == {"name": "model_input", "datatype": "FP32", "shape": [-1, 28, 28]}
    assert meta["versions"] == served  # passed on by the transformer
    # v2 tensor names are unique: the PNG/JPEG form and the pixel form have one name each.
    inputs = [(i["name"], i["datatype"], i["shape"]) for i in meta["inputs"]]
    assert inputs == [("image", "BYTES", [-1]), ("canvas", "UINT8", [-1, -1, -1, 4])]
    import grpc
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
    from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

    with grpc.insecure_channel(transformer.grpc) as channel:
        stub = GRPCInferenceServiceStub(channel)
        assert stub.ServerReady(pb.ServerReadyRequest()).ready
        assert stub.ModelReady(pb.ModelReadyRequest(name="bukva")).ready
        meta = stub.ModelMetadata(pb.ModelMetadataRequest(name="bukva"))
        assert [o.name for o in meta.outputs] == [*OUTPUTS, "model_input"]
        assert [i.name for i in meta.inputs] == ["image", "canvas"]


@pytest.mark.parametrize("binary", [False, True], ids=["json-base64", "binary-raw"])
def test_rest_pngs_match_offline(transformer, pngs, expected, binary):
    client = thttp.InferenceServerClient(f"127.0.0.1:{transformer.http_port}")
    outputs = [thttp.InferRequestedOutput(name, binary_data=binary) for name in OUTPUTS]
    result = client.infer("bukva", bytes_request(pngs, binary), outputs=outputs)
    check_answers(result, expected)


def test_grpc_pngs_match_offline(transformer, pngs, expected):
    images = np.array(pngs, dtype=object)
    check_answers(grpc_infer(transformer.grpc, "image", "BYTES", images), expected)


def test_the_model_input_comes_only_when_asked_for(transformer, pngs, blank_png):
    """`model_input`: each drawing as the model saw it, by every client that names it (REST
    binary and JSON, gRPC, the app's client); a client that does not name it gets the
    outputs it always got."""
    from frontend.client import InferenceClient

    offline = normalize_with_geometry(decode_image(pngs[0]))[0]
    client = thttp.InferenceServerClient(f"127.0.0.1:{transformer.http_port}")
    for binary in (True, False):
        outputs = [thttp.InferRequestedOutput(n, binary_data=binary) for n in OUTPUTS]
        outputs.append(thttp.InferRequestedOutput("model_input", binary_data=binary))
        result = client.infer("bukva", bytes_request([pngs[0], blank_png], binary), outputs=outputs)
        seen = result.as_numpy("model_input")
        assert seen.shape == (2, 28, 28) and seen.dtype == np.float32
        assert np.abs(seen[0] - offline).max() <= 1e-6 and not seen[1].any()
    plain = client.infer("bukva", bytes_request([pngs[0]], True)).get_response()
    assert [o["name"] for o in plain["outputs"]] == OUTPUTS

    images = np.array([pngs[0]], dtype=object)
    by_grpc = grpc_infer(transformer.grpc, "image", "BYTES", images, outputs=["model_input"])
    assert np.abs(by_grpc["model_input"][0] - offline).max() <= 1e-6
    assert "model_input" not in grpc_infer(transformer.grpc, "image", "BYTES", images)

    app = InferenceClient(transformer.url)  # binary request, model_input as binary data
    try:
        asked, plain_answer = app.predict(pngs[0], model_input=True), app.predict(pngs[0])
        blank = app.predict(blank_png, model_input=True)
    finally:
        app.close()
    assert np.abs(asked.model_input - offline).max() <= 1e-6
    assert asked == plain_answer and plain_answer.model_input is None
    assert blank.status == "blank" and not blank.model_input.any()


def test_plain_json_base64_and_data_url(transformer, pngs, expected):
    data = [
        base64.b64encode(pngs[0]).decode(),
        "data:image/png;base64," + base64.b64encode(pngs[1]).decode(),
    ]
    body = {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [2], "data": data}]}
    response = httpx.post(f"{transformer.url}/v2/models/bukva/infer", json=body)
    # encoded once by orjson (bukva.serving.StrictDataPlane), still a plain JSON answer
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["content-length"]) == len(response.content)
    answer = response.json()
    labels = next(o for o in answer["outputs"] if o["name"] == "label")["data"]
    assert [labels[0], labels[3]] == [expected[0][0], expected[1][0]]


@pytest.mark.parametrize("name", ["canvas", "image"])  # `image` as UINT8: clients from before
def test_canvas_and_blank(transformer, canvas, blank_png, pngs, name):
    client = thttp.InferenceServerClient(f"127.0.0.1:{transformer.http_port}")
    drawing = thttp.InferInput(name, list(canvas.shape), "UINT8")
    drawing.set_data_from_numpy(canvas)
    result = client.infer("bukva", [drawing])
    assert text(result.as_numpy("status")) == ["ok"]
    assert text(result.as_numpy("label"))[0] in CLASSES
    by_grpc = grpc_infer(transformer.grpc, name, "UINT8", canvas)
    assert text(by_grpc["label"]) == text(result.as_numpy("label"))

    empty = thttp.InferInput(name, list(canvas.shape), "UINT8")
    empty.set_data_from_numpy(np.zeros_like(canvas), binary_data=False)  # JSON path
    result = client.infer("bukva", [empty])
    assert text(result.as_numpy("status")) == ["blank"]
    assert text(result.as_numpy("label")) == ["", "", ""]
    assert result.as_numpy("probability").tolist() == [[0.0, 0.0, 0.0]]

    result = client.infer("bukva", bytes_request([blank_png, pngs[0]], True))
    assert text(result.as_numpy("status")) == ["blank", "ok"]
    assert not result.as_numpy("case_known")[0]


def test_top_k_parameter(transformer, pngs):
    body = {
        "inputs": [
            {
                "name": "image",
                "datatype": "BYTES",
                "shape": [1],
                "data": [base64.b64encode(pngs[0]).decode()],
            }
        ],
        "parameters": {"top_k": 5},
    }
    answer = httpx.post(f"{transformer.url}/v2/models/bukva/infer", json=body).json()
    assert next(o for o in answer["outputs"] if o["name"] == "label")["shape"] == [1, 5]


@pytest.fixture(scope="module")
def in_digits_mode(model_dir, pngs):
    """Offline answer for each PNG among the ten digits: (top-3, their probabilities)."""
    import torch

    from bukva.network import load

    drawings = [normalize_with_geometry(decode_image(p)) for p in pngs]
    batch = np.stack([image for image, _ in drawings])[:, None]
    geometry = np.stack([frame.vector() for _, frame in drawings])
    with torch.inference_mode():
        logits, _ = load(model_dir)(torch.from_numpy(batch), torch.from_numpy(geometry))
    probs = torch.softmax(logits[:, :10].double(), 1)  # the digits are classes 0-9
    top = torch.topk(probs, 3)
    return [
        (list(map(str, i.tolist())), p.tolist())
        for i, p in zip(top.indices, top.values, strict=True)
    ]


def check_digits(result, expected) -> None:
    labels, probability = result.as_numpy("label"), result.as_numpy("probability")
    for row, (chars, probs) in enumerate(expected):
        assert text(labels[row]) == chars
        np.testing.assert_allclose(probability[row], probs, atol=1e-5)
        assert not result.as_numpy("case_known")[row]
    assert text(result.as_numpy("alternative")) == [""] * len(expected)


@pytest.mark.parametrize("binary", [False, True], ids=["json-base64", "binary-raw"])
def test_rest_digits_mode(transformer, pngs, in_digits_mode, binary):
    client = thttp.InferenceServerClient(f"127.0.0.1:{transformer.http_port}")
    outputs = [thttp.InferRequestedOutput(name, binary_data=binary) for name in OUTPUTS]
    result = client.infer(
        "bukva", bytes_request(pngs, binary), outputs=outputs, parameters={"mode": "digits"}
    )
    check_digits(result, in_digits_mode)


def test_grpc_digits_mode(transformer, pngs, in_digits_mode):
    images = np.array(pngs, dtype=object)
    result = grpc_infer(transformer.grpc, "image", "BYTES", images, {"mode": "digits"})
    check_digits(result, in_digits_mode)


def test_letters_mode_plain_json(transformer, pngs):
    body = {
        "inputs": [
            {"name": "image", "datatype": "BYTES", "shape": [len(pngs)],
             "data": [base64.b64encode(p).decode() for p in pngs]}
        ],
        "parameters": {"mode": "letters", "top_k": 5},
    }  # fmt: skip
    answer = httpx.post(f"{transformer.url}/v2/models/bukva/infer", json=body).json()
    outputs = {o["name"]: o for o in answer["outputs"]}
    assert outputs["label"]["shape"] == [len(pngs), 5]
    assert all(c in CLASSES[10:] for c in outputs["label"]["data"])
    assert outputs["alternative"]["data"] == [""] * len(pngs)
    assert all(outputs["case_known"]["data"])  # every letter has a case


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_predictor_logits_match_offline(predictor, model_dir, protocol):
    import torch

    from bukva.network import load

    batch = np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32)
    with torch.inference_mode():
        logits, case = load(model_dir)(torch.from_numpy(batch))
    if protocol == "http":
        tensor = thttp.InferInput("image", list(batch.shape), "FP32")
        tensor.set_data_from_numpy(batch)
        url = f"127.0.0.1:{predictor.http_port}"
        result = thttp.InferenceServerClient(url).infer("bukva", [tensor])
    else:
        result = grpc_infer(predictor.grpc, "image", "FP32", batch)
    np.testing.assert_allclose(result.as_numpy("label_logits"), logits.numpy(), atol=1e-5)
    np.testing.assert_allclose(result.as_numpy("uppercase_logit"), case.numpy(), atol=1e-5)


def test_metrics_keep_kserve_histograms_and_add_domain_ones(
    predictor, transformer, pngs, blank_png
):
    client = thttp.InferenceServerClient(f"127.0.0.1:{transformer.http_port}")
    answer = client.infer("bukva", bytes_request([pngs[0], blank_png], True))
    assert answer.get_response()["model_version"].startswith("sha256:")  # the predictor's
    text = httpx.get(f"{transformer.url}/metrics").text
    for name in (
        "request_predict_seconds_bucket",
        "request_preprocess_seconds_bucket",
        "bukva_transformer_predictions_total{",
        "bukva_transformer_top1_probability_bucket",
        "bukva_transformer_nothing_drawn_total",
        "bukva_transformer_invalid_input_total",
    ):
        assert name in text, name
    text = httpx.get(f"{predictor.url}/metrics").text
    for name in (
        "request_predict_seconds_bucket",
        "bukva_predictor_predictions_total{",
        "bukva_predictor_batch_size",
        "bukva_predictor_model_info{",
    ):
        assert name in text, name


def test_the_curl_example_make_up_prints_works(transformer):
    """The recognise-a-PNG lines `make up` prints (launch/serve.py HOWTO), run by bash as a
    person pastes them: a file the repository ships, base64 that BSD and GNU both have."""
    import json
    import subprocess

    from launch.serve import EXAMPLE_PNG, HOWTO, Ports

    port = int(transformer.url.rsplit(":", 1)[1])
    text = HOWTO.format(example=EXAMPLE_PNG, host="127.0.0.1", **vars(Ports(transformer_http=port)))
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("IMG="))
    script = "\n".join(line.strip() for line in lines[start : start + 4])
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    answer = {o["name"]: o["data"] for o in json.loads(done.stdout)["outputs"]}
    assert answer["status"] == ["ok"] and len(answer["label"]) == 3


def test_servers_listen_only_where_told(predictor, transformer):
    """The test servers run with `make up`'s flags (--bind 127.0.0.1): REST and gRPC listen on
    loopback only, not on every interface as KServe would."""
    import psutil

    for server in (predictor, transformer):
        listening = {
            (c.laddr.ip.removeprefix("::ffff:"), c.laddr.port)  # gRPC's IPv4-mapped form
            for c in psutil.Process(server.pid).connections(kind="inet")
            if c.status == psutil.CONN_LISTEN
        }
        ports = {server.http_port, server.grpc_port}
        assert {port for _, port in listening} >= ports, listening
        assert {ip for ip, port in listening if port in ports} == {"127.0.0.1"}, listening
