"""The data layer: prepared records, the index that lists them, content hashes and splits.

Every stage reads and writes the prepared data through this module, so the file formats live
in one place:

- data/prepared/images.npy: float32 [N, 28, 28], exactly the model input (row i = record i);
- data/prepared/geometry.npy: float32 [N, 5], each image's geometry in its frame
  (`bukva.geometry`; all zeros when unknown), the case head's second input;
- data/prepared/index.csv: one `Record` per image (`INDEX_COLUMNS`);
- data/split/split.csv: the split name of each record id.

It imports no stage module and no data source; torch only inside `load_splits`, so the data
stages (ingest, prepare, split) do not pay for it.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bukva.alphabet import index_of
from pipelines.common import StageError

if TYPE_CHECKING:
    import torch

INDEX_COLUMNS = (
    "id",
    "source",
    "file",
    "item",
    "label",
    "class_index",
    "uppercase",
    "raw_hash",
    "input_hash",
)
SPLITS = ("train", "val", "test")
RAW_MANIFEST = "manifest.json"  # data/raw/manifest.json, written by ingest: a section a source
FEEDBACK_SOURCE = "feedback"  # the feedback store's source name (pipelines.sources.feedback)
PREPARED_DIR = "data/prepared"  # defaults; dvc.yaml's `cmd` names the paths explicitly
SPLIT_DIR = "data/split"


@dataclass(frozen=True)
class Record:
    """One prepared image's row in index.csv."""

    id: str
    source: str  # rukopys | mnist | feedback
    file: str  # raw file, relative to the project root
    item: int  # index inside `file` for multi-image files (MNIST), else 0
    label: str
    class_index: int
    uppercase: int  # 1, 0, or -1 when unknown
    raw_hash: str  # hash of the decoded raw pixels (exact duplicates)
    input_hash: str  # hash of the normalized model input


# What a source's `prepare` returns: records, model inputs and geometry vectors, row-aligned.
Prepared = tuple[list[Record], list[np.ndarray], list[np.ndarray]]


def content_hash(array: np.ndarray) -> str:
    """A short hash of an array's bytes: equal pixels, equal hash (duplicate detection)."""
    return hashlib.sha1(np.ascontiguousarray(array).tobytes()).hexdigest()[:16]


def make_record(
    source: str,
    name: str,
    file: str | Path,
    label: str,
    uppercase: int,
    pixels: np.ndarray,
    model_input: np.ndarray,
    item: int = 0,
) -> Record:
    """The Record of one normalized image: id `source/name`, the label's class index, and the
    content hashes of the raw `pixels` and of the `model_input` made from them."""
    return Record(
        f"{source}/{name}",
        source,
        str(file),
        item,
        label,
        index_of(label),
        uppercase,
        content_hash(pixels),
        content_hash(model_input),
    )


def write_prepared(
    out: Path, records: list[Record], images: list[np.ndarray], geometry: list[np.ndarray]
) -> None:
    """Write images.npy, geometry.npy and index.csv (row i of each is image i)."""
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "images.npy", np.stack(images).astype(np.float32))
    np.save(out / "geometry.npy", np.stack(geometry).reshape(-1, 5).astype(np.float32))
    with (out / "index.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=INDEX_COLUMNS)
        writer.writeheader()
        writer.writerows(asdict(r) for r in records)


def _csv_rows(path: Path, what: str, stage: str) -> list[dict]:
    if not path.is_file():
        raise StageError(f"{what} not found: {path} (run the {stage} stage)")
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def read_index(folder: Path) -> list[dict]:
    """Rows of index.csv with numeric columns as ints.

    Raises:
        StageError: the index does not exist (the prepare stage has not run).
    """
    rows = _csv_rows(folder / "index.csv", "prepared index", "prepare")
    for r in rows:
        for key in ("item", "class_index", "uppercase"):
            r[key] = int(r[key])
    return rows


def write_split(out: Path, ids: Iterable[str], splits: Iterable[str]) -> None:
    """Write split.csv: one (id, split) row per record."""
    out.mkdir(parents=True, exist_ok=True)
    with (out / "split.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "split"])
        writer.writerows(zip(ids, splits, strict=True))


def read_split(split_dir: Path) -> dict[str, str]:
    """Record id -> split name, from split.csv.

    Raises:
        StageError: the file does not exist (the split stage has not run).
    """
    return {r["id"]: r["split"] for r in _csv_rows(split_dir / "split.csv", "split file", "split")}


@dataclass
class Dataset:
    """One split: model inputs and targets, row-aligned."""

    images: torch.Tensor  # float32 [N, 1, 28, 28]
    labels: torch.Tensor  # int64 [N], class index
    uppercase: torch.Tensor  # int64 [N]: 1, 0, or -1 when case is unknown
    rows: list[dict]  # the index.csv rows (id, source, file, item, label, ...)
    geometry: torch.Tensor  # float32 [N, 5] (`bukva.geometry.FEATURES`; zeros: unknown)

    def __len__(self) -> int:
        return len(self.rows)

    def subset(self, mask: torch.Tensor) -> Dataset:
        """Rows where `mask` (bool [N]) is true."""
        import torch

        keep = torch.nonzero(mask).flatten()
        return Dataset(
            self.images[keep],
            self.labels[keep],
            self.uppercase[keep],
            [self.rows[i] for i in keep.tolist()],
            self.geometry[keep],
        )

    def __add__(self, other: Dataset) -> Dataset:
        """Both datasets' rows, this one's first."""
        import torch

        return Dataset(
            torch.cat([self.images, other.images]),
            torch.cat([self.labels, other.labels]),
            torch.cat([self.uppercase, other.uppercase]),
            self.rows + other.rows,
            torch.cat([self.geometry, other.geometry]),
        )


def add_split_arguments(parser: argparse.ArgumentParser) -> None:
    """`--prepared` and `--split`: the folders `load_splits` reads."""
    parser.add_argument("--prepared", default=PREPARED_DIR, help="prepared images and index")
    parser.add_argument("--split", default=SPLIT_DIR, help="split.csv's folder")


def load_splits(prepared: str | Path, split_dir: str | Path) -> dict[str, Dataset]:
    """Every split named in split.csv, as a Dataset.

    Raises:
        StageError: a file is missing or the split does not match the prepared index.
    """
    import torch

    prepared, split_dir = Path(prepared), Path(split_dir)
    rows = read_index(prepared)
    assignment = read_split(split_dir)
    missing = [r["id"] for r in rows if r["id"] not in assignment]
    if missing:
        raise StageError(
            f"{split_dir / 'split.csv'}: {len(missing)} prepared images have no split, "
            f"e.g. {missing[0]}; re-run the split stage"
        )
    full = load_prepared(prepared, rows)
    names = sorted(set(assignment.values()))
    return {
        name: full.subset(torch.tensor([assignment[r["id"]] == name for r in rows]))
        for name in names
    }


def load_prepared(folder: str | Path, rows: list[dict] | None = None) -> Dataset:
    """All images of a prepared folder (data/prepared, or a drawn set under data/drawn) as one
    Dataset; `rows` if its index was read already.

    Raises:
        StageError: the index does not exist (the stage that writes it has not run).
    """
    import torch

    folder = Path(folder)
    rows = read_index(folder) if rows is None else rows
    images = torch.from_numpy(np.load(folder / "images.npy"))[:, None]
    labels = torch.tensor([r["class_index"] for r in rows], dtype=torch.int64)
    upper = torch.tensor([r["uppercase"] for r in rows], dtype=torch.int64)
    geometry = torch.from_numpy(np.load(folder / "geometry.npy"))
    return Dataset(images, labels, upper, rows, geometry)


def feedback_used(raw: Path) -> dict[str, dict]:
    """The feedback records a training set was built from (id -> sha256, label, uppercase,
    review), as ingest wrote them into `raw`/manifest.json; empty without feedback. The train
    stage logs them, so a model names the drawings it learned from."""
    path = raw / RAW_MANIFEST
    if not path.is_file():
        return {}
    manifest = json.loads(path.read_text(encoding="utf-8"))
    return dict(manifest.get(FEEDBACK_SOURCE, {}).get("used", {}))
