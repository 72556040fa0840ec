"""The feedback store and its outbox: layout, record validation, nothing lost, exactly once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from bukva.alphabet import CLASSES, MODES
from bukva.preprocess import ImageError
from bukva.storage import (
    APPROVED,
    REJECTED,
    FeedbackOutbox,
    FeedbackRecord,
    InvalidRecord,
    LocalStore,
    OutboxFull,
    S3Store,
    StoreUnavailable,
    canonical_drawing,
    feedback_counts,
    open_store,
    record_schema,
    reviewed_counts,
    set_review,
    stored_records,
)
from tests.support.drawings import canvas_png

DRAWING = canonical_drawing(canvas_png())
PNG = DRAWING.png


def record(label: str = "ж", uppercase: bool | None = True, **extra: object) -> FeedbackRecord:
    values = {
        "predicted": "ж",
        "predicted_uppercase": True,
        "probability": 0.91,
        "model_version": "3",
        "image_sha256": DRAWING.sha256,
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
    assert body["mode"] == "digits" and body["schema_version"] == 3
    assert FeedbackRecord.from_json(store.get(f"3/{rec.id}.json")).mode == "digits"
    # a record written before modes: schema 1, no `mode` field (nor the fields of version 3)
    v3_only = {"mode", "image_sha256", "image_side", "label_probability", "prompt", "source"}
    old = {k: v for k, v in json.loads(record().to_json()).items() if k not in v3_only}
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


def test_stored_drawing_is_the_canonical_grey_canvas_image(tmp_path: Path) -> None:
    """Whatever the browser's PNG carried (alpha, text chunks, another size), the store gets a
    280x280 grey PNG of the same drawing with no extra chunks, and its sha256 in the record."""
    import hashlib
    import io

    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "x" * 5000)
    source = Image.open(io.BytesIO(canvas_png(side=140)))
    raw = io.BytesIO()
    source.save(raw, format="PNG", pnginfo=info)
    drawing = canonical_drawing(raw.getvalue())
    image = Image.open(io.BytesIO(drawing.png))
    assert (image.format, image.mode, image.size) == ("PNG", "L", (280, 280))
    assert image.info == {} and b"tEXt" not in drawing.png
    pixels = np.asarray(image)
    assert pixels[0, 0] == 255 and pixels[140, 115] < 50  # ink on white, scaled up in place
    assert drawing.sha256 == hashlib.sha256(drawing.png).hexdigest()
    assert canonical_drawing(drawing.png) == drawing  # re-encoding the stored form is stable

    store = LocalStore(tmp_path / "feedback")
    rec = record(image_sha256=drawing.sha256)
    FeedbackOutbox(store, tmp_path / "outbox").submit(rec, drawing.png)
    assert store.get(rec.image_key) == drawing.png
    assert json.loads(store.get(rec.record_key))["image_sha256"] == drawing.sha256


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "empty"),
        (b"<html>not a drawing</html>", "not a PNG or JPEG"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 600_000, "the limit is 512000"),
    ],
)
def test_oversized_or_non_image_payload_is_refused(payload: bytes, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        canonical_drawing(payload)


def test_huge_canvas_is_refused_by_its_pixels() -> None:
    with pytest.raises(ImageError, match="pixels"):
        canonical_drawing(canvas_png(side=2000))


def test_outbox_refuses_bytes_that_are_not_the_records_drawing(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "feedback")
    outbox = FeedbackOutbox(store, tmp_path / "outbox")
    with pytest.raises(InvalidRecord, match="sha256"):
        outbox.submit(record(), canonical_drawing(canvas_png(offset=40)).png)
    with pytest.raises(InvalidRecord, match="sha256"):
        outbox.submit(record(), canvas_png())  # the browser's own bytes, not re-encoded
    assert outbox.pending() == 0 and list(store.list_keys()) == []


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"probability": 1.5}, "probability"),
        ({"prompt": {"label": "w", "uppercase": None}}, "prompt/label"),
        ({"source": "upload"}, "source"),
        ({"model_version": "v" * 500}, "model_version"),
    ],
)
def test_records_outside_the_schema_are_refused_when_written(
    tmp_path: Path, extra: dict, message: str
) -> None:
    outbox = FeedbackOutbox(LocalStore(tmp_path / "feedback"), tmp_path / "outbox")
    with pytest.raises(InvalidRecord, match=message):
        outbox.submit(record(**extra), PNG)
    assert outbox.pending() == 0


def test_schema_knows_the_classes_and_modes() -> None:
    properties = record_schema()["properties"]
    assert properties["label"]["enum"] == list(CLASSES)
    assert properties["mode"]["enum"] == list(MODES)


def test_full_outbox_warns_and_keeps_what_is_queued(tmp_path: Path) -> None:
    store = FlakyStore(tmp_path / "feedback")
    outbox = FeedbackOutbox(store, tmp_path / "outbox", max_pending=2)
    queued = [record(label="а"), record(label="б")]
    for rec in queued:
        assert not outbox.submit(rec, PNG).stored
    with pytest.raises(OutboxFull, match=r"holds 2 drawings.*queued ones are kept"):
        outbox.submit(record(label="в"), PNG)
    assert outbox.pending() == 2

    store.up = True  # the store is back: the queue drains, oldest first, and there is room
    delivery = outbox.submit(record(label="г"), PNG)
    assert delivery.stored and delivery.pending == 0
    assert feedback_counts(store) == {"а": 1, "б": 1, "г": 1}
    assert store.writes[:4] == [k for r in queued for k in (r.image_key, r.record_key)]


def test_reviews_order_the_unlikely_first_and_count_approved(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "feedback")
    outbox = FeedbackOutbox(store, tmp_path / "outbox")
    sure = record(label="а", uppercase=False, label_probability=0.97)
    doubtful = record(label="б", uppercase=False, label_probability=0.02)
    unknown = record(label="в", uppercase=False)  # the label was not in the model's top-k
    for rec in (sure, doubtful, unknown):
        outbox.submit(rec, PNG)
    records, broken = stored_records(store)
    assert [r.record.id for r in records] == [unknown.id, doubtful.id, sure.id]
    assert broken == {} and all(r.review == "" for r in records)

    set_review(store, doubtful, REJECTED, reviewer="test")
    set_review(store, sure, APPROVED)
    statuses = {r.record.id: r.review for r in stored_records(store)[0]}
    assert statuses == {sure.id: APPROVED, doubtful.id: REJECTED, unknown.id: ""}
    assert reviewed_counts(store) == {"а": 1}
    # decisions are no records, and a rejected drawing is not counted as collected (it never
    # trains: the Model page's total and the Collect page's weights leave it out)
    assert feedback_counts(store) == {"а": 1, "в": 1}
    set_review(store, doubtful, APPROVED)  # a later decision replaces the rejection
    assert feedback_counts(store) == {"а": 1, "б": 1, "в": 1}
    with pytest.raises(ValueError, match="approved or rejected"):
        set_review(store, sure, "maybe")


def test_stored_drawing_gives_the_model_the_same_input_as_the_browsers_png() -> None:
    """The canonical PNG is the canvas image the model was given: the same 28x28 input,
    antialiased (partly transparent) stroke edges included."""
    import io

    from PIL import Image, ImageDraw, ImageFilter

    from bukva.preprocess import decode_image, normalize

    rng = np.random.default_rng(0)
    for _ in range(10):
        image = Image.new("RGBA", (280, 280), (0, 0, 0, 0))
        pen = ImageDraw.Draw(image)
        for _ in range(3):
            points = [tuple(int(v) for v in rng.integers(30, 250, 2)) for _ in range(4)]
            pen.line(points, fill=(0, 0, 0, 255), width=18, joint="curve")
        image = image.filter(ImageFilter.GaussianBlur(1.5))  # soft edges, as a browser draws
        raw = io.BytesIO()
        image.save(raw, format="PNG")
        stored = canonical_drawing(raw.getvalue()).png
        np.testing.assert_allclose(
            normalize(decode_image(stored)), normalize(decode_image(raw.getvalue())), atol=1e-6
        )
