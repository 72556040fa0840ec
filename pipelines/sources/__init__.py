"""The data sources, one module each, with what `ingest` and `prepare` need from it.

Every source module has:

- `NAME`: its folder under data/raw/ and the `source` column of data/prepared/index.csv;
- `prepare(raw, params) -> (records, images, geometry)`: every image of raw/NAME/ through
  `bukva.preprocess.normalize_with_geometry`, as `pipelines.data.Record` rows; `params` is
  params.yaml's `prepare` section;
- what `ingest` needs to read, validate and copy it (`rukopys.check` / `copy`,
  `mnist.read_mnist` / `copy`, `feedback.collect`, `fonts.check` / `copy`).

`fonts` (block letters from Debian fonts) is ingested but not prepared: the `draw` stage
(`pipelines/draw.py`) renders its glyphs as canvas strokes after the split.

`PREPARED` is the order in which `prepare` writes them (row order of index.csv). The split
stage stratifies by source and draws strata in sorted order from one seeded generator, so
a new public source changes the split of the sources that sort after it: add it knowingly.
"""

from __future__ import annotations

from pipelines.sources import feedback, fonts, mnist, rukopys

PREPARED = (rukopys, mnist, feedback)

__all__ = ["PREPARED", "feedback", "fonts", "mnist", "rukopys"]
