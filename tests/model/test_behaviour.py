"""Behavioural tests of the trained model (Made-With-ML style) on drawings made by code.

Each drawing is strokes painted with the app's canvas brush between the canvas's guide lines
(`tests/support/letters.py`), then taken through `bukva.preprocess.normalize_with_geometry`
exactly as the transformer takes a canvas PNG. They test what a person drawing in the app
meets: the shapes the issue reported as misread (Г read as 5, П as о, Ж as к), the pairs a
digit and a letter share (6/ь, 4/ч, 3/з, 7, 1), and case decided by size on the guides.

They need the model `dvc repro` trains (models/model); without it they skip and say so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bukva.alphabet import CLASSES
from bukva.preprocess import normalize_with_geometry
from bukva.strokes import render, to_png
from tests.support.letters import canvas, strokes_on_canvas

ROOT = Path(__file__).resolve().parents[2]
MODEL_DIR = ROOT / "models" / "model"

pytestmark = pytest.mark.skipif(
    not (MODEL_DIR / "model.safetensors").is_file(),
    reason=f"no trained model in {MODEL_DIR}: run `make repro` first",
)


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
