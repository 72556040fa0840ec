"""Source `rukopys`: labelled handwritten Ukrainian letters, for `ingest` and `prepare`.

`glyphs.csv` + 200x200 black-on-white PNGs under glyphs/. Upstream quirk: the CSV's
`top`/`bottom` are the glyph's column extent and `left`/`right` its row extent (the names are
swapped); `GlyphRow.bbox` returns the corrected (row_min, row_max, col_min, col_max).

- ingest: `check` validates the table and every labelled glyph (decodes, box matches the ink),
  `copy` copies the labelled glyphs;
- prepare: `prepare` crops each glyph to its box and normalizes it.
"""

from __future__ import annotations

import csv
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from bukva.alphabet import LETTERS, SCANNED_CAPITALS, has_case
from bukva.preprocess import ImageError, normalize_with_geometry
from pipelines.common import StageError, log
from pipelines.data import Prepared, make_record

NAME = "rukopys"
TABLE = "glyphs.csv"
GLYPH_COLUMNS = ("label", "is_uppercase", "top", "bottom", "left", "right", "filename")
BBOX_TOLERANCE = 2  # pixels the CSV box may differ from the ink box


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


@dataclass
class Checked:
    """What `check` found in a Rukopys folder."""

    rows: list[GlyphRow]
    problems: dict[str, str] = field(default_factory=dict)  # file -> bounding-box problem
    unlabelled: list[str] = field(default_factory=list)  # PNGs without a CSV row

    def counts(self) -> Counter:
        """Glyphs per (label, "upper" | "lower")."""
        return Counter((r.label, "upper" if r.uppercase else "lower") for r in self.rows)


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


def check_glyph(path: Path, row: GlyphRow) -> str | None:
    """Decode one glyph and compare its ink box with the CSV box; return a problem or None.

    Raises:
        StageError: the file is missing or does not decode.
    """
    if not path.is_file():
        raise StageError(f"labelled glyph is missing: {path}")
    try:
        with Image.open(path) as im:
            ink = np.asarray(im.convert("L")) < 128
    except Exception as exc:
        raise StageError(f"glyph does not decode: {path} ({exc})") from None
    if not ink.any():
        return "no ink"
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    actual = (rows[0], rows[-1], cols[0], cols[-1])
    if max(abs(int(a) - b) for a, b in zip(actual, row.bbox, strict=True)) > BBOX_TOLERANCE:
        return f"csv box {row.bbox} != ink box {tuple(int(v) for v in actual)}"
    return None


def check(folder: Path) -> Checked:
    """Validate the table and every labelled glyph of a Rukopys folder (ingest).

    Raises:
        StageError: a missing or broken file, or uppercase samples of a letter that
            `bukva.alphabet.SCANNED_CAPITALS` does not list.
    """
    rows = read_glyph_table(folder / TABLE)
    found = Checked(rows)
    seen = set()
    for i, row in enumerate(rows, start=1):
        problem = check_glyph(folder / row.filename, row)
        if problem:
            found.problems[row.filename] = problem
        seen.add(Path(row.filename).name)
        if i % 200 == 0:
            log("ingest", f"checked {i}/{len(rows)} glyphs")
    on_disk = {p.name for p in (folder / "glyphs").glob("*.png")}
    found.unlabelled = sorted(on_disk - seen)
    upper_letters = {r.label for r in rows if r.uppercase}
    if not upper_letters <= set(SCANNED_CAPITALS):
        extra = sorted(upper_letters - set(SCANNED_CAPITALS))
        raise StageError(
            f"{folder / TABLE}: uppercase samples of {extra}, which "
            f"bukva.alphabet.SCANNED_CAPITALS does not list; update the alphabet module"
        )
    return found


def copy(folder: Path, dest: Path, rows: list[GlyphRow]) -> None:
    """Copy the table and the labelled glyphs (never the unlabelled ones) into `dest`."""
    (dest / "glyphs").mkdir(parents=True)
    shutil.copy2(folder / TABLE, dest / TABLE)
    for row in rows:
        shutil.copy2(folder / row.filename, dest / row.filename)


def prepare(raw: Path, params: dict) -> Prepared:
    """Normalize every labelled glyph in raw/rukopys (cropped to the CSV box when the
    `prepare` params say `use_csv_bbox`, the default), with its geometry in the 200x200 cell."""
    use_bbox = bool(params.get("use_csv_bbox", True))
    records, images, geometry = [], [], []
    for row in read_glyph_table(raw / NAME / TABLE):
        path = raw / NAME / row.filename
        with Image.open(path) as im:
            pixels = np.asarray(im.convert("RGB"))
        try:
            x, frame = normalize_with_geometry(pixels, bbox=row.bbox if use_bbox else None)
        except ImageError as exc:
            raise StageError(f"{path}: {exc}") from None
        upper = int(row.uppercase) if has_case(row.label) else -1
        records.append(
            make_record(NAME, Path(row.filename).stem, path, row.label, upper, pixels, x)
        )
        images.append(x)
        geometry.append(frame.vector())
    log("prepare", f"{NAME}: {len(records)} glyphs normalized")
    return records, images, geometry
