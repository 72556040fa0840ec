"""What both servers answer: output tensors, the InferResponse, v2 metadata, and the bits of
the answer their metrics share."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import numpy as np
from kserve import InferOutput, InferRequest, InferResponse
from kserve.utils.numpy_codec import to_np_dtype

from bukva.contract import Tensor

TOP1_BUCKETS = (0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)  # top-1 probability histograms


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of [N, C] logits (numerically stable)."""
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def output(name: str, array: np.ndarray, datatype: str) -> InferOutput:
    """An output tensor of any v2 datatype (numbers are cast to its dtype; BYTES take an object
    array of bytes), holding raw bytes: KServe then encodes it for JSON, binary REST or gRPC
    alike.

    Raw bytes, not the array: KServe's gRPC encoder tests an output's data for truth
    (`if ... and infer_output.data and ...` in `InferResponse.to_grpc`), which a numpy array of
    more than one element refuses with a ValueError whenever the answer is binary.
    https://github.com/kserve/kserve/blob/v0.20.0/python/kserve/kserve/protocol/infer_type.py
    (`tests/serving/test_kserve_upstream.py` fails once it takes arrays.)
    """
    if datatype != "BYTES":
        array = np.ascontiguousarray(array, dtype=to_np_dtype(datatype))
    tensor = InferOutput(name, list(array.shape), datatype)
    tensor.set_data_from_numpy(array, binary_data=True)
    return tensor


def response(
    request: InferRequest,
    model_name: str,
    outputs: list[InferOutput],
    model_version: str | None = None,
) -> InferResponse:
    """The answer to `request`: its id (or a new one), the model version that answered (v2
    `model_version`), its binary and requested-output wishes."""
    return InferResponse(
        response_id=request.id or str(uuid.uuid4()),
        model_name=model_name,
        model_version=model_version or None,
        infer_outputs=outputs,
        use_binary_outputs=request.use_binary_outputs,
        requested_outputs=request.request_outputs,
    )


def metadata(tensors: Sequence[Tensor]) -> list[dict]:
    """Contract tensors as v2 model metadata."""
    return [t.metadata() for t in tensors]
