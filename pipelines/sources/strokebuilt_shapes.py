"""How a person builds each block letter and digit from a few strokes (`strokebuilt`'s shapes).

Every glyph is a function of a `Hand` (its random choices) that returns the strokes a person
makes: stems, bowls, diagonals, bars, descenders (Д Ц Щ р у ф), the breve of й, the dots of і
and ї, the upturn of ґ, the bar of є. Several glyphs have more than one form people use (4 open
or closed, 7 with or without a bar, Ж with arms meeting the stem or drawn as an X through it, Л
as a tent or with a hooked leg, у as a y or a cup, а with one storey or two).

Coordinates are in units of the glyph's body height: x to the right, y down, 0 at the top of
the body (the cap line for capitals and digits, the x-height line for small letters) and 1 at
the baseline; ascenders, breves and dots go above 0, descenders below 1. Small letters that are
small capitals in Cyrillic print (в г ж з и й к л м н п т ц ч ш щ ь ю я ...) share the capital's
function. These shapes were written for this source alone, from how block letters are taught
and printed; they share nothing with the behavioural tests' drawings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

STEP = 0.02  # spacing of the points along a stroke, in body heights


@dataclass
class Hand:
    """The random choices behind one drawing: proportions and which form of a glyph."""

    rng: np.random.Generator
    small: bool  # a small letter (x-height body) rather than a capital or digit

    def u(self, lo: float, hi: float) -> float:
        return float(self.rng.uniform(lo, hi))

    def pick(self, n: int) -> int:
        return int(self.rng.integers(n))

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    @property
    def descender(self) -> float:
        """How far below the baseline tails reach (small letters' tails are longer for
        their body)."""
        return self.u(0.28, 0.4) if self.small else self.u(0.14, 0.24)

    @property
    def mark(self) -> float:
        """Height of a dot or breve's centre above the body's top (negative: above)."""
        return -self.u(0.25, 0.4) if self.small else -self.u(0.14, 0.22)


Stroke = np.ndarray  # [K, 2] points (x, y) in body units
Shape = Callable[[Hand], list[Stroke]]


def line(*points: tuple[float, float]) -> Stroke:
    """A polyline through `points`, with points every `STEP`."""
    out = [np.asarray(points[:1], dtype=np.float64)]
    for a, b in pairwise(points):
        a, b = np.asarray(a, float), np.asarray(b, float)
        n = max(1, int(np.ceil(np.linalg.norm(b - a) / STEP)))
        out.append(a + (b - a) * np.linspace(0, 1, n + 1)[1:, None])
    return np.concatenate(out)


def arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float) -> Stroke:
    """An elliptic arc from angle `a0` to `a1` (degrees, clockwise on screen from 3 o'clock:
    90 is the bottom, 270 or -90 the top)."""
    length = np.radians(abs(a1 - a0)) * (rx + ry) / 2
    n = max(2, int(np.ceil(length / STEP)) + 1)
    t = np.radians(np.linspace(a0, a1, n))
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def at(cx: float, cy: float, rx: float, ry: float, a: float) -> tuple[float, float]:
    """The point of an ellipse at angle `a` (as `arc`)."""
    return (cx + rx * np.cos(np.radians(a)), cy + ry * np.sin(np.radians(a)))


def curve(p0, p1, p2, p3) -> Stroke:
    """A cubic Bezier curve."""
    p = np.asarray([p0, p1, p2, p3], dtype=np.float64)
    n = max(2, int(np.ceil(np.linalg.norm(np.diff(p, axis=0), axis=1).sum() / STEP)) + 1)
    t = np.linspace(0, 1, n)[:, None]
    return (
        (1 - t) ** 3 * p[0] + 3 * (1 - t) ** 2 * t * p[1] + 3 * (1 - t) * t**2 * p[2] + t**3 * p[3]
    )


def chain(*parts: Stroke) -> Stroke:
    """Parts drawn without lifting the finger, as one stroke."""
    return np.concatenate(parts)


def dot(hand: Hand, x: float, y: float) -> Stroke:
    """A dot: a tap, or a short dab when the finger slides."""
    if hand.chance(0.5):
        return np.asarray([[x, y]])
    angle = hand.u(0, np.pi)
    d = hand.u(0.02, 0.06) * np.array([np.cos(angle), np.sin(angle)])
    return line((x - d[0], y - d[1]), (x + d[0], y + d[1]))


# Digits (cap height) --------------------------------------------------------------------------


def zero(h: Hand) -> list[Stroke]:
    rx, start = h.u(0.22, 0.3), h.u(-130, -50)
    return [arc(rx, 0.5, rx, 0.5, start, start + 360)]


def one(h: Hand) -> list[Stroke]:
    x = h.u(0.28, 0.34)
    flag = (h.u(0.0, 0.12), h.u(0.18, 0.36))
    strokes = (
        [line(flag, (x, 0.0), (x, 1.0))]
        if h.chance(0.6)
        else [
            line(flag, (x, 0.0)),
            line((x, 0.0), (x, 1.0)),
        ]
    )
    if h.chance(0.35):
        strokes.append(line((x - h.u(0.18, 0.26), 1.0), (x + h.u(0.18, 0.26), 1.0)))
    return strokes


def two(h: Hand) -> list[Stroke]:
    r = h.u(0.24, 0.3)
    bowl = arc(0.3, r, r, r, h.u(195, 215), h.u(380, 410))
    if h.chance(0.5):
        neck = line(tuple(bowl[-1]), (0.02, 1.0), (h.u(0.55, 0.65), 1.0))
    else:
        neck = chain(
            curve(tuple(bowl[-1]), (0.45, 0.6), (0.1, 0.8), (0.02, 1.0)),
            line((0.02, 1.0), (h.u(0.55, 0.65), 1.0)),
        )
    return [chain(bowl, neck)]


def _lower_bowl(h: Hand, top: float) -> Stroke:
    """The lower bowl of 3 and З, from its top round the right to the lower left."""
    ry = (1.0 - top) / 2
    return arc(0.3, top + ry, h.u(0.25, 0.32), ry, 270, h.u(470, 500))


def _round_three(h: Hand) -> list[Stroke]:
    middle = h.u(0.42, 0.52)
    r = middle / 2
    upper = arc(0.3, r, h.u(0.22, 0.28), r, h.u(195, 215), 450)
    return [chain(upper, _lower_bowl(h, middle))]


def three(h: Hand) -> list[Stroke]:
    # The same strokes as З: a form for 3 alone (a flat top) gave the round ones to з, whose
    # every drawing is round (block-font 3s read as з 11 times in 15, from 6).
    return _round_three(h)


def four(h: Hand) -> list[Stroke]:
    bar, x = h.u(0.58, 0.7), h.u(0.42, 0.5)
    if h.chance(0.6):  # closed: a diagonal into the bar, the stem through it
        return [line((x, 0.0), (0.0, bar), (0.62, bar)), line((x, h.u(0.0, 0.3)), (x, 1.0))]
    return [line((0.04, 0.0), (0.02, bar), (0.62, bar)), line((x, 0.0), (x, 1.0))]


def five(h: Hand) -> list[Stroke]:
    neck = h.u(0.38, 0.48)
    ry = (1.0 - neck) / 2
    start = h.u(205, 225)
    bowl = arc(0.3, neck + ry, h.u(0.26, 0.3), ry, start, h.u(490, 515))
    top = line((h.u(0.52, 0.6), 0.0), (0.08, 0.0))
    stem = line((0.08, 0.0), tuple(bowl[0]))
    if h.chance(0.5):
        return [chain(top, stem, bowl)]
    return [top, chain(stem, bowl)]


def six(h: Hand) -> list[Stroke]:
    r = h.u(0.25, 0.3)
    cy = 1.0 - r
    stem = curve((h.u(0.45, 0.58), 0.0), (0.25, 0.05), (0.02, 0.3), (0.03, cy))
    return [chain(stem, arc(0.3, cy, 0.27, r, 180, h.u(-170, -140)))]


def seven(h: Hand) -> list[Stroke]:
    strokes = [line((0.02, 0.0), (0.6, 0.0), (h.u(0.15, 0.3), 1.0))]
    if h.chance(0.3):
        strokes.append(line((0.15, 0.52), (0.52, 0.52)))
    return strokes


def eight(h: Hand) -> list[Stroke]:
    waist = h.u(0.42, 0.5)
    top, bottom = waist / 2, (1.0 - waist) / 2
    return [
        arc(0.3, top, h.u(0.18, 0.24), top, 90, 450),
        arc(0.3, waist + bottom, h.u(0.24, 0.3), bottom, 270, 630),
    ]


def nine(h: Hand) -> list[Stroke]:
    r = h.u(0.25, 0.3)
    loop = arc(0.3, r, 0.27, r, 0, 360)
    if h.chance(0.5):
        return [loop, line((0.57, r), (h.u(0.48, 0.57), 1.0))]
    return [loop, curve((0.57, r), (0.57, 0.7), (0.45, 1.0), (0.1, 0.95))]


# Letters (one function a letter; the small letter uses it too unless it has its own) -------


def a_cap(h: Hand) -> list[Stroke]:
    w, bar = h.u(0.6, 0.8), h.u(0.55, 0.7)
    apex = (w / 2, 0.0)
    legs = (
        [line((0.0, 1.0), apex, (w, 1.0))]
        if h.chance(0.6)
        else [
            line(apex, (0.0, 1.0)),
            line(apex, (w, 1.0)),
        ]
    )
    return [*legs, line((w * bar / 2, bar), (w - w * bar / 2, bar))]


def a_small(h: Hand) -> list[Stroke]:
    if h.chance(0.55):  # one storey: a bowl and a stem
        r = h.u(0.25, 0.3)
        return [
            arc(r, 0.52, r, 0.48, h.u(-40, -20), h.u(300, 330)),
            line((2 * r, 0.02), (2 * r, 1.0)),
        ]
    hook = curve((0.08, 0.15), (0.2, -0.04), (0.55, -0.04), (0.56, 0.3))
    bowl = arc(0.3, 0.72, 0.27, 0.26, -80, -290)
    return [
        chain(hook, line((0.56, 0.3), (0.58, 1.0))),
        chain(line((0.56, 0.48), tuple(bowl[0])), bowl),
    ]


def be(h: Hand) -> list[Stroke]:
    top = -h.u(0.5, 0.62) if h.small else 0.0
    mid = 0.42 if not h.small else h.u(0.05, 0.2)
    ry = (1.0 - mid) / 2
    if h.small and h.chance(0.6):  # a flag, a stem bending down into a bowl: not a 6's curve
        flag = line((h.u(0.5, 0.65), top + h.u(-0.06, 0.06)), (0.1, top))
        stem = curve((0.1, top), (0.04, top + 0.3), (0.02, 0.2), (0.03, 0.62))
        loop = arc(0.3, 0.62, 0.28, 0.38, 180, h.u(-175, -150))
        return [chain(flag, stem, loop)] if h.chance(0.5) else [flag, chain(stem, loop)]
    bowl = arc(0.36, mid + ry, h.u(0.22, 0.28), ry, 270, 450)
    return [
        line((0.6, top), (0.06, top), (0.06, 1.0)),
        chain(line((0.06, mid), (0.36, mid)), bowl, line((0.36, 1.0), (0.06, 1.0))),
    ]


def ve(h: Hand) -> list[Stroke]:
    mid = h.u(0.44, 0.52)
    up, low = mid / 2, (1.0 - mid) / 2
    upper = arc(0.34, up, h.u(0.18, 0.24), up, 270, 450)
    lower = arc(0.36, mid + low, h.u(0.24, 0.3), low, 270, 450)
    bowls = chain(line((0.06, 0.0), (0.34, 0.0)), upper, line((0.34, mid), (0.36, mid)), lower)
    return [line((0.06, 0.0), (0.06, 1.0)), chain(bowls, line((0.36, 1.0), (0.06, 1.0)))]


def he(h: Hand) -> list[Stroke]:
    return [line((0.06, 1.0), (0.06, 0.0), (h.u(0.45, 0.6), 0.0))]


def ghe(h: Hand) -> list[Stroke]:
    x, up = h.u(0.45, 0.6), h.u(0.2, 0.4) if h.small else h.u(0.12, 0.22)
    if h.chance(0.7):  # the upturn rises above the line
        return [line((0.06, 1.0), (0.06, 0.0), (x, 0.0), (x, -up))]
    return [line((0.06, 1.0), (0.06, up), (x, up), (x, 0.0))]


def de(h: Hand) -> list[Stroke]:
    w, tail = h.u(0.7, 0.85), h.descender
    form = h.pick(3)
    if form == 0:  # a trapezoid on a base
        body = line((0.1, 1.0), (0.28, 0.0), (w - 0.12, 0.0), (w - 0.1, 1.0))
    elif form == 1:  # a triangle on a base
        body = line((0.08, 1.0), (w / 2, 0.0), (w - 0.08, 1.0))
    else:  # a box on a base
        body = line((0.14, 1.0), (0.18, 0.0), (w - 0.12, 0.0), (w - 0.12, 1.0))
    base = line((0.0, 1.0 + tail), (0.0, 1.0), (w, 1.0), (w, 1.0 + tail))
    return [body, base]


def ie(h: Hand) -> list[Stroke]:
    w, bar = h.u(0.5, 0.62), h.u(0.45, 0.55)
    return [line((w, 0.0), (0.06, 0.0), (0.06, 1.0), (w, 1.0)), line((0.06, bar), (w - 0.1, bar))]


def ie_small(h: Hand) -> list[Stroke]:
    bar = h.u(0.45, 0.55)
    rx = h.u(0.27, 0.32)
    return [chain(line((0.03, bar), (2 * rx, bar)), arc(rx, 0.5, rx, 0.5, 0, h.u(-320, -300)))]


def ye(h: Hand) -> list[Stroke]:
    rx, bar = h.u(0.28, 0.34), h.u(0.45, 0.55)
    return [
        arc(rx + 0.03, 0.5, rx, 0.5, h.u(-60, -35), h.u(-325, -300)),
        line((0.05, bar), (rx * 1.6, bar)),
    ]


def zhe(h: Hand) -> list[Stroke]:
    w, mid = h.u(0.9, 1.1), h.u(0.42, 0.58)
    c = w / 2
    form = h.pick(3)
    if form == 0:  # an х, then a stem through it (not always through the crossing)
        x = c + h.u(-0.08, 0.08)
        stem = line((x, h.u(-0.06, 0.04)), (x, h.u(0.96, 1.06)))
        return [line((0.04, 0.0), (w - 0.04, 1.0)), line((w - 0.04, 0.0), (0.04, 1.0)), stem]
    stem = line((c, 0.0), (c, 1.0))
    if form == 1:  # arms bent where they meet the stem
        return [stem, line((0.0, 0.0), (c, mid), (0.0, 1.0)), line((w, 0.0), (c, mid), (w, 1.0))]
    gap = h.u(0.08, 0.14)  # arms that bend back short of the stem: > | <
    return [
        stem,
        line((0.0, 0.0), (c - gap, mid), (0.0, 1.0)),
        line((w, 0.0), (c + gap, mid), (w, 1.0)),
    ]


def ze(h: Hand) -> list[Stroke]:
    return _round_three(h)


def y_i(h: Hand) -> list[Stroke]:
    w = h.u(0.55, 0.7)
    if h.chance(0.5):
        return [line((0.06, 0.0), (0.06, 1.0), (w, 0.0), (w, 1.0))]
    return [line((0.06, 0.0), (0.06, 1.0)), line((0.06, 1.0), (w, 0.0)), line((w, 0.0), (w, 1.0))]


def i_(h: Hand) -> list[Stroke]:
    stem = [line((0.2, 0.0), (0.2, 1.0))]
    if h.small:
        return [*stem, dot(h, 0.2, h.mark)]
    if h.chance(0.3):  # with serifs
        return [*stem, line((0.0, 0.0), (0.4, 0.0)), line((0.0, 1.0), (0.4, 1.0))]
    return stem


def yi(h: Hand) -> list[Stroke]:
    y, d = h.mark, h.u(0.12, 0.2)
    return [line((0.2, 0.0), (0.2, 1.0)), dot(h, 0.2 - d, y), dot(h, 0.2 + d, y)]


def short_i(h: Hand) -> list[Stroke]:
    body = y_i(h)
    right = max(float(s[:, 0].max()) for s in body)
    c, y, r = right / 2, h.mark, h.u(0.12, 0.2)
    form = h.pick(3)
    if form == 0:  # a smile
        breve = arc(c, y - r * 0.5, r, r * 0.7, 180, 0)
    elif form == 1:  # a dash
        breve = line((c - r, y), (c + r, y))
    else:  # a small v
        breve = line((c - r, y - 0.06), (c, y + 0.04), (c + r, y - 0.06))
    return [*body, breve]


def ka(h: Hand) -> list[Stroke]:
    w, mid = h.u(0.5, 0.65), h.u(0.45, 0.55)
    stem = line((0.06, 0.0), (0.06, 1.0))
    if h.chance(0.6):
        return [stem, line((w, 0.0), (0.08, mid), (w + 0.02, 1.0))]
    return [
        stem,
        line((w, 0.0), (0.08, mid)),
        line((w - (w - 0.08) * 0.8, mid * 0.8), (w + 0.02, 1.0)),
    ]


def el(h: Hand) -> list[Stroke]:
    w = h.u(0.6, 0.75)
    if h.chance(0.45):  # a tent
        return [line((0.0, 1.0), (w / 2, 0.0), (w, 1.0))]
    hook = (h.u(-0.04, 0.04), h.u(0.88, 1.0))  # a leg hooked at the foot, a roof, a stem
    return [line(hook, (0.14, 0.85), (0.2, 0.0), (w, 0.0), (w, 1.0))]


def em(h: Hand) -> list[Stroke]:
    w, v = h.u(0.7, 0.9), h.u(0.55, 0.8)
    return [line((0.02, 1.0), (0.06, 0.0), (w / 2, v), (w - 0.06, 0.0), (w - 0.02, 1.0))]


def en(h: Hand) -> list[Stroke]:
    w, bar = h.u(0.55, 0.7), h.u(0.45, 0.55)
    return [line((0.06, 0.0), (0.06, 1.0)), line((w, 0.0), (w, 1.0)), line((0.06, bar), (w, bar))]


def o(h: Hand) -> list[Stroke]:
    rx, start = h.u(0.33, 0.42), h.u(-130, -50)
    return [arc(rx, 0.5, rx, 0.5, start, start + 360)]


def pe(h: Hand) -> list[Stroke]:
    w = h.u(0.55, 0.7)
    if h.chance(0.5):
        return [line((0.06, 1.0), (0.06, 0.0), (w, 0.0), (w, 1.0))]
    return [line((0.06, 0.0), (0.06, 1.0)), line((0.06, 0.0), (w, 0.0), (w, 1.0))]


def er(h: Hand) -> list[Stroke]:
    bottom = 1.0 + h.descender if h.small else 1.0
    ry = h.u(0.24, 0.3) if not h.small else h.u(0.4, 0.48)
    bowl = arc(0.34, ry, h.u(0.22, 0.28), ry, 270, 450)
    return [
        line((0.06, 0.0), (0.06, bottom)),
        chain(line((0.06, 0.0), (0.34, 0.0)), bowl, line((0.34, 2 * ry), (0.06, 2 * ry))),
    ]


def es(h: Hand) -> list[Stroke]:
    rx = h.u(0.3, 0.36)
    return [arc(rx + 0.02, 0.5, rx, 0.5, h.u(-60, -35), h.u(-325, -300))]


def te(h: Hand) -> list[Stroke]:
    w = h.u(0.6, 0.8)
    return [line((0.0, 0.0), (w, 0.0)), line((w / 2, 0.0), (w / 2 + h.u(-0.03, 0.03), 1.0))]


def u_(h: Hand) -> list[Stroke]:
    w = h.u(0.6, 0.75)
    bottom = 1.0 + h.descender if h.small else 1.0
    if h.chance(0.55):  # a y: a short arm into the long one
        meet_y = 1.0 if h.small else h.u(0.5, 0.65)
        meet = (w - 0.65 * w * meet_y / (bottom - 0.1), meet_y)
        return [line((0.0, 0.0), meet), line((w, 0.0), (w * 0.35, bottom - 0.1), (0.08, bottom))]
    rx = (w - 0.04) / 2  # a cup, and the right arm goes on down into the tail
    cup = chain(line((0.04, 0.0), (0.04, 0.45)), arc(0.04 + rx, 0.45, rx, 0.3, 180, 0))
    tail = curve((w, 0.0), (w, 0.8 * bottom), (w * 0.8, bottom), (0.1, bottom))
    return [cup, tail]


def ef(h: Hand) -> list[Stroke]:
    c = h.u(0.4, 0.5)
    top, bottom = (-h.u(0.45, 0.6), 1.0 + h.descender) if h.small else (0.0, 1.0)
    mid, ry = (0.5, 0.42) if h.small else (0.42, 0.26)
    rx = h.u(0.32, 0.42)
    if h.chance(0.6):
        bowls = [arc(c, mid, rx, ry, 0, 360)]
    else:  # two half bowls either side of the stem
        bowls = [arc(c, mid, rx, ry, 270, 90), arc(c, mid, rx, ry, 270, 450)]
    return [line((c, top), (c, bottom)), *bowls]


def ha(h: Hand) -> list[Stroke]:
    w = h.u(0.55, 0.75)
    return [line((0.0, 0.0), (w, 1.0)), line((w, 0.0), (0.0, 1.0))]


def _stems_on_a_base(h: Hand, n: int, tail: bool) -> list[Stroke]:
    """Ц (two stems), Ш (three), Щ (three and a tail): stems standing on one base line."""
    gap = h.u(0.3, 0.4) if n == 3 else h.u(0.55, 0.7)
    xs = [0.06 + gap * i for i in range(n)]
    right = xs[-1]
    if tail:
        right += h.u(0.06, 0.14)
        form = h.pick(3)
        depth = h.descender
        if form == 0:  # straight down
            tail_pts = [(right, 1.0), (right, 1.0 + depth)]
        elif form == 1:  # down and out
            tail_pts = [(right, 1.0), (right + 0.08, 1.0 + depth)]
        else:  # a tail with a hook
            tail_pts = [(right, 1.0), (right, 1.0 + depth), (right - 0.06, 1.0 + depth + 0.03)]
        base = line((xs[0], 0.0), (xs[0], 1.0), *tail_pts)
    else:
        base = line((xs[0], 0.0), (xs[0], 1.0), (xs[-1], 1.0), (xs[-1], 0.0))
    strokes = [base]
    if tail:
        strokes.append(line((xs[-1], 0.0), (xs[-1], 1.0)))
    strokes += [line((x, 0.0), (x, 1.0)) for x in xs[1:-1]]
    return strokes


def tse(h: Hand) -> list[Stroke]:
    return _stems_on_a_base(h, 2, tail=True)


def che(h: Hand) -> list[Stroke]:
    w, bar = h.u(0.5, 0.62), h.u(0.45, 0.6)
    if h.chance(0.5):  # a rounded shoulder
        arm = chain(
            line((0.06, 0.0), (0.06, bar - 0.2)),
            curve((0.06, bar - 0.2), (0.06, bar), (0.2, bar), (w, bar)),
        )
    else:
        arm = line((0.06, 0.0), (0.06, bar), (w, bar))
    return [arm, line((w, 0.0), (w, 1.0))]


def sha(h: Hand) -> list[Stroke]:
    return _stems_on_a_base(h, 3, tail=False)


def shcha(h: Hand) -> list[Stroke]:
    return _stems_on_a_base(h, 3, tail=True)


def soft(h: Hand) -> list[Stroke]:
    mid = h.u(0.4, 0.52)
    ry = (1.0 - mid) / 2
    bowl = arc(0.32, mid + ry, h.u(0.24, 0.3), ry, 270, 450)
    return [
        line((0.06, 0.0), (0.06, 1.0)),
        chain(line((0.06, mid), (0.32, mid)), bowl, line((0.32, 1.0), (0.06, 1.0))),
    ]


def yu(h: Hand) -> list[Stroke]:
    rx, bar = h.u(0.24, 0.32), h.u(0.45, 0.55)
    cx = 0.3 + rx
    return [
        line((0.06, 0.0), (0.06, 1.0)),
        line((0.06, bar), (cx - rx, bar)),
        arc(cx, 0.5, rx, 0.5, -90, 270),
    ]


def ya(h: Hand) -> list[Stroke]:
    x, mid = h.u(0.5, 0.62), h.u(0.45, 0.55)
    ry = mid / 2
    bowl = arc(x - 0.26, ry, 0.24, ry, -90, -270)
    return [
        line((x, 0.0), (x, 1.0)),
        chain(line((x, 0.0), (x - 0.26, 0.0)), bowl, line((x - 0.26, mid), (x, mid))),
        line((x - 0.2, mid), (0.0, 1.0)),
    ]


DIGIT_SHAPES: dict[str, Shape] = dict(
    zip("0123456789", (zero, one, two, three, four, five, six, seven, eight, nine), strict=True)
)
LETTER_SHAPES: dict[str, Shape] = dict(
    zip(
        "абвгґдеєжзиіїйклмнопрстуфхцчшщьюя",
        (
            a_cap,
            be,
            ve,
            he,
            ghe,
            de,
            ie,
            ye,
            zhe,
            ze,
            y_i,
            i_,
            yi,
            short_i,
            ka,
            el,
            em,
            en,
            o,
            pe,
            er,
            es,
            te,
            u_,
            ef,
            ha,
            tse,
            che,
            sha,
            shcha,
            soft,
            yu,
            ya,
        ),
        strict=True,
    )
)
SMALL_SHAPES: dict[str, Shape] = {"а": a_small, "е": ie_small}


def shape(char: str) -> tuple[Shape, bool]:
    """The function that draws `char` and whether it is a small letter."""
    if char in DIGIT_SHAPES:
        return DIGIT_SHAPES[char], False
    small = char == char.lower()
    return SMALL_SHAPES.get(char, LETTER_SHAPES[char.lower()]) if small else LETTER_SHAPES[
        char.lower()
    ], small
