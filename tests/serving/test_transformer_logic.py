"""Unit tests: the transformer's pre/post-processing around a fake predictor (no servers)."""

from __future__ import annotations

import asyncio
import io

import numpy as np
import pytest
from kserve import InferInput, InferRequest
from kserve.errors import InferenceError, InvalidInput, ModelNotReady
from PIL import Image

from bukva.alphabet import CLASSES, INDEX
from transformer.client import PredictorError, PredictorUnavailable
from transformer.model import BukvaTransformer


class FakePredictor:
    """Answers with fixed logits: class `winner` first, then `runner_up`; or raises `error`."""

    def __init__(self, winner: str = "б", runner_up: str = "7", error: Exception | None = None):
        self.logits = np.full(len(CLASSES), -5.0, dtype=np.float32)
        self.logits[INDEX[winner]], self.logits[INDEX[runner_up]] = 4.0, 2.0
        self.error, self.batches, self.geometries = error, [], []

    async def infer(
        self, batch: np.ndarray, geometry: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        if self.error:
            raise self.error
        self.batches.append(batch)
        self.geometries.append(geometry)
        n = len(batch)
        return {
            "label_logits": np.tile(self.logits, (n, 1)),
            "uppercase_logit": np.full((n, 1), 3.0, dtype=np.float32),
            "model_version": "5",
        }

    async def versions(self) -> list[str]:
        return ["5"]

    async def close(self) -> None:
        pass


def png(ink: bool) -> bytes:
    image = Image.new("L", (60, 60), 255)
    if ink:
        image.paste(0, (25, 10, 35, 50))
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def request(images: list[bytes], **parameters) -> InferRequest:
    tensor = InferInput("image", [len(images)], "BYTES", data=np.array(images, dtype=object))
    return InferRequest("bukva", [tensor], parameters=parameters or None)


def run(model: BukvaTransformer, req: InferRequest):
    async def go():
        prepared = await model.preprocess(req)
        return model.postprocess(await model.predict(prepared))

    return {o.name: o.as_numpy() for o in asyncio.run(go()).outputs}


def test_top_k_probabilities_case_and_status():
    fake = FakePredictor("б", "7")
    out = run(BukvaTransformer("bukva", fake, top_k=3), request([png(True), png(False)]))
    assert out["label"].shape == (2, 3)
    assert [x.decode() for x in out["label"][0][:2]] == ["б", "7"]
    assert out["label"][1].tolist() == [b"", b"", b""]
    p = out["probability"][0]
    assert p[0] > p[1] > p[2] > 0 and p.sum() <= 1.0 + 1e-6
    assert out["uppercase_probability"][0] == pytest.approx(1 / (1 + np.exp(-3.0)), rel=1e-5)
    assert out["uppercase_probability"][1] == 0.0
    assert out["case_known"].tolist() == [True, False]  # a letter (blank: no case)
    assert out["status"].tolist() == [b"ok", b"blank"]
    assert len(fake.batches) == 1 and fake.batches[0].shape == (1, 1, 28, 28)  # blank not sent


def test_geometry_is_sent_with_each_image():
    """The predictor gets each drawing's geometry in its frame, from the same function
    training used (`bukva.preprocess.normalize_with_geometry`)."""
    from bukva.preprocess import decode_image, normalize_with_geometry

    fake = FakePredictor()
    run(BukvaTransformer("bukva", fake), request([png(True), png(False), png(True)]))
    (geometry,) = fake.geometries
    expected = normalize_with_geometry(decode_image(png(True)))[1].vector()
    assert geometry.shape == (2, 5) and geometry.dtype == np.float32
    assert np.array_equal(geometry, np.stack([expected, expected]))
    # the 10x40 bar in a 60x60 frame: 2/3 high, 1/6 wide, centred
    assert geometry[0].tolist() == pytest.approx([2 / 3, 1 / 6, 0.5, 0.5, 1.0], abs=1e-6)


def test_digit_has_no_case_and_top_k_parameter_wins():
    out = run(BukvaTransformer("bukva", FakePredictor("7", "б")), request([png(True)], top_k=5))
    assert out["label"].shape == (1, 5)
    assert out["case_known"].tolist() == [False]


def test_mode_restricts_the_answer_and_renormalizes():
    """The same logits (з ahead of 3) read in each mode: digits mode gives 3, letters mode з;
    the probabilities sum to 1 over the mode's classes."""
    fake = FakePredictor("з", "3")
    model = BukvaTransformer("bukva", fake, top_k=3)
    anything = run(model, request([png(True)]))
    digits = run(model, request([png(True)], mode="digits"))
    letters = run(model, request([png(True)], mode="letters"))
    assert anything["label"][0, 0] == b"\xd0\xb7"  # з
    assert digits["label"][0, 0] == b"3" and digits["case_known"].tolist() == [False]
    assert all(c.decode() in "0123456789" for c in digits["label"][0])
    assert letters["label"][0, 0].decode() == "з" and letters["case_known"].tolist() == [True]
    assert all(c.decode() not in "0123456789" for c in letters["label"][0])
    # 3 keeps its odds against the other digits, now out of the digits' total
    logits = fake.logits.astype(np.float64)
    expected = np.exp(logits[INDEX["3"]]) / np.exp(logits[:10]).sum()
    assert digits["probability"][0, 0] == pytest.approx(expected, rel=1e-6)
    assert digits["probability"][0, 0] > anything["probability"][0, 1]


def test_top_k_beyond_the_modes_classes_is_empty():
    out = run(
        BukvaTransformer("bukva", FakePredictor("з", "3")),
        request([png(True)], mode="digits", top_k=12),
    )
    assert [c.decode() for c in out["label"][0, 10:]] == ["", ""]
    assert out["probability"][0, 10:].tolist() == [0.0, 0.0]
    assert out["probability"][0].sum() == pytest.approx(1.0, abs=1e-6)


def test_twins_both_likely_are_named_in_mode_anything_only():
    from bukva.reading import TWIN_RATIO

    close = FakePredictor("з", "3")  # 3 just above TWIN_RATIO of з: both named
    close.logits[INDEX["3"]] = 4.0 + np.log(TWIN_RATIO) + 0.1
    far = FakePredictor("з", "3")  # just below: з alone
    far.logits[INDEX["3"]] = 4.0 + np.log(TWIN_RATIO) - 0.1
    not_twins = FakePredictor("з", "7")
    not_twins.logits[INDEX["7"]] = 4.0
    images = [png(True), png(False)]
    out = run(BukvaTransformer("bukva", close), request(images))
    assert out["alternative"].tolist() == [b"3", b""]  # the blank has none
    assert run(BukvaTransformer("bukva", far), request(images))["alternative"].tolist() == [
        b"",
        b"",
    ]
    assert run(BukvaTransformer("bukva", not_twins), request(images))["alternative"][0] == b""
    for mode in ("letters", "digits"):
        out = run(BukvaTransformer("bukva", close), request(images, mode=mode))
        assert out["alternative"].tolist() == [b"", b""]
    # top_k 1 still says it: the rule reads the top-2, whatever the request shows
    out = run(BukvaTransformer("bukva", close), request([png(True)], top_k=1))
    assert out["alternative"].tolist() == [b"3"]


def test_the_model_input_is_an_output_only_when_asked_for():
    """`model_input` is each drawing as the predictor got it (zeros for a blank one), and only
    a request that names it pays for it."""
    from kserve.protocol.infer_type import RequestedOutput

    from bukva.preprocess import decode_image, normalize

    fake = FakePredictor()
    model = BukvaTransformer("bukva", fake)
    images = [png(True), png(False), png(True)]
    assert "model_input" not in run(model, request(images))
    asked = request(images)
    asked.request_outputs = [RequestedOutput("label"), RequestedOutput("model_input")]
    seen = run(model, asked)["model_input"]
    assert seen.shape == (3, 28, 28) and seen.dtype == np.float32
    assert np.array_equal(seen[[0, 2]], fake.batches[-1][:, 0])  # what the predictor got
    assert np.array_equal(seen[0], normalize(decode_image(png(True))))
    assert not seen[1].any()  # blank: nothing was sent, nothing to show
    all_blank = request([png(False)])
    all_blank.request_outputs = [RequestedOutput("model_input")]
    assert run(model, all_blank)["model_input"].tolist() == np.zeros((1, 28, 28)).tolist()


@pytest.mark.parametrize("value", ["numbers", "Digits", "", 3, None])
def test_unknown_mode_is_refused_naming_the_allowed_ones(value):
    model = BukvaTransformer("bukva", FakePredictor())
    with pytest.raises(InvalidInput, match="mode must be one of anything, letters, digits"):
        asyncio.run(model.preprocess(request([png(True)], mode=value)))


def test_grpc_parameters_are_read_like_rest_ones():
    """gRPC carries parameters as InferParameter messages, REST as JSON values."""
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb

    grpc_request = pb.ModelInferRequest(
        model_name="bukva",
        parameters={
            "mode": pb.InferParameter(string_param="digits"),
            "top_k": pb.InferParameter(int64_param=2),
        },
    )
    model = BukvaTransformer("bukva", FakePredictor())
    req = request([png(True)])
    req.parameters = grpc_request.parameters
    out = run(model, req)
    assert out["label"].shape == (1, 2) and out["label"][0, 0] == b"7"


def test_large_batches_are_prepared_off_the_event_loop():
    fake = FakePredictor()
    out = run(BukvaTransformer("bukva", fake), request([png(True)] * 6 + [png(False)]))
    assert out["status"].tolist() == [b"ok"] * 6 + [b"blank"]
    assert fake.batches[0].shape == (6, 1, 28, 28)


def test_all_blank_skips_the_predictor():
    fake = FakePredictor(error=AssertionError("must not be called"))
    out = run(BukvaTransformer("bukva", fake), request([png(False)]))
    assert out["status"].tolist() == [b"blank"]


def test_predictor_faults_map_to_503_and_500():
    down = BukvaTransformer("bukva", FakePredictor(error=PredictorUnavailable("refused")))
    with pytest.raises(ModelNotReady) as info:
        run(down, request([png(True)]))
    assert info.value.reason and "refused" in info.value.reason  # gRPC needs .reason
    broken = BukvaTransformer("bukva", FakePredictor(error=PredictorError("garbled")))
    with pytest.raises(InferenceError, match="garbled"):
        run(broken, request([png(True)]))


def test_v1_payloads_are_refused():
    model = BukvaTransformer("bukva", FakePredictor())
    with pytest.raises(InvalidInput, match="v2"):
        asyncio.run(model.preprocess({"instances": [[1, 2]]}))


def test_top_k_must_be_sensible():
    with pytest.raises(ValueError, match="top_k"):
        BukvaTransformer("bukva", FakePredictor(), top_k=0)


def test_rest_client_reads_binary_and_json_answers():
    import json

    from transformer.client import RestClient

    logits = np.arange(43, dtype="<f4").reshape(1, 43)
    case = np.array([[0.5]], dtype="<f4")
    header = json.dumps(
        {
            "outputs": [
                {"name": "label_logits", "shape": [1, 43], "parameters": {"binary_data_size": 172}},
                {"name": "uppercase_logit", "shape": [1, 1], "data": [0.5]},
            ]
        }
    ).encode()
    out = RestClient._parse(header + logits.tobytes(), len(header))
    assert np.array_equal(out["label_logits"], logits) and np.array_equal(
        out["uppercase_logit"], case
    )
    with pytest.raises(PredictorError, match="label_logits"):
        RestClient._parse(b'{"outputs": []}', 15)


def test_the_predictors_version_is_passed_on():
    model = BukvaTransformer("bukva", FakePredictor())
    assert asyncio.run(model.served_versions()) == ["5"]  # asked before any answer

    async def go():
        prepared = await model.preprocess(request([png(True)]))
        return model.postprocess(await model.predict(prepared))

    assert asyncio.run(go()).model_version == "5"
