"""Source `feedback`: labelled user drawings from the feedback store, for `ingest` and `prepare`.

`collect` copies the store's complete records (a JSON and the PNG it names, under a class
folder; `bukva.storage`) from `s3://bucket/prefix` or a folder into data/raw/feedback/ as
`<id>.png` + `<id>.json`. Every record is checked again as it comes in: the JSON against the
record schema (`bukva.storage.validate_record`; versions 1 to 3), the PNG decoded with the
canvas limits and, from version 3, against the record's sha256 and the canonical form. Each
drawing is written in the canonical form (`bukva.storage.canonical_drawing`: a version 1-2
record's RGBA PNG is re-encoded), with its provenance (`provenance.store`, `.key`,
`.png_sha256`, `.review`).

Review (`pipelines/review.py`, the app's Review page): a rejected record never trains; with
`reviewed_only` (params.yaml `ingest.feedback_reviewed_only`, true by default) a record nobody
approved yet does not either. Identical drawings (the same canonical PNG, e.g. one drawing
confirmed twice) are kept once: the first by (created_at, id). Skipped records are listed in
the manifest with the reason, never fatal: one bad upload must not stop a retrain.

The manifest's `used` lists the records the training set takes, by id with their sha256, label
and case: what `train` logs as its feedback provenance (`pipelines.data.feedback_used` reads
it back).

`prepare` turns data/raw/feedback/ into prepared rows with source "feedback" (none when the
folder is absent: feedback is optional, `ingest.feedback` in params.yaml).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from PIL import Image

from bukva.alphabet import CLASSES, has_case
from bukva.preprocess import ImageError, normalize_with_geometry
from bukva.storage import (
    APPROVED,
    REJECTED,
    FeedbackRecord,
    canonical_drawing,
    check_canonical,
    open_store,
    read_reviews,
)
from pipelines.common import StageError, log
from pipelines.data import FEEDBACK_SOURCE, RAW_MANIFEST, Prepared, make_record

NAME = FEEDBACK_SOURCE
MANIFEST = RAW_MANIFEST  # data/raw/manifest.json, written by ingest


def collect(
    uri: str,
    dest: Path,
    endpoint_url: str = "",
    base: Path = Path("."),
    reviewed_only: bool = True,
) -> dict:
    """Copy the store's complete, valid, distinct records into `dest` (replacing it): all but
    the rejected ones, or with `reviewed_only` only the approved ones.

    Returns:
        A manifest: store, records kept, `used` (id -> sha256, label, uppercase), duplicates,
        and skipped keys with the reason (invalid, rejected, not reviewed).
    Raises:
        StageError: the store cannot be listed at all.
    """
    store = open_store(uri, endpoint_url, base=base)
    try:
        keys = sorted(
            k
            for k in store.list_keys()
            if k.endswith(".json") and k.partition("/")[0] in CLASSES and k.count("/") == 1
        )
        decisions = read_reviews(store)
    except Exception as exc:  # S3 and disk raise different things
        raise StageError(f"feedback store {uri} cannot be listed: {exc}") from None
    found, skipped = [], {}
    for key in keys:
        try:
            body = json.loads(store.get(key))
            record = FeedbackRecord.from_body(body)
            if f"{record.label}/{record.id}.json" != key:
                raise ValueError(f"record {record.id} ({record.label}) is stored under {key}")
            png = store.get(record.image_key)
            if record.schema_version >= 3:
                check_canonical(png, record.image_sha256)
            else:
                png = canonical_drawing(png).png
        except Exception as exc:  # any broken record is skipped, not fatal
            skipped[key] = f"invalid: {type(exc).__name__}: {exc}"
            continue
        review = str(decisions.get(record.id, {}).get("status", ""))
        if review == REJECTED:
            skipped[key] = "rejected in review"
            continue
        if reviewed_only and review != APPROVED:
            skipped[key] = "not reviewed (ingest.feedback_reviewed_only)"
            continue
        found.append((record.created_at, record.id, key, body, png, review))

    if dest.exists():
        for old in dest.iterdir():
            old.unlink()
    dest.mkdir(parents=True, exist_ok=True)
    seen: dict[str, str] = {}
    duplicates = {}
    used = {}
    for _, record_id, key, body, png, review in sorted(found):
        digest = hashlib.sha256(png).hexdigest()
        if digest in seen:
            duplicates[key] = seen[digest]
            continue
        seen[digest] = key
        body["provenance"] = {"store": uri, "key": key, "png_sha256": digest, "review": review}
        used[record_id] = {
            "sha256": digest,
            "label": body["label"],
            "uppercase": body.get("uppercase"),
            "review": review,
        }
        (dest / f"{record_id}.png").write_bytes(png)
        text = json.dumps(body, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
        (dest / f"{record_id}.json").write_text(text, encoding="utf-8")
    return {
        "store": uri,
        "reviewed_only": reviewed_only,
        "records": len(seen),
        "used": used,
        "duplicates": duplicates,
        "skipped": skipped,
    }


def prepare(raw: Path, params: dict) -> Prepared:
    """Normalize every drawing in raw/feedback/ (none when the folder is absent).

    `params` (the `prepare` section) has no knob for this source.

    Returns:
        (records with source "feedback", images, geometry in the canvas), ordered by id.
    """
    folder = raw / NAME
    records, images, geometry = [], [], []
    for meta in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        body = json.loads(meta.read_text(encoding="utf-8"))
        path = meta.with_suffix(".png")
        with Image.open(path) as im:  # canonical: grey ink on white (collect wrote it)
            pixels = np.asarray(im.convert("RGB"))
        try:
            x, frame = normalize_with_geometry(pixels)
        except ImageError as exc:
            log("prepare", f"warning: {path}: {exc}; skipped")
            continue
        label = body["label"]
        upper = int(bool(body.get("uppercase"))) if has_case(label) else -1
        if has_case(label) and body.get("uppercase") is None:
            upper = -1
        records.append(make_record(NAME, meta.stem, path, label, upper, pixels, x))
        images.append(x)
        geometry.append(frame.vector())
    if folder.is_dir():
        log("prepare", f"{NAME}: {len(records)} drawings normalized")
    return records, images, geometry
