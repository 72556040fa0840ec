"""Drawing on the app's canvas with real mouse moves, and timing the answer in the page.

Timing happens inside the browser: a capture-phase `mouseup` listener stamps the end of the
stroke and a MutationObserver stamps the moment the page shows an answer for a drawing it has
not answered before (the top-1 element carries a `drawing-<hash>` class). The difference is
the stroke-to-prediction latency a person sees, without Playwright's own round trips.
`WS_PROBE` (an init script) also stamps when the page sends the drawing to the Streamlit
server, which splits the latency into the canvas component's wait before sending and the
app's part (rerun, inference, rendering).
"""

from __future__ import annotations

import math

from playwright.sync_api import Page

# Installed with `BrowserContext.add_init_script`: stamps the first websocket send after a stroke.
WS_PROBE = """(() => {
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    const t = window.__bukvaTiming;
    if (t && t.up !== null && t.sent === null) t.sent = performance.now();
    return send.call(this, data);
  };
})();"""

# Run before the stroke's mouse-up; resolves nothing, just installs the stamps.
ARM = """() => {
  const current = () => {
    const top = document.querySelector('.bukva-top');
    return top ? top.className : '';
  };
  const before = current();
  const state = { up: null, sent: null, shown: null };
  window.__bukvaTiming = state;
  window.addEventListener('mouseup', () => { state.up = performance.now(); },
                          { capture: true, once: true });
  const observer = new MutationObserver(() => {
    if (state.up !== null && state.shown === null && current() && current() !== before) {
      state.shown = performance.now();
      observer.disconnect();
    }
  });
  observer.observe(document.body, { subtree: true, childList: true, attributes: true,
                                    characterData: true });
}"""
SHOWN = "() => window.__bukvaTiming && window.__bukvaTiming.shown !== null"
ELAPSED = """() => {
  const t = window.__bukvaTiming;
  return { total: t.shown - t.up, send: t.sent === null ? null : t.sent - t.up };
}"""

Point = tuple[float, float]


def ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 24) -> list[Point]:
    """Points around an ellipse (a zero, an O), closed."""
    return [
        (cx + rx * math.sin(2 * math.pi * i / n), cy - ry * math.cos(2 * math.pi * i / n))
        for i in range(n + 1)
    ]


def draw(page: Page, strokes: list[list[Point]], timeout_ms: float = 30_000) -> list[dict]:
    """Draw `strokes` (canvas pixel coordinates) one by one, waiting after each for the page
    to show the answer for the drawing so far.

    Returns, per stroke, `ms` (mouse-up to answer visible) and `send_ms` (mouse-up to the
    drawing leaving the page; None without `WS_PROBE`), in milliseconds.
    """
    box = page.locator("canvas").first.bounding_box()
    assert box is not None, "the canvas is not on the page"
    latencies = []
    for stroke in strokes:
        page.evaluate(ARM)
        x, y = stroke[0]
        page.mouse.move(box["x"] + x, box["y"] + y)
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x, box["y"] + y, steps=4)
        page.mouse.up()
        page.wait_for_function(SHOWN, timeout=timeout_ms)
        elapsed = page.evaluate(ELAPSED)
        send = elapsed["send"]
        latencies.append(
            {"ms": round(elapsed["total"], 1), "send_ms": None if send is None else round(send, 1)}
        )
    return latencies


# True once Streamlit has finished the current run: no element left from the previous run.
SETTLED = """() => !document.querySelector('[data-stale="true"]')
  && !document.querySelector('[data-testid="stStatusWidgetRunningIcon"]')"""


def settle(page: Page, timeout_ms: float = 30_000) -> None:
    """Wait until the page shows the end of the app's last run (widgets of earlier drawings
    are gone), so a locator finds exactly the current drawing's form."""
    page.wait_for_function(SETTLED, timeout=timeout_ms)
    page.wait_for_timeout(100)  # one more frame for late renders
