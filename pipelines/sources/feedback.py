"""Source `feedback`: labelled user drawings from the feedback store, for `ingest` and `prepare`.

`collect` copies every complete record (a JSON and the PNG it names) from the store
(`s3://bucket/prefix` or a folder, `bukva.storage.open_store`) into data/raw/feedback/ as
`<id>.png` + `<id>.json`, keeping the record as it was stored plus its provenance
(`provenance.store`, `provenance.key`, `provenance.png_sha256`). Identical drawings (the same
PNG bytes, e.g. one drawing confirmed twice) are kept once: the first by (created_at, id).
Broken records are skipped and reported, never fatal: one bad upload must not stop a retrain.

`prepare` turns data/raw/feedback/ into prepared rows with source "feedback" (none when the
folder is absent: feedback is optional, `ingest.feedback` in params.yaml).
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from bukva.alphabet import has_case
from bukva.preprocess import ImageError, normalize_with_geometry
from bukva.storage import FeedbackRecord, open_store
from pipelines.common import StageError, log
from pipelines.data import Prepared, make_record

NAME = "feedback"


def collect(uri: str, dest: Path, endpoint_url: str = "", base: Path = Path(".")) -> dict:
    """Copy the store's complete, valid, distinct records into `dest` (replacing it).

    Returns:
        A manifest: store, records kept, duplicates and skipped keys with the reason.
    Raises:
        StageError: the store cannot be listed at all.
    """
    store = open_store(uri, endpoint_url, base=base)
    try:
        keys = sorted(k for k in store.list_keys() if k.endswith(".json"))
    except Exception as exc:  # S3 and disk raise different things
        raise StageError(f"feedback store {uri} cannot be listed: {exc}") from None
    found, skipped = [], {}
    for key in keys:
        try:
            body = json.loads(store.get(key))
            record = FeedbackRecord.from_json(json.dumps(body).encode())
            png = store.get(body.get("image") or record.image_key)
            with Image.open(io.BytesIO(png)) as im:
                im.load()
        except Exception as exc:  # any broken record is skipped, not fatal
            skipped[key] = f"{type(exc).__name__}: {exc}"
            continue
        found.append((record.created_at, record.id, key, body, png))

    if dest.exists():
        for old in dest.iterdir():
            old.unlink()
    dest.mkdir(parents=True, exist_ok=True)
    seen: dict[str, str] = {}
    duplicates = {}
    for _, record_id, key, body, png in sorted(found):
        digest = hashlib.sha256(png).hexdigest()
        if digest in seen:
            duplicates[key] = seen[digest]
            continue
        seen[digest] = key
        body["provenance"] = {"store": uri, "key": key, "png_sha256": digest}
        (dest / f"{record_id}.png").write_bytes(png)
        text = json.dumps(body, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
        (dest / f"{record_id}.json").write_text(text, encoding="utf-8")
    return {"store": uri, "records": len(seen), "duplicates": duplicates, "skipped": skipped}


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
        with Image.open(path) as im:
            rgba = im.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            pixels = np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
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
