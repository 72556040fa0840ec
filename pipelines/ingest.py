"""Stage `ingest`: copy the raw data into DVC-tracked data/raw/, validating as it goes.

Checks every labelled glyph exists and decodes, its label is in the alphabet and the CSV's
bounding box (after undoing the row/column swap) matches the ink; reports unlabelled files and
prints counts per class and case. Copies the fonts of the block-letter source
(`pipelines.sources.fonts`) after checking each covers every letter and digit. A missing or
malformed source stops with the path at fault. The raw data comes from a local mirror or,
without one, from the public upstream (`pipelines.upstream`: params.yaml `ingest.source`).
"""

from __future__ import annotations

import argparse
import shutil
from collections import Counter
from pathlib import Path

from bukva.alphabet import CLASSES, DIGITS
from pipelines import upstream
from pipelines.common import StageError, load_params, log, run_cli, write_json
from pipelines.sources import feedback as feedback_source
from pipelines.sources import fonts, mnist, rukopys


def ingest(
    source: Path,
    dest: Path,
    feedback: str = "",
    font_dir: Path = fonts.FONT_DIR,
    reviewed_only: bool = True,
) -> dict:
    """Validate `source` (a mirror with rukopys/ and mnist/) and copy it into `dest`, and the
    block-letter fonts from `font_dir` (where Debian installs them) into `dest`/fonts; with
    `feedback` (a folder or s3:// URI of the feedback store), also copy its records into
    `dest`/feedback (see pipelines.sources.feedback): never rejected ones, and with
    `reviewed_only` only approved ones.

    Returns:
        The manifest: counts per class and case, unlabelled files, bounding-box problems.
    """
    if not source.is_dir():
        raise StageError(f"data source folder not found: {source}")
    glyphs = rukopys.check(source / rukopys.NAME)
    images, labels = mnist.read_mnist(source / mnist.NAME)
    font_rows = fonts.check(font_dir)

    if dest.exists():
        shutil.rmtree(dest)
    rukopys.copy(source / rukopys.NAME, dest / rukopys.NAME, glyphs.rows)
    mnist.copy(source / mnist.NAME, dest / mnist.NAME)
    fonts.copy(font_dir, dest / fonts.NAME, font_rows)

    counts = glyphs.counts()
    digit_counts = Counter(DIGITS[int(d)] for d in labels)
    manifest = {
        "glyphs": len(glyphs.rows),
        "digits": len(images),
        "fonts": {role: sum(r["role"] == role for r in font_rows) for role in ("train", "eval")},
        "unlabelled_glyph_files": glyphs.unlabelled,
        "bbox_problems": glyphs.problems,
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

        endpoint = Settings.from_env().aws_endpoint_url
        collected = feedback_source.collect(
            feedback, dest / feedback_source.NAME, endpoint, reviewed_only=reviewed_only
        )
        if collected["records"] or collected["skipped"]:
            manifest["feedback"] = collected
        else:  # an empty store changes nothing: data/raw stays byte-identical
            shutil.rmtree(dest / feedback_source.NAME)
            log("ingest", f"feedback store {feedback} holds no records")
    write_json(dest / "manifest.json", manifest)
    return manifest


def print_summary(manifest: dict) -> None:
    """Counts per class and case, then what was skipped or suspicious."""
    log(
        "ingest",
        f"{manifest['glyphs']} labelled glyphs, {manifest['digits']} MNIST digits, fonts "
        f"{manifest['fonts']['train']} for training + {manifest['fonts']['eval']} held out",
    )
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
        reasons = Counter(reason.split(":")[0] for reason in fb["skipped"].values())
        log(
            "ingest",
            f"feedback {fb['store']}: {fb['records']} records, {len(fb['duplicates'])} "
            f"duplicates dropped, skipped: {dict(reasons) or 'none'}",
        )
        for key, reason in fb["skipped"].items():
            if reason.startswith("invalid"):
                log("ingest", f"warning: feedback {key}: {reason}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--source",
        help="a data mirror folder, `auto` or `download` (default: params.yaml ingest.source; "
        "see pipelines/upstream.py)",
    )
    parser.add_argument("--out", default="data/raw", help="destination folder")
    parser.add_argument(
        "--feedback",
        help="feedback store, folder or s3:// URI (default: params.yaml ingest.feedback; "
        "empty: no feedback)",
    )
    parser.add_argument(
        "--all-feedback",
        action="store_true",
        help="take feedback nobody reviewed yet too (rejected records never; default: "
        "params.yaml ingest.feedback_reviewed_only)",
    )
    args = parser.parse_args()
    params = load_params("ingest")
    source = upstream.resolve(args.source if args.source is not None else params.get("source", ""))
    feedback = args.feedback if args.feedback is not None else params.get("feedback") or ""
    font_dir = Path(params.get("fonts") or fonts.FONT_DIR)
    reviewed_only = bool(params.get("feedback_reviewed_only", True))
    if args.all_feedback:
        reviewed_only = False
    print_summary(ingest(source, Path(args.out), feedback, font_dir, reviewed_only))


if __name__ == "__main__":
    run_cli("ingest", main)
