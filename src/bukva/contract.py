"""The serving contract, defined once: names, tensors, dtypes, shapes and class counts.

Standard library only. Training, registration, both KServe servers, their clients and the
app read these names from here instead of spelling them; `docs/architecture.md` ("Contracts")
describes the same values in prose. The class list itself is `bukva.alphabet`.
"""

from __future__ import annotations

from dataclasses import dataclass

from bukva.alphabet import CLASSES, DEFAULT_MODE, DIGITS, IMAGE_SIZE, MODES, NUM_CLASSES

MODEL_NAME = "bukva"  # the v2 model name both KServe servers expose
# The registry's names (registered model, alias, tags) are `bukva.registry`'s.

NUM_DIGITS = len(DIGITS)  # class indices 0..NUM_DIGITS-1 are the digits
INPUT_SHAPE = (1, IMAGE_SIZE, IMAGE_SIZE)  # one image as the network sees it

# Model files: a folder with safetensors weights and a JSON config, never a pickle.
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
ONNX_FILE = "model.onnx"  # the same network for ONNX Runtime, exported at registration
ONNX_WEIGHTS_SHA = "weights_sha256"  # model.onnx metadata: sha256 of the weights it holds

# Tensor names. The input is `image` on both servers (different encodings).
INPUT = "image"
# The transformer's other input, canvas RGBA pixels (v2 metadata names must be unique, so the
# pixel form has its own name; `image` with datatype UINT8 is still accepted as the same).
CANVAS_INPUT = "canvas"
# The predictor's second input: each drawing's geometry in its frame, float32 [N, 5] in
# `bukva.geometry.FEATURES` order (all zeros: unknown). The transformer computes it with
# `bukva.preprocess.normalize_with_geometry`; a request without it means "unknown" for all.
GEOMETRY = "geometry"
GEOMETRY_SIZE = 5  # len(bukva.geometry.FEATURES); a unit test keeps the two equal
LABEL_LOGITS = "label_logits"
UPPERCASE_LOGIT = "uppercase_logit"
LABEL = "label"
PROBABILITY = "probability"
UPPERCASE_PROBABILITY = "uppercase_probability"
CASE_KNOWN = "case_known"
STATUS = "status"
STATUS_OK, STATUS_BLANK = "ok", "blank"  # values of `status`
# The letter or digit the top-1 is also likely to be (its twin, `bukva.alphabet.TWINS`), or ""
# when the answer is not in doubt between a digit and a letter (`bukva.reading.alternatives`).
ALTERNATIVE = "alternative"
# An optional transformer output, made only for a request that names it among its v2 `outputs`
# (REST) or `ModelInferRequest.outputs` (gRPC), so other clients pay nothing for it: each
# drawing as the model saw it, float32 [N, 28, 28] (0 paper, 1 ink; all zeros for a blank one).
# The app shows it as its preview.
MODEL_INPUT = "model_input"

# Request-level v2 parameters of the transformer (REST `parameters`, gRPC
# `ModelInferRequest.parameters`): `mode`, one of `MODES` (default `DEFAULT_MODE`), restricts
# the answer to that class set; `top_k`, 1..NUM_CLASSES, how many characters per image.
MODE_PARAMETER = "mode"
TOP_K_PARAMETER = "top_k"


@dataclass(frozen=True)
class Tensor:
    """One v2 tensor of the contract; -1 in `shape` is the batch (or any) dimension."""

    name: str
    datatype: str  # v2 datatype: FP32, BYTES, UINT8, BOOL
    shape: tuple[int, ...]

    def metadata(self) -> dict:
        """The tensor as v2 model metadata (`get_input_types` / `get_output_types`)."""
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


PREDICTOR_INPUT = Tensor(INPUT, "FP32", (-1, *INPUT_SHAPE))
GEOMETRY_INPUT = Tensor(GEOMETRY, "FP32", (-1, GEOMETRY_SIZE))
PREDICTOR_INPUTS = (PREDICTOR_INPUT, GEOMETRY_INPUT)
PREDICTOR_OUTPUTS = (
    Tensor(LABEL_LOGITS, "FP32", (-1, NUM_CLASSES)),
    Tensor(UPPERCASE_LOGIT, "FP32", (-1, 1)),
)
TRANSFORMER_INPUTS = (
    Tensor(INPUT, "BYTES", (-1,)),  # PNG/JPEG, raw or base64
    Tensor(CANVAS_INPUT, "UINT8", (-1, -1, -1, 4)),  # canvas RGBA; a request sends one of the two
)


def transformer_outputs(top_k: int) -> tuple[Tensor, ...]:
    """The transformer's outputs for `top_k` characters per image (its v2 metadata); the last,
    `MODEL_INPUT`, only when a request asks for it."""
    return (
        Tensor(LABEL, "BYTES", (-1, top_k)),
        Tensor(PROBABILITY, "FP32", (-1, top_k)),
        Tensor(UPPERCASE_PROBABILITY, "FP32", (-1,)),
        Tensor(CASE_KNOWN, "BOOL", (-1,)),
        Tensor(STATUS, "BYTES", (-1,)),
        Tensor(ALTERNATIVE, "BYTES", (-1,)),
        Tensor(MODEL_INPUT, "FP32", (-1, IMAGE_SIZE, IMAGE_SIZE)),
    )


def infer_path(model_name: str = MODEL_NAME) -> str:
    """The v2 REST inference path of a model."""
    return f"/v2/models/{model_name}/infer"


__all__ = [
    "ALTERNATIVE",
    "CANVAS_INPUT",
    "CASE_KNOWN",
    "CLASSES",
    "CONFIG_FILE",
    "DEFAULT_MODE",
    "GEOMETRY",
    "GEOMETRY_INPUT",
    "GEOMETRY_SIZE",
    "INPUT",
    "INPUT_SHAPE",
    "LABEL",
    "LABEL_LOGITS",
    "MODEL_INPUT",
    "MODEL_NAME",
    "MODES",
    "MODE_PARAMETER",
    "NUM_CLASSES",
    "NUM_DIGITS",
    "ONNX_FILE",
    "ONNX_WEIGHTS_SHA",
    "PREDICTOR_INPUT",
    "PREDICTOR_INPUTS",
    "PREDICTOR_OUTPUTS",
    "PROBABILITY",
    "STATUS",
    "STATUS_BLANK",
    "STATUS_OK",
    "TOP_K_PARAMETER",
    "TRANSFORMER_INPUTS",
    "UPPERCASE_LOGIT",
    "UPPERCASE_PROBABILITY",
    "WEIGHTS_FILE",
    "Tensor",
    "infer_path",
    "transformer_outputs",
]
