"""The feedback store as a data source: collect, prepare, split (fast, no pipeline run)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from bukva.storage import (
    APPROVED,
    REJECTED,
    FeedbackRecord,
    LocalStore,
    canonical_drawing,
    provenance_tag,
    reviewed_from_tags,
    reviewed_per_class,
    set_review,
)
from pipelines.data import feedback_used as used_records
from pipelines.sources.feedback import collect, prepare
from pipelines.split import assign_splits, assign_with_feedback


def drawing(offset: int) -> bytes:
    """A 280x280 RGBA canvas with one black stroke (transparent background, as the app saves)."""
    rgba = np.zeros((280, 280, 4), dtype=np.uint8)
    rgba[60:220, 100 + offset : 130 + offset] = (0, 0, 0, 255)
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, format="PNG")
    return buf.getvalue()


def rec(label, uppercase, predicted, prob, record_id, png, **extra) -> FeedbackRecord:
    """A version 3 record of `png` (its canonical form's sha256), as the app makes one."""
    sha = canonical_drawing(png).sha256
    return FeedbackRecord(
        label, uppercase, predicted, None, prob, "3", id=record_id, image_sha256=sha, **extra
    )


def put(store: LocalStore, record: FeedbackRecord, png: bytes | None, review: str = "") -> None:
    if png is not None:
        store.put(record.image_key, canonical_drawing(png).png, "image/png")
    store.put(record.record_key, record.to_json(), "application/json")
    if review:
        set_review(store, record, review)


@pytest.fixture
def store_dir(tmp_path):
    store = LocalStore(tmp_path / "store")
    put(store, rec("г", True, "т", 0.4, "a1", drawing(0)), drawing(0), APPROVED)
    put(store, rec("7", None, "7", 0.9, "b2", drawing(40)), drawing(40), APPROVED)
    same = rec("г", False, "г", 0.8, "c3", drawing(0))
    put(store, same, drawing(0), APPROVED)  # same PNG
    put(store, rec("а", False, "а", 0.8, "d4", drawing(0)), None, APPROVED)  # no PNG
    return tmp_path / "store"


def test_collect_keeps_distinct_complete_records_with_provenance(store_dir, tmp_path):
    dest = tmp_path / "raw" / "feedback"
    manifest = collect(str(store_dir), dest)
    assert manifest["records"] == 2
    assert manifest["duplicates"] == {"г/c3.json": "г/a1.json"}
    assert list(manifest["skipped"]) == ["а/d4.json"]
    assert manifest["skipped"]["а/d4.json"].startswith("invalid: ")
    assert sorted(p.name for p in dest.iterdir()) == ["a1.json", "a1.png", "b2.json", "b2.png"]
    body = json.loads((dest / "a1.json").read_text(encoding="utf-8"))
    assert body["label"] == "г" and body["uppercase"] is True and body["predicted"] == "т"
    assert body["provenance"]["store"] == str(store_dir)
    assert body["provenance"]["key"] == "г/a1.json"
    assert len(body["provenance"]["png_sha256"]) == 64


def test_collect_replaces_what_an_earlier_run_left(store_dir, tmp_path):
    dest = tmp_path / "feedback"
    dest.mkdir()
    (dest / "stale.json").write_text("{}")
    collect(str(store_dir), dest)
    assert not (dest / "stale.json").exists()


def test_prepare_feedback_normalizes_with_label_and_case(store_dir, tmp_path):
    collect(str(store_dir), tmp_path / "raw" / "feedback")
    records, images, geometry = prepare(tmp_path / "raw", {})
    assert [(r.id, r.source, r.label, r.uppercase) for r in records] == [
        ("feedback/a1", "feedback", "г", 1),
        ("feedback/b2", "feedback", "7", -1),
    ]
    assert all(x.shape == (28, 28) and x.dtype == np.float32 and x.max() > 0.5 for x in images)
    # drawings on the canvas: their geometry in the canvas is known (the case head reads it)
    assert all(g.shape == (5,) and g[4] == 1.0 and 0 < g[0] <= 1 for g in geometry)


def test_prepare_feedback_without_a_folder_adds_nothing(tmp_path):
    assert prepare(tmp_path, {}) == ([], [], [])


def _row(i: int, source: str, label: str, raw: str | None = None) -> dict:
    return {
        "id": f"{source}/{i}",
        "source": source,
        "label": label,
        "uppercase": -1,
        "raw_hash": raw or f"{source}-raw-{i}",
        "input_hash": f"{source}-in-{i}",
    }


def test_feedback_only_joins_train_and_public_splits_do_not_move():
    public = [_row(i, "mnist", str(i % 10)) for i in range(200)]
    before = assign_splits(public, 7, 0.15, 0.15)
    test_twin = public[before.index("test")]
    feedback = [_row(i, "feedback", str(i % 10)) for i in range(30)]
    feedback.append(_row(99, "feedback", test_twin["label"], raw=test_twin["raw_hash"]))
    after = assign_with_feedback(public + feedback, 7, 0.15, 0.15)
    assert after[: len(public)] == before
    assert after[len(public) : -1] == ["train"] * 30
    assert after[-1] == "test"  # an exact copy of a test image stays with its twin
    assert assign_with_feedback(public, 7, 0.15, 0.15) == before


def _tree(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_ingest_with_an_empty_store_is_byte_identical_and_with_records_adds_them(
    raw_data, store_dir, tmp_path
):
    from pipelines.ingest import ingest
    from tests.support.mirror import make_mirror

    mirror = make_mirror(raw_data, tmp_path / "mirror", letters="аб", per_letter=2, digits=20)
    ingest(mirror, tmp_path / "plain")
    (tmp_path / "empty-store").mkdir()
    ingest(mirror, tmp_path / "empty", feedback=str(tmp_path / "empty-store"))
    assert _tree(tmp_path / "empty") == _tree(tmp_path / "plain")
    manifest = ingest(mirror, tmp_path / "with", feedback=str(store_dir))
    assert manifest["feedback"]["records"] == 2
    added = set(_tree(tmp_path / "with")) - set(_tree(tmp_path / "plain"))
    assert added == {f"feedback/{n}" for n in ("a1.json", "a1.png", "b2.json", "b2.png")}


def test_records_from_before_modes_are_read_and_the_mode_is_kept(tmp_path):
    """Schema-1 records (no `mode`) still become training data; schema-2 ones keep their mode."""
    store = LocalStore(tmp_path / "store")
    put(store, rec("3", None, "з", 0.6, "new", drawing(0), mode="digits"), drawing(0))
    old_record = FeedbackRecord("з", False, "з", False, 0.7, "2", id="old", schema_version=1)
    old = json.loads(old_record.to_json())
    del old["mode"]
    store.put("з/old.png", drawing(40), "image/png")  # the browser's RGBA PNG, as v1 stored it
    store.put("з/old.json", json.dumps(old).encode(), "application/json")
    dest = tmp_path / "raw" / "feedback"
    manifest = collect(str(tmp_path / "store"), dest, reviewed_only=False)
    assert manifest["records"] == 2 and manifest["skipped"] == {}
    assert json.loads((dest / "new.json").read_text(encoding="utf-8"))["mode"] == "digits"
    assert "mode" not in json.loads((dest / "old.json").read_text(encoding="utf-8"))
    records, images, _ = prepare(tmp_path / "raw", {})
    assert sorted(r.label for r in records) == ["3", "з"] and len(images) == 2


def test_review_decides_what_trains(tmp_path):
    """Rejected records never train; unreviewed ones only when reviewed_only is off."""
    store = LocalStore(tmp_path / "store")
    good = rec("д", False, "д", 0.9, "good", drawing(0))
    wrong = rec("е", False, "д", 0.01, "wrong", drawing(20))
    fresh = rec("ж", True, "ж", 0.7, "fresh", drawing(40))
    put(store, good, drawing(0), APPROVED)
    put(store, wrong, drawing(20), REJECTED)
    put(store, fresh, drawing(40))
    dest = tmp_path / "raw" / "feedback"

    manifest = collect(str(tmp_path / "store"), dest)
    assert sorted(p.stem for p in dest.glob("*.json")) == ["good"]
    assert manifest["skipped"] == {
        "е/wrong.json": "rejected in review",
        "ж/fresh.json": "not reviewed (ingest.feedback_reviewed_only)",
    }
    assert manifest["used"] == {
        "good": {"sha256": good.image_sha256, "label": "д", "uppercase": False, "review": APPROVED}
    }
    assert reviewed_per_class(manifest["used"]) == {"д": 1}

    manifest = collect(str(tmp_path / "store"), dest, reviewed_only=False)
    assert sorted(p.stem for p in dest.glob("*.json")) == ["fresh", "good"]
    assert manifest["skipped"] == {"е/wrong.json": "rejected in review"}
    assert reviewed_per_class(manifest["used"]) == {"д": 1}  # "fresh" is in, but not reviewed


def test_records_that_are_not_what_they_claim_are_skipped_with_the_reason(tmp_path):
    store = LocalStore(tmp_path / "store")
    tampered = rec("и", False, "и", 0.9, "tampered", drawing(0))
    put(store, tampered, drawing(20), APPROVED)  # another drawing than its sha256 names
    foreign = rec("і", False, "і", 0.9, "foreign", drawing(0))
    store.put(foreign.image_key, drawing(0), "image/png")  # the browser's bytes, not canonical
    store.put(foreign.record_key, foreign.to_json(), "application/json")
    set_review(store, foreign, APPROVED)
    body = json.loads(rec("к", False, "к", 0.9, "bad", drawing(0)).to_json())
    body["probability"] = 7
    store.put("к/bad.json", json.dumps(body).encode(), "application/json")
    store.put("к/bad.png", canonical_drawing(drawing(0)).png, "image/png")
    store.put("к/junk.json", b"{not json", "application/json")
    moved = rec("л", False, "л", 0.9, "moved", drawing(0))
    store.put("м/moved.json", moved.to_json(), "application/json")

    manifest = collect(str(tmp_path / "store"), tmp_path / "raw" / "feedback", reviewed_only=False)
    skipped = manifest["skipped"]
    assert manifest["records"] == 0 and manifest["used"] == {}
    assert "sha256" in skipped["и/tampered.json"]
    assert "sha256" in skipped["і/foreign.json"]
    assert "probability" in skipped["к/bad.json"]
    assert "JSONDecodeError" in skipped["к/junk.json"]
    assert "stored under м/moved.json" in skipped["м/moved.json"]
    assert all(reason.startswith("invalid: ") for reason in skipped.values())


def test_ingest_manifest_names_the_records_a_training_set_used(raw_data, store_dir, tmp_path):
    from pipelines.ingest import ingest
    from tests.support.mirror import make_mirror

    mirror = make_mirror(raw_data, tmp_path / "mirror", letters="аб", per_letter=2, digits=20)
    ingest(mirror, tmp_path / "raw", feedback=str(store_dir))
    used = used_records(tmp_path / "raw")
    assert sorted(used) == ["a1", "b2"]
    png = (tmp_path / "raw" / "feedback" / "a1.png").read_bytes()
    import hashlib

    assert used["a1"]["sha256"] == hashlib.sha256(png).hexdigest()
    assert reviewed_per_class(used) == {"7": 1, "г": 1}
    tag = provenance_tag(used)  # what travels with the model to the Model page
    assert tag == '{"7":1,"г":1}'
    assert reviewed_from_tags({"feedback.reviewed_per_class": tag}) == {"7": 1, "г": 1}
    assert reviewed_from_tags({"feedback.reviewed_per_class": "not json"}) == {}
    assert used_records(tmp_path / "nowhere") == {}
