"""`python -m pipelines.kernels`: the CPU kernels a stage process runs with (pipelines/cpu.py),
as JSON. `--fingerprint` adds `fingerprint`: a few training steps of the network on fixed
random data and numpy's `exp`, `log` and matrix products on fixed values, hashed
(`fingerprint`, ~5 s); the same value on two machines means the same arithmetic, so compare
it before comparing two `make repro` runs."""

import argparse
import hashlib
import json
import sys

from pipelines.common import PARAMS_FILE, StageError, load_params
from pipelines.cpu import describe


def training_threads(params: str = PARAMS_FILE) -> int:
    """The torch threads the train stage runs on (params.yaml `train.threads`; 1 without it)."""
    try:
        return int(load_params("train", params).get("threads", 1)) or 1
    except StageError:
        return 1


def fingerprint(steps: int = 20, threads: int | None = None) -> str:
    """sha256 (first 16 hex digits) of the weights after `steps` training steps of a network
    of params.yaml's shape (width 32, hidden 256, 3x3 pool) on fixed random data, augmented as
    training augments: every kernel training uses (the augmentation's warps, convolutions,
    the linear layers, the optimiser) in a few seconds, on the train stage's torch threads
    (`threads`, default params.yaml's: the backward pass splits its sums between them), then
    `numpy_arithmetic()` (what the drawing stages and evaluate compute with numpy). Two
    machines that print the same value run the same arithmetic; `make repro` can then give
    them the same model."""
    import torch

    from bukva.network import BukvaNet, ModelConfig
    from pipelines.augment import augment

    torch.set_num_threads(threads or training_threads())
    torch.manual_seed(0)
    model = BukvaNet(ModelConfig(width=32, hidden=256, pool=3))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(1)
    for _ in range(steps):
        images = augment(torch.rand(64, 1, 28, 28, generator=gen), 0.8, gen)
        labels = torch.randint(0, model.config.num_classes, (64,), generator=gen)
        upper = torch.randint(0, 2, (64,), generator=gen).float()
        label_logits, case_logits = model(images)
        loss = torch.nn.functional.cross_entropy(label_logits, labels)
        loss = loss + torch.nn.functional.binary_cross_entropy_with_logits(
            case_logits.reshape(-1), upper
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    digest = hashlib.sha256()
    for tensor in model.state_dict().values():
        digest.update(tensor.detach().contiguous().numpy().tobytes())
    digest.update(numpy_arithmetic())
    return digest.hexdigest()[:16]


def numpy_arithmetic() -> bytes:
    """numpy's share of the stages' arithmetic on fixed values: float64 `exp` and `log`, whose
    AVX-512 and AVX2 loops differ in the last bits, and two OpenBLAS products (a grey
    conversion's matrix-vector one and a 300x300 one, which moves with OpenBLAS's kernels and
    thread count)."""
    import numpy as np

    x = np.linspace(-30.0, 30.0, 20001)
    m = np.sin(np.arange(300 * 3, dtype=np.float64)).reshape(300, 3)
    w = np.sin(np.arange(300 * 300, dtype=np.float64)).reshape(300, 300)
    parts = [np.exp(x), np.log(np.abs(x) + 1e-3), m @ np.array([0.299, 0.587, 0.114]), w @ w]
    return b"".join(p.tobytes() for p in parts)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fingerprint", action="store_true", help="add the kernels' fingerprint")
    args = parser.parse_args()
    shown = describe()
    if args.fingerprint:
        shown["fingerprint_threads"] = threads = training_threads()
        shown["fingerprint"] = fingerprint(threads=threads)
    json.dump(shown, sys.stdout, indent=2)
    print()
