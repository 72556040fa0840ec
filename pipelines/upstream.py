"""The public data sets from upstream, when no local mirror is at hand (stage `ingest`).

`resolve(source)` turns params.yaml's `ingest.source` into a folder laid out like the local
mirror (`../shared/data`: rukopys/ and mnist/, see its README.md):

- `auto` (the default): `../shared/data` when it exists (these machines, CI), else a download;
- `download` (or empty): a download, even where a mirror exists;
- anything else: that folder, a mirror of the same layout.

A download builds that folder in the cache (`BUKVA_DATA_CACHE`, default `~/.cache/bukva`):

- Rukopys: the archive of github.com/lynnporu/rukopys-dataset at a pinned commit (codeload's
  tar.gz, base URL `BUKVA_RUKOPYS_URL`); its glyphs.csv must match a pinned sha256. It is cut
  to the mirror's subset, `rukopys_mirror.txt` (pinned too): the mirror's rows of glyphs.csv,
  in upstream's order, and its PNG files. Upstream's other glyphs are the evaluation set the
  project never sees.
- MNIST: the t10k images and labels from a public mirror (base URL `BUKVA_MNIST_URL`), checked
  against the MD5s MNIST publishes, cut to the first 8000 digits like the local mirror.

Either way `ingest` writes the same data/raw, byte for byte (tests/data/test_upstream.py checks it
against a loopback server laid out like the upstream hosts). The downloads stay in the cache:
a second run makes no request.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import shutil
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from bukva.settings import Settings
from pipelines.common import log
from pipelines.download import Checksum, DownloadError, Fetcher
from pipelines.sources import mnist, rukopys

DEFAULT_MIRROR = Path("../shared/data")  # relative to the project root, where stages run
AUTO, DOWNLOAD = "auto", "download"
SUBSET_FILE = Path(__file__).with_name("rukopys_mirror.txt")


@dataclass(frozen=True)
class Pins:
    """What a download must be: upstream commit and checksums, and what the mirror holds."""

    rukopys_repo: str = "lynnporu/rukopys-dataset"
    rukopys_commit: str = "68fc4ecb7212bab960390f688473c6025e416304"
    # glyphs.csv at that commit (1081 labelled glyphs).
    glyphs_sha256: str = "2cdf89b94912dd1ade3b78632913c15b4a400edb13e8f950d77b0f41a6f1a314"
    # rukopys_mirror.txt, and glyphs.csv cut to it (= the local mirror's glyphs.csv, 916 rows).
    subset_sha256: str = "9babcbd2305d149362f5468561ddcc628b2cf7da2ed27fa21e9d74fdd2227410"
    table_sha256: str = "0253249c829bb68eacb4cf4f4e5c904fc68e35858dff007b2faa29dfe1521132"
    # MNIST's published MD5s of the t10k files.
    mnist_images_md5: str = "9fb629c4189551a2d022fa330f9573f3"
    mnist_labels_md5: str = "ec29112dd5afa0611ce80d1b7f02629c"
    # The local mirror's cut: the first 8000 digits, sha256 of the uncompressed IDX files.
    mnist_count: int = 8000
    digits_images_sha256: str = "c6beb86dee3f4e07138a2ee7e423dbbe9f2de59e54eee6b1ede5b6b0f2ae6ebc"
    digits_labels_sha256: str = "ca7bfaf2ca63bacfe71b50b711ce605e34a6556a68b2ba8a628b8559b6a9ba8d"

    def rukopys_url(self, base: str) -> str:
        """codeload.github.com's layout: <base>/<owner>/<repo>/tar.gz/<commit>."""
        return f"{base.rstrip('/')}/{self.rukopys_repo}/tar.gz/{self.rukopys_commit}"

    def mnist_files(self) -> tuple[tuple[str, str, str, str], ...]:
        """(upstream file, its md5, the mirror's file name, sha256 of its uncompressed cut)."""
        return (
            ("t10k-images-idx3-ubyte.gz", self.mnist_images_md5, mnist.MNIST_IMAGES,
             self.digits_images_sha256),
            ("t10k-labels-idx1-ubyte.gz", self.mnist_labels_md5, mnist.MNIST_LABELS,
             self.digits_labels_sha256),
        )  # fmt: skip


PINS = Pins()


def resolve(
    source: str,
    settings: Settings | None = None,
    fetcher: Fetcher | None = None,
    mirror: Path = DEFAULT_MIRROR,
    pins: Pins = PINS,
) -> Path:
    """The mirror folder `ingest` reads for params.yaml's `ingest.source` (see the module doc);
    downloads when the value asks for it. `mirror` is where `auto` looks for a local mirror
    (the tests pass the one beside their checkout, wherever they run from)."""
    value = (source or "").strip()
    if value not in (AUTO, DOWNLOAD, ""):
        return Path(value)
    if value == AUTO and (mirror / rukopys.NAME).is_dir():
        log("ingest", f"data source: the local mirror {mirror}")
        return mirror
    settings = settings or Settings.from_env()
    why = f"no local mirror at {mirror}" if value == AUTO else f"ingest.source {value!r}"
    log("ingest", f"data source: the public upstream ({why}), cache {settings.bukva_data_cache}")
    return fetch(settings.bukva_data_cache / "mirror", settings, pins, fetcher)


def fetch(
    dest: Path, settings: Settings, pins: Pins = PINS, fetcher: Fetcher | None = None
) -> Path:
    """Download (or take from the cache) both data sets and lay them out in `dest` like the
    local mirror.

    Raises:
        DownloadError: no network (the message names the URL), or a file that is not the
            pinned one (the message names it).
    """
    fetcher = fetcher or Fetcher()
    downloads = settings.bukva_data_cache / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    # One builder at a time per cache (parallel test workers, a stage beside the tests): the
    # others wait, then rebuild from the cache without a request.
    with FileLock(settings.bukva_data_cache / "fetch.lock"):
        if dest.exists():
            shutil.rmtree(dest)
        fetch_rukopys(dest / rukopys.NAME, downloads, settings.bukva_rukopys_url, pins, fetcher)
        fetch_mnist(dest / mnist.NAME, downloads, settings.bukva_mnist_url, pins, fetcher)
    return dest


def read_subset(path: Path = SUBSET_FILE, sha256: str = PINS.subset_sha256) -> list[str]:
    """The mirror's Rukopys files (glyphs/<name>.png), checked against the pinned sha256."""
    Checksum("sha256", sha256).verify(path, str(path))
    return [line for line in path.read_text().splitlines() if line and not line.startswith("#")]


def fetch_rukopys(dest: Path, downloads: Path, base: str, pins: Pins, fetcher: Fetcher) -> None:
    """Rukopys at the pinned commit, cut to the mirror's subset, into `dest`."""
    url = pins.rukopys_url(base)
    archive = downloads / f"{pins.rukopys_repo.split('/')[-1]}-{pins.rukopys_commit}.tar.gz"
    cached = archive.is_file()
    fetcher.get(url, archive)
    try:
        _unpack_rukopys(archive, dest, url, pins)
    except DownloadError:
        archive.unlink(missing_ok=True)  # never keep an archive that is not the pinned one
        if not cached:
            raise
        log(fetcher.stage, f"cached {archive.name} is not the pinned one: downloading again")
        shutil.rmtree(dest, ignore_errors=True)
        fetcher.get(url, archive)
        _unpack_rukopys(archive, dest, url, pins)


def _unpack_rukopys(archive: Path, dest: Path, url: str, pins: Pins) -> None:
    wanted = set(read_subset(sha256=pins.subset_sha256))
    (dest / "glyphs").mkdir(parents=True, exist_ok=True)
    table, found = None, set()
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                # codeload's layout: everything under one top folder, <repo>-<commit>/.
                name = member.name.partition("/")[2]
                if not member.isfile() or not (name == rukopys.TABLE or name in wanted):
                    continue
                data = tar.extractfile(member).read()
                if name == rukopys.TABLE:
                    table = data
                else:
                    (dest / name).write_bytes(data)  # a name from the pinned list, never the tar's
                    found.add(name)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise DownloadError(f"{archive.name} from {url} is not a readable tar.gz ({exc})") from None
    if table is None:
        raise DownloadError(f"{archive.name} from {url} holds no {rukopys.TABLE}")
    _check_bytes(table, pins.glyphs_sha256, f"{rukopys.TABLE} in {archive.name} from {url}")
    cut = cut_table(table, wanted)
    _check_bytes(cut, pins.table_sha256, f"{rukopys.TABLE} cut to {SUBSET_FILE.name}")
    (dest / rukopys.TABLE).write_bytes(cut)
    labelled = {row["filename"] for row in csv.DictReader(io.StringIO(cut.decode("utf-8")))}
    if missing := sorted(labelled - found):
        raise DownloadError(f"{archive.name} from {url} lacks labelled glyphs: {missing[:5]}")
    if missing := sorted(wanted - labelled - found):
        log("ingest", f"warning: {url} lacks unlabelled files of the mirror: {missing}")


def cut_table(table: bytes, wanted: set[str]) -> bytes:
    """glyphs.csv with only the rows whose `filename` is in `wanted`, every kept line as is."""
    lines = table.decode("utf-8").splitlines(keepends=True)
    column = next(csv.reader(lines[:1])).index("filename")
    kept = [line for line in lines[1:] if next(csv.reader([line]))[column] in wanted]
    return "".join(lines[:1] + kept).encode("utf-8")


def fetch_mnist(dest: Path, downloads: Path, base: str, pins: Pins, fetcher: Fetcher) -> None:
    """MNIST t10k, checked against the published MD5s, cut to the mirror's first digits.

    The cut files are cached beside the downloads (compressing them like the mirror takes
    seconds); a cached cut is used only when its content still has the pinned sha256.
    """
    dest.mkdir(parents=True, exist_ok=True)
    for theirs, md5, ours, sha256 in pins.mnist_files():
        cut_file = downloads / ours
        if cut_file.is_file() and _gunzip_sha256(cut_file) == sha256:
            log(fetcher.stage, f"cached: {ours} ({downloads})")
        else:
            url = f"{base.rstrip('/')}/{theirs}"
            path = fetcher.get(url, downloads / theirs, Checksum("md5", md5))
            try:
                data = gzip.decompress(path.read_bytes())
            except (OSError, EOFError, zlib.error) as exc:
                raise DownloadError(f"{theirs} from {url}: not a readable gzip ({exc})") from None
            cut = first_items(data, pins.mnist_count, f"{theirs} from {url}")
            _check_bytes(cut, sha256, f"the first {pins.mnist_count} items of {theirs}")
            # The mirror's own encoding (its name in the header, no time stamp): same bytes.
            packed = io.BytesIO()
            with gzip.GzipFile(ours.removesuffix(".gz"), "wb", fileobj=packed, mtime=0) as out:
                out.write(cut)
            cut_file.write_bytes(packed.getvalue())
        shutil.copyfile(cut_file, dest / ours)


def _gunzip_sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(gzip.decompress(path.read_bytes())).hexdigest()
    except (OSError, EOFError, zlib.error):
        return None


def first_items(idx: bytes, count: int, what: str) -> bytes:
    """An IDX file (uncompressed) cut to its first `count` items, with the header to match."""
    ndim = idx[3] if len(idx) >= 4 else 0
    header = 4 + 4 * ndim
    if ndim == 0 or len(idx) < header:
        raise DownloadError(f"{what}: not an IDX file")
    dims = [int.from_bytes(idx[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    if dims[0] < count:
        raise DownloadError(f"{what}: {dims[0]} items, fewer than the {count} the mirror holds")
    item = 1
    for d in dims[1:]:
        item *= d
    return idx[:4] + count.to_bytes(4, "big") + idx[8:header] + idx[header : header + count * item]


def _check_bytes(data: bytes, sha256: str, what: str) -> None:
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise DownloadError(f"checksum mismatch for {what}: sha256 {actual}, expected {sha256}")
