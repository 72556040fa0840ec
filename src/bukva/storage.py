"""The feedback store: where user drawings and their confirmed labels become training data.

A feedback record is two objects side by side, under the class of the confirmed character:

    <root>/<class>/<id>.png    the drawing as the model was given it, re-encoded: a 280x280
                               grey PNG (ink on white, no other chunks), `canonical_drawing`
    <root>/<class>/<id>.json   label, case, the model's answer and version, the mode the
                               person drew in, the prompt (collection mode), the PNG's sha256,
                               timestamp; valid against `schemas/feedback-record.schema.json`
    <root>/reviews/<id>.json   a person's decision on the record (approved or rejected),
                               written by the Review page or `python -m pipelines.review`

`<class>` is the class character (lowercase letter or digit, `bukva.alphabet.CLASSES`); the
case lives in the JSON, so no two folders differ only by case. The JSON is written last: a
record whose JSON exists is complete, and an ingest reads only `*.json` and their PNGs.

`<root>` is a local folder or `s3://bucket/prefix` (any S3 endpoint: MinIO, moto, AWS).
Writes never go straight to the store: `FeedbackOutbox` first puts the record in a folder on
local disk, then delivers it. Keys are fixed by the record id, so a delivery retried after a
crash rewrites the same two objects and the store ends up with each record exactly once.

The browser's bytes are decoded once, with limits (`CANVAS_LIMITS`), and never stored as they
came. The JSON is checked against the schema when written (`FeedbackRecord.to_json`) and again
when ingested. The outbox is bounded (`FeedbackOutbox.max_pending`): when full, a new record is
refused with `OutboxFull` and everything already queued stays.

Standard library and Pillow; jsonschema and filelock imported where used (both in the
`frontend` and `pipelines` extras, the users of this module), and boto3 for S3 (imported by
`bukva.s3` only when an S3 store is used); `s3://` URIs are parsed by `bukva.s3.S3Location`,
here as everywhere.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import os
import shutil
import threading
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from PIL import Image

from bukva.alphabet import CLASSES, DEFAULT_MODE, check_mode, is_digit
from bukva.geometry import CANVAS_SIDE  # the app's canvas; every stored drawing has this size
from bukva.preprocess import DecodeLimits, ImageError, decode_image
from bukva.s3 import S3Location, is_s3_uri
from bukva.s3 import client as s3_client

# 3: the PNG is the canonical grey canvas image and the record carries its sha256, its side,
# the model's probability for the confirmed label, the source (canvas or collect) and the
# prompt. 2: records carry `mode`. Version 1 records (no `mode`) were drawn before the app had
# modes, which is mode "anything", and read as such. All three are read.
SCHEMA_VERSION = 3
SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "feedback-record.schema.json"
# The canvas sends a 280x280 PNG of a few kB; anything far larger is not a canvas drawing.
CANVAS_LIMITS = DecodeLimits(max_bytes=512_000, max_pixels=1_048_576, max_side=1024)
DEFAULT_MAX_PENDING = 1000  # records the outbox holds while the store is down
REVIEWS = "reviews"  # folder of review decisions in the store
APPROVED, REJECTED = "approved", "rejected"


class InvalidRecord(ValueError):
    """A record (JSON or drawing) that does not satisfy the schema; the message says where."""


class OutboxFull(RuntimeError):
    """The outbox already holds its limit of records; the new one was not queued."""


@functools.cache
def record_schema() -> dict:
    """The feedback record's JSON schema (one file, versioned by `schema_version`)."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def validate_record(body: Any) -> None:
    """Check a record's JSON form against the schema.

    Raises:
        InvalidRecord: the first problem, with the field's path.
    """
    import jsonschema

    validator = jsonschema.Draft202012Validator(record_schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(body))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "record"
        raise InvalidRecord(f"{where}: {error.message}")


@dataclass(frozen=True)
class CanonicalDrawing:
    """A drawing as it is stored: the canvas image the model was given, re-encoded."""

    png: bytes
    sha256: str


def canonical_drawing(data: bytes, limits: DecodeLimits = CANVAS_LIMITS) -> CanonicalDrawing:
    """Decode untrusted image bytes once, with limits, and re-encode them as the stored form:
    ink flattened onto white, grey (8-bit), CANVAS_SIDE square (a differently sized image is
    fitted in, aspect kept), a PNG with no chunks beyond the image.

    Raises:
        ImageError: empty, too large (bytes or pixels), not PNG/JPEG, or corrupt.
    """
    return canonical_image(decode_image(data, limits))


def canonical_image(image: Image.Image) -> CanonicalDrawing:
    """`canonical_drawing` for an image already decoded (with `CANVAS_LIMITS`): the app
    decodes the canvas's bytes once, for the model's preview and for the stored form."""
    image = image.convert("RGBA")
    flat = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image).convert("L")
    if flat.size != (CANVAS_SIDE, CANVAS_SIDE):
        scale = CANVAS_SIDE / max(flat.size)
        size = (max(1, round(flat.width * scale)), max(1, round(flat.height * scale)))
        fitted = Image.new("L", (CANVAS_SIDE, CANVAS_SIDE), 255)
        resized = flat.resize(size, Image.Resampling.LANCZOS)
        fitted.paste(resized, ((CANVAS_SIDE - size[0]) // 2, (CANVAS_SIDE - size[1]) // 2))
        flat = fitted
    out = io.BytesIO()
    flat.save(out, format="PNG", optimize=True)
    png = out.getvalue()
    return CanonicalDrawing(png, hashlib.sha256(png).hexdigest())


def check_canonical(png: bytes, sha256: str) -> None:
    """Check stored bytes against their record: the digest, then the canonical form.

    Raises:
        InvalidRecord: the bytes are not what the record claims.
    """
    digest = hashlib.sha256(png).hexdigest()
    if digest != sha256:
        raise InvalidRecord(f"image sha256 is {digest[:12]}…, the record says {sha256[:12]}…")
    try:
        image = decode_image(png, CANVAS_LIMITS)
    except ImageError as exc:
        raise InvalidRecord(f"image: {exc}") from None
    if image.format != "PNG" or image.mode != "L" or image.size != (CANVAS_SIDE, CANVAS_SIDE):
        raise InvalidRecord(
            f"image is {image.format} {image.mode} {image.width}x{image.height}; a stored "
            f"drawing is a grey {CANVAS_SIDE}x{CANVAS_SIDE} PNG"
        )


def label_probability(
    label: str, top_labels: list[str], top_probabilities: list[float]
) -> float | None:
    """The model's probability for `label` from its top-k answer (None: not among them)."""
    for char, prob in zip(top_labels, top_probabilities, strict=False):
        if char == label:
            return float(prob)
    return None


class StoreUnavailable(RuntimeError):
    """The feedback store cannot be reached or refused a write; the message says which."""


class ObjectStore(Protocol):
    """The few operations feedback needs; keys are relative to the store's root."""

    location: str

    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    def get(self, key: str) -> bytes: ...

    def list_keys(self) -> Iterator[str]: ...


class LocalStore:
    """A folder on disk; each write is atomic (temporary file, then rename)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.location = str(self.root)

    def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self.root / key
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        except OSError as exc:
            raise StoreUnavailable(f"cannot write {path}: {exc.strerror or exc}") from None

    def get(self, key: str) -> bytes:
        return (self.root / key).read_bytes()

    def list_keys(self) -> Iterator[str]:
        if not self.root.is_dir():
            return
        for path in sorted(self.root.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                yield path.relative_to(self.root).as_posix()


class S3Store:
    """An S3 bucket and key prefix, through boto3 (MinIO in the cluster, any S3 endpoint).

    The client is `bukva.s3.client`: short timeouts and one retry, so a store that is down
    does not freeze the page; the outbox retries later instead.
    """

    def __init__(self, location: S3Location, endpoint_url: str = ""):
        self.bucket = location.bucket
        self.prefix = location.prefix
        self.endpoint_url = endpoint_url
        self.location = str(location)
        self._where = location
        self._client: Any = None

    def _s3(self) -> Any:
        if self._client is None:
            self._client = s3_client(endpoint=self.endpoint_url or None)
        return self._client

    def _key(self, key: str) -> str:
        return self._where.key(key)

    def put(self, key: str, data: bytes, content_type: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._s3().put_object(
                Bucket=self.bucket, Key=self._key(key), Body=data, ContentType=content_type
            )
        except (BotoCoreError, ClientError) as exc:
            raise StoreUnavailable(f"cannot write {self.location}/{key}: {exc}") from None

    def get(self, key: str) -> bytes:
        response = self._s3().get_object(Bucket=self.bucket, Key=self._key(key))
        return response["Body"].read()

    def list_keys(self) -> Iterator[str]:
        from botocore.exceptions import BotoCoreError, ClientError

        start = f"{self.prefix}/" if self.prefix else ""
        try:
            pages = self._s3().get_paginator("list_objects_v2")
            for page in pages.paginate(Bucket=self.bucket, Prefix=start):
                for item in page.get("Contents", []):
                    yield item["Key"][len(start) :]
        except (BotoCoreError, ClientError) as exc:
            raise StoreUnavailable(f"cannot list {self.location}: {exc}") from None


def open_store(uri: str, endpoint_url: str = "", base: str | Path = ".") -> ObjectStore:
    """The store at `uri`: `s3://bucket/prefix`, or a folder (relative paths from `base`)."""
    if is_s3_uri(uri):
        try:
            location = S3Location.parse(uri)
        except ValueError as exc:
            raise ValueError(f"feedback URI {uri!r}: {exc} (expected s3://bucket/prefix)") from None
        return S3Store(location, endpoint_url)
    if "://" in uri:
        raise ValueError(f"feedback URI {uri!r}: only s3:// URIs and local folders are supported")
    path = Path(uri)
    return LocalStore(path if path.is_absolute() else Path(base) / path)


@dataclass(frozen=True)
class FeedbackRecord:
    """One confirmed drawing; its JSON form is what the store holds next to the PNG."""

    label: str  # the class character (lowercase letter or digit)
    uppercase: bool | None  # the case the person chose; None for digits
    predicted: str  # the model's top-1 class ("" when it gave no answer)
    predicted_uppercase: bool | None  # the model's case answer, None where it has none
    probability: float  # the model's probability for `predicted`
    model_version: str
    top_labels: list[str] = field(default_factory=list)
    top_probabilities: list[float] = field(default_factory=list)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created_at: str = field(
        default_factory=lambda: datetime.now(UTC).isoformat(timespec="milliseconds")
    )
    source: str = "canvas"  # "canvas" (the drawing page) or "collect" (collection mode)
    mode: str = DEFAULT_MODE  # what the person said they drew (`bukva.alphabet.MODES`)
    image_sha256: str = ""  # sha256 of the stored PNG (`canonical_drawing`); required from v3
    image_side: int = CANVAS_SIDE
    label_probability: float | None = None  # the model's probability for `label`, if in top-k
    prompt: dict[str, Any] | None = None  # collection mode: {label, uppercase, text} asked for
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.label not in CLASSES:
            raise ValueError(f"label {self.label!r} is not one of the bukva classes")
        if is_digit(self.label) and self.uppercase is not None:
            raise ValueError(f"digit {self.label!r} has no case; uppercase must be None")
        check_mode(self.mode)
        if self.schema_version >= 3 and len(self.image_sha256) != 64:
            raise ValueError("a version 3 record needs the sha256 of its canonical drawing")

    @property
    def text(self) -> str:
        """The character as drawn, with its case."""
        return self.label.upper() if self.uppercase else self.label

    @property
    def agrees(self) -> bool:
        """Whether the person confirmed the model's character (case aside)."""
        return self.label == self.predicted

    @property
    def image_key(self) -> str:
        return f"{self.label}/{self.id}.png"

    @property
    def record_key(self) -> str:
        return f"{self.label}/{self.id}.json"

    def to_body(self) -> dict[str, Any]:
        """The JSON form, checked against the schema (raises InvalidRecord)."""
        body = asdict(self) | {"text": self.text, "agrees": self.agrees, "image": self.image_key}
        if self.schema_version < 3:  # an old record keeps the fields its version had
            for name in ("image_sha256", "image_side", "label_probability", "prompt"):
                body.pop(name)
        validate_record(body)
        return body

    def to_json(self) -> bytes:
        return json.dumps(self.to_body(), ensure_ascii=False, indent=2).encode("utf-8")

    @classmethod
    def from_body(cls, body: Any) -> FeedbackRecord:
        """A record from its JSON form, validated (raises InvalidRecord, or ValueError)."""
        validate_record(body)
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in body.items() if k in names})

    @classmethod
    def from_json(cls, data: bytes) -> FeedbackRecord:
        try:
            body = json.loads(data)
        except ValueError as exc:
            raise InvalidRecord(f"not JSON ({exc})") from None
        return cls.from_body(body)


@dataclass(frozen=True)
class Delivery:
    """What happened to a submitted record: stored now, or kept in the outbox for later."""

    record_id: str
    stored: bool
    pending: int  # records still waiting in the outbox
    error: str = ""


class FeedbackOutbox:
    """A queue on local disk in front of the store: nothing is lost while the store is down.

    `submit` writes the record into `<directory>/pending/<time>-<id>/` (atomically, by
    renaming a finished folder) and then tries to deliver everything pending, oldest first.
    A record leaves the outbox only after both objects are in the store. One flush at a time
    per outbox folder (a file lock, `filelock`: Linux, macOS and Windows alike), so several app
    sessions or processes never race.

    Bounded: at `max_pending` queued records a new one is refused (`OutboxFull`); the queued
    ones, the oldest, are kept and delivered first when the store is back.
    """

    def __init__(
        self, store: ObjectStore, directory: str | Path, max_pending: int = DEFAULT_MAX_PENDING
    ):
        if max_pending < 1:
            raise ValueError(f"max_pending must be at least 1, not {max_pending}")
        self.store = store
        self.directory = Path(directory)
        self.max_pending = max_pending

    @property
    def _pending_dir(self) -> Path:
        return self.directory / "pending"

    def _entries(self) -> list[Path]:
        if not self._pending_dir.is_dir():
            return []
        return sorted(p for p in self._pending_dir.iterdir() if p.is_dir())

    def pending(self) -> int:
        """How many records wait for delivery."""
        return len(self._entries())

    def full(self) -> bool:
        return self.pending() >= self.max_pending

    def enqueue(self, record: FeedbackRecord, png: bytes) -> None:
        """Keep the record on local disk.

        Raises:
            InvalidRecord: the record or its drawing does not satisfy the schema.
            OutboxFull: `max_pending` records already wait; nothing was written.
            OSError: the local disk failed.
        """
        body = record.to_json()  # validates
        if record.schema_version >= 3:
            check_canonical(png, record.image_sha256)
        from filelock import FileLock

        self.directory.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.directory / ".enqueue.lock"), timeout=10):
            waiting = self.pending()
            if waiting >= self.max_pending:
                raise OutboxFull(
                    f"the outbox holds {waiting} drawings waiting for the feedback store "
                    f"{self.store.location} (its limit); this one was not saved, the queued "
                    "ones are kept"
                )
            staging = self.directory / "staging" / record.id
            staging.mkdir(parents=True, exist_ok=True)
            (staging / "image.png").write_bytes(png)
            (staging / "record.json").write_bytes(body)
            self._pending_dir.mkdir(parents=True, exist_ok=True)
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
            os.replace(staging, self._pending_dir / f"{stamp}-{record.id}")

    def submit(self, record: FeedbackRecord, png: bytes) -> Delivery:
        """Queue the record, then try to deliver the queue; says whether this one is stored.

        Raises:
            InvalidRecord, OutboxFull, OSError: as `enqueue` (a full outbox is flushed first:
                when the store is back, there is room again).
        """
        if self.full():
            with contextlib.suppress(StoreUnavailable):  # still down: enqueue says it is full
                self.flush()
        self.enqueue(record, png)
        error = ""
        try:
            self.flush()
        except StoreUnavailable as exc:
            error = str(exc)
        waiting = {p.name.split("-", 1)[1] for p in self._entries()}
        return Delivery(record.id, record.id not in waiting, len(waiting), error)

    def flush(self) -> int:
        """Deliver pending records oldest first; returns how many were delivered.

        Raises:
            StoreUnavailable: at the first record the store refuses (the rest stay queued).
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        from filelock import FileLock, Timeout

        lock = FileLock(str(self.directory / ".lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return 0  # another session is flushing this outbox right now
        try:
            delivered = 0
            for entry in self._entries():
                self._deliver(entry)
                delivered += 1
            return delivered
        finally:
            lock.release()

    def _deliver(self, entry: Path) -> None:
        body = (entry / "record.json").read_bytes()
        record = FeedbackRecord.from_json(body)  # validated again: the folder is local disk
        self.store.put(record.image_key, (entry / "image.png").read_bytes(), "image/png")
        self.store.put(record.record_key, body, "application/json")  # last: marks it complete
        shutil.rmtree(entry)

    def retry_forever(self, stop: threading.Event, interval_s: float = 10.0) -> None:
        """Flush every `interval_s` until `stop` is set (run it in a daemon thread)."""
        while not stop.wait(interval_s):
            if self.pending():
                try:
                    self.flush()
                except (StoreUnavailable, OSError):
                    continue  # still down: try again next round


def feedback_counts(store: ObjectStore) -> Counter[str]:
    """How many complete feedback records the store holds, per class character, leaving out
    the ones a person rejected on review (they never train; a drawing not reviewed yet counts).
    """
    keys = list(store.list_keys())  # one listing (a bucket's is paged requests) for both
    decisions = read_reviews(store, keys)
    rejected = {rid for rid, body in decisions.items() if body["status"] == REJECTED}
    counts: Counter[str] = Counter()
    for key in keys:
        label, _, name = key.partition("/")
        complete = name.endswith(".json") and "/" not in name and label in CLASSES
        if complete and name[: -len(".json")] not in rejected:
            counts[label] += 1
    return counts


@dataclass(frozen=True)
class StoredRecord:
    """A complete record in the store, its key and the review decision on it ("" = none)."""

    key: str
    record: FeedbackRecord
    review: str = ""

    @property
    def unlikely(self) -> float:
        """How sure the model was of the record's label when it was saved: the review shows
        the lowest first (a label outside the model's top-k, or with no answer, counts as 0)."""
        return self.record.label_probability or 0.0


def review_key(record_id: str) -> str:
    return f"{REVIEWS}/{record_id}.json"


def read_reviews(
    store: ObjectStore, keys: Iterable[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Every review decision in the store, by record id (unreadable ones are ignored: the
    record then simply counts as not reviewed). `keys`: the store's keys when the caller has
    listed them already."""
    decisions: dict[str, dict[str, Any]] = {}
    for key in store.list_keys() if keys is None else keys:
        folder, _, name = key.partition("/")
        if folder != REVIEWS or not name.endswith(".json") or "/" in name:
            continue
        try:
            body = json.loads(store.get(key))
        except (ValueError, OSError):
            continue
        if isinstance(body, dict) and body.get("status") in (APPROVED, REJECTED):
            decisions[name[: -len(".json")]] = body
    return decisions


def stored_records(store: ObjectStore) -> tuple[list[StoredRecord], dict[str, str]]:
    """The store's complete records with their review decision, lowest `unlikely` first, and
    the keys of the records that could not be read, with the reason."""
    keys = sorted(store.list_keys())
    decisions = read_reviews(store, keys)
    found, broken = [], {}
    for key in keys:
        label, _, name = key.partition("/")
        if label not in CLASSES or not name.endswith(".json") or "/" in name:
            continue
        try:
            record = FeedbackRecord.from_json(store.get(key))
        except Exception as exc:  # a broken record is reported, never fatal
            broken[key] = f"{type(exc).__name__}: {exc}"
            continue
        status = str(decisions.get(record.id, {}).get("status", ""))
        found.append(StoredRecord(key, record, status))
    found.sort(key=lambda r: (r.unlikely, r.record.created_at, r.record.id))
    return found, broken


def set_review(store: ObjectStore, record: FeedbackRecord, status: str, reviewer: str = "") -> None:
    """Record a person's decision on `record` (a later decision replaces an earlier one).

    Raises:
        ValueError: `status` is not approved or rejected.
        StoreUnavailable: the store refused the write.
    """
    if status not in (APPROVED, REJECTED):
        raise ValueError(f"review status must be {APPROVED} or {REJECTED}, not {status!r}")
    body = {
        "id": record.id,
        "status": status,
        "label": record.label,
        "uppercase": record.uppercase,
        "image_sha256": record.image_sha256,
        "reviewer": reviewer,
        "reviewed_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
    }
    data = json.dumps(body, ensure_ascii=False, indent=2).encode("utf-8")
    store.put(review_key(record.id), data, "application/json")


def reviewed_counts(store: ObjectStore) -> Counter[str]:
    """Approved records per class character."""
    records, _ = stored_records(store)
    return Counter(r.record.label for r in records if r.review == APPROVED)


# Provenance: what a model learned from. Ingest lists the feedback a training set used (id ->
# sha256, label, uppercase, review; `pipelines.data.feedback_used`); its per-class
# count of reviewed drawings travels with the model as this registry tag (JSON), which the Model
# page reads from the champion's version tags.
PROVENANCE_TAG = "feedback.reviewed_per_class"


def reviewed_per_class(used: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """How many reviewed (approved) drawings per class a training set took, classes in order."""
    counts = Counter(row.get("label") for row in used.values() if row.get("review") == APPROVED)
    return {c: counts[c] for c in CLASSES if counts[c]}


def provenance_tag(used: Mapping[str, Mapping[str, Any]]) -> str:
    """`reviewed_per_class` as the compact JSON of the PROVENANCE_TAG tag."""
    return json.dumps(reviewed_per_class(used), ensure_ascii=False, separators=(",", ":"))


def reviewed_from_tags(tags: Mapping[str, Any]) -> dict[str, int]:
    """The per-class reviewed counts of a model version's tags (empty when absent or bad)."""
    try:
        value = json.loads(str(tags.get(PROVENANCE_TAG) or "{}"))
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    return {c: int(n) for c, n in value.items() if c in CLASSES and isinstance(n, int) and n > 0}
