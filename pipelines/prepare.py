"""Stage `prepare`: every glyph and digit through `bukva.preprocess.normalize`.

Outputs data/prepared/images.npy (float32 [N, 28, 28], exactly the model input) and
data/prepared/index.csv (one row per image: id, source, file, label, class index, uppercase
flag, and content hashes the split stage uses to keep duplicates together).

Uppercase flag: 1/0 for letters in `CASED_LETTERS`; -1 ("unknown") for digits and for letters
that have no uppercase samples, so the case head is never trained on a meaningless answer.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from bukva.alphabet import DIGITS, has_case, index_of
from bukva.preprocess import ImageError, normalize
from pipelines.common import StageError, load_params, log, run_cli
from pipelines.sources import MNIST_IMAGES, read_glyph_table, read_mnist

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


def _hash(array: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(array).tobytes()).hexdigest()[:16]


def prepare_rukopys(raw: Path, use_bbox: bool) -> tuple[list[Record], list[np.ndarray]]:
    """Normalize every labelled Rukopys glyph."""
    records, images = [], []
    for row in read_glyph_table(raw / "rukopys" / "glyphs.csv"):
        path = raw / "rukopys" / row.filename
        with Image.open(path) as im:
            pixels = np.asarray(im.convert("RGB"))
        try:
            x = normalize(pixels, bbox=row.bbox if use_bbox else None)
        except ImageError as exc:
            raise StageError(f"{path}: {exc}") from None
        upper = int(row.uppercase) if has_case(row.label) else -1
        records.append(
            Record(
                f"rukopys/{Path(row.filename).stem}",
                "rukopys",
                str(path),
                0,
                row.label,
                index_of(row.label),
                upper,
                _hash(pixels),
                _hash(x),
            )
        )
        images.append(x)
    return records, images


def prepare_mnist(raw: Path) -> tuple[list[Record], list[np.ndarray]]:
    """Normalize every MNIST digit (already 28x28, re-normalized like everything else)."""
    digits, labels = read_mnist(raw / "mnist")
    file = str(raw / "mnist" / MNIST_IMAGES)
    records, images = [], []
    for i, (pixels, label) in enumerate(zip(digits, labels, strict=True)):
        x = normalize(pixels)
        char = DIGITS[int(label)]
        records.append(
            Record(
                f"mnist/{i}", "mnist", file, i, char, index_of(char), -1, _hash(pixels), _hash(x)
            )
        )
        images.append(x)
        if (i + 1) % 2000 == 0:
            log("prepare", f"mnist {i + 1}/{len(digits)}")
    return records, images


def write_prepared(out: Path, records: list[Record], images: list[np.ndarray]) -> None:
    """Write images.npy and index.csv (row i of the CSV is image i)."""
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "images.npy", np.stack(images).astype(np.float32))
    with (out / "index.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=INDEX_COLUMNS)
        writer.writeheader()
        writer.writerows(asdict(r) for r in records)


def read_index(folder: Path) -> list[dict]:
    """Rows of index.csv with numeric columns as ints."""
    path = folder / "index.csv"
    if not path.is_file():
        raise StageError(f"prepared index not found: {path} (run the prepare stage)")
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for key in ("item", "class_index", "uppercase"):
            r[key] = int(r[key])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", default="data/raw")
    parser.add_argument("--out", default="data/prepared")
    args = parser.parse_args()
    params = load_params("prepare")
    raw = Path(args.raw)
    records, images = prepare_rukopys(raw, bool(params.get("use_csv_bbox", True)))
    log("prepare", f"rukopys: {len(records)} glyphs normalized")
    more_records, more_images = prepare_mnist(raw)
    records, images = records + more_records, images + more_images
    if (raw / "feedback").is_dir():  # user drawings from the feedback store (ingest.feedback)
        from pipelines.feedback import prepare_feedback

        more_records, more_images = prepare_feedback(raw)
        records, images = records + more_records, images + more_images
        log("prepare", f"feedback: {len(more_records)} drawings normalized")
    write_prepared(Path(args.out), records, images)
    log("prepare", f"wrote {len(records)} images to {args.out}")


if __name__ == "__main__":
    run_cli("prepare", main)
