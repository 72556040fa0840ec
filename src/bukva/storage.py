"""The feedback store: where user drawings and their confirmed labels become training data.

A feedback record is two objects side by side, under the class of the confirmed character:

    <root>/<class>/<id>.png    the drawing as the canvas produced it (RGBA PNG)
    <root>/<class>/<id>.json   label, case, the model's answer and version, the mode the
                               person drew in, timestamp

`<class>` is the class character (lowercase letter or digit, `bukva.alphabet.CLASSES`); the
case lives in the JSON, so no two folders differ only by case. The JSON is written last: a
record whose JSON exists is complete, and an ingest reads only `*.json` and their PNGs.

`<root>` is a local folder or `s3://bucket/prefix` (any S3 endpoint: MinIO, moto, AWS).
Writes never go straight to the store: `FeedbackOutbox` first puts the record in a folder on
local disk, then delivers it. Keys are fixed by the record id, so a delivery retried after a
crash rewrites the same two objects and the store ends up with each record exactly once.

Standard library, plus boto3 for S3 (imported by `bukva.s3` only when an S3 store is used);
`s3://` URIs are parsed by `bukva.s3.S3Location`, here as everywhere.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from bukva.alphabet import CLASSES, DEFAULT_MODE, check_mode, is_digit
from bukva.s3 import S3Location, is_s3_uri
from bukva.s3 import client as s3_client

# 2: records carry `mode`. Version 1 records (no `mode`) were drawn before the app had modes,
# which is mode "anything", and read as such.
SCHEMA_VERSION = 2


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
    source: str = "canvas"
    mode: str = DEFAULT_MODE  # what the person said they drew (`bukva.alphabet.MODES`)
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.label not in CLASSES:
            raise ValueError(f"label {self.label!r} is not one of the bukva classes")
        if is_digit(self.label) and self.uppercase is not None:
            raise ValueError(f"digit {self.label!r} has no case; uppercase must be None")
        check_mode(self.mode)

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

    def to_json(self) -> bytes:
        body = asdict(self) | {"text": self.text, "agrees": self.agrees, "image": self.image_key}
        return json.dumps(body, ensure_ascii=False, indent=2).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> FeedbackRecord:
        body = json.loads(data)
        names = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in body.items() if k in names})


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
    per outbox folder (a file lock), so several app sessions or processes never race.
    """

    def __init__(self, store: ObjectStore, directory: str | Path):
        self.store = store
        self.directory = Path(directory)

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

    def enqueue(self, record: FeedbackRecord, png: bytes) -> None:
        """Keep the record on local disk; raises OSError only if the local disk fails."""
        staging = self.directory / "staging" / record.id
        staging.mkdir(parents=True, exist_ok=True)
        (staging / "image.png").write_bytes(png)
        (staging / "record.json").write_bytes(record.to_json())
        self._pending_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        os.replace(staging, self._pending_dir / f"{stamp}-{record.id}")

    def submit(self, record: FeedbackRecord, png: bytes) -> Delivery:
        """Queue the record, then try to deliver the queue; says whether this one is stored."""
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
        with open(self.directory / ".lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0  # another session is flushing this outbox right now
            delivered = 0
            for entry in self._entries():
                self._deliver(entry)
                delivered += 1
            return delivered

    def _deliver(self, entry: Path) -> None:
        body = (entry / "record.json").read_bytes()
        record = FeedbackRecord.from_json(body)
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
    """How many complete feedback records the store holds, per class character."""
    counts: Counter[str] = Counter()
    for key in store.list_keys():
        label, _, name = key.partition("/")
        if name.endswith(".json") and "/" not in name and label in CLASSES:
            counts[label] += 1
    return counts
