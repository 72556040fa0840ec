"""`bukva.geometry` and `bukva.strokes`: guide lines, geometry in the frame, canvas strokes."""

from __future__ import annotations

import numpy as np
import pytest

from bukva.geometry import (
    BRUSH_WIDTH,
    CANVAS_SIDE,
    CAP_HEIGHT,
    GUIDES,
    UNKNOWN,
    X_HEIGHT,
    Geometry,
    ink_geometry,
)
from bukva.preprocess import normalize, normalize_with_geometry, to_ink
from bukva.strokes import centre_lines, render
from tests.support.letters import canvas


def test_guides_are_ordered_and_measured_from_the_rukopys_cell():
    assert 0 < GUIDES["cap"] < GUIDES["x_height"] < GUIDES["baseline"] < 1
    assert GUIDES["baseline"] - GUIDES["cap"] == pytest.approx(CAP_HEIGHT)
    assert GUIDES["baseline"] - GUIDES["x_height"] == pytest.approx(X_HEIGHT)


def test_guide_drawings_have_the_guides_geometry():
    brush = BRUSH_WIDTH / CANVAS_SIDE  # half the brush sticks out above and below
    _, capital = normalize_with_geometry(canvas("Н"))
    _, small = normalize_with_geometry(canvas("н"))
    assert capital.height == pytest.approx(CAP_HEIGHT + brush, abs=0.01)
    assert small.height == pytest.approx(X_HEIGHT + brush, abs=0.01)
    assert capital.centre_x == pytest.approx(0.5, abs=0.01)
    assert small.centre_y > capital.centre_y  # both stand on the baseline


def test_geometry_does_not_change_the_model_input():
    x, geometry = normalize_with_geometry(canvas("Н"))
    assert np.array_equal(x, normalize(canvas("Н")))
    assert geometry.known and geometry.vector()[-1] == 1.0


def test_bbox_crop_is_measured_in_the_whole_frame():
    image = np.full((200, 200), 255, np.uint8)
    image[50:150, 80:120] = 0
    image[5:10, 5:10] = 0  # a speck outside the crop
    _, geometry = normalize_with_geometry(image, bbox=(40, 160, 70, 130))
    assert geometry == Geometry(0.5, 0.2, 0.5, 0.5, True)
    assert Geometry.from_vector(geometry.vector()).vector().tolist() == geometry.vector().tolist()
    assert ink_geometry(np.zeros((5, 5))) == UNKNOWN
    assert UNKNOWN.vector().tolist() == [0.0] * 5


def test_render_paints_the_canvas_brush():
    pixels = render([np.array([(50.0, 140.0), (230.0, 140.0)])])
    assert pixels.shape == (CANVAS_SIDE, CANVAS_SIDE) and pixels.dtype == np.uint8
    assert (pixels[:, 140] < 128).sum() == BRUSH_WIDTH  # line width
    row = np.flatnonzero(pixels[140] < 128)
    assert row[0] == 50 - BRUSH_WIDTH // 2 and row[-1] == 230 + BRUSH_WIDTH // 2 - 1  # round caps
    assert pixels[0, 0] == 255 and 0 < pixels[140 - BRUSH_WIDTH // 2, 140] < 255  # antialiased


def test_centre_lines_keep_shapes_and_dots():
    image = np.full((100, 100), 255, np.uint8)
    image[20:80, 45:55] = 0  # a thick bar
    image[5:9, 48:52] = 0  # a small dot above it, as on і
    segments = centre_lines(to_ink(image))
    xs, ys = segments[..., 0], segments[..., 1]
    assert np.abs(xs - 50).max() < 3  # the bar thinned to its centre line
    assert ys.min() < 10 and ys.max() > 70  # the dot survived and the bar kept its length
    redrawn = render(list(segments), side=100, width=6)
    assert (redrawn[7, 45:55] < 128).any() and (redrawn[50, 45:55] < 128).any()


GOLDEN_GEOMETRY = {  # (height, width, centre_x, centre_y, known) of each preprocessing fixture
    "rukopys_zh": [0.27, 0.58, 0.5, 0.5, 1.0],
    "mnist_7": [0.7143, 0.5714, 0.5, 0.6071, 1.0],  # its own 28x28 frame: prepare marks MNIST
    "canvas_rgba": [0.5464, 0.4786, 0.5, 0.5018, 1.0],  # unknown instead (re-framed by its makers)
}


@pytest.mark.parametrize("name", sorted(GOLDEN_GEOMETRY))
def test_golden_geometry(name):
    """Pins what the transformer and training compute for the same fixtures (the predictor's
    `geometry` input): a change here changes what the case head sees."""
    from tests.support.golden import load_fixture

    _, geometry = normalize_with_geometry(load_fixture(name))
    assert geometry.vector().tolist() == pytest.approx(GOLDEN_GEOMETRY[name], abs=1e-4)
