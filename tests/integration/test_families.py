"""Every model family of tests/families.py through a real KSampler (nodes.common_ksampler), with the
pack's Erase (samples 2) and Inject (strength 0.5, two probes, screening two candidates) nodes:

(a) the sampler starts from the refined noise, recomputed independently: stock prepare_noise, the
    candidates, core.erase, then one unbatched guided call per candidate and probe;
(b) the probes cost what the bound says: K probes of m candidates for B latents are at most K guided
    calls (probe_rows splits only when memory is short); here one guided call, i.e. the model
    evaluations of one sampling step (cond and uncond batched, as the sampler's own steps), and the
    sampling steps themselves are unchanged;
(c) bypassed (the input model, after the pack has run on a clone) and at the nodes' defaults
    (Erase 1, Inject 0), the output is the stock output bit for bit.

A family this ComfyUI does not have is skipped with the reason; the README's "Model families" table
lists which ran where."""
import pytest
import torch

import comfy.patcher_extension as pe
import comfy.sample
import nodes

import families
import probes
from noise_semantics import core

SEED = 4321
STEPS = 2
K, M, N = 2, 2, 2  # probes, screening candidates, Erase samples
STRENGTH = 0.5


def node(node_id, **inputs):
    cls = nodes.NODE_CLASS_MAPPINGS[node_id]
    out = cls.execute(**inputs)
    return out.result[0]


def family(name):
    fam = families.FAMILIES[name]
    if not fam.present():
        pytest.skip(f"{fam.title}: comfy.supported_models.{fam.config_class} is not in this ComfyUI")
    return fam


def ksample(model, fam, lat, cfg=3.0):
    pos, neg = fam.conditioning()
    return nodes.common_ksampler(model, SEED, STEPS, cfg, "euler", "normal", pos, neg, lat)[0]["samples"]


def refined(model, sched):
    m = node("NoiseSemanticErase", model=model, samples=N, restandardize=True)
    return node("NoiseSemanticInject", model=m, strength=STRENGTH, decorrelate=True, schedule=sched, candidates=M)


def schedule():
    return node("NoiseSemanticTemporalSchedule", probes=K, tau_min=0.5, tau_max=1.0, weighting="bump",
                center=0.8, half_width=0.5, flatness=1.0)


def expected(rec, lat, sched):
    """The refined noise from scratch: candidates of the stock noise, each erased, each probed one
    probe per guided call with the test's own post-CFG hook reading both branches, the candidate of
    least weighted conflict kept per sample, then injected along its TPW direction."""
    ms = rec["guider"].inner_model.model_sampling
    predict = probes.branch_predict(rec)
    z = comfy.sample.prepare_noise(lat, SEED)
    best = None
    for c in core.candidate_noises(z, SEED, M):
        c = core.erase(c, SEED, N, True)
        dirs, conf = [], 0
        for tau, w in zip(sched.taus, sched.weights):
            sig = torch.full((c.shape[0],), probes.probe_sigma(ms, tau))
            x = c / ms.calculate_input(sig, torch.ones_like(c))
            d, dc, du = predict(x, sig)
            dirs.append(core.semantic_direction(d, x, sig))
            conf = conf + core.conflict(dc, du) * w
        conf = conf / sum(sched.weights)
        e = core.aggregate(dirs, sched.weights)
        if best is None:
            best = (c, e, conf)
        else:
            pick = conf < best[2]
            wide = pick.reshape((-1,) + (1,) * (c.ndim - 1))
            best = (torch.where(wide, c, best[0]), torch.where(wide, e, best[1]), torch.where(pick, conf, best[2]))
    return core.inject(best[0], best[1], STRENGTH, True)


@pytest.mark.parametrize("name", [n for n, f in families.FAMILIES.items() if f.inject])
def test_family_starts_from_the_refined_noise_within_the_call_bound(name):
    fam = family(name)
    base = fam.model()
    lat = fam.latent()
    stock_model, count0 = probes.count_calls(base)
    stock = ksample(stock_model, fam, lat)

    sched = schedule()
    spent = {}

    def inspect(rec):  # the recomputation's own model calls are counted apart from the pack's
        start = count.calls
        out = expected(rec, lat["samples"], sched)
        spent["inspect"] = (start, count.calls)
        return out
    patched, count = probes.count_calls(probes.capture(refined(base, sched), "fam", inspect=inspect))
    out = ksample(patched, fam, lat)
    rec = probes.RECORDS["fam"][0]

    # (a) the refined noise, recomputed independently; still a unit Gaussian sample, float32 like stock
    z0 = comfy.sample.prepare_noise(lat["samples"], SEED)
    assert rec["noise"].dtype == z0.dtype == torch.float32
    assert not torch.allclose(rec["noise"], z0)
    assert torch.allclose(rec["noise"], rec["inspect"], atol=2e-4), (rec["noise"] - rec["inspect"]).abs().max()
    assert abs(float(rec["noise"].std()) - 1) < 1e-3
    assert torch.isfinite(out).all() and not torch.equal(out, stock)

    # (b) the probes of all candidates in one guided call: the evaluations of one sampling step
    per_step = count0.calls // STEPS
    assert count0.calls == per_step * STEPS and per_step >= 1
    a, b = spent["inspect"]
    pack = count.batches[:a]  # the pack's probes run before the capture wrapper inside it
    assert len(pack) == per_step <= K * per_step
    assert sum(pack) == 2 * K * M * lat["samples"].shape[0]
    assert count.batches[b:] == count0.batches

    # (c) bypassed and at the defaults: stock, bit for bit
    assert torch.equal(ksample(base, fam, lat), stock)
    defaults = node("NoiseSemanticInject", model=node("NoiseSemanticErase", model=base, samples=1,
                                                      restandardize=True), strength=0.0)
    assert torch.equal(ksample(defaults, fam, lat), stock)


def test_trellis2_refuses_inject_and_erases_exactly():
    """TRELLIS.2 reads 8 of the 32 channels of its structure latent: an injected noise would not be a
    unit Gaussian sample there, so Inject refuses it by name; Erase keeps every entry i.i.d. Gaussian.
    Its 16^3-token structure model takes ~5 s a step on one CPU core, so this run records the noise
    the real KSampler would start from and stops before the sampling loop."""
    fam = family("trellis2")
    base = fam.model()
    # ValueError: the pack as ComfyUI loads it has its own copy of NoiseSemanticsError (a ValueError)
    refused = r"\[Noise Semantic Inject\] input 'model': TRELLIS.2 reads only part.*Fix: set strength to 0"
    with pytest.raises(ValueError, match=refused):
        node("NoiseSemanticInject", model=base, strength=0.5, decorrelate=True)
    node("NoiseSemanticInject", model=base, strength=0.0, decorrelate=True, candidates=2)  # screening: allowed
    seen = []

    def record_and_stop(executor, guider, sigmas, extra_args, callback, noise, latent_image, *args):
        seen.append(noise.clone())
        return latent_image
    m = node("NoiseSemanticErase", model=base, samples=3, restandardize=True).clone()
    m.add_wrapper_with_key(pe.WrappersMP.SAMPLER_SAMPLE, "nsp_test_stop", record_and_stop)
    lat = fam.latent()
    ksample(m, fam, lat)
    z = comfy.sample.prepare_noise(lat["samples"], SEED)
    assert torch.equal(seen[0], core.erase(z, SEED, 3, True)) and not torch.equal(seen[0], z)
