"""The drawing page: canvas, the model's answer after every stroke, and feedback.

Every stroke reruns the drawing fragment: the canvas (`frontend.canvas`, our own component)
sends its PNG the moment the pointer lifts. A drawing is known by the hash of its PNG: its
prediction is asked for once per mode and kept in the session, so widget clicks and language
changes rerun without calling the service again. The app does not decode the drawing to answer
it: the PNG goes to the transformer as it came, and the transformer's answer carries the 28x28
image the model saw (the preview) and whether anything is drawn at all (`status`). Errors are
shown as messages, never as stack traces.

Above the canvas the person says what they draw: letters, digits or anything (the default;
`bukva.alphabet.MODES`). The choice is remembered for the session (across pages too), sent
with every request, and stored with the feedback.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import numpy as np
import streamlit as st
from PIL import Image

from bukva.alphabet import CLASSES, DEFAULT_MODE, IMAGE_SIZE, MODES, is_digit
from bukva.contract import STATUS_OK
from bukva.geometry import GUIDES
from bukva.preprocess import BlankImageError, ImageError, decode_image, normalize
from bukva.storage import CANVAS_LIMITS
from frontend import answer, canvas, feedback, resources
from frontend.client import InferenceError, InferenceUnavailable, Prediction
from frontend.i18n import text

CANVAS_LABELS = ("undo", "undo_hint", "clear", "canvas", "restored", "resending")
# The answer block (`frontend.answer`): the top-1 on its guides beside the preview, the case in
# words below; a doubtful or missing case answer in amber.
ANSWER_CSS = """
.bukva-answer{display:flex;flex-wrap:wrap;gap:.25rem 1.5rem;align-items:flex-end}
.bukva-top{line-height:0}
.bukva-char,.bukva-twin-char{position:absolute;width:1px;height:1px;overflow:hidden;
clip:rect(0 0 0 0)}
.bukva-top,.bukva-twin{line-height:0}
.bukva-or{align-self:center;font-size:1.3rem}
.bukva-twin-note{order:2;flex-basis:100%;margin:.25rem 0 0;font-size:1.05rem;color:#a15c00}
.bukva-preview{order:1;margin:0}
.bukva-preview img{image-rendering:pixelated;border:1px solid #d6d6d9;display:block}
.bukva-preview figcaption{font-size:.85rem;opacity:.7}
.bukva-case{order:2;flex-basis:100%;margin:.25rem 0 0;font-size:1.05rem}
.bukva-case.case-uncertain,.bukva-case.case-unknown{color:#a15c00}
.bukva-version{order:3;flex-basis:100%;margin:0;font-size:.85rem;opacity:.7}
@media (max-width:640px){h1{font-size:1.6rem!important}h3{font-size:1.15rem!important}}
"""


@dataclass(frozen=True)
class Drawing:
    """The canvas's current PNG (as the browser sent it) and its hash."""

    png: bytes
    digest: str


def read_drawing(png: bytes | None) -> Drawing | None:
    """The drawing on the canvas, or None when the canvas has no strokes. Not decoded: the
    transformer reads it (and says whether it holds any ink)."""
    if not png:
        return None
    return Drawing(png, hashlib.sha256(png).hexdigest()[:16])


def read_image(png: bytes) -> Image.Image | None:
    """The drawing's image, to be stored, or None when it has no ink. For the save paths, which
    store a drawing while the service is down too, so they cannot take its word on blankness.

    Raises:
        ImageError: the canvas sent an image `bukva.preprocess` cannot read, or one too large
            for a canvas drawing (`bukva.storage.CANVAS_LIMITS`: the bytes come from the
            browser).
    """
    image = decode_image(png, CANVAS_LIMITS)
    try:
        normalize(image)  # the transformer's blank test (`bukva.preprocess.MIN_INK_PIXELS`)
    except BlankImageError:
        return None
    return image


def preview_image(model_input: np.ndarray) -> Image.Image:
    """The 28x28 model input as a greyscale image (the page shows it 4x, pixels kept sharp)."""
    return Image.fromarray((np.clip(model_input, 0, 1) * 255).astype(np.uint8), "L")


MODE_KEY = "mode"  # the session's mode; the widget's own key is cleared when it is not shown


def _mode_choice(lang: str) -> str:
    """Letters, digits or anything: the session's choice (default anything), as a segmented
    control above the canvas. Clicking the chosen option again (which would choose nothing)
    keeps it."""
    if MODE_KEY not in st.session_state:
        st.session_state[MODE_KEY] = DEFAULT_MODE
    saved = st.session_state[MODE_KEY]
    st.session_state["mode-choice"] = saved  # seeds the widget on every page and rerun
    st.segmented_control(
        text(lang, "mode"),
        list(MODES),
        format_func=lambda mode: text(lang, f"mode_{mode}"),
        key="mode-choice",
        on_change=_remember_mode,
    )
    return saved


def _remember_mode() -> None:
    chosen = st.session_state.get("mode-choice")
    if chosen in MODES:
        st.session_state[MODE_KEY] = chosen


def _predict(drawing: Drawing, mode: str) -> tuple[Prediction, float]:
    """The prediction for this drawing in this mode and the milliseconds the service took (0
    when the session already had it: the service is asked only the first time)."""
    cached = st.session_state.get("prediction")
    if cached and cached[0] == (drawing.digest, mode):
        return cached[1], 0.0
    resources.metrics().drawings.inc()
    started = time.perf_counter()
    try:
        prediction = resources.inference_client().predict(drawing.png, mode, model_input=True)
    except (InferenceUnavailable, InferenceError) as exc:
        reason = "unavailable" if isinstance(exc, InferenceUnavailable) else "error"
        resources.metrics().predictions_failed.labels(reason=reason).inc()
        raise
    st.session_state["prediction"] = ((drawing.digest, mode), prediction)
    return prediction, (time.perf_counter() - started) * 1000


def _show_answer(
    lang: str, drawing: Drawing, prediction: Prediction, timings: dict[str, float]
) -> None:
    """The top-1 on the guide lines with its case in words, the model version and the 28x28
    image the model saw (the transformer's; one HTML element: the answer first, nothing
    fetched afterwards), then the top-k bars."""
    with st.container(key="prediction"):
        seen = prediction.model_input
        preview = "" if seen is None else answer.preview_uri(preview_image(seen))
        st.html(
            f"<p><strong>{text(lang, 'prediction')}</strong></p>"
            + answer.answer_html(lang, drawing.digest, prediction, GUIDES, preview, timings)
        )
        if timings["inference"] > 0:  # a new answer, not a rerun that already showed it
            _let_answer_paint()
        if prediction.status == STATUS_OK:
            for char, prob in zip(prediction.labels, prediction.probabilities, strict=True):
                st.progress(min(max(prob, 0.0), 1.0), text=f"{char}  {prob:.1%}")


def _let_answer_paint() -> None:
    """Wait `BUKVA_ANSWER_PAINT_MS` before the rest of the run. Streamlit flushes a session's
    messages every 5 ms as the script makes them; the browser's React batches what arrives
    together and paints once. Without a pause the answer reaches the screen only after the
    probabilities, the canvas (a component message of about 19 kB every run) and the feedback form
    are rendered too, 40-50 ms after its own message arrived; with it the answer is painted
    alone first (measured in docs/frontend.md)."""
    pause = resources.settings().bukva_answer_paint_ms
    if pause > 0:
        time.sleep(pause / 1000)


def _show_feedback_form(
    lang: str, drawing: Drawing, strokes: canvas.CanvasDrawing, prediction: Prediction
) -> None:
    """The model's answer preselected, case included (so "Save" confirms it), or the right
    character and case. Digits have no case choice, as the answer says.

    The widgets keep one key for every drawing (new widgets per stroke would be rebuilt in the
    page each time); a new drawing seeds them with its answer through the session state.
    """
    st.markdown(f"**{text(lang, 'feedback_title')}**")
    predicted = prediction.top if prediction.status == "ok" else ""
    if st.session_state.get("fb-for") != (drawing.digest, prediction.mode):
        st.session_state["fb-for"] = (drawing.digest, prediction.mode)
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
        _save_feedback(lang, drawing, strokes, prediction, label, uppercase)


def _save_feedback(
    lang: str,
    drawing: Drawing,
    strokes: canvas.CanvasDrawing,
    prediction: Prediction,
    label: str,
    uppercase: bool | None,
) -> None:
    """Save the drawing (`frontend.feedback.submit`: rate limit, stored form, outbox), then
    clear the saved strokes from the canvas with a message (a whole page rerun: the messages sit
    outside the drawing fragment). When nothing was saved the drawing stays on the canvas, so
    the person can try again. The PNG is decoded here, once: the answer did not need it."""
    try:
        image = decode_image(drawing.png, CANVAS_LIMITS)
    except ImageError as exc:
        st.error(text(lang, "bad_drawing", reason=exc))
        return
    kind, message, record = feedback.submit(lang, image, prediction, label, uppercase)
    st.session_state["notice"] = (kind, message)
    if record is not None:
        canvas.clear_saved(strokes)
    st.rerun()


@st.cache_resource(show_spinner=False)
def _warm_up() -> bool:
    """Make a preview once per process, at the first page load: the first PNG encoding pays
    for first-use set-up, which the first stroke then does not."""
    blank = np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    return answer.preview_uri(preview_image(blank)) != ""


@st.fragment(run_every=5)
def _wait_for_service(lang: str, drawing: Drawing, mode: str) -> None:
    """Shown while the service is down: retries every few seconds, reloads once it answers."""
    try:
        _predict(drawing, mode)
    except InferenceUnavailable:
        url = resources.settings().bukva_inference_url
        st.warning(text(lang, "service_down", url=url))
        st.button(text(lang, "retry"), key="retry")
        return
    except InferenceError as exc:
        st.error(text(lang, "service_error", reason=exc))
        return
    st.rerun(scope="app")


def render(lang: str) -> None:
    """The whole drawing page."""
    messages = feedback.page_header(lang, "draw", "notice")
    # Made on the first page load, not on the first stroke: the outbox's retry thread starts
    # (delivering what an earlier run queued) and the first answer does not pay for set-up.
    resources.inference_client()
    _warm_up()
    try:
        pending = resources.outbox().pending()
    except ValueError as exc:  # BUKVA_FEEDBACK_URI is not a folder or an s3:// URI
        messages.error(text(lang, "store_config", reason=exc))
    else:
        if pending:
            messages.caption(text(lang, "pending_note", pending=pending))
    _workspace(lang)


@st.fragment
def _workspace(lang: str) -> None:
    """Canvas, answer and feedback form. A fragment: a stroke reruns only this part, not the
    page around it, which keeps the stroke-to-answer time down.

    The answer is made before the canvas is placed (from the drawing that started this run),
    so the canvas can show it too: on a phone the answer column is below the canvas, out of
    sight while drawing.
    """
    started, started_at = time.perf_counter(), time.time() * 1000
    left, right = st.columns(2, gap="large")
    strokes = canvas.peek()
    with left:
        mode = _mode_choice(lang)
    if strokes.error:  # refused before decoding (too large): no answer, nothing stored
        with right:
            st.error(text(lang, "refused", reason=strokes.error))
    with right:
        drawing, prediction = _answer(lang, strokes, mode, started, started_at)
    with left:
        labels = {key: text(lang, key) for key in CANVAS_LABELS}
        shown = canvas.drawing_canvas(labels, GUIDES, _badge(lang, prediction))
    if shown != strokes:  # never an answer for another drawing than the canvas's
        if st.session_state.get("canvas-recheck") != shown.seq:
            st.session_state["canvas-recheck"] = shown.seq
            st.rerun(scope="fragment")
        st.error(text(lang, "bad_drawing", reason="canvas state changed during the run"))
        return
    if drawing is not None and prediction is not None:
        _show_feedback_form(lang, drawing, strokes, prediction)


def _answer(
    lang: str, strokes: canvas.CanvasDrawing, mode: str, started: float, started_at: float
) -> tuple[Drawing | None, Prediction | None]:
    """The answer column: the model's answer for the canvas's drawing, or why there is none
    (nothing on the canvas, or nothing drawn as the transformer reads it: its `blank`)."""
    drawing = read_drawing(strokes.png)
    prediction: Prediction | None = None
    inference_ms = 0.0
    if drawing is not None:
        try:
            prediction, inference_ms = _predict(drawing, mode)
        except InferenceUnavailable:
            _wait_for_service(lang, drawing, mode)
            return drawing, None
        except InferenceError as exc:
            st.error(text(lang, "service_error", reason=exc))
            return drawing, None
    if drawing is None or prediction is None or prediction.status != STATUS_OK:
        with st.container(key="prediction"):
            st.info(text(lang, "nothing_drawn"))
        return None, None
    # The server's part of the latency, for the browser tests' breakdown (epoch times let the
    # page place the run on its own clock: same machine in the tests).
    timings = {
        "run": (time.perf_counter() - started) * 1000,
        "inference": inference_ms,
        "started-at": started_at,
        "answered-at": time.time() * 1000,
    }
    _show_answer(lang, drawing, prediction, timings)
    return drawing, prediction


def _badge(lang: str, prediction: Prediction | None) -> dict[str, str] | None:
    """The answer in short, for the canvas to show beside its buttons (phones)."""
    if prediction is None or prediction.status != "ok" or not prediction.labels:
        return None
    note = answer.case_note(lang, prediction)
    return {"char": answer.shown_answer(lang, prediction), "note": note.text, "kind": note.kind}
