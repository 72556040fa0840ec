"""Turn the transformer's v2 `image` tensor into drawings `bukva.preprocess` can normalise.

Two encodings are accepted, chosen by the tensor's datatype:

* BYTES [N]: one PNG or JPEG per element. Raw bytes (gRPC, or the REST binary-data extension)
  or base64 text (the v2 JSON convention for binary data; a `data:image/...;base64,` prefix
  is allowed, as a browser's `canvas.toDataURL()` makes).
* UINT8 [N, H, W, 4]: canvas RGBA pixels, as a drawing widget hands them over.

A request is budgeted as a whole too (`InputLimits`): the bytes its images carry and the pixels
they decode to, checked from the encoded sizes and the image headers before any pixel is
decoded, so that 64 images of the per-image maximum (about 1 GiB of pixels) cannot reach a
768 Mi pod.

Every failure is an `InputError` whose `reason` is a short metric label and whose message
tells the client what was wrong. Standard library, numpy and Pillow only (no torch, no kserve).
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from bukva.preprocess import OPAQUE, DecodeLimits, ImageError, decode_image

MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")  # PNG, JPEG
DATA_URL = b"base64,"


class InputError(ValueError):
    """The request's image tensor is unusable. `reason` is a short label for metrics."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class InputLimits:
    """Guards applied before any pixel is decoded: per image (`decode`) and per request.

    `max_request_bytes` bounds the image data one request carries (encoded images, base64
    text as sent, or canvas pixels at 4 bytes each; the servers also refuse an HTTP body or a
    gRPC message larger than this). `max_request_pixels` bounds the pixels one request decodes
    to: 8 Mpx is a full batch of 64 canvases of 280x280 (5 Mpx) with room, or two images of the
    per-image maximum, about 32 MB decoded plus one image's float working copies.
    """

    max_batch: int = 64
    decode: DecodeLimits = field(default_factory=DecodeLimits)
    max_request_bytes: int = 16 * 1024 * 1024
    max_request_pixels: int = 8_000_000


def _check_batch(n: int, limits: InputLimits) -> None:
    if n < 1:
        raise InputError("shape", "the request holds no images (N = 0)")
    if n > limits.max_batch:
        raise InputError(
            "batch_size", f"{n} images in one request; the limit is {limits.max_batch}"
        )


def image_bytes(item: object, index: int, limits: DecodeLimits) -> bytes:
    """PNG/JPEG bytes from one BYTES element: raw bytes as they are, base64 text decoded."""
    if isinstance(item, str):
        try:
            item = item.encode("ascii")
        except UnicodeEncodeError:
            raise InputError("encoding", f"image {index}: text is not base64") from None
    if not isinstance(item, bytes | bytearray | memoryview):
        raise InputError("encoding", f"image {index}: expected bytes, got {type(item).__name__}")
    data = bytes(item)
    if data.startswith(MAGIC):
        return data
    # base64 of max_bytes is 4/3 as long; refuse anything longer before decoding it.
    if len(data) > limits.max_bytes * 4 // 3 + 256:
        raise InputError(
            "too_large", f"image {index}: {len(data)} bytes; the limit is {limits.max_bytes}"
        )
    marker = data.find(DATA_URL, 0, 64)
    if data.startswith(b"data:") and marker > 0:
        data = data[marker + len(DATA_URL) :]
    try:
        return base64.b64decode(b"".join(data.split()), validate=True)
    except (binascii.Error, ValueError):
        raise InputError(
            "encoding", f"image {index}: neither PNG/JPEG bytes nor base64 of them"
        ) from None


def without_opaque_alpha(image: Image.Image) -> Image.Image:
    """An RGBA image whose alpha channel `to_ink` would ignore, as RGB (Pillow, in C).

    A browser canvas's PNG is RGBA with every pixel opaque. `to_ink` reads it as RGB then,
    but only after turning all four channels into floats; dropping the alpha first halves
    `normalize`'s CPU for a 280x280 canvas (2.1 -> 1.1 ms) with the same answer (the grey
    values differ by at most 1e-7, one float32 rounding).
    """
    if image.mode == "RGBA" and image.getchannel("A").getextrema()[0] >= OPAQUE:
        return image.convert("RGB")
    return image


def _header_pixels(data: bytes) -> int:
    """Width * height from an image's header (no pixel decoded); 0 when unreadable, which
    `decode_image` then reports."""
    try:
        with Image.open(io.BytesIO(data), formats=("PNG", "JPEG")) as image:
            width, height = image.size
    except Exception:  # Pillow raises several types for unreadable data
        return 0
    return width * height


def _item_size(item: object) -> int:
    return len(item) if isinstance(item, str | bytes | bytearray | memoryview) else 0


def from_bytes_tensor(values: Sequence[object], limits: InputLimits) -> list[Image.Image]:
    """Decode each BYTES element into a Pillow image (size and bomb limits applied, per image
    and per request)."""
    _check_batch(len(values), limits)
    sent = sum(_item_size(item) for item in values)
    if sent > limits.max_request_bytes:
        raise InputError(
            "request_too_large",
            f"the request's images are {sent} bytes; the limit is {limits.max_request_bytes} "
            "per request",
        )
    encoded = [image_bytes(item, index, limits.decode) for index, item in enumerate(values)]
    for index, data in enumerate(encoded):  # each image's own limit first, as decode_image says
        if len(data) > limits.decode.max_bytes:
            limit = limits.decode.max_bytes
            raise InputError(
                "too_large", f"image {index}: image is {len(data)} bytes; the limit is {limit}"
            )
    pixels = sum(_header_pixels(data) for data in encoded)
    if pixels > limits.max_request_pixels:
        raise InputError(
            "request_too_large",
            f"the request's images hold {pixels} pixels; the limit is "
            f"{limits.max_request_pixels} per request",
        )
    images = []
    for index, data in enumerate(encoded):
        try:
            images.append(without_opaque_alpha(decode_image(data, limits.decode)))
        except ImageError as exc:
            reason = "too_large" if "limit" in str(exc) else "not_an_image"
            raise InputError(reason, f"image {index}: {exc}") from None
    return images


def check_canvas_shape(shape: Sequence[int], limits: InputLimits) -> None:
    """Validate UINT8 [N, H, W, 4] before its data is materialised."""
    if len(shape) != 4 or shape[3] != 4:
        raise InputError("shape", f"a UINT8 canvas must have shape [N, H, W, 4], got {list(shape)}")
    n, height, width = shape[0], shape[1], shape[2]
    _check_batch(n, limits)
    pixels, side = limits.decode.max_pixels, limits.decode.max_side
    if height < 1 or width < 1:
        raise InputError("shape", f"canvas is {width}x{height}; it needs at least 1x1 pixels")
    if height * width > pixels or max(height, width) > side:
        raise InputError(
            "too_large",
            f"canvas is {width}x{height}; the limit is {pixels} pixels and {side} per side",
        )
    total = n * height * width
    if total > limits.max_request_pixels or total * 4 > limits.max_request_bytes:
        raise InputError(
            "request_too_large",
            f"{n} canvases of {width}x{height} are {total} pixels ({total * 4} bytes); the "
            f"limit is {limits.max_request_pixels} pixels and {limits.max_request_bytes} "
            "bytes per request",
        )


def from_canvas(array: np.ndarray) -> list[np.ndarray]:
    """Split a checked UINT8 [N, H, W, 4] array into N images: RGBA, or RGB when opaque
    (see `without_opaque_alpha`)."""
    return [
        np.ascontiguousarray(image[..., :3]) if image[..., 3].min() >= OPAQUE else image
        for image in np.ascontiguousarray(array, dtype=np.uint8)
    ]
