"""Pen paths moved onto the app's canvas and redrawn with its brush, with human-like jitter.

A pen path is an array of segments [M, 2, 2] (`bukva.strokes.centre_lines` finds them in ink).
`place` maps a path from its source frame onto the 280x280 canvas; `jitter` bends it as a
person's hand would (slant, rotation, proportions, a slow wobble along the strokes); `paint`
paints it with the canvas's round brush and returns the canvas pixels (black on white).

Used three ways: scanned Rukopys glyphs redrawn as canvas strokes (cell 200x200 -> canvas, so
size keeps its meaning), MNIST digits redrawn at the canvas's cap height, and font glyphs
(`pipelines.sources.fonts`). Every random draw comes from a `numpy.random.Generator`, so a
seed gives the same drawings on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bukva.geometry import BRUSH_WIDTH, CANVAS_SIDE, CAP_HEIGHT, GUIDES
from bukva.strokes import centre_lines, render

RUKOPYS_CELL = 200  # the Rukopys cell; the canvas is the same frame scaled by 280/200


@dataclass(frozen=True)
class Jitter:
    """Magnitudes of a hand's variation; `scaled(k)` multiplies every one by k."""

    slant: float = 0.18  # horizontal shear, +- (tan of the slant angle)
    rotation: float = 0.08  # radians, +-
    scale: float = 0.10  # log scale, +-
    aspect: float = 0.12  # log width/height stretch, +-
    shift: float = 0.04  # position, +- fraction of the canvas
    wobble: float = 0.012  # slow displacement along the strokes, fraction of the canvas
    brush: float = 0.0  # log brush width, +- (the app's brush is fixed; screens scale it)

    def scaled(self, k: float) -> Jitter:
        return Jitter(*(getattr(self, f) * k for f in self.__dataclass_fields__))


NONE = Jitter(0, 0, 0, 0, 0, 0, 0)


def _uniform(rng: np.random.Generator, limit: float) -> float:
    return float(rng.uniform(-limit, limit)) if limit > 0 else 0.0


def jitter(
    segments: np.ndarray,
    rng: np.random.Generator,
    amount: Jitter,
    anchor: tuple[float, float] | None = None,
    side: int = CANVAS_SIDE,
) -> np.ndarray:
    """A randomly bent copy of a path on the canvas: affine about `anchor` (default: the
    path's centre), then a smooth wobble, then a shift. Scale keeps its meaning on average."""
    points = segments.reshape(-1, 2).astype(np.float64)
    if len(points) == 0:
        return segments.copy()
    ax, ay = anchor if anchor is not None else points.mean(axis=0)
    scale = np.exp(_uniform(rng, amount.scale))
    aspect = np.exp(_uniform(rng, amount.aspect))
    angle = _uniform(rng, amount.rotation)
    slant = _uniform(rng, amount.slant)
    c, s = np.cos(angle), np.sin(angle)
    matrix = np.array([[c, -s], [s, c]]) @ np.array([[1.0, -slant], [0.0, 1.0]])
    matrix = matrix @ np.diag([scale * aspect, scale / aspect])
    out = (points - (ax, ay)) @ matrix.T + (ax, ay)
    if amount.wobble > 0:
        # A few low-frequency waves: neighbouring points move together, as a hand does.
        for axis in (0, 1):
            for _ in range(3):
                k = rng.uniform(0.5, 2.0) * 2 * np.pi / side
                phase = rng.uniform(0, 2 * np.pi)
                direction = rng.normal(size=2)
                direction /= np.linalg.norm(direction) + 1e-9
                wave = np.sin(k * (out @ direction) + phase)
                out[:, axis] += wave * amount.wobble * side * rng.uniform(0.3, 1.0)
    out += (_uniform(rng, amount.shift) * side, _uniform(rng, amount.shift) * side)
    return out.reshape(segments.shape)


def keep_on_canvas(points: np.ndarray, margin: float, side: int = CANVAS_SIDE) -> np.ndarray:
    """Points (any shape ending in 2) moved, and shrunk only if they must be, to at least
    `margin` from every edge: a jittered drawing must not lose a dot, breve or tail off the
    canvas (a person sees the edge and draws inside it)."""
    flat = points.reshape(-1, 2)
    if len(flat) == 0:
        return points.copy()
    low, high = flat.min(axis=0), flat.max(axis=0)
    k = min(1.0, (side - 2 * margin) / max(float((high - low).max()), 1e-9))
    if k < 1.0:
        flat = (flat - (low + high) / 2) * k + (low + high) / 2
        low, high = flat.min(axis=0), flat.max(axis=0)
    shift = np.clip(margin - low, 0, None) - np.clip(high - (side - margin), 0, None)
    return (flat + shift).reshape(points.shape)


def paint(
    segments: np.ndarray,
    rng: np.random.Generator | None = None,
    amount: Jitter = NONE,
    side: int = CANVAS_SIDE,
) -> np.ndarray:
    """Paint a path with the canvas brush: uint8 [side, side], black on white."""
    width = BRUSH_WIDTH * (np.exp(_uniform(rng, amount.brush)) if rng is not None else 1.0)
    return render(list(segments), side=side, width=width)


def place(
    segments: np.ndarray,
    source: tuple[float, float, float, float],
    target: tuple[float, float, float, float],
) -> np.ndarray:
    """Map a path from a source box to a target box, both (top, bottom, left, right) in
    their own pixels, keeping the aspect ratio (the vertical scale rules)."""
    s_top, s_bottom, s_left, s_right = source
    t_top, t_bottom, t_left, t_right = target
    k = (t_bottom - t_top) / max(s_bottom - s_top, 1e-6)
    s_cx, t_cx = (s_left + s_right) / 2, (t_left + t_right) / 2
    out = segments.astype(np.float64).copy()
    out[..., 0] = (out[..., 0] - s_cx) * k + t_cx
    out[..., 1] = (out[..., 1] - s_top) * k + t_top
    return out


def cell_path(ink: np.ndarray) -> np.ndarray:
    """A scanned Rukopys glyph's pen path (ink: its whole 200x200 cell, white on black), on
    the canvas: the cell maps onto the canvas, so size and position keep their meaning."""
    k = CANVAS_SIDE / ink.shape[0]
    return centre_lines(ink) * k


def digit_path(ink28: np.ndarray, height: float = CAP_HEIGHT) -> np.ndarray:
    """An MNIST digit's pen path (28x28, white on black), standing on the canvas's baseline
    at cap height (digits are written as tall as capitals)."""
    from PIL import Image

    big = np.asarray(
        Image.fromarray(np.asarray(ink28, dtype=np.float32), mode="F").resize(
            (112, 112), Image.Resampling.BILINEAR
        )
    )
    segments = centre_lines(big, threshold=0.45)
    if len(segments) == 0:
        return segments
    ys = segments[..., 1]
    xs = segments[..., 0]
    source = (float(ys.min()), float(ys.max()), float(xs.min()), float(xs.max()))
    bottom = GUIDES["baseline"] * CANVAS_SIDE
    top = bottom - height * CANVAS_SIDE
    return place(segments, source, (top, bottom, CANVAS_SIDE * 0.5, CANVAS_SIDE * 0.5))
