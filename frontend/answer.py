"""The model's answer as the page shows it: the top-1 character standing on the canvas's guide
lines at its case's height (and its digit/letter twin beside it, "з or 3", when the service
says both are likely), and what the case answer means.

Pure functions (HTML strings and texts), so the meaning of every case answer is unit-tested.
The top-1 element carries the drawing's hash as a `drawing-<hash>` class (the browser tests
and a person debugging can tell which drawing an answer belongs to) and the server's timings
as `data-run-ms` / `data-inference-ms` (the browser tests split the latency with them).
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping
from dataclasses import dataclass

from PIL import Image

from bukva.alphabet import is_digit
from bukva.geometry import CANVAS_SIDE
from frontend.client import Prediction
from frontend.i18n import text

UNCERTAIN = 0.2  # |P(uppercase) - 0.5| below this: the case answer is a guess
CAP_RATIO = 0.72  # a capital's height as a fraction of the font size (DejaVu, Arial, ...)
GLYPH_SIDE = 144  # px, the answer's guide box
PREVIEW_SIDE = 112  # px, the 28x28 model input shown 4x (pixels kept sharp by the page's CSS)
VIEW = CANVAS_SIDE  # the guide box's coordinates: the canvas's
DASHED = "stroke-width='2' stroke-dasharray='12 10'"


@dataclass(frozen=True)
class CaseNote:
    """What the case answer means: `kind` is upper, lower, uncertain, digit or unknown."""

    kind: str
    text: str


def case_note(lang: str, prediction: Prediction) -> CaseNote:
    """The case answer in words: which case and how sure, uncertain, or why there is none."""
    top = prediction.top
    if is_digit(top):
        return CaseNote("digit", text(lang, "case_digit"))
    if prediction.uppercase is None:  # the service says case means nothing for this letter
        return CaseNote("unknown", text(lang, "case_unknown"))
    p = prediction.uppercase_probability
    if abs(p - 0.5) < UNCERTAIN:
        return CaseNote("uncertain", text(lang, "case_uncertain", up=p, low=1 - p))
    if p >= 0.5:
        return CaseNote("upper", text(lang, "case_upper", p=p))
    return CaseNote("lower", text(lang, "case_lower", p=1 - p))


def shown_character(prediction: Prediction) -> str:
    """The top-1 as a person writes it: uppercase where the model says so (the same case the
    note states and the feedback form preselects: all three read `Prediction.uppercase`)."""
    return prediction.top.upper() if prediction.uppercase else prediction.top


def twin_character(prediction: Prediction) -> str:
    """The twin reading as a person writes it ("" when there is none): a letter in the case
    the model's case head gives the drawing, a digit as it is."""
    twin = prediction.alternative
    if twin and not is_digit(twin) and prediction.uppercase_probability >= 0.5:
        return twin.upper()
    return twin


def shown_answer(lang: str, prediction: Prediction) -> str:
    """The answer in a few characters: "з", or "з or 3" / "з чи 3" for twins."""
    first, twin = shown_character(prediction), twin_character(prediction)
    return f"{first} {text(lang, 'or')} {twin}" if twin else first


def guide_glyph(char: str, guides: Mapping[str, float]) -> str:
    """An SVG of `char` standing on the baseline between the canvas's guide lines, sized so a
    capital reaches the cap line (a small letter then reaches about the x-height line)."""
    cap, baseline = guides.get("cap", 0.2), guides.get("baseline", 0.8)
    lines = []
    for name in ("cap", "x_height", "baseline"):
        if name in guides:
            y = guides[name] * VIEW
            style = "stroke-width='3'" if name == "baseline" else DASHED
            lines.append(
                f"<line x1='0' x2='{VIEW}' y1='{y:.1f}' y2='{y:.1f}' stroke='#7aa7e0' {style}/>"
            )
    size = (baseline - cap) * VIEW / CAP_RATIO
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {VIEW} {VIEW}' "
        f"width='{GLYPH_SIDE}' height='{GLYPH_SIDE}'>"
        f"<rect width='{VIEW}' height='{VIEW}' fill='#fff' stroke='#d6d6d9' rx='12'/>"
        + "".join(lines)
        + f"<text x='{VIEW / 2}' y='{baseline * VIEW:.1f}' font-size='{size:.0f}' "
        f"text-anchor='middle' font-family='sans-serif' fill='#111'>{html.escape(char)}</text>"
        "</svg>"
    )


def preview_uri(image: Image.Image) -> str:
    """A small image as a data URI (inline: no second request for the preview)."""
    out = io.BytesIO()
    image.save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def answer_html(
    lang: str,
    digest: str,
    prediction: Prediction | None,
    guides: Mapping[str, float],
    preview: str,
    timings: Mapping[str, float],
) -> str:
    """The answer block: the top-1 on its guides with its case in words (or why there is no
    answer), the served model version, and the 28x28 image the model saw (`preview`, a data
    URI; left out when ""). Twins are shown side by side, "з or 3", with a note on how to
    settle them."""
    parts = ["<div class='bukva-answer'>"]
    if prediction is not None and prediction.status == "ok" and prediction.labels:
        note = case_note(lang, prediction)
        stamps = " ".join(
            f"data-{name}-ms='{value:.1f}'" for name, value in sorted(timings.items())
        )
        char, twin = shown_character(prediction), twin_character(prediction)
        # The glyph is an SVG image (st.html keeps <img> but strips inline <svg>); the
        # character itself is the element's text, for screen readers and tests.
        glyph = base64.b64encode(guide_glyph(char, guides).encode()).decode("ascii")
        parts.append(
            f"<div class='bukva-top drawing-{digest} mode-{prediction.mode}' {stamps}>"
            f"<img src='data:image/svg+xml;base64,{glyph}' width='{GLYPH_SIDE}' "
            f"height='{GLYPH_SIDE}' alt=''/><span class='bukva-char'>{html.escape(char)}</span>"
            "</div>"
        )
        if twin:
            other = base64.b64encode(guide_glyph(twin, guides).encode()).decode("ascii")
            parts.append(
                f"<span class='bukva-or'>{html.escape(text(lang, 'or'))}</span>"
                f"<div class='bukva-twin'><img src='data:image/svg+xml;base64,{other}' "
                f"width='{GLYPH_SIDE}' height='{GLYPH_SIDE}' alt=''/>"
                f"<span class='bukva-twin-char'>{html.escape(twin)}</span></div>"
            )
            note_text = text(lang, "twin_note", first=char, second=twin)
            parts.append(f"<p class='bukva-twin-note'>{html.escape(note_text)}</p>")
        parts.append(f"<p class='bukva-case case-{note.kind}'>{html.escape(note.text)}</p>")
        if prediction.model_version:
            version = text(lang, "served_by", version=prediction.model_version)
            parts.append(f"<p class='bukva-version'>{html.escape(version)}</p>")
    elif prediction is not None:
        parts.append(f"<p class='bukva-blank'>{html.escape(text(lang, 'model_blank'))}</p>")
    if preview:
        caption = html.escape(text(lang, "preview"))
        parts.append(
            f"<figure class='bukva-preview'><img src='{preview}' width='{PREVIEW_SIDE}' "
            f"height='{PREVIEW_SIDE}' alt='{caption}'/><figcaption>{caption}</figcaption></figure>"
        )
    return "".join(parts) + "</div>"
