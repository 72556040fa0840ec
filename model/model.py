"""The KServe predictor: v2 tensors `image` [N,1,28,28] and `geometry` [N,5] in, the CNN's two
logit tensors out.

It is deliberately thin. Images, top-k and probabilities are the transformer's job; the
predictor validates its FP32 tensors, runs one forward pass per request (ONNX Runtime by
default, `model.runtime`), and returns raw logits (so clients can calibrate or ensemble them).
`load()` fetches the model (`model.source`), as KServe's own model servers do.

Tensors (`bukva.contract`, also served as v2 model metadata):
  input  `image`           FP32 [N, 1, 28, 28]  white ink on black in [0, 1] (`bukva.preprocess`)
  input  `geometry`        FP32 [N, 5]          optional; `bukva.geometry` (absent: unknown)
  output `label_logits`    FP32 [N, 43]         class order of `bukva.alphabet.CLASSES`
  output `uppercase_logit` FP32 [N, 1]          sigmoid > 0.5 means uppercase
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from kserve import InferRequest, InferResponse, Model
from kserve.errors import InvalidInput
from prometheus_client import Counter, Histogram, Info

from bukva.alphabet import CLASSES, IMAGE_SIZE
from bukva.contract import (
    GEOMETRY,
    GEOMETRY_SIZE,
    INPUT,
    INPUT_SHAPE,
    LABEL_LOGITS,
    PREDICTOR_INPUTS,
    PREDICTOR_OUTPUTS,
    UPPERCASE_LOGIT,
)
from bukva.serving import TOP1_BUCKETS, invalid_input, metadata, output, response, softmax
from model.runtime import Runtime, load_runtime
from model.source import pin, resolve, served_version

DEFAULT_MAX_BATCH = 256

PREDICTIONS = Counter(
    "bukva_predictor_predictions_total",
    "Top-1 class of each image the predictor scored",
    ["character"],
)
TOP1 = Histogram(
    "bukva_predictor_top1_probability",
    "Softmax probability of the predictor's top-1 class",
    buckets=TOP1_BUCKETS,
)
INVALID = Counter(
    "bukva_predictor_invalid_input_total",
    "Requests the predictor rejected as bad input",
    ["reason"],
)
MODEL = Info(
    "bukva_predictor_model",
    "The model this predictor serves: its registry version and where it came from",
)
BATCH = Histogram(
    "bukva_predictor_batch_size",
    "Images per predictor request",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)


def invalid(reason: str, message: str) -> InvalidInput:
    """Count a rejected request and build the 400 / INVALID_ARGUMENT error for it."""
    return invalid_input(INVALID, reason, message)


class BukvaPredictor(Model):
    """Serves one BukvaNet, fetched and loaded once in `load()`."""

    def __init__(
        self,
        name: str,
        model_uri: str | Path,
        max_batch_size: int = DEFAULT_MAX_BATCH,
        runtime: str = "onnx",
        tracking_uri: str | None = None,
        threads: int = 1,
        model_version: str = "",
    ):
        super().__init__(name)
        self.model_uri = str(model_uri)
        self.tracking_uri = tracking_uri
        self.max_batch_size = max_batch_size
        self.runtime, self.threads = runtime, threads
        self.net: Runtime | None = None
        self.given_version = model_version  # the version it is deployed with, if said
        self.version = ""  # the version it serves (`model.source.served_version`)

    def load(self) -> bool:
        """Fetch the model files, load them into the runtime, warm up, report ready.

        Raises:
            ModelSourceError: from `model.source`, naming the URI (or a version that
                contradicts it).
            FileNotFoundError, ValueError: from `bukva.network.load`, naming the folder.
        """
        tracking_uri = self.tracking_uri
        if tracking_uri is None:
            from bukva.settings import Settings

            tracking_uri = Settings.from_env().tracking_uri
        uri, pinned = pin(self.model_uri, tracking_uri, self.given_version)
        # A download (registry, s3://) is needed only while loading: the runtime then holds
        # the network in memory, and the folder goes (a predictor started 100 times used to
        # leave 100 copies in /tmp). A local folder is read where it is.
        with tempfile.TemporaryDirectory(prefix="bukva-model-") as download:
            model_dir = resolve(uri, tracking_uri, download)
            self.version = served_version(self.given_version, pinned, model_dir)
            self.net = load_runtime(self.runtime, model_dir, self.threads)
        MODEL.info({"version": self.version, "source": self.model_uri})
        for n in (1, 2):  # first calls allocate; answer the first request at full speed
            self.net(self.feeds(np.zeros((n, *INPUT_SHAPE), np.float32), None))
        self.ready = True
        return self.ready

    async def served_versions(self) -> list[str]:
        """The v2 metadata's `versions` (`bukva.serving.VersionedDataPlane`)."""
        return [self.version]

    def get_input_types(self) -> list[dict]:
        return metadata(PREDICTOR_INPUTS)

    def get_output_types(self) -> list[dict]:
        return metadata(PREDICTOR_OUTPUTS)

    @staticmethod
    def _array(tensor, shape: list[int]) -> np.ndarray:
        try:
            array = np.asarray(tensor.as_numpy(), dtype=np.float32)
        except (ValueError, TypeError) as exc:
            raise invalid(
                "data", f"input '{tensor.name}' data does not match shape {shape}: {exc}"
            ) from None
        if not np.isfinite(array).all():
            raise invalid("data", f"input '{tensor.name}' contains NaN or infinite values")
        # torch wants a writable array; raw request bytes are read-only (copying is cheap)
        return np.require(array.reshape(shape), np.float32, ["C_CONTIGUOUS", "WRITEABLE"])

    def batch_from(self, request: InferRequest) -> tuple[np.ndarray, np.ndarray | None]:
        """The request's `image` tensor as float32 [N,1,28,28] and its `geometry` [N,5] (None
        when the request has none: unknown), or InvalidInput saying why."""
        names = [i.name for i in request.inputs]
        if sorted(names) not in ([INPUT], sorted([INPUT, GEOMETRY])):
            raise invalid(
                "input_name",
                f"expected an input named '{INPUT}' and optionally '{GEOMETRY}', got {names}",
            )
        tensors = {i.name: i for i in request.inputs}
        for tensor in tensors.values():
            if tensor.datatype != "FP32":
                raise invalid(
                    "datatype", f"input '{tensor.name}' must be FP32, got {tensor.datatype}"
                )
        shape = [int(s) for s in tensors[INPUT].shape]
        if len(shape) != 4 or shape[1:] != list(INPUT_SHAPE) or shape[0] < 1:
            raise invalid(
                "shape",
                f"input '{INPUT}' must have shape [N,1,{IMAGE_SIZE},{IMAGE_SIZE}], got {shape}",
            )
        if shape[0] > self.max_batch_size:
            raise invalid(
                "batch_size", f"batch of {shape[0]} images; the limit is {self.max_batch_size}"
            )
        batch = self._array(tensors[INPUT], shape)
        if GEOMETRY not in tensors:
            return batch, None
        geometry_shape = [int(s) for s in tensors[GEOMETRY].shape]
        if geometry_shape != [shape[0], GEOMETRY_SIZE]:
            raise invalid(
                "shape",
                f"input '{GEOMETRY}' must have shape [{shape[0]},{GEOMETRY_SIZE}] (one row per "
                f"image), got {geometry_shape}",
            )
        return batch, self._array(tensors[GEOMETRY], geometry_shape)

    def predict(
        self, payload: InferRequest, headers: dict[str, str] | None = None
    ) -> InferResponse:
        """One forward pass for the whole batch.

        Synchronous on purpose: a forward pass of a small batch takes about a millisecond, less
        than handing it to a thread would cost, and a CPU-bound step gains nothing from await.
        """
        logits = self.net(self.feeds(*self.batch_from(payload)))
        labels = logits[LABEL_LOGITS]
        self._observe(labels)
        outputs = [
            output(LABEL_LOGITS, labels, "FP32"),
            output(UPPERCASE_LOGIT, logits[UPPERCASE_LOGIT], "FP32"),
        ]
        return response(payload, self.name, outputs, self.version)

    @staticmethod
    def feeds(batch: np.ndarray, geometry: np.ndarray | None) -> dict[str, np.ndarray]:
        """The runtime's inputs by contract name; no geometry means unknown (zeros)."""
        if geometry is None:
            geometry = np.zeros((len(batch), GEOMETRY_SIZE), np.float32)
        return {INPUT: batch, GEOMETRY: geometry}

    @staticmethod
    def _observe(labels: np.ndarray) -> None:
        """Domain metrics: batch size, top-1 class and its softmax probability."""
        BATCH.observe(len(labels))
        top1 = softmax(labels).max(axis=1)
        for index, probability in zip(labels.argmax(axis=1), top1, strict=True):
            PREDICTIONS.labels(character=CLASSES[int(index)]).inc()
            TOP1.observe(float(probability))
