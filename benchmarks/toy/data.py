"""The toy's data: three 2-D targets in three places (0 ring, 1 line segment, 2 two blobs), and the
fixed seed banks whose noises the training couples to their class."""
from __future__ import annotations

import math

import torch

CLASSES = ("ring", "segment", "blobs")
# Three targets in three places (the noise's preference is then also a direction to go in)
RING_C, RING_R, RING_W = torch.tensor([0.0, 1.5]), 0.6, 0.04
SEG_A, SEG_B, SEG_W = torch.tensor([-2.1, -0.5]), torch.tensor([-0.9, -1.7]), 0.03
BLOB_C, BLOB_S = torch.tensor([[0.8, -1.0], [1.9, -1.0]]), 0.1
NULL = 3  # label index of the unconditional (dropped) label

def sample_target(c: int, n: int, g: torch.Generator) -> torch.Tensor:
    if c == 0:
        a = torch.rand(n, generator=g) * 2 * math.pi
        r = RING_R + RING_W * torch.randn(n, generator=g)
        return RING_C + torch.stack([r * a.cos(), r * a.sin()], 1)
    if c == 1:
        u = torch.rand(n, 1, generator=g)
        return SEG_A + u * (SEG_B - SEG_A) + SEG_W * torch.randn(n, 2, generator=g)
    k = torch.randint(0, 2, (n,), generator=g)
    return BLOB_C[k] + BLOB_S * torch.randn(n, 2, generator=g)

def bank_noise(banks, c, j, jitter, g):
    """Noise of seed j of bank c: the seed plus a small jitter (its neighbourhood), scaled back
    to unit variance. jitter 0 = the exact seed vectors."""
    s = banks[c, j]
    return (s + jitter * torch.randn(s.shape, generator=g)) / math.sqrt(1 + jitter * jitter)
