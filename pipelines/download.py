"""Fetch one file over HTTP(S) into a cache folder: retries, progress output, checksums.

Used by `pipelines.upstream` (the public data sets). Standard library only (urllib), so the
trainer image needs nothing more. Every failure is a `DownloadError` (a `StageError`) whose
message names the URL, or the file whose checksum does not match, so the stage CLI prints one
line and no traceback.
"""

from __future__ import annotations

import hashlib
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from pipelines.common import StageError, log

CHUNK = 1 << 16
# Answers worth another try: the server or a proxy in between is busy or restarting.
TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class DownloadError(StageError):
    """A download failed for good (after its retries) or its content is not the pinned one."""


@dataclass(frozen=True)
class Checksum:
    """A pinned digest: `algorithm` as hashlib names it (md5, sha256) and its hex value."""

    algorithm: str
    hexdigest: str

    def of(self, path: Path) -> str:
        """The digest of the file at `path`, with this checksum's algorithm."""
        digest = hashlib.new(self.algorithm)
        with path.open("rb") as f:
            for block in iter(lambda: f.read(CHUNK), b""):
                digest.update(block)
        return digest.hexdigest()

    def verify(self, path: Path, what: str) -> None:
        """Raise DownloadError naming `what` when the file's digest is not the pinned one."""
        actual = self.of(path)
        if actual != self.hexdigest:
            raise DownloadError(
                f"checksum mismatch for {what}: {self.algorithm} {actual}, expected "
                f"{self.hexdigest} (a changed or corrupted upstream file)"
            )


@dataclass(frozen=True)
class Fetcher:
    """How downloads are made: timeout per connection and read, attempts, backoff between them."""

    timeout: float = 30.0
    attempts: int = 4
    backoff: float = 2.0  # seconds before the 2nd attempt, doubling after each failure
    stage: str = "ingest"

    def get(self, url: str, dest: Path, checksum: Checksum | None = None) -> Path:
        """`dest`, downloaded from `url` unless the cache already holds it (and, with a
        `checksum`, it matches); a new download is verified before it takes `dest`'s name.

        Raises:
            DownloadError: no answer after every attempt (the message names the URL), an HTTP
                error that retrying cannot fix, or a checksum mismatch (naming the file).
        """
        if dest.is_file():
            if checksum is None or checksum.of(dest) == checksum.hexdigest:
                log(self.stage, f"cached: {dest.name} ({dest.parent})")
                return dest
            log(self.stage, f"cached {dest.name} does not match its checksum: downloading again")
            dest.unlink()
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        delay = self.backoff
        for attempt in range(1, self.attempts + 1):
            try:
                self._stream(url, part)
                break
            except _Transient as exc:
                part.unlink(missing_ok=True)
                if attempt == self.attempts:
                    raise DownloadError(
                        f"cannot download {url}: {exc} (tried {self.attempts} times; is the "
                        "network up? Or set ingest.source to a local mirror, see README)"
                    ) from None
                log(self.stage, f"{url}: {exc}; retry {attempt}/{self.attempts - 1} in {delay:g} s")
                time.sleep(delay)
                delay *= 2
        if checksum is not None:
            try:
                checksum.verify(part, f"{dest.name} from {url}")
            except DownloadError:
                part.unlink()
                raise
        part.replace(dest)
        return dest

    def _stream(self, url: str, part: Path) -> None:
        """One attempt: stream `url` into `part`, logging progress."""
        try:
            response = urllib.request.urlopen(url, timeout=self.timeout, context=_tls())
        except urllib.error.HTTPError as exc:
            if exc.code in TRANSIENT_STATUS:
                raise _Transient(f"HTTP {exc.code} {exc.reason}") from None
            raise DownloadError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise _Transient(str(reason) or type(reason).__name__) from None
        with response:
            size = int(response.headers.get("Content-Length") or 0)
            log(self.stage, f"downloading {url}" + (f" ({size / 1e6:.1f} MB)" if size else ""))
            done, shown = 0, 0
            try:
                with part.open("wb") as out:
                    while block := response.read(CHUNK):
                        out.write(block)
                        done += len(block)
                        step = size // 10 if size else 2_000_000
                        if step and done - shown >= step:
                            shown = done
                            total = f"/{size / 1e6:.1f}" if size else ""
                            log(self.stage, f"  {done / 1e6:.1f}{total} MB")
            except OSError as exc:  # TimeoutError included
                raise _Transient(f"connection lost after {done} bytes ({exc})") from None
            if size and done != size:
                raise _Transient(f"connection closed after {done} of {size} bytes")
        log(self.stage, f"  done: {done / 1e6:.1f} MB")


def _tls() -> ssl.SSLContext:
    """The system's CA certificates plus certifi's, when installed (Python builds without a
    system store, e.g. python.org's on macOS, otherwise fail every HTTPS download)."""
    context = ssl.create_default_context()
    try:
        import certifi

        context.load_verify_locations(certifi.where())
    except (ImportError, OSError):
        pass
    return context


class _Transient(Exception):
    """An attempt failed in a way another attempt may not."""
