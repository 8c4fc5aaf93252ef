"""How close samples are to the intended target: distance to its support (precision) and the
sliced Wasserstein distance to its true samples."""
from __future__ import annotations

import torch

from .data import BLOB_C, RING_C, RING_R, SEG_A, SEG_B


def support_distance(x: torch.Tensor, c: int) -> torch.Tensor:
    """Distance of each point to the target's support (ring circle, segment, nearest blob
    centre): a precision measure, independent of coverage."""
    if c == 0:
        return ((x - RING_C).norm(dim=1) - RING_R).abs()
    if c == 1:
        d = SEG_B - SEG_A
        u = ((x - SEG_A) @ d / (d @ d)).clamp(0, 1)
        return (x - (SEG_A + u[:, None] * d)).norm(dim=1)
    return torch.cdist(x, BLOB_C).min(dim=1).values


def sliced_w2(x: torch.Tensor, ref: torch.Tensor, proj: torch.Tensor) -> float:
    """Sliced 2-Wasserstein distance, quantiles of ``ref`` at ``x``'s levels."""
    px = (x @ proj.T).sort(dim=0).values
    q = (torch.arange(x.shape[0], dtype=torch.float32) + 0.5) / x.shape[0]
    pr = torch.quantile(ref @ proj.T, q, dim=0)
    return float(((px - pr) ** 2).mean().sqrt())
