"""The frontier benchmark's statistics (benchmarks/frontier/frontier.py) on runs built by hand."""
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.frontier import frontier  # noqa: E402
from benchmarks.frontier.experiment import Config, Run  # noqa: E402

P, N = 4, 200


def run(cfg, acc, div, seed, **kw):
    g = torch.Generator().manual_seed(seed)
    ok = torch.rand(P, N, generator=g) < acc
    d = torch.full((P, N), float(div)) + 0.01 * torch.randn(P, N, generator=g)
    return Run(Config(cfg, **kw), {"all": ok}, d, 40.0, 0.0)


STOCK = [run(c, a, d, i) for i, (c, a, d) in enumerate([(1, 0.5, 2.0), (2, 0.7, 1.8), (4, 0.9, 1.6)])]
ROWS = list(range(P))
IDX = frontier.bootstrap_idx(N, 300)


def test_a_point_on_stocks_curve_is_not_a_gain():
    on = run(1.5, 0.6, 1.9, 10, candidates=4)
    m = frontier.matched(on, STOCK, ROWS, IDX)
    assert abs(m["delta"]) < 0.05 and m["ci"][0] < 0 < m["ci"][1] and not m["flag"]


def test_above_and_below_the_curve_are_told_apart():
    above = frontier.matched(run(1.5, 0.9, 1.9, 11, candidates=4), STOCK, ROWS, IDX)
    below = frontier.matched(run(1.5, 0.4, 1.9, 12, candidates=4), STOCK, ROWS, IDX)
    assert above["ci"][0] > 0.15 and below["ci"][1] < -0.15
    assert frontier.verdict([above]).startswith("ABOVE")
    assert frontier.verdict([below]).startswith("below")


def test_outside_stocks_range_counts_only_when_it_dominates():
    dominates = frontier.matched(run(0.5, 0.6, 2.2, 13, inject=0.3), STOCK, ROWS, IDX)
    assert "dominates" in dominates["flag"] and dominates["ci"][0] > 0
    unknown = frontier.matched(run(0.5, 0.3, 2.2, 14, inject=0.3), STOCK, ROWS, IDX)
    assert "dominat" not in unknown["flag"] and np.isnan(unknown["ci"][0])
    assert "not compared" in frontier.verdict([unknown])


def test_fixed_and_broken_are_counted_against_the_same_cfg():
    base = STOCK[1]
    ok = base.ok["all"].clone()
    ok[0, :3] = ~ok[0, :3]
    r = Run(Config(2, candidates=2), {"all": ok}, base.div, 48.0, 0.0)
    p = frontier.paired_vs_stock(r, base, ROWS, IDX)
    flipped = base.ok["all"][0, :3]
    assert p["fixed"] == int((~flipped).sum()) and p["broken"] == int(flipped.sum())
