"""The collection and review pages run headless (Streamlit's AppTest) on a real feedback store in
a folder: the canvas's state is what the browser would send (the component is the one thing
AppTest cannot draw on; tests/browser draws on it for real), everything after it is the app's."""

from __future__ import annotations

import base64
import json
import random
from collections import Counter
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from bukva.alphabet import CLASSES
from bukva.storage import (
    APPROVED,
    REJECTED,
    FeedbackOutbox,
    FeedbackRecord,
    LocalStore,
    canonical_drawing,
    stored_records,
)
from frontend import collect
from frontend.feedback import rate_wait
from frontend.i18n import TEXT
from pipelines.sources.feedback import collect as ingest_feedback
from tests.support.drawings import canvas_png


def collect_page() -> None:
    from frontend import collect

    collect.render("en")


def review_page() -> None:
    from frontend import review

    review.render("en")


def send(app: AppTest, png: bytes, stroke: int, key: str = collect.KEY) -> None:
    """What the canvas's browser half sends after a stroke."""
    url = "data:image/png;base64," + base64.b64encode(png).decode()
    app.session_state[key] = {"drawing": {"png": url, "ids": [stroke], "seq": stroke}}


def records(home: Path) -> list[dict]:
    return [json.loads(p.read_bytes()) for p in sorted((home / "feedback").glob("*/*.json"))]


def test_prompts_favour_what_the_model_gets_wrong_and_has_little_feedback_for(home: Path):
    # The combined set decides: the canvas set's few letters per class (here а at 0) are noise.
    report = {
        "canvas": {"per_class": {c: 1.0 for c in CLASSES} | {"а": 0.0}},
        "combined": {"per_class": {c: 1.0 for c in CLASSES} | {"ж": 0.2, "7": 0.5}},
    }
    (home / "reports").mkdir()
    (home / "reports" / "per_class.json").write_text(json.dumps(report), encoding="utf-8")
    accuracy = collect.class_accuracy(home)
    assert accuracy["ж"] == 0.2 and accuracy["а"] == 1.0

    weights = collect.prompt_weights(accuracy, {})
    assert max(weights, key=weights.get) == "ж" and weights["7"] > weights["а"] > 0
    fed = collect.prompt_weights(accuracy, {"ж": 40})
    assert fed["ж"] == pytest.approx(weights["ж"] / 3)  # 40 drawings = 2 targets: a third

    rng = random.Random(1)
    drawn = Counter(collect.choose_prompt(weights, rng) for _ in range(2000))
    by_label = Counter(prompt.label for prompt in drawn.elements())
    assert by_label.most_common(1)[0][0] == "ж" and by_label["ж"] > 5 * by_label["а"]
    assert {p.uppercase for p in drawn if p.label == "ж"} == {True, False}
    assert {p.uppercase for p in drawn if p.label == "7"} == {None}
    assert collect.class_accuracy(home / "nowhere") == {}


def test_collection_session_stores_prompted_records_with_their_labels(home: Path):
    app = AppTest.from_function(collect_page, default_timeout=60).run()
    assert not app.exception
    asked = []
    for stroke in (1, 2, 3):
        prompt = app.session_state[collect.PROMPT_KEY]
        asked.append(prompt)
        assert app.markdown[0].value.startswith(f"### Draw: «{prompt.text}»")
        send(app, canvas_png(offset=10 * stroke), stroke)
        app.run()
        app.button(key="collect-save").click().run()
        assert not app.exception and not app.error
        assert app.success[0].value.endswith(f"“{prompt.text}” is saved. Next one:")
    assert app.session_state[collect.COUNT_KEY] == 3

    stored = sorted(records(home), key=lambda r: r["created_at"])
    assert [(r["label"], r["uppercase"]) for r in stored] == [(p.label, p.uppercase) for p in asked]
    for body, prompt in zip(stored, asked, strict=True):
        assert body["source"] == "collect" and body["schema_version"] == 3
        assert body["prompt"] == {
            "label": prompt.label,
            "uppercase": prompt.uppercase,
            "text": prompt.text,
        }
        assert body["mode"] == ("digits" if prompt.label.isdigit() else "letters")
        assert body["model_version"] == "unknown"  # the service is down in this test
        png = (home / "feedback" / body["image"]).read_bytes()
        assert canonical_drawing(png).sha256 == body["image_sha256"]


def test_save_with_an_empty_canvas_stores_nothing(home: Path):
    app = AppTest.from_function(collect_page, default_timeout=60).run()
    app.button(key="collect-save").click().run()
    assert [i.value for i in app.info] == [TEXT["en"]["collect_nothing"]]
    assert not (home / "feedback").exists()


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"<html><body>not a drawing</body></html>", "not a PNG or JPEG"),
        (canvas_png(side=1200), "1200x1200 pixels"),
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 2100, "the limit is 512000"),
    ],
    ids=["not-an-image", "too-many-pixels", "too-many-bytes"],
)
def test_oversized_or_non_image_payload_is_refused_with_a_message(
    home: Path, payload: bytes, message: str
):
    app = AppTest.from_function(collect_page, default_timeout=60).run()
    send(app, payload, 1)
    app.run()
    app.button(key="collect-save").click().run()
    assert not app.exception
    assert any(message in e.value and "nothing was stored" in e.value for e in app.error)
    assert not (home / "feedback").exists() and not (home / "feedback-outbox" / "pending").exists()


def save_three_drawings() -> AppTest:
    """The Collect page with three different drawings saved one after another."""
    app = AppTest.from_function(collect_page, default_timeout=60).run()
    for stroke in (1, 2, 3):
        send(app, canvas_png(offset=10 * stroke), stroke)
        app.run()
        app.button(key="collect-save").click().run()
    return app


def test_rate_limit_says_why_and_stores_nothing_more(home: Path, monkeypatch):
    monkeypatch.setenv("BUKVA_FEEDBACK_PER_MINUTE", "2")
    app = save_three_drawings()
    (warning,) = app.warning
    assert "limit is 2 a minute" in warning.value and "Try again in" in warning.value
    assert len(records(home)) == 2
    assert rate_wait([100.0, 130.0], 150.0, 2) == pytest.approx(10.0)
    assert rate_wait([100.0, 130.0], 161.0, 2) == 0.0


def test_full_outbox_warns_and_loses_nothing_already_queued(home: Path, monkeypatch):
    blocked = home / "a-file"
    blocked.write_text("")  # the store's folder cannot be made: the store is down
    monkeypatch.setenv("BUKVA_FEEDBACK_URI", str(blocked / "feedback"))
    monkeypatch.setenv("BUKVA_FEEDBACK_OUTBOX_MAX", "2")
    app = save_three_drawings()
    (warning,) = app.warning
    assert "holds 2 drawings" in warning.value and "queued ones are kept" in warning.value
    pending = sorted((home / "feedback-outbox" / "pending").iterdir())
    assert len(pending) == 2 and app.session_state[collect.COUNT_KEY] == 2

    store = LocalStore(home / "feedback")  # the store is back: both queued records arrive
    assert FeedbackOutbox(store, home / "feedback-outbox").flush() == 2
    assert len(stored_records(store)[0]) == 2


def saved(
    store: LocalStore,
    outbox: FeedbackOutbox,
    label: str,
    p: float | None,
    shift: int,
    read: tuple[str, float] | None = None,
):
    """A stored record; `read`: what the model read instead of the label, and how sure."""
    drawing = canonical_drawing(canvas_png(offset=shift))
    predicted, probability = read or (label, 0.9)
    record = FeedbackRecord(
        label,
        False,
        predicted,
        False,
        probability,
        "3",
        image_sha256=drawing.sha256,
        label_probability=p,
    )
    assert outbox.submit(record, drawing.png).stored
    return record


def test_review_shows_the_unlikely_first_and_a_rejected_record_does_not_train(home: Path):
    store = LocalStore(home / "feedback")
    outbox = FeedbackOutbox(store, home / "outbox")
    sure_a = saved(store, outbox, "а", 0.98, 0)
    doubtful_b = saved(store, outbox, "б", None, 20, read=("х", 0.98))  # not in the top-k
    sure_b = saved(store, outbox, "б", 0.9, 40)

    app = AppTest.from_function(review_page, default_timeout=60).run()
    assert not app.exception
    boxes = [c.key for c in app.checkbox]
    assert boxes == [f"rv-{doubtful_b.id}", f"rv-{sure_b.id}", f"rv-{sure_a.id}"]
    captions = [c.value for c in app.caption]
    assert "б · model: ? · read as х (98%)" in captions  # what makes the wrong label plain
    assert "б · model: 90%" in captions  # read as labelled: nothing more
    assert [m.value for m in app.markdown if m.value.startswith("**")] == ["**Бб**", "**Аа**"]

    app.checkbox(key=f"rv-{doubtful_b.id}").check()  # a form: sent with the button
    app.button(key="review-apply").click().run()
    assert not app.exception
    assert app.success[0].value == "Approved: 2, rejected: 1."
    assert [i.value for i in app.info] == [TEXT["en"]["review_empty"]]
    statuses = {r.record.id: r.review for r in stored_records(store)[0]}
    assert statuses == {sure_a.id: APPROVED, doubtful_b.id: REJECTED, sure_b.id: APPROVED}

    late = saved(store, outbox, "в", 0.5, 60)  # arrives while the page is open
    app.run()
    assert [i.value for i in app.info] == [TEXT["en"]["review_empty"]]  # read once per visit
    app.button(key="review-refresh").click().run()
    assert [c.key for c in app.checkbox] == [f"rv-{late.id}"]

    manifest = ingest_feedback(str(home / "feedback"), home / "raw" / "feedback")
    assert sorted(manifest["used"]) == sorted([sure_a.id, sure_b.id])
    assert not (home / "raw" / "feedback" / f"{doubtful_b.id}.png").exists()


def draw_page() -> None:
    from frontend import draw_page

    draw_page.render("en")


def test_drawing_page_refuses_an_oversized_payload_before_decoding_it(home: Path):
    from frontend.canvas import MAX_PNG_BYTES, parse_state

    huge = "data:image/png;base64," + "A" * (4 * MAX_PNG_BYTES // 3 + 8)
    state = parse_state({"png": huge, "ids": [1], "seq": 1})
    assert state.png is None and f"the limit is {MAX_PNG_BYTES}" in state.error

    app = AppTest.from_function(draw_page, default_timeout=60)
    app.session_state["canvas"] = {"drawing": {"png": huge, "ids": [1], "seq": 1}}
    app.run()
    assert not app.exception
    assert any(
        e.value.startswith("This drawing was refused and nothing was stored") for e in app.error
    )
    assert not [b for b in app.button if b.key == "fb-save"]  # no feedback form to save it
    assert not (home / "feedback").exists()
