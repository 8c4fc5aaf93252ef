"""Noise screening and the 'prompt' direction inside real ComfyUI: real node classes, KSampler,
ModelPatcher and the executor, on the tiny SDXL / FLUX / WAN models."""
import pytest
import torch

import comfy.sample
import nodes

import host
import probes
import tiny_models
from noise_semantics import core

FAMILIES = ["sdxl", "flux", "wan"]
SEED = 99


def node(node_id, **inputs):
    """One of the pack's nodes, run the way ComfyUI runs it (V1 FUNCTION or V3 execute)."""
    cls = nodes.NODE_CLASS_MAPPINGS[node_id]
    if hasattr(cls, "FUNCTION"):
        return getattr(cls(), cls.FUNCTION)(**inputs)[0]
    out = cls.execute(**inputs)
    return out.result[0]


def schedule(probes_, tau_min=0.4, tau_max=1.0):
    return node("NoiseSemanticTemporalSchedule", probes=probes_, tau_min=tau_min, tau_max=tau_max,
                weighting="uniform", center=0.5, half_width=0.5, flatness=1.0)


def inject(model, strength, **kw):
    return node("NoiseSemanticInject", model=model, strength=strength, decorrelate=kw.pop("decorrelate", True), **kw)


def ksample(model, family, batch=1, cfg=3.0, steps=3):
    pos, neg = tiny_models.make_conditioning(family, 0, 1)
    lat = {"samples": torch.zeros(tiny_models.latent_shape(family, batch))}
    return nodes.KSampler().sample(model, SEED, steps, cfg, "euler", "normal", pos, neg, lat, 1.0)[0]["samples"]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("cfg", [3.0, 1.0])
def test_screening_probes_every_candidate_in_one_call_with_both_branches(family, cfg):
    """m candidates x K probes x B samples x (cond, uncond) in one guided call, also at cfg 1,
    where ComfyUI would skip the unconditional branch: the conflict needs it."""
    K, B, m = 2, 2, 3
    base, count0 = probes.count_calls(tiny_models.make_model(family))
    ksample(base, family, B, cfg)
    patched, count = probes.count_calls(
        inject(tiny_models.make_model(family), 0.3, schedule=schedule(K), candidates=m))
    ksample(patched, family, B, cfg)
    assert count.calls - count0.calls == 1
    assert count.batches[0] == 2 * K * B * m
    assert count.batches[1:] == count0.batches


def expected(rec, lat, m, strength, direction, sched):
    """Independent recomputation: prepare_noise, the candidates, then one unbatched guided call
    per candidate and probe, reading the branches through a post-CFG hook of the test's own."""
    ms = rec["guider"].inner_model.model_sampling
    predict = probes.branch_predict(rec)
    z = comfy.sample.prepare_noise(lat, SEED)
    cands = core.candidate_noises(z, SEED, m)
    best = None
    for c in cands:
        dirs, prm, conf = [], 0, 0
        for tau, w in zip(sched.taus, sched.weights):
            sig = torch.full((z.shape[0],), probes.probe_sigma(ms, tau))
            x = c / ms.calculate_input(sig, torch.ones_like(c))
            d, dc, du = predict(x, sig)
            dirs.append(core.semantic_direction(d, x, sig))
            prm = prm + (dc - du) * w
            conf = conf + core.conflict(dc, du) * w
        norm = sum(w * w for w in sched.weights) ** 0.5
        conf = conf / sum(sched.weights)
        e = prm / norm if direction == "prompt" else core.aggregate(dirs, sched.weights)
        best = (c, e, conf) if best is None else tuple(
            torch.where((conf < best[2]).reshape(-1, *[1] * (c.ndim - 1)), new, old) if new.ndim > 1 else
            torch.where(conf < best[2], new, old) for new, old in zip((c, e, conf), best))
    c, e, conf = best
    if strength == 0:
        return c
    return core.inject(c, e, strength, True, standardized=direction == "guided")


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("direction,strength,m", [("guided", 0.0, 3), ("prompt", 0.5, 1), ("prompt", 0.5, 3),
                                                  ("guided", 0.4, 2)])
def test_sampler_starts_from_the_screened_and_injected_noise(family, direction, strength, m):
    sched = schedule(2)
    lat = torch.zeros(tiny_models.latent_shape(family, 2))
    model = probes.capture(inject(tiny_models.make_model(family), strength, schedule=sched, direction=direction,
                                  candidates=m), "modes",
                           inspect=lambda rec: expected(rec, lat, m, strength, direction, sched))
    ksample(model, family, batch=2)
    rec = probes.RECORDS["modes"][0]
    stock = comfy.sample.prepare_noise(lat, SEED)
    if strength == 0:  # screening alone: every sample starts from one of its own candidates
        cands = core.candidate_noises(stock, SEED, m)
        assert all(any(torch.equal(rec["noise"][b], c[b]) for c in cands) for b in range(2))
    else:
        assert not torch.allclose(rec["noise"], stock)
    assert torch.allclose(rec["noise"], rec["inspect"], atol=2e-4), (rec["noise"] - rec["inspect"]).abs().max()


def test_screening_without_a_negative_prompt_is_refused_with_the_fix():
    """BasicGuider has no negative branch: the conflict cannot be read, and the run says so."""
    fam = "flux"
    shape = tiny_models.latent_shape(fam)
    prompt = {
        "1": {"class_type": "NSPTestTinyModel", "inputs": {"family": fam, "seed": 0}},
        "2": {"class_type": "NSPTestTinyConditioning", "inputs": {"family": fam, "seed": 0, "batch": 1}},
        "5": {"class_type": "NoiseSemanticInject", "inputs": {"model": ["1", 0], "strength": 0.0, "decorrelate": True,
                                                               "candidates": 4}},
        "7": {"class_type": "RandomNoise", "inputs": {"noise_seed": SEED}},
        "8": {"class_type": "BasicGuider", "inputs": {"model": ["5", 0], "conditioning": ["2", 0]}},
        "9": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler"}},
        "10": {"class_type": "BasicScheduler", "inputs": {"model": ["5", 0], "scheduler": "simple", "steps": 2,
                                                          "denoise": 1.0}},
        "11": {"class_type": "EmptySD3LatentImage", "inputs": {"width": shape[-1] * 8, "height": shape[-2] * 8,
                                                               "batch_size": 1}},
        "12": {"class_type": "SamplerCustomAdvanced", "inputs": {"noise": ["7", 0], "guider": ["8", 0],
                                                                 "sampler": ["9", 0], "sigmas": ["10", 0],
                                                                 "latent_image": ["11", 0]}},
        "13": {"class_type": "SaveLatent", "inputs": {"samples": ["12", 0], "filename_prefix": "nsp_test/basic"}},
    }
    with pytest.raises(host.ExecutionFailed, match=r"\[Noise Semantic Inject\].*negative.*Fix:"):
        host.run_prompt(prompt)


def test_bad_direction_and_candidates_are_refused_by_the_node():
    m = tiny_models.make_model("sdxl")
    with pytest.raises(ValueError, match=r"\[Noise Semantic Inject\] input 'candidates'.*Fix"):
        inject(m, 0.3, candidates=0)
    with pytest.raises(ValueError, match=r"\[Noise Semantic Inject\] input 'direction'.*Fix"):
        inject(m, 0.3, direction="sideways")
