"""core.screen and the predictions run_probes keeps for Noise Semantic Preview (pure torch, no ComfyUI)."""

import torch

from noise_semantics import core

SIG = (lambda t: t, lambda s: torch.ones_like(s))


def branches(x, sig):
    """Readable branches that depend on the probe sigma: D_uncond = x * sigma, D_cond = tanh(x) + sigma."""
    s = sig.reshape(-1, 1, 1, 1)
    du, dc = x * s, torch.tanh(x) + s
    return du + 2.0 * (dc - du), dc, du  # guided at cfg 2


def test_run_probes_keeps_the_weighted_mean_predictions():
    z = torch.randn(3, 4, 6, 6, generator=torch.manual_seed(0))
    sched = core.make_schedule(3, 0.4, 0.9)
    p = core.run_probes(z, sched, *SIG, branches, branches=True, chunk=2, denoised=True)
    wsum = sum(sched.weights)
    want = [sum(w * branches(z, torch.full((3,), t))[i] for t, w in zip(sched.taus, sched.weights)) / wsum
            for i in range(3)]
    for got, ref in zip((p.denoised, p.cond, p.uncond), want):
        torch.testing.assert_close(got, ref)
    plain = core.run_probes(z, sched, *SIG, branches, branches=True)
    assert plain.denoised is None and plain.uncond is None  # only on request: Inject does not pay for them
    torch.testing.assert_close(plain.conflict, p.conflict)


def test_screen_picks_the_least_conflict_and_refine_inject_keeps_it():
    B, m = 4, 3
    z = torch.randn(B, 4, 6, 6, generator=torch.manual_seed(1))
    cands = core.candidate_noises(z, 5, m)
    sched = core.make_schedule(1, 0.6, 0.6)
    found = core.screen(z, sched, *SIG, branches, cands, denoised=True)
    assert found.scores.shape == (m, B) and torch.equal(found.pick, found.scores.argmin(0))
    kept, probes = found.kept()
    for b in range(B):
        k = int(found.pick[b])
        assert torch.equal(kept[b], cands[k][b])
        assert torch.equal(probes.uncond[b], found.probes.uncond[k * B + b])
    report = {}
    out = core.refine_inject(z, sched, 0.0, *SIG, branches, candidates=cands, report=report)
    assert torch.equal(out, kept)
    assert torch.equal(report["screening"].pick, found.pick)
    assert torch.equal(report["screening"].scores, found.scores)
