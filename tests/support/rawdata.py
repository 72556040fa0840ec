"""Where the tests read the raw data: the same folder `ingest` reads with `ingest.source: auto`.

- `BUKVA_TEST_DATA`, when set: that folder, a mirror of the same layout;
- else `../shared/data` beside the checkout, when it exists (these machines, CI);
- else the pinned public download (`pipelines.upstream`) into the cache (`BUKVA_DATA_CACHE`,
  default `~/.cache/bukva`): what a person with internet gets, checked against the same pins.

Parallel test workers share one download: the first builds the cache's mirror under a file
lock and leaves a marker; the others (and later runs) find the marker and use it as it is.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from filelock import FileLock

from bukva.settings import Settings
from pipelines import upstream
from pipelines.download import Fetcher

ROOT = Path(__file__).resolve().parents[2]
MARKER = "mirror.complete"


def raw_data_dir(
    root: Path = ROOT,
    settings: Settings | None = None,
    pins: upstream.Pins = upstream.PINS,
    fetcher: Fetcher | None = None,
) -> Path:
    """The raw data mirror for a checkout at `root` (see the module doc)."""
    if override := os.environ.get("BUKVA_TEST_DATA"):
        return Path(override)
    mirror = root.parent / "shared" / "data"
    settings = settings or Settings.from_env()
    if (mirror / "rukopys").is_dir():
        return upstream.resolve(upstream.AUTO, settings, fetcher, mirror, pins)
    cache = settings.bukva_data_cache
    cache.mkdir(parents=True, exist_ok=True)
    with FileLock(cache / "tests.lock"):
        built, marker = cache / "mirror", cache / MARKER
        stamp = hashlib.sha256(repr(pins).encode()).hexdigest()  # built with these pins
        done = marker.is_file() and marker.read_text().strip() == stamp
        if done and (built / "rukopys" / "glyphs.csv").is_file():
            return built
        marker.unlink(missing_ok=True)
        path = upstream.resolve(upstream.AUTO, settings, fetcher, mirror, pins)
        marker.write_text(stamp + "\n")
        return path
