"""The block-letter source, canvas redrawing and how training mixes the sources."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import label

from bukva.alphabet import DIGITS, LETTERS
from bukva.geometry import CAP_HEIGHT, GUIDES, X_HEIGHT
from bukva.preprocess import normalize_with_geometry, to_ink
from pipelines.common import StageError
from pipelines.data import Dataset
from pipelines.pen_paths import NONE, cell_path, keep_on_canvas, paint
from pipelines.sources import fonts
from pipelines.fit import SMALL_SHAPE_CAPITALS, sampling_weights, with_synthetic_capitals


def test_training_and_evaluation_fonts_are_disjoint_and_cover_every_glyph():
    assert not set(fonts.TRAIN_FONTS) & set(fonts.EVAL_FONTS)
    assert set(fonts.PACKAGES) == set(fonts.LICENCES)
    rows = fonts.check()  # fontTools: every font has all 76 glyphs
    assert sum(r["role"] == "eval" for r in rows) == len(fonts.EVAL_FONTS) == 5
    assert len(fonts.CHARS) == 76 and set(fonts.CHARS) >= set(DIGITS + LETTERS.upper())


def test_a_missing_font_names_its_package(tmp_path):
    with pytest.raises(StageError, match="fonts-dejavu-core"):
        fonts.check(tmp_path)


def test_font_glyphs_stand_on_the_guides():
    path = str(fonts.FONT_DIR / next(iter(fonts.EVAL_FONTS)))
    drawn = dict(fonts.drawings(path, 1, seed=0, amount=NONE))
    brush = 18 / 280
    _, capital = normalize_with_geometry(drawn["Н"])
    _, small = normalize_with_geometry(drawn["н"])
    assert capital.height == pytest.approx(CAP_HEIGHT + brush, abs=0.03)
    assert small.height == pytest.approx(X_HEIGHT + brush, abs=0.03)
    bottom = capital.centre_y + capital.height / 2
    assert bottom == pytest.approx(GUIDES["baseline"] + brush / 2, abs=0.02)


def test_drawings_are_seeded():
    path = str(fonts.FONT_DIR / next(iter(fonts.TRAIN_FONTS)))
    first = fonts.drawings(path, 1, seed=5, amount=fonts.TRAIN_JITTER)[:5]
    again = fonts.drawings(path, 1, seed=5, amount=fonts.TRAIN_JITTER)[:5]
    other = fonts.drawings(path, 1, seed=6, amount=fonts.TRAIN_JITTER)[:5]
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(first, other, strict=True))


def test_marks_above_capitals_stay_on_the_canvas():
    """Ї's dots, Й's breve and Ґ's upturn stand near the canvas top; jittered, they must not
    leave it (about half the training drawings of Ї were an І before)."""
    path = str(fonts.FONT_DIR / "truetype/dejavu/DejaVuSans.ttf")  # marks among the highest
    drawn = fonts.drawings(path, 12, seed=3, amount=fonts.TRAIN_JITTER)
    for char, pixels in drawn:
        ink = pixels < 128
        assert not (ink[:2].any() or ink[-2:].any() or ink[:, :2].any() or ink[:, -2:].any())
        if char in "ЇЙ":  # the marks are there: ink apart from the letter's body
            assert label(ink)[1] >= (3 if char == "Ї" else 2), char


def test_keep_on_canvas_moves_and_only_then_shrinks():
    inside = np.array([[[50.0, 60.0], [200.0, 220.0]]])
    assert np.array_equal(keep_on_canvas(inside, 11), inside)
    above = inside - (0, 80)
    moved = keep_on_canvas(above, 11)
    assert moved[..., 1].min() == pytest.approx(11) and np.ptp(moved[..., 1]) == np.ptp(
        above[..., 1]
    )
    huge = np.array([[-100.0, 0.0], [400.0, 10.0]])
    fitted = keep_on_canvas(huge, 11)
    assert fitted[:, 0].min() == pytest.approx(11) and fitted[:, 0].max() == pytest.approx(269)


def test_a_cell_redrawn_keeps_its_size_in_the_frame():
    cell = np.full((200, 200), 255, np.uint8)
    cell[60:140, 92:95] = 0  # a thin pen stroke 80 px high in the 200 px cell
    canvas = paint(cell_path(to_ink(cell)))
    _, geometry = normalize_with_geometry(canvas)
    assert geometry.height == pytest.approx(0.4 + 18 / 280, abs=0.02)  # 80/200, plus the brush
    assert geometry.centre_y == pytest.approx(0.5, abs=0.01)


def dataset(rows: list[dict]) -> Dataset:
    n = len(rows)
    labels = torch.tensor([r["class_index"] for r in rows])
    upper = torch.tensor([r["uppercase"] for r in rows])
    geometry = torch.tensor([[0.37, 0.3, 0.5, 0.5, 1.0]] * n)
    return Dataset(torch.zeros(n, 1, 28, 28), labels, upper, rows, geometry)


def test_every_class_is_drawn_alike_and_sources_in_their_shares():
    rows = [{"source": "mnist", "class_index": 0, "uppercase": -1, "label": "0"}] * 90
    rows += [{"source": "fonts", "class_index": 0, "uppercase": -1, "label": "0"}] * 10
    rows += [{"source": "rukopys", "class_index": 10, "uppercase": 0, "label": "а"}] * 5
    w = sampling_weights(dataset(rows), 1.0, {"scanned": 0.6, "drawn": 0.0, "fonts": 0.4})
    assert w[:100].sum() == pytest.approx(w[100:].sum())  # uniform prior over classes
    assert w[90:100].sum() / w[:100].sum() == pytest.approx(0.4)  # in-class share of fonts


def test_small_cursive_shapes_at_capital_size_become_capitals():
    letter = sorted(SMALL_SHAPE_CAPITALS)[0]
    rows = [
        {"source": "rukopys", "class_index": 10 + LETTERS.index(letter), "uppercase": 0},
        {"source": "rukopys", "class_index": 10, "uppercase": 0},  # а has scanned capitals
    ]
    rows[0]["label"], rows[1]["label"] = letter, "а"
    out = with_synthetic_capitals(dataset(rows))
    assert len(out) == 3 and out.rows[2]["source"] == "synthetic-capital"
    assert int(out.uppercase[2]) == 1
    assert float(out.geometry[2, 0]) == pytest.approx(0.37 * CAP_HEIGHT / X_HEIGHT)


def test_synthetic_capitals_of_tall_small_glyphs_stand_at_capital_height():
    """A letter whose small scans are taller than the x-height grows less: its capitals reach
    the capitals' median height, not beyond it (с in Rukopys is 0.44 of the cell high)."""
    letter = sorted(SMALL_SHAPE_CAPITALS)[0]
    rows = [{"source": "rukopys", "class_index": 10 + LETTERS.index(letter), "uppercase": 0}] * 3
    rows = [r | {"label": letter} for r in rows]
    small = dataset(rows)
    small.geometry[:, 0] = torch.tensor([0.42, 0.45, 0.48])
    out = with_synthetic_capitals(small)
    assert out.rows[4]["source"] == "synthetic-capital"
    assert float(out.geometry[4, 0]) == pytest.approx(CAP_HEIGHT)  # the median one
    assert float(out.geometry[3, 0]) == pytest.approx(0.42 * CAP_HEIGHT / 0.45)
    assert float(out.geometry[3, 1]) == pytest.approx(0.3 * CAP_HEIGHT / 0.45)  # width alike
