"""Drawing on the app's canvas with real mouse moves or touches, and timing the answer in the
page.

Timing happens inside the browser: a capture-phase `pointerup` listener stamps the end of the
stroke (mouse, touch and pen alike) and a MutationObserver stamps the moment the page shows an
answer for a drawing it has not answered before (the top-1 element carries a `drawing-<hash>`
class). The difference is the stroke-to-answer latency a person sees, without Playwright's own
round trips. `WS_PROBE` (an init script) stamps when the page sends the drawing to the Streamlit
server; the answer element carries the server's own timings (`data-run-ms`: the drawing
fragment's run up to the answer, `data-inference-ms`: the v2 call within it, and the epoch
times the run started and the answer was made, which the page puts on its own clock: the
browser and the app share the machine). Together they split the latency into:

- send: pointer up -> the drawing leaves the page;
- queue: -> the app's drawing fragment starts (websocket, Streamlit's rerun request);
- rerun: the fragment's own work up to the answer (the preview, the page's elements);
- inference: the v2 call (app -> transformer -> predictor -> app);
- render: the answer made -> in the page (websocket back, Streamlit's and React's render).
"""

from __future__ import annotations

import hashlib
import math
import statistics

from playwright.sync_api import Page

from bukva.geometry import CANVAS_SIDE

# Installed with `BrowserContext.add_init_script`: stamps the first websocket send after a stroke.
WS_PROBE = """(() => {
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    const t = window.__bukvaTiming;
    if (t && t.up !== null && t.sent === null) t.sent = performance.now();
    return send.call(this, data);
  };
})();"""

# Run before the stroke's pointer lifts; installs the stamps.
ARM = """() => {
  const current = () => {
    const top = document.querySelector('.bukva-top');
    return top ? top.className : '';
  };
  const before = current();
  const state = { up: null, sent: null, shown: null, run: null, inference: null, hash: null,
                  startedAt: null, answeredAt: null };
  window.__bukvaTiming = state;
  window.addEventListener('pointerup', () => { state.up = performance.now(); },
                          { capture: true, once: true });
  const observer = new MutationObserver(() => {
    if (state.up !== null && state.shown === null && current() && current() !== before) {
      state.shown = performance.now();
      const top = document.querySelector('.bukva-top');
      state.run = parseFloat(top.dataset.runMs);
      state.inference = parseFloat(top.dataset.inferenceMs);
      // The server's epoch stamps on the page's clock (same machine).
      state.startedAt = parseFloat(top.dataset.startedAtMs) - performance.timeOrigin;
      state.answeredAt = parseFloat(top.dataset.answeredAtMs) - performance.timeOrigin;
      state.hash = top.className.match(/drawing-([0-9a-f]+)/)[1];
      observer.disconnect();
    }
  });
  observer.observe(document.body, { subtree: true, childList: true, attributes: true,
                                    characterData: true });
}"""
SHOWN = "() => window.__bukvaTiming && window.__bukvaTiming.shown !== null"
ELAPSED = """() => {
  const t = window.__bukvaTiming;
  return { total: t.shown - t.up, send: t.sent === null ? null : t.sent - t.up,
           queue: t.sent === null ? null : t.startedAt - t.sent,
           run: t.run, inference: t.inference, render: t.shown - t.answeredAt, hash: t.hash };
}"""
# The canvas's own pixels as the PNG it sends (it lives in the component's shadow root).
CANVAS_PNG = "c => c.bukvaPng()"  # the greyscale PNG the canvas sends (frontend/canvas.js)

Point = tuple[float, float]


def ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 24) -> list[Point]:
    """Points around an ellipse (a zero, an O), closed."""
    return [
        (cx + rx * math.sin(2 * math.pi * i / n), cy - ry * math.cos(2 * math.pi * i / n))
        for i in range(n + 1)
    ]


def canvas_box(page: Page) -> dict:
    box = page.locator("canvas").first.bounding_box()
    assert box is not None, "the canvas is not on the page"
    return box


def stroke_with_mouse(page: Page, stroke: list[Point], steps: int = 4) -> None:
    """One stroke with mouse moves (canvas pixel coordinates; the canvas is CANVAS_SIDE px wide)."""
    box = canvas_box(page)
    scale = box["width"] / CANVAS_SIDE
    x, y = stroke[0]
    page.mouse.move(box["x"] + x * scale, box["y"] + y * scale)
    page.mouse.down()
    for x, y in stroke[1:]:
        page.mouse.move(box["x"] + x * scale, box["y"] + y * scale, steps=steps)
    page.mouse.up()


def stroke_with_finger(page: Page, cdp: object, stroke: list[Point], steps: int = 4) -> None:
    """One stroke with touch events (Chromium's DevTools protocol: touchStart, touchMove,
    touchEnd, as a finger on a phone sends them)."""
    box = canvas_box(page)
    scale = box["width"] / CANVAS_SIDE

    def at(x: float, y: float) -> list[dict]:
        return [{"x": box["x"] + x * scale, "y": box["y"] + y * scale, "id": 1}]

    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": at(*stroke[0])})
    previous = stroke[0]
    for point in stroke[1:]:
        for i in range(1, steps + 1):
            x = previous[0] + (point[0] - previous[0]) * i / steps
            y = previous[1] + (point[1] - previous[1]) * i / steps
            cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": at(x, y)})
        previous = point
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def draw(
    page: Page, strokes: list[list[Point]], timeout_ms: float = 30_000, cdp: object = None
) -> list[dict]:
    """Draw `strokes` one by one (with a finger when `cdp` is given), waiting after each for
    the page to show the answer for the drawing so far.

    Returns, per stroke, in milliseconds: `ms` (pointer up to answer visible), `send_ms` (to
    the drawing leaving the page; None without `WS_PROBE`), `run_ms` and `inference_ms` (the
    server's), and `hash` (the drawing the answer is for).
    """
    latencies = []
    for stroke in strokes:
        page.evaluate(ARM)
        if cdp is None:
            stroke_with_mouse(page, stroke)
        else:
            stroke_with_finger(page, cdp, stroke)
        page.wait_for_function(SHOWN, timeout=timeout_ms)
        t = page.evaluate(ELAPSED)
        latencies.append(
            {"ms": round(t["total"], 1)}
            | {
                f"{part}_ms": None if t[part] is None else round(t[part], 1)
                for part in ("send", "queue", "run", "inference", "render")
            }
            | {"hash": t["hash"]}
        )
    return latencies


def canvas_png(page: Page) -> bytes:
    """The canvas's pixels as a PNG, exactly as the canvas sends them."""
    import base64

    url = page.locator("canvas").first.evaluate(CANVAS_PNG)
    return base64.b64decode(url.split(",", 1)[1])


def canvas_digest(page: Page) -> str:
    """The `drawing-<hash>` the app gives the canvas's current drawing."""
    return hashlib.sha256(canvas_png(page)).hexdigest()[:16]


def answer_digest(page: Page) -> str:
    """The drawing the page's answer is for."""
    classes = page.locator(".bukva-top").first.get_attribute("class") or ""
    return next(c.removeprefix("drawing-") for c in classes.split() if c.startswith("drawing-"))


def summary(strokes: list[dict]) -> dict:
    """Median and 90th percentile of the latency and of each part, in milliseconds."""

    def stats(values: list[float]) -> dict:
        values = sorted(values)
        p90 = values[min(len(values) - 1, math.ceil(0.9 * len(values)) - 1)]
        return {"median_ms": round(statistics.median(values), 1), "p90_ms": round(p90, 1)}

    parts = {
        "send": [s["send_ms"] for s in strokes if s["send_ms"] is not None],
        "queue": [s["queue_ms"] for s in strokes if s["queue_ms"] is not None],
        "rerun": [s["run_ms"] - s["inference_ms"] for s in strokes],
        "inference": [s["inference_ms"] for s in strokes],
        "render": [s["render_ms"] for s in strokes],
    }
    return stats([s["ms"] for s in strokes]) | {
        "breakdown": {name: stats(values) for name, values in parts.items() if values}
    }


# True once Streamlit has finished the current run: no element left from the previous run.
SETTLED = """() => !document.querySelector('[data-stale="true"]')
  && !document.querySelector('[data-testid="stStatusWidgetRunningIcon"]')"""


def settle(page: Page, timeout_ms: float = 30_000) -> None:
    """Wait until the page shows the end of the app's last run (widgets of earlier drawings
    are gone), so a locator finds exactly the current drawing's form."""
    page.wait_for_function(SETTLED, timeout=timeout_ms)
    page.wait_for_timeout(100)  # one more frame for late renders
