"""Stage `prepare`: every image of every source through `bukva.preprocess.normalize`.

Outputs data/prepared/images.npy (float32 [N, 28, 28], exactly the model input),
data/prepared/geometry.npy (float32 [N, 5], `bukva.preprocess.normalize_with_geometry`'s
geometry in the image's frame; zeros for MNIST, whose geometry is unknown) and
data/prepared/index.csv (one row per image: id, source, file, label, class index, uppercase
flag, and content hashes the split stage uses to keep duplicates together); the formats are
`pipelines.data`'s, the sources `pipelines.sources.PREPARED`, in that order.

Uppercase flag: 1/0 for letters (every letter has a case, `CASED_LETTERS`); -1 ("unknown")
for digits, so the case head is never trained on a meaningless answer.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.common import load_params, log, run_cli
from pipelines.data import Prepared, Record, write_prepared
from pipelines.sources import PREPARED


def prepare(raw: Path, params: dict[str, Any]) -> Prepared:
    """Records, normalized images and geometry of every source under `raw`, source after
    source."""
    records: list[Record] = []
    images: list[np.ndarray] = []
    geometry: list[np.ndarray] = []
    for source in PREPARED:
        more_records, more_images, more_geometry = source.prepare(raw, params)
        records, images = records + more_records, images + more_images
        geometry += more_geometry
    return records, images, geometry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", default="data/raw")
    parser.add_argument("--out", default="data/prepared")
    args = parser.parse_args()
    records, images, geometry = prepare(Path(args.raw), load_params("prepare"))
    write_prepared(Path(args.out), records, images, geometry)
    log("prepare", f"wrote {len(records)} images to {args.out}")


if __name__ == "__main__":
    run_cli("prepare", main)
