"""Fixture images and golden outputs for `bukva.preprocess.normalize`.

The fixtures are a Rukopys glyph (black on white RGB, 200x200), an MNIST digit (white on
black, 28x28) and a canvas-like RGBA drawing (transparent background, thin anti-aliased
strokes). After an intended change to the normalization, regenerate the golden files with

    .venv/bin/python -m tests.support.golden --update

and look at tests/fixtures/golden_preview.png before committing.
"""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
CASES = {
    "rukopys_zh": "rukopys_zh-1.png",
    "mnist_7": "mnist_7.png",
    "canvas_rgba": "canvas_rgba.png",
}


def draw_canvas() -> Image.Image:
    """A 'ж'-like drawing as a browser canvas gives it: RGBA, clear background, 4 px
    anti-aliased strokes (drawn at 4x and downsampled)."""
    big = Image.new("RGBA", (1120, 1120), (0, 0, 0, 0))
    draw = ImageDraw.Draw(big)
    ink = (20, 20, 20, 255)
    draw.line([(560, 260), (560, 860)], fill=ink, width=16)
    draw.line([(300, 260), (560, 560), (820, 260)], fill=ink, width=16, joint="curve")
    draw.line([(300, 860), (560, 560), (820, 860)], fill=ink, width=16, joint="curve")
    return big.resize((280, 280), Image.Resampling.LANCZOS)


def make_fixtures(raw_data: Path | None = None) -> None:
    """(Re)create the three fixture images from the raw data mirror (found or downloaded as
    the tests find it) and the canvas drawing."""
    if raw_data is None:
        from tests.support.rawdata import raw_data_dir

        raw_data = raw_data_dir()
    FIXTURES.mkdir(parents=True, exist_ok=True)
    Image.open(raw_data / "rukopys" / "glyphs" / "zh-1.png").save(FIXTURES / CASES["rukopys_zh"])
    with gzip.open(raw_data / "mnist" / "digits-images-idx3-ubyte.gz") as f:
        digits = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    Image.fromarray(digits[0]).save(FIXTURES / CASES["mnist_7"])
    draw_canvas().save(FIXTURES / CASES["canvas_rgba"])


def load_fixture(name: str) -> Image.Image:
    return Image.open(FIXTURES / CASES[name])


def update() -> None:
    """Write golden .npy outputs for every fixture, plus a preview image for review."""
    from bukva.preprocess import normalize

    if not all((FIXTURES / f).exists() for f in CASES.values()):
        make_fixtures()
    outputs = []
    for name in CASES:
        out = normalize(load_fixture(name))
        np.save(FIXTURES / f"golden_{name}.npy", out)
        outputs.append(out)
    preview = (np.concatenate(outputs, axis=1) * 255).astype(np.uint8)
    Image.fromarray(preview).resize((28 * 3 * 4, 28 * 4), Image.Resampling.NEAREST).save(
        FIXTURES / "golden_preview.png"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="regenerate preprocessing golden files")
    parser.add_argument("--update", action="store_true", help="rewrite the golden outputs")
    parser.add_argument("--fixtures", action="store_true", help="also rewrite the fixture images")
    args = parser.parse_args()
    if args.fixtures:
        make_fixtures()
    if args.update or args.fixtures:
        update()
