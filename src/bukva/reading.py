"""From the model's label logits to the answer a person reads: restricted to what they say they
are drawing (a mode), ranked, and honest about digit/letter twins.

numpy only. The transformer answers with these functions and the behavioural tests check the
trained model through them, so both read the model the same way.

- **Modes** (`bukva.alphabet.MODES`): the answer comes only from the mode's classes. Their
  probabilities are renormalized over that set, a softmax over their logits alone: the model's
  posterior given that the drawing is one of them (the label head's prior is uniform over the
  43 classes, so conditioning on a subset needs no other correction). In mode "anything" this
  is the plain softmax.
- **Twins** (`bukva.alphabet.TWINS`): in mode "anything", when the top-2 are a digit and its
  letter twin and the second is at least `TWIN_RATIO` times as likely as the first, the second
  is the answer's `alternative` ("з or 3"). A mode that names the kind settles it instead.
"""

from __future__ import annotations

import numpy as np

from bukva.alphabet import CLASSES, MODES, are_twins, check_mode

# The second of a twin pair is named beside the first when its probability is at least this
# fraction of the first one's. Measured on the three evaluation sets (`python -m bench.twins`,
# docs/serving.md "Modes and twins"): at 0.2 and above, about one in four or more of the
# answers it adds a twin to are real mix-ups; below 0.2 fewer than one in ten. At 0.2 it names
# the right reading for 130 of 165 twin mix-ups (3 Dec 2026 champion, trained on 2 threads)
# and adds a twin to 398 right answers of 3832 images.
TWIN_RATIO = 0.2

NO_CLASS = -1  # a rank with no class: the mode has fewer classes than asked for
MASKS: dict[str, np.ndarray] = {
    mode: np.array([c in chars for c in CLASSES]) for mode, chars in MODES.items()
}
TWIN_TABLE = np.array([[are_twins(a, b) for b in CLASSES] for a in CLASSES])


def probabilities(logits: np.ndarray, mode: str) -> np.ndarray:
    """[N, 43] label logits -> [N, 43] float64 probabilities over the mode's classes (zero for
    the others), each row summing to 1.

    Raises:
        ValueError: the mode is not one of `MODES` (naming the allowed ones).
    """
    allowed = MASKS[check_mode(mode)]
    masked = np.where(allowed, np.asarray(logits, dtype=np.float64), -np.inf)
    shifted = np.exp(masked - masked.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def ranked(probs: np.ndarray, k: int, mode: str) -> np.ndarray:
    """[N, k] class indices, most likely first (ties: lower index first); ranks beyond the
    mode's class count are `NO_CLASS`."""
    top = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    count = int(MASKS[check_mode(mode)].sum())
    if k > count:
        top[:, count:] = NO_CLASS
    return top


def alternatives(probs: np.ndarray, mode: str, ratio: float = TWIN_RATIO) -> np.ndarray:
    """[N] class index of each answer's twin reading, or `NO_CLASS` where there is none.

    A row has one when the mode is "anything", its two most likely classes are twins
    (`bukva.alphabet.TWINS`) and the second's probability is at least `TWIN_RATIO` times the
    first's (`ratio`: another value only to measure the rule, `bench.twins`). Whatever top-k
    the request asked for, the rule reads the top-2.
    """
    none = np.full(len(probs), NO_CLASS)
    if check_mode(mode) != "anything" or not len(probs):
        return none
    first, second = ranked(probs, 2, mode).T
    rows = np.arange(len(probs))
    close = probs[rows, second] >= ratio * probs[rows, first]
    return np.where(close & TWIN_TABLE[first, second], second, none)
