"""How much choosing the noise could gain, and how much of it a method takes (issue 15 item 1).

All of it is read from the per-noise verdicts the frontier benchmarks store: ``ok`` is a bool array
[P, N], one row per prompt, one column per noise (every prompt shares the same N noises).

Definitions (written down in docs/compositional.md too):

- **oracle best of m**: for each prompt, m of its N stored noises drawn uniformly without
  replacement; the oracle keeps one the judge finds right if there is one. Its accuracy is the exact
  expectation over all C(N, m) subsets: a prompt with k right noises of N is missed with probability
  C(N - k, m) / C(N, m). Best of 1 is stock's accuracy; best of N is the share of prompts with at least
  one right noise.
- **always / never / depends**: shares of prompts right for every noise (k = N), for none (k = 0),
  and the rest.
- **capture** of a method with m candidates (m = 2 for a method that moves one noise, such as
  injection: one noise and the one it becomes) = (method - stock) / (oracle best of m - stock), both at
  the same cfg on the same prompts and noises. 1 = the oracle's gain; 0 = stock; negative = worse than
  stock. Undefined where stock has no headroom.
- **random reseed** control with m candidates: every image keeps its own noise with probability 1/m,
  otherwise takes one of the other N - 1 stored noises at random; no model call, no information. Its
  expected accuracy is stock's, its capture 0; it fixes and breaks images in equal expected numbers,
  k (N - k) (N - 1)^-1 (1 - 1/m) of each for a prompt with k right noises. It is the null for a method's
  fixed / broken counts.

Intervals are a paired two-way bootstrap: each replicate resamples the prompts and the noises (with
replacement), the same indices for the method, stock and the oracle, so prompt-to-prompt and
noise-to-noise variation both count. Pure numpy; the selectors study can import it."""
from __future__ import annotations

from math import comb

import numpy as np

MS = (2, 4, 8)


def _np(ok) -> np.ndarray:
    return np.asarray(ok.numpy() if hasattr(ok, "numpy") else ok).astype(bool)


def miss_table(n: int, m: int) -> np.ndarray:
    """[n + 1]: probability that m noises drawn from n, k of them right, are all wrong, for k = 0..n."""
    if not 1 <= m <= n:
        raise ValueError(f"best of m needs 1 <= m <= N noises, got m={m}, N={n}")
    return np.array([comb(n - k, m) / comb(n, m) for k in range(n + 1)])


def oracle(ok, m: int) -> float:
    """Oracle best of m (exact expectation over all m-subsets of each prompt's noises)."""
    ok = _np(ok)
    k = ok.sum(1)
    return float((1.0 - miss_table(ok.shape[1], m)[k]).mean())


def shares(ok) -> dict:
    ok = _np(ok)
    k, n = ok.sum(1), ok.shape[1]
    always, never = float((k == n).mean()), float((k == 0).mean())
    return {"always": always, "never": never, "depends": 1.0 - always - never}


def headroom(ok, ms=MS) -> dict:
    """Stock's accuracy, its oracle best of m for each m that fits, and the shares."""
    ok = _np(ok)
    return {"stock": float(ok.mean()), "oracle": {m: oracle(ok, m) for m in ms if m <= ok.shape[1]}} | shares(ok)


def boot_idx(p: int, n: int, reps: int = 1000, seed: int = 0) -> tuple:
    """Two-way bootstrap indices: prompts [R, P] and noises [R, N]."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, p, size=(reps, p)), rng.integers(0, n, size=(reps, n))


def _resample(ok: np.ndarray, idx) -> np.ndarray:
    rows, cols = idx
    return ok[rows[:, :, None], cols[:, None, :]]  # [R, P, N]


def method_m(config) -> int:
    """The candidates a method chooses among: its screening candidates, else 2 (one noise and the one
    the refinement makes of it)."""
    return config.candidates if config.candidates > 1 else 2


def capture(method_ok, stock_ok, m: int, idx=None) -> dict:
    """delta = method - stock, headroom = oracle best of m - stock, capture = delta / headroom, each
    with its 95 % interval (``idx`` from ``boot_idx``; replicates without headroom are left out of the
    capture's interval)."""
    a, s = _np(method_ok), _np(stock_ok)
    if a.shape != s.shape:
        raise ValueError(f"method and stock verdicts differ in shape: {a.shape} vs {s.shape}")
    idx = idx if idx is not None else boot_idx(*s.shape)
    table = miss_table(s.shape[1], m)
    delta = float(a.mean() - s.mean())
    room = oracle(s, m) - float(s.mean())
    ra, rs = _resample(a, idx), _resample(s, idx)
    d = ra.mean((1, 2)) - rs.mean((1, 2))
    h = (1.0 - table[rs.sum(2)]).mean(1) - rs.mean((1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.where(h > 1e-12, d / np.where(h > 1e-12, h, 1.0), np.nan)
    out = {"m": m, "delta": delta, "delta_ci": _pct(d), "headroom": room, "headroom_ci": _pct(h),
           "capture": delta / room if room > 1e-12 else None, "capture_ci": _pct(c[~np.isnan(c)]) if room > 1e-12 else None,
           "fixed": int((a & ~s).sum()), "broken": int((~a & s).sum())}
    return out


def _pct(x) -> tuple | None:
    x = np.asarray(x)
    if x.size == 0:
        return None
    lo, hi = np.percentile(x, [2.5, 97.5])
    return (float(lo), float(hi))


def reseed(stock_ok, m: int, draws: int = 1000, seed: int = 0, idx=None) -> dict:
    """The random-reseed control with m candidates (see the module's docstring): expected fixed and
    broken counts (exact), and over ``draws`` simulated reseeds their 95 % range, and the range of the
    realised accuracy change and capture."""
    s = _np(stock_ok)
    P, N = s.shape
    k = s.sum(1)
    move = (1.0 - 1.0 / m) / (N - 1)
    expected = float((k * (N - k)).sum() * move)
    rng = np.random.default_rng(seed)
    keep = rng.random((draws, P, N)) < 1.0 / m
    # another noise, uniform over the other N - 1: an offset 1..N-1 from the image's own column
    other = (np.arange(N)[None, None, :] + rng.integers(1, N, size=(draws, P, N))) % N
    cols = np.where(keep, np.arange(N)[None, None, :], other)
    new = np.take_along_axis(np.broadcast_to(s, (draws, P, N)), cols, 2)
    fixed = (new & ~s).sum((1, 2))
    broken = (~new & s).sum((1, 2))
    d = new.mean((1, 2)) - s.mean()
    room = oracle(s, m) - float(s.mean()) if m <= N else 0.0
    return {"m": m, "expected_fixed": expected, "expected_broken": expected,
            "fixed_range": _pct(fixed), "broken_range": _pct(broken), "delta": 0.0, "delta_range": _pct(d),
            "capture": 0.0 if room > 1e-12 else None,
            "capture_range": _pct(d / room) if room > 1e-12 else None}
