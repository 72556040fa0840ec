"""The feedback store and its outbox: layout, record validation, nothing lost, exactly once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bukva.storage import (
    FeedbackOutbox,
    FeedbackRecord,
    LocalStore,
    S3Store,
    StoreUnavailable,
    feedback_counts,
    open_store,
)

PNG = b"\x89PNG\r\n\x1a\n-fake-drawing"


def record(label: str = "ж", uppercase: bool | None = True, **extra: object) -> FeedbackRecord:
    values = {
        "predicted": "ж",
        "predicted_uppercase": True,
        "probability": 0.91,
        "model_version": "3",
    }
    return FeedbackRecord(label=label, uppercase=uppercase, **(values | extra))


class FlakyStore:
    """A store that is down until `up` is set, and can fail after its Nth successful write."""

    def __init__(self, root: Path):
        self.inner = LocalStore(root)
        self.location = self.inner.location
        self.up = False
        self.fail_after: int | None = None
        self.writes: list[str] = []

    def put(self, key: str, data: bytes, content_type: str) -> None:
        if not self.up or (self.fail_after is not None and len(self.writes) >= self.fail_after):
            raise StoreUnavailable("store is down")
        self.writes.append(key)
        self.inner.put(key, data, content_type)

    def get(self, key: str) -> bytes:
        return self.inner.get(key)

    def list_keys(self) -> Iterator[str]:
        return self.inner.list_keys()


def test_record_is_stored_under_its_class_with_png_and_json(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "feedback")
    rec = record(label="ж", uppercase=True, predicted="з")
    delivery = FeedbackOutbox(store, tmp_path / "outbox").submit(rec, PNG)

    assert delivery.stored and delivery.pending == 0
    assert sorted(store.list_keys()) == [f"ж/{rec.id}.json", f"ж/{rec.id}.png"]
    assert store.get(f"ж/{rec.id}.png") == PNG
    body = json.loads(store.get(f"ж/{rec.id}.json"))
    assert body["label"] == "ж" and body["uppercase"] is True and body["text"] == "Ж"
    assert body["predicted"] == "з" and body["agrees"] is False
    assert body["model_version"] == "3" and body["image"] == f"ж/{rec.id}.png"
    assert body["created_at"].endswith("+00:00")


def test_record_json_round_trips() -> None:
    rec = record(top_labels=["ж", "х"], top_probabilities=[0.9, 0.05])
    assert FeedbackRecord.from_json(rec.to_json()) == rec


def test_record_carries_the_mode_and_old_records_read_as_anything(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "feedback")
    rec = record(label="3", uppercase=None, predicted="3", mode="digits")
    FeedbackOutbox(store, tmp_path / "outbox").submit(rec, PNG)
    body = json.loads(store.get(f"3/{rec.id}.json"))
    assert body["mode"] == "digits" and body["schema_version"] == 2
    assert FeedbackRecord.from_json(store.get(f"3/{rec.id}.json")).mode == "digits"
    # a record written before modes: schema 1, no `mode` field
    old = {k: v for k, v in json.loads(record().to_json()).items() if k != "mode"}
    old["schema_version"] = 1
    read = FeedbackRecord.from_json(json.dumps(old).encode())
    assert read.mode == "anything" and read.schema_version == 1 and read.label == "ж"


@pytest.mark.parametrize(
    ("label", "uppercase", "extra", "message"),
    [
        ("7", True, {}, "has no case"),
        ("w", None, {}, "not one of"),
        ("Ж", True, {}, "not one of"),
        ("ж", True, {"mode": "cursive"}, "mode must be one of anything, letters, digits"),
    ],
)
def test_record_rejects_what_cannot_be_training_data(
    label: str, uppercase: bool | None, extra: dict, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        record(label=label, uppercase=uppercase, **extra)


def test_store_down_queues_then_delivers_exactly_once(tmp_path: Path) -> None:
    store = FlakyStore(tmp_path / "feedback")
    outbox = FeedbackOutbox(store, tmp_path / "outbox")
    first, second = record(label="а"), record(label="5", uppercase=None, predicted="5")

    assert not outbox.submit(first, PNG).stored
    delivery = outbox.submit(second, PNG)
    assert not delivery.stored and delivery.pending == 2 and "down" in delivery.error
    assert list(store.list_keys()) == []

    store.up = True
    assert outbox.flush() == 2
    assert outbox.flush() == 0  # nothing delivered twice
    assert outbox.pending() == 0
    keys = sorted(store.list_keys())
    assert keys == sorted(
        [f"а/{first.id}.json", f"а/{first.id}.png", f"5/{second.id}.json", f"5/{second.id}.png"]
    )
    assert store.writes[:2] == [first.image_key, first.record_key]  # oldest first, JSON last


def test_failure_between_image_and_record_is_retried_without_duplicates(tmp_path: Path) -> None:
    store = FlakyStore(tmp_path / "feedback")
    store.up, store.fail_after = True, 1  # the PNG gets in, the JSON does not
    outbox = FeedbackOutbox(store, tmp_path / "outbox")
    rec = record()

    assert not outbox.submit(rec, PNG).stored
    assert feedback_counts(store)["ж"] == 0  # incomplete records do not count

    store.fail_after = None
    assert outbox.flush() == 1
    assert sorted(store.list_keys()) == [rec.record_key, rec.image_key]
    assert feedback_counts(store)["ж"] == 1


def test_queue_survives_a_new_outbox_on_the_same_folder(tmp_path: Path) -> None:
    """An app restart while the store is down loses nothing."""
    store = FlakyStore(tmp_path / "feedback")
    FeedbackOutbox(store, tmp_path / "outbox").submit(record(), PNG)

    store.up = True
    restarted = FeedbackOutbox(store, tmp_path / "outbox")
    assert restarted.pending() == 1
    assert restarted.flush() == 1
    assert len(list(store.list_keys())) == 2


def test_feedback_counts_per_class(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    outbox = FeedbackOutbox(store, tmp_path / "outbox")
    for label in ["а", "а", "7"]:
        outbox.submit(record(label=label, uppercase=None), PNG)
    counts = feedback_counts(store)
    assert counts == {"а": 2, "7": 1}


def test_open_store_understands_folders_and_s3(tmp_path: Path) -> None:
    local = open_store("feedback", base=tmp_path)
    assert isinstance(local, LocalStore) and local.root == tmp_path / "feedback"
    s3 = open_store("s3://bucket/some/prefix/", endpoint_url="http://127.0.0.1:9000")
    assert isinstance(s3, S3Store)
    assert (s3.bucket, s3.prefix, s3.endpoint_url) == (
        "bucket",
        "some/prefix",
        "http://127.0.0.1:9000",
    )
    with pytest.raises(ValueError, match="no bucket"):
        open_store("s3:///prefix")
    with pytest.raises(ValueError, match="only s3://"):
        open_store("gs://bucket/prefix")
