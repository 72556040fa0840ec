"""The collection page: the app asks for a character and case, the person draws it.

The prompts go where the model needs clean labels most: each class is drawn with a weight
that grows with its error on the evaluation drawings (`reports/per_class.json`, the
`combined` set when there is one: 30 or more images a letter, where the canvas set alone has
2-8 and a letter's accuracy there moves a third with one drawing) and shrinks with the
feedback the store already has for it (`prompt_weights`). A letter's case is chosen at
random. The drawing is stored with the prompt as its label (`source: collect`), the prompt
itself, the mode that fits it (letters or digits) and the served model version; the model's
answer is asked for, quietly, only to store its probability for the label (the Review page
shows the least likely first).
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from bukva.alphabet import CLASSES, is_digit
from bukva.geometry import GUIDES
from bukva.preprocess import ImageError
from bukva.storage import StoreUnavailable, feedback_counts
from frontend import canvas, draw_page, feedback, resources
from frontend.client import InferenceError, InferenceUnavailable
from frontend.i18n import text

KEY = "collect-canvas"
PROMPT_KEY = "collect-prompt"
COUNT_KEY = "collect-count"
FLOOR = 0.05  # a class the model gets right every time is still asked for now and then
PER_CLASS_TARGET = 20  # feedback drawings per class at which a class's weight halves


@dataclass(frozen=True)
class Prompt:
    label: str
    uppercase: bool | None

    @property
    def text(self) -> str:
        return self.label.upper() if self.uppercase else self.label

    @property
    def mode(self) -> str:
        return "digits" if is_digit(self.label) else "letters"

    def as_record(self) -> dict:
        return {"label": self.label, "uppercase": self.uppercase, "text": self.text}


def class_accuracy(home: Path) -> dict[str, float]:
    """Per-class test accuracy from reports/per_class.json: the `combined` set (every
    evaluation image; steadier than any one set's handful of letters), else the mean over the
    sets; empty when there is no report."""
    try:
        report = json.loads((home / "reports" / "per_class.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    sets = [v["per_class"] for v in report.values() if isinstance(v, dict) and "per_class" in v]
    if isinstance(report.get("combined"), dict) and "per_class" in report["combined"]:
        sets = [report["combined"]["per_class"]]
    accuracy: dict[str, float] = {}
    for char in CLASSES:
        values = [float(s[char]) for s in sets if isinstance(s.get(char), int | float)]
        if values:
            accuracy[char] = sum(values) / len(values)
    return accuracy


def prompt_weights(accuracy: Mapping[str, float], counts: Mapping[str, int]) -> dict[str, float]:
    """How often to ask for each class: its error (plus a floor; unknown accuracy counts as
    the mean error) over one plus its feedback in units of PER_CLASS_TARGET."""
    known = [1 - a for a in accuracy.values()]
    default = sum(known) / len(known) if known else 0.5
    weights = {}
    for char in CLASSES:
        error = (1 - accuracy[char]) if char in accuracy else default
        weights[char] = (error + FLOOR) / (1 + counts.get(char, 0) / PER_CLASS_TARGET)
    return weights


def choose_prompt(weights: Mapping[str, float], rng: random.Random) -> Prompt:
    """A class drawn by weight; a letter's case at random."""
    chars = list(weights)
    label = rng.choices(chars, weights=[weights[c] for c in chars])[0]
    return Prompt(label, None if is_digit(label) else rng.random() < 0.5)


def _counts() -> dict[str, int]:
    try:
        return dict(feedback_counts(resources.feedback_store()))
    except (StoreUnavailable, ValueError, OSError):
        return {}  # the store is down or misconfigured: weigh by accuracy alone


def next_prompt() -> Prompt:
    weights = prompt_weights(class_accuracy(resources.settings().home), _counts())
    prompt = choose_prompt(weights, random.Random())
    st.session_state[PROMPT_KEY] = prompt
    return prompt


def _describe(lang: str, prompt: Prompt) -> str:
    if prompt.uppercase is None:
        kind = text(lang, "collect_digit")
    else:
        kind = text(lang, "collect_upper" if prompt.uppercase else "collect_lower")
    return f"«{prompt.text}» ({kind})"


def render(lang: str) -> None:
    """The whole collection page."""
    feedback.page_header(lang, "collect", "collect-notice")
    prompt = st.session_state.get(PROMPT_KEY) or next_prompt()
    st.markdown(f"### {text(lang, 'collect_prompt', char=_describe(lang, prompt))}")
    st.caption(text(lang, "collect_count", n=st.session_state.get(COUNT_KEY, 0)))
    labels = {key: text(lang, key) for key in draw_page.CANVAS_LABELS}
    strokes = canvas.drawing_canvas(labels, GUIDES, None, key=KEY)
    if strokes.error:
        st.error(text(lang, "refused", reason=strokes.error))
    save_col, skip_col = st.columns(2)
    if skip_col.button(text(lang, "collect_skip"), key="collect-skip"):
        next_prompt()
        st.rerun()
    if save_col.button(text(lang, "save"), type="primary", key="collect-save"):
        _save(lang, prompt, strokes)


def _save(lang: str, prompt: Prompt, strokes: canvas.CanvasDrawing) -> None:
    drawing = draw_page.read_drawing(strokes.png)
    try:
        image = draw_page.read_image(drawing.png) if drawing is not None else None
    except (ImageError, OSError) as exc:
        st.error(text(lang, "refused", reason=exc))
        return
    if drawing is None or image is None:
        st.info(text(lang, "collect_nothing"))
        return
    try:
        prediction = resources.inference_client().predict(drawing.png, prompt.mode)
    except (InferenceUnavailable, InferenceError):
        prediction = None  # stored without the model's answer: the label is the prompt's
    kind, message, record = feedback.submit(
        lang,
        image,
        prediction,
        prompt.label,
        prompt.uppercase,
        source="collect",
        mode=prompt.mode,
        prompt=prompt.as_record(),
    )
    if record is None:
        st.session_state["collect-notice"] = (kind, message)
        st.rerun()
    st.session_state[COUNT_KEY] = st.session_state.get(COUNT_KEY, 0) + 1
    done = text(lang, "collect_saved", text=record.text)
    st.session_state["collect-notice"] = ("success" if kind == "success" else kind, done)
    if kind != "success":
        st.session_state["collect-notice"] = (kind, f"{message} {done}")
    canvas.clear_saved(strokes, key=KEY)
    next_prompt()
    st.rerun()
