"""The nodes inside real ComfyUI: real node classes, KSampler / KSamplerAdvanced /
SamplerCustomAdvanced, ModelPatcher, and the in-process executor, on tiny SDXL (eps UNet),
FLUX (flow DiT) and WAN 2.1 (video flow DiT) models."""
import logging

import pytest
import torch

import comfy.model_management
import comfy.sample
import nodes

import host
import probes
import tiny_models
from noise_semantics import core

FAMILIES = ["sdxl", "flux", "wan"]
Erase = nodes.NODE_CLASS_MAPPINGS["NoiseSemanticErase"]
Inject = nodes.NODE_CLASS_MAPPINGS["NoiseSemanticInject"]
Schedule = nodes.NODE_CLASS_MAPPINGS["NoiseSemanticTemporalSchedule"]
SEED = 1234


def latent(family, batch=1, **kw):
    return {"samples": torch.zeros(tiny_models.latent_shape(family, batch))} | kw


def ksample(model, family, seed=SEED, lat=None, steps=4, cfg=3.0, denoise=1.0, cond_batch=1):
    pos, neg = tiny_models.make_conditioning(family, 0, cond_batch)
    lat = lat if lat is not None else latent(family)
    return nodes.KSampler().sample(model, seed, steps, cfg, "euler", "normal", pos, neg, lat, denoise)[0]["samples"]


def refined_model(family, samples=3, strength=0.6, schedule=None, decorrelate=True, apply_to=None):
    m = tiny_models.make_model(family)
    extra = {} if apply_to is None else {"apply_to": apply_to}
    m = Erase().patch(m, samples, True, **extra)[0]
    return Inject().patch(m, strength, decorrelate, schedule, **extra)[0]


def expected_noise(core, rec, lat_samples, seed, samples, strength, schedule, decorrelate=True, batch_inds=None):
    """The refined noise recomputed from scratch: stock prepare_noise, core.erase, then each probe
    as its own guided call (no batching), aggregated with core.aggregate."""
    guider, extra = rec["guider"], rec["extra_args"]
    ms = guider.inner_model.model_sampling
    z = comfy.sample.prepare_noise(lat_samples, seed, batch_inds)
    z = core.erase(z, seed, samples, True)
    dirs, ws = [], []
    for tau, w in zip(schedule.taus, schedule.weights):
        if w == 0:
            continue
        sigma = probes.probe_sigma(ms, tau)
        sig = torch.full((z.shape[0],), sigma)
        c_in = ms.calculate_input(sig, torch.ones_like(z))
        x = z / c_in
        d = guider(x, sig, model_options=extra["model_options"], seed=extra["seed"])
        dirs.append(core.semantic_direction(d, x, sig))
        ws.append(w)
    return core.inject(z, core.aggregate(dirs, ws), strength, decorrelate)


@pytest.mark.parametrize("family", FAMILIES)
def test_ksampler_starts_from_the_refined_noise(family):
    sched = Schedule().build(4, 0.4, 1.0, "bump", 0.75, 0.5, 1.0)[0]
    lat = latent(family)
    m = probes.capture(refined_model(family, 3, 0.6, sched), "ks",
                       inspect=lambda rec: expected_noise(core, rec, lat["samples"], SEED, 3, 0.6, sched))
    ksample(m, family, lat=lat)
    rec = probes.RECORDS["ks"][0]
    stock = comfy.sample.prepare_noise(lat["samples"], SEED)
    assert not torch.allclose(rec["noise"], stock)
    exp = rec["inspect"]
    assert torch.allclose(rec["noise"], exp, atol=2e-4), (rec["noise"] - exp).abs().max()


@pytest.mark.parametrize("family", FAMILIES)
def test_n1_strength0_is_stock_bit_for_bit(family):
    m = tiny_models.make_model(family)
    stock = ksample(m, family)
    patched = Inject().patch(Erase().patch(m, 1, True)[0], 0.0)[0]
    assert torch.equal(ksample(patched, family), stock)


@pytest.mark.parametrize("family", FAMILIES)
def test_deterministic_and_seed_sensitive(family):
    m = refined_model(family)
    a, b, c = ksample(m, family, seed=5), ksample(m, family, seed=5), ksample(m, family, seed=6)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    assert not torch.allclose(a, ksample(tiny_models.make_model(family), family, seed=5))


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("cfg", [3.0, 1.0])
def test_probe_cost_is_one_batched_guided_call(family, cfg):
    """All K probes x B samples in one guided call: one model evaluation of batch 2*K*B with CFG
    (cond and uncond together), K*B at cfg 1; the sampling run itself is unchanged."""
    K, B, steps = 5, 2, 4
    sched = Schedule().build(K, 0.2, 1.0, "uniform", 0.5, 0.5, 1.0)[0]
    base, count0 = probes.count_calls(tiny_models.make_model(family))
    ksample(base, family, lat=latent(family, B), steps=steps, cfg=cfg)
    m, count = probes.count_calls(refined_model(family, 4, 0.5, sched))
    ksample(m, family, lat=latent(family, B), steps=steps, cfg=cfg)
    branches = 2 if cfg != 1.0 else 1
    assert count.calls - count0.calls == 1
    assert count.batches[0] == branches * K * B
    assert count.batches[1:] == count0.batches


def test_probes_split_into_chunks_when_memory_is_short():
    import importlib
    patch = importlib.import_module(Inject.__module__.rsplit(".", 1)[0] + ".patch")
    m = tiny_models.make_model("sdxl")
    model = m.model
    z = torch.zeros(tiny_models.latent_shape("sdxl", 2))
    per_probe = model.memory_required((2 * 2,) + tuple(z.shape[1:]))
    assert patch.probe_chunk(model, z, 6, 2, free=1e15) == 6
    c = patch.probe_chunk(model, z, 6, 2, free=per_probe * 1.5 * 2.5)
    assert 1 <= c < 6
    # chunked probing gives the same refined noise as one batch
    sched = core.make_schedule(6, 0.3, 1.0, weighting="uniform")
    zz = torch.randn(tiny_models.latent_shape("sdxl", 2), generator=torch.manual_seed(0))
    pred = lambda x, s: torch.tanh(x) * (1 + s.reshape(-1, 1, 1, 1))
    one = core.refine_inject(zz, sched, 0.5, lambda t: t, lambda s: torch.ones_like(s), pred)
    calls = []
    two = core.refine_inject(zz, sched, 0.5, lambda t: t, lambda s: torch.ones_like(s), pred, chunk=4,
                             on_chunk=calls.append)
    assert calls == [4, 2] and torch.allclose(one, two, atol=1e-5)


def test_ksampler_advanced_two_stage_leaves_the_no_noise_stage_untouched(caplog):
    family = "sdxl"
    base = tiny_models.make_model(family)
    m1 = probes.capture(refined_model(family), "stage1")
    m2 = probes.capture(refined_model(family), "stage2")
    pos, neg = tiny_models.make_conditioning(family)
    adv = nodes.KSamplerAdvanced()
    lat = latent(family)
    with caplog.at_level(logging.INFO):
        mid = adv.sample(m1, "enable", SEED, 6, 3.0, "euler", "normal", pos, neg, lat, 0, 3, "enable")[0]
        out = adv.sample(m2, "disable", SEED, 6, 3.0, "euler", "normal", pos, neg, mid, 3, 10000, "disable")[0]
    stock = comfy.sample.prepare_noise(lat["samples"], SEED)
    assert not torch.allclose(probes.RECORDS["stage1"][0]["noise"], stock)
    assert torch.count_nonzero(probes.RECORDS["stage2"][0]["noise"]) == 0
    assert "adds no noise" in caplog.text
    # the second stage is exactly what an unpatched model would do with the same input
    ref = adv.sample(base, "disable", SEED, 6, 3.0, "euler", "normal", pos, neg, mid, 3, 10000, "disable")[0]
    assert torch.equal(out["samples"], ref["samples"])


@pytest.mark.parametrize("family", ["sdxl", "flux"])
def test_batch_index_keeps_each_latents_refined_noise(family):
    m = probes.capture(refined_model(family), "full")
    ksample(m, family, lat=latent(family, 3), cond_batch=1)
    full = probes.RECORDS["full"][0]["noise"]
    m = probes.capture(refined_model(family), "one")
    ksample(m, family, lat=latent(family, 1, batch_index=[2]))
    assert torch.allclose(probes.RECORDS["one"][0]["noise"][0], full[2], atol=1e-4)


def test_noise_mask_inpainting_runs_on_refined_noise():
    family = "sdxl"
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., 4:12, 4:12] = 1.0
    src = torch.randn(tiny_models.latent_shape(family), generator=torch.manual_seed(3))
    m = probes.capture(refined_model(family), "mask")
    out = ksample(m, family, lat={"samples": src, "noise_mask": mask})
    assert torch.isfinite(out).all()
    assert not torch.allclose(probes.RECORDS["mask"][0]["noise"], comfy.sample.prepare_noise(src, SEED))
    # outside the mask, KSampler keeps the source latent
    assert torch.allclose(out[..., 0:2, 0:2], src[..., 0:2, 0:2], atol=1e-4)


def test_partial_denoise_refines_and_says_so(caplog):
    family = "flux"
    src = torch.randn(tiny_models.latent_shape(family), generator=torch.manual_seed(4))
    m = probes.capture(refined_model(family, apply_to="every sampler"), "img2img")
    with caplog.at_level(logging.INFO):
        ksample(m, family, lat={"samples": src}, denoise=0.5)
    assert "below sigma_max" in caplog.text
    assert not torch.allclose(probes.RECORDS["img2img"][0]["noise"], comfy.sample.prepare_noise(src, SEED))


def test_sampler_custom_advanced_through_the_executor():
    """RandomNoise + CFGGuider + KSamplerSelect + BasicScheduler + SamplerCustomAdvanced, as a
    prompt validated and run by ComfyUI's real executor, on a refined WAN (5-D video) model."""
    fam = "wan"
    shape = tiny_models.latent_shape(fam)
    prompt = {
        "1": {"class_type": "NSPTestTinyModel", "inputs": {"family": fam, "seed": 0}},
        "2": {"class_type": "NSPTestTinyConditioning", "inputs": {"family": fam, "seed": 0, "batch": 1}},
        "3": {"class_type": "NoiseSemanticTemporalSchedule",
              "inputs": {"probes": 3, "tau_min": 0.5, "tau_max": 1.0, "weighting": "bump", "center": 0.8,
                         "half_width": 0.5, "flatness": 1.0}},
        "4": {"class_type": "NoiseSemanticErase", "inputs": {"model": ["1", 0], "samples": 3, "restandardize": True}},
        "5": {"class_type": "NoiseSemanticInject", "inputs": {"model": ["4", 0], "strength": 0.5, "decorrelate": True,
                                                               "schedule": ["3", 0]}},
        "6": {"class_type": "NSPTestCaptureNoise", "inputs": {"model": ["5", 0], "label": "sca"}},
        "7": {"class_type": "RandomNoise", "inputs": {"noise_seed": SEED}},
        "8": {"class_type": "CFGGuider", "inputs": {"model": ["6", 0], "positive": ["2", 0], "negative": ["2", 1],
                                                     "cfg": 3.0}},
        "9": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler"}},
        "10": {"class_type": "BasicScheduler", "inputs": {"model": ["6", 0], "scheduler": "simple", "steps": 4,
                                                          "denoise": 1.0}},
        "11": {"class_type": "EmptyHunyuanLatentVideo", "inputs": {"width": shape[-1] * 8, "height": shape[-2] * 8,
                                                                   "length": (shape[2] - 1) * 4 + 1,
                                                                   "batch_size": 1}},
        "12": {"class_type": "SamplerCustomAdvanced", "inputs": {"noise": ["7", 0], "guider": ["8", 0],
                                                                 "sampler": ["9", 0], "sigmas": ["10", 0],
                                                                 "latent_image": ["11", 0]}},
        "13": {"class_type": "SaveLatent", "inputs": {"samples": ["12", 0], "filename_prefix": "nsp_test/sca"}},
    }
    host.run_prompt(prompt)
    rec = probes.RECORDS["sca"][0]
    assert rec["noise"].ndim == 5
    stock = comfy.sample.prepare_noise(torch.zeros(rec["noise"].shape), SEED)
    assert not torch.allclose(rec["noise"], stock)
    flat = rec["noise"].reshape(-1)
    assert abs(float(flat.std()) - 1) < 1e-3


# ------------------------------------------------------------------ bad input

def test_schedule_of_the_wrong_type_is_refused():
    with pytest.raises(ValueError, match=r"\[Noise Semantic Inject\] input 'schedule'.*Fix:"):
        Inject().patch(tiny_models.make_model("sdxl"), 0.5, True, {"taus": [1.0]})


def test_executor_reports_bad_schedule_with_node_and_fix():
    prompt = {
        "1": {"class_type": "NoiseSemanticTemporalSchedule",
              "inputs": {"probes": 3, "tau_min": 0.9, "tau_max": 0.3, "weighting": "bump", "center": 0.8,
                         "half_width": 0.5, "flatness": 1.0}},
        "2": {"class_type": "NSPTestTinyModel", "inputs": {"family": "sdxl", "seed": 0}},
        "3": {"class_type": "NoiseSemanticInject", "inputs": {"model": ["2", 0], "strength": 0.5,
                                                               "decorrelate": True, "schedule": ["1", 0]}},
        "4": {"class_type": "NSPTestTinyConditioning", "inputs": {"family": "sdxl", "seed": 0, "batch": 1}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 128, "height": 128, "batch_size": 1}},
        "6": {"class_type": "KSampler", "inputs": {"model": ["3", 0], "seed": 1, "steps": 2, "cfg": 3.0,
                                                   "sampler_name": "euler", "scheduler": "normal",
                                                   "positive": ["4", 0], "negative": ["4", 1],
                                                   "latent_image": ["5", 0], "denoise": 1.0}},
        "7": {"class_type": "SaveLatent", "inputs": {"samples": ["6", 0], "filename_prefix": "nsp_test/bad"}},
    }
    with pytest.raises(host.ExecutionFailed, match=r"\[Temporal Weight Schedule\] time range is reversed.*Fix: swap"):
        host.run_prompt(prompt)


class NaNModel:
    """A model_function_wrapper (ComfyUI's own hook) whose predictions are NaN."""
    def __call__(self, apply_model, args):
        out = apply_model(args["input"], args["timestep"], **args["c"])
        return out * float("nan")


def test_nan_predictions_are_refused_by_name():
    m = refined_model("flux")
    m.set_model_unet_function_wrapper(NaNModel())
    with pytest.raises(ValueError, match=r"\[Noise Semantic Inject\] the model's prediction .* NaN or inf.*Fix:"):
        ksample(m, "flux")


def test_a_latent_the_model_rejects_names_the_node():
    m = refined_model("sdxl")
    bad = {"samples": torch.randn(1, 3, 16, 16)}  # SDXL wants 4 channels
    with pytest.raises(ValueError, match=r"\[Noise Semantic Inject\] the model failed on a probe batch .*takes 4 "
                                         r"channels .*Fix: use a latent made for this model"):
        ksample(m, "sdxl", lat=bad)


def test_interrupt_stops_probing_before_any_model_call():
    m, count = probes.count_calls(refined_model("sdxl"))
    nodes.interrupt_processing(True)
    try:
        with pytest.raises(comfy.model_management.InterruptProcessingException):
            ksample(m, "sdxl")
    finally:
        nodes.interrupt_processing(False)
    assert count.calls == 0


def test_erase_node_refuses_zero_samples():
    with pytest.raises(ValueError, match=r"\[Noise Semantic Erase\] input 'samples' is 0.*Fix"):
        Erase().patch(tiny_models.make_model("sdxl"), 0, True)


# ------------------------------------------------------------------ node definitions

def test_node_names_categories_and_tooltips():
    want = {"NoiseSemanticErase": "Noise Semantic Erase", "NoiseSemanticInject": "Noise Semantic Inject",
            "NoiseSemanticTemporalSchedule": "Temporal Weight Schedule",
            "NoiseSemanticPreview": "Noise Semantic Preview"}
    cats = set()
    for key, display in want.items():
        assert nodes.NODE_DISPLAY_NAME_MAPPINGS[key] == display
        cls = nodes.NODE_CLASS_MAPPINGS[key]
        cats.add(cls.CATEGORY)
        spec = cls.INPUT_TYPES()
        for section, group in spec.items():
            if section == "hidden":  # filled in by the executor (the node's own id), never shown
                continue
            for name, (typ, *opts) in group.items():
                assert opts and opts[0].get("tooltip"), f"{display}.{name} has no tooltip"
        assert len(cls.OUTPUT_TOOLTIPS) == len(cls.RETURN_TYPES)
        assert cls.DESCRIPTION
    assert cats == {"sampling/noise semantics"}


def test_patch_clones_and_leaves_the_input_model_alone():
    m = tiny_models.make_model("sdxl")
    before = dict(m.model_options)
    out = Inject().patch(Erase().patch(m, 4, True)[0], 0.5)[0]
    assert out is not m and m.model_options == before
    # the last node of a kind wins, and the order of Erase and Inject does not matter
    a = Erase().patch(Inject().patch(m, 0.5)[0], 2, True)[0]
    b = Erase().patch(a, 5, False)[0]
    opts = b.model_options["noise_semantics"]
    # not in transformer_options, which every model call receives (and a compiled model guards on)
    assert "noise_semantics" not in b.model_options.get("transformer_options", {})
    assert opts["erase"] == {"samples": 5, "restandardize": False, "apply_to": "from pure noise only"} and opts["inject"]["strength"] == 0.5


def test_probing_reports_progress_per_probe():
    import comfy.utils
    seen = []
    old = comfy.utils.PROGRESS_BAR_HOOK
    comfy.utils.set_progress_bar_global_hook(lambda value, total, preview, node_id=None: seen.append((value, total)))
    try:
        sched = Schedule().build(3, 0.5, 1.0, "uniform", 0.8, 0.5, 1.0)[0]
        ksample(refined_model("flux", 1, 0.5, sched), "flux", steps=2)
    finally:
        comfy.utils.set_progress_bar_global_hook(old)
    assert (3, 3) in seen  # the probes' bar reached K of K (the sampler's own bar counts steps)
