"""The KServe predictor: v2 tensor `image` [N,1,28,28] in, the CNN's two logit tensors out.

It is deliberately thin. Images, top-k and probabilities are the transformer's job; the
predictor validates one FP32 tensor, runs one forward pass per request under
`torch.inference_mode()`, and returns raw logits (so clients can calibrate or ensemble them).

Tensors (also served as v2 model metadata):
  input  `image`           FP32 [N, 1, 28, 28]  white ink on black in [0, 1] (`bukva.preprocess`)
  output `label_logits`    FP32 [N, 43]         class order of `bukva.alphabet.CLASSES`
  output `uppercase_logit` FP32 [N, 1]          sigmoid > 0.5 means uppercase
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import numpy as np
import torch
from kserve import InferOutput, InferRequest, InferResponse, Model
from kserve.errors import InvalidInput
from prometheus_client import Counter, Histogram

from bukva.alphabet import CLASSES, IMAGE_SIZE, NUM_CLASSES
from model import network

INPUT = "image"
LABEL_LOGITS = "label_logits"
UPPERCASE_LOGIT = "uppercase_logit"
DEFAULT_MAX_BATCH = 256

PREDICTIONS = Counter(
    "bukva_predictor_predictions_total",
    "Top-1 class of each image the predictor scored",
    ["character"],
)
TOP1 = Histogram(
    "bukva_predictor_top1_probability",
    "Softmax probability of the predictor's top-1 class",
    buckets=(0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0),
)
INVALID = Counter(
    "bukva_predictor_invalid_input_total",
    "Requests the predictor rejected as bad input",
    ["reason"],
)
BATCH = Histogram(
    "bukva_predictor_batch_size",
    "Images per predictor request",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)


def tensor(name: str, array: np.ndarray) -> InferOutput:
    """An FP32 output holding raw bytes: KServe then encodes it for JSON, binary REST or gRPC
    alike (an output holding a numpy array trips KServe 0.21's gRPC encoder)."""
    output = InferOutput(name, list(array.shape), "FP32")
    output.set_data_from_numpy(np.ascontiguousarray(array, dtype=np.float32), binary_data=True)
    return output


def invalid(reason: str, message: str) -> InvalidInput:
    """Count a rejected request and build the 400 / INVALID_ARGUMENT error for it."""
    INVALID.labels(reason=reason).inc()
    return InvalidInput(message)


def optimized(net: network.BukvaNet) -> torch.nn.Module:
    """The network frozen with conv+batch-norm folded and oneDNN kernels
    (`torch.jit.optimize_for_inference`): about 40% less CPU per image than eager mode here,
    with logits equal to eager's within 1e-7. Falls back to eager mode if TorchScript fails."""
    try:
        with torch.no_grad():
            return torch.jit.optimize_for_inference(torch.jit.script(net.eval()))
    except Exception as exc:  # TorchScript raises many types; eager mode is always correct
        logging.getLogger("kserve").warning("serving in eager mode; TorchScript failed: %s", exc)
        return net


class BukvaPredictor(Model):
    """Serves one BukvaNet from a model folder, loaded once at start-up."""

    def __init__(
        self,
        name: str,
        model_dir: str | Path,
        max_batch_size: int = DEFAULT_MAX_BATCH,
        optimize: bool = True,
    ):
        super().__init__(name)
        self.model_dir = Path(model_dir)
        self.max_batch_size = max_batch_size
        self.optimize = optimize
        self.net: torch.nn.Module | None = None

    def load(self) -> bool:
        """Load weights and config, optimise for CPU inference, warm up, then report ready.

        Raises:
            FileNotFoundError, ValueError: from `model.network.load`, naming the folder.
        """
        net = network.load(self.model_dir)
        self.net = optimized(net) if self.optimize else net
        with torch.inference_mode():
            for n in (1, 1, 2):  # TorchScript specialises over its first calls
                self.net(torch.zeros(n, 1, IMAGE_SIZE, IMAGE_SIZE))
        self.ready = True
        return self.ready

    def get_input_types(self) -> list[dict]:
        return [{"name": INPUT, "datatype": "FP32", "shape": [-1, 1, IMAGE_SIZE, IMAGE_SIZE]}]

    def get_output_types(self) -> list[dict]:
        return [
            {"name": LABEL_LOGITS, "datatype": "FP32", "shape": [-1, NUM_CLASSES]},
            {"name": UPPERCASE_LOGIT, "datatype": "FP32", "shape": [-1, 1]},
        ]

    def batch_from(self, request: InferRequest) -> np.ndarray:
        """The request's `image` tensor as float32 [N,1,28,28], or InvalidInput saying why."""
        names = [i.name for i in request.inputs]
        if names != [INPUT]:
            raise invalid("input_name", f"expected exactly one input named '{INPUT}', got {names}")
        tensor = request.inputs[0]
        if tensor.datatype != "FP32":
            raise invalid("datatype", f"input '{INPUT}' must be FP32, got {tensor.datatype}")
        shape = [int(s) for s in tensor.shape]
        if len(shape) != 4 or shape[1:] != [1, IMAGE_SIZE, IMAGE_SIZE] or shape[0] < 1:
            raise invalid(
                "shape",
                f"input '{INPUT}' must have shape [N,1,{IMAGE_SIZE},{IMAGE_SIZE}], got {shape}",
            )
        if shape[0] > self.max_batch_size:
            raise invalid(
                "batch_size", f"batch of {shape[0]} images; the limit is {self.max_batch_size}"
            )
        try:
            batch = np.asarray(tensor.as_numpy(), dtype=np.float32)
        except (ValueError, TypeError) as exc:
            raise invalid(
                "data", f"input '{INPUT}' data does not match shape {shape}: {exc}"
            ) from None
        if not np.isfinite(batch).all():
            raise invalid("data", f"input '{INPUT}' contains NaN or infinite values")
        # torch wants a writable array; raw request bytes are read-only (copying is cheap)
        return np.require(batch.reshape(shape), np.float32, ["C_CONTIGUOUS", "WRITEABLE"])

    def predict(
        self, payload: InferRequest, headers: dict[str, str] | None = None
    ) -> InferResponse:
        """One forward pass for the whole batch.

        Synchronous on purpose: a forward pass of a small batch takes about a millisecond, less
        than handing it to a thread would cost, and a CPU-bound step gains nothing from await.
        """
        batch = self.batch_from(payload)
        with torch.inference_mode():
            label_logits, case_logit = self.net(torch.from_numpy(batch))
        labels = label_logits.numpy()
        self._observe(labels)
        outputs = [tensor(LABEL_LOGITS, labels), tensor(UPPERCASE_LOGIT, case_logit.numpy())]
        return InferResponse(
            response_id=payload.id or str(uuid.uuid4()),
            model_name=self.name,
            infer_outputs=outputs,
            use_binary_outputs=payload.use_binary_outputs,
            requested_outputs=payload.request_outputs,
        )

    @staticmethod
    def _observe(labels: np.ndarray) -> None:
        """Domain metrics: batch size, top-1 class and its softmax probability."""
        BATCH.observe(len(labels))
        shifted = np.exp(labels - labels.max(axis=1, keepdims=True))
        top1 = shifted.max(axis=1) / shifted.sum(axis=1)
        for index, probability in zip(labels.argmax(axis=1), top1, strict=True):
            PREDICTIONS.labels(character=CLASSES[int(index)]).inc()
            TOP1.observe(float(probability))
