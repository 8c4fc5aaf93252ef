"""The headroom arithmetic (benchmarks/frontier/headroom.py) and the steps frontier's comparisons
(benchmarks/frontier/steps.py) on verdicts built by hand: pure, no ComfyUI."""
import itertools
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.frontier import headroom as hr  # noqa: E402
from benchmarks.frontier import steps  # noqa: E402
from benchmarks.frontier.experiment import Config, Run  # noqa: E402


def brute_oracle(ok, m):
    """Best of m by enumerating every m-subset of each prompt's noises."""
    return float(np.mean([np.mean([row[list(s)].any() for s in itertools.combinations(range(len(row)), m)])
                          for row in ok]))


def test_oracle_is_the_exact_mean_over_all_subsets():
    ok = np.random.default_rng(1).random((7, 8)) < 0.4
    for m in (1, 2, 3, 4, 8):
        assert hr.oracle(ok, m) == pytest.approx(brute_oracle(ok, m))
    assert hr.oracle(ok, 1) == pytest.approx(ok.mean())
    assert hr.oracle(ok, 8) == pytest.approx(ok.any(1).mean())
    # one right noise of four: half of the pairs contain it
    assert hr.oracle(np.array([[1, 0, 0, 0]]), 2) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        hr.oracle(ok, 9)


def test_shares_split_prompts_into_always_never_depends():
    ok = np.array([[1, 1, 1], [0, 0, 0], [1, 0, 1], [0, 0, 0]])
    s = hr.shares(ok)
    assert (s["always"], s["never"], s["depends"]) == pytest.approx((0.25, 0.5, 0.25))
    h = hr.headroom(ok, ms=(2, 3, 4))
    assert set(h["oracle"]) == {2, 3} and h["stock"] == pytest.approx(5 / 12)


def test_capture_is_the_share_of_the_oracles_gain():
    stock = np.array([[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1]], dtype=bool)
    room = hr.oracle(stock, 2) - stock.mean()
    better = stock.copy()
    better[0, 1] = True  # one image fixed
    c = hr.capture(better, stock, 2)
    assert c["delta"] == pytest.approx(1 / 12) and c["headroom"] == pytest.approx(room)
    assert c["capture"] == pytest.approx((1 / 12) / room)
    assert (c["fixed"], c["broken"]) == (1, 0)
    worse = stock.copy()
    worse[1, 0] = False
    c = hr.capture(worse, stock, 4)
    assert c["capture"] < 0 and (c["fixed"], c["broken"]) == (0, 1) and c["delta_ci"][0] < 0
    # an oracle choice of each prompt's right noise where there is one captures all of best of N
    best = np.repeat(stock.any(1, keepdims=True), 4, 1)
    assert hr.capture(best, stock, 4)["capture"] == pytest.approx(1.0)
    full = np.ones((3, 4), dtype=bool)
    assert hr.capture(full, full, 2)["capture"] is None


def test_random_reseed_fixes_and_breaks_equal_expected_numbers():
    stock = np.array([[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0]], dtype=bool)
    for m in (2, 4):
        z = hr.reseed(stock, m, draws=4000)
        # a prompt with k right of N: k (N - k) / (N - 1) * (1 - 1/m) images fixed, as many broken
        expected = (3 + 4 + 0 + 0) / 3 * (1 - 1 / m)
        assert z["expected_fixed"] == pytest.approx(expected) == z["expected_broken"]
        lo, hi = z["fixed_range"]
        assert lo <= expected <= hi and z["delta_range"][0] < 0 < z["delta_range"][1]
    # a prompt right for every noise or for none is never changed by a reseed
    z = hr.reseed(np.array([[1, 1, 1], [0, 0, 0]], dtype=bool), 4, draws=200)
    assert z["fixed_range"] == (0.0, 0.0) and z["capture"] is None


def _run(ok, evals, **kw):
    ok = torch.as_tensor(ok)
    return Run(Config(4.5, **kw), {"all": ok}, torch.zeros(ok.shape), float(evals), 0.0)


def test_steps_frontier_compares_at_equal_evaluations():
    P, N = 20, 10
    rng = np.random.default_rng(0)
    lo = rng.random((P, N)) < 0.5
    hi = lo | (rng.random((P, N)) < 0.5)
    runs = [_run(lo, 8, steps=4), _run(hi, 16, steps=8)]
    on_curve = (lo.mean() + hi.mean()) / 2
    # a method at 4 steps costing 12 evaluations, as accurate as stock's curve there, then better
    same = hi.copy()
    same[: P // 2] = lo[: P // 2]
    runs += [_run(same, 12, steps=4, candidates=4), _run(hi | ~lo, 12, steps=4, inject=0.3),
             _run(lo, 20, steps=4, erase=4)]
    a = steps.analyse(runs, reps=300)
    pts = {p["method"]: p for p in a["points"]}
    e = pts["screen m=4"]["equal_evals"]
    assert e["stock_at"] == pytest.approx(on_curve) and not e["flag"]
    assert pts["screen m=4"]["best_cheaper"]["steps"] == 4
    assert pts["screen m=4"]["same_steps"]["m"] == 4
    assert pts["inject guided 0.3"]["equal_evals"]["ci"][0] > 0
    assert "FASTER" in a["verdicts"]["inject guided 0.3"]
    assert pts["erase n=4"]["equal_evals"]["flag"].startswith("more") and pts["erase n=4"]["best_cheaper"]["steps"] == 8


def test_steps_frontier_is_stocks_best_for_the_budget():
    """Where more steps make stock worse, its frontier keeps the fewer steps' accuracy."""
    P, N = 20, 10
    rng = np.random.default_rng(3)
    hi = rng.random((P, N)) < 0.8
    lo = hi & (rng.random((P, N)) < 0.5)
    mid = hi.copy()
    mid[: P // 2] = lo[: P // 2]
    runs = [_run(hi, 8, steps=4), _run(lo, 16, steps=8), _run(mid, 16, steps=4, candidates=4)]
    p = steps.analyse(runs, reps=300)["points"][0]
    assert p["equal_evals"]["stock_at"] == pytest.approx(hi.mean()) and p["equal_evals"]["delta"] < 0
    assert p["best_cheaper"]["steps"] == 4 and p["same_steps"]["delta"] < 0
