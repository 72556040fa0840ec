"""bench.twins' digit-prior sweep: what raising every digit's logit buys and costs."""

from __future__ import annotations

import numpy as np

from bench.twins import PRIORS, prior_figures
from bukva.alphabet import CLASSES


def test_a_digit_prior_moves_a_close_twin_from_the_letter_to_the_digit():
    three, ze, a = CLASSES.index("3"), CLASSES.index("з"), CLASSES.index("а")
    logits = np.zeros((3, len(CLASSES)))
    logits[0, [ze, three]] = [5.0, 4.6]  # a drawn 3 the model puts just behind з
    logits[1, [ze, three]] = [5.0, 4.6]  # a drawn з, the same scores
    logits[2, [a, three]] = [5.0, 1.0]  # an а no small prior turns into a digit
    truth = np.array([three, ze, a])

    curve = {point["prior"]: point for point in prior_figures(logits, truth)}

    assert [point for point in PRIORS if point not in curve] == []
    assert curve[0.0] == {"prior": 0.0, "digits": 0.0, "letters": 1.0}
    assert curve[0.5] == {"prior": 0.5, "digits": 1.0, "letters": 0.5}
    assert curve[2.0]["letters"] == 0.5  # the а stays an а
