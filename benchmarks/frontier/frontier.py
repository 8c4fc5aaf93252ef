"""Compare a method with stock CFG at matched diversity.

Stock's frontier is its (diversity, accuracy) curve over cfg, on the same noises and prompts. A
method's point (diversity d, accuracy a) is compared with stock's accuracy interpolated at d:
delta = a - stock(d). Raising cfg trades diversity for accuracy, so only a point above that curve
is a gain a user could not get from the cfg knob. The interval is a paired bootstrap over noises
(every noise is shared by all prompts and all configurations, so noises are the units): each
replicate resamples the noises, recomputes every stock point and the method's point, and
re-interpolates. A point more diverse than stock's most diverse one is compared with that end of the
curve (clamped), and flagged; likewise at the other end."""
from __future__ import annotations

import numpy as np


def per_noise(run, rows, attr="all"):
    """Accuracy and diversity per noise (mean over the split's prompts): [N] each."""
    ok = run.ok[attr][rows].float().mean(0).numpy()
    div = run.div[rows].mean(0).numpy()
    return ok, div


def bootstrap_idx(n: int, reps: int = 1000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, size=(reps, n))


def stock_curve(stock_runs, rows, idx, attr="all"):
    """Per replicate, stock's points sorted by diversity: (divs [R, C], accs [R, C])."""
    accs, divs = [], []
    for r in stock_runs:
        a, d = per_noise(r, rows, attr)
        accs.append(a[idx].mean(1))
        divs.append(d[idx].mean(1))
    accs, divs = np.stack(accs, 1), np.stack(divs, 1)
    order = np.argsort(divs, axis=1)
    return np.take_along_axis(divs, order, 1), np.take_along_axis(accs, order, 1)


def matched(run, stock_runs, rows, idx, attr="all") -> dict:
    """delta = run's accuracy - stock's accuracy at the run's diversity, with a 95 % interval."""
    a, d = per_noise(run, rows, attr)
    ra, rd = a[idx].mean(1), d[idx].mean(1)
    sd, sa = stock_curve(stock_runs, rows, idx, attr)
    stock_at = np.array([np.interp(rd[i], sd[i], sa[i]) for i in range(len(rd))])
    delta = ra - stock_at
    point_a, point_d = float(a.mean()), float(d.mean())
    full_sd, full_sa = stock_curve(stock_runs, rows, np.arange(len(a))[None, :], attr)
    point_stock = float(np.interp(point_d, full_sd[0], full_sa[0]))
    flag = ""
    if point_d > full_sd[0, -1]:
        flag = "more diverse than any stock cfg"
    elif point_d < full_sd[0, 0]:
        flag = "less diverse than any stock cfg"
    lo, hi = np.percentile(delta, [2.5, 97.5])
    # Outside stock's diversity range the clamped comparison is one-sided: a point more diverse
    # than stock's most diverse one that is also more accurate than it dominates it (a gain), one
    # less diverse than stock's least diverse that is also less accurate is dominated (a loss);
    # anything else has no stock point to compare with.
    dominates = flag.startswith("more") and lo > 0
    dominated = flag.startswith("less") and hi < 0
    if flag and not (dominates or dominated):
        lo = hi = float("nan")
    elif flag:
        flag += ", and " + ("more accurate: dominates stock" if dominates else "less accurate: dominated")
    return {"acc": point_a, "diversity": point_d, "stock_at_div": point_stock, "delta": point_a - point_stock,
            "ci": (float(lo), float(hi)), "flag": flag}


def paired_vs_stock(run, stock_same_cfg, rows, idx, attr="all") -> dict:
    """Fixed / broken images against stock at the same cfg, and the accuracy change's interval."""
    ok, base = run.ok[attr][rows], stock_same_cfg.ok[attr][rows]
    fixed = int((ok & ~base).sum())
    broken = int((~ok & base).sum())
    d = (ok.float() - base.float()).mean(0).numpy()  # per noise
    boots = d[idx].mean(1)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return {"fixed": fixed, "broken": broken, "delta": float(d.mean()), "ci": (float(lo), float(hi))}


def verdict(points: list) -> str:
    """A method family (its points over strength / cfg) against stock's frontier. Points outside
    stock's diversity range have no matched stock point and do not count."""
    outside = sum(1 for p in points if p["flag"] and "dominat" not in p["flag"])
    points = [p for p in points if not p["flag"] or "dominat" in p["flag"]]
    note = f" ({outside} point(s) outside stock's diversity range not compared)" if outside else ""
    if not points:
        return "no point inside stock's diversity range" + note
    return _verdict(points) + note


def _verdict(points: list) -> str:
    above = [p for p in points if p["ci"][0] > 0]
    below = [p for p in points if p["ci"][1] < 0]
    counts = f"{len(above)} above, {len(below)} below, {len(points) - len(above) - len(below)} within noise"
    if above:
        best = max(above, key=lambda p: p["ci"][0])
        return (f"ABOVE stock's frontier at some setting ({counts}; best {best['delta']:+.3f} "
                f"[{best['ci'][0]:+.3f}, {best['ci'][1]:+.3f}])")
    if len(below) == len(points):
        return f"below stock's frontier at every setting ({counts})"
    return f"not above stock's frontier ({counts})"
