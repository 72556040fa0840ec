"""The drawing page: canvas, the model's answer after every stroke, and feedback.

Every stroke reruns the drawing fragment (the canvas sends its PNG when a stroke ends). A
drawing is known by the hash of its PNG: its prediction is asked for once and kept in the
session, so widget clicks and language changes rerun without calling the service again.
Errors are shown as messages, never as stack traces.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import streamlit as st
from PIL import Image
from streamlit.delta_generator import DeltaGenerator

from bukva.alphabet import CLASSES, is_digit
from bukva.preprocess import BlankImageError, ImageError, decode_image, normalize
from bukva.storage import FeedbackRecord, StoreUnavailable
from frontend import services
from frontend.client import InferenceError, InferenceUnavailable, Prediction
from frontend.i18n import text

CANVAS_SIDE = 280  # 10x the model's 28 px input
STROKE_WIDTH = 18  # ~1/15 of the side: after normalisation about MNIST's 2-3 px strokes
PREVIEW_SIDE = 112  # the 28x28 preview, scaled 4x with nearest-neighbour pixels


@dataclass(frozen=True)
class Drawing:
    """The canvas's current PNG, its hash and the 28x28 image the model will see."""

    png: bytes
    digest: str
    preview: np.ndarray  # float32 [28, 28]


def read_drawing(png: bytes | None) -> Drawing | None:
    """The drawing on the canvas, or None when nothing is drawn.

    Raises:
        ImageError: the canvas sent an image `bukva.preprocess` cannot read (or too large:
            the bytes come from the browser, so they get the same limits as the service's).
    """
    if not png:
        return None
    image = decode_image(png)
    try:
        preview = normalize(image)
    except BlankImageError:
        return None
    return Drawing(png, hashlib.sha256(png).hexdigest()[:16], preview)


def preview_image(preview: np.ndarray) -> Image.Image:
    """The 28x28 model input as a small greyscale image, pixels kept sharp."""
    grey = Image.fromarray((np.clip(preview, 0, 1) * 255).astype(np.uint8))
    return grey.resize((PREVIEW_SIDE, PREVIEW_SIDE), Image.Resampling.NEAREST)


def _predict(drawing: Drawing) -> Prediction:
    """The prediction for this drawing, asking the service only the first time."""
    cached = st.session_state.get("prediction")
    if cached and cached[0] == drawing.digest:
        return cached[1]
    services.metrics().drawings.inc()
    try:
        prediction = services.inference_client().predict(drawing.png)
    except (InferenceUnavailable, InferenceError) as exc:
        reason = "unavailable" if isinstance(exc, InferenceUnavailable) else "error"
        services.metrics().predictions_failed.labels(reason=reason).inc()
        raise
    st.session_state["prediction"] = (drawing.digest, prediction)
    return prediction


def _show_answer(lang: str, drawing: Drawing, prediction: Prediction | None) -> None:
    """Top-1 in large type (with case) beside the 28x28 preview, then the top-k bars.

    The top-1 element carries the drawing's hash as a `drawing-<hash>` class, so a test (or a
    person debugging) can tell which drawing an answer belongs to. Without a prediction (the
    service is down) only the preview is shown.
    """
    with st.container(key="prediction"):
        st.markdown(f"**{text(lang, 'prediction')}**")
        top_col, preview_col = st.columns(2, vertical_alignment="center")
        _show_top(lang, drawing, prediction, top_col)  # first: the answer before the picture
        preview_col.image(preview_image(drawing.preview), caption=text(lang, "preview"))
        if prediction is not None and prediction.status == "ok":
            for char, prob in zip(prediction.labels, prediction.probabilities, strict=True):
                st.progress(min(max(prob, 0.0), 1.0), text=f"{char}  {prob:.1%}")


def _show_top(
    lang: str, drawing: Drawing, prediction: Prediction | None, column: DeltaGenerator
) -> None:
    """The top-1 character and its case, or why there is none."""
    if prediction is None:
        return
    if prediction.status != "ok" or not prediction.labels:
        column.info(text(lang, "model_blank"))
        return
    top = prediction.top
    shown = top.upper() if prediction.uppercase else top
    column.markdown(
        f"<div class='bukva-top drawing-{drawing.digest}'>{shown}</div>", unsafe_allow_html=True
    )
    if prediction.uppercase is not None:
        p = prediction.uppercase_probability
        key = "case_upper" if prediction.uppercase else "case_lower"
        column.caption(text(lang, key, p=p if prediction.uppercase else 1 - p))
    elif not is_digit(top):
        column.caption(text(lang, "case_unknown"))


def _show_feedback_form(lang: str, drawing: Drawing, prediction: Prediction) -> None:
    """The model's answer preselected (so "Save" confirms it), or the right character and case.

    The widgets keep one key for every drawing (new widgets per stroke would be rebuilt in the
    page each time); a new drawing seeds them with its answer through the session state.
    """
    st.markdown(f"**{text(lang, 'feedback_title')}**")
    predicted = prediction.top if prediction.status == "ok" else ""
    if st.session_state.get("fb-for") != drawing.digest:
        st.session_state["fb-for"] = drawing.digest
        st.session_state["fb-char"] = predicted if predicted in CLASSES else CLASSES[0]
        st.session_state["fb-case"] = "upper" if prediction.uppercase else "lower"
    col_char, col_case, col_save = st.columns([2, 2, 1], vertical_alignment="bottom")
    label = col_char.selectbox(
        text(lang, "feedback_char"),
        CLASSES,
        format_func=lambda c: c if is_digit(c) else f"{c.upper()} {c}",
        key="fb-char",
    )
    uppercase: bool | None = None
    if not is_digit(label):
        choice = col_case.radio(
            text(lang, "feedback_case"),
            ["lower", "upper"],
            horizontal=True,
            format_func=lambda o: text(lang, o),
            key="fb-case",
        )
        uppercase = choice == "upper"
    if col_save.button(text(lang, "save"), type="primary", key="fb-save"):
        _save_feedback(lang, drawing, prediction, label, uppercase)


def _save_feedback(
    lang: str, drawing: Drawing, prediction: Prediction, label: str, uppercase: bool | None
) -> None:
    """Queue the record, try to deliver it, then start a fresh canvas with a message (a whole
    page rerun: the messages sit outside the drawing fragment)."""
    version = prediction.model_version or services.served_model_version(
        services.settings().bukva_inference_url
    )
    record = FeedbackRecord(
        label=label,
        uppercase=uppercase,
        predicted=prediction.top if prediction.status == "ok" else "",
        predicted_uppercase=prediction.uppercase,
        probability=prediction.probabilities[0] if prediction.probabilities else 0.0,
        model_version=version or "unknown",
        top_labels=list(prediction.labels),
        top_probabilities=[round(p, 6) for p in prediction.probabilities],
    )
    try:
        delivery = services.outbox().submit(record, drawing.png)
    except (OSError, StoreUnavailable, ValueError) as exc:  # the local disk failed
        st.session_state["notice"] = ("error", text(lang, "save_failed", reason=exc))
        st.rerun()  # the drawing stays on the canvas: the person can try again
    services.metrics().record_feedback(record.agrees, delivery.stored)
    if delivery.stored:
        notice = ("success", text(lang, "saved", text=record.text))
    else:
        notice = ("warning", text(lang, "queued", text=record.text, pending=delivery.pending))
    st.session_state["notice"] = notice
    st.session_state["canvas_round"] = st.session_state.get("canvas_round", 0) + 1
    st.rerun()


@st.fragment(run_every=5)
def _wait_for_service(lang: str, drawing: Drawing) -> None:
    """Shown while the service is down: retries every few seconds, reloads once it answers."""
    try:
        _predict(drawing)
    except InferenceUnavailable:
        url = services.settings().bukva_inference_url
        st.warning(text(lang, "service_down", url=url))
        st.button(text(lang, "retry"), key="retry")
        return
    except InferenceError as exc:
        st.error(text(lang, "service_error", reason=exc))
        return
    st.rerun(scope="app")


def render(lang: str) -> None:
    """The whole drawing page."""
    st.subheader(text(lang, "draw_title"))
    st.caption(text(lang, "draw_help"))
    # Messages go into a container that is always there: were it to come and go, everything
    # after it would move in the page's element tree and the canvas would be rebuilt, empty.
    messages = st.container()
    notice = st.session_state.pop("notice", None)
    if notice:
        getattr(messages, notice[0])(notice[1])
    # Made on the first page load, not on the first stroke: the outbox's retry thread starts
    # (delivering what an earlier run queued) and the first answer does not pay for set-up.
    services.inference_client()
    try:
        pending = services.outbox().pending()
    except ValueError as exc:  # BUKVA_FEEDBACK_URI is not a folder or an s3:// URI
        messages.error(text(lang, "store_config", reason=exc))
    else:
        if pending:
            messages.caption(text(lang, "pending_note", pending=pending))
    _workspace(lang)


@st.fragment
def _workspace(lang: str) -> None:
    """Canvas, answer and feedback form. A fragment: a stroke reruns only this part, not the
    page around it, which keeps the stroke-to-answer time down."""
    # Imported here: the component registers itself with the running Streamlit server, so
    # importing it outside one (a unit test of this module) fails.
    from streamlit_drawable_canvas import st_canvas

    left, right = st.columns([3, 2], gap="large")
    with left:
        canvas = st_canvas(
            stroke_width=STROKE_WIDTH,
            stroke_color="#000000",
            background_color="#FFFFFF",
            update_streamlit=True,
            height=CANVAS_SIDE,
            width=CANVAS_SIDE,
            drawing_mode="freedraw",
            return_image_data=True,
            key=f"canvas-{st.session_state.get('canvas_round', 0)}",
        )
        if st.button(text(lang, "new_drawing"), key="new-drawing"):
            st.session_state["canvas_round"] = st.session_state.get("canvas_round", 0) + 1
            st.rerun()

    objects = (canvas.json_data or {}).get("objects") or []
    try:
        drawing = read_drawing(canvas.image_bytes) if objects else None
    except (ImageError, OSError) as exc:
        right.error(text(lang, "bad_drawing", reason=exc))
        return
    if drawing is None:
        with right, st.container(key="prediction"):
            st.info(text(lang, "nothing_drawn"))
        return
    prediction: Prediction | None = None
    with right:
        try:
            prediction = _predict(drawing)
        except InferenceUnavailable:
            _wait_for_service(lang, drawing)
        except InferenceError as exc:
            st.error(text(lang, "service_error", reason=exc))
        _show_answer(lang, drawing, prediction)
    if prediction is not None:
        _show_feedback_form(lang, drawing, prediction)
