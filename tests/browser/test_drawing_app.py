"""A person's session in a real browser: draw a digit and a letter with the mouse, see the
model's answer after each stroke, give feedback, and find it in the S3 store. The app runs on
loopback with the real transformer and predictor behind it.

The screenshots for the README are written to reports/browser/ (`make screenshots` copies them
into docs/); the latency is measured in test_latency.py.
"""

from __future__ import annotations

import io
import json
import re
import time

import httpx
import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from tests.support.letters import strokes_on_canvas

from .canvas import answer_digest, canvas_digest, draw, ellipse, settle, stroke_with_mouse
from .conftest import OUTPUT, Stack
from .stub_transformer import StubTransformer

pytestmark = pytest.mark.browser

SCREENSHOT = OUTPUT / "frontend.png"
MODEL_SCREENSHOT = OUTPUT / "frontend-model.png"

# Canvas pixel coordinates on the 280x280 canvas (guides: cap 58, x-height 118, baseline 222).
DIGIT_ONE = [[(125, 80), (145, 58)], [(145, 58), (145, 222)]]  # a short flag, then the stem
LETTER_GE = [[(100, 222), (100, 58)], [(100, 58), (190, 58)]]  # Г: a stem, then the roof


def open_app(page: Page, stack: Stack, query: str = "") -> None:
    page.goto(f"{stack.url}/{query}")
    expect(page.locator("canvas").first).to_be_visible()
    settle(page)


def shown_answers(page: Page) -> list[str]:
    """The top-k characters the page shows, from the bars' texts ("ж  81.0%")."""
    texts = page.locator(".st-key-prediction [data-testid='stProgress']").all_inner_texts()
    return [re.split(r"\s+", t.strip())[0] for t in texts]


def pick(page: Page, label: str, case: str | None, field: str = "Символ") -> None:
    """Choose the right character (and case) in the feedback form."""
    page.get_by_label(field).click()
    page.keyboard.type(label)
    page.keyboard.press("Enter")
    settle(page)
    if case:
        page.get_by_text(case, exact=True).click()
        settle(page)


def wait_for_keys(stack: Stack, pattern: str, count: int, timeout_s: float = 30) -> list[str]:
    """Keys in the bucket matching `pattern`, once there are `count` of them."""
    deadline = time.monotonic() + timeout_s
    while True:
        keys = [k for k in stack.objects() if re.fullmatch(pattern, k)]
        if len(keys) >= count or time.monotonic() > deadline:
            return keys
        time.sleep(0.5)


def check_answer_shown(page: Page) -> list[str]:
    expect(page.locator(".bukva-top")).to_be_visible()
    expect(page.get_by_text("Що бачить модель (28×28)")).to_be_visible()
    answers = shown_answers(page)
    assert len(answers) == 3, answers
    assert page.locator("[data-testid='stException']").count() == 0
    return answers


def ink_extent(png: bytes) -> tuple[int, int]:
    """Width and height in pixels of the ink in a stored drawing."""
    ink = np.asarray(Image.open(io.BytesIO(png)).convert("L")) < 128
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    return (int(cols[-1] - cols[0]), int(rows[-1] - rows[0])) if rows.size else (0, 0)


def save_and_check_stored(page: Page, stack: Stack, label: str) -> tuple[dict, bytes]:
    """Save the feedback; return the record and the drawing that arrived in the store."""
    pattern = rf"feedback/{label}/[0-9a-f]{{32}}\.(png|json)"
    before = set(wait_for_keys(stack, pattern, 0))  # other tests may have stored this label
    page.get_by_role("button", name="Зберегти").click()
    expect(page.get_by_text("Дякуємо! Збережено")).to_be_visible()
    new = sorted(set(wait_for_keys(stack, pattern, len(before) + 2)) - before)
    assert len(new) == 2 and new[0].endswith(".json") and new[1].endswith(".png"), new
    png = stack.read(new[1])
    assert png.startswith(b"\x89PNG")
    return json.loads(stack.read(new[0])), png


def check_case_matches_the_form(page: Page) -> None:
    """The case the answer states is the case the feedback form offers to confirm."""
    note = page.locator(".bukva-case")
    expect(note).to_be_visible()
    kind = re.search(r"case-(\w+)", note.get_attribute("class") or "").group(1)
    radio = page.locator("[data-testid='stRadio']")
    if kind == "digit":
        expect(radio).to_have_count(0)  # digits have no case to choose
        return
    checked = radio.locator("input:checked").first.evaluate(
        "i => i.closest('label').innerText.trim()"
    )
    # Upper or lower as stated; when uncertain, the more likely case, the one the answer shows.
    shown = page.locator(".bukva-char").inner_text()
    expected = "велика" if kind == "upper" or shown != shown.lower() else "мала"
    assert checked == expected, (kind, shown, checked)


def test_draw_a_digit_and_a_letter_and_give_feedback(page: Page, stack: Stack) -> None:
    # Other tests' feedback records (their review decisions, reviews/<id>.json, are not
    # records), less those a review rejected: the Model page leaves them out, they never train.
    keys = stack.objects()
    rejected = {
        key.rsplit("/", 1)[1]
        for key in keys
        if "/reviews/" in key and json.loads(stack.read(key))["status"] == "rejected"
    }
    records_before = sum(
        k.endswith(".json") and "/reviews/" not in k and k.rsplit("/", 1)[1] not in rejected
        for k in keys
    )
    served = httpx.get(f"{stack.inference_url}/v2/models/bukva").json()["versions"][0]
    open_app(page, stack)
    expect(page.get_by_text("Нічого не намальовано.")).to_be_visible()

    # A digit, confirmed as "1": digits are stored without a case.
    draw(page, DIGIT_ONE)
    settle(page)
    answers = check_answer_shown(page)
    assert answer_digest(page) == canvas_digest(page)  # the answer is for what is on the canvas
    if stack.trained:
        assert "1" in answers, f"a trained model should see a 1 among {answers}"
    check_case_matches_the_form(page)
    expect(page.get_by_text(f"Відповідає модель версії {served}.")).to_be_visible()
    pick(page, "1", None)
    record, png = save_and_check_stored(page, stack, "1")
    assert record["label"] == "1" and record["uppercase"] is None
    assert ink_extent(png)[1] > 150  # the stroke as drawn: 58 -> 222 px tall
    assert record["predicted"] == answers[0] and record["top_labels"] == answers
    assert record["model_version"] == served  # the version the predictor loaded, passed on

    # Saving cleared the canvas; a letter on it, corrected to an uppercase Г.
    expect(page.get_by_text("Нічого не намальовано.")).to_be_visible()
    draw(page, LETTER_GE)
    settle(page)
    answers = check_answer_shown(page)  # (which letter an untrained model sees is not checked)
    check_case_matches_the_form(page)
    pick(page, "г", "велика")
    record, png = save_and_check_stored(page, stack, "г")
    assert record["label"] == "г" and record["uppercase"] is True and record["text"] == "Г"
    width, height = ink_extent(png)
    assert width > 80 and height > 150, "both strokes of the Г are in the drawing"
    assert record["agrees"] == (answers[0] == "г")

    # The model page counts the two records per character, from the bucket.
    page.get_by_role("link", name="Модель").click()
    expect(page.get_by_text("Зібрані відгуки за символами")).to_be_visible()
    expect(page.get_by_text(f"Усього: {records_before + 2}")).to_be_visible()
    versions = page.locator("[data-testid='stMetricValue']")  # the champion's, the served one
    expect(versions.nth(1)).to_have_text(served)
    if stack.registry:  # the registry's champion is what the service loaded
        expect(versions.nth(0)).to_have_text(served)
    expect(page.locator(".vega-embed")).to_be_visible()  # the per-character chart
    expect(page.get_by_role("heading", name="Тестові метрики")).to_be_visible()
    assert page.locator("[data-testid='stException']").count() == 0
    MODEL_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1280, "height": 1250})
    page.screenshot(path=str(MODEL_SCREENSHOT))

    # Back on the drawing page (a fresh page run: no notice of the last save), a Г again, for
    # the README's screenshot: the answer and the form for what is on the canvas, nothing else.
    page.set_viewport_size({"width": 1280, "height": 1000})
    page.get_by_role("link", name="Малювати").click()
    expect(page.get_by_text("Нічого не намальовано.")).to_be_visible()
    expect(page.get_by_text("Дякуємо! Збережено")).to_have_count(0)
    draw(page, LETTER_GE)
    settle(page)
    check_answer_shown(page)
    assert answer_digest(page) == canvas_digest(page)
    pick(page, "г", "велика")
    page.screenshot(path=str(SCREENSHOT))


def test_digits_mode_answers_with_digits_and_is_stored_with_the_feedback(
    page: Page, stack: Stack
) -> None:
    """Choose "Цифри", draw a 3: every answer is a digit (a trained model: the 3), the saved
    record says the mode, and the choice is still there after a visit to the Model page."""
    open_app(page, stack)
    modes = page.get_by_role("radiogroup", name="Що ви малюєте")
    expect(modes.get_by_role("radio", name="Будь-що")).to_be_checked()  # the default
    modes.get_by_role("radio", name="Цифри").click()
    settle(page)
    expect(modes.get_by_role("radio", name="Цифри")).to_be_checked()

    draw(page, [[(float(x), float(y)) for x, y in s] for s in strokes_on_canvas("3")])
    settle(page)
    expect(page.locator(".bukva-top.mode-digits")).to_be_visible()
    answers = check_answer_shown(page)
    assert all(a in "0123456789" for a in answers), answers
    assert page.locator(".bukva-twin").count() == 0  # digits mode settles twins
    if stack.trained:
        assert answers[0] == "3", f"a 3 in digits mode was read as {answers}"
    pick(page, "3", None)
    record, _ = save_and_check_stored(page, stack, "3")
    assert record["mode"] == "digits" and record["label"] == "3"
    assert all(c in "0123456789" for c in record["top_labels"])

    page.get_by_role("link", name="Модель").click()
    expect(page.get_by_text("Зібрані відгуки за символами")).to_be_visible()
    page.get_by_role("link", name="Малювати").click()
    expect(page.get_by_text("Нічого не намальовано.")).to_be_visible()
    expect(modes.get_by_role("radio", name="Цифри")).to_be_checked()  # kept for the session
    modes.get_by_role("radio", name="Будь-що").click()
    settle(page)
    expect(modes.get_by_role("radio", name="Будь-що")).to_be_checked()


def test_store_down_keeps_feedback_and_delivers_it_once_when_back(page: Page, stack: Stack) -> None:
    open_app(page, stack, "?lang=English")  # the language toggle is bound to ?lang=
    pattern = r"feedback/0/[0-9a-f]{32}\.(png|json)"
    before = set(wait_for_keys(stack, pattern, 0))  # other tests may have confirmed a 0
    stack.s3.stop()
    try:
        draw(page, [ellipse(140, 140, 60, 95)])
        settle(page)
        pick(page, "0", None, field="Character")
        page.get_by_role("button", name="Save").click()
        expect(page.get_by_text("The feedback store is unreachable")).to_be_visible()
        assert page.locator("[data-testid='stException']").count() == 0
        pending = list((stack.home / "feedback-outbox" / "pending").iterdir())
        assert len(pending) == 1
    finally:
        stack.s3.start()

    # Nobody touches the page: the app's retry thread delivers it.
    keys = set(wait_for_keys(stack, pattern, len(before) + 2)) - before
    assert len(keys) == 2, keys
    # Delivered once: its queue entry goes (the record is stored first, the entry removed
    # after), so no later retry round can send it again, and the store holds just its two keys.
    pending = stack.home / "feedback-outbox" / "pending"
    deadline = time.monotonic() + 30
    while list(pending.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not list(pending.iterdir())
    assert set(wait_for_keys(stack, pattern, 0)) - before == keys


def test_inference_down_says_so_and_recovers_when_it_is_back(
    page: Page, app_without_inference: tuple[str, int]
) -> None:
    """No transformer at the configured address: a message, no stack trace; then one starts
    there and the page shows the answer without the person doing anything."""
    url, port = app_without_inference
    page.goto(url)
    expect(page.locator("canvas").first).to_be_visible()
    settle(page)
    stroke_with_mouse(page, [(140, 58), (140, 222)], steps=8)
    expect(page.get_by_text("Сервіс розпізнавання недоступний")).to_be_visible()
    expect(page.get_by_text("Що бачить модель (28×28)")).to_have_count(0)  # the service's image
    assert page.locator("[data-testid='stException']").count() == 0
    assert "Traceback" not in page.locator("body").inner_text()

    with StubTransformer(answer=("ж", "х", "к"), port=port):
        expect(page.locator(".bukva-top")).to_have_text("Ж", timeout=30_000)
        expect(page.get_by_text("Сервіс розпізнавання недоступний")).to_have_count(0)


def test_twins_are_shown_both_and_the_mode_goes_with_each_request(
    page: Page, app_without_inference: tuple[str, int]
) -> None:
    """A stand-in transformer says "З, with 3 as likely": the page shows both ("З чи 3") and
    how to settle it; choosing Letters asks again with that mode. (A stand-in, because a
    trained model's twins depend on how it was trained; the real ones are in test_behaviour.)"""
    url, port = app_without_inference
    with StubTransformer(answer=("з", "3", "в"), port=port, alternative="3") as stub:
        page.goto(url)
        expect(page.locator("canvas").first).to_be_visible()
        settle(page)
        stroke_with_mouse(page, [(110, 130), (170, 120), (140, 170), (175, 200), (110, 215)])
        expect(page.locator(".bukva-twin-char")).to_have_text("3")
        expect(page.locator(".bukva-char")).to_have_text("З")  # the stand-in's case: capital
        expect(page.locator(".bukva-or")).to_have_text("чи")
        expect(page.get_by_text("Схоже і на «З», і на «3».")).to_be_visible()
        assert stub.requests[-1]["parameters"] == {"mode": "anything"}

        page.get_by_role("radio", name="Літери").click()
        expect(page.locator(".bukva-top.mode-letters")).to_be_visible()
        assert stub.requests[-1]["parameters"] == {"mode": "letters"}
