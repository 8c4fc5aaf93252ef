"""Arithmetic of the selector study, on verdict and score arrays only (no ComfyUI).

Units: a *block* is one prompt and 8 of its noises (compositional: the prompt's 8 noises; digits:
its 40 noises as 5 blocks). Within a block, screening with m candidates is read on the m cyclic
groups {i, i+1, ..., i+m-1 mod 8}, noise i being the sampler's own: stock = the own noise's verdict
(so stock is exactly the stored stock accuracy), selected = the verdict of the noise the score picks
(the lowest score; verdicts of every noise are stored, so nothing is resampled), oracle = any verdict
of the group is right. Capture = (selected - stock) / (oracle - stock). Bootstrap: blocks resampled
with replacement, every quantity on the same resample (paired)."""
from __future__ import annotations

import torch

BLOCK = 8


def auc(score: torch.Tensor, ok: torch.Tensor) -> float:
    """P(score of a right pair < score of a wrong pair), ties half: lower score = predicted right.
    NaN when one class is empty."""
    s, y = score.reshape(-1).double(), ok.reshape(-1).bool()
    pos, neg = s[y], s[~y]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    lt = (pos[:, None] < neg[None, :]).double().mean()
    eq = (pos[:, None] == neg[None, :]).double().mean()
    return float(lt + 0.5 * eq)


def auc_within(score: torch.Tensor, ok: torch.Tensor) -> float:
    """The same over pairs of noises of one prompt only ([P, N] arrays): what a selector needs, since it
    compares noises for the same prompt; prompt difficulty cannot help it. NaN without mixed prompts."""
    num, den = 0.0, 0.0
    for s, y in zip(score.double(), ok.bool()):
        pos, neg = s[y], s[~y]
        if len(pos) and len(neg):
            num += float((pos[:, None] < neg[None, :]).double().sum() + 0.5 * (pos[:, None] == neg[None, :]).double().sum())
            den += len(pos) * len(neg)
    return num / den if den else float("nan")


def blocks(x: torch.Tensor) -> torch.Tensor:
    """[P, N] -> [P * N/8, 8]."""
    P, N = x.shape
    assert N % BLOCK == 0, f"noises per prompt ({N}) must be a multiple of {BLOCK}"
    return x.reshape(P * (N // BLOCK), BLOCK)


def groups(m: int) -> torch.Tensor:
    """[8, m] noise indices of the cyclic groups, own noise first."""
    return (torch.arange(BLOCK)[:, None] + torch.arange(m)[None, :]) % BLOCK


def pick(score_g: torch.Tensor, rule: str = "min", margin: float = 0.0) -> torch.Tensor:
    """Index in each group ([..., m] scores) of the chosen candidate. ``min``: the lowest score.
    ``rel``: the own noise (index 0) unless the best other one is lower by more than ``margin`` x the
    own noise's score (for scores >= 0 such as the conflict, whose scale differs between models);
    ``abs``: lower by more than ``margin`` (for bounded, scale-free scores such as the classifier's)."""
    best = score_g.argmin(-1)
    if rule == "min" or margin == 0.0:
        return best
    s0 = score_g[..., 0]
    sb = score_g.gather(-1, best[..., None])[..., 0]
    keep = (s0 - sb) <= (margin * s0.abs() if rule == "rel" else margin)
    return torch.where(keep, torch.zeros_like(best), best)


def per_block(ok: torch.Tensor, score: torch.Tensor | None, m: int, rule="min", margin=0.0) -> dict:
    """Per block ([U] each): stock, selected, oracle and random-reseed accuracies over its 8 groups."""
    okb = blocks(ok).float()
    g = groups(m)
    okg = okb[:, g]                                      # [U, 8, m]
    out = {"stock": okg[..., 0].mean(1), "oracle": okg.max(-1).values.mean(1)}
    if score is not None:
        idx = pick(blocks(score)[:, g], rule, margin)    # [U, 8]
        out["selected"] = okg.gather(-1, idx[..., None])[..., 0].mean(1)
    # random reseed: a candidate picked at random, no model call; its expectation (the mean over the m
    # picks) is exact, so the control carries no draw-to-draw noise of its own
    out["random"] = okg.mean(-1).mean(1)
    return out


def capture(pb: dict, key: str = "selected", boot: int = 2000, seed: int = 0) -> dict:
    """Change vs stock and capture of the oracle headroom, with 95 % paired bootstrap intervals over blocks."""
    sel, st, orc = pb[key], pb["stock"], pb["oracle"]
    U = len(st)

    d = float(sel.mean() - st.mean())
    h = float(orc.mean() - st.mean())
    c = d / h if h > 0 else float("nan")
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, U, (boot, U), generator=g)       # the same resamples for every quantity (paired)
    ds = sel[idx].mean(1) - st[idx].mean(1)
    hs = orc[idx].mean(1) - st[idx].mean(1)
    cs = (ds / hs)[hs > 0]
    q = lambda t: [float(t.quantile(0.025)), float(t.quantile(0.975))] if len(t) else [float("nan")] * 2
    return {"acc": float(sel.mean()), "stock": float(st.mean()), "oracle": float(orc.mean()), "delta": d,
            "delta_ci": q(ds), "capture": c, "capture_ci": q(cs)}
