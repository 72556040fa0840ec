"""The evaluate stage's headline figures: one short column per accuracy, top-k named by k."""

from __future__ import annotations

import pytest
import torch

from pipelines.evaluate import per_set_headlines
from pipelines.metrics import compute_metrics


@pytest.mark.parametrize("top_k", [3, 5])
def test_headlines_name_top_k_by_the_k_evaluated(top_k):
    labels = torch.tensor([0, 10, 11, 12])  # a digit and three letters
    probs = torch.full((4, 43), 0.01).scatter(1, torch.tensor([[0], [10], [5], [12]]), 0.9)
    upper = torch.tensor([0.2, 0.9, 0.1, 0.2])
    uppercase = torch.tensor([-1, 1, 0, 1])
    metrics = compute_metrics(probs, upper, labels, uppercase, top_k=top_k)
    figures = per_set_headlines({"scanned": (None, probs, upper, metrics)}, top_k)["scanned"]
    assert set(figures) == {"letters", "digits", "case", "all", f"top{top_k}"}
    assert figures["all"] == 0.75 and figures["digits"] == 1.0
    assert figures["letters"] == pytest.approx(0.6667, abs=1e-4)
    assert figures["case"] == pytest.approx(0.6667, abs=1e-4)  # the last capital read as small
