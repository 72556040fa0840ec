"""`ingest` against the real mirror and against broken copies of it."""

import csv
import gzip
import subprocess
import sys
from pathlib import Path

import pytest

from bukva.alphabet import LETTERS, SCANNED_CAPITALS
from pipelines.common import StageError
from pipelines.ingest import ingest
from pipelines.sources.mnist import MNIST_IMAGES
from pipelines.sources.rukopys import read_glyph_table
from tests.conftest import ROOT
from tests.support.mirror import make_mirror


@pytest.fixture(scope="module")
def real_manifest(raw_data, tmp_path_factory):
    return ingest(raw_data, tmp_path_factory.mktemp("raw") / "raw")


def test_real_mirror_counts(real_manifest):
    assert real_manifest["glyphs"] == 916
    assert real_manifest["digits"] == 8000
    counts = real_manifest["counts"]
    assert sum(c["digit"] for c in counts.values() if "digit" in c) == 8000
    assert sum(c["lower"] + c["upper"] for c in counts.values() if "lower" in c) == 916
    assert {c for c in LETTERS if counts[c]["upper"] > 0} == set(SCANNED_CAPITALS)
    assert all(counts[c]["lower"] > 0 for c in LETTERS)


def test_real_mirror_unlabelled_files_are_reported_not_copied(real_manifest, tmp_path_factory):
    unlabelled = real_manifest["unlabelled_glyph_files"]
    assert len(unlabelled) == 14 and "b-20.png" in unlabelled


def test_bounding_box_quirk_is_undone(raw_data):
    """glyphs.csv's top/bottom are columns and left/right rows: the corrected box matches the
    ink for all but a glyph or two, while the literal reading would match almost none."""
    from pipelines.sources.rukopys import check_glyph

    rows = read_glyph_table(raw_data / "rukopys" / "glyphs.csv")
    sample = rows[::10]
    bad = [r for r in sample if check_glyph(raw_data / "rukopys" / r.filename, r)]
    assert len(bad) <= 2
    literal = [
        r.__class__(r.label, r.uppercase, r.filename, r.left, r.right, r.top, r.bottom)
        for r in sample
    ]
    bad_literal = [r for r in literal if check_glyph(raw_data / "rukopys" / r.filename, r)]
    assert len(bad_literal) > len(sample) // 2


def test_copy_holds_every_labelled_glyph(raw_data, tmp_path):
    mirror = make_mirror(raw_data, tmp_path / "src", letters="аб", digits=50, unlabelled=2)
    manifest = ingest(mirror, tmp_path / "raw")
    copied = sorted(p.name for p in (tmp_path / "raw" / "rukopys" / "glyphs").iterdir())
    assert len(copied) == manifest["glyphs"] == 101
    assert manifest["unlabelled_glyph_files"] == ["stray-0.png", "stray-1.png"]
    assert (tmp_path / "raw" / "mnist" / MNIST_IMAGES).is_file()


def _rewrite_csv(mirror: Path, change) -> None:
    path = mirror / "rukopys" / "glyphs.csv"
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames, list(reader)
    fields, rows = change(fields, rows)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def _break_label(fields, rows):
    rows[3]["label"] = "w"
    return fields, rows


def _drop_column(fields, rows):
    return [f for f in fields if f != "is_uppercase"], rows


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda m: (m / "rukopys" / "glyphs" / "a-0.png").unlink(), "missing: .*a-0.png"),
        (
            lambda m: (m / "rukopys" / "glyphs" / "a-0.png").write_bytes(b"junk"),
            "does not decode: .*a-0.png",
        ),
        (lambda m: _rewrite_csv(m, _break_label), r"glyphs.csv:5: label 'w'"),
        (lambda m: _rewrite_csv(m, _drop_column), "glyphs.csv: missing column.*is_uppercase"),
        (lambda m: (m / "rukopys" / "glyphs.csv").unlink(), "glyph table not found"),
        (
            lambda m: (m / "mnist" / MNIST_IMAGES).write_bytes(b"not gzip"),
            f"{MNIST_IMAGES}: not a readable gzip",
        ),
        (
            lambda m: (m / "mnist" / MNIST_IMAGES).write_bytes(
                gzip.compress(b"\0\0\x08\x03" + b"\0" * 20)
            ),
            f"{MNIST_IMAGES}: header says",
        ),
    ],
)
def test_broken_source_stops_with_the_file_named(raw_data, tmp_path, breakage, message):
    mirror = make_mirror(raw_data, tmp_path / "src", letters="а", digits=20)
    breakage(mirror)
    with pytest.raises(StageError, match=message):
        ingest(mirror, tmp_path / "raw")


def test_cli_reports_a_missing_source_without_a_traceback(tmp_path):
    missing = tmp_path / "nowhere"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines.ingest",
            "--source",
            str(missing),
            "--out",
            str(tmp_path / "raw"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 1
    assert f"data source folder not found: {missing}" in proc.stderr
    assert "Traceback" not in proc.stderr
