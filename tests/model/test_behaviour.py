"""Behavioural tests of the trained model (Made-With-ML style) on drawings made by code.

Each drawing is strokes painted with the app's canvas brush between the canvas's guide lines
(`tests/support/letters.py`), then taken through `bukva.preprocess.normalize_with_geometry`
exactly as the transformer takes a canvas PNG. They test what a person drawing in the app
meets: the shapes the issue reported as misread (Г read as 5, П as о, Ж as к), the pairs a
digit and a letter share (6/ь, 4/ч, 3/з, 7, 1), case decided by size on the guides, and the
modes and twins read as the transformer reads them (`bukva.reading`): a twin drawn in the
mode of its kind is read as that kind, and in mode "anything" a twin is either right or named
beside the answer.

They need the model `dvc repro` trains (models/model); without it they skip and say so, and
fail under CI, which trains it first (tests/support/outputs.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bukva.alphabet import CLASSES, are_twins
from bukva.preprocess import normalize_with_geometry
from bukva.reading import NO_CLASS, alternatives, probabilities, ranked
from bukva.strokes import render, to_png
from tests.support.letters import canvas, strokes_on_canvas
from tests.support.outputs import require

ROOT = Path(__file__).resolve().parents[2]
MODEL_DIR = ROOT / "models" / "model"


@pytest.fixture(autouse=True, scope="module")
def _trained_model():
    require([MODEL_DIR / "model.safetensors"], "the trained model")


@pytest.fixture(scope="module")
def answer():
    """Drawing (a character drawn between the guides, or canvas pixels) -> (top-3 characters,
    uppercase probability)."""
    import torch

    from bukva.network import load
    from bukva.preprocess import decode_image

    model = load(MODEL_DIR)

    def ask(drawing: str | np.ndarray) -> tuple[list[str], float]:
        pixels = canvas(drawing) if isinstance(drawing, str) else drawing
        image = decode_image(to_png(pixels))  # the bytes the canvas would send
        x, geometry = normalize_with_geometry(image)
        with torch.inference_mode():
            logits, case = model(
                torch.from_numpy(x)[None, None], torch.from_numpy(geometry.vector())[None]
            )
        top = torch.topk(logits[0], 3).indices.tolist()
        return [CLASSES[i] for i in top], float(torch.sigmoid(case[0, 0]))

    ask.model = model
    return ask


@pytest.fixture(scope="module")
def read(answer):
    """Drawing, mode -> (top-1, the twin named beside it or ""), as the transformer reads the
    logits (`bukva.reading`)."""
    import torch

    from bukva.preprocess import decode_image

    def ask(char: str, mode: str) -> tuple[str, str]:
        x, geometry = normalize_with_geometry(decode_image(to_png(canvas(char))))
        with torch.inference_mode():
            logits, _ = answer.model(
                torch.from_numpy(x)[None, None], torch.from_numpy(geometry.vector())[None]
            )
        probs = probabilities(logits.numpy(), mode)
        top, twin = ranked(probs, 1, mode)[0, 0], alternatives(probs, mode)[0]
        return CLASSES[top], CLASSES[twin] if twin != NO_CLASS else ""

    return ask


NAMED = [
    "Г", "г", "Ґ", "П", "Ж",  # Ж drawn as an X through a stem
    "Щ", "6", "ь", "4", "ч", "3", "з", "7", "1",
]  # fmt: skip


@pytest.mark.parametrize("char", NAMED)
def test_block_drawing_is_named_right(answer, char):
    top, _ = answer(char)
    assert top[0] == char.lower(), f"{char!r} drawn as block strokes was read as {top}"


CASE_PAIRS = [
    "О", "С", "К", "Ж", "В", "П", "Ш", "Х", "Т", "Н", "М", "З",
]  # fmt: skip


@pytest.mark.parametrize("char", ["Ж", "П", "4", "ч"])
def test_label_does_not_depend_on_where_or_how_big(answer, char):
    """Invariance: the same strokes, smaller and elsewhere on the canvas, same label."""
    moved = render([s * 0.6 + (25, 15) for s in strokes_on_canvas(char)])
    assert answer(moved)[0][0] == answer(char)[0][0] == char.lower()


@pytest.mark.parametrize("capital", CASE_PAIRS)
def test_case_follows_size_on_the_guides(answer, capital):
    small = capital.lower()
    _, p_capital = answer(capital)
    _, p_small = answer(small)
    assert p_capital > 0.5, f"{capital!r} at cap height: uppercase probability {p_capital:.2f}"
    assert p_small < 0.5, f"{small!r} at x-height: uppercase probability {p_small:.2f}"


# Twins drawn as block strokes: each digit beside the letter it is taken for.
DIGIT_TWINS = ["0", "1", "3", "4", "5", "6"]
LETTER_TWINS = ["о", "О", "і", "з", "З", "ч", "Ч", "г", "Г", "ь", "Ь"]


@pytest.mark.parametrize("digit", DIGIT_TWINS)
def test_digits_mode_reads_a_twin_as_the_digit(read, digit):
    top, twin = read(digit, "digits")
    assert (top, twin) == (digit, ""), f"{digit!r} in digits mode was read as {top!r}"


@pytest.mark.parametrize("letter", LETTER_TWINS)
def test_letters_mode_reads_a_twin_as_the_letter(read, letter):
    top, twin = read(letter, "letters")
    assert (top, twin) == (letter.lower(), ""), f"{letter!r} in letters mode read as {top!r}"


@pytest.mark.parametrize("char", DIGIT_TWINS + LETTER_TWINS)
def test_anything_mode_is_right_or_names_the_twin(read, char):
    """Never one confident wrong answer between twins: the top-1 is right, or it is the twin
    and the right character is named beside it."""
    top, twin = read(char, "anything")
    truth = char.lower()
    if top != truth:
        assert are_twins(top, truth) and twin == truth, (
            f"{char!r} in mode anything: {top!r}, with {twin or 'no'} alternative"
        )
