"""The feedback store against a real S3 API: moto in server mode on loopback stands in for
MinIO (the cluster's store) and for any other S3 endpoint."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from bukva.storage import (
    APPROVED,
    REJECTED,
    FeedbackOutbox,
    FeedbackRecord,
    OutboxFull,
    StoreUnavailable,
    canonical_drawing,
    feedback_counts,
    open_store,
    set_review,
    stored_records,
)
from tests.support import s3 as support_s3
from tests.support.drawings import canvas_png

pytestmark = pytest.mark.integration

DRAWING = canonical_drawing(canvas_png())
PNG = DRAWING.png


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in support_s3.CREDENTIALS.items():
        monkeypatch.setenv(name, value)


class MotoS3(support_s3.MotoS3):
    """The shared moto endpoint with a bucket name of its own (moto's state lives as long as
    the process, so every test gets a fresh bucket)."""

    def __init__(self) -> None:
        super().__init__()
        self.bucket = f"feedback-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def moto(s3_env: None) -> Iterator[MotoS3]:
    server = MotoS3()
    server.start()
    boto3.client("s3", endpoint_url=server.url).create_bucket(Bucket=server.bucket)
    yield server
    server.stop()


def objects(moto: MotoS3) -> dict[str, bytes]:
    s3 = boto3.client("s3", endpoint_url=moto.url)
    listed = s3.list_objects_v2(Bucket=moto.bucket).get("Contents", [])
    return {
        o["Key"]: s3.get_object(Bucket=moto.bucket, Key=o["Key"])["Body"].read() for o in listed
    }


def record(label: str) -> FeedbackRecord:
    return FeedbackRecord(
        label=label,
        uppercase=False,
        predicted=label,
        predicted_uppercase=False,
        probability=0.8,
        model_version="1",
        image_sha256=DRAWING.sha256,
    )


def test_feedback_lands_in_the_bucket_under_the_prefix(moto: MotoS3, tmp_path: Path) -> None:
    store = open_store(f"s3://{moto.bucket}/feedback", moto.url)
    rec = record("ї")
    assert FeedbackOutbox(store, tmp_path / "outbox").submit(rec, PNG).stored

    stored = objects(moto)
    assert set(stored) == {f"feedback/ї/{rec.id}.png", f"feedback/ї/{rec.id}.json"}
    assert stored[f"feedback/ї/{rec.id}.png"] == PNG
    assert json.loads(stored[f"feedback/ї/{rec.id}.json"])["label"] == "ї"
    assert feedback_counts(store) == {"ї": 1}


def test_endpoint_down_then_back_delivers_exactly_once(moto: MotoS3, tmp_path: Path) -> None:
    """The endpoint stops answering, then comes back on the same port (moto keeps its buckets
    in this process, as MinIO keeps them on its volume)."""
    store = open_store(f"s3://{moto.bucket}/feedback", moto.url)
    outbox = FeedbackOutbox(store, tmp_path / "outbox")
    assert outbox.submit(record("б"), PNG).stored  # up: stored at once

    moto.stop()
    queued = record("в")
    delivery = outbox.submit(queued, PNG)
    assert not delivery.stored and delivery.pending == 1
    assert "cannot write" in delivery.error
    with pytest.raises(StoreUnavailable):
        outbox.flush()
    assert outbox.pending() == 1

    moto.start()
    assert outbox.flush() == 1
    assert outbox.flush() == 0
    keys = set(objects(moto))
    assert {f"feedback/в/{queued.id}.png", f"feedback/в/{queued.id}.json"} <= keys
    assert len(keys) == 4  # two records, two objects each, nothing duplicated
    assert outbox.pending() == 0


def test_full_outbox_in_front_of_a_stopped_endpoint_keeps_its_queue(
    moto: MotoS3, tmp_path: Path
) -> None:
    store = open_store(f"s3://{moto.bucket}/feedback", moto.url)
    outbox = FeedbackOutbox(store, tmp_path / "outbox", max_pending=1)
    moto.stop()
    queued = record("г")
    assert not outbox.submit(queued, PNG).stored
    with pytest.raises(OutboxFull, match="holds 1 drawings"):
        outbox.submit(record("д"), PNG)
    moto.start()
    assert outbox.flush() == 1
    assert set(objects(moto)) == {f"feedback/г/{queued.id}.png", f"feedback/г/{queued.id}.json"}


def test_review_in_the_bucket_decides_what_ingest_takes(moto: MotoS3, tmp_path: Path) -> None:
    from pipelines.sources.feedback import collect

    uri = f"s3://{moto.bucket}/feedback"
    store = open_store(uri, moto.url)
    outbox = FeedbackOutbox(store, tmp_path / "outbox")
    good, wrong, fresh = record("е"), record("є"), record("ж")
    for rec in (good, wrong, fresh):
        assert outbox.submit(rec, PNG).stored
    set_review(store, good, APPROVED)
    set_review(store, wrong, REJECTED)
    assert {r.record.id: r.review for r in stored_records(store)[0]} == {
        good.id: APPROVED,
        wrong.id: REJECTED,
        fresh.id: "",
    }
    assert f"feedback/reviews/{wrong.id}.json" in objects(moto)

    manifest = collect(uri, tmp_path / "raw" / "feedback", moto.url)
    assert list(manifest["used"]) == [good.id]  # the three share one drawing: one kept anyway
    assert manifest["skipped"] == {
        f"є/{wrong.id}.json": "rejected in review",
        f"ж/{fresh.id}.json": "not reviewed (ingest.feedback_reviewed_only)",
    }
