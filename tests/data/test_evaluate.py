"""The evaluate stage's figures: one short column per accuracy, top-k named by k, each with its
95% Wilson interval; the combined set; the model card generated from them."""

from __future__ import annotations

import pytest
import torch

from bukva.alphabet import CLASSES
from pipelines import model_card
from pipelines.data import Dataset
from pipelines.evaluate import confusions, headline, per_set_headlines
from pipelines.metrics import COMBINED, compute_metrics, numbers, wilson


def scored(labels: list[int], said: list[int], upper: list[float], case: list[int], top_k=3):
    labels_t = torch.tensor(labels)
    probs = torch.full((len(labels), 43), 0.01).scatter(1, torch.tensor(said)[:, None], 0.9)
    upper_t, case_t = torch.tensor(upper), torch.tensor(case)
    metrics = compute_metrics(probs, upper_t, labels_t, case_t, top_k=top_k)
    ds = Dataset(
        torch.zeros(len(labels), 1, 28, 28), labels_t, case_t, [{}] * len(labels), torch.zeros(0)
    )
    return ds, probs, upper_t, metrics


@pytest.mark.parametrize("top_k", [3, 5])
def test_headlines_name_top_k_by_the_k_evaluated(top_k):
    # a digit and three letters; the last capital read as small
    result = scored([0, 10, 11, 12], [0, 10, 5, 12], [0.2, 0.9, 0.1, 0.2], [-1, 1, 0, 1], top_k)
    figures = per_set_headlines({"scanned": result}, top_k)["scanned"]
    names = ("letters", "digits", "case", "all", f"top{top_k}")
    assert set(figures) == {"n"} | {f"{n}{s}" for n in names for s in ("", "_lo", "_hi")}
    assert figures["all"] == 0.75 and figures["digits"] == 1.0 and figures["n"] == 4
    assert figures["letters"] == pytest.approx(0.6667, abs=1e-4)
    assert figures["case"] == pytest.approx(0.6667, abs=1e-4)
    # the bounds are the Wilson interval of the same counts: 3 of 4 right
    assert (figures["all_lo"], figures["all_hi"]) == tuple(round(v, 4) for v in wilson(3, 4))
    assert figures["digits_lo"] < 1.0 == figures["digits_hi"]  # one digit proves little


def test_every_accuracy_carries_its_interval_and_counts():
    _, _, _, metrics = scored([0, 1, 10, 11], [0, 2, 10, 11], [0.0, 0.0, 0.9, 0.1], [-1, -1, 1, 0])
    for name in ("label", "letters", "digits", "top3", "case"):
        low, high = metrics[f"{name}_accuracy_interval"]
        assert low <= metrics[f"{name}_accuracy"] <= high
    assert (metrics["count"], metrics["letters_count"], metrics["digits_count"]) == (4, 2, 2)
    assert metrics["digits_accuracy_interval"] == [round(v, 4) for v in wilson(1, 2)]
    flat = numbers({"label_accuracy": 0.5, "label_accuracy_interval": [0.1, 0.9], "c": {"x": 1}})
    assert flat == {
        "label_accuracy": 0.5,
        "label_accuracy_interval_low": 0.1,
        "label_accuracy_interval_high": 0.9,
        "c.x": 1.0,
    }


def test_combined_figures_count_every_image_and_the_card_shows_them():
    z = CLASSES.index("з")
    a = scored([0, 3, 10], [0, z, 10], [0.0, 0.0, 0.9], [-1, -1, 1])  # 3 read as з
    b = scored([3, z, z, 0], [z, z, z, 0], [0.0, 0.1, 0.1, 0.0], [-1, 0, 0, -1])
    ds = a[0] + b[0]
    probs, upper = torch.cat([a[1], b[1]]), torch.cat([a[2], b[2]])
    both = (ds, probs, upper, compute_metrics(probs, upper, ds.labels, ds.uppercase))
    results = {"scanned": a, "canvas": b, COMBINED: both}
    metrics = headline(results)
    assert metrics["count"] == 3 and metrics[COMBINED]["count"] == 7
    assert metrics[COMBINED]["label_accuracy"] == pytest.approx(5 / 7)
    assert "per_class" not in metrics[COMBINED]
    mistakes = confusions(results)
    assert mistakes == [{"actual": "3", "predicted": "з", "count": 2, "share": 1.0}]
    card = model_card.render(metrics, mistakes)
    assert "- 3 read as з: 2 times (100.0% of the 3 images)" in card
    low, high = metrics[COMBINED]["label_accuracy_interval"]
    assert f"71.4% [{100 * low:.1f}%, {100 * high:.1f}%] (n=7)" in card
    for needed in ("Intended use", "CC BY-SA 3.0", "Licence: none stated", "not for"):
        assert needed in card


def test_the_card_names_every_training_font_licence():
    from pipelines.sources.fonts import LICENCES, TRAIN_FONTS

    assert {LICENCES[p] for p in TRAIN_FONTS.values()} <= set(model_card.FONT_LICENCES)
