"""The download path of `ingest` (pipelines/upstream.py) against a loopback HTTP server laid out
like the upstream hosts: codeload.github.com's tar.gz of Rukopys (one `<repo>-<commit>/` top
folder) and the MNIST mirror's gzip IDX files, both built from the local mirror.

The upstream Rukopys table is the mirror's plus rows the mirror holds back, and MNIST t10k is
the mirror's 8000 digits plus 2000 more, so the cut to the mirror's subset is exercised too;
their checksums replace the real pins (which `test_pins_describe_the_local_mirror` checks).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import shutil
import socket
import sys
import tarfile
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from bukva.settings import Settings
from pipelines import upstream
from pipelines.download import Checksum, DownloadError, Fetcher
from pipelines.ingest import ingest
from pipelines.sources.mnist import MNIST_IMAGES, MNIST_LABELS
from tests.conftest import ROOT

COMMIT = upstream.PINS.rukopys_commit
RUKOPYS_PATH = f"/{upstream.PINS.rukopys_repo}/tar.gz/{COMMIT}"
MNIST_PATHS = ("/mnist/t10k-images-idx3-ubyte.gz", "/mnist/t10k-labels-idx1-ubyte.gz")
HELD_BACK = (  # upstream rows the mirror does not hold (their PNGs are in the archive)
    "а,a,a,False,italic,False,60,140,60,140,80,80,glyphs/a-900.png\n",
    "я,ya,ya,False,italic,False,60,140,60,140,80,80,glyphs/ya-900.png\n",
)
QUICK = Fetcher(timeout=5, attempts=3, backoff=0.01)


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=1, mtime=0)  # any encoding: the MD5s are the test's


def _upstream_table(mirror: Path) -> bytes:
    lines = (mirror / "rukopys" / "glyphs.csv").read_text(encoding="utf-8").splitlines(True)
    return "".join([*lines[:3], HELD_BACK[0], *lines[3:], HELD_BACK[1]]).encode()


def _codeload_tarball(mirror: Path, table: bytes) -> bytes:
    """What codeload.github.com/<owner>/<repo>/tar.gz/<commit> answers: every file of the
    repository under <repo>-<commit>/."""
    top = f"{upstream.PINS.rukopys_repo.split('/')[1]}-{COMMIT}"
    some_png = next((mirror / "rukopys" / "glyphs").glob("*.png")).read_bytes()
    files = {"README.md": b"# Rukopys dataset\n", "glyphs.csv": table}
    files |= {f"glyphs/{p.name}": p.read_bytes() for p in (mirror / "rukopys/glyphs").iterdir()}
    files |= {row.rsplit(",", 1)[1].strip(): some_png for row in HELD_BACK}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for folder in (top, f"{top}/glyphs"):
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _t10k(mirror: Path) -> dict[str, bytes]:
    """t10k-*.gz: the mirror's 8000 digits followed by 2000 others, as MNIST publishes them."""
    images = gzip.decompress((mirror / "mnist" / MNIST_IMAGES).read_bytes())
    labels = gzip.decompress((mirror / "mnist" / MNIST_LABELS).read_bytes())
    rng = np.random.default_rng(0)
    more_images = rng.integers(0, 256, 2000 * 28 * 28, dtype=np.uint8).tobytes()
    more_labels = rng.integers(0, 10, 2000, dtype=np.uint8).tobytes()
    n = (10000).to_bytes(4, "big")
    return {
        "t10k-images-idx3-ubyte.gz": _gzip(images[:4] + n + images[8:] + more_images),
        "t10k-labels-idx1-ubyte.gz": _gzip(labels[:4] + n + labels[8:] + more_labels),
    }


class Hosts:
    """The loopback server: `files` by URL path, a log of requested paths, and per-path HTTP
    errors to answer before the real content (`fail`)."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.requests: list[str] = []
        self.fail: dict[str, list[int]] = {}
        hosts = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hosts.requests.append(self.path)
                if hosts.fail.get(self.path):
                    self.send_error(hosts.fail[self.path].pop(0))
                    return
                if self.path not in hosts.files:
                    self.send_error(404)
                    return
                body = hosts.files[self.path]
                self.send_response(200)
                self.send_header("Content-Type", "application/x-gzip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def settings(self, cache: Path) -> Settings:
        return Settings.from_env(
            {
                "BUKVA_DATA_CACHE": str(cache),
                "BUKVA_RUKOPYS_URL": self.url,
                "BUKVA_MNIST_URL": f"{self.url}/mnist",
            }
        )


@pytest.fixture(scope="module")
def served(raw_data):
    """The server and the pins of what it serves."""
    table = _upstream_table(raw_data)
    t10k = _t10k(raw_data)
    hosts = Hosts(
        {RUKOPYS_PATH: _codeload_tarball(raw_data, table)}
        | {f"/mnist/{name}": data for name, data in t10k.items()}
    )
    pins = replace(
        upstream.PINS,
        glyphs_sha256=hashlib.sha256(table).hexdigest(),
        mnist_images_md5=hashlib.md5(t10k["t10k-images-idx3-ubyte.gz"]).hexdigest(),
        mnist_labels_md5=hashlib.md5(t10k["t10k-labels-idx1-ubyte.gz"]).hexdigest(),
    )
    hosts.thread.start()
    try:
        yield hosts, pins
    finally:
        hosts.server.shutdown()
        hosts.server.server_close()


@pytest.fixture
def hosts(served):
    server, _ = served
    server.requests.clear()
    server.fail.clear()
    return server


@pytest.fixture
def pins(served):
    return served[1]


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_pins_describe_the_local_mirror(raw_data):
    """The pinned subset is the mirror's file list, and the pinned cuts are its files."""
    names = {f"glyphs/{p.name}" for p in (raw_data / "rukopys" / "glyphs").iterdir()}
    assert set(upstream.read_subset()) == names
    table = (raw_data / "rukopys" / "glyphs.csv").read_bytes()
    assert hashlib.sha256(table).hexdigest() == upstream.PINS.table_sha256
    for _, _, ours, sha256 in upstream.PINS.mnist_files():
        data = gzip.decompress((raw_data / "mnist" / ours).read_bytes())
        assert hashlib.sha256(data).hexdigest() == sha256


@pytest.fixture(scope="module")
def first_run(served, tmp_path_factory):
    """One download into an empty cache: (cache, fetched folder, requests, output)."""
    hosts, pins = served
    hosts.requests.clear()
    root = tmp_path_factory.mktemp("first-run")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        fetched = upstream.fetch(root / "fetched", hosts.settings(root / "cache"), pins, QUICK)
    return root / "cache", fetched, list(hosts.requests), out.getvalue()


def test_download_gives_the_mirrors_data_raw_byte_for_byte(first_run, hosts, raw_data, tmp_path):
    _, fetched, requests, out = first_run
    assert sorted(requests) == sorted([RUKOPYS_PATH, *MNIST_PATHS])
    assert f"downloading {hosts.url}{RUKOPYS_PATH}" in out and " MB" in out  # progress
    assert "a-900.png" not in (fetched / "rukopys" / "glyphs.csv").read_text()

    from_mirror = ingest(raw_data, tmp_path / "raw-mirror")
    from_download = ingest(fetched, tmp_path / "raw-download")
    assert from_download == from_mirror
    mirror_tree, download_tree = _tree(tmp_path / "raw-mirror"), _tree(tmp_path / "raw-download")
    assert {"manifest.json", "rukopys/glyphs.csv", f"mnist/{MNIST_IMAGES}"} <= set(mirror_tree)
    assert download_tree.keys() == mirror_tree.keys()
    assert [k for k in mirror_tree if download_tree[k] != mirror_tree[k]] == []


def test_second_run_is_served_from_the_cache(first_run, hosts, pins, tmp_path):
    cache, fetched, _, _ = first_run
    again = upstream.fetch(tmp_path / "again", hosts.settings(cache), pins, QUICK)
    assert hosts.requests == []
    assert _tree(again) == _tree(fetched)


def test_a_corrupted_cache_is_downloaded_again(first_run, hosts, pins, tmp_path):
    cache, fetched, _, _ = first_run
    shutil.copytree(cache, tmp_path / "cache")
    downloads = tmp_path / "cache" / "downloads"
    for name in ("t10k-labels-idx1-ubyte.gz", MNIST_LABELS):
        (downloads / name).write_bytes(b"junk")
    archive = downloads / f"rukopys-dataset-{COMMIT}.tar.gz"
    archive.write_bytes(archive.read_bytes()[:1000])
    again = upstream.fetch(tmp_path / "again", hosts.settings(tmp_path / "cache"), pins, QUICK)
    assert sorted(hosts.requests) == sorted([RUKOPYS_PATH, MNIST_PATHS[1]])
    assert _tree(again) == _tree(fetched)


def test_a_transient_503_is_retried(hosts, pins, tmp_path, capsys):
    hosts.fail[MNIST_PATHS[1]] = [503, 502]
    checksum = Checksum("md5", pins.mnist_labels_md5)
    QUICK.get(hosts.url + MNIST_PATHS[1], tmp_path / "labels.gz", checksum)
    assert hosts.requests == [MNIST_PATHS[1]] * 3
    out = capsys.readouterr().out
    assert f"{hosts.url}{MNIST_PATHS[1]}: HTTP 503" in out and "retry 2/2" in out


def test_a_missing_file_is_not_retried(hosts, pins, tmp_path):
    with pytest.raises(DownloadError, match=f"cannot download {hosts.url}/nowhere/.*404"):
        upstream.fetch_mnist(tmp_path / "m", tmp_path / "c", f"{hosts.url}/nowhere", pins, QUICK)
    assert len(hosts.requests) == 1


@pytest.mark.parametrize(
    ("change", "named", "download"),
    [
        ({"mnist_images_md5": "0" * 32}, "t10k-images-idx3-ubyte.gz", MNIST_PATHS[0]),
        ({"glyphs_sha256": "0" * 64}, "glyphs.csv in rukopys-dataset-", RUKOPYS_PATH),
    ],
)
def test_checksum_mismatch_names_the_file_and_keeps_it_not(
    hosts, pins, tmp_path, change, named, download
):
    settings = hosts.settings(tmp_path / "cache")
    with pytest.raises(DownloadError, match=f"checksum mismatch for {named}"):
        upstream.fetch(tmp_path / "fetched", settings, replace(pins, **change), QUICK)
    assert hosts.requests[-1] == download  # it stopped there
    kept = [p.name for p in (tmp_path / "cache" / "downloads").iterdir()]
    assert kept == ([] if download == RUKOPYS_PATH else [f"rukopys-dataset-{COMMIT}.tar.gz"])


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("source", ["download", ""])
def test_no_network_is_one_line_naming_the_url(source, tmp_path, monkeypatch, capsys):
    """The stage's CLI, as `dvc repro` runs it: exit 1, the URL in one line, no traceback."""
    from pipelines.common import run_cli
    from pipelines.ingest import main

    base = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("BUKVA_RUKOPYS_URL", base)
    monkeypatch.setenv("BUKVA_DATA_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(ROOT)  # params.yaml
    monkeypatch.setattr(sys, "argv", ["ingest", "--source", source, "--out", str(tmp_path)])
    monkeypatch.setattr("pipelines.download.time.sleep", lambda seconds: None)  # the retries
    with pytest.raises(SystemExit) as exit_:
        run_cli("ingest", main)
    assert exit_.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"ingest: error: cannot download {base}{RUKOPYS_PATH}: ")
    assert "tried 4 times" in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_a_silent_server_times_out_instead_of_hanging(tmp_path):
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/mnist/t10k-images-idx3-ubyte.gz"
        started = time.monotonic()
        with pytest.raises(DownloadError, match=f"cannot download {url}: .*timed out"):
            Fetcher(timeout=0.5, attempts=2, backoff=0.01).get(url, tmp_path / "x.gz")
        assert time.monotonic() - started < 5


def test_auto_takes_the_mirror_when_there_is_one(hosts, raw_data, tmp_path, monkeypatch):
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "data").symlink_to(raw_data.resolve(), True)
    (tmp_path / "project").mkdir()
    monkeypatch.chdir(tmp_path / "project")
    settings = hosts.settings(tmp_path / "cache")
    assert upstream.resolve("auto", settings, QUICK) == upstream.DEFAULT_MIRROR
    assert upstream.resolve("/some/mirror", settings, QUICK) == Path("/some/mirror")
    assert hosts.requests == []


def test_auto_downloads_without_a_mirror(hosts, tmp_path, monkeypatch):
    """No ../shared/data: `auto` downloads (here the real pins meet the test's files, so the
    Rukopys table is refused, which proves the request went out)."""
    monkeypatch.chdir(tmp_path)
    settings = hosts.settings(tmp_path / "cache")
    with pytest.raises(DownloadError, match=r"checksum mismatch for glyphs\.csv"):
        upstream.resolve("auto", settings, QUICK)
    assert hosts.requests == [RUKOPYS_PATH]


def test_tests_without_a_mirror_read_the_pinned_download(
    hosts, pins, raw_data, tmp_path, monkeypatch
):
    """What `make test` does in a checkout with no ../shared/data beside it: the tests' raw data
    (tests/support/rawdata.py) is the pinned download, made once for every worker, and it
    ingests to the same data/raw as the mirror."""
    from tests.support.rawdata import raw_data_dir

    monkeypatch.delenv("BUKVA_TEST_DATA", raising=False)
    checkout = tmp_path / "work" / "bukva"  # nothing beside it
    checkout.mkdir(parents=True)
    settings = hosts.settings(tmp_path / "cache")
    found = raw_data_dir(checkout, settings, pins, QUICK)
    assert found == tmp_path / "cache" / "mirror"
    assert sorted(hosts.requests) == sorted([RUKOPYS_PATH, *MNIST_PATHS])
    hosts.requests.clear()
    assert raw_data_dir(checkout, settings, pins, QUICK) == found  # the next worker, next run
    assert hosts.requests == []
    assert ingest(found, tmp_path / "raw-download") == ingest(raw_data, tmp_path / "raw-mirror")
    assert _tree(tmp_path / "raw-download") == _tree(tmp_path / "raw-mirror")


def test_tests_take_the_mirror_beside_the_checkout(hosts, pins, raw_data, tmp_path, monkeypatch):
    from tests.support.rawdata import raw_data_dir

    monkeypatch.delenv("BUKVA_TEST_DATA", raising=False)
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "data").symlink_to(raw_data.resolve(), True)
    (tmp_path / "bukva").mkdir()
    settings = hosts.settings(tmp_path / "cache")
    assert raw_data_dir(tmp_path / "bukva", settings, pins, QUICK) == tmp_path / "shared" / "data"
    assert hosts.requests == []
