"""Stage `ingest`: copy the raw data into DVC-tracked data/raw/, validating as it goes.

Checks every labelled glyph exists and decodes, its label is in the alphabet and the CSV's
bounding box (after undoing the row/column swap) matches the ink; reports unlabelled files and
prints counts per class and case. A missing or malformed source stops with the path at fault.
"""

from __future__ import annotations

import argparse
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from bukva.alphabet import CASED_LETTERS, CLASSES, DIGITS
from pipelines.common import StageError, load_params, log, run_cli, write_json
from pipelines.sources import MNIST_IMAGES, MNIST_LABELS, GlyphRow, read_glyph_table, read_mnist

BBOX_TOLERANCE = 2  # pixels the CSV box may differ from the ink box


def check_glyph(path: Path, row: GlyphRow) -> str | None:
    """Decode one glyph and compare its ink box with the CSV box; return a problem or None.

    Raises:
        StageError: the file is missing or does not decode.
    """
    if not path.is_file():
        raise StageError(f"labelled glyph is missing: {path}")
    try:
        with Image.open(path) as im:
            ink = np.asarray(im.convert("L")) < 128
    except Exception as exc:
        raise StageError(f"glyph does not decode: {path} ({exc})") from None
    if not ink.any():
        return "no ink"
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    actual = (rows[0], rows[-1], cols[0], cols[-1])
    if max(abs(int(a) - b) for a, b in zip(actual, row.bbox, strict=True)) > BBOX_TOLERANCE:
        return f"csv box {row.bbox} != ink box {tuple(int(v) for v in actual)}"
    return None


def ingest(source: Path, dest: Path, feedback: str = "") -> dict:
    """Validate `source` (a mirror with rukopys/ and mnist/) and copy it into `dest`; with
    `feedback` (a folder or s3:// URI of the feedback store), also copy its records into
    `dest`/feedback (see pipelines.feedback).

    Returns:
        The manifest: counts per class and case, unlabelled files, bounding-box problems.
    """
    if not source.is_dir():
        raise StageError(f"data source folder not found: {source}")
    rukopys, mnist = source / "rukopys", source / "mnist"
    rows = read_glyph_table(rukopys / "glyphs.csv")
    images, labels = read_mnist(mnist)

    problems, seen = {}, set()
    for i, row in enumerate(rows, start=1):
        problem = check_glyph(rukopys / row.filename, row)
        if problem:
            problems[row.filename] = problem
        seen.add(Path(row.filename).name)
        if i % 200 == 0:
            log("ingest", f"checked {i}/{len(rows)} glyphs")
    on_disk = {p.name for p in (rukopys / "glyphs").glob("*.png")}
    unlabelled = sorted(on_disk - seen)

    upper_letters = {r.label for r in rows if r.uppercase}
    if not upper_letters <= set(CASED_LETTERS):
        extra = sorted(upper_letters - set(CASED_LETTERS))
        raise StageError(
            f"{rukopys / 'glyphs.csv'}: uppercase samples of {extra}, which "
            f"bukva.alphabet.CASED_LETTERS does not list; update the alphabet module"
        )

    if dest.exists():
        shutil.rmtree(dest)
    (dest / "rukopys" / "glyphs").mkdir(parents=True)
    (dest / "mnist").mkdir(parents=True)
    shutil.copy2(rukopys / "glyphs.csv", dest / "rukopys" / "glyphs.csv")
    for row in rows:
        shutil.copy2(rukopys / row.filename, dest / "rukopys" / row.filename)
    for name in (MNIST_IMAGES, MNIST_LABELS):
        shutil.copy2(mnist / name, dest / "mnist" / name)

    counts = Counter((r.label, "upper" if r.uppercase else "lower") for r in rows)
    digit_counts = Counter(DIGITS[int(d)] for d in labels)
    manifest = {
        "source": str(source),
        "glyphs": len(rows),
        "digits": len(images),
        "unlabelled_glyph_files": unlabelled,
        "bbox_problems": problems,
        "counts": {
            c: (
                {"digit": digit_counts.get(c, 0)}
                if c in DIGITS
                else {k: counts.get((c, k), 0) for k in ("lower", "upper")}
            )
            for c in CLASSES
        },
    }
    if feedback:  # only then, so the default output stays byte-identical
        from bukva.settings import Settings
        from pipelines.feedback import collect

        endpoint = Settings.from_env().aws_endpoint_url
        collected = collect(feedback, dest / "feedback", endpoint)
        if collected["records"] or collected["skipped"]:
            manifest["feedback"] = collected
        else:  # an empty store changes nothing: data/raw stays byte-identical
            shutil.rmtree(dest / "feedback")
            log("ingest", f"feedback store {feedback} holds no records")
    write_json(dest / "manifest.json", manifest)
    return manifest


def print_summary(manifest: dict) -> None:
    """Counts per class and case, then what was skipped or suspicious."""
    log("ingest", f"{manifest['glyphs']} labelled glyphs, {manifest['digits']} MNIST digits")
    line = []
    for char, count in manifest["counts"].items():
        if "digit" in count:
            line.append(f"{char}:{count['digit']}")
        else:
            line.append(f"{char}:{count['lower']}/{count['upper']}")
    log("ingest", "per class (digits: n; letters: lower/upper): " + " ".join(line))
    if manifest["unlabelled_glyph_files"]:
        files = ", ".join(manifest["unlabelled_glyph_files"])
        log(
            "ingest", f"{len(manifest['unlabelled_glyph_files'])} unlabelled files skipped: {files}"
        )
    for name, problem in manifest["bbox_problems"].items():
        log("ingest", f"warning: {name}: {problem}")
    if "feedback" in manifest:
        fb = manifest["feedback"]
        log(
            "ingest",
            f"feedback {fb['store']}: {fb['records']} records, {len(fb['duplicates'])} "
            f"duplicates dropped, {len(fb['skipped'])} broken records skipped",
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", help="data mirror folder (default: params.yaml ingest.source)")
    parser.add_argument("--out", default="data/raw", help="destination folder")
    parser.add_argument(
        "--feedback",
        help="feedback store, folder or s3:// URI (default: params.yaml ingest.feedback; "
        "empty: no feedback)",
    )
    args = parser.parse_args()
    params = load_params("ingest")
    source = Path(args.source or params["source"])
    feedback = args.feedback if args.feedback is not None else params.get("feedback") or ""
    print_summary(ingest(source, Path(args.out), feedback))


if __name__ == "__main__":
    run_cli("ingest", main)
