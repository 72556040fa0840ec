"""Source `mnist`: handwritten digits, for `ingest` and `prepare`.

The original IDX files (gzip), white digits on black, 28x28 (the mirror holds the first 8000
of the MNIST test set).

- ingest: `read_mnist` validates both files, `copy` copies them;
- prepare: `prepare` re-normalizes every digit like every other image.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np

from bukva.alphabet import DIGITS
from bukva.geometry import UNKNOWN
from bukva.preprocess import normalize
from pipelines.common import StageError, log
from pipelines.data import Prepared, make_record

NAME = "mnist"
MNIST_IMAGES = "digits-images-idx3-ubyte.gz"
MNIST_LABELS = "digits-labels-idx1-ubyte.gz"


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


def copy(folder: Path, dest: Path) -> None:
    """Copy both IDX files into `dest`."""
    dest.mkdir(parents=True)
    for name in (MNIST_IMAGES, MNIST_LABELS):
        shutil.copy2(folder / name, dest / name)


def prepare(raw: Path, params: dict) -> Prepared:
    """Normalize every digit in raw/mnist (already 28x28, re-normalized like everything else).
    Their geometry is unknown: MNIST's makers re-framed every digit into a 20x20 box, so size
    and position in the 28x28 frame say nothing about how it was written.

    `params` (the `prepare` section) has no knob for this source.
    """
    digits, labels = read_mnist(raw / NAME)
    file = str(raw / NAME / MNIST_IMAGES)
    records, images, unknown = [], [], UNKNOWN.vector()
    for i, (pixels, label) in enumerate(zip(digits, labels, strict=True)):
        x = normalize(pixels)
        char = DIGITS[int(label)]
        records.append(make_record(NAME, str(i), file, char, -1, pixels, x, item=i))
        images.append(x)
        if (i + 1) % 2000 == 0:
            log("prepare", f"{NAME} {i + 1}/{len(digits)}")
    return records, images, [unknown] * len(images)
