"""Stage `draw`: canvas drawings for training and the two drawn evaluation sets.

People draw on the app's canvas with a round 18 px brush; the scans the project learns from
were written with a pen. This stage redraws material as the canvas records it
(`pipelines.pen_paths`, `bukva.strokes`), after the split, so every set is made only from the
material it may see:

- `train`: the training split's Rukopys glyphs and a share of its MNIST digits redrawn with
  random jitter, block letters and digits of the training fonts (`TRAIN_FONTS`), and block
  letters and digits built from strokes as a finger draws them (`pipelines.sources.strokebuilt`,
  `strokebuilt_copies` of each of its 76 glyphs; `strokebuilt: false` leaves them out);
- `canvas` (evaluation): every test-split glyph and digit redrawn once, lightly jittered, in
  its frame (the Rukopys cell maps onto the canvas, digits stand at cap height);
- `block` (evaluation): all 33 letters in both cases and the digits from the held-out fonts
  (`EVAL_FONTS`), which training never sees.

Each set is a folder under data/drawn/ in the prepared format (`pipelines.data`): images.npy,
geometry.npy and index.csv. Every drawing has its own seed, so the output does not depend on
the number of worker processes.
"""

from __future__ import annotations

import argparse
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from PIL import Image

from bukva.alphabet import DIGITS
from bukva.preprocess import normalize_with_geometry, to_ink
from pipelines.common import load_params, log, run_cli
from pipelines.data import Record, make_record, read_index, read_split, write_prepared
from pipelines.pen_paths import Jitter, cell_path, digit_path, jitter, paint
from pipelines.sources import fonts, mnist, rukopys, strokebuilt

SETS = ("train", "canvas", "block")
TEST_JITTER = Jitter().scaled(0.5)  # redrawn test material: a careful hand
TRAIN_JITTER = fonts.TRAIN_JITTER.scaled(0.8)

Drawn = tuple[Record, np.ndarray, np.ndarray]  # record, model input, geometry vector


def _finish(source: str, name: str, file: str, label: str, upper: int, canvas, item=0) -> Drawn:
    x, geometry = normalize_with_geometry(canvas)
    record = make_record(source, name, file, label, upper, canvas, x, item=item)
    return record, x, geometry.vector()


def _glyph_job(job: tuple) -> list[Drawn]:
    """Redraw one Rukopys glyph `copies` times."""
    row, file, upper, copies, seed, amount = job
    with Image.open(file) as im:
        ink = to_ink(np.asarray(im.convert("RGB")))
    r0, r1, c0, c1 = row.bbox  # ink outside the table's box is not the glyph's
    mask = np.zeros_like(ink, dtype=bool)
    mask[max(r0, 0) : r1 + 1, max(c0, 0) : c1 + 1] = True
    path = cell_path(np.where(mask, ink, 0.0))
    rng = np.random.default_rng(seed)
    stem = Path(row.filename).stem
    return [
        _finish(
            "rukopys-drawn",
            f"{stem}/{k}",
            file,
            row.label,
            upper,
            paint(jitter(path, rng, amount), rng, amount),
        )
        for k in range(copies)
    ]


def _digit_job(job: tuple) -> list[Drawn]:
    """Redraw one MNIST digit once."""
    pixels, label, file, item, seed, amount = job
    rng = np.random.default_rng(seed)
    path = digit_path(pixels.astype(np.float32) / 255.0)
    canvas = paint(jitter(path, rng, amount), rng, amount)
    return [_finish("mnist-drawn", str(item), file, label, -1, canvas, item=item)]


def _font_job(job: tuple) -> list[Drawn]:
    """Every glyph of one font, `copies` times each."""
    path, copies, seed, amount = job
    out = []
    for k, (char, canvas) in enumerate(fonts.drawings(str(path), copies, seed, amount)):
        label = char.lower()
        upper = -1 if char in DIGITS else int(char != label)
        name = f"{Path(path).stem}/{'upper' if upper == 1 else 'lower'}-{label}/{k % copies}"
        out.append(_finish("fonts", name, str(path), label, upper, canvas))
    return out


def _stroke_job(job: tuple) -> list[Drawn]:
    """`copies` drawings of one glyph built from strokes."""
    char, copies, seed = job
    label = char.lower()
    upper = -1 if char in DIGITS else int(char != label)
    case = "digit" if upper == -1 else ("upper" if upper == 1 else "lower")
    return [
        _finish(strokebuilt.NAME, f"{case}-{label}/{k}", strokebuilt.FILE, label, upper, canvas)
        for k, canvas in enumerate(strokebuilt.drawings(char, copies, seed))
    ]


def _run(job: tuple) -> list[Drawn]:
    kind, args = job
    jobs = {"glyph": _glyph_job, "digit": _digit_job, "font": _font_job, "stroke": _stroke_job}
    return jobs[kind](args)


def jobs(raw: Path, prepared: Path, split_dir: Path, params: dict) -> dict[str, list[tuple]]:
    """The drawing jobs of each set, each with its own seed (from `params['seed']`)."""
    seed = int(params.get("seed", 11))
    rows = read_index(prepared)
    split = read_split(split_dir)
    glyphs = {
        Path(g.filename).stem: g for g in rukopys.read_glyph_table(raw / "rukopys" / rukopys.TABLE)
    }
    digits, _ = mnist.read_mnist(raw / mnist.NAME)
    out: dict[str, list[tuple]] = {name: [] for name in SETS}
    every = max(1, int(params.get("mnist_every", 3)))
    for i, row in enumerate(rows):
        name = split.get(row["id"])
        if name not in ("train", "test"):
            continue
        target = "train" if name == "train" else "canvas"
        amount = TRAIN_JITTER if name == "train" else TEST_JITTER
        job_seed = seed * 1_000_003 + i
        if row["source"] == rukopys.NAME:
            copies = int(params.get("rukopys_copies", 4)) if name == "train" else 1
            glyph = glyphs[row["id"].split("/", 1)[1]]
            out[target].append(
                ("glyph", (glyph, row["file"], row["uppercase"], copies, job_seed, amount))
            )
        elif row["source"] == mnist.NAME and (name == "test" or row["item"] % every == 0):
            item = row["item"]
            out[target].append(
                ("digit", (digits[item], row["label"], row["file"], item, job_seed, amount))
            )
    manifest = fonts.read_manifest(raw / fonts.NAME)
    limit = int(params.get("fonts_per_role", 0))  # 0: all (a small number: quick test runs)
    if limit > 0:
        by_role = {role: [f for f in manifest if f["role"] == role] for role in ("train", "eval")}
        manifest = by_role["train"][:limit] + by_role["eval"][:limit]
    for j, font in enumerate(manifest):
        path = raw / fonts.NAME / font["file"]
        if font["role"] == "train":
            copies, amount, target = int(params.get("font_copies", 8)), fonts.TRAIN_JITTER, "train"
        else:
            copies, amount, target = (
                int(params.get("eval_font_copies", 3)),
                fonts.EVAL_JITTER,
                "block",
            )
        out[target].append(("font", (path, copies, seed * 7919 + j, amount)))
    out["train"] += stroke_jobs(params)
    return out


def stroke_jobs(params: dict) -> list[tuple]:
    """The stroke-built glyphs' jobs (training only): none when `strokebuilt` is off."""
    copies = int(params.get("strokebuilt_copies", 0))
    if not params.get("strokebuilt", True) or copies < 1:
        return []
    seed = int(params.get("seed", 11))
    return [("stroke", (char, copies, seed)) for char in strokebuilt.CHARS]


def build(raw: Path, prepared: Path, split_dir: Path, out: Path, params: dict) -> dict[str, int]:
    """Draw every set into out/<set>/; return the number of drawings per set."""
    todo = jobs(raw, prepared, split_dir, params)
    workers = max(1, int(params.get("workers", 2)))
    sizes = {}
    with Pool(workers) as pool:
        for name in SETS:
            results = pool.map(_run, todo[name], chunksize=8)
            drawn = [d for result in results for d in result]
            write_prepared(
                out / name, [d[0] for d in drawn], [d[1] for d in drawn], [d[2] for d in drawn]
            )
            sizes[name] = len(drawn)
            log("draw", f"{name}: {len(drawn)} drawings")
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", default="data/raw")
    parser.add_argument("--prepared", default="data/prepared")
    parser.add_argument("--split", default="data/split")
    parser.add_argument("--out", default="data/drawn")
    args = parser.parse_args()
    build(
        Path(args.raw), Path(args.prepared), Path(args.split), Path(args.out), load_params("draw")
    )


if __name__ == "__main__":
    run_cli("draw", main)
