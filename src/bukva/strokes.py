"""Drawings made from strokes, the way the app's canvas records them, and strokes found in ink.

The app's canvas is `bukva.geometry.CANVAS_SIDE` px square, white, and paints black with a
round brush `bukva.geometry.BRUSH_WIDTH` px wide, antialiased (the app reads the same two
values). `render` paints polylines exactly so: evaluation sets, training augmentation,
behavioural tests and browser tests all draw through it, so "a canvas drawing" means the same
pixels everywhere.

`centre_lines` goes the other way: it thins an ink image (a pen scan, an MNIST digit, a font
glyph) to one-pixel centre lines (Zhang-Suen thinning) and returns them as short segments, ready
to be moved, jittered and redrawn with the canvas brush. numpy and Pillow only.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from bukva.geometry import BRUSH_WIDTH, CANVAS_SIDE

SUPERSAMPLE = 3  # paint at 3x and downscale: the browser's antialiasing, closely enough

Stroke = np.ndarray | Sequence[tuple[float, float]]  # points (x, y) in canvas pixels


def render(
    strokes: Sequence[Stroke],
    side: int = CANVAS_SIDE,
    width: float = BRUSH_WIDTH,
    supersample: int = SUPERSAMPLE,
) -> np.ndarray:
    """Paint polylines with a round brush: uint8 [side, side], black ink on white paper.

    Each stroke is a sequence of (x, y) points in pixels of the `side` x `side` canvas; a
    single point paints a dot. Caps and joins are round, as the canvas's brush.
    """
    big = side * supersample
    image = Image.new("L", (big, big), 0)
    pen = ImageDraw.Draw(image)
    radius = width * supersample / 2
    line_width = max(1, round(width * supersample))
    joints = []
    for stroke in strokes:
        points = np.asarray(stroke, dtype=np.float64).reshape(-1, 2) * supersample
        if len(points) > 1:
            pen.line([tuple(p) for p in points.tolist()], fill=255, width=line_width)
        joints.append(points)
    if joints:  # round caps and joins: one disc per distinct point (paths share many)
        for x, y in np.unique(np.round(np.concatenate(joints)), axis=0).tolist():
            pen.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
    ink = image.resize((side, side), Image.Resampling.BOX)
    return 255 - np.asarray(ink, dtype=np.uint8)


def to_png(pixels: np.ndarray) -> bytes:
    """PNG bytes of a rendered drawing (what the canvas sends)."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _neighbours(m: np.ndarray) -> list[np.ndarray]:
    """P2..P9 of Zhang-Suen (clockwise from north) for every pixel of a 0/1 array."""
    p = np.pad(m, 1)
    h, w = m.shape
    at = [(0, 1), (0, 2), (1, 2), (2, 2), (2, 1), (2, 0), (1, 0), (0, 0)]
    return [p[dy : dy + h, dx : dx + w] for dy, dx in at]


def thin(mask: np.ndarray, max_iterations: int = 200) -> np.ndarray:
    """Zhang-Suen thinning of a boolean image to 8-connected lines one pixel wide."""
    m = np.asarray(mask, dtype=np.uint8).copy()
    for _ in range(max_iterations):
        changed = False
        for first in (True, False):
            n = _neighbours(m)
            count = sum(n)
            ring = [*n, n[0]]
            transitions = sum((ring[i] == 0) & (ring[i + 1] == 1) for i in range(8))
            p2, p4, p6, p8 = n[0], n[2], n[4], n[6]
            if first:
                c1, c2 = p2 * p4 * p6, p4 * p6 * p8
            else:
                c1, c2 = p2 * p4 * p8, p2 * p6 * p8
            drop = (m == 1) & (count >= 2) & (count <= 6) & (transitions == 1) & (c1 == 0)
            drop &= c2 == 0
            if drop.any():
                m[drop] = 0
                changed = True
        if not changed:
            break
    return m.astype(bool)


def skeleton_segments(skeleton: np.ndarray) -> np.ndarray:
    """Segments [M, 2, 2] as ((x0, y0), (x1, y1)) joining 8-neighbouring skeleton pixels, plus
    zero-length segments for isolated pixels (dots, as on і and ї)."""
    s = np.asarray(skeleton, dtype=bool)
    ys, xs = np.nonzero(s)
    segments = []
    h, w = s.shape
    for dy, dx in ((0, 1), (1, -1), (1, 0), (1, 1)):
        y1, x1 = ys + dy, xs + dx
        ok = (y1 < h) & (x1 >= 0) & (x1 < w)
        ok[ok] = s[y1[ok], x1[ok]]
        segments.append(np.stack([np.stack([xs[ok], ys[ok]], 1), np.stack([x1[ok], y1[ok]], 1)], 1))
    padded = np.pad(s, 1)
    around = sum(
        padded[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
        if dy or dx
    )
    lone = s & (around == 0)
    ly, lx = np.nonzero(lone)
    segments.append(np.stack([np.stack([lx, ly], 1)] * 2, 1))
    return np.concatenate(segments).astype(np.float64)


def _lost_dots(mask: np.ndarray, skeleton: np.ndarray) -> np.ndarray:
    """Points [K, 2] (x, y) for ink that thinning erased whole (small dots such as і's): ink
    farther than the stroke's half width from every skeleton pixel, one point per blob."""
    area = int(mask.sum())
    inner = mask[1:-1, 1:-1] & mask[:-2, 1:-1] & mask[2:, 1:-1] & mask[1:-1, :-2] & mask[1:-1, 2:]
    reach = max(2, round(area / max(area - int(inner.sum()), 1)) + 2)  # ~ half width + 2
    near = skeleton.copy()
    for _ in range(reach):
        p = np.pad(near, 1)
        h, w = near.shape
        near = np.max([p[dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)], 0)
    ys, xs = np.nonzero(mask & ~near)
    points: list[tuple[int, int]] = []
    left = np.stack([xs, ys], 1)
    while len(left):
        x, y = left[0]
        blob = np.abs(left - (x, y)).max(axis=1) <= 3 * reach
        cx, cy = left[blob].mean(axis=0)
        points.append((round(cx), round(cy)))
        left = left[~blob]
    return np.asarray(points, dtype=np.float64).reshape(-1, 2)


def centre_lines(ink: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """The centre lines of an ink image (white-on-black float [H, W]) as segments [M, 2, 2] in
    its pixel coordinates (x right, y down; a pixel's centre is at +0.5). Ink too small to
    keep a centre line (a dot) becomes a zero-length segment, which `render` paints as a dot."""
    mask = np.asarray(ink) > threshold
    skeleton = thin(mask)
    dots = _lost_dots(mask, skeleton)
    segments = np.concatenate([skeleton_segments(skeleton), np.stack([dots, dots], 1)])
    return segments + 0.5


def segments_to_strokes(segments: np.ndarray) -> list[np.ndarray]:
    """Segments [M, 2, 2] as a list of two-point strokes for `render`."""
    return list(np.asarray(segments, dtype=np.float64))
