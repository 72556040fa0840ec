"""The stroke-built block letters: every glyph in both cases, on its guides, inside the canvas,
the details that tell twins apart, and the same pixels from the same seed."""

from __future__ import annotations

import numpy as np
import pytest

from bukva.alphabet import CLASSES, DIGITS, LETTERS
from bukva.geometry import BRUSH_WIDTH, CANVAS_SIDE, CAP_HEIGHT, GUIDES, X_HEIGHT
from bukva.preprocess import normalize_with_geometry
from pipelines.draw import _run, stroke_jobs
from pipelines.pen_paths import NONE
from pipelines.sources import strokebuilt
from pipelines.sources.strokebuilt_shapes import Hand, zhe

BRUSH = BRUSH_WIDTH / CANVAS_SIDE
EXACT = strokebuilt.FINGER.scaled(0)


def exact(char: str, seed: int = 0) -> np.ndarray:
    """A drawing without the hand's variation (the shape's own choices still vary by seed)."""
    return strokebuilt.drawing(char, np.random.default_rng(seed), NONE, EXACT)


def ink_rows(pixels: np.ndarray) -> tuple[int, int]:
    rows = np.flatnonzero((pixels < 128).any(axis=1))
    return int(rows[0]), int(rows[-1])


def test_the_stage_draws_every_glyph_of_both_cases_and_every_class():
    jobs = stroke_jobs({"strokebuilt": True, "strokebuilt_copies": 2, "seed": 3})
    drawn = [d for job in jobs for d in _run(job)]
    records = [d[0] for d in drawn]
    assert len(records) == 2 * len(strokebuilt.CHARS) == 2 * (10 + 2 * 33)
    assert {r.label for r in records} == set(CLASSES)
    assert len({r.id for r in records}) == len(records)
    assert all(r.source == "strokebuilt" for r in records)
    for letter in LETTERS:
        cases = sorted(r.uppercase for r in records if r.label == letter)
        assert cases == [0, 0, 1, 1], letter
    assert all(r.uppercase == -1 for r in records if r.label in DIGITS)
    assert all(d[1].shape == (28, 28) and d[1].max() > 0.5 for d in drawn)


def test_the_stage_leaves_them_out_when_off():
    assert stroke_jobs({"strokebuilt": False, "strokebuilt_copies": 80}) == []
    assert stroke_jobs({"strokebuilt": True, "strokebuilt_copies": 0}) == []
    assert stroke_jobs({}) == []


def test_drawings_are_seeded_per_glyph():
    first = strokebuilt.drawings("щ", 3, seed=5)
    assert all(
        np.array_equal(a, b) for a, b in zip(first, strokebuilt.drawings("щ", 3, 5), strict=True)
    )
    assert not np.array_equal(first[0], strokebuilt.drawings("щ", 1, seed=6)[0])
    assert not np.array_equal(first[0], first[1])  # copies differ from each other
    assert np.array_equal(first[1], strokebuilt.drawings("щ", 2, seed=5)[1])
    with pytest.raises(ValueError, match="strokebuilt"):
        strokebuilt.drawings("q", 1, seed=5)


@pytest.mark.parametrize("char", strokebuilt.CHARS)
def test_every_drawing_has_ink_and_stays_inside_the_canvas(char):
    for pixels in strokebuilt.drawings(char, 6, seed=1):
        assert pixels.shape == (CANVAS_SIDE, CANVAS_SIDE) and pixels.dtype == np.uint8
        ink = pixels < 128
        assert ink.sum() > 900  # more than a dot: at least a stroke ~50 px long
        border = np.concatenate(
            [ink[:2].ravel(), ink[-2:].ravel(), ink[:, :2].ravel(), ink[:, -2:].ravel()]
        )
        assert not border.any()


@pytest.mark.parametrize(
    ("small", "capital"), [("н", "Н"), ("ш", "Ш"), ("о", "О"), ("х", "Х"), ("м", "М"), ("к", "К")]
)
def test_bodies_stand_on_the_guides_by_case(small, capital):
    _, low = normalize_with_geometry(exact(small))
    _, high = normalize_with_geometry(exact(capital))
    assert low.height == pytest.approx(X_HEIGHT + BRUSH, abs=0.02)
    assert high.height == pytest.approx(CAP_HEIGHT + BRUSH, abs=0.02)
    for g in (low, high):
        assert g.centre_y + g.height / 2 == pytest.approx(GUIDES["baseline"] + BRUSH / 2, abs=0.02)


def test_with_a_hands_variation_the_cases_still_differ_in_size():
    def median_height(char: str) -> float:
        return float(
            np.median(
                [normalize_with_geometry(p)[1].height for p in strokebuilt.drawings(char, 20, 2)]
            )
        )

    for char in "нпкш":
        small, capital = median_height(char), median_height(char.upper())
        assert small == pytest.approx(X_HEIGHT + BRUSH, rel=0.15)
        assert capital == pytest.approx(CAP_HEIGHT + BRUSH, rel=0.15)
    assert median_height("7") == pytest.approx(CAP_HEIGHT + BRUSH, rel=0.15)


def test_tails_reach_below_the_baseline_only_where_the_letter_has_one():
    baseline = GUIDES["baseline"] * CANVAS_SIDE + BRUSH_WIDTH / 2
    for char in "щцдрууфЩЦД":
        assert ink_rows(exact(char))[1] > baseline + 15, char
    for char in "шиьгШИЬГ":
        assert ink_rows(exact(char))[1] == pytest.approx(baseline, abs=2), char


def test_marks_above_the_body_where_the_letter_has_them():
    for char, line in (
        ("й", "x_height"),
        ("ї", "x_height"),
        ("і", "x_height"),
        ("Й", "cap"),
        ("Ї", "cap"),
        ("ґ", "x_height"),
        ("Ґ", "cap"),
        ("б", "x_height"),
    ):
        top = GUIDES[line] * CANVAS_SIDE - BRUSH_WIDTH / 2
        assert ink_rows(exact(char))[0] < top - 8, char
    for char, line in (
        ("и", "x_height"),
        ("г", "x_height"),
        ("И", "cap"),
        ("І", "cap"),
        ("Г", "cap"),
    ):
        top = GUIDES[line] * CANVAS_SIDE - BRUSH_WIDTH / 2
        assert ink_rows(exact(char))[0] == pytest.approx(top, abs=2), char


def test_yi_has_two_dots_and_i_one():
    def dots(char: str) -> int:
        pixels = exact(char)
        above = pixels[: int(GUIDES["x_height"] * CANVAS_SIDE - BRUSH_WIDTH)] < 128
        columns = above.any(axis=0).astype(int)
        return int((np.diff(columns) == 1).sum())

    assert dots("ї") == 2 and dots("і") == 1


def test_zhe_is_sometimes_an_x_through_a_stem():
    """The form people draw that was read as х: two diagonals corner to corner, each crossing
    the stem, and the stem."""
    hand = Hand(np.random.default_rng(0), small=True)
    forms = [zhe(hand) for _ in range(60)]

    def crossing(stroke: np.ndarray, stem_x: float) -> bool:
        (x0, y0), (x1, y1) = stroke[0], stroke[-1]
        return (x0 - stem_x) * (x1 - stem_x) < 0 and abs(y1 - y0) > 0.9

    x_forms = 0
    for strokes in forms:
        stems = [s for s in strokes if np.ptp(s[:, 0]) < 1e-9]
        assert len(stems) == 1
        x_forms += sum(crossing(s, stems[0][0, 0]) for s in strokes) == 2
    assert 10 <= x_forms <= 50  # one form of three, not the only one
