"""The classes the model predicts, in their one fixed order.

Standard library only: this module is the contract between training, serving and the app.
Index 0-9 are the digits, then the 33 Ukrainian letters in alphabetical order.
"""

from __future__ import annotations

DIGITS: str = "0123456789"
LETTERS: str = "абвгґдеєжзиіїйклмнопрстуфхцчшщьюя"
CLASSES: tuple[str, ...] = tuple(DIGITS + LETTERS)
NUM_CLASSES: int = len(CLASSES)  # 43
INDEX: dict[str, int] = {c: i for i, c in enumerate(CLASSES)}

# Letters whose uppercase answer is meaningful: all 33, since the block-letter source
# (`pipelines/sources/fonts.py`) draws every letter in both cases; digits never have a case.
CASED_LETTERS: frozenset[str] = frozenset(LETTERS)
# Letters that have uppercase samples in the Rukopys scans (cursive capitals). Kept in sync
# with the data by the `ingest` stage, which fails if the data disagrees.
SCANNED_CAPITALS: frozenset[str] = frozenset("абвгдежзйклноєії")

IMAGE_SIZE: int = 28  # model input is [N, 1, IMAGE_SIZE, IMAGE_SIZE]

# What the person says they are drawing (the app's choice, the v2 `mode` request parameter):
# the classes an answer may come from. The model always scores all 43; the answer is then
# restricted to the mode's classes (`bukva.reading`).
MODES: dict[str, str] = {"anything": DIGITS + LETTERS, "letters": LETTERS, "digits": DIGITS}
DEFAULT_MODE: str = "anything"

# A digit and a letter that look alike when drawn by hand: the digit/letter pairs the
# evaluation sets' confusions show at least 4 times (`python -m bench.twins`, docs/serving.md):
# 3/з, 0/о, 4/ч, 6/ь and 1/і dozens of times, the rest 4-8 times each. Where both are likely
# in mode "anything", the answer names both (`bukva.reading.alternatives`).
TWINS: frozenset[frozenset[str]] = frozenset(
    frozenset(pair)
    for pair in ("0о", "1і", "2г", "2д", "3з", "4ч", "4и", "5г", "5б", "6ь", "6б", "9д")
)


def is_digit(char: str) -> bool:
    """True for the ten digit classes."""
    return char in DIGITS


def has_case(char: str) -> bool:
    """True when the uppercase answer means something for this class."""
    return char in CASED_LETTERS


def are_twins(a: str, b: str) -> bool:
    """True when `a` and `b` are a digit and the letter it is taken for (`TWINS`)."""
    return frozenset((a.lower(), b.lower())) in TWINS


def check_mode(mode: str) -> str:
    """The mode itself when it is one of `MODES`.

    Raises:
        ValueError: naming the bad value and the allowed ones.
    """
    if not isinstance(mode, str) or mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    return mode


def index_of(char: str) -> int:
    """Class index of a character; accepts uppercase letters too.

    Raises:
        KeyError: naming the character, when it is not one of the 43 classes.
    """
    key = char.lower()
    if key not in INDEX:
        raise KeyError(f"{char!r} is not one of the {NUM_CLASSES} bukva classes")
    return INDEX[key]


def display(char: str, uppercase: bool | None) -> str:
    """The character as a person would write it, uppercase where that is meaningful."""
    return char.upper() if uppercase and has_case(char) else char
