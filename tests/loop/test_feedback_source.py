"""The feedback store as a data source: collect, prepare, split (fast, no pipeline run)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from bukva.storage import FeedbackRecord, LocalStore
from pipelines.sources.feedback import collect, prepare
from pipelines.split import assign_splits, assign_with_feedback


def drawing(offset: int) -> bytes:
    """A 280x280 RGBA canvas with one black stroke (transparent background, as the app saves)."""
    rgba = np.zeros((280, 280, 4), dtype=np.uint8)
    rgba[60:220, 100 + offset : 130 + offset] = (0, 0, 0, 255)
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, format="PNG")
    return buf.getvalue()


def put(store: LocalStore, record: FeedbackRecord, png: bytes | None) -> None:
    if png is not None:
        store.put(record.image_key, png, "image/png")
    store.put(record.record_key, record.to_json(), "application/json")


@pytest.fixture
def store_dir(tmp_path):
    store = LocalStore(tmp_path / "store")
    put(store, FeedbackRecord("г", True, "т", None, 0.4, "3", id="a1"), drawing(0))
    put(store, FeedbackRecord("7", None, "7", None, 0.9, "3", id="b2"), drawing(40))
    put(store, FeedbackRecord("г", False, "г", None, 0.8, "3", id="c3"), drawing(0))  # same PNG
    put(store, FeedbackRecord("а", False, "а", None, 0.8, "3", id="d4"), None)  # no PNG
    return tmp_path / "store"


def test_collect_keeps_distinct_complete_records_with_provenance(store_dir, tmp_path):
    dest = tmp_path / "raw" / "feedback"
    manifest = collect(str(store_dir), dest)
    assert manifest["records"] == 2
    assert manifest["duplicates"] == {"г/c3.json": "г/a1.json"}
    assert list(manifest["skipped"]) == ["а/d4.json"]
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
    put(store, FeedbackRecord("3", None, "з", None, 0.6, "3", id="new", mode="digits"), drawing(0))
    old = json.loads(FeedbackRecord("з", False, "з", False, 0.7, "2", id="old").to_json())
    del old["mode"]
    old["schema_version"] = 1
    store.put("з/old.png", drawing(40), "image/png")
    store.put("з/old.json", json.dumps(old).encode(), "application/json")
    dest = tmp_path / "raw" / "feedback"
    manifest = collect(str(tmp_path / "store"), dest)
    assert manifest["records"] == 2 and manifest["skipped"] == {}
    assert json.loads((dest / "new.json").read_text(encoding="utf-8"))["mode"] == "digits"
    assert "mode" not in json.loads((dest / "old.json").read_text(encoding="utf-8"))
    records, images, _ = prepare(tmp_path / "raw", {})
    assert sorted(r.label for r in records) == ["3", "з"] and len(images) == 2
