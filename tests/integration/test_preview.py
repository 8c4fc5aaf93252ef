"""Noise Semantic Preview and Inject's report after a run, inside real ComfyUI: real node classes,
KSampler, SamplerCustomAdvanced, ModelPatcher and the executor, on the tiny SDXL / FLUX / WAN models.

The Preview must mark the candidate Inject keeps with the same seed and settings: the noise the
sampler really starts from (captured by tests/probes.py) is checked, bit for bit, against the
candidate the Preview marks, recomputed from ComfyUI's own noise (prepare_noise, batch_index
honoured) and the pack's candidate draws; and the scores Inject reports are the Preview's."""
import logging
import re

import pytest
import torch

import comfy.sample
import nodes

import host
import probes
import tiny_models
from noise_semantics import core

FAMILIES = ["sdxl", "flux", "wan"]
SEED = 7
LOGGER = "comfyui-noise-semantics"


def node(node_id, **inputs):
    cls = nodes.NODE_CLASS_MAPPINGS[node_id]
    if hasattr(cls, "FUNCTION"):
        return getattr(cls(), cls.FUNCTION)(**inputs)
    return cls.execute(**inputs).result


def preview(model, pos, neg, lat, cfg, m, schedule=None, seed=SEED):
    return node("NoiseSemanticPreview", model=model, positive=pos, negative=neg, latent=lat, seed=seed, cfg=cfg,
                candidates=m, schedule=schedule)


def inject(model, strength=0.0, **kw):
    return node("NoiseSemanticInject", model=model, strength=strength, decorrelate=True, **kw)[0]


def preview_scores(text: str) -> list:
    """[(scores as shown, kept index)] per image, from the Preview's scores text."""
    return [(s, int(k) - 1) for s, k in re.findall(r"^image \d+: (.*) -> candidate (\d+)$", text, re.M)]


def inject_scores(caplog) -> list:
    """The same from Inject's report (its log line; the browser shows the same text on the node)."""
    line = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Noise Semantic Inject: ")][-1]
    return [(s, int(k) - 1) for k, s in re.findall(r"kept candidate (\d+) of \d+ \(conflict ([^)]*)\)", line)]


def stock_noise(family, lat):
    model = tiny_models.make_model(family)
    return comfy.sample.prepare_noise(comfy.sample.fix_empty_latent_channels(model, lat["samples"]), SEED,
                                      lat.get("batch_index"))


def run_sampler_custom_advanced(family, model, pos, neg, lat, cfg):
    """RandomNoise + CFGGuider + KSamplerSelect + BasicScheduler + SamplerCustomAdvanced, called as
    ComfyUI's executor calls them (V1 FUNCTION or V3 execute, whichever the host has)."""
    def call(node_id, **inputs):
        out = node(node_id, **inputs)
        return out[0]
    noise = call("RandomNoise", noise_seed=SEED)
    guider = call("CFGGuider", model=model, positive=pos, negative=neg, cfg=cfg)
    sampler = call("KSamplerSelect", sampler_name="euler")
    sigmas = call("BasicScheduler", model=model, scheduler="simple", steps=2, denoise=1.0)
    return call("SamplerCustomAdvanced", noise=noise, guider=guider, sampler=sampler, sigmas=sigmas, latent_image=lat)


@pytest.mark.parametrize("sampler", ["KSampler", "SamplerCustomAdvanced"])
@pytest.mark.parametrize("family", FAMILIES)
def test_preview_marks_the_candidate_inject_keeps(family, sampler, caplog):
    """Same seed, cfg, candidates and schedule: the sampler starts from the candidate the Preview
    marks, per image of a batch picked out of a larger one (batch_index); with Erase on the model
    (SamplerCustomAdvanced case) the candidates are erased first, in both."""
    B, m, cfg = 3, 4, 3.0
    model = tiny_models.make_model(family)
    if sampler == "SamplerCustomAdvanced":
        model = node("NoiseSemanticErase", model=model, samples=2, restandardize=True)[0]
    pos, neg = tiny_models.make_conditioning(family, 0, 1)
    lat = {"samples": torch.zeros(tiny_models.latent_shape(family, B)), "batch_index": [4, 5, 6]}
    sched = node("NoiseSemanticTemporalSchedule", probes=2, tau_min=0.5, tau_max=0.8, weighting="uniform",
                 center=0.8, half_width=0.5, flatness=1.0)[0]
    prefers, asked, text = preview(model, pos, neg, lat, cfg, m, sched)
    shown = preview_scores(text)
    assert len(shown) == B and prefers["samples"].shape[0] == asked["samples"].shape[0] == m * B

    sampled = probes.capture(inject(model, candidates=m, schedule=sched))
    caplog.set_level(logging.INFO, logger=LOGGER)
    if sampler == "KSampler":
        nodes.KSampler().sample(sampled, SEED, 2, cfg, "euler", "normal", pos, neg, lat, 1.0)
    else:
        run_sampler_custom_advanced(family, sampled, pos, neg, lat, cfg)
    got = probes.RECORDS["capture"][0]["noise"].cpu()
    cands = core.candidate_noises(stock_noise(family, lat), SEED, m)
    if sampler == "SamplerCustomAdvanced":
        cands = [core.erase(c, SEED, 2) for c in cands]
    for b, (_, k) in enumerate(shown):
        assert torch.equal(got[b], cands[k][b]), f"image {b + 1}: the sampler did not start from candidate {k + 1}"
    assert inject_scores(caplog) == shown
    print(f"\n{family} {sampler}: kept {[k + 1 for _, k in shown]}")


@pytest.mark.parametrize("family", ["sdxl", "flux"])
def test_preview_outputs_are_the_models_own_predictions(family):
    """prefers / asked = the negative-prompt and the guided prediction of the noise at the probe
    (tau 0.6, the default schedule), as LATENTs (process_latent_out), recomputed independently with
    the captured sampler's own guider; candidate 1 is the sampler's own noise."""
    B, cfg = 2, 4.0
    model = tiny_models.make_model(family)
    pos, neg = tiny_models.make_conditioning(family, 0, 1)
    lat = {"samples": torch.zeros(tiny_models.latent_shape(family, B))}

    def recompute(rec):
        ms = rec["guider"].inner_model.model_sampling
        sig = torch.full((B,), probes.probe_sigma(ms, 0.6))
        x = rec["noise"] / ms.calculate_input(sig, torch.ones_like(rec["noise"]))
        d, _, u = probes.branch_predict(rec)(x, sig)
        out = rec["guider"].inner_model.process_latent_out
        return out(u).cpu(), out(d).cpu()
    nodes.KSampler().sample(probes.capture(model, inspect=recompute), SEED, 1, cfg, "euler", "normal", pos, neg,
                            lat, 1.0)
    want_u, want_d = probes.RECORDS["capture"][0]["inspect"]
    for m in (1, 3):
        prefers, asked, text = preview(model, pos, neg, lat, cfg, m)
        assert prefers["samples"].shape == (m * B,) + tuple(lat["samples"].shape[1:])
        torch.testing.assert_close(prefers["samples"][:B], want_u, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(asked["samples"][:B], want_d, rtol=1e-4, atol=1e-5)
        assert not torch.allclose(prefers["samples"], asked["samples"])
    assert len(preview_scores(text)) == B


def test_preview_bad_inputs_name_the_node_input_and_fix():
    model = tiny_models.make_model("sdxl")
    pos, neg = tiny_models.make_conditioning("sdxl", 0, 1)
    lat = {"samples": torch.zeros(tiny_models.latent_shape("sdxl"))}
    with pytest.raises(ValueError, match=r"\[Noise Semantic Preview\] input 'candidates' is 0\. Fix:"):
        preview(model, pos, neg, lat, 3.0, 0)
    with pytest.raises(ValueError, match=r"\[Noise Semantic Preview\] input 'negative' holds no conditioning.*Fix:"):
        preview(model, pos, [], lat, 3.0, 2)
    with pytest.raises(ValueError, match=r"\[Noise Semantic Preview\] input 'schedule'.*Fix:"):
        preview(model, pos, neg, lat, 3.0, 2, schedule={"taus": [1.0]})
    bad = {"samples": torch.randn(1, 3, 16, 16)}  # SDXL wants 4 channels
    with pytest.raises(ValueError, match=r"\[Noise Semantic Preview\] input 'latent': the model failed on a probe "
                                         r"batch .*Fix: connect the latent"):
        preview(model, pos, neg, bad, 3.0, 2)


@pytest.mark.parametrize("m, strength", [(4, 0.0), (1, 0.5), (1, 0.0)])
def test_inject_reports_per_image_what_it_did(m, strength, caplog):
    """Per image: the candidate kept and the scores (screening), the strength, and the extra
    evaluations, which are the ones the model really did (counted on the model)."""
    B, cfg = 2, 3.0
    model, count = probes.count_calls(inject(tiny_models.make_model("flux"), strength, candidates=m))
    pos, neg = tiny_models.make_conditioning("flux", 0, 1)
    lat = {"samples": torch.zeros(tiny_models.latent_shape("flux", B))}
    caplog.set_level(logging.INFO, logger=LOGGER)
    nodes.KSampler().sample(model, SEED, 2, cfg, "euler", "normal", pos, neg, lat, 1.0)
    line = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Noise Semantic Inject: ")][-1]
    images = line.split(": ", 1)[1].split("; ")
    assert len(images) == B
    probed = count.batches[0] if (m > 1 or strength > 0) else 0
    steps = count.calls - (1 if probed else 0)
    assert steps == 2
    for b, text in enumerate(images):
        assert text.startswith(f"image {b + 1}: ")
        assert f"strength {strength:g}, {probed // B} extra evaluations" in text
        assert ("kept candidate" in text) == (m > 1)
    if m > 1:
        assert len(inject_scores(caplog)) == B


def test_inject_gets_its_node_id_from_the_executor():
    """The executor hands Inject its own id (the V3 hidden input), which the sampler's run needs to
    show the report on that node."""
    fam = "sdxl"
    prompt = {
        "1": {"class_type": "NSPTestTinyModel", "inputs": {"family": fam, "seed": 0}},
        "2": {"class_type": "NSPTestTinyConditioning", "inputs": {"family": fam, "seed": 0, "batch": 1}},
        "15": {"class_type": "NoiseSemanticInject", "inputs": {"model": ["1", 0], "strength": 0.0,
                                                                "decorrelate": True, "candidates": 2}},
        "6": {"class_type": "NSPTestCaptureNoise", "inputs": {"model": ["15", 0], "label": "node_id"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 128, "height": 128, "batch_size": 1}},
        "7": {"class_type": "KSampler", "inputs": {"model": ["6", 0], "seed": 1, "steps": 1, "cfg": 3.0,
                                                   "sampler_name": "euler", "scheduler": "normal",
                                                   "positive": ["2", 0], "negative": ["2", 1],
                                                   "latent_image": ["5", 0], "denoise": 1.0}},
        "8": {"class_type": "SaveLatent", "inputs": {"samples": ["7", 0], "filename_prefix": "nsp_test/node_id"}},
    }
    host.run_prompt(prompt)
    rec = probes.RECORDS["node_id"][0]
    settings = rec["extra_args"]["model_options"]["noise_semantics"]["inject"]
    assert settings["node_id"] == "15"
    # and the id is part of ComfyUI's cache key: an identical Inject elsewhere (another workflow, another
    # node id) is not served this one's cached output, which would carry this node's id
    from comfy_execution.caching import CacheKeySetInputSignature  # noqa: F401  (the class that reads it)
    for node_id in ("NoiseSemanticInject", "NoiseSemanticPreview"):
        assert nodes.NODE_CLASS_MAPPINGS[node_id].NOT_IDEMPOTENT is True
