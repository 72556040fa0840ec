"""The Collect and Review pages in Chromium against the real stack (transformer, predictor,
moto's S3 as the feedback store): a collection session stores prompted records with their
labels, the review rejects one, and the next training set does not have it."""

from __future__ import annotations

import json
import re
import time

import pytest
from playwright.sync_api import Page, expect

from pipelines.sources.feedback import collect as ingest_feedback

from .canvas import settle, stroke_with_mouse
from .conftest import BUCKET, S3_CREDENTIALS, Stack

pytestmark = pytest.mark.browser

STEM = [(140, 58), (140, 222)]  # one vertical stroke: a prompt is a label, not a judgement


def stem(n: int) -> list[tuple[int, int]]:
    """A vertical stroke, shifted per drawing (distinct drawings: none a duplicate)."""
    return [(x + 20 * n, y) for x, y in STEM]


PROMPT = re.compile(r"Draw: «(.)» \(")


def current_prompt(page: Page) -> str:
    heading = page.get_by_role("heading", name=PROMPT).first
    expect(heading).to_be_visible()
    return PROMPT.search(heading.inner_text()).group(1)


def records_by_id(stack: Stack) -> dict[str, dict]:
    keys = [k for k in stack.objects() if re.fullmatch(r"feedback/[^/]+/[0-9a-f]{32}\.json", k)]
    return {k.rsplit("/", 1)[1][:-5]: json.loads(stack.read(k)) for k in keys}


def test_collect_then_review_then_the_rejected_drawing_does_not_train(
    page: Page, stack: Stack, tmp_path
) -> None:
    before = set(records_by_id(stack))
    page.goto(f"{stack.url}/collect?lang=English")
    expect(page.locator("canvas").first).to_be_visible()
    settle(page)
    asked = []
    for n in range(1, 4):
        prompt = current_prompt(page)
        asked.append(prompt)
        stroke_with_mouse(page, stem(n))
        settle(page)
        page.get_by_role("button", name="Save").click()
        expect(page.get_by_text(f"“{prompt}” is saved")).to_be_visible()
        expect(page.get_by_text(f"Collected in this session: {n}")).to_be_visible()
        settle(page)

    deadline = time.monotonic() + 30
    while len(new := set(records_by_id(stack)) - before) < 3 and time.monotonic() < deadline:
        time.sleep(0.5)
    records = records_by_id(stack)
    collected = sorted((records[i] for i in new), key=lambda r: r["created_at"])
    assert [r["text"] for r in collected] == asked
    for record in collected:
        assert record["source"] == "collect" and record["prompt"]["text"] == record["text"]
        assert record["mode"] == ("digits" if record["label"].isdigit() else "letters")
        assert record["model_version"] not in ("", "unknown")  # the served version

    # Review: the first drawing is marked wrong, the rest approved.
    rejected = collected[0]["id"]
    page.goto(f"{stack.url}/review?lang=English")
    settle(page)
    box = page.locator(f".st-key-rv-{rejected}")
    expect(box).to_be_visible()
    box.get_by_text("Wrong").click()
    settle(page)
    page.get_by_role("button", name=re.compile(r"Approve the rest of these")).click()
    expect(page.get_by_text(re.compile(r"Approved: \d+, rejected: 1\."))).to_be_visible()
    decision = json.loads(stack.read(f"feedback/reviews/{rejected}.json"))
    assert decision["status"] == "rejected"

    uri = f"s3://{BUCKET}/feedback"
    with pytest.MonkeyPatch.context() as patch:
        for name, value in S3_CREDENTIALS.items():
            patch.setenv(name, value)
        manifest = ingest_feedback(uri, tmp_path / "feedback", stack.s3.url)
    assert rejected not in manifest["used"]
    assert manifest["skipped"][f"{collected[0]['label']}/{rejected}.json"] == "rejected in review"
    assert {r["id"] for r in collected[1:]} <= set(manifest["used"])
