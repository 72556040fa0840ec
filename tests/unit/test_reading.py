"""Modes and twins: how the model's logits become the answer (`bukva.reading`)."""

from __future__ import annotations

import numpy as np
import pytest

from bukva import alphabet, reading
from bukva.alphabet import CLASSES, DIGITS, INDEX, LETTERS


def logits(**scores: float) -> np.ndarray:
    """One row of 43 logits: -5 everywhere but the named classes (`_3=4.0`, `з=3.0`)."""
    row = np.full((1, len(CLASSES)), -5.0)
    for name, value in scores.items():
        row[0, INDEX[name.lstrip("_")]] = value
    return row


def test_modes_are_the_documented_class_sets():
    assert alphabet.DEFAULT_MODE == "anything"
    assert list(alphabet.MODES) == ["anything", "letters", "digits"]
    assert alphabet.MODES["digits"] == DIGITS and alphabet.MODES["letters"] == LETTERS
    assert set(alphabet.MODES["anything"]) == set(CLASSES)
    with pytest.raises(ValueError, match="anything, letters, digits; got 'numbers'"):
        alphabet.check_mode("numbers")


def test_twins_pair_a_digit_with_a_letter():
    for pair in alphabet.TWINS:
        digit, letter = sorted(pair)  # digits sort before Cyrillic
        assert digit in DIGITS and letter in LETTERS, pair
    assert alphabet.are_twins("3", "з") and alphabet.are_twins("З", "3")
    assert alphabet.are_twins("о", "0") and alphabet.are_twins("ч", "4")
    assert not alphabet.are_twins("3", "ч") and not alphabet.are_twins("з", "з")


def test_anything_is_the_plain_softmax():
    row = logits(_3=4.0, з=3.0, ч=1.0)
    probs = reading.probabilities(row, "anything")
    plain = np.exp(row - row.max()) / np.exp(row - row.max()).sum()
    np.testing.assert_allclose(probs, plain)


def test_a_mode_renormalizes_over_its_classes_only():
    row = logits(з=4.0, _3=3.5, _8=1.0, ч=0.5)
    digits = reading.probabilities(row, "digits")
    assert digits[0, : len(DIGITS)].sum() == pytest.approx(1.0)
    assert not digits[0, len(DIGITS) :].any()
    # the digits keep their odds: 3 against 8 as before
    anything = reading.probabilities(row, "anything")
    ratio = anything[0, INDEX["3"]] / anything[0, INDEX["8"]]
    assert digits[0, INDEX["3"]] / digits[0, INDEX["8"]] == pytest.approx(ratio)
    top = reading.ranked(digits, 3, "digits")
    assert [CLASSES[i] for i in top[0]] == ["3", "8", "0"]
    letters = reading.ranked(reading.probabilities(row, "letters"), 2, "letters")
    assert [CLASSES[i] for i in letters[0]] == ["з", "ч"]


def test_ranks_beyond_the_modes_classes_are_empty():
    probs = reading.probabilities(logits(_7=2.0), "digits")
    top = reading.ranked(probs, 12, "digits")
    assert sorted(top[0, :10]) == list(range(10))
    assert top[0, 10:].tolist() == [reading.NO_CLASS] * 2


def test_twins_are_named_when_both_are_likely_in_mode_anything():
    ratio = reading.TWIN_RATIO
    close = np.log(ratio) + 0.05  # the twin just above the ratio of the top-1
    far = np.log(ratio) - 0.05  # just below
    rows = np.concatenate(
        [
            logits(з=0.0, _3=close),  # з or 3
            logits(_0=0.0, о=far),  # 0, о too unlikely
            logits(_3=0.0, ч=close),  # not twins
            logits(ч=0.0, _4=-0.01),  # ч or 4
        ]
    )
    probs = reading.probabilities(rows, "anything")
    found = reading.alternatives(probs, "anything")
    assert [CLASSES[i] if i != reading.NO_CLASS else "" for i in found] == ["3", "", "", "4"]
    for mode in ("letters", "digits"):  # a mode that names the kind settles it
        assert (reading.alternatives(reading.probabilities(rows, mode), mode) == -1).all()


def test_bad_mode_names_the_allowed_ones():
    with pytest.raises(ValueError, match="anything, letters, digits"):
        reading.probabilities(logits(), "Digits")
