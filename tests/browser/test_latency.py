"""Stroke-to-answer latency in real Chromium with the real transformer and predictor.

Block and cursive letters and digits are drawn stroke by stroke with mouse paths; after each
stroke the page's own clock measures pointer-up to the answer for that drawing being in the
page (tests/browser/canvas.py). Two kinds of session: a warm one (36 strokes in one tab) and
fresh ones (a new browser profile, so a new Streamlit session, per drawing: the first stroke
a person makes after opening the page). The figures, split into send, rerun, inference and
render, go to reports/browser/latency.json (ignored by git; `make latency` copies it to the
tracked reports/latency.json) with the machine, its load and the goals of issue 23 (warm
median <= 80 ms, fresh median <= 100 ms, 90th percentile <= 150 ms) and whether each was met;
the test records them, it does not assert them. A benchmark (marker `bench`) that needs
Chromium (marker `browser`). `BUKVA_ANSWER_PAINT_MS` in the caller's environment reaches the app
(A/B runs of the answer's paint pause); the report records the value it ran with.
"""

from __future__ import annotations

import json
import os
import time

import pytest
from playwright.sync_api import Page, expect

from bench.load import machine

from .canvas import Point, answer_digest, canvas_digest, draw, ellipse, settle, summary
from .conftest import OUTPUT, PASSED_THROUGH, Stack, _context

pytestmark = [pytest.mark.browser, pytest.mark.bench]

REPORT = OUTPUT / "latency.json"
# Issue 23's goals: a warm session's median, a fresh session's first answer, both p90s.
GOALS = {"warm_median_ms": 80, "fresh_median_ms": 100, "p90_ms": 150}
FRESH_SESSIONS = 6  # new browser profiles, one first stroke each


def _cursive(points: list[Point]) -> list[Point]:
    """A smooth path through `points` (Catmull-Rom, 6 steps a segment): a pen's curve."""
    out: list[Point] = []
    padded = [points[0], *points, points[-1]]
    for i in range(1, len(padded) - 2):
        p0, p1, p2, p3 = padded[i - 1], padded[i], padded[i + 1], padded[i + 2]
        for step in range(6):
            t = step / 6
            out.append(
                tuple(
                    0.5
                    * (
                        2 * p1[k]
                        + (-p0[k] + p2[k]) * t
                        + (2 * p0[k] - 5 * p1[k] + 4 * p2[k] - p3[k]) * t * t
                        + (-p0[k] + 3 * p1[k] - 3 * p2[k] + p3[k]) * t**3
                    )
                    for k in range(2)
                )
            )
    return [*out, points[-1]]


CURSIVE_VE = [(110, 222), (112, 150), (130, 118), (160, 130), (150, 165), (115, 168)]
CURSIVE_VE += [(165, 180), (160, 215), (120, 222)]  # a small в in one stroke, loops and all
CURSIVE_THREE = [(95, 80), (140, 58), (180, 85), (140, 135), (185, 170), (150, 222), (95, 205)]

# Guides on the 280 px canvas: cap line 58, x-height 118, baseline 222.
CHARACTERS: dict[str, list[list[Point]]] = {
    "1": [[(120, 90), (150, 58)], [(150, 58), (150, 222)]],
    "Г": [[(100, 222), (100, 58)], [(100, 58), (190, 58)]],
    "П": [[(90, 222), (90, 58)], [(90, 58), (190, 58)], [(190, 58), (190, 222)]],
    "О": [ellipse(140, 140, 60, 82)],
    "Ж": [
        [(140, 58), (140, 222)],
        [(80, 58), (140, 140), (80, 222)],
        [(200, 58), (140, 140), (200, 222)],
    ],
    "7": [[(90, 58), (190, 58), (120, 222)]],
    "г": [[(115, 222), (115, 118)], [(115, 118), (170, 118)]],
    "в (cursive)": [_cursive(CURSIVE_VE)],
    "3 (cursive)": [_cursive(CURSIVE_THREE)],
    "ч": [[(105, 118), (105, 160), (170, 165)], [(170, 118), (170, 222)]],
}


def _default_paint() -> float:
    from bukva.settings import Settings

    return Settings().bukva_answer_paint_ms


def _fresh_first_strokes(browser, url: str) -> list[dict]:
    """The first stroke of `FRESH_SESSIONS` new sessions: a new browser profile opens the
    page, waits until it is ready, as a person would, and draws one stroke."""
    firsts = []
    for i in range(FRESH_SESSIONS):
        character, paths = list(CHARACTERS.items())[i % len(CHARACTERS)]
        context = _context(browser)
        try:
            page = context.new_page()
            page.set_default_timeout(30_000)
            page.goto(url)
            expect(page.locator("canvas").first).to_be_visible()
            settle(page)
            timing = draw(page, paths[:1])[0]
            assert answer_digest(page) == canvas_digest(page), character
            firsts.append({"character": character, "session": i + 1} | timing)
        finally:
            context.close()
    return firsts


def test_stroke_to_answer_latency(browser, page: Page, stack: Stack) -> None:
    page.goto(stack.url)
    expect(page.locator("canvas").first).to_be_visible()
    settle(page)
    before = machine()
    strokes: list[dict] = []
    # Twice over (36 strokes): the 90th percentile of a few strokes is one unlucky stroke.
    for character, paths in [*CHARACTERS.items(), *CHARACTERS.items()]:
        for i, timing in enumerate(draw(page, paths)):
            strokes.append({"character": character, "stroke": i + 1} | timing)
        settle(page)
        assert answer_digest(page) == canvas_digest(page), character
        page.get_by_role("button", name="Стерти все").click()
        expect(page.get_by_text("Нічого не намальовано.")).to_be_visible()
        settle(page)
    fresh = _fresh_first_strokes(browser, stack.url)

    warm_figures, fresh_figures = summary(strokes), summary(fresh)
    met = {
        "warm_median_ms": warm_figures["median_ms"] <= GOALS["warm_median_ms"],
        "fresh_median_ms": fresh_figures["median_ms"] <= GOALS["fresh_median_ms"],
        "warm_p90_ms": warm_figures["p90_ms"] <= GOALS["p90_ms"],
        "fresh_p90_ms": fresh_figures["p90_ms"] <= GOALS["p90_ms"],
    }
    report = {
        "what": "browser: end of a stroke (pointerup) -> the answer for it visible in the page",
        "goal": GOALS,
        "goal_met": met,
        "warm": warm_figures | {"strokes": len(strokes)},
        "fresh": fresh_figures | {"sessions": len(fresh)},
        "parts": {
            "send": "pointerup -> the drawing leaves the page (websocket send)",
            "queue": "-> the app's drawing fragment starts (websocket, Streamlit's rerun request)",
            "rerun": "the fragment's own work up to the answer, inference excluded",
            "inference": "the v2 call: app -> transformer -> predictor -> app",
            "render": "the answer made -> in the page (websocket back, Streamlit/React render)",
        },
        "warm_strokes": strokes,
        "fresh_strokes": fresh,
        "model": "trained" if stack.trained else "untrained (models/model absent)",
        "answer_paint_ms": float(PASSED_THROUGH.get("BUKVA_ANSWER_PAINT_MS", _default_paint())),
        "browser": "Chromium (headless), 1280x1000, on the same machine as the servers",
        "machine": before | {"load_avg_1m_after": round(os.getloadavg()[0], 2)},
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    parts = ", ".join(f"{k} {v['median_ms']}" for k, v in warm_figures["breakdown"].items())
    print(
        f"\nstroke -> answer, warm ({len(strokes)} strokes): median {warm_figures['median_ms']}"
        f" ms, p90 {warm_figures['p90_ms']} ms (medians: {parts}); fresh ({len(fresh)} "
        f"sessions): median {fresh_figures['median_ms']} ms, p90 {fresh_figures['p90_ms']} ms; "
        f"load {before['load_avg_1m_before']} -> {report['machine']['load_avg_1m_after']}"
    )
    # The goals are recorded beside the figures, not asserted: a timed assertion flakes on a
    # loaded machine. Every stroke above was answered for its own drawing (the real check).
    assert strokes and all(s["ms"] > 0 for s in strokes), strokes
    assert len(fresh) == FRESH_SESSIONS and all(s["ms"] > 0 for s in fresh), fresh
