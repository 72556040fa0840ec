"""Source `fonts`: block (printed) letters and digits, drawn as a person draws them on the canvas.

Rukopys holds only cursive handwriting, yet many people print block letters on a screen. This
source takes every letter (both cases) and digit from Debian fonts with Cyrillic, finds each
glyph's pen path (`bukva.strokes.centre_lines` of the filled glyph) and redraws it with the
canvas's round brush (`pipelines.pen_paths`), with random slant, proportions and wobble. Glyphs
stand on the canvas's guide lines (`bukva.geometry.GUIDES`): capitals and digits at cap height,
small letters at x-height, so the case head learns size as the canvas's guides teach it.

Fonts are split: `TRAIN_FONTS` feed training; `EVAL_FONTS` (other designs, never trained on)
make the block-letter evaluation set. The font files ship with the code, in `font_files/` (the
same relative paths as Debian's fonts-* packages put them under /usr/share/fonts, copied from
the package versions listed in `font_files/README.md`), so every machine draws from the same
bytes without installing anything; each package's licence (all free, redistributable) is in
`font_files/licences/`, summarised in `LICENCES` and docs/pipeline.md.
"""

from __future__ import annotations

import csv
import shutil
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from bukva.alphabet import DIGITS, LETTERS
from bukva.geometry import BRUSH_WIDTH, CANVAS_SIDE, CAP_HEIGHT, GUIDES, X_HEIGHT
from bukva.strokes import centre_lines
from pipelines.common import StageError
from pipelines.pen_paths import Jitter, jitter, keep_on_canvas, paint

NAME = "fonts"
FONT_DIR = Path(__file__).resolve().parent / "font_files"  # the fonts shipped with the code
MANIFEST = "fonts.csv"  # in data/raw/fonts/: file, package, licence, role (train | eval)
CHARS = DIGITS + LETTERS + LETTERS.upper()  # 76 glyphs per font
RENDER_SIZE = 140  # font size in pixels for finding pen paths (~1.6 canvas px per step)

# file (under FONT_DIR, as under Debian's /usr/share/fonts) -> the Debian package it came from
TRAIN_FONTS: dict[str, str] = {
    "truetype/dejavu/DejaVuSans.ttf": "fonts-dejavu-core",
    "truetype/dejavu/DejaVuSansMono.ttf": "fonts-dejavu-core",
    "truetype/liberation2/LiberationSans-Regular.ttf": "fonts-liberation2",
    "truetype/liberation2/LiberationMono-Regular.ttf": "fonts-liberation2",
    "truetype/freefont/FreeSans.ttf": "fonts-freefont-ttf",
    "truetype/freefont/FreeMono.ttf": "fonts-freefont-ttf",
    "truetype/paratype/PTS55F.ttf": "fonts-paratype",  # PT Sans
    "truetype/paratype/PTM55F.ttf": "fonts-paratype",  # PT Mono
    "truetype/roboto/unhinted/RobotoTTF/Roboto-Regular.ttf": "fonts-roboto-unhinted",
    "truetype/open-sans/OpenSans-Regular.ttf": "fonts-open-sans",
    "truetype/jetbrains-mono/JetBrainsMono-Regular.ttf": "fonts-jetbrains-mono",
    "truetype/firacode/FiraCode-Regular.ttf": "fonts-firacode",
    "fonts-go/Go-Regular.ttf": "fonts-go",
    "fonts-go/Go-Mono.ttf": "fonts-go",
    "opentype/inter/Inter-Regular.otf": "fonts-inter",
    "opentype/cantarell/Cantarell-Regular.otf": "fonts-cantarell",
    "truetype/manrope/Manrope-Regular.ttf": "fonts-manrope",
}
EVAL_FONTS: dict[str, str] = {
    "truetype/andika/Andika-Regular.ttf": "fonts-sil-andika",
    "truetype/comfortaa/Comfortaa-Regular.ttf": "fonts-comfortaa",
    "truetype/clear-sans/ClearSans-Regular.ttf": "fonts-clear-sans",
    "opentype/jura/Jura-Regular.otf": "fonts-jura",
    "truetype/anonymous-pro/Anonymous Pro.ttf": "fonts-anonymous-pro",
}
LICENCES: dict[str, str] = {
    "fonts-dejavu-core": "Bitstream Vera licence (DejaVu changes public domain)",
    "fonts-liberation2": "SIL OFL 1.1",
    "fonts-freefont-ttf": "GPL-3+ with font exception",
    "fonts-paratype": "ParaType Free Font Licence",
    "fonts-roboto-unhinted": "Apache-2.0",
    "fonts-open-sans": "Apache-2.0",
    "fonts-jetbrains-mono": "SIL OFL 1.1",
    "fonts-firacode": "SIL OFL 1.1",
    "fonts-go": "BSD-3-Clause",
    "fonts-inter": "SIL OFL 1.1",
    "fonts-cantarell": "SIL OFL 1.1",
    "fonts-manrope": "SIL OFL 1.1",
    "fonts-sil-andika": "SIL OFL 1.1",
    "fonts-comfortaa": "SIL OFL 1.1",
    "fonts-clear-sans": "Apache-2.0",
    "fonts-jura": "SIL OFL 1.1",
    "fonts-anonymous-pro": "SIL OFL 1.1",
}
PACKAGES = tuple(sorted(set(TRAIN_FONTS.values()) | set(EVAL_FONTS.values())))

# Drawings of training glyphs vary more than those of the evaluation set.
TRAIN_JITTER = Jitter(
    slant=0.22, rotation=0.08, scale=0.16, aspect=0.15, shift=0.06, wobble=0.012, brush=0.15
)
EVAL_JITTER = Jitter(
    slant=0.15, rotation=0.05, scale=0.10, aspect=0.10, shift=0.04, wobble=0.008, brush=0.0
)


@dataclass(frozen=True)
class GlyphPath:
    """One glyph's pen path in units of its font's x-height or cap height."""

    char: str
    segments: np.ndarray  # [M, 2, 2]; x from the ink's horizontal centre, y up from baseline
    unit: str  # "x" (small letters) or "cap" (capitals and digits)


def _ink(font: ImageFont.FreeTypeFont, char: str) -> tuple[np.ndarray, int]:
    """The filled glyph as white-on-black float, and the baseline's row."""
    side = RENDER_SIZE * 2
    image = Image.new("L", (side, side), 0)
    baseline = int(side * 0.7)
    ImageDraw.Draw(image).text((side // 4, baseline), char, font=font, fill=255, anchor="ls")
    return np.asarray(image, dtype=np.float32) / 255.0, baseline


def _path_extent(font: ImageFont.FreeTypeFont, char: str) -> tuple[float, float]:
    """Height of the glyph's pen path (its centre lines) and how far above the baseline it
    ends: the path, not the filled outline, spans the guides, as a person's strokes do."""
    ink, baseline = _ink(font, char)
    ys = centre_lines(ink)[..., 1]
    return float(ys.max() - ys.min()), float(baseline - ys.max())


def check_coverage(path: Path) -> list[str]:
    """Characters of `CHARS` the font has no glyph for (fontTools reads its character map)."""
    from fontTools.ttLib import TTFont

    cmap = TTFont(str(path), lazy=True).getBestCmap() or {}
    return [c for c in CHARS if ord(c) not in cmap]


@lru_cache(maxsize=64)
def font_paths(path: str) -> tuple[GlyphPath, ...]:
    """Pen paths of all `CHARS` of one font file, in font units (cached per process)."""
    font = ImageFont.truetype(path, RENDER_SIZE)
    cap, lift = _path_extent(font, "Н")  # straight stems: the same for every font
    units = {"cap": cap, "x": _path_extent(font, "н")[0]}
    out = []
    for char in CHARS:
        unit = "x" if char in LETTERS else "cap"
        ink, baseline = _ink(font, char)
        segments = centre_lines(ink)
        xs = segments[..., 0]
        centre = (float(xs.min()) + float(xs.max())) / 2
        segments[..., 0] -= centre
        segments[..., 1] = baseline - lift - segments[..., 1]  # Н's path stands on 0
        out.append(GlyphPath(char, segments / units[unit], unit))
    return tuple(out)


def on_canvas(glyph: GlyphPath, side: int = CANVAS_SIDE) -> np.ndarray:
    """The glyph standing on the canvas's baseline, centred, at the guides' size."""
    height = (X_HEIGHT if glyph.unit == "x" else CAP_HEIGHT) * side
    out = glyph.segments * height
    out[..., 0] += side / 2
    out[..., 1] = GUIDES["baseline"] * side - out[..., 1]
    return out


def drawings(path: str, copies: int, seed: int, amount: Jitter) -> list[tuple[str, np.ndarray]]:
    """`copies` jittered canvas drawings of every glyph of one font: (char, pixels) pairs,
    pixels uint8 [280, 280] black on white."""
    rng = np.random.default_rng(seed)
    margin = BRUSH_WIDTH * np.exp(amount.brush) / 2 + 2  # the widest brush `draw` may pick
    out = []
    for glyph in font_paths(path):
        base = on_canvas(glyph)
        anchor = (CANVAS_SIDE / 2, GUIDES["baseline"] * CANVAS_SIDE)
        for _ in range(copies):
            # Marks above capitals (Ї's dots, Й's breve, Ґ's upturn) stand near the canvas top:
            # jitter pushed them off it in about half the drawings, which then were І, И, Г.
            path_on_canvas = keep_on_canvas(jitter(base, rng, amount, anchor), margin)
            out.append((glyph.char, paint(path_on_canvas, rng, amount)))
    return out


def check(font_dir: Path = FONT_DIR) -> list[dict]:
    """Every font of `TRAIN_FONTS` and `EVAL_FONTS`, present and covering `CHARS`: manifest rows.

    Raises:
        StageError: a font file is missing (naming its package) or lacks a character.
    """
    rows = []
    for role, table in (("train", TRAIN_FONTS), ("eval", EVAL_FONTS)):
        for file, package in table.items():
            path = font_dir / file
            if not path.is_file():
                raise StageError(
                    f"font {path} not found (from the Debian package {package}): the fonts "
                    f"ship in {FONT_DIR}; restore it from git, or point params.yaml "
                    "ingest.fonts at a folder laid out like /usr/share/fonts"
                )
            missing = check_coverage(path)
            if missing:
                raise StageError(f"font {path} has no glyph for {''.join(missing)}")
            name = Path(file).name.replace(" ", "_")
            rows.append(
                {"file": name, "package": package, "licence": LICENCES[package], "role": role}
            )
    return rows


def copy(font_dir: Path, dest: Path, rows: list[dict]) -> None:
    """Copy the checked fonts into `dest` (data/raw/fonts) with their manifest."""
    dest.mkdir(parents=True, exist_ok=True)
    by_name = {Path(f).name.replace(" ", "_"): f for f in (*TRAIN_FONTS, *EVAL_FONTS)}
    for row in rows:
        shutil.copyfile(font_dir / by_name[row["file"]], dest / row["file"])
    with (dest / MANIFEST).open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=("file", "package", "licence", "role"))
        writer.writeheader()
        writer.writerows(rows)


def read_manifest(folder: Path) -> list[dict]:
    """The manifest `copy` wrote (rows with file, package, licence, role).

    Raises:
        StageError: there is none (the ingest stage has not copied the fonts).
    """
    path = folder / MANIFEST
    if not path.is_file():
        raise StageError(f"font manifest not found: {path} (run the ingest stage)")
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))
