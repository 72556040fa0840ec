"""The training loop: `fit` trains the two-headed CNN on letters and digits.

`fit` is the one training function: the `pretrain` and `train` stages and Optuna tuning
(`pipelines/tune.py`) all call it. Loss = label cross-entropy + `case_weight` x uppercase BCE,
the latter only where case is known (digits are masked). The case head also reads each image's
geometry (`bukva.geometry`), randomly resized a little, as people's writing is.

The prior: batches are drawn with every class equally likely (`balance: 1`), so the label
head's softmax is the posterior under a uniform prior over the 43 classes. The app cannot
know whether a person is drawing a digit or a letter, so no class is favoured: no offset, no
calibration on validation. Inside a class the sources are mixed in fixed shares (`mix_*`:
scanned, canvas-redrawn, font block letters), whatever their sizes.

Reproducible: seeded generators, deterministic kernels and a fixed number of threads.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from bukva.alphabet import SCANNED_CAPITALS
from bukva.geometry import CAP_HEIGHT, X_HEIGHT
from bukva.network import BukvaNet, ModelConfig, load
from pipelines.augment import augment
from pipelines.common import StageError, log
from pipelines.data import Dataset, load_prepared
from pipelines.metrics import compute_metrics, predict

# The `train` knobs that shape the network (`ModelConfig`); `pretrain` takes them from there.
NETWORK_SHAPE = ("width", "hidden", "dropout", "pool")


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
    pool: int = 1  # grid the last feature map is averaged onto (bukva.network.ModelConfig)
    ema: float = 0.0  # decay of an exponential moving average of the weights; 0 = off
    mix_scanned: float = 1.0  # share of a class's samples from scans (Rukopys, MNIST, feedback)
    mix_drawn: float = 0.0  # ... from canvas redrawings (data/drawn/train)
    mix_fonts: float = 0.0  # ... from font block letters (data/drawn/train)
    geometry_jitter: float = 0.08  # log-scale of the random size change the case head sees
    synthetic_capitals: bool = False  # small cursive shapes at capital size as capitals
    threads: int = 1  # torch threads; fixed so results do not depend on the machine's cores
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
        return ModelConfig(**{k: getattr(self, k) for k in NETWORK_SHAPE})

    @property
    def mix(self) -> dict[str, float]:
        return {"scanned": self.mix_scanned, "drawn": self.mix_drawn, "fonts": self.mix_fonts}


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


# Source of a row -> its kind for the in-class mix (`TrainParams.mix`).
SOURCE_KINDS = {
    "rukopys": "scanned",
    "mnist": "scanned",
    "synthetic-capital": "scanned",
    "feedback": "drawn",
    "rukopys-drawn": "drawn",
    "mnist-drawn": "drawn",
    "fonts": "fonts",
    "strokebuilt": "fonts",  # block letters built from strokes (pipelines/sources/strokebuilt.py)
}
# Letters whose cursive capital is the small shape written at capital size; Rukopys has no
# capitals of them, so their small glyphs at capital size stand in (`synthetic_capitals`).
SMALL_SHAPE_CAPITALS = frozenset("ґиєпсучхцшщьюя") - SCANNED_CAPITALS


def sampling_weights(train_set: Dataset, balance: float, mix: dict[str, float]) -> torch.Tensor:
    """Per-row sampling weights: each class gets mass count^(1 - balance) (balance 1: every
    class alike), split over the source kinds present in it by `mix` (renormalised), then
    evenly over that kind's rows."""
    kinds = [SOURCE_KINDS.get(r.get("source", ""), "scanned") for r in train_set.rows]
    labels = train_set.labels.tolist()
    groups: dict[tuple[int, str], int] = {}
    for label, kind in zip(labels, kinds, strict=True):
        groups[label, kind] = groups.get((label, kind), 0) + 1
    class_count: dict[int, int] = {}
    present: dict[int, float] = {}
    for (label, kind), n in groups.items():
        class_count[label] = class_count.get(label, 0) + n
        present[label] = present.get(label, 0.0) + mix.get(kind, 0.0)
    weights = []
    for label, kind in zip(labels, kinds, strict=True):
        share = mix.get(kind, 0.0) / present[label] if present[label] > 0 else 1.0
        mass = class_count[label] ** (1.0 - balance)
        weights.append(mass * share / groups[label, kind])
    return torch.tensor(weights, dtype=torch.float64)


def capital_scale(train_set: Dataset, letter: str) -> float:
    """How much a small cursive `letter` grows written as a capital: capitals stand a median
    `CAP_HEIGHT` of the Rukopys cell high, so the factor brings the median of the letter's small
    scanned glyphs there. Rukopys writers made some small letters taller than the x-height (с a
    median 0.44 of the cell, not 0.37): a flat CAP_HEIGHT / X_HEIGHT would make their capitals
    taller than any real capital. Between 1 and CAP_HEIGHT / X_HEIGHT; that when no scan."""
    heights = [
        float(train_set.geometry[i, 0])
        for i, r in enumerate(train_set.rows)
        if r["source"] == "rukopys" and r["label"] == letter and r["uppercase"] == 0
    ]
    if not heights:
        return CAP_HEIGHT / X_HEIGHT
    median = float(torch.tensor(heights).median())
    return min(max(CAP_HEIGHT / median, 1.0), CAP_HEIGHT / X_HEIGHT)


def with_synthetic_capitals(train_set: Dataset) -> Dataset:
    """The set plus, for every scanned or redrawn small glyph of `SMALL_SHAPE_CAPITALS`, the same
    image as a capital: its geometry scaled to capital size (`capital_scale`)."""
    keep = torch.tensor(
        [
            r["source"] in ("rukopys", "rukopys-drawn")
            and r["label"] in SMALL_SHAPE_CAPITALS
            and r["uppercase"] == 0
            for r in train_set.rows
        ]
    )
    if not bool(keep.any()):
        return train_set
    extra = train_set.subset(keep)
    scales = {c: capital_scale(train_set, c) for c in {r["label"] for r in extra.rows}}
    geometry = extra.geometry.clone()
    geometry[:, :2] *= torch.tensor([scales[r["label"]] for r in extra.rows])[:, None]
    rows = [r | {"source": "synthetic-capital", "uppercase": 1} for r in extra.rows]
    return train_set + Dataset(
        extra.images, extra.labels, torch.ones_like(extra.uppercase), rows, geometry
    )


def training_set(scanned_train: Dataset, drawn: str | Path, params: TrainParams) -> Dataset:
    """What the `train` stage trains on, and so every tuning trial: the scanned training split
    plus the `draw` stage's training drawings (`<drawn>/train`: canvas redrawings, font block
    letters) and, when `params.synthetic_capitals`, the synthetic capitals. The `mix_*` shares
    then pick among these sources inside each class (`sampling_weights`).

    Raises:
        StageError: the drawn training set is missing.
    """
    train_set = scanned_train + load_prepared(Path(drawn) / "train")
    if params.synthetic_capitals:
        train_set = with_synthetic_capitals(train_set)
    return train_set


def jitter_geometry(geometry: torch.Tensor, amount: float, gen: torch.Generator) -> torch.Tensor:
    """Known geometry resized and moved a little (people's size varies); unknown stays zero."""
    if amount <= 0:
        return geometry
    n = geometry.shape[0]
    scale = torch.exp((torch.rand(n, generator=gen) * 2 - 1) * amount)
    aspect = torch.exp((torch.rand(n, generator=gen) * 2 - 1) * amount)
    out = geometry.clone()
    out[:, 0] *= scale
    out[:, 1] *= scale * aspect
    out[:, 2:4] += (torch.rand(n, 2, generator=gen) * 2 - 1) * 0.05
    return out * geometry[:, 4:5]


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
    if params.threads > 0:
        torch.set_num_threads(params.threads)
    torch.use_deterministic_algorithms(True)
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
    weights = sampling_weights(train_set, params.balance, params.mix)
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
            geometry = jitter_geometry(train_set.geometry[idx], params.geometry_jitter, gen)
            logits, case = model(x, geometry)
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
            probs, upper = predict(final, val_set.images, val_set.geometry)
            val = compute_metrics(probs, upper, val_set.labels, val_set.uppercase)
            metrics["val_loss"] = float(F.nll_loss(probs.clamp_min(1e-8).log(), val_set.labels))
            metrics |= {f"val_{k}": v for k, v in val.items() if isinstance(v, float)}
        metrics["seconds"] = time.perf_counter() - started
        history.append(metrics)
        if on_epoch is not None:
            on_epoch(epoch, metrics)
    return (model if averaged is None else averaged.module).eval(), history


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
