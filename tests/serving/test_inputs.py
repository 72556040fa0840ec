"""Unit tests: decoding the transformer's `image` tensor and raw v2 REST bodies."""

from __future__ import annotations

import base64
import io
import json
import struct

import numpy as np
import pytest
from kserve.errors import InvalidInput
from PIL import Image

from bukva.preprocess import DecodeLimits
from bukva.serving import parse_rest_request
from transformer.images import (
    InputError,
    InputLimits,
    check_canvas_shape,
    from_bytes_tensor,
    image_bytes,
)

LIMITS = DecodeLimits()


def png(size=(40, 40), mode="L") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, 255).save(buf, format="PNG")
    return buf.getvalue()


def test_raw_base64_and_data_url_give_the_same_bytes():
    data = png()
    encoded = base64.b64encode(data)
    assert image_bytes(data, 0, LIMITS) == data
    assert image_bytes(encoded.decode(), 0, LIMITS) == data
    assert image_bytes(encoded, 0, LIMITS) == data
    assert image_bytes("data:image/png;base64," + encoded.decode(), 0, LIMITS) == data
    wrapped = b"\n".join(encoded[i : i + 20] for i in range(0, len(encoded), 20))
    assert image_bytes(wrapped, 0, LIMITS) == data


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        ("не base64", "encoding"),
        ("@@@@", "encoding"),
        (12, "encoding"),
        ("A" * 4_000_000, "too_large"),
    ],
)
def test_unusable_elements_are_named(item, reason):
    with pytest.raises(InputError) as info:
        image_bytes(item, 3, LIMITS)
    assert info.value.reason == reason
    assert "image 3" in str(info.value)


def test_bytes_tensor_limits():
    limits = InputLimits(max_batch=2, decode=DecodeLimits(max_pixels=10_000))
    assert len(from_bytes_tensor([png()], limits)) == 1
    cases = {
        "batch_size": [png()] * 3,
        "shape": [],
        "too_large": [png((200, 200), "1")],  # 40 000 pixels > 10 000, checked before decoding
        "not_an_image": [png()[:60]],
    }
    for reason, values in cases.items():
        with pytest.raises(InputError) as info:
            from_bytes_tensor(values, limits)
        assert info.value.reason == reason, reason


def test_request_budget_counts_every_image_before_decoding(monkeypatch):
    """Each image within its own limits, together over the request's: refused, and not one
    pixel decoded (decode_image never runs)."""
    import transformer.images as images

    limits = InputLimits(max_batch=64, max_request_pixels=3 * 40 * 40, max_request_bytes=2_000)
    assert len(from_bytes_tensor([png()] * 3, limits)) == 3
    decoded = []
    monkeypatch.setattr(images, "decode_image", lambda *a: decoded.append(a))
    heavy = base64.b64encode(png((90, 90), "L")).decode()  # text is what the request carries
    assert len(heavy) * 50 > limits.max_request_bytes > 4 * len(png())
    for values, says in (([png()] * 4, "pixels"), ([heavy] * 50, "bytes")):
        with pytest.raises(InputError) as info:
            from_bytes_tensor(values, limits)
        assert info.value.reason == "request_too_large"
        assert says in str(info.value) and "per request" in str(info.value)
    assert decoded == []
    canvases = InputLimits(max_request_pixels=3 * 40 * 40)
    check_canvas_shape([3, 40, 40, 4], canvases)
    for shape, budget in (([4, 40, 40, 4], canvases), ([3, 40, 40, 4], limits)):  # pixels, bytes
        with pytest.raises(InputError) as info:
            check_canvas_shape(shape, budget)
        assert info.value.reason == "request_too_large"


@pytest.mark.parametrize(
    "shape", [[1, 28, 28, 3], [1, 28, 28], [0, 28, 28, 4], [1, 5000, 5000, 4], [1, 0, 5, 4]]
)
def test_canvas_shapes_are_checked_before_data(shape):
    with pytest.raises(InputError):
        check_canvas_shape(shape, InputLimits())


def binary(header: dict, raw: bytes) -> tuple[bytes, str]:
    head = json.dumps(header).encode()
    return head + raw, str(len(head))


def test_binary_bytes_stay_raw_even_when_not_utf8():
    data = b"\x89PNG\r\n\x1a\n\xff\xfe"
    raw = struct.pack("<I", len(data)) + data
    spec = {
        "name": "image",
        "datatype": "BYTES",
        "shape": [1],
        "parameters": {"binary_data_size": len(raw)},
    }
    body, length = binary({"inputs": [spec], "parameters": {"top_k": 2}}, raw)
    request = parse_rest_request(body, length, "bukva")
    assert request.inputs[0].as_numpy().tolist() == [data]
    assert request.parameters == {"top_k": 2}


def test_json_only_body_without_header_is_parsed():
    body = json.dumps(
        {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": ["eA=="]}]}
    )
    request = parse_rest_request(body.encode(), None, "bukva")
    assert request.inputs[0].data == ["eA=="]


@pytest.mark.parametrize(
    ("body", "length", "says"),
    [
        (b"{not json", None, "not valid JSON"),
        (b"[]", None, "'inputs' list"),
        (b'{"inputs": [1]}', None, "not an object"),
        (
            b'{"inputs": [{"name": "image", "datatype": "BYTES", "shape": [-1], "data": []}]}',
            None,
            "shape",
        ),
        (
            b'{"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1]}]}',
            None,
            "binary_data_size",
        ),
        (b'{"inputs": []}', "x", "not a number"),
        (b'{"inputs": []}', "999", "exceeds"),
    ],
)
def test_malformed_rest_bodies_say_why(body, length, says):
    with pytest.raises(InvalidInput) as info:
        parse_rest_request(body, length, "bukva")
    assert says in str(info.value)


def test_binary_size_beyond_the_body_is_rejected():
    spec = {
        "name": "image",
        "datatype": "BYTES",
        "shape": [1],
        "parameters": {"binary_data_size": 100},
    }
    body, length = binary({"inputs": [spec]}, b"\x00" * 10)
    with pytest.raises(InvalidInput, match="binary_data_size"):
        parse_rest_request(body, length, "bukva")


def test_canvas_arrays_pass_through_unchanged():
    from transformer.images import from_canvas

    array = np.arange(2 * 3 * 3 * 4, dtype=np.uint8).reshape(2, 3, 3, 4)
    images = from_canvas(array)
    assert len(images) == 2 and np.array_equal(images[1], array[1])


def test_expected_request_errors_log_one_line():
    import logging
    import sys

    from kserve.errors import ModelNotReady

    from bukva.serving import OneLineRequestErrors

    def record(exc: Exception) -> logging.LogRecord:
        try:
            raise exc
        except Exception:
            return logging.LogRecord(
                "kserve", logging.ERROR, "x", 1, "Exception:", (), sys.exc_info()
            )

    bad = record(InvalidInput("image 0: not a PNG"))
    assert OneLineRequestErrors().filter(bad)
    assert bad.exc_info is None and bad.levelname == "WARNING" and "not a PNG" in bad.getMessage()
    down = record(ModelNotReady("bukva", "predictor unreachable"))
    OneLineRequestErrors().filter(down)
    assert down.exc_info is None and down.levelname == "ERROR"
    other = record(RuntimeError("a bug"))
    OneLineRequestErrors().filter(other)
    assert other.exc_info is not None  # real bugs keep their stack trace


def test_an_opaque_canvas_is_read_as_rgb_with_the_same_answer():
    """A browser canvas PNG is RGBA with every pixel opaque: served as RGB (half the CPU of
    `to_ink` reading four channels), normalised as the RGBA image is; transparency is kept."""
    from bukva.preprocess import normalize_with_geometry
    from bukva.strokes import render, to_png
    from transformer.images import from_canvas

    drawing = Image.open(io.BytesIO(to_png(render([[(80, 60), (200, 220)], [(90, 200)]]))))
    buffer = io.BytesIO()
    drawing.convert("RGBA").save(buffer, format="PNG")
    [served] = from_bytes_tensor([buffer.getvalue()], InputLimits())
    assert served.mode == "RGB"
    expected, expected_geometry = normalize_with_geometry(drawing.convert("RGBA"))
    image, geometry = normalize_with_geometry(served)
    np.testing.assert_allclose(image, expected, rtol=0, atol=1e-6)
    assert geometry == expected_geometry

    pixels = np.asarray(drawing.convert("RGBA"))[None]
    [array] = from_canvas(pixels)
    assert array.shape == (280, 280, 3)
    np.testing.assert_allclose(normalize_with_geometry(array)[0], expected, rtol=0, atol=1e-6)

    clear = pixels.copy()
    clear[..., 3] = 255 - np.asarray(drawing)  # ink opaque, paper transparent
    assert from_canvas(clear)[0].shape == (280, 280, 4)
    buffer = io.BytesIO()
    Image.fromarray(clear[0]).save(buffer, format="PNG")
    assert from_bytes_tensor([buffer.getvalue()], InputLimits())[0].mode == "RGBA"
