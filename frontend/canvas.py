"""The drawing canvas: our own Streamlit Components v2 element (inline HTML, CSS and JS from
`canvas.js` and `canvas.css` beside this file; no build step, no third-party bundle).

Why our own: streamlit-drawable-canvas held every stroke back 200 ms (a fixed debounce in its
bundle), lost the first stroke of a new session and followed Streamlit releases "best effort".
This one sends the drawing the moment the pointer lifts (mouse, touch or pen: pointer events),
keeps its strokes through reruns, remounts and reloads (the JS module's memory and the tab's
sessionStorage), and re-sends a drawing the app has not acknowledged (so a stroke is never lost
silently). Undo and clear are buttons in the component (keyboard-reachable, Ctrl+Z undoes);
the guide lines come from `bukva.geometry.GUIDES`, so a person knows how tall a capital is.
Its side and brush are `bukva.geometry.CANVAS_SIDE` and `BRUSH_WIDTH`, handed to the JS in
`data` (it has no sizes of its own): training paints its drawings with the same brush.

The conversation with the browser:
- the component's state `drawing` = {png: data URL or null, ids: [stroke ids], seq: n};
- the app's `data` = side, stroke width, guides, labels, `ack` (the last seq it read) and
  `drop_through` (after feedback is saved: strokes with ids up to it leave the canvas, strokes
  drawn since stay).
"""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st

from bukva.geometry import BRUSH_WIDTH, CANVAS_SIDE
from bukva.storage import CANVAS_LIMITS

NAME = "bukva_canvas"
PNG_PREFIX = "data:image/png;base64,"
MAX_PNG_BYTES = CANVAS_LIMITS.max_bytes  # a canvas PNG is a few kB
MAX_BASE64 = 4 * ((MAX_PNG_BYTES + 2) // 3)
HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class CanvasDrawing:
    """What the canvas holds: its PNG (None when empty), the ids of its strokes, and the
    number of the browser's send that carried it (0 before the first)."""

    png: bytes | None = None
    stroke_ids: tuple[int, ...] = ()
    seq: int = 0
    error: str = ""  # why the browser's drawing was refused unread (too large)

    @property
    def last_stroke(self) -> int:
        return max(self.stroke_ids, default=0)


EMPTY = CanvasDrawing()


def parse_state(value: Any, drop_through: int = 0) -> CanvasDrawing:
    """The canvas's `drawing` state as the browser sent it, checked.

    A drawing whose strokes are all already saved (ids up to `drop_through`) is the canvas
    before the browser cleared it: empty. Anything malformed is empty too (the browser is not
    trusted; `read_drawing` checks the PNG itself).
    """
    if not isinstance(value, Mapping):
        return EMPTY
    seq = value.get("seq")
    seq = seq if isinstance(seq, int) and seq >= 0 else 0
    ids = value.get("ids")
    ids = tuple(i for i in ids if isinstance(i, int)) if isinstance(ids, list) else ()
    png = value.get("png")
    if not ids or not isinstance(png, str) or not png.startswith(PNG_PREFIX):
        return CanvasDrawing(None, (), seq)
    if max(ids) <= drop_through:
        return CanvasDrawing(None, (), seq)
    encoded = len(png) - len(PNG_PREFIX)
    if encoded > MAX_BASE64:  # checked before decoding: the browser is not trusted
        size = encoded * 3 // 4
        return CanvasDrawing(None, (), seq, f"{size} bytes; the limit is {MAX_PNG_BYTES}")
    try:
        data = base64.b64decode(png[len(PNG_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        return CanvasDrawing(None, (), seq)
    return CanvasDrawing(data, ids, seq)


@functools.cache
def _component() -> Callable[..., Any]:
    """The registered component (once per process; nothing happens at import time)."""
    return st.components.v2.component(
        NAME,
        css=(HERE / "canvas.css").read_text(encoding="utf-8"),
        js=(HERE / "canvas.js").read_text(encoding="utf-8"),
    )


def _ignore() -> None:
    """The state-change callback: the rerun itself is the reaction."""


def drop_key(key: str) -> str:
    return f"{key}-drop-through"


def peek(key: str = "canvas") -> CanvasDrawing:
    """The drawing that started this run, before the canvas is placed (so the app can answer
    it first and hand the answer to the canvas). Empty before the canvas ever sent one."""
    try:
        seen = st.session_state[key]
    except (KeyError, AttributeError):
        seen = None
    return parse_state(_field(seen, "drawing"), int(st.session_state.get(drop_key(key), 0)))


def drawing_canvas(
    labels: Mapping[str, str],
    guides: Mapping[str, float],
    answer: Mapping[str, str] | None = None,
    key: str = "canvas",
) -> CanvasDrawing:
    """Show the canvas and return what is drawn on it.

    `labels` are the texts in the page's language (undo, clear, canvas, restored, resending);
    `guides` are the guide lines as fractions of the canvas height (`bukva.geometry.GUIDES`);
    `answer` ({char, note, kind}) is shown beside the buttons on narrow screens.
    """
    drop_through = int(st.session_state.get(drop_key(key), 0))
    # The state that started this run is acknowledged by this very run (the browser re-sends
    # a drawing that stays unacknowledged).
    ack = peek(key).seq
    result = _component()(
        key=key,
        data={
            "name": key,
            "side": CANVAS_SIDE,
            "stroke_width": BRUSH_WIDTH,
            "guides": dict(guides),
            "labels": dict(labels),
            "answer": dict(answer) if answer else None,
            "ack": ack,
            "drop_through": drop_through,
        },
        default={"drawing": None},
        on_drawing_change=_ignore,
        width="stretch",
    )
    return parse_state(_field(result, "drawing"), drop_through)


def clear_saved(drawing: CanvasDrawing, key: str = "canvas") -> None:
    """After its feedback is saved, the drawing leaves the canvas (on the next run); strokes
    drawn meanwhile stay."""
    current = int(st.session_state.get(drop_key(key), 0))
    st.session_state[drop_key(key)] = max(current, drawing.last_stroke)


def _field(value: Any, name: str) -> Any:
    if isinstance(value, Mapping):
        return value.get(name)
    return None
