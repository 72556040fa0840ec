"""Canvas drawings for the feedback tests: what the app's canvas sends (280x280 RGBA PNG, black
strokes on a transparent background), made with Pillow."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def canvas_png(offset: int = 0, side: int = 280) -> bytes:
    """One vertical stroke, shifted right by `offset` pixels (distinct offsets, distinct PNGs)."""
    rgba = np.zeros((side, side, 4), dtype=np.uint8)
    top, bottom = side * 60 // 280, side * 220 // 280
    left = side * 100 // 280 + offset
    rgba[top:bottom, left : left + side * 30 // 280] = (0, 0, 0, 255)
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, format="PNG")
    return buf.getvalue()
