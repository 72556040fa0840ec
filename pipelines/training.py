"""The training loop: `fit` trains the two-headed CNN on letters and digits.

`fit` is the one training function: the `pretrain` and `train` stages and Optuna tuning
(`pipelines/tune.py`) all call it. Loss = label cross-entropy + `case_weight` x uppercase BCE,
the latter only on letters whose case is known (digits and lowercase-only letters are masked).
Classes are re-balanced by sampling; augmentation runs on tensors, seeded.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from bukva.contract import NUM_DIGITS
from bukva.network import BukvaNet, ModelConfig, load
from pipelines.augment import augment
from pipelines.common import StageError, log
from pipelines.data import Dataset
from pipelines.metrics import compute_metrics, predict


@dataclass(frozen=True)
class TrainParams:
    """Every knob of `fit`; `params.yaml` sections `pretrain` and `train` fill it."""

    epochs: int = 30
    batch_size: int = 128
    samples_per_epoch: int = 0  # 0: one pass over the training set
    balance: float = 0.0  # sampling weight ~ class count^-balance
    optimizer: str = "adamw"
    lr: float = 0.003
    schedule: str = "onecycle"
    weight_decay: float = 0.0005
    label_smoothing: float = 0.0
    case_weight: float = 1.0
    aug_strength: float = 1.0
    width: int = 32
    hidden: int = 256
    dropout: float = 0.3
    ema: float = 0.0  # decay of an exponential moving average of the weights; 0 = off
    digit_prior: bool = False  # calibrate the digits' logit offset on validation after training
    seed: int = 7

    @classmethod
    def from_dict(cls, values: dict) -> TrainParams:
        """Build from a params.yaml section, rejecting unknown keys by name."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise StageError(f"unknown training parameter(s): {', '.join(unknown)}")
        params = cls(**values)
        if params.optimizer not in ("adamw", "sgd"):
            raise StageError(f"optimizer must be adamw or sgd, got {params.optimizer!r}")
        if params.schedule not in ("onecycle", "cosine"):
            raise StageError(f"schedule must be onecycle or cosine, got {params.schedule!r}")
        return params

    @property
    def model_config(self) -> ModelConfig:
        return ModelConfig(width=self.width, hidden=self.hidden, dropout=self.dropout)


EpochCallback = Callable[[int, dict], None]


def body_state(pretrained: str | Path, params: TrainParams) -> dict:
    """The pretrained body's weights; the heads start fresh (pretraining saw digits only, so
    its label head has learnt that no letter ever occurs).

    Raises:
        StageError: the pretrained network has another shape than `params` asks for.
    """
    model = load(pretrained)
    if model.config != params.model_config:
        raise StageError(
            f"{pretrained} was pretrained with {model.config}, but params.yaml "
            f"asks for {params.model_config}; re-run the pretrain stage"
        )
    return {k: v for k, v in model.state_dict().items() if k.startswith("body.")}


def _sampling_weights(labels: torch.Tensor, balance: float) -> torch.Tensor:
    counts = torch.bincount(labels).float().clamp(min=1)
    return counts[labels] ** -balance


def _optimizer(model: BukvaNet, p: TrainParams) -> torch.optim.Optimizer:
    if p.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(), lr=p.lr, momentum=0.9, nesterov=True, weight_decay=p.weight_decay
        )
    return torch.optim.AdamW(model.parameters(), lr=p.lr, weight_decay=p.weight_decay)


def _scheduler(opt: torch.optim.Optimizer, p: TrainParams, steps: int):
    if p.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=p.lr, total_steps=steps, pct_start=0.2)


def loss_fn(
    logits: torch.Tensor,
    case: torch.Tensor,
    labels: torch.Tensor,
    upper: torch.Tensor,
    p: TrainParams,
) -> torch.Tensor:
    """Label cross-entropy plus the uppercase loss on rows whose case is known."""
    loss = F.cross_entropy(logits, labels, label_smoothing=p.label_smoothing)
    known = upper >= 0
    if p.case_weight > 0 and bool(known.any()):
        loss = loss + p.case_weight * F.binary_cross_entropy_with_logits(
            case[known, 0], upper[known].float()
        )
    return loss


def fit(
    params: TrainParams,
    train_set: Dataset,
    val_set: Dataset | None = None,
    init_state: dict | None = None,
    on_epoch: EpochCallback | None = None,
) -> tuple[BukvaNet, list[dict]]:
    """Train a BukvaNet; return it (eval mode) and one metrics dict per epoch.

    Args:
        init_state: a state dict to start from (the pretrained body), or None.
        on_epoch: called as on_epoch(epoch, metrics) after each epoch; an exception it raises
            (for example optuna.TrialPruned) stops training and propagates.
    """
    torch.manual_seed(params.seed)
    gen = torch.Generator().manual_seed(params.seed)
    model = BukvaNet(params.model_config)
    if init_state is not None:
        missing, unexpected = model.load_state_dict(init_state, strict=False)
        if unexpected or any(not k.startswith(("label_head.", "case_head.")) for k in missing):
            raise StageError(
                f"initial weights do not fit the network: missing {missing}, "
                f"unexpected {unexpected}"
            )
    per_epoch = params.samples_per_epoch or len(train_set)
    steps_per_epoch = max(1, per_epoch // params.batch_size)
    opt = _optimizer(model, params)
    sched = _scheduler(opt, params, params.epochs * steps_per_epoch)
    weights = _sampling_weights(train_set.labels, params.balance)
    averaged = None
    if params.ema > 0:  # the averaged copy (buffers too) is what gets evaluated and returned
        averaged = AveragedModel(
            model, multi_avg_fn=get_ema_multi_avg_fn(params.ema), use_buffers=True
        )
    history = []
    for epoch in range(1, params.epochs + 1):
        started = time.perf_counter()
        model.train()
        order = torch.multinomial(
            weights, steps_per_epoch * params.batch_size, replacement=True, generator=gen
        )
        total = 0.0
        for step in range(steps_per_epoch):
            idx = order[step * params.batch_size : (step + 1) * params.batch_size]
            x = augment(train_set.images[idx], params.aug_strength, gen)
            logits, case = model(x)
            loss = loss_fn(logits, case, train_set.labels[idx], train_set.uppercase[idx], params)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if averaged is not None:
                averaged.update_parameters(model)
            total += loss.item()
        final = model if averaged is None else averaged.module
        metrics = {"train_loss": total / steps_per_epoch, "lr": sched.get_last_lr()[0]}
        if val_set is not None and len(val_set):
            probs, upper = predict(final, val_set.images)
            val = compute_metrics(probs, upper, val_set.labels, val_set.uppercase)
            metrics["val_loss"] = float(F.nll_loss(probs.clamp_min(1e-8).log(), val_set.labels))
            metrics |= {f"val_{k}": v for k, v in val.items() if isinstance(v, float)}
        metrics["seconds"] = time.perf_counter() - started
        history.append(metrics)
        if on_epoch is not None:
            on_epoch(epoch, metrics)
    final = (model if averaged is None else averaged.module).eval()
    if params.digit_prior and val_set is not None and bool((val_set.labels >= NUM_DIGITS).any()):
        offset, score = calibrate_digit_prior(final, val_set)
        history[-1] |= {"digit_offset": offset, "val_balanced_accuracy": score}
    return final, history


DIGIT_OFFSETS = tuple(x / 4 for x in range(0, 13))  # 0 .. 3 in steps of 0.25


def calibrate_digit_prior(model: BukvaNet, val_set: Dataset) -> tuple[float, float]:
    """Shift the digit logits so letters and digits are judged on an equal footing.

    Training over-samples letters (15-50 images each against hundreds per digit), which moves
    ambiguous shapes (6/ь, 0/о, 3/з) towards letters. A constant offset on the ten digit logits
    undoes that prior; it is chosen on the validation split to maximise the mean of letter and
    digit accuracy, and written into the label head's bias, so served logits include it.

    Returns:
        The offset and the balanced validation accuracy it reaches.
    """
    probs, _ = predict(model, val_set.images)
    logp = probs.clamp_min(1e-12).log()
    digits = val_set.labels < NUM_DIGITS
    best = (0.0, -1.0)
    for offset in DIGIT_OFFSETS:
        shifted = logp.clone()
        shifted[:, :NUM_DIGITS] += offset
        correct = shifted.argmax(dim=1) == val_set.labels
        score = (correct[digits].float().mean() + correct[~digits].float().mean()) / 2
        if float(score) > best[1] + 1e-9:
            best = (offset, float(score))
    with torch.no_grad():
        model.label_head.bias[:NUM_DIGITS] += best[0]
    return best


def epoch_line(epoch: int, total: int, m: dict) -> str:
    """One progress line: loss, validation accuracies, time."""
    parts = [f"epoch {epoch}/{total}", f"loss {m['train_loss']:.4f}"]
    for key in (
        "val_label_accuracy",
        "val_letters_accuracy",
        "val_digits_accuracy",
        "val_case_accuracy",
    ):
        if key in m and m[key] == m[key]:  # skip NaN (no letters or no case in the split)
            parts.append(f"{key[4:].replace('_accuracy', '')} {m[key]:.4f}")
    return " | ".join(parts) + f" | {m['seconds']:.1f}s"


def reporter(stage: str, epochs: int, log_metrics: Callable[..., None]) -> EpochCallback:
    """An `on_epoch` for a stage: one progress line, and the epoch's metrics into its run
    (`log_metrics(metrics, step=epoch)`)."""

    def report(epoch: int, metrics: dict) -> None:
        log(stage, epoch_line(epoch, epochs, metrics))
        log_metrics(metrics, step=epoch)

    return report
