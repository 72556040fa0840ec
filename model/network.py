"""The multi-output CNN: a 43-way label head and an uppercase head on one shared body.

Model files are a safetensors weights file plus a JSON config, never a pickled class, so
they load anywhere with `load(directory)`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from bukva.alphabet import CLASSES, IMAGE_SIZE, NUM_CLASSES

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


@dataclass(frozen=True)
class ModelConfig:
    """Hyperparameters that define the network's shape."""

    width: int = 32  # channels of the first block; later blocks double it
    hidden: int = 256  # size of the shared embedding the heads read
    dropout: float = 0.3
    num_classes: int = NUM_CLASSES
    classes: tuple[str, ...] = field(default=CLASSES)


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
    """Input [N, 1, 28, 28] in [0, 1]; outputs label logits [N, 43] and case logit [N, 1]."""

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
            nn.AdaptiveAvgPool2d(1),  # N, 4w, 1, 1
            nn.Flatten(),  # N, 4w
            nn.Linear(4 * w, config.hidden),  # N, hidden
            nn.BatchNorm1d(config.hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(config.dropout),
        )
        self.label_head = nn.Linear(config.hidden, config.num_classes)  # N, 43
        self.case_head = nn.Linear(config.hidden, 1)  # N, 1

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.body(x - 0.5)  # N, hidden; centre the 0-1 input
        return self.label_head(z), self.case_head(z)


def save(model: BukvaNet, directory: str | Path, extra: dict | None = None) -> Path:
    """Write weights (safetensors) and config (JSON) into `directory`; return it."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(out / WEIGHTS_FILE))
    config = asdict(model.config) | {"input_shape": [1, IMAGE_SIZE, IMAGE_SIZE]}
    if extra:
        config["extra"] = extra
    (out / CONFIG_FILE).write_text(json.dumps(config, ensure_ascii=False, indent=2) + "\n")
    return out


def load_config(directory: str | Path) -> ModelConfig:
    """Read the ModelConfig saved beside the weights."""
    raw = json.loads((Path(directory) / CONFIG_FILE).read_text())
    known = {k: raw[k] for k in ("width", "hidden", "dropout", "num_classes") if k in raw}
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
