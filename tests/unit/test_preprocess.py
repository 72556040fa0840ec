"""`bukva.preprocess`: golden outputs and the properties the model relies on."""

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from bukva.preprocess import (
    BlankImageError,
    DecodeLimits,
    ImageError,
    decode_image,
    normalize,
    normalize_batch,
    stroke_width,
)
from tests.support.golden import CASES, FIXTURES, load_fixture


@pytest.mark.parametrize("name", list(CASES))
def test_golden_output(name):
    expected = np.load(FIXTURES / f"golden_{name}.npy")
    out = normalize(load_fixture(name))
    assert out.dtype == np.float32 and out.shape == (28, 28)
    np.testing.assert_allclose(out, expected, atol=1e-5)


@pytest.mark.parametrize("name", list(CASES))
def test_output_is_white_on_black_centred_in_the_box(name):
    out = normalize(load_fixture(name))
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert out.max() > 0.9
    border = np.concatenate([out[0], out[-1], out[:, 0], out[:, -1]])
    assert border.max() < 0.5  # the glyph's 20x20 box stays inside the frame
    ys, xs = np.indices(out.shape)
    cy, cx = (ys * out).sum() / out.sum(), (xs * out).sum() / out.sum()
    assert abs(cy - 14) < 1.0 and abs(cx - 14) < 1.0


def test_polarity_and_alpha_give_the_same_input():
    glyph = np.asarray(load_fixture("rukopys_zh").convert("L"))
    as_scan = normalize(glyph)  # black on white
    as_mnist = normalize(255 - glyph)  # white on black
    rgba = np.zeros((*glyph.shape, 4), np.uint8)
    rgba[..., 3] = 255 - glyph  # black strokes on a clear canvas
    np.testing.assert_allclose(as_scan, as_mnist, atol=1e-5)
    np.testing.assert_allclose(as_scan, normalize(rgba), atol=1e-5)


def test_position_and_size_on_the_canvas_do_not_matter():
    def drawing(offset, scale):
        im = Image.new("L", (400, 400), 255)
        d = ImageDraw.Draw(im)
        pts = [(offset + scale * x, offset + scale * y) for x, y in [(0, 0), (60, 0), (30, 80)]]
        d.line([*pts, pts[0]], fill=0, width=int(6 * scale))
        return np.asarray(im)

    a, b = normalize(drawing(20, 1.0)), normalize(drawing(150, 2.5))
    assert np.abs(a - b).mean() < 0.03


def test_stroke_width_is_normalized():
    def circle(width):
        im = Image.new("L", (200, 200), 0)
        ImageDraw.Draw(im).ellipse((20, 20, 180, 180), outline=255, width=width)
        return np.asarray(im)

    thin, thick = normalize(circle(4)), normalize(circle(30))
    assert abs(stroke_width(thin) - stroke_width(thick)) < 1.0


def test_blank_canvas_is_reported_not_guessed():
    with pytest.raises(BlankImageError):
        normalize(np.zeros((280, 280, 4), np.uint8))
    with pytest.raises(BlankImageError):
        normalize(np.full((100, 100), 255, np.uint8))
    speck = np.full((100, 100), 255, np.uint8)
    speck[50, 50] = 0
    with pytest.raises(BlankImageError):
        normalize(speck)


def test_batch_shape():
    batch = normalize_batch([load_fixture(n) for n in CASES])
    assert batch.shape == (3, 1, 28, 28) and batch.dtype == np.float32


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def test_decode_roundtrip_matches_direct_normalization():
    image = load_fixture("canvas_rgba")
    decoded = decode_image(_png(image))
    np.testing.assert_array_equal(normalize(decoded), normalize(image))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"hello, not an image", "not a PNG or JPEG"),
        (_png(Image.new("L", (50, 50)))[:60], "truncated"),
        (b"GIF89a" + b"\0" * 100, "not a PNG or JPEG"),
    ],
)
def test_bad_bytes_are_rejected_with_a_reason(data, reason):
    with pytest.raises(ImageError, match=reason):
        decode_image(data)


def test_size_limits_guard_against_bombs():
    huge = _png(Image.new("1", (5000, 5000)))  # small file, 25 Mpx once decoded
    assert len(huge) < 100_000
    with pytest.raises(ImageError, match="5000x5000 pixels"):
        decode_image(huge)
    with pytest.raises(ImageError, match="bytes; the limit"):
        decode_image(_png(Image.new("L", (100, 100))), DecodeLimits(max_bytes=10))


def test_wrong_array_shapes_are_rejected():
    with pytest.raises(ImageError, match="expected an"):
        normalize(np.zeros((2, 3, 4, 5)))
    with pytest.raises(ImageError, match="expected an"):
        normalize(np.zeros((10, 10, 2)))
