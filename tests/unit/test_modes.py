"""The core's probing, noise screening and prompt-direction injection (pure torch, no ComfyUI)."""

import pytest
import torch

from noise_semantics import core


def toy_predict(cond_shift):
    """A guided predictor with readable branches: D_uncond = 0.5 x, D_cond = D_uncond + shift(x)."""
    def predict(x, sig):
        du = 0.5 * x
        dc = du + cond_shift(x)
        return dc, dc, du  # guided at cfg 1 = cond
    return predict


SIG = (lambda t: t, lambda s: torch.ones_like(s))


def test_conflict_is_zero_for_agreement_and_grows_with_disagreement():
    u = torch.randn(3, 4, 8, 8, generator=torch.manual_seed(0))
    assert torch.allclose(core.conflict(u, u), torch.zeros(3), atol=1e-6)
    assert torch.allclose(core.conflict(-u, u), torch.full((3,), 2.0), atol=1e-5)
    other = torch.randn(3, 4, 8, 8, generator=torch.manual_seed(1))
    mid = core.conflict(u + 0.3 * other, u)
    far = core.conflict(u + 3.0 * other, u)
    assert (mid > 0).all() and (far > mid).all()


def test_run_probes_guided_equals_the_paper_aggregate():
    z = torch.randn(2, 4, 6, 6, generator=torch.manual_seed(2))
    sched = core.make_schedule(4, 0.3, 1.0)
    pred = lambda x, s: torch.tanh(x) * (1 + s.reshape(-1, 1, 1, 1))
    p = core.run_probes(z, sched, *SIG, pred)
    dirs = [core.semantic_direction(pred(z.clone(), torch.full((2,), t)), z, torch.full((2,), t))
            for t in sched.taus]
    assert torch.allclose(p.guided, core.aggregate(dirs, sched.weights), atol=1e-5)
    assert p.prompt is None and p.conflict is None and p.calls == 1


def test_prompt_direction_leaves_an_agreeing_noise_alone():
    """Where the prompt changes nothing in the prediction, the 'prompt' direction is zero and the
    noise comes back as it was (re-standardized): the do-no-harm property."""
    z = core.standardize(torch.randn(2, 4, 6, 6, generator=torch.manual_seed(3)))
    agree = toy_predict(lambda x: torch.zeros_like(x))
    out = core.refine_inject(z, core.make_schedule(3, 0.4, 1.0), 2.0, *SIG, agree, direction="prompt")
    assert torch.allclose(out, z, atol=1e-5)
    shift = torch.randn(1, 4, 6, 6, generator=torch.manual_seed(4))
    disagree = toy_predict(lambda x: shift.expand_as(x))
    moved = core.refine_inject(z, core.make_schedule(3, 0.4, 1.0), 2.0, *SIG, disagree, direction="prompt")
    cos = torch.nn.functional.cosine_similarity((moved - z).reshape(2, -1), shift.reshape(1, -1).expand(2, -1))
    assert (cos > 0.5).all()  # moved toward what the prompt adds
    assert torch.allclose(moved.reshape(2, -1).std(1, unbiased=False), torch.ones(2), atol=1e-4)


def test_screening_keeps_the_candidate_with_least_conflict():
    B = 3
    z = torch.randn(B, 4, 6, 6, generator=torch.manual_seed(5))
    cands = core.candidate_noises(z, seed=11, candidates=4)
    assert torch.equal(cands[0], z) and len(cands) == 4
    target = cands[2][1:2]  # sample 1's candidate 2 is what the "prompt" shows

    def predict(x, sig):  # cond = target everywhere; conflict is least where x already is target
        du = x.clone()
        dc = target.expand_as(x).clone()
        return dc, dc, du
    calls = []
    out = core.refine_inject(z, core.make_schedule(1), 0.0, *SIG, predict, candidates=cands,
                             on_chunk=calls.append)
    assert torch.equal(out[1], cands[2][1])
    assert calls == [1]  # every candidate in one batched probe call
    for b in (0, 2):  # the others took whichever candidate was closest, each a candidate of their own
        assert any(torch.equal(out[b], c[b]) for c in cands)


def test_candidates_are_deterministic_and_apart_from_erase_draws():
    z = torch.randn(2, 4, 6, 6, generator=torch.manual_seed(6))
    a = core.candidate_noises(z, 3, 3)
    b = core.candidate_noises(z, 3, 3)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    erase_draws = [core.extra_noise(z, 3, d) for d in range(2, 9)]
    for c in a[1:]:
        assert all(not torch.allclose(c, e) for e in erase_draws)
        assert abs(float(c.std()) - 1.0) < 0.2


def test_per_sample_strength_matches_scalar_strength_per_sample():
    z = torch.randn(2, 4, 6, 6, generator=torch.manual_seed(7))
    e = torch.randn(2, 4, 6, 6, generator=torch.manual_seed(8))
    both = core.inject(z, e, torch.tensor([0.0, 0.7]))
    assert torch.allclose(both[1:], core.inject(z[1:], e[1:], 0.7), atol=1e-6)
    assert torch.allclose(both[:1], core.standardize(z[:1]), atol=1e-6)


def test_bad_direction_names_node_input_and_fix():
    z = torch.randn(1, 4, 4, 4)
    with pytest.raises(core.NoiseSemanticsError, match=r"\[Noise Semantic Inject\] input 'direction'.*Fix"):
        core.refine_inject(z, core.make_schedule(1), 0.5, *SIG, lambda x, s: x, direction="sideways")


def test_probe_batch_split_by_rows_gives_the_unsplit_result():
    """Any rows per call that is a multiple of B (down to B, what a sampling step sends) streams the
    same TPW sums, prompt part and conflict as one call; the calls start on sample boundaries."""
    B, m = 2, 3
    z = torch.randn(B, 4, 6, 6, generator=torch.manual_seed(9))
    cands = core.candidate_noises(z, seed=4, candidates=m)
    sched = core.make_schedule(3, 0.4, 1.0)
    seen = []

    def predict(x, sig):
        seen.append(int(x.shape[0]))
        k = sig.reshape(-1, 1, 1, 1)
        return torch.tanh(x) * (1 + k), torch.tanh(x) * (1 + k) + 0.1 * x.flip(-1), torch.sin(x) * k
    one = core.refine_inject(z, sched, 0.7, *SIG, predict, candidates=cands, direction="prompt")
    assert seen == [3 * m * B]
    for rows, calls in ((B, 3 * m), (3 * B, 3), (4 * B, 3), (5, 5)):  # 5 rows round down to 4, a multiple of B
        seen.clear()
        split = core.refine_inject(z, sched, 0.7, *SIG, predict, candidates=cands, direction="prompt", rows=rows)
        assert len(seen) == calls and max(seen) <= max(B, rows // B * B)
        assert torch.allclose(split, one, atol=1e-6), rows
