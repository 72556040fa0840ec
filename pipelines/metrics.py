"""Batch prediction and the metrics every stage reports (validation during training, test in
`evaluate`)."""

from __future__ import annotations

import torch

from bukva.alphabet import CLASSES
from bukva.contract import NUM_DIGITS
from bukva.network import BukvaNet


@torch.inference_mode()
def predict(
    model: BukvaNet,
    images: torch.Tensor,
    geometry: torch.Tensor | None = None,
    batch_size: int = 512,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Class probabilities [N, 43] and uppercase probabilities [N] for images [N, 1, 28, 28]
    and their geometry [N, 5] (None: unknown)."""
    model.eval()
    probs, upper = [], []
    for start in range(0, len(images), batch_size):
        end = start + batch_size
        logits, case = model(images[start:end], None if geometry is None else geometry[start:end])
        probs.append(torch.softmax(logits, dim=1))
        upper.append(torch.sigmoid(case[:, 0]))
    if not probs:
        return torch.zeros(0, len(CLASSES)), torch.zeros(0)
    return torch.cat(probs), torch.cat(upper)


def _mean(mask: torch.Tensor) -> float:
    return float(mask.float().mean()) if mask.numel() else float("nan")


def compute_metrics(
    probs: torch.Tensor,
    upper: torch.Tensor,
    labels: torch.Tensor,
    uppercase: torch.Tensor,
    top_k: int = 3,
) -> dict:
    """Accuracy overall, letters only, digits only, top-k; case accuracy where case is known;
    per-class accuracy and per-letter case accuracy."""
    pred = probs.argmax(dim=1)
    correct = pred == labels
    is_digit = labels < NUM_DIGITS
    topk = probs.topk(min(top_k, probs.shape[1]), dim=1).indices
    known = uppercase >= 0
    case_ok = (upper[known] > 0.5).long() == uppercase[known]
    per_class = {
        c: round(_mean(correct[labels == i]), 4)
        for i, c in enumerate(CLASSES)
        if bool((labels == i).any())
    }
    case_right = (upper > 0.5).long() == uppercase
    per_letter_case = {
        c: round(_mean(case_right[known & (labels == i)]), 4)
        for i, c in enumerate(CLASSES)
        if bool((known & (labels == i)).any())
    }
    return {
        "label_accuracy": _mean(correct),
        "letters_accuracy": _mean(correct[~is_digit]),
        "digits_accuracy": _mean(correct[is_digit]),
        f"top{top_k}_accuracy": _mean((topk == labels[:, None]).any(dim=1)),
        "case_accuracy": _mean(case_ok),
        "count": len(labels),
        "letters_count": int((~is_digit).sum()),
        "case_count": int(known.sum()),
        "per_class": per_class,
        "per_letter_case": per_letter_case,
    }
