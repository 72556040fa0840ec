"""The canvas's Python side (what the browser sends, checked) and the answer as the page shows
it: the case in words for every kind of case answer, in both languages, and the test hooks."""

from __future__ import annotations

import base64
import re

import pytest

from bukva.geometry import GUIDES
from frontend import answer, canvas
from frontend.client import Prediction
from frontend.i18n import text

PNG = b"\x89PNG\r\n\x1a\nnot really"
URL = canvas.PNG_PREFIX + base64.b64encode(PNG).decode()


def prediction(top: str = "г", p_upper: float = 0.9, case_known: bool = True) -> Prediction:
    return Prediction("ok", (top, "т", "п"), (0.7, 0.2, 0.1), p_upper, case_known, "4")


def test_canvas_state_is_read_and_checked() -> None:
    state = canvas.parse_state({"png": URL, "ids": [3, 4], "seq": 7})
    assert state == canvas.CanvasDrawing(PNG, (3, 4), 7) and state.last_stroke == 4
    # Strokes already saved (ids up to drop_through) are the canvas before the browser cleared it.
    assert canvas.parse_state({"png": URL, "ids": [3, 4], "seq": 8}, drop_through=4).png is None
    assert canvas.parse_state({"png": URL, "ids": [3, 5], "seq": 8}, drop_through=4).png == PNG
    # Empty or malformed: nothing drawn, the send number kept (it is acknowledged all the same).
    assert canvas.parse_state({"png": None, "ids": [], "seq": 9}) == canvas.CanvasDrawing(seq=9)
    assert (
        canvas.parse_state({"png": "data:image/png;base64,%%%", "ids": [1], "seq": 2}).png is None
    )
    assert canvas.parse_state({"png": "javascript:1", "ids": [1], "seq": 2}).png is None
    assert canvas.parse_state({"png": URL, "ids": "1", "seq": -1}) == canvas.EMPTY
    assert canvas.parse_state(None) == canvas.EMPTY
    assert canvas.parse_state(["not", "a", "dict"]) == canvas.EMPTY


def test_canvas_files_are_inline_module_and_styles() -> None:
    js = (canvas.HERE / "canvas.js").read_text()
    assert "export default function" in js and "setStateValue" in js
    assert "pointerup" in js and "touch-action: none" in (canvas.HERE / "canvas.css").read_text()
    assert "setTimeout(() => this.check()" in js  # unacknowledged drawings are sent again


def test_the_canvas_draws_with_the_side_and_brush_training_uses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`canvas.js` has no sizes of its own: the side and brush are handed over from
    `bukva.geometry`, the values `bukva.strokes.render` paints training drawings with."""
    from bukva.geometry import BRUSH_WIDTH, CANVAS_SIDE

    handed: list[dict] = []

    def component(**kwargs):
        handed.append(kwargs["data"])
        return {"drawing": None}

    monkeypatch.setattr(canvas, "_component", lambda: component)
    assert canvas.drawing_canvas({}, GUIDES) == canvas.EMPTY
    (data,) = handed
    assert (data["side"], data["stroke_width"]) == (CANVAS_SIDE, BRUSH_WIDTH)
    js = (canvas.HERE / "canvas.js").read_text()
    assert "this.side = data.side;" in js and "this.width = data.stroke_width;" in js
    assert str(CANVAS_SIDE) not in js + (canvas.HERE / "canvas.css").read_text()


@pytest.mark.parametrize(
    ("pred", "kind", "shown"),
    [
        (prediction("7", 0.9), "digit", "7"),
        (prediction("г", 0.93), "upper", "Г"),
        (prediction("г", 0.04), "lower", "г"),
        (prediction("г", 0.62), "uncertain", "Г"),  # a guess: the likelier case is shown
        (prediction("г", 0.41), "uncertain", "г"),
        (prediction("г", 0.95, case_known=False), "unknown", "г"),
        (prediction("ф", 0.95, case_known=False), "unknown", "ф"),  # the service's word
    ],
)
def test_case_note_says_what_the_case_answer_means(pred: Prediction, kind: str, shown: str) -> None:
    for lang in ("uk", "en"):
        note = answer.case_note(lang, pred)
        assert note.kind == kind
        assert note.text == text(lang, f"case_{kind}", p=0.0, up=0.0, low=0.0) or "%" in note.text
    assert answer.shown_character(pred) == shown


def test_case_note_words_and_figures() -> None:
    # The note gives the rule for each case, not a claim about the drawing: the case head
    # also answers "capital" for a small е that stays below the middle line (person trial).
    assert answer.case_note("en", prediction("г", 0.93)).text == (
        "Capital letter (93%). Capitals go up to the top line."
    )
    assert answer.case_note("uk", prediction("г", 0.04)).text == (
        "Мала літера (96%). Малу пишуть до середньої лінії."
    )
    uncertain = answer.case_note("en", prediction("г", 0.55)).text
    assert "capital 55%, small 45%" in uncertain
    assert answer.case_note("en", prediction("3")).text == "A digit: no case."


def test_answer_block_carries_the_test_hooks_and_the_version() -> None:
    html = answer.answer_html(
        "en", "0123abcd", prediction("г", 0.9), GUIDES, "data:image/png;base64,AA==",
        {"run": 12.345, "inference": 3.0},
    )  # fmt: skip
    top = re.search(r"<div class='bukva-top ([^']*)' ([^>]*)>", html)
    assert top and top.group(1) == "drawing-0123abcd mode-anything"
    assert "data-run-ms='12.3'" in top.group(2) and "data-inference-ms='3.0'" in top.group(2)
    assert "<span class='bukva-char'>Г</span>" in html  # the answer's text, as the case says
    assert "case-upper" in html and "Answered by model version 4." in html
    assert "What the model sees (28×28)" in html and "data:image/png;base64,AA==" in html
    glyph = base64.b64decode(re.search(r"svg\+xml;base64,([^']+)", html).group(1)).decode()
    # The guide lines at the canvas's heights, the glyph standing on the baseline.
    for fraction in GUIDES.values():
        assert f"y1='{fraction * answer.VIEW:.1f}'" in glyph
    assert f"y='{GUIDES['baseline'] * answer.VIEW:.1f}'" in glyph and ">Г</text>" in glyph


def test_answer_block_without_an_answer() -> None:
    blank = Prediction("blank", (), (), 0.0, False)
    html = answer.answer_html("uk", "ff", blank, GUIDES, "data:,", {})
    assert "bukva-top" not in html and text("uk", "model_blank") in html
    html = answer.answer_html("uk", "ff", None, GUIDES, "data:,", {})
    assert "bukva-top" not in html and text("uk", "preview") in html
    html = answer.answer_html("uk", "ff", prediction(), GUIDES, "", {})  # no model input came
    assert "bukva-top" in html and "bukva-preview" not in html and html.endswith("</div>")


def twins(top: str, twin: str, p_upper: float = 0.1, mode: str = "anything") -> Prediction:
    return Prediction("ok", (top, twin, "в"), (0.5, 0.4, 0.1), p_upper, True, "4", twin, mode)


def test_twins_are_shown_side_by_side_with_a_note() -> None:
    html = answer.answer_html("uk", "ab", twins("з", "3"), GUIDES, "data:,", {})
    assert "<span class='bukva-char'>з</span>" in html
    assert "<span class='bukva-or'>чи</span>" in html
    assert "<span class='bukva-twin-char'>3</span>" in html
    assert text("uk", "twin_note", first="з", second="3") in html
    glyphs = re.findall(r"svg\+xml;base64,([^']+)", html)
    assert len(glyphs) == 2 and ">3</text>" in base64.b64decode(glyphs[1]).decode()
    assert answer.shown_answer("uk", twins("з", "3")) == "з чи 3"
    assert answer.shown_answer("en", twins("3", "з")) == "3 or з"
    # a letter twin takes the case the drawing's size gives it; a digit has none
    assert answer.shown_answer("en", twins("0", "о", p_upper=0.9)) == "0 or О"
    assert answer.shown_answer("en", twins("о", "0", p_upper=0.9)) == "О or 0"


def test_one_answer_has_no_twin_and_the_mode_is_a_hook() -> None:
    alone = Prediction("ok", ("3", "8", "5"), (0.9, 0.05, 0.03), 0.1, False, "4", "", "digits")
    html = answer.answer_html("en", "ab", alone, GUIDES, "data:,", {})
    assert "bukva-twin" not in html and "bukva-or" not in html
    assert "mode-digits" in html
    assert answer.shown_answer("en", alone) == "3"
