"""Readers for the raw data sets, with validation that names the bad file or row.

- Rukopys: `glyphs.csv` + 200x200 black-on-white PNGs. Upstream quirk: the CSV's `top`/`bottom`
  are the glyph's column extent and `left`/`right` its row extent (the names are swapped);
  `GlyphRow.bbox` returns the corrected (row_min, row_max, col_min, col_max).
- MNIST: the original IDX files (gzip), white digits on black, 28x28.
"""

from __future__ import annotations

import csv
import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bukva.alphabet import LETTERS
from pipelines.common import StageError

GLYPH_COLUMNS = ("label", "is_uppercase", "top", "bottom", "left", "right", "filename")
MNIST_IMAGES = "digits-images-idx3-ubyte.gz"
MNIST_LABELS = "digits-labels-idx1-ubyte.gz"


@dataclass(frozen=True)
class GlyphRow:
    """One labelled Rukopys glyph."""

    label: str
    uppercase: bool
    filename: str  # relative to the rukopys folder, e.g. glyphs/a-0.png
    top: int
    bottom: int
    left: int
    right: int

    @property
    def bbox(self) -> tuple[int, int, int, int]:
        """(row_min, row_max, col_min, col_max), inclusive, with the CSV's swap undone."""
        return (self.left, self.right, self.top, self.bottom)


def _parse_bool(value: str, where: str) -> bool:
    if value.strip() in ("True", "true", "1"):
        return True
    if value.strip() in ("False", "false", "0"):
        return False
    raise StageError(f"{where}: is_uppercase must be True or False, got {value!r}")


def read_glyph_table(csv_path: Path) -> list[GlyphRow]:
    """Parse and validate glyphs.csv.

    Raises:
        StageError: missing file or column, a label outside the alphabet, a bad number.
    """
    if not csv_path.is_file():
        raise StageError(f"glyph table not found: {csv_path}")
    with csv_path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in GLYPH_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise StageError(f"{csv_path}: missing column(s) {', '.join(missing)}")
        rows = []
        for line, raw in enumerate(reader, start=2):
            where = f"{csv_path}:{line}"
            label = (raw["label"] or "").strip()
            if len(label) != 1 or label not in LETTERS:
                raise StageError(
                    f"{where}: label {label!r} is not a Ukrainian letter of the alphabet"
                )
            try:
                box = {k: int(raw[k]) for k in ("top", "bottom", "left", "right")}
            except (TypeError, ValueError):
                raise StageError(f"{where}: bounding box values must be integers") from None
            rows.append(
                GlyphRow(
                    label=label,
                    uppercase=_parse_bool(raw["is_uppercase"] or "", where),
                    filename=(raw["filename"] or "").strip(),
                    **box,
                )
            )
    if not rows:
        raise StageError(f"{csv_path}: no rows")
    return rows


def _read_idx(path: Path, magic: int, ndim: int) -> np.ndarray:
    if not path.is_file():
        raise StageError(f"MNIST file not found: {path}")
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as exc:
        raise StageError(f"{path}: not a readable gzip file ({exc})") from None
    header = 4 + 4 * ndim
    if len(data) < header or int.from_bytes(data[:4], "big") != magic:
        raise StageError(f"{path}: not an IDX file (bad magic number)")
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected = int(np.prod(dims))
    if len(data) - header != expected:
        raise StageError(f"{path}: header says {dims} but holds {len(data) - header} bytes")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def read_mnist(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """MNIST images uint8 [N, 28, 28] and labels uint8 [N].

    Raises:
        StageError: a file is missing, malformed, or the two disagree.
    """
    images = _read_idx(folder / MNIST_IMAGES, 0x00000803, 3)
    labels = _read_idx(folder / MNIST_LABELS, 0x00000801, 1)
    if images.shape[1:] != (28, 28):
        raise StageError(f"{folder / MNIST_IMAGES}: images are {images.shape[1:]}, not 28x28")
    if len(images) != len(labels):
        raise StageError(f"{folder}: {len(images)} images but {len(labels)} labels")
    if labels.size and int(labels.max()) > 9:
        raise StageError(f"{folder / MNIST_LABELS}: label {int(labels.max())} is not a digit")
    return images, labels
