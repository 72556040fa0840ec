"""The KServe transformer: drawings in, top-k characters out. No torch.

`preprocess` decodes the `image` (PNG/JPEG) or `canvas` (RGBA pixels) tensor and normalises
each drawing with `bukva.preprocess`
(the function the training pipeline used, so serving sees what training saw), which also
measures its geometry in its frame (the canvas); blank drawings are set aside. `predict` sends
the rest to the predictor as one FP32 [N,1,28,28] batch plus their FP32 [N,5] geometry.
`postprocess` turns logits into top-k characters, probabilities and the uppercase answer,
restricted to the request's `mode` (`bukva.reading`: letters, digits or anything).

Output tensors, one row per image (see docs/architecture.md):
  label BYTES [N,k], probability FP32 [N,k], uppercase_probability FP32 [N],
  case_known BOOL [N], status BYTES [N] ("ok" or "blank": nothing drawn, empty labels),
  alternative BYTES [N] (the top-1's digit/letter twin when both are likely, else "");
  and, only for a request that names it in its v2 `outputs`, model_input FP32 [N,28,28] (each
  drawing as the model saw it, zeros when blank: the app's preview).
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from dataclasses import dataclass

import numpy as np
from kserve import InferRequest, InferResponse, Model
from kserve.errors import InferenceError, InvalidInput, ModelNotReady
from kserve.protocol.infer_type import to_http_parameters
from prometheus_client import Counter, Histogram

from bukva.alphabet import CLASSES, NUM_CLASSES, check_mode, has_case
from bukva.contract import (
    ALTERNATIVE,
    CANVAS_INPUT,
    CASE_KNOWN,
    DEFAULT_MODE,
    GEOMETRY_SIZE,
    INPUT,
    INPUT_SHAPE,
    LABEL,
    LABEL_LOGITS,
    MODE_PARAMETER,
    MODEL_INPUT,
    PROBABILITY,
    STATUS,
    STATUS_BLANK,
    STATUS_OK,
    TOP_K_PARAMETER,
    TRANSFORMER_INPUTS,
    UPPERCASE_LOGIT,
    UPPERCASE_PROBABILITY,
    infer_path,
    transformer_outputs,
)
from bukva.geometry import BRUSH_WIDTH, CANVAS_SIDE
from bukva.preprocess import BlankImageError, ImageError, normalize_with_geometry
from bukva.reading import NO_CLASS, alternatives, probabilities, ranked
from bukva.serving import TOP1_BUCKETS, invalid_input, metadata, output, response
from transformer.client import (
    MODEL_VERSION,
    PredictorClient,
    PredictorError,
    PredictorUnavailable,
)
from transformer.images import (
    InputError,
    InputLimits,
    check_canvas_shape,
    from_bytes_tensor,
    from_canvas,
)

INLINE_IMAGES = 4  # larger batches are preprocessed in a worker thread
WARM_UP_TIMEOUT_S = 5.0  # start-up waits this long at most for the warm-up's predictor call
log = logging.getLogger("bukva.transformer")
HAS_CASE = np.array([has_case(c) for c in CLASSES] + [False])  # index NO_CLASS (-1): none
LABELS = np.array([c.encode() for c in CLASSES] + [b""], dtype=object)

PREDICTIONS = Counter(
    "bukva_transformer_predictions_total", "Top-1 answers served, by character", ["character"]
)
TOP1 = Histogram(
    "bukva_transformer_top1_probability",
    "Probability of the top-1 answer (low values: the model is unsure)",
    buckets=TOP1_BUCKETS,
)
NOTHING_DRAWN = Counter(
    "bukva_transformer_nothing_drawn_total", "Images with no ink (answered 'blank')"
)
INVALID = Counter(
    "bukva_transformer_invalid_input_total", "Requests rejected as bad input", ["reason"]
)


class PredictorDown(ModelNotReady):
    """HTTP 503 / gRPC UNAVAILABLE. KServe's gRPC error mapping reads `.reason`, which its own
    ModelNotReady lacks (it would turn into UNKNOWN), so this subclass provides it (upstream:
    https://github.com/kserve/kserve/blob/v0.20.0/python/kserve/kserve/protocol/grpc/interceptors.py
    `ExceptionToStatusInterceptor`; tests/serving/test_kserve_upstream.py)."""

    def __init__(self, model_name: str, detail: str):
        super().__init__(model_name, detail)
        self.reason = self.error_msg


@dataclass
class Prepared:
    """What preprocess hands on: the batch for the predictor and where the blanks were."""

    request: InferRequest
    batch: np.ndarray  # float32 [M, 1, 28, 28], M = images with ink
    geometry: np.ndarray  # float32 [M, 5], `bukva.geometry.FEATURES`
    blank: np.ndarray  # bool [N]
    top_k: int
    mode: str = DEFAULT_MODE
    logits: dict[str, np.ndarray] | None = None  # set by predict


async def _no_versions() -> list[str]:
    return []


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def asked_for(request: InferRequest, name: str) -> bool:
    """Whether the request names output `name` in its v2 `outputs` (REST or gRPC)."""
    return any(o.name == name for o in request.request_outputs or ())


def bad_input(reason: str, message: str) -> InvalidInput:
    """Count a rejected request and build the 400 / INVALID_ARGUMENT error for it."""
    return invalid_input(INVALID, reason, message)


class BukvaTransformer(Model):
    """Pre- and post-processing around a remote v2 predictor of the same model name."""

    def __init__(
        self,
        name: str,
        client: PredictorClient,
        top_k: int = 3,
        limits: InputLimits | None = None,
    ):
        super().__init__(name)
        if not 1 <= top_k <= NUM_CLASSES:
            raise ValueError(f"top_k must be 1..{NUM_CLASSES}, got {top_k}")
        self.client, self.top_k, self.limits = client, top_k, limits or InputLimits()
        self.ready = True  # nothing to load; predictor health is KServe's optional check
        self.version = ""  # the model version the predictor last answered with

    async def served_versions(self) -> list[str]:
        """The v2 metadata's `versions`: the predictor's, as its answers or metadata say."""
        if not self.version:
            versions = await getattr(self.client, "versions", _no_versions)()
            self.version = versions[0] if versions else ""
        return [self.version]

    def get_input_types(self) -> list[dict]:
        return metadata(TRANSFORMER_INPUTS)

    def get_output_types(self) -> list[dict]:
        return metadata(transformer_outputs(self.top_k))

    def validate(self, payload):  # KServe's v1/v2 dict checks do not apply to Prepared
        return payload

    def options(self, request: InferRequest) -> tuple[int, str]:
        """The request's `top_k` and `mode` parameters (REST JSON or gRPC), or the defaults.

        Raises:
            InvalidInput: a value out of range, naming the allowed ones.
        """
        parameters = to_http_parameters(request.parameters or {})
        top_k = parameters.get(TOP_K_PARAMETER, self.top_k)
        if not isinstance(top_k, int) or isinstance(top_k, bool) or not 1 <= top_k <= NUM_CLASSES:
            raise bad_input(
                "parameters", f"parameter {TOP_K_PARAMETER} must be an integer 1..{NUM_CLASSES}"
            )
        try:
            mode = check_mode(parameters.get(MODE_PARAMETER, DEFAULT_MODE))
        except ValueError as exc:
            raise bad_input("parameters", f"parameter {exc}") from None
        return top_k, mode

    def drawings(self, request: InferRequest) -> list:
        """The request's images, decoded and checked, or InvalidInput saying what is wrong.

        One input: `image` (BYTES [N] PNG/JPEG, or UINT8 [N,H,W,4] as before `canvas` had its
        own name) or `canvas` (UINT8 [N,H,W,4]). A request's shape is concrete: -1 is for
        metadata (a variable dimension), never for a request's data.
        """
        names = [i.name for i in request.inputs]
        if len(names) != 1 or names[0] not in (INPUT, CANVAS_INPUT):
            raise bad_input(
                "input_name",
                f"expected exactly one input, named '{INPUT}' (PNG/JPEG) or '{CANVAS_INPUT}' "
                f"(RGBA pixels), got {names}",
            )
        tensor = request.inputs[0]
        name, shape = tensor.name, [int(s) for s in tensor.shape]
        try:
            if any(s < 0 for s in shape):
                raise InputError(
                    "shape",
                    f"input '{name}' has shape {shape}: a request gives every dimension's size "
                    "(-1 appears only in metadata)",
                )
            if tensor.datatype == "BYTES" and name == INPUT:
                if len(shape) != 1:
                    raise InputError(
                        "shape", f"a BYTES image tensor must have shape [N], got {shape}"
                    )
                values = self._values(tensor, shape)
                return from_bytes_tensor(list(values), self.limits)
            if tensor.datatype == "UINT8":
                check_canvas_shape(shape, self.limits)
                return from_canvas(self._values(tensor, shape))
        except InputError as exc:
            raise bad_input(exc.reason, str(exc)) from None
        expected = (
            "UINT8 [N,H,W,4]" if name == CANVAS_INPUT else "BYTES (PNG/JPEG) or UINT8 [N,H,W,4]"
        )
        raise bad_input("datatype", f"input '{name}' must be {expected}, got {tensor.datatype}")

    @staticmethod
    def _values(tensor, shape: list[int]) -> np.ndarray:
        try:
            return tensor.as_numpy().reshape(shape)
        except Exception as exc:  # numpy/struct raise several types for data that mismatches shape
            raise InputError(
                "data", f"input '{tensor.name}' data does not match shape {shape} ({exc})"
            ) from None

    async def preprocess(
        self, payload: InferRequest, headers: dict[str, str] | None = None
    ) -> Prepared:
        """Decode and normalise every image; blank ones are marked, not sent to the predictor.

        Up to INLINE_IMAGES images are handled on the event loop (a thread hop would cost more
        than the ~1 ms of work); larger batches go to a worker thread so that one big request
        does not stall every other one (Pillow and numpy release the GIL for much of it).
        """
        if not isinstance(payload, InferRequest):
            raise bad_input(
                "protocol", f"this server speaks the v2 protocol: POST {infer_path(self.name)}"
            )
        top_k, mode = self.options(payload)
        shape = payload.inputs[0].shape if len(payload.inputs) == 1 else []
        if shape and int(shape[0]) > INLINE_IMAGES:
            return await asyncio.to_thread(self._prepare, payload, top_k, mode)
        return self._prepare(payload, top_k, mode)

    def _prepare(self, payload: InferRequest, top_k: int, mode: str) -> Prepared:
        images = self.drawings(payload)
        blank = np.zeros(len(images), dtype=bool)
        rows, geometry = [], []
        for index, image in enumerate(images):
            try:
                row, frame = normalize_with_geometry(image)
                rows.append(row)
                geometry.append(frame.vector())
            except BlankImageError:
                blank[index] = True
            except ImageError as exc:
                raise bad_input("not_an_image", f"image {index}: {exc}") from None
        batch = np.stack(rows)[:, None] if rows else np.zeros((0, *INPUT_SHAPE), np.float32)
        frames = np.stack(geometry) if geometry else np.zeros((0, GEOMETRY_SIZE), np.float32)
        NOTHING_DRAWN.inc(int(blank.sum()))
        return Prepared(
            payload,
            batch.astype(np.float32, copy=False),
            frames.astype(np.float32),
            blank,
            top_k,
            mode,
        )

    async def warm_up(self, timeout_s: float = WARM_UP_TIMEOUT_S) -> float | None:
        """Pay the first request's costs at start-up: one drawing through decoding (Pillow's
        PNG plugin), normalisation, the predictor hop (its connection: a gRPC channel's HTTP/2
        set-up) and the answer's building, counted in no metric. Returns its seconds, or None
        when the predictor did not answer in `timeout_s` (serving starts anyway)."""
        from PIL import Image, ImageDraw

        start = time.perf_counter()
        canvas = Image.new("L", (CANVAS_SIDE, CANVAS_SIDE), 255)
        ImageDraw.Draw(canvas).line([(140, 60), (140, 220)], fill=0, width=BRUSH_WIDTH)
        buffer = io.BytesIO()
        canvas.save(buffer, format="PNG")
        images = from_bytes_tensor([buffer.getvalue()], self.limits)
        row, frame = normalize_with_geometry(images[0])
        batch, geometry = row[None, None].astype(np.float32), frame.vector()[None]
        try:
            logits = await asyncio.wait_for(
                self.client.infer(batch, geometry.astype(np.float32)), timeout_s
            )
        except Exception as exc:  # down, slow or odd: serving starts all the same
            log.warning("warm-up: the predictor did not answer (%r); serving cold", exc)
            return None
        probs = probabilities(logits[LABEL_LOGITS], DEFAULT_MODE)
        top = ranked(probs, self.top_k, DEFAULT_MODE)
        alternatives(probs, DEFAULT_MODE)
        output(LABEL, LABELS[top], "BYTES")
        output(PROBABILITY, np.take_along_axis(probs, top, axis=1), "FP32")
        self.version = str(logits.get(MODEL_VERSION) or self.version)
        return time.perf_counter() - start

    async def predict(self, payload: Prepared, headers: dict[str, str] | None = None) -> Prepared:
        """Ask the predictor for the inked images' logits (skipped when all are blank)."""
        if len(payload.batch):
            try:
                payload.logits = await self.client.infer(payload.batch, payload.geometry)
                self.version = str(payload.logits.get(MODEL_VERSION) or self.version)
            except PredictorUnavailable as exc:
                raise PredictorDown(self.name, f"Predictor unavailable: {exc}") from None
            except PredictorError as exc:
                raise InferenceError(f"predictor error: {exc}") from None
        return payload

    def postprocess(self, result: Prepared, headers: dict[str, str] | None = None) -> InferResponse:
        """Top-k characters of the request's mode with probabilities, uppercase probability,
        case flag, status and twin alternative. Ranks beyond the mode's class count (top_k 5
        in digits mode: 10 classes, fine; top_k 12: two empty) are empty with probability 0."""
        n, k, blank = len(result.blank), result.top_k, result.blank
        labels = np.full((n, k), b"", dtype=object)
        probability = np.zeros((n, k), dtype=np.float32)
        uppercase = np.zeros(n, dtype=np.float32)
        case_known = np.zeros(n, dtype=bool)
        alternative = np.full(n, b"", dtype=object)
        if len(result.batch):
            probs = probabilities(result.logits[LABEL_LOGITS], result.mode)
            top = ranked(probs, k, result.mode)
            inked = ~blank
            labels[inked] = LABELS[top]
            found = np.take_along_axis(probs, np.where(top == NO_CLASS, 0, top), axis=1)
            probability[inked] = np.where(top == NO_CLASS, 0.0, found)
            uppercase[inked] = sigmoid(result.logits[UPPERCASE_LOGIT][:, 0])
            case_known[inked] = HAS_CASE[top[:, 0]]
            alternative[inked] = LABELS[alternatives(probs, result.mode)]
            for index, p in zip(top[:, 0], probability[inked, 0], strict=True):
                PREDICTIONS.labels(character=CLASSES[index]).inc()
                TOP1.observe(float(p))
        status = np.where(blank, STATUS_BLANK.encode(), STATUS_OK.encode()).astype(object)
        outputs = [
            output(LABEL, labels, "BYTES"),
            output(PROBABILITY, probability, "FP32"),
            output(UPPERCASE_PROBABILITY, uppercase, "FP32"),
            output(CASE_KNOWN, case_known, "BOOL"),
            output(STATUS, status, "BYTES"),
            output(ALTERNATIVE, alternative, "BYTES"),
        ]
        if asked_for(result.request, MODEL_INPUT):  # optional: other requests pay nothing
            seen = np.zeros((n, *INPUT_SHAPE[1:]), dtype=np.float32)
            seen[~blank] = result.batch[:, 0]
            outputs.append(output(MODEL_INPUT, seen, "FP32"))
        version = str((result.logits or {}).get(MODEL_VERSION) or self.version)
        return response(result.request, self.name, outputs, version)
