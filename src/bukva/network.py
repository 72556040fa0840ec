"""The multi-output CNN: a 43-way label head and an uppercase head on one shared body.

Model files are a safetensors weights file plus a JSON config, never a pickled class, so
they load anywhere with `load(directory)`. Training, evaluation and the predictor all import
this one module. It needs the `torch` extra (torch, safetensors); the rest of the core does not.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from bukva.alphabet import CLASSES, NUM_CLASSES
from bukva.contract import CONFIG_FILE, INPUT_SHAPE, WEIGHTS_FILE
from bukva.geometry import FEATURES

__all__ = ["CONFIG_FILE", "WEIGHTS_FILE", "BukvaNet", "ModelConfig", "load", "load_config", "save"]


@dataclass(frozen=True)
class ModelConfig:
    """Hyperparameters that define the network's shape."""

    width: int = 32  # channels of the first block; later blocks double it
    hidden: int = 256  # size of the shared embedding the heads read
    # Side of the grid the last feature map is averaged onto before the embedding: 1 = one
    # global average (where a stroke is is lost: Ж and х, П and о look alike), 3 = a 3x3 grid
    # that keeps top/middle/bottom and left/centre/right apart. Models written before it: 1.
    pool: int = 1
    dropout: float = 0.3
    num_classes: int = NUM_CLASSES
    classes: tuple[str, ...] = field(default=CLASSES)
    # Length of the geometry input the case head reads (`bukva.geometry.FEATURES`); 0 for a
    # model without one (files written before it existed), whose case head reads the image only.
    geometry: int = len(FEATURES)
    case_hidden: int = 64  # hidden units of the case head when it reads geometry


class Linear(nn.Linear):
    """`nn.Linear` (same parameters, same state_dict) whose product runs as a 1x1 convolution.

    Why: torch hands a linear layer's matrix product to MKL's sgemm, and MKL picks its code by
    the CPU's vendor: even under `MKL_CBWR=COMPATIBLE,STRICT` an AMD EPYC and an Intel Xeon
    trained other weights from the same commit (docs/pipeline.md, "The same model on every
    machine"). A 1x1 convolution runs on oneDNN's convolution kernels, the ones the body
    already uses, whose summation order depends only on the shapes and the instruction-set cap
    (`pipelines/cpu.py`), not on the vendor or the cache sizes. Training and evaluation then
    call no MKL routine at all (tests/unit/test_kernels.py). Same speed here (the layers are
    small). The ONNX export keeps the plain `Gemm`, which is what ONNX Runtime serves.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling():
            return super().forward(x)
        lead = x.shape[:-1]
        y = nn.functional.conv2d(
            x.reshape(-1, self.in_features, 1, 1),
            self.weight.reshape(self.out_features, self.in_features, 1, 1),
            self.bias,
        )
        return y.reshape(*lead, self.out_features)


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class BukvaNet(nn.Module):
    """Inputs: image [N, 1, 28, 28] in [0, 1] and geometry [N, 5] (`bukva.geometry`);
    outputs label logits [N, 43] and case logit [N, 1].

    The label head reads the image's embedding only, never the geometry: what a character is
    does not depend on how big it was drawn, and unknown geometry (MNIST) must not teach it
    "no geometry means digit". The case head reads the embedding and the geometry, because in
    handwriting case is mostly size (с/С, о/О, к/К).
    """

    def __init__(self, config: ModelConfig = ModelConfig()):
        super().__init__()
        self.config = config
        w = config.width
        self.body = nn.Sequential(
            _block(1, w),  # N, w, 28, 28
            nn.MaxPool2d(2),  # N, w, 14, 14
            _block(w, 2 * w),  # N, 2w, 14, 14
            nn.MaxPool2d(2),  # N, 2w, 7, 7
            _block(2 * w, 4 * w),  # N, 4w, 7, 7
            nn.AdaptiveAvgPool2d(config.pool),  # N, 4w, pool, pool
            nn.Flatten(),  # N, 4w * pool^2
            Linear(4 * w * config.pool**2, config.hidden),  # N, hidden
            nn.BatchNorm1d(config.hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(config.dropout),
        )
        self.label_head = Linear(config.hidden, config.num_classes)  # N, 43
        if config.geometry:
            self.case_head: nn.Module = nn.Sequential(
                Linear(config.hidden + config.geometry, config.case_hidden),
                nn.ReLU(inplace=True),
                Linear(config.case_hidden, 1),
            )  # N, 1
        else:
            self.case_head = Linear(config.hidden, 1)  # N, 1
        self.geometry_size = config.geometry

    def forward(
        self, x: torch.Tensor, geometry: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`geometry` None means unknown for every image (all zeros, `Geometry.vector()`)."""
        z = self.body(x - 0.5)  # N, hidden; centre the 0-1 input
        if self.geometry_size == 0:
            return self.label_head(z), self.case_head(z)
        if geometry is None:
            geometry = torch.zeros(x.shape[0], self.geometry_size, dtype=z.dtype, device=z.device)
        return self.label_head(z), self.case_head(torch.cat([z, geometry], dim=1))


def save(model: BukvaNet, directory: str | Path) -> Path:
    """Write weights (safetensors) and config (JSON) into `directory`; return it."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(out / WEIGHTS_FILE))
    config = asdict(model.config) | {"input_shape": list(INPUT_SHAPE)}
    (out / CONFIG_FILE).write_text(json.dumps(config, ensure_ascii=False, indent=2) + "\n")
    return out


def load_config(directory: str | Path) -> ModelConfig:
    """Read the ModelConfig saved beside the weights."""
    raw = json.loads((Path(directory) / CONFIG_FILE).read_text())
    keys = ("width", "hidden", "dropout", "pool", "num_classes", "case_hidden")
    known = {k: raw[k] for k in keys if k in raw}
    known["geometry"] = int(raw.get("geometry", 0))  # absent: a model from before geometry
    classes = tuple(raw.get("classes", CLASSES))
    if classes != CLASSES:
        raise ValueError(f"{directory}: model classes differ from bukva.alphabet.CLASSES")
    return ModelConfig(**known, classes=classes)


def load(directory: str | Path) -> BukvaNet:
    """Load a model saved by `save`, in eval mode on the CPU.

    Raises:
        FileNotFoundError: naming the missing file.
        ValueError: the files do not describe a bukva model.
    """
    directory = Path(directory)
    for name in (WEIGHTS_FILE, CONFIG_FILE):
        if not (directory / name).is_file():
            raise FileNotFoundError(f"no {name} in model directory {directory}")
    model = BukvaNet(load_config(directory))
    model.load_state_dict(load_file(str(directory / WEIGHTS_FILE)))
    return model.eval()


def export_onnx(model: BukvaNet, path: str | Path, metadata: dict[str, str] | None = None) -> Path:
    """Write `model` as one self-contained ONNX file for ONNX Runtime (the predictor).

    Generic over the network's inputs: the graph takes the contract's `PREDICTOR_INPUTS` that
    `forward` accepts, in its argument order and by their contract names, each with a dynamic
    batch dimension, and returns `PREDICTOR_OUTPUTS` by name. `metadata` goes into the file's
    metadata properties. torch's dynamo exporter (the TorchScript one is deprecated) needs the
    `onnxscript` package.
    """
    import inspect

    from bukva.contract import PREDICTOR_INPUTS, PREDICTOR_OUTPUTS

    inputs = PREDICTOR_INPUTS[: len(inspect.signature(model.forward).parameters)]
    batch = torch.export.Dim("batch", min=1, max=4096)
    examples = tuple(torch.zeros(2, *t.shape[1:]) for t in inputs)  # 2: batch stays symbolic
    program = torch.onnx.export(
        model.eval(),
        examples,
        input_names=[t.name for t in inputs],
        output_names=[t.name for t in PREDICTOR_OUTPUTS],
        dynamic_shapes=tuple({0: batch} for _ in inputs),
        dynamo=True,
        verbose=False,
    )
    program.model.metadata_props.update(metadata or {})
    program.save(str(path), external_data=False)  # weights inside: a few MB
    return Path(path)
