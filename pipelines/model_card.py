"""The model card: what the model is for, what it learnt from (sources and licences), how well it
reads each evaluation set (with 95% intervals), its known confusions and what it is not for.

Generated, never hand-written: `evaluate` renders it from the figures it has just measured into
reports/model_card.md (the app's Model page shows it), and `register` attaches it to the
registry version (its description and a `model_card.md` artifact). The figures therefore cannot
go stale; only the fixed prose below (sources, licences, intended use) is edited by hand.
"""

from __future__ import annotations

FILE = "model_card.md"
SET_NAMES = {
    "scanned": "scanned test split (Rukopys cursive letters, MNIST digits)",
    "canvas": "the same test images redrawn as the canvas records strokes",
    "block": "block letters and digits of held-out fonts",
    "combined": "**all sets together** (what the promotion gate decides on)",
}
COLUMNS = (
    ("letters", "letters_accuracy", "letters_count"),
    ("digits", "digits_accuracy", "digits_count"),
    ("case", "case_accuracy", "case_count"),
    ("all", "label_accuracy", "count"),
)

# The licences of the training fonts (pipelines/sources/fonts.py LICENCES; a test keeps the
# two in step without the card importing the data sources).
FONT_LICENCES = (
    "SIL OFL 1.1",
    "Apache-2.0",
    "BSD-3-Clause",
    "GPL-3+ with font exception",
    "Bitstream Vera licence (DejaVu changes public domain)",
    "ParaType Free Font Licence",
)

INTENDED_USE = """\
Reads one hand-drawn Ukrainian character at a time: the 10 digits and the 33 letters of the
Ukrainian alphabet, with a second head that says whether a letter is a capital. It is made for
the bukva drawing app (a 280x280 canvas drawn with a finger or a mouse) and its v2 inference API:
one character per image, dark ink on a light background, roughly centred. The answer comes with
the top-3 and their probabilities; the uppercase head's answer is meaningful for letters only."""

NOT_FOR = """\
- Words, lines or pages: it reads one isolated character, it does not segment text.
- Photos or scans of documents, printed text, other alphabets (Russian ы, э, ъ, ё are not among
  its classes and get read as the nearest Ukrainian letter), symbols or punctuation.
- Anything where a wrong character has consequences (identity documents, forms, exams, medical
  or legal records): even on its own test sets it is wrong a few times in a hundred, and digits
  and their letter twins (0/о, 3/з, 6/ь, 4/ч) are easy to confuse without context.
- Identifying or profiling the person who drew: it is not trained or evaluated for that."""


def _pct(value: float | None) -> str:
    return "-" if value is None or value != value else f"{100 * value:.1f}%"


def _cell(figures: dict, key: str, count_key: str) -> str:
    value = figures.get(key)
    bounds = figures.get(f"{key}_interval")
    n = figures.get(count_key)
    if value is None or value != value or not n:
        return "-"
    if not bounds:
        return f"{_pct(value)} (n={n})"
    return f"{_pct(value)} [{_pct(bounds[0])}, {_pct(bounds[1])}] (n={n})"


def figures_table(metrics: dict, top_k: int = 3) -> str:
    """The per-set table: each accuracy with its 95% Wilson interval and the images behind it."""
    sets = {"scanned": metrics} | {k: v for k, v in metrics.items() if isinstance(v, dict)}
    columns = (*COLUMNS, (f"top-{top_k}", f"top{top_k}_accuracy", "count"))
    head = "| set | " + " | ".join(c[0] for c in columns) + " |"
    lines = [head, "|" + " --- |" * (len(columns) + 1)]
    for name, figures in sets.items():
        if "label_accuracy" not in figures:
            continue
        cells = [_cell(figures, key, count) for _, key, count in columns]
        lines.append(f"| {SET_NAMES.get(name, name)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def training_data() -> str:
    """The data sets the model learnt from, each with its source and licence."""
    return f"""\
- **Rukopys** (github.com/lynnporu/rukopys-dataset, also on Kaggle as lynnporu/rukopys):
  handwritten cursive Ukrainian letters by volunteers, 200x200 PNG. 916 of its 1081 labelled
  glyphs are used (the rest is kept back as an independent test); only 16 letters have capitals.
  **Licence: none stated.** Neither the upstream README (kept as
  `../shared/data/rukopys/README.upstream.md`) nor the repository names one, so the glyphs remain
  their authors' copyright: the model is fit for research and demonstration; ask the author
  before any other use. (The 2026 "RUKOPYS" HTR data set of the Ukrainian Catholic University,
  CC BY-NC-SA 4.0, is a different data set and is not used.)
- **MNIST** digits (Yann LeCun, Corinna Cortes, Christopher Burges; yann.lecun.com/exdb/mnist):
  the first 8000 images of its test set (the rest kept back). **Licence: CC BY-SA 3.0**, as its
  usual distributions (e.g. Kaggle's Digit Recognizer) state it; the authors' own page names no
  licence.
- **Font block letters**: the 33 letters in both cases and the digits drawn as canvas strokes
  from the free training fonts shipped in `pipelines/sources/font_files` (Debian packages;
  licences: {"; ".join(FONT_LICENCES)}; the table and each package's copyright file are in
  `pipelines/sources/font_files/`). The held-out fonts of the block test set are never
  trained on.
- **Canvas redrawings**: the training split's Rukopys glyphs and a third of its MNIST digits
  redrawn as the app's canvas records strokes (derived from the two sets above, same licences).
- **Feedback** (only when `ingest.feedback` is set): drawings people confirmed or corrected in
  the app; training only, never evaluation."""


def known_confusions(mistakes: list[dict], limit: int = 10) -> str:
    """The most frequent mistakes on all sets together, as a list."""
    if not mistakes:
        return "- none on the evaluation sets"
    return "\n".join(
        f"- {m['actual']} read as {m['predicted']}: {m['count']} times "
        f"({_pct(m['share'])} of the {m['actual']} images)"
        for m in mistakes[:limit]
    )


def render(metrics: dict, mistakes: list[dict], top_k: int = 3) -> str:
    """The whole card (Markdown) from evaluate's metrics.json and its confusions."""
    combined = metrics.get("combined", {})
    total = combined.get("count", metrics.get("count", 0))
    return f"""\
# Model card: bukva-cnn

## Intended use
{INTENDED_USE}

## Training data
{training_data()}

## How well it reads
Accuracy on material training never sees ({total} images), each with its 95% Wilson interval
and the number of images behind it; case is scored on letters whose case is known. A
difference between two models smaller than the intervals is not a difference.

{figures_table(metrics, top_k)}

## Known confusions
The most frequent mistakes on all evaluation sets together:

{known_confusions(mistakes)}

## What it is not for
{NOT_FOR}
"""
