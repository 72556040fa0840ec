"""Block letters and digits drawn by code, as strokes on the app's canvas.

Each shape is a list of strokes in the letter's own box: x from 0 (left) to 1 (right), y from
0 (the cap line for capitals and digits, the x-height line for small letters) to 1 (the
baseline); y > 1 reaches below the baseline (Щ's tail). `canvas` places a shape between the
canvas's guide lines (`bukva.geometry.GUIDES`) and paints it with the canvas brush
(`bukva.strokes.render`), so behavioural tests and browser tests draw the same pixels a person
drawing between the guides would.
"""

from __future__ import annotations

import math

import numpy as np

from bukva.geometry import CANVAS_SIDE, GUIDES
from bukva.strokes import render

Strokes = list[list[tuple[float, float]]]


def _arc(cx: float, cy: float, rx: float, ry: float, start: float, end: float, n: int = 16):
    """Points on an elliptical arc; angles in degrees, 0 = right, 90 = down (screen y)."""
    return [
        (cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a)))
        for a in np.linspace(start, end, n)
    ]


# char -> (width / height of its box, strokes). Small letters use the same shapes as their
# capitals where block writing does; `SMALL` overrides the few that differ.
SHAPES: dict[str, tuple[float, Strokes]] = {
    "Г": (0.6, [[(0.1, 1), (0.1, 0), (0.9, 0)]]),
    "Ґ": (0.6, [[(0.1, 1), (0.1, 0), (0.85, 0), (0.85, -0.22)]]),
    "П": (0.7, [[(0.1, 1), (0.1, 0), (0.9, 0), (0.9, 1)]]),
    "Ж": (
        1.0,
        [
            [(0.5, 0), (0.5, 1)],
            [(0.05, 0), (0.5, 0.5), (0.95, 0)],
            [(0.05, 1), (0.5, 0.5), (0.95, 1)],
        ],
    ),
    "Щ": (
        0.9,
        [
            [(0.05, 0), (0.05, 1), (0.85, 1), (0.85, 0)],
            [(0.45, 0), (0.45, 1)],
            [(0.85, 1), (1.0, 1), (1.0, 1.2)],
        ],
    ),
    "Ч": (
        0.65,
        [
            [(0.1, 0), (0.1, 0.35), *_arc(0.4, 0.35, 0.3, 0.2, 180, 90, 8), (0.85, 0.55)],
            [(0.85, 0), (0.85, 1)],
        ],
    ),
    "Ь": (
        0.6,
        [
            [(0.12, 0), (0.12, 1)],
            [(0.12, 0.5), *_arc(0.5, 0.75, 0.38, 0.25, -90, 90), (0.12, 1)],
        ],
    ),
    "О": (0.8, [_arc(0.5, 0.5, 0.45, 0.5, 0, 360, 32)]),
    "С": (0.75, [_arc(0.55, 0.5, 0.45, 0.5, -50, -310, 24)]),
    "К": (0.7, [[(0.1, 0), (0.1, 1)], [(0.9, 0), (0.12, 0.55)], [(0.35, 0.4), (0.9, 1)]]),
    "Х": (0.75, [[(0.05, 0), (0.95, 1)], [(0.95, 0), (0.05, 1)]]),
    "Ш": (0.9, [[(0.05, 0), (0.05, 1), (0.95, 1), (0.95, 0)], [(0.5, 0), (0.5, 1)]]),
    "Н": (0.7, [[(0.1, 0), (0.1, 1)], [(0.9, 0), (0.9, 1)], [(0.1, 0.5), (0.9, 0.5)]]),
    "Т": (0.75, [[(0.0, 0), (1.0, 0)], [(0.5, 0), (0.5, 1)]]),
    "М": (0.85, [[(0.05, 1), (0.1, 0), (0.5, 0.75), (0.9, 0), (0.95, 1)]]),
    "В": (
        0.65,
        [
            [
                (0.1, 0),
                (0.1, 1),
                (0.1, 0),
                *_arc(0.5, 0.24, 0.35, 0.24, -90, 90, 10),
                *_arc(0.5, 0.74, 0.4, 0.26, -90, 90, 10),
                (0.1, 1),
            ]
        ],
    ),
    "6": (
        0.62,
        [_arc(0.5, 0.45, 0.42, 0.45, -60, -180, 10) + _arc(0.5, 0.7, 0.42, 0.3, 180, 540, 24)],
    ),
    "4": (0.7, [[(0.7, 1), (0.7, 0), (0.05, 0.68), (0.95, 0.68)]]),
    "3": (
        0.6,
        [_arc(0.45, 0.25, 0.4, 0.25, -160, 90, 14) + _arc(0.45, 0.75, 0.45, 0.25, -90, 160, 14)],
    ),
    "З": (
        0.75,
        [_arc(0.45, 0.25, 0.42, 0.25, -160, 90, 14) + _arc(0.45, 0.75, 0.48, 0.25, -90, 160, 14)],
    ),
    "7": (0.6, [[(0.05, 0), (0.95, 0), (0.35, 1)]]),
    "1": (0.45, [[(0.1, 0.3), (0.6, 0), (0.6, 1)], [(0.2, 1), (0.95, 1)]]),
    "0": (0.55, [_arc(0.5, 0.5, 0.45, 0.5, -90, 270, 28)]),
    "5": (
        0.6,
        [[(0.9, 0), (0.15, 0), (0.1, 0.45), *_arc(0.45, 0.7, 0.42, 0.3, -120, 160, 16)]],
    ),
}
# Small letters whose block shape differs from the capital's (or is wider for its height).
SMALL: dict[str, tuple[float, Strokes]] = {
    "г": (0.75, [[(0.1, 1), (0.1, 0), (0.9, 0)]]),
    "з": (0.85, SHAPES["З"][1]),
    "ч": (0.8, SHAPES["Ч"][1]),
    "ь": (0.75, SHAPES["Ь"][1]),
    "ж": (1.2, SHAPES["Ж"][1]),
    "о": (0.95, SHAPES["О"][1]),
    "с": (0.85, SHAPES["С"][1]),
    "к": (0.8, SHAPES["К"][1]),
    "х": (0.9, SHAPES["Х"][1]),
    "ш": (1.1, SHAPES["Ш"][1]),
    "н": (0.85, SHAPES["Н"][1]),
    "т": (0.9, SHAPES["Т"][1]),
    "м": (1.0, SHAPES["М"][1]),
    "в": (0.8, SHAPES["В"][1]),
    "п": (0.85, SHAPES["П"][1]),
    # і: a stem to the x-height and its dot (a short stroke) halfway to the cap line
    "і": (0.3, [[(0.5, 0), (0.5, 1)], [(0.5, -0.55), (0.5, -0.45)]]),
}


def shape(char: str) -> tuple[float, Strokes]:
    """The (aspect, strokes) of a character; KeyError naming it when there is none."""
    if char in SMALL:
        return SMALL[char]
    if char in SHAPES:
        return SHAPES[char]
    raise KeyError(f"no stroke shape for {char!r}")


def strokes_on_canvas(char: str, side: int = CANVAS_SIDE) -> list[np.ndarray]:
    """The character's strokes in canvas pixels, standing on the baseline and reaching the cap
    line (capitals, digits) or the x-height line (small letters), centred horizontally."""
    aspect, strokes = shape(char)
    small = char.islower()
    top = GUIDES["x_height" if small else "cap"] * side
    bottom = GUIDES["baseline"] * side
    height = bottom - top
    width = height * aspect
    left = (side - width) / 2
    return [
        np.array([(left + x * width, top + y * height) for x, y in stroke]) for stroke in strokes
    ]


def canvas(char: str, side: int = CANVAS_SIDE) -> np.ndarray:
    """uint8 [side, side] black on white: the character drawn between the guides."""
    return render(strokes_on_canvas(char, side), side=side)
