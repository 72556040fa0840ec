"""Load the prepared images with their split, as tensors ready for training and evaluation."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pipelines.common import StageError
from pipelines.prepare import read_index


@dataclass
class Dataset:
    """One split: model inputs and targets, row-aligned."""

    images: torch.Tensor  # float32 [N, 1, 28, 28]
    labels: torch.Tensor  # int64 [N], class index
    uppercase: torch.Tensor  # int64 [N]: 1, 0, or -1 when case is unknown
    rows: list[dict]  # the index.csv rows (id, source, file, item, label, ...)

    def __len__(self) -> int:
        return len(self.rows)

    def subset(self, mask: torch.Tensor) -> Dataset:
        """Rows where `mask` (bool [N]) is true."""
        keep = torch.nonzero(mask).flatten()
        return Dataset(
            self.images[keep],
            self.labels[keep],
            self.uppercase[keep],
            [self.rows[i] for i in keep.tolist()],
        )


def load_splits(prepared: str | Path, split_dir: str | Path) -> dict[str, Dataset]:
    """Every split named in split.csv, as a Dataset.

    Raises:
        StageError: a file is missing or the split does not match the prepared index.
    """
    prepared, split_dir = Path(prepared), Path(split_dir)
    rows = read_index(prepared)
    split_file = split_dir / "split.csv"
    if not split_file.is_file():
        raise StageError(f"split file not found: {split_file} (run the split stage)")
    with split_file.open(newline="", encoding="utf-8") as f:
        assignment = {r["id"]: r["split"] for r in csv.DictReader(f)}
    missing = [r["id"] for r in rows if r["id"] not in assignment]
    if missing:
        raise StageError(
            f"{split_file}: {len(missing)} prepared images have no split, "
            f"e.g. {missing[0]}; re-run the split stage"
        )
    images = torch.from_numpy(np.load(prepared / "images.npy"))[:, None]
    labels = torch.tensor([r["class_index"] for r in rows], dtype=torch.int64)
    upper = torch.tensor([r["uppercase"] for r in rows], dtype=torch.int64)
    full = Dataset(images, labels, upper, rows)
    names = sorted(set(assignment.values()))
    return {
        name: full.subset(torch.tensor([assignment[r["id"]] == name for r in rows]))
        for name in names
    }
