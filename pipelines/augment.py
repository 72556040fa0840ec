"""Augmentation on tensors (no torchvision): affine + elastic warp, then stroke width.

Everything draws from a `torch.Generator`, so a given seed gives the same batches.
`strength` scales every magnitude; 0 turns augmentation off.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

MAX_ROTATION = math.radians(12)
MAX_SHEAR = 0.25
MAX_LOG_SCALE = 0.12  # zoom in/out by up to ~13%
MAX_ASPECT = 0.10  # extra stretch along one axis
MAX_SHIFT = 0.08  # in [-1, 1] grid units (~1 px)
ELASTIC_ALPHA = 0.035  # displacement, grid units
ELASTIC_GRID = 4  # coarse random field, upsampled smoothly


def _uniform(n: int, limit: float, gen: torch.Generator) -> torch.Tensor:
    return (torch.rand(n, generator=gen) * 2 - 1) * limit


def affine_grid(theta: torch.Tensor, size: int) -> torch.Tensor:
    """`F.affine_grid(theta, [n, 1, size, size], align_corners=False)` with elementwise
    products and sums instead of its batched matrix product, which torch hands to MKL, whose
    code depends on the CPU's vendor (`bukva.network.Linear` says why that matters). Equal to
    it up to float rounding (tests/unit/test_kernels.py)."""
    base = (torch.arange(size, dtype=theta.dtype) * 2 + 1) / size - 1  # pixel centres
    xs, ys = base.view(1, 1, size), base.view(1, size, 1)
    t = theta.view(-1, 6, 1, 1)
    gx = t[:, 0] * xs + t[:, 1] * ys + t[:, 2]
    gy = t[:, 3] * xs + t[:, 4] * ys + t[:, 5]
    return torch.stack([gx, gy], dim=-1)


def random_grid(n: int, strength: float, gen: torch.Generator) -> torch.Tensor:
    """Sampling grid [n, 28, 28, 2] for a random affine plus elastic warp."""
    angle = _uniform(n, MAX_ROTATION * strength, gen)
    shear = _uniform(n, MAX_SHEAR * strength, gen)
    scale = torch.exp(_uniform(n, MAX_LOG_SCALE * strength, gen))
    aspect = torch.exp(_uniform(n, MAX_ASPECT * strength, gen))
    sx, sy = scale * aspect, scale / aspect
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.zeros(n, 2, 3)
    # inverse map: output coords -> input coords
    theta[:, 0, 0] = cos / sx
    theta[:, 0, 1] = (-sin + shear * cos) / sx
    theta[:, 1, 0] = sin / sy
    theta[:, 1, 1] = (cos + shear * sin) / sy
    theta[:, :, 2] = torch.stack([_uniform(n, MAX_SHIFT * strength, gen) for _ in range(2)], 1)
    grid = affine_grid(theta, 28)
    coarse = torch.randn(n, 2, ELASTIC_GRID, ELASTIC_GRID, generator=gen) * ELASTIC_ALPHA * strength
    field = F.interpolate(coarse, size=(28, 28), mode="bicubic", align_corners=True)
    return grid + field.permute(0, 2, 3, 1)


def stroke_jitter(x: torch.Tensor, strength: float, gen: torch.Generator) -> torch.Tensor:
    """Thicken or thin each image's strokes by a random fraction of one 3x3 step."""
    n = x.shape[0]
    thick = F.max_pool2d(x, 3, stride=1, padding=1)
    thin = -F.max_pool2d(-x, 3, stride=1, padding=1)
    t = _uniform(n, 0.6 * strength, gen).view(n, 1, 1, 1)
    return torch.where(t > 0, x + t * (thick - x), x + (-t) * (thin - x))


def augment(x: torch.Tensor, strength: float, gen: torch.Generator) -> torch.Tensor:
    """A randomly warped, re-stroked copy of the batch x [N, 1, 28, 28] (values stay 0-1)."""
    if strength <= 0:
        return x
    warped = F.grid_sample(
        x,
        random_grid(x.shape[0], strength, gen),
        mode="bilinear",
        padding_mode="zeros",
        align_corners=False,
    )
    return stroke_jitter(warped, strength, gen).clamp_(0.0, 1.0)
