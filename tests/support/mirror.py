"""Build small or broken copies of the raw data mirror for tests."""

from __future__ import annotations

import csv
import gzip
import shutil
from pathlib import Path

import numpy as np

from pipelines.sources.mnist import MNIST_IMAGES, MNIST_LABELS


def write_idx(folder: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """Write MNIST IDX files (gzip) for uint8 images [N, 28, 28] and labels [N]."""
    folder.mkdir(parents=True, exist_ok=True)
    n = len(images)
    head = (0x803).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in (n, 28, 28))
    with gzip.open(folder / MNIST_IMAGES, "wb") as f:
        f.write(head + images.astype(np.uint8).tobytes())
    with gzip.open(folder / MNIST_LABELS, "wb") as f:
        f.write(
            (0x801).to_bytes(4, "big") + n.to_bytes(4, "big") + labels.astype(np.uint8).tobytes()
        )


def read_digits(source: Path) -> tuple[np.ndarray, np.ndarray]:
    with gzip.open(source / "mnist" / MNIST_IMAGES) as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(source / "mnist" / MNIST_LABELS) as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    return images, labels


def make_mirror(
    source: Path,
    dest: Path,
    letters: str | None = None,
    per_letter: int | None = None,
    digits: int | None = None,
    unlabelled: int = 0,
) -> Path:
    """Copy a subset of the mirror: the given letters (all if None), at most `per_letter` glyphs
    per (letter, case), the first `digits` MNIST digits, and `unlabelled` extra unlabelled PNGs."""
    (dest / "rukopys" / "glyphs").mkdir(parents=True)
    with (source / "rukopys" / "glyphs.csv").open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames, list(reader)
    kept, taken = [], {}
    for row in rows:
        key = (row["label"], row["is_uppercase"])
        if letters is not None and row["label"] not in letters:
            continue
        if per_letter is not None and taken.get(key, 0) >= per_letter:
            continue
        taken[key] = taken.get(key, 0) + 1
        kept.append(row)
        shutil.copy2(source / "rukopys" / row["filename"], dest / "rukopys" / row["filename"])
    with (dest / "rukopys" / "glyphs.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(kept)
    for i in range(unlabelled):
        shutil.copy2(
            source / "rukopys" / kept[i]["filename"], dest / "rukopys" / "glyphs" / f"stray-{i}.png"
        )
    images, labels = read_digits(source)
    if digits is not None:
        images, labels = images[:digits], labels[:digits]
    write_idx(dest / "mnist", images, labels)
    return dest
