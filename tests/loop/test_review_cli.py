"""`python -m pipelines.review`: review feedback headless, then ingest takes what was approved."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bukva.storage import LocalStore
from pipelines.sources.feedback import collect
from tests.loop.test_feedback_source import drawing, put, rec

ROOT = Path(__file__).resolve().parents[2]


def review(store: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipelines.review", "--store", str(store), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_list_reject_approve_all_then_the_rejected_record_does_not_train(tmp_path):
    store = LocalStore(tmp_path / "store")
    sure = rec("а", False, "а", 0.95, "sure", drawing(0), label_probability=0.95)
    doubtful = rec("б", False, "в", 0.9, "doubtful", drawing(20), label_probability=0.03)
    put(store, sure, drawing(0))
    put(store, doubtful, drawing(20))

    listed = review(tmp_path / "store", "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].startswith("doubtful ") and lines[1].startswith("sure ")  # doubtful first
    assert "2 records, 2 not reviewed" in lines[-1]

    assert review(tmp_path / "store", "reject", "doubtful").returncode == 0
    approved = review(tmp_path / "store", "approve-all")
    assert approved.returncode == 0 and "approved: 1 record(s)" in approved.stdout
    assert review(tmp_path / "store", "list").stdout.splitlines() == [
        f"{tmp_path / 'store'}: 2 records, 0 not reviewed, 0 unreadable"
    ]

    dest = tmp_path / "raw" / "feedback"
    manifest = collect(str(tmp_path / "store"), dest)
    assert sorted(p.stem for p in dest.glob("*.json")) == ["sure"]
    assert manifest["skipped"] == {"б/doubtful.json": "rejected in review"}


def test_unknown_id_is_a_one_line_error(tmp_path):
    (tmp_path / "store").mkdir()
    result = review(tmp_path / "store", "reject", "nope")
    assert result.returncode == 1
    assert result.stderr.strip() == f"review: error: no record with id nope in {tmp_path / 'store'}"
    assert not (tmp_path / "store" / "reviews").exists()
