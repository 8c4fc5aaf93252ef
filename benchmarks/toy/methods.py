"""Erase (NLN) and Inject (TPW) on the toy's 2-vectors, with the formulas of noise_semantics/core.py."""
from __future__ import annotations

import math

import torch

from noise_semantics import core

from .models import ModelW


def nln(noises: torch.Tensor) -> torch.Tensor:
    """NLN on 2-vectors: z = sum_i z_i / sqrt(n) over dim 1 ([B, n, 2] -> [B, 2]). No per-sample
    standardization (over 2 elements it would map every vector to (+-1, -+1))."""
    return noises.sum(1) / math.sqrt(noises.shape[1])


def direction(model: ModelW, z, y, schedule):
    """TPW aggregate of the semantic directions s_k = (D_k - x_k)/sigma_k (core's formula),
    probing the network with z itself at each tau_k: x_k = z / c_in(sigma_k)."""
    dirs, ws = [], []
    for tau, w in zip(schedule.taus, schedule.weights):
        if w == 0.0:
            continue
        sig = torch.full((z.shape[0],), model.fam.sigma_of_tau(tau))
        x = z / model.fam.c_in(sig)[:, None]
        d = model.denoise(x, sig, y)
        dirs.append(core.semantic_direction(d, x, sig))
        ws.append(w)
    return core.aggregate(dirs, ws)


def inject_toy(z, e, delta, sign=+1.0, e_scale="rms", renorm=False, decorrelated=False):
    """z' = (z + sign * delta * e) / sqrt(1 + delta^2) (core.inject's formula).
    decorrelated: e first loses its component along z (core.decorrelate, the node's default).
    e_scale 'rms': e divided by its root-mean-square over the 2 elements, the 2-D analogue of
    core.inject standardizing e (unit variance per element; mean removal dropped). 'raw': e as is.
    renorm: rescale z' to the norm of z, the 2-D analogue of core.inject re-standardizing z'.
    e_scale 'core' (dim > 2 only): core.inject itself, standardization and all."""
    if e_scale == "core":
        return core.inject(z, sign * e, delta, decorrelated=decorrelated)
    if decorrelated:
        e = core.decorrelate(e, z)
    if e_scale == "rms":
        e = e / e.pow(2).mean(1, keepdim=True).sqrt().clamp_min(1e-12)
    out = (z + sign * delta * e) / math.sqrt(1 + delta * delta)
    if renorm:
        out = out * z.norm(dim=1, keepdim=True) / out.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return out


def check_against_core(model: ModelW, z, b, schedule) -> float:
    """Runs the node's own probing, core.run_probes (probes batched k-major, chunk=2), on the toy
    and compares its TPW aggregate (what core.refine_inject hands to core.inject) with the toy's
    direction(). Only the final standardized step differs (not applicable in 2-D)."""
    y = torch.full((z.shape[0],), b, dtype=torch.long)

    def predict(x, sig):
        return model.denoise(x, sig, y.repeat(x.shape[0] // z.shape[0]))

    probes = core.run_probes(z, schedule, model.fam.sigma_of_tau, model.fam.c_in, predict, chunk=2)
    return float((probes.guided - direction(model, z, y, schedule)).abs().max())
