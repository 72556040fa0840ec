"""Source `strokebuilt`: block letters and digits built from a few strokes, as a finger draws them.

People on phones print block letters with a finger: a few strokes, rarely where a font would
put them. Ends overshoot or stop short of the stroke they should meet, lines wobble, corners
round off, parts come out too big or too small, the whole letter leans and sits a little off
the guides. This source draws every glyph of `CHARS` (33 letters in both cases and the 10
digits) from its strokes (`strokebuilt_shapes`, one function a glyph, several forms for many)
with that variation, on the app's canvas with its brush (`bukva.strokes.render`), standing on the
guide lines (`bukva.geometry.GUIDES`): capitals and digits at cap height, small letters at
x-height, ascenders, dots, breves and tails beyond them.

Nothing is read from disk: the `draw` stage (`pipelines/draw.py`) adds `draw.strokebuilt_copies`
drawings of each glyph to data/drawn/train. Every drawing comes from a seeded generator, so the
same seed gives the same pixels on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bukva.alphabet import DIGITS, LETTERS
from bukva.geometry import BRUSH_WIDTH, CANVAS_SIDE, CAP_HEIGHT, GUIDES, X_HEIGHT
from bukva.strokes import render
from pipelines.pen_paths import Jitter, jitter, keep_on_canvas
from pipelines.sources.strokebuilt_shapes import STEP, Hand, shape

NAME = "strokebuilt"
FILE = "pipelines/sources/strokebuilt_shapes.py"  # the `file` column of its records
CHARS = DIGITS + LETTERS + LETTERS.upper()  # 76 glyphs

# The whole drawing: lean, turn, size, proportions and place on the guides (`pipelines.pen_paths`).
HAND = Jitter(
    slant=0.22, rotation=0.07, scale=0.15, aspect=0.18, shift=0.06, wobble=0.0, brush=0.15
)


@dataclass(frozen=True)
class Finger:
    """How each stroke strays from its shape, in body heights; `scaled(0)` draws the shapes
    exactly."""

    overshoot: float = 0.08  # an end runs on past where it should stop, up to this
    gap: float = 0.06  # ... or stops this short of it
    offset: float = 0.025  # a stroke misplaced as a whole, standard deviation
    wobble: float = 0.018  # slow waves along a stroke, amplitude
    rounding: float = 0.5  # chance that a stroke's corners are rounded off

    def scaled(self, k: float) -> Finger:
        return Finger(*(getattr(self, f) * k for f in self.__dataclass_fields__))


FINGER = Finger()


def _arc_length(stroke: np.ndarray) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(stroke, axis=0), axis=1))])


def _resample(stroke: np.ndarray, step: float = STEP) -> np.ndarray:
    """The same path with points `step` apart (a dot stays a dot)."""
    s = _arc_length(stroke)
    if s[-1] < 1e-9:
        return stroke[:1].copy()
    t = np.linspace(0.0, s[-1], max(2, int(np.ceil(s[-1] / step)) + 1))
    return np.stack([np.interp(t, s, stroke[:, 0]), np.interp(t, s, stroke[:, 1])], axis=1)


def _round_corners(stroke: np.ndarray, points: int) -> np.ndarray:
    """A moving average along the stroke: corners become curves, ends stay where they are."""
    if len(stroke) < 2 * points + 1:
        return stroke
    kernel = np.ones(2 * points + 1) / (2 * points + 1)
    padded = np.pad(stroke, ((points, points), (0, 0)), mode="edge")
    out = np.stack([np.convolve(padded[:, i], kernel, mode="valid") for i in (0, 1)], axis=1)
    out[0], out[-1] = stroke[0], stroke[-1]
    return out


def _move_end(stroke: np.ndarray, change: float) -> np.ndarray:
    """Run the stroke's last end on by `change` along its direction, or cut it back."""
    if change >= 0:
        direction = stroke[-1] - stroke[max(0, len(stroke) - 4)]
        norm = np.linalg.norm(direction)
        if norm < 1e-9:
            return stroke
        steps = np.arange(1, int(np.ceil(change / STEP)) + 1) * min(STEP, change)
        return np.concatenate([stroke, stroke[-1] + steps[:, None] * direction / norm])
    keep = max(2, len(stroke) - round(-change / STEP))
    return stroke[:keep]


def _finger(stroke: np.ndarray, rng: np.random.Generator, finger: Finger) -> np.ndarray:
    """One stroke as a finger draws it."""
    out = _resample(stroke)
    if len(out) == 1:  # a dot: only its place varies
        return out + rng.normal(0.0, finger.offset, 2)
    if rng.random() < finger.rounding:
        out = _round_corners(out, int(rng.integers(2, 4)))
    length = _arc_length(out)[-1]
    for _ in range(2):  # each end in turn
        change = rng.uniform(-finger.gap, finger.overshoot)
        out = _move_end(out, max(change, -0.3 * length))[::-1]
    if finger.wobble > 0:
        s = _arc_length(out)
        for axis in (0, 1):
            for _ in range(2):
                cycles = rng.uniform(0.4, 1.6)
                wave = np.sin(2 * np.pi * cycles * s + rng.uniform(0, 2 * np.pi))
                out[:, axis] += wave * finger.wobble * rng.uniform(0.3, 1.0)
    return out + rng.normal(0.0, finger.offset, 2)


def glyph_strokes(
    char: str,
    rng: np.random.Generator,
    amount: Jitter = HAND,
    finger: Finger = FINGER,
    side: int = CANVAS_SIDE,
    brush: float = BRUSH_WIDTH,
) -> list[np.ndarray]:
    """The strokes of one drawing of `char` on a `side` x `side` canvas, in the order and
    direction the finger went (random: it does not change the pixels), points (x, y) in
    pixels. The body stands on the baseline between the guides of its case; a drawing that
    would run off the canvas is moved (or shrunk) so that a `brush` wide stays on it."""
    draw_shape, small = shape(char)
    strokes = [_finger(s, rng, finger) for s in draw_shape(Hand(rng, small))]
    unit = (X_HEIGHT if small else CAP_HEIGHT) * side
    top = GUIDES["x_height" if small else "cap"] * side
    xs = np.concatenate([s[:, 0] for s in strokes])
    centre = (xs.min() + xs.max()) / 2
    placed = [(s - (centre, 0.0)) * unit + (side / 2, top) for s in strokes]
    sizes = [len(s) for s in placed]
    points = jitter(
        np.concatenate(placed), rng, amount, (side / 2, GUIDES["baseline"] * side), side
    )
    points = keep_on_canvas(points, brush / 2 + 2, side)
    out = np.split(points, np.cumsum(sizes)[:-1])
    order = rng.permutation(len(out))
    return [out[i][:: 1 if rng.random() < 0.5 else -1] for i in order]


def drawing(
    char: str,
    rng: np.random.Generator,
    amount: Jitter = HAND,
    finger: Finger = FINGER,
    side: int = CANVAS_SIDE,
) -> np.ndarray:
    """One drawing of `char`: uint8 [side, side], black on white, as the canvas sends it."""
    brush = BRUSH_WIDTH * side / CANVAS_SIDE
    brush *= float(np.exp(rng.uniform(-amount.brush, amount.brush))) if amount.brush else 1.0
    return render(glyph_strokes(char, rng, amount, finger, side, brush), side=side, width=brush)


def drawings(
    char: str, copies: int, seed: int, amount: Jitter = HAND, finger: Finger = FINGER
) -> list[np.ndarray]:
    """`copies` drawings of `char`, from a generator seeded by `seed` and the glyph (so a
    glyph's drawings do not depend on which others are drawn)."""
    if char not in CHARS:
        raise ValueError(f"{char!r} is not one of the strokebuilt glyphs")
    rng = np.random.default_rng([seed, CHARS.index(char)])
    return [drawing(char, rng, amount, finger) for _ in range(copies)]
