"""A drawing's geometry in its frame, and where the canvas's guide lines go.

`bukva.preprocess.normalize` throws size and position away (every glyph fills the same 20x20
box), yet in handwriting the case of с/к/о/в/... is mostly size relative to the writing line.
So the geometry of the ink in its frame travels beside the 28x28 image, to the case head only:

- frame: the Rukopys 200x200 cell for scanned glyphs, the canvas (280x280 in the app) for
  drawings, the whole image for anything else sent to the service;
- `Geometry`: ink height, width and centre as fractions of the frame (0-1), and whether it is
  known at all (MNIST digits were re-framed by their makers, so theirs is unknown).

Guide lines (`GUIDES`, fractions of the canvas height from the top) come from where letters sit
in the Rukopys cell, measured over its 916 glyphs: every glyph is centred vertically (median
centre 0.495), small letters without ascenders or descenders (а г ж и к м н п с т ч ш ь ю я е)
are a median 0.37 of the cell high, capitals 0.585. A capital centred in the cell spans
0.2075-0.7925; writing small letters on the same baseline puts the x-height line 0.37 above it.
The canvas is the cell scaled (280 = 1.4 x 200), so drawings between the guides have the size
the scanned training glyphs have.

The canvas's side and brush (`CANVAS_SIDE`, `BRUSH_WIDTH`) live here too, beside the guides:
the app's canvas draws with them (`frontend/canvas.py` hands them to `canvas.js`), the stored
drawings have that side, and training paints its synthetic drawings with the same brush
(`bukva.strokes.render`), so what users draw and what the model learnt from cannot drift apart.
Standard library and numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The app's canvas: CANVAS_SIDE px square (10x the model's 28 px input, 1.4x the Rukopys cell),
# painted black with a round brush BRUSH_WIDTH px wide (~1/15 of the side: after
# normalisation about MNIST's 2-3 px strokes).
CANVAS_SIDE = 280
BRUSH_WIDTH = 18

X_HEIGHT = 0.37  # median height of small letters in the Rukopys cell (fraction of the cell)
CAP_HEIGHT = 0.585  # median height of capitals in the Rukopys cell
_CAP_TOP = 0.5 - CAP_HEIGHT / 2  # a capital centred in the cell, as Rukopys glyphs are

# Guide lines as fractions of the canvas height, from the top. Names are a stable contract:
# the canvas draws them, training places synthetic letters on them, tests draw on them.
GUIDES: dict[str, float] = {
    "cap": round(_CAP_TOP, 4),  # top of capitals (and of б, в, й's ascenders)
    "x_height": round(_CAP_TOP + CAP_HEIGHT - X_HEIGHT, 4),  # top of small letters
    "baseline": round(_CAP_TOP + CAP_HEIGHT, 4),  # where letters stand
}

# Order of the values in `Geometry.vector()` (the model's `geometry` input, [N, 5]).
FEATURES: tuple[str, ...] = ("height", "width", "centre_x", "centre_y", "known")
INK_THRESHOLD = 0.2  # the same ink level `bukva.preprocess` counts towards the bounding box


@dataclass(frozen=True)
class Geometry:
    """The ink's bounding box in its frame, as fractions of the frame's height and width."""

    height: float = 0.0
    width: float = 0.0
    centre_x: float = 0.0
    centre_y: float = 0.0
    known: bool = False

    def vector(self) -> np.ndarray:
        """float32 [5] in `FEATURES` order; all zeros when unknown."""
        if not self.known:
            return np.zeros(len(FEATURES), dtype=np.float32)
        values = (self.height, self.width, self.centre_x, self.centre_y, 1.0)
        return np.asarray(values, dtype=np.float32)

    @classmethod
    def from_vector(cls, values: np.ndarray | list[float]) -> Geometry:
        """Inverse of `vector` (a known flag below 0.5 means unknown)."""
        h, w, cx, cy, known = (float(v) for v in values)
        return cls(h, w, cx, cy, True) if known >= 0.5 else UNKNOWN


UNKNOWN = Geometry()


def box_geometry(box: tuple[int, int, int, int], frame_height: int, frame_width: int) -> Geometry:
    """Geometry of an inclusive (row_min, row_max, col_min, col_max) box in a frame."""
    r0, r1, c0, c1 = box
    if frame_height < 1 or frame_width < 1 or r1 < r0 or c1 < c0:
        raise ValueError(f"bad box {box} in a {frame_height}x{frame_width} frame")
    return Geometry(
        height=(r1 - r0 + 1) / frame_height,
        width=(c1 - c0 + 1) / frame_width,
        centre_x=(c0 + c1 + 1) / 2 / frame_width,
        centre_y=(r0 + r1 + 1) / 2 / frame_height,
        known=True,
    )


def ink_geometry(ink: np.ndarray, threshold: float = INK_THRESHOLD) -> Geometry:
    """Geometry of the ink (white-on-black float [H, W], the whole array is the frame).

    A frame without ink has unknown geometry.
    """
    mask = np.asarray(ink) > threshold
    if not mask.any():
        return UNKNOWN
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    box = (int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1]))
    return box_geometry(box, mask.shape[0], mask.shape[1])


def guide_box(
    uppercase: bool, frame: int, left: float = 0.3, right: float = 0.7
) -> tuple[float, float, float, float]:
    """Where a letter of x-height (small) or cap-height (capital) goes on a square frame of
    `frame` pixels: (top, bottom, left, right) in pixels, standing on the baseline."""
    top = GUIDES["cap"] if uppercase else GUIDES["x_height"]
    return (top * frame, GUIDES["baseline"] * frame, left * frame, right * frame)
