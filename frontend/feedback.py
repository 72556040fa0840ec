"""Saving feedback from the app's pages (drawing and collection): the checks before a record
is queued, the record itself, and the message for the person.

In order: the session's rate limit (`BUKVA_FEEDBACK_PER_MINUTE` saves in any 60 s; the message
says why and for how long), the drawing re-encoded in its stored form from the image the page
already decoded (`bukva.storage.canonical_image`), the record (validated against the schema when
the outbox writes it), then the outbox (bounded: when full, nothing is stored and the message
says so; what is queued stays). Nothing is stored unless every check passes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import streamlit as st
from PIL import Image

from bukva.storage import (
    FeedbackRecord,
    InvalidRecord,
    OutboxFull,
    StoreUnavailable,
    canonical_image,
    label_probability,
)
from frontend import resources
from frontend.client import Prediction
from frontend.i18n import text

WINDOW_S = 60.0
TIMES_KEY = "feedback-times"  # when this session saved, for the rate limit


def rate_wait(times: Sequence[float], now: float, limit: int, window: float = WINDOW_S) -> float:
    """Seconds until one more save fits `limit` saves in any `window` (0: it fits now)."""
    recent = sorted(t for t in times if now - t < window)
    if len(recent) < limit:
        return 0.0
    return recent[len(recent) - limit] + window - now


def submit(
    lang: str,
    image: Image.Image,
    prediction: Prediction | None,
    label: str,
    uppercase: bool | None,
    *,
    source: str = "canvas",
    mode: str | None = None,
    prompt: dict[str, Any] | None = None,
) -> tuple[str, str, FeedbackRecord | None]:
    """Save one drawing with its confirmed label: (message kind, message, the record or None
    when nothing was stored or queued)."""
    now = time.time()
    times = [t for t in st.session_state.get(TIMES_KEY, []) if now - t < WINDOW_S]
    limit = resources.settings().bukva_feedback_per_minute
    wait = rate_wait(times, now, limit)
    if wait > 0:
        message = text(lang, "rate_limited", count=len(times), limit=limit, wait=math.ceil(wait))
        return "warning", message, None
    answered = prediction is not None and prediction.status == "ok"
    labels = list(prediction.labels) if answered else []
    probabilities = [round(p, 6) for p in prediction.probabilities] if answered else []
    version = (prediction.model_version if prediction else "") or _served_version()
    drawing = canonical_image(image)
    try:
        record = FeedbackRecord(
            label=label,
            uppercase=uppercase,
            predicted=prediction.top if answered else "",
            predicted_uppercase=prediction.uppercase if answered else None,
            probability=probabilities[0] if probabilities else 0.0,
            model_version=version or "unknown",
            top_labels=labels,
            top_probabilities=probabilities,
            source=source,
            mode=mode or (prediction.mode if prediction else "anything"),
            image_sha256=drawing.sha256,
            label_probability=label_probability(label, labels, probabilities),
            prompt=prompt,
        )
        delivery = resources.outbox().submit(record, drawing.png)
    except OutboxFull as exc:
        return "warning", text(lang, "outbox_full", reason=exc), None
    except (OSError, StoreUnavailable, ValueError, InvalidRecord) as exc:
        return "error", text(lang, "save_failed", reason=exc), None
    st.session_state[TIMES_KEY] = [*times, now]
    resources.metrics().record_feedback(record.agrees, delivery.stored)
    if delivery.stored:
        return "success", text(lang, "saved", text=record.text), record
    return "warning", text(lang, "queued", text=record.text, pending=delivery.pending), record


def _served_version() -> str:
    try:
        return resources.served_model_version(resources.settings().bukva_inference_url)
    except Exception:  # the service is down: the record says "unknown"
        return ""


def page_header(lang: str, page: str, notice_key: str) -> Any:
    """A drawing page's title (`{page}_title`), help line (`{page}_help`) and message area,
    showing the notice the last save left in `notice_key`. The area is always there: were it
    to come and go, everything after it would move in the page's element tree and the canvas
    would be remounted."""
    st.subheader(text(lang, f"{page}_title"))
    st.caption(text(lang, f"{page}_help"))
    messages = st.container()
    notice = st.session_state.pop(notice_key, None)
    if notice:
        getattr(messages, notice[0])(notice[1])
    return messages
