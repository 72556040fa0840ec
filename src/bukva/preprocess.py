"""The one image normalization: any drawing in, the model's 28x28 input out.

Training (`pipelines/prepare.py`), evaluation, the serving transformer and the tests all call
`normalize`; nothing else may produce model input. Steps, in order:

1. `to_ink`: white ink on black, float in [0, 1], whatever the source polarity or alpha.
2. Crop to the ink's bounding box and pad it to a square (aspect ratio kept).
3. Scale the square to a working resolution and normalise the stroke width there, so a thin
   scanned pen, a thick MNIST stroke and a canvas brush all reach the model alike.
4. Downscale (antialiased bilinear) to a 20x20 box and place it in 28x28 by its centre of
   mass, as MNIST was made.

Step 2 throws size and position away; `normalize_with_geometry` also returns them (the ink's
box as fractions of its frame, `bukva.geometry.Geometry`), for the case head: training,
evaluation and the transformer all take both from this one function.

Standard library, numpy and Pillow only.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from bukva.alphabet import IMAGE_SIZE
from bukva.geometry import Geometry, box_geometry

BOX = 20  # the glyph's longer side in the 28x28 output, as in MNIST
WORK = 4 * BOX  # working resolution for stroke-width normalisation
TARGET_STROKE = 8.0  # stroke width at WORK resolution (2 px in the 20 px box)
INK_THRESHOLD = 0.2  # ink level that counts towards the bounding box
MIN_INK_PIXELS = 4  # fewer full-ink pixels than this is a blank drawing
MIN_CONTRAST = 0.15  # darkest-to-lightest difference below this is a blank drawing
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # RGB -> grey (ITU-R 601)
OPAQUE = 250  # uint8 alpha from which `to_ink` ignores alpha (250/255 >= its 0.98)


class ImageError(ValueError):
    """The input cannot be turned into model input; the message says why."""


class BlankImageError(ImageError):
    """Nothing is drawn: the image has no ink."""


@dataclass(frozen=True)
class DecodeLimits:
    """Guards for untrusted image bytes (size and decompression bombs)."""

    max_bytes: int = 2_000_000
    max_pixels: int = 4_000_000
    max_side: int = 4096


def decode_image(data: bytes, limits: DecodeLimits = DecodeLimits()) -> Image.Image:
    """Decode PNG or JPEG bytes into a fully loaded Pillow image.

    Raises:
        ImageError: empty, too large, not PNG/JPEG, truncated or corrupt data.
    """
    if not data:
        raise ImageError("image is empty (0 bytes)")
    if len(data) > limits.max_bytes:
        raise ImageError(f"image is {len(data)} bytes; the limit is {limits.max_bytes}")
    try:
        image = Image.open(io.BytesIO(data), formats=("PNG", "JPEG"))
    except Exception as exc:  # Pillow raises several types for unreadable data
        raise ImageError(f"not a PNG or JPEG image ({type(exc).__name__})") from None
    width, height = image.size
    if width * height > limits.max_pixels or max(width, height) > limits.max_side:
        raise ImageError(
            f"image is {width}x{height} pixels; the limit is {limits.max_pixels} pixels "
            f"and {limits.max_side} per side"
        )
    try:
        image.load()
    except Exception as exc:
        raise ImageError(f"image data is truncated or corrupt ({exc})") from None
    return image


def to_ink(image: Image.Image | np.ndarray) -> np.ndarray:
    """White-on-black ink intensity in [0, 1] as float32 [H, W].

    Accepts a Pillow image or an array: [H, W] grey, [H, W, 3] RGB or [H, W, 4] RGBA, uint8
    (0-255) or float (0-1). With transparency, painted pixels are ink (a canvas with a clear
    background). Otherwise the border's median is the paper and ink is whatever differs
    from it, so both black-on-white scans and white-on-black MNIST work.
    """
    if isinstance(image, Image.Image):
        if image.mode not in ("L", "RGB", "RGBA"):
            image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
        array = np.asarray(image)
    else:
        array = np.asarray(image)
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise ImageError(f"expected an [H, W], [H, W, 3] or [H, W, 4] image, got {array.shape}")
    if min(array.shape[:2]) < 1:
        raise ImageError(f"image has no pixels (shape {array.shape})")
    scale = 255.0 if array.dtype == np.uint8 else 1.0
    pixels = array.astype(np.float32) / scale
    if pixels.ndim == 3 and pixels.shape[2] == 4 and pixels[..., 3].min() < 0.98:
        return np.clip(pixels[..., 3], 0.0, 1.0)
    if pixels.ndim == 3:
        rgb = pixels[..., :3] if pixels.shape[2] >= 3 else np.repeat(pixels, 3, axis=2)
        grey = rgb @ LUMA
    else:
        grey = pixels
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    paper = float(np.median(border))
    ink = np.abs(grey - paper)
    top = float(ink.max())
    if top < MIN_CONTRAST:
        return np.zeros_like(ink)
    return np.clip(ink / top, 0.0, 1.0)


ALIGN = 16  # numpy's float32 matmul groups pixels so; see `_ink_region`


def _aligned(start: int, stop: int, size: int) -> tuple[int, int]:
    """Widen columns [start, stop) so the grey matmul computes each pixel as on the whole row:
    start on a multiple of ALIGN, stop on one inside the row's whole groups, or the row's end."""
    start -= start % ALIGN
    stop += -stop % ALIGN
    return start, (stop if stop <= size - size % ALIGN else size)


def _grey(array: np.ndarray, channels: bool) -> np.ndarray:
    """`to_ink`'s grey for uint8 grey pixels, or RGB / opaque RGBA ones (`channels`, last
    axis), by the same arithmetic."""
    pixels = array.astype(np.float32) / 255.0
    if not channels:
        return pixels
    return pixels[..., :3] @ LUMA


def _ink_region(image: Image.Image | np.ndarray) -> tuple[np.ndarray, int, int, int, int] | None:
    """`to_ink` on the part of a uint8 image that holds anything but paper, or None.

    Applies to grey, RGB and opaque RGBA uint8 images whose border is one grey level (Pillow's
    "L", in C) - a canvas: pixels at that level differ from the paper by under 2/255, far
    below every ink threshold after `to_ink`'s contrast stretch, so only the box around the
    other pixels is turned into floats. Returns (ink, row offset, column offset, frame height,
    frame width): inside the box the ink is bit-identical to `to_ink`'s. None: use `to_ink`.
    """
    if isinstance(image, Image.Image) and image.mode not in ("L", "RGB", "RGBA"):
        return None
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim not in (2, 3) or min(array.shape[:2]) < 2:
        return None
    rgb = array.ndim == 3
    if rgb:
        if array.shape[2] not in (3, 4) or (
            array.shape[2] == 4 and int(array[..., 3].min()) < OPAQUE
        ):
            return None
        source = image if isinstance(image, Image.Image) else Image.fromarray(array)
        level = np.asarray(source.convert("L"))
    else:
        level = array
    height, width = array.shape[:2]
    paper_level = int(level[0, 0])
    sides = (level[0], level[-1], level[:, 0], level[:, -1])
    if any(int(side.min()) != paper_level or int(side.max()) != paper_level for side in sides):
        return None
    # The paper: the median of the border's grey, each pixel computed as `to_ink` does.
    first = _aligned(0, 1, width)
    last = _aligned(width - 1, width, width)
    grey_border = np.concatenate([
        _grey(array[0], rgb), _grey(array[-1], rgb),
        _grey(array[:, first[0] : first[1]], rgb)[:, 0],
        _grey(array[:, last[0] : last[1]], rgb)[:, -1],
    ])  # fmt: skip
    low, high = float(grey_border.min()), float(grey_border.max())
    paper = low if low == high else float(np.median(grey_border))  # one value: its median
    drawn = level != paper_level
    rows = np.flatnonzero(drawn.any(axis=1))
    if rows.size == 0:
        return np.zeros((1, 1), dtype=np.float32), 0, 0, height, width
    cols = np.flatnonzero(drawn.any(axis=0))
    r0, r1 = int(rows[0]), int(rows[-1]) + 1
    c0, c1 = _aligned(int(cols[0]), int(cols[-1]) + 1, width)
    ink = np.abs(_grey(array[r0:r1, c0:c1], rgb) - paper)
    top = float(ink.max())
    if top < MIN_CONTRAST:
        return np.zeros_like(ink), r0, c0, height, width
    return np.clip(ink / top, 0.0, 1.0), r0, c0, height, width


def _morph(ink: np.ndarray, grow: bool, square: bool) -> np.ndarray:
    """One 3x3 grey-level dilation (grow) or erosion, plus- or square-shaped."""
    fill = 0.0 if grow else 1.0
    h, w = ink.shape
    padded = np.full((h + 2, w + 2), fill, dtype=ink.dtype)  # np.pad's result, made directly
    padded[1 : 1 + h, 1 : 1 + w] = ink
    shifts = [(1, 1), (0, 1), (2, 1), (1, 0), (1, 2)]
    if square:
        shifts += [(0, 0), (0, 2), (2, 0), (2, 2)]
    # Pairwise in the order a stacked reduction takes: the same values, without the stack.
    pick = np.maximum if grow else np.minimum
    out = pick(padded[1 : 1 + h, 1 : 1 + w], padded[0:h, 1 : 1 + w])
    for dy, dx in shifts[2:]:
        pick(out, padded[dy : dy + h, dx : dx + w], out=out)
    return out


def stroke_width(ink: np.ndarray) -> float:
    """Estimated stroke width in pixels: twice the ink area over its boundary length."""
    mask = ink > 0.5
    area = int(mask.sum())
    if area == 0:
        return 0.0
    inner = mask[1:-1, 1:-1] & mask[:-2, 1:-1] & mask[2:, 1:-1] & mask[1:-1, :-2] & mask[1:-1, 2:]
    boundary = area - int(inner.sum())
    return 2.0 * area / max(boundary, 1)


def normalize_stroke(ink: np.ndarray, target: float = TARGET_STROKE) -> np.ndarray:
    """Grow or thin the strokes towards `target` pixels wide (each step changes it by ~2)."""
    width = stroke_width(ink)
    steps = round((target - width) / 2.0)
    if steps < 0:
        # Never thin a stroke below half its width: thin strokes must not vanish.
        steps = -min(-steps, int(width // 4))
    for i in range(abs(steps)):
        ink = _morph(ink, grow=steps > 0, square=i % 2 == 1)
    return ink


def _resize(ink: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Antialiased bilinear resize of a float image; size is (width, height)."""
    return np.asarray(Image.fromarray(ink, mode="F").resize(size, Image.Resampling.BILINEAR))


def normalize(
    image: Image.Image | np.ndarray,
    bbox: tuple[int, int, int, int] | None = None,
) -> np.ndarray:
    """Turn one drawing into the model's input: float32 [28, 28], white ink on black, 0-1.

    Args:
        image: the drawing, in any form `to_ink` accepts.
        bbox: optional crop (row_min, row_max, col_min, col_max), inclusive, applied first.

    Raises:
        BlankImageError: nothing is drawn.
        ImageError: the input is not an image this function understands.
    """
    return normalize_with_geometry(image, bbox)[0]


def normalize_with_geometry(
    image: Image.Image | np.ndarray,
    bbox: tuple[int, int, int, int] | None = None,
) -> tuple[np.ndarray, Geometry]:
    """`normalize`, plus the drawing's geometry in its frame (`bukva.geometry`): the ink's
    height, width and centre as fractions of the whole image (the canvas, the Rukopys cell),
    which `normalize` throws away and the case head needs. A `bbox` crop is measured in the
    whole image's frame.

    Raises:
        BlankImageError, ImageError: as `normalize`.
    """
    region = _ink_region(image) if bbox is None else None
    if region is not None:
        ink, r_off, c_off, frame_h, frame_w = region
    else:
        ink = to_ink(image)
        frame_h, frame_w = ink.shape
        r_off = c_off = 0
    if bbox is not None:
        r0, r1, c0, c1 = bbox
        r_off, c_off = max(r0, 0), max(c0, 0)
        ink = ink[r_off : r1 + 1, c_off : c1 + 1]
    mask = ink > INK_THRESHOLD
    if int((ink > 0.5).sum()) < MIN_INK_PIXELS:
        raise BlankImageError("nothing is drawn: the image has no ink")
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    box = (rows[0] + r_off, rows[-1] + r_off, cols[0] + c_off, cols[-1] + c_off)
    geometry = box_geometry(tuple(int(v) for v in box), frame_h, frame_w)
    ink = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]

    # Longer side to WORK pixels, aspect ratio kept, centred on a WORK x WORK square.
    h, w = ink.shape
    scale = WORK / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    work = np.zeros((WORK + 8, WORK + 8), dtype=np.float32)  # margin for dilation
    top, left = 4 + (WORK - nh) // 2, 4 + (WORK - nw) // 2
    work[top : top + nh, left : left + nw] = _resize(ink, (nw, nh))
    work = normalize_stroke(np.clip(work, 0.0, 1.0))

    # Down to the 20x20 box (the margin scales with it), then centre of mass in 28x28.
    side = BOX + 2
    small = np.clip(_resize(work, (side, side)), 0.0, 1.0)
    out = np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    total = float(small.sum())
    ys, xs = np.indices(small.shape)
    cy, cx = float((ys * small).sum() / total), float((xs * small).sum() / total)
    max_off = IMAGE_SIZE - side
    oy = int(np.clip(round(IMAGE_SIZE / 2 - cy), 0, max_off))
    ox = int(np.clip(round(IMAGE_SIZE / 2 - cx), 0, max_off))
    out[oy : oy + side, ox : ox + side] = small
    return out, geometry


def normalize_batch(images: list) -> np.ndarray:
    """Normalize several drawings into one float32 [N, 1, 28, 28] batch."""
    return np.stack([normalize(im) for im in images])[:, None, :, :].astype(np.float32)


def geometry_batch(geometries: list[Geometry]) -> np.ndarray:
    """Geometries as the model's float32 [N, 5] `geometry` input (`bukva.geometry.FEATURES`)."""
    return np.stack([g.vector() for g in geometries]).reshape(-1, 5).astype(np.float32)
