"""The canvas never loses a stroke, works with a finger on a phone and from the keyboard.

Each "never lose" case ends with the same check: the answer in the page is for exactly the
drawing on the canvas (the answer's `drawing-<hash>` is the hash of the canvas's PNG), and that
drawing has every stroke drawn. The app runs with the real transformer and predictor, except
where a test needs a slow service to draw while the app reruns.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from .canvas import (
    answer_digest,
    canvas_digest,
    canvas_png,
    draw,
    ellipse,
    settle,
    stroke_with_mouse,
)
from .conftest import OUTPUT, PHONE, Stack

pytestmark = pytest.mark.browser

STEM = [(100, 222), (100, 58)]
ROOF = [(100, 58), (190, 58)]
LEG = [(190, 58), (190, 222)]  # with STEM and ROOF: П
TOP_TEXT = "Відповідь моделі"


def ink_columns(page: Page, rows: slice, cols: slice) -> bool:
    """Whether the canvas has ink in a region (pixel rows and columns)."""
    pixels = np.asarray(Image.open(io.BytesIO(canvas_png(page))).convert("L"))
    return bool((pixels[rows, cols] < 128).any())


def answered_as_drawn(page: Page) -> None:
    """The page's answer is for the canvas's current drawing, and nothing is pending."""
    expect(page.locator(".bukva-top")).to_be_visible()
    settle(page)
    assert answer_digest(page) == canvas_digest(page)


@pytest.mark.parametrize("wait_s", [0, 3])
def test_first_stroke_of_a_new_session_is_answered(page: Page, stack: Stack, wait_s: int) -> None:
    """One closed O-shaped stroke, the first thing a new session does (at once, or after 3 s:
    the drawable-canvas app lost exactly this one)."""
    page.goto(stack.url)
    expect(page.locator("canvas").first).to_be_visible()
    page.wait_for_timeout(wait_s * 1000)
    stroke_with_mouse(page, ellipse(140, 150, 55, 70))
    answered_as_drawn(page)
    assert ink_columns(page, slice(75, 85), slice(130, 150)), "the O's top is on the canvas"


def test_strokes_drawn_while_the_app_reruns_are_kept(
    page: Page, slow_app: tuple[str, object]
) -> None:
    """Each answer takes 1.5 s here; the second and third strokes are drawn while the app is
    still answering the first. The answer that stays is for all three."""
    url, stub = slow_app
    page.goto(url)
    expect(page.locator("canvas").first).to_be_visible()
    settle(page)
    stroke_with_mouse(page, STEM)
    page.wait_for_function("() => true")  # let the first send leave
    deadline = 30_000
    while not stub.requests and deadline > 0:  # the app is now in its first rerun's inference
        page.wait_for_timeout(50)
        deadline -= 50
    assert stub.requests, "the first stroke reached the service"
    stroke_with_mouse(page, ROOF)
    stroke_with_mouse(page, LEG)
    expect(page.locator(".bukva-top")).to_be_visible(timeout=30_000)
    page.wait_for_function(
        "d => document.querySelector('.bukva-top')?.className.includes('drawing-' + d)",
        arg=canvas_digest(page),
        timeout=30_000,
    )
    answered_as_drawn(page)
    assert ink_columns(page, slice(150, 200), slice(185, 195)), "the last stroke is there"
    assert ink_columns(page, slice(55, 61), slice(150, 180)), "the middle stroke is there"


def test_language_switch_keeps_the_drawing_and_its_answer(page: Page, stack: Stack) -> None:
    page.goto(stack.url)
    expect(page.locator("canvas").first).to_be_visible()
    settle(page)
    draw(page, [STEM, ROOF])
    before = answer_digest(page)
    page.get_by_text("English", exact=True).click()
    expect(page.get_by_text("The model's answer")).to_be_visible()
    expect(page.get_by_role("button", name="Undo")).to_be_visible()
    answered_as_drawn(page)
    assert answer_digest(page) == before
    expect(page.get_by_text("Nothing drawn yet.")).to_have_count(0)


def test_page_reload_restores_the_drawing_and_says_so(page: Page, stack: Stack) -> None:
    page.goto(stack.url)
    expect(page.locator("canvas").first).to_be_visible()
    settle(page)
    draw(page, [STEM, ROOF])
    before = answer_digest(page)
    page.reload()
    expect(page.get_by_text("Малюнок відновлено після перезавантаження сторінки.")).to_be_visible()
    answered_as_drawn(page)
    assert answer_digest(page) == before


def test_strokes_drawn_after_saving_stay_on_the_canvas(page: Page, stack: Stack) -> None:
    """Save clears the saved drawing only: a stroke drawn after it stays."""
    page.goto(stack.url)
    expect(page.locator("canvas").first).to_be_visible()
    settle(page)
    draw(page, [STEM, ROOF])
    settle(page)
    page.get_by_role("button", name="Зберегти").click()
    expect(page.get_by_text("Дякуємо! Збережено")).to_be_visible()
    expect(page.get_by_text("Нічого не намальовано.")).to_be_visible()
    assert not ink_columns(page, slice(0, 280), slice(0, 280)), "the saved drawing left"
    draw(page, [ellipse(140, 150, 50, 60)])
    answered_as_drawn(page)


# Drops the first websocket message the page sends after the next stroke ends: the drawing's
# rerun request, lost on the way.
DROP_NEXT_SEND = """() => {
  const send = WebSocket.prototype.send;
  let armed = false;
  window.addEventListener('pointerup', () => { armed = true; }, { capture: true, once: true });
  WebSocket.prototype.send = function (data) {
    if (!armed) return send.call(this, data);
    WebSocket.prototype.send = send;  // only this one
  };
}"""


def test_a_drawing_lost_on_the_way_is_sent_again_and_said(page: Page, stack: Stack) -> None:
    page.goto(stack.url)
    expect(page.locator("canvas").first).to_be_visible()
    settle(page)
    # What the canvas's status line says (briefly: it clears once the app acknowledges).
    page.locator(".status").evaluate(
        """el => { window.__said = [];
          new MutationObserver(() => window.__said.push(el.textContent))
            .observe(el, { childList: true, characterData: true, subtree: true }); }"""
    )
    page.evaluate(DROP_NEXT_SEND)
    stroke_with_mouse(page, STEM)
    page.wait_for_timeout(3000)
    expect(page.locator(".bukva-top")).to_have_count(0)  # the app never got that drawing
    expect(page.locator(".bukva-top")).to_be_visible(timeout=15_000)  # ... until it was resent
    answered_as_drawn(page)
    assert "Надсилаю малюнок ще раз…" in page.evaluate("() => window.__said")
    expect(page.locator(".status")).to_have_text("")


def test_undo_and_clear_from_the_keyboard(page: Page, stack: Stack) -> None:
    page.goto(stack.url)
    expect(page.locator("canvas").first).to_be_visible()
    settle(page)
    undo = page.get_by_role("button", name="Скасувати")
    expect(undo).to_be_disabled()  # nothing to undo yet
    one = draw(page, [STEM])[0]["hash"]
    draw(page, [ROOF])
    undo.focus()
    page.keyboard.press("Enter")
    page.wait_for_function(
        "d => document.querySelector('.bukva-top')?.className.includes('drawing-' + d)", arg=one
    )
    assert not ink_columns(page, slice(50, 66), slice(150, 190)), "the roof is undone"
    page.keyboard.press("Tab")  # the next button: clear
    page.keyboard.press("Space")
    expect(page.get_by_text("Нічого не намальовано.")).to_be_visible()
    expect(undo).to_be_disabled()


def test_a_phone_draws_with_a_finger_and_gets_an_answer(phone: Page, stack: Stack) -> None:
    phone.goto(stack.url)
    canvas = phone.locator("canvas").first
    expect(canvas).to_be_visible()
    settle(phone)
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    cdp = phone.context.new_cdp_session(phone)
    scroll_before = phone.evaluate("() => window.scrollY")
    draw(phone, [STEM, ROOF], cdp=cdp)
    assert phone.evaluate("() => window.scrollY") == scroll_before, "drawing scrolled the page"
    answered_as_drawn(phone)
    assert ink_columns(phone, slice(55, 61), slice(150, 180)), "both strokes are there"
    assert phone.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    phone.get_by_text(TOP_TEXT).scroll_into_view_if_needed()
    OUTPUT.mkdir(parents=True, exist_ok=True)
    phone.screenshot(path=str(OUTPUT / "frontend-phone.png"))


def test_the_canvas_sends_a_grey_png_with_the_same_model_input(page: Page, stack: Stack) -> None:
    """The canvas sends an 8-bit greyscale PNG (a seventh of the RGBA one's decoding in the
    transformer) of exactly the pixels `toDataURL` would give, so the model input is the same
    to float32 rounding and its geometry is the same."""
    import base64

    from bukva.preprocess import decode_image, normalize_with_geometry

    page.goto(stack.url)
    expect(page.locator("canvas").first).to_be_visible()
    stroke_with_mouse(page, ellipse(140, 150, 55, 70))
    answered_as_drawn(page)
    grey = decode_image(canvas_png(page))
    url = page.locator("canvas").first.evaluate("c => c.toDataURL('image/png')")
    rgba = decode_image(base64.b64decode(url.split(",", 1)[1]))
    assert grey.mode == "L" and rgba.mode == "RGBA"
    assert np.array_equal(np.asarray(grey), np.asarray(rgba.convert("L")))
    assert np.asarray(rgba)[..., 3].min() == 255  # opaque: the transformer reads it as RGB
    row, frame = normalize_with_geometry(grey)
    rgb_row, rgb_frame = normalize_with_geometry(rgba.convert("RGB"))
    assert np.abs(row - rgb_row).max() <= 1e-7
    assert frame.vector().tolist() == rgb_frame.vector().tolist()
