"""The pack together with the patches users already chain (issue 8, part 3): a LoRA, FreeU / FreeU_V2,
Perturbed-Attention Guidance, ModelSamplingSD3 / ModelSamplingFlux, Differential Diffusion with an
inpainting mask, a ControlNet on the conditioning, another pack's SAMPLER_SAMPLE wrapper, several of
them on one wire through the executor, and (found here) WAN Context Windows with and without
FreeNoise, EasyCache and LazyCache.

Every other patch is ComfyUI's real node (a missing node is skipped by name, per host), on the tiny
real models of tests/tiny_models.py, sampled by the real KSampler. For each combination, with the pack
before and after the other patch on the MODEL wire:
  (a) the refinement applies: the noise the sampler starts from differs from stock and equals an
      independent recomputation through the combined model's own guider;
  (b) the other patch still works: pack + patch != pack alone, and patch alone != stock;
  (c) the order on the wire changes nothing, except where the README says it does (another
      SAMPLER_SAMPLE wrapper, FreeNoise included; README "Combining with other patches").
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import pytest
import safetensors.torch
import torch

import comfy.patcher_extension as pe
import comfy.sample
import folder_paths
import nodes

import host
import model_init
import other_pack
import probes
import tiny_models
from noise_semantics import core

SEED = 4242
STEPS = 3
CFG = 3.0
ORDERS = ("pack_first", "pack_last")  # the pack before / after the other patch on the MODEL wire


def outputs(node_id, **inputs):
    """ComfyUI's node of that id, run as ComfyUI runs it (V1 FUNCTION or V3 execute): its outputs.
    Skipped, naming the node, on a host where it does not exist."""
    cls = nodes.NODE_CLASS_MAPPINGS.get(node_id)
    if cls is None:
        pytest.skip(f"node {node_id} does not exist on this ComfyUI")
    return getattr(cls(), cls.FUNCTION)(**inputs)


def node(node_id, **inputs):
    return outputs(node_id, **inputs)[0]


@dataclass(frozen=True)
class Pack:
    erase: int = 2
    strength: float = 0.5
    candidates: int = 1

    def apply(self, model):
        m = node("NoiseSemanticErase", model=model, samples=self.erase, restandardize=True)
        return node("NoiseSemanticInject", model=m, strength=self.strength, decorrelate=True, schedule=schedule(),
                    direction="guided", candidates=self.candidates)


@functools.cache
def schedule():
    return node("NoiseSemanticTemporalSchedule", probes=2, tau_min=0.5, tau_max=1.0, weighting="uniform",
                center=0.8, half_width=0.5, flatness=1.0)


def expected(rec, z0, pack: Pack):
    """The refined noise recomputed from scratch with core functions, through the guider the
    sampler was handed (the combined model, every other patch on): candidates, erase, each probe as
    its own guided call, the least-conflict candidate (batch 1), injection."""
    guider, extra = rec["guider"], rec["extra_args"]
    ms = guider.inner_model.model_sampling
    sched = schedule()
    cands = core.candidate_noises(z0, SEED, pack.candidates) if pack.candidates > 1 else [z0]
    cands = [core.erase(c, SEED, pack.erase, True) for c in cands]
    best = None
    for c in cands:
        dirs, conf = [], 0.0
        for tau, w in zip(sched.taus, sched.weights):
            sig = torch.full((c.shape[0],), probes.probe_sigma(ms, tau))
            x = c / ms.calculate_input(sig, torch.ones_like(c))
            seen, mo = {}, dict(extra["model_options"])
            if pack.candidates > 1:
                def hook(args):
                    seen["c"], seen["u"] = args["cond_denoised"], args["uncond_denoised"]
                    return args["denoised"]
                mo["disable_cfg1_optimization"] = True
                mo["sampler_post_cfg_function"] = list(mo.get("sampler_post_cfg_function", [])) + [hook]
            d = guider(x, sig, model_options=mo, seed=extra["seed"])
            dirs.append(core.semantic_direction(d, x, sig))
            if pack.candidates > 1:
                conf = conf + float(core.conflict(seen["c"], seen["u"])[0]) * w
        if best is None or conf < best[2]:
            best = (c, core.aggregate(dirs, sched.weights), conf)
    return core.inject(best[0], best[1], pack.strength, True)


def conditioning(family):
    return tiny_models.make_conditioning(family, 0, 1)


def empty(family):
    return {"samples": torch.zeros(tiny_models.latent_shape(family))}


def sample(model, family, lat, cond=None):
    pos, neg = cond or conditioning(family)
    return nodes.KSampler().sample(model, SEED, STEPS, CFG, "euler", "normal", pos, neg, lat, 1.0)[0]["samples"]


def run_captured(model, family, lat, pack: Pack, cond=None, z0=None, label="combo", recompute=True):
    """Sample from a capture clone (innermost wrapper): (output, noise the sampler started from,
    expected refined noise recomputed inside the run, the sampler's sigmas, the probes' model_sampling)."""
    z0 = comfy.sample.prepare_noise(lat["samples"], SEED) if z0 is None else z0

    def inspect(rec):
        return expected(rec, z0, pack) if recompute else None, rec["guider"].inner_model.model_sampling

    out = sample(probes.capture(model, label, inspect=inspect), family, lat, cond)
    rec = probes.RECORDS[label][0]
    exp, ms = rec["inspect"]
    return out, rec["noise"], exp, rec["sigmas"], ms


# ------------------------------------------------------------------ the other patches

@functools.cache
def tiny_lora_name() -> str:
    """A rank-2 LoRA for the tiny SDXL UNet in ComfyUI's own key format (comfy.lora.model_lora_keys_unet:
    lora_unet_<module path with _>), on every linear layer of the attention blocks, written as a real
    .safetensors file into this session's models/loras/."""
    model = tiny_models.make_model("sdxl").model
    g = torch.Generator().manual_seed(11)
    sd = {}
    for k, w in model.state_dict().items():
        if not (k.startswith("diffusion_model.") and k.endswith(".weight") and w.ndim == 2
                and ".transformer_blocks." in k):
            continue
        name = "lora_unet_" + k[len("diffusion_model."):-len(".weight")].replace(".", "_")
        sd[name + ".lora_up.weight"] = torch.randn(w.shape[0], 2, generator=g) * 0.3
        sd[name + ".lora_down.weight"] = torch.randn(2, w.shape[1], generator=g) * 0.3
        sd[name + ".alpha"] = torch.tensor(2.0)
    assert sd, "no attention layer found in the tiny SDXL UNet"
    folder = folder_paths.get_folder_paths("loras")[0]
    os.makedirs(folder, exist_ok=True)
    name = "nsp_test_tiny_sdxl_lora.safetensors"
    safetensors.torch.save_file(sd, os.path.join(folder, name))
    return name


def lora(model):
    return node("LoraLoaderModelOnly", model=model, lora_name=tiny_lora_name(), strength_model=1.0)


FLUX_SIDE = tiny_models.latent_shape("flux")[-1] * 8

COMBOS = {
    # id: (family, the other patch MODEL -> MODEL, the pack's settings)
    "lora": ("sdxl", lora, Pack()),
    "freeu": ("sdxl", lambda m: node("FreeU", model=m, b1=1.1, b2=1.2, s1=0.9, s2=0.2), Pack()),
    "freeu_v2": ("sdxl", lambda m: node("FreeU_V2", model=m, b1=1.3, b2=1.4, s1=0.9, s2=0.2), Pack(erase=1)),
    "pag": ("sdxl", lambda m: node("PerturbedAttentionGuidance", model=m, scale=3.0), Pack(candidates=2)),
    # WAN's own shift is 8 (the template's value): 3 makes the patch visible.
    "model_sampling_sd3": ("wan", lambda m: node("ModelSamplingSD3", model=m, shift=3.0), Pack()),
    # At the tiny latent's size the shift differs from FLUX's own 1.15 (which 1024 x 1024 gives).
    "model_sampling_flux": ("flux", lambda m: node("ModelSamplingFlux", model=m, max_shift=1.15, base_shift=0.5,
                                                   width=FLUX_SIDE, height=FLUX_SIDE), Pack(candidates=2)),
}


@pytest.mark.parametrize("combo", list(COMBOS))
def test_model_patch_and_pack_in_both_orders(combo):
    family, other, pack = COMBOS[combo]
    base = tiny_models.make_model(family)
    lat = empty(family)
    stock_noise = comfy.sample.prepare_noise(lat["samples"], SEED)
    stock_out = sample(base, family, lat)
    other_out = sample(other(base), family, lat)
    assert not torch.allclose(other_out, stock_out), f"{combo} alone changes nothing on the tiny model"
    pack_out, pack_noise, _, pack_sigmas, pack_ms = run_captured(pack.apply(base), family, lat, pack, label="pack")

    runs = {}
    for order in ORDERS:
        model = other(pack.apply(base)) if order == "pack_first" else pack.apply(other(base))
        out, noise, exp, sigmas, ms = runs[order] = run_captured(model, family, lat, pack, label=order)
        # (a) the refinement applies, through the combined model
        assert not torch.allclose(noise, stock_noise)
        assert torch.allclose(noise, exp, atol=2e-4), (order, float((noise - exp).abs().max()))
        if combo.startswith("model_sampling"):
            # a shift only moves the sampler's steps: on rectified flow the probes sit at sigma = tau
            # whatever the shift (patch.probe_sigma, issue 18 item 6), so the refined noise is the pack's own
            assert torch.allclose(noise, pack_noise, atol=2e-4), order
        else:
            # the probes saw the other patch: the refined noise is not the one the pack alone gives
            assert not torch.allclose(noise, pack_noise), order
        # (b) the other patch still works
        assert not torch.allclose(out, pack_out), order
    # (c) the order on the wire changes nothing
    (out1, noise1, *_), (out2, noise2, *_) = runs["pack_first"], runs["pack_last"]
    assert torch.equal(noise1, noise2) and torch.equal(out1, out2)

    if combo.startswith("model_sampling"):
        # the probes and the sampler both use the patched sampling, in either order
        for order in ORDERS:
            sigmas, ms = runs[order][3], runs[order][4]
            assert float(ms.shift) != pytest.approx(float(pack_ms.shift))
            assert not torch.allclose(sigmas, pack_sigmas)


def test_differential_diffusion_with_an_inpainting_mask_in_both_orders():
    """Differential Diffusion changes the denoise mask per step, inside the sampler; the probes read
    the noise alone, so the refined noise is the pack's own, in either order."""
    family, pack = "sdxl", Pack(erase=2, strength=0.5)
    dd = lambda m: node("DifferentialDiffusion", model=m, strength=1.0)
    base = tiny_models.make_model(family)
    src = torch.randn(tiny_models.latent_shape(family), generator=torch.manual_seed(5))
    side = src.shape[-1]
    mask = torch.linspace(0, 1, side).repeat(side, 1)[None]  # a soft gradient, 0 at the left edge
    lat = node("SetLatentNoiseMask", samples={"samples": src}, mask=mask)
    stock_noise = comfy.sample.prepare_noise(src, SEED)
    assert not torch.allclose(sample(dd(base), family, lat), sample(base, family, lat))
    pack_out, pack_noise, *_ = run_captured(pack.apply(base), family, lat, pack, label="pack")
    assert not torch.allclose(pack_noise, stock_noise)
    runs = {}
    for order in ORDERS:
        model = dd(pack.apply(base)) if order == "pack_first" else pack.apply(dd(base))
        out, noise, *_ = runs[order] = run_captured(model, family, lat, pack, label=order)
        assert torch.equal(noise, pack_noise), order          # (a) the refinement applies, unchanged
        assert not torch.allclose(out, pack_out), order       # (b) Differential Diffusion still works
    assert torch.equal(runs["pack_first"][0], runs["pack_last"][0])  # (c)


def tiny_controlnet():
    """A ControlNet built from ComfyUI's classes (comfy.cldm.cldm.ControlNet, the layout of the tiny
    SDXL UNet it controls, with a 3-channel hint) wrapped in comfy.controlnet.ControlNet, as
    comfy.controlnet.load_controlnet builds one from a checkpoint."""
    import comfy.cldm.cldm
    import comfy.controlnet
    import comfy.ops
    unet = dict(tiny_models.make_model("sdxl").model.model_config.unet_config)
    unet.pop("out_channels")
    unet.update(hint_channels=3, operations=comfy.ops.disable_weight_init, dtype=torch.float32, device="cpu")
    net = comfy.cldm.cldm.ControlNet(**unet)
    model_init.init_weights(net, 7)  # random zero-convs: a trained ControlNet's are not zero either
    net.requires_grad_(False)
    cpu = torch.device("cpu")
    return comfy.controlnet.ControlNet(net, load_device=cpu, manual_cast_dtype=None)


def test_controlnet_on_the_conditioning():
    """A ControlNet rides on the conditioning, not the MODEL wire: the probes go through the guider,
    so they see it, and the sampler still applies it."""
    family, pack = "sdxl", Pack(erase=2, strength=0.5, candidates=2)
    base = tiny_models.make_model(family)
    lat = empty(family)
    pos, neg = conditioning(family)
    side = lat["samples"].shape[-1] * 8
    hint = torch.rand(1, side, side, 3, generator=torch.manual_seed(6))
    cpos, cneg = outputs("ControlNetApplyAdvanced", positive=pos, negative=neg, control_net=tiny_controlnet(),
                         image=hint, strength=1.0, start_percent=0.0, end_percent=1.0)[:2]
    assert not torch.allclose(sample(base, family, lat, (cpos, cneg)), sample(base, family, lat, (pos, neg)))
    pack_out, pack_noise, *_ = run_captured(pack.apply(base), family, lat, pack, label="pack")
    out, noise, exp, *_ = run_captured(pack.apply(base), family, lat, pack, cond=(cpos, cneg), label="cn")
    assert not torch.allclose(noise, comfy.sample.prepare_noise(lat["samples"], SEED))
    assert torch.allclose(noise, exp, atol=2e-4), float((noise - exp).abs().max())  # (a)
    assert not torch.allclose(noise, pack_noise)  # the probes saw the ControlNet
    assert not torch.allclose(out, pack_out)  # (b)


# ------------------------------------------------------------------ another pack's SAMPLER_SAMPLE wrapper

@pytest.mark.parametrize("where", other_pack.WHERE)
def test_another_packs_sampler_sample_wrapper_in_both_orders(where):
    """ComfyUI nests SAMPLER_SAMPLE wrappers in registration order, the first outermost
    (comfy.patcher_extension.WrapperExecutor); sampler_helpers.prepare_model_patcher puts the wrappers
    kept in model_options first, then the ModelPatcher's own, each group in the order added, i.e. in
    wire order. So the other pack's wrapper sees the refined noise only when it is a patcher wrapper
    added after the pack on the wire; otherwise it runs outside the pack, sees the sampler's own noise,
    and what it does to the noise goes through the refinement (which re-standardizes it)."""
    family, pack, scale = "flux", Pack(erase=2, strength=0.5), 0.8
    base = tiny_models.make_model(family)
    lat = empty(family)
    stock_noise = comfy.sample.prepare_noise(lat["samples"], SEED)
    pack_out, pack_noise, *_ = run_captured(pack.apply(base), family, lat, pack, label="pack")
    other_out = sample(other_pack.patch(base, "alone", scale, where), family, lat)
    assert torch.equal(other_pack.SEEN["alone"][0], stock_noise)
    assert not torch.allclose(other_out, sample(base, family, lat))

    runs = {}
    for order in ORDERS:
        if order == "pack_first":
            model = other_pack.patch(pack.apply(base), order, scale, where)
        else:
            model = pack.apply(other_pack.patch(base, order, scale, where))
        inside = where == "patcher" and order == "pack_first"
        z0 = stock_noise if inside else stock_noise * scale
        out, noise, exp, *_ = runs[order] = run_captured(model, family, lat, pack, z0=z0, label="cap_" + order)
        seen = other_pack.SEEN[order][0]
        if inside:  # the other pack runs inside ours: it gets the refined noise and scales it
            assert torch.equal(seen, pack_noise)
            assert torch.allclose(noise, pack_noise * scale)
        else:  # it runs outside ours: it gets the stock noise; ours refines what it passes on
            assert torch.equal(seen, stock_noise)
            assert torch.allclose(noise, exp, atol=2e-4), float((noise - exp).abs().max())
            assert float(noise.std()) == pytest.approx(1.0, abs=1e-3)  # the scaling is re-standardized away
        assert not torch.allclose(noise, stock_noise) and not torch.allclose(out, pack_out)
    (out1, noise1, *_), (out2, noise2, *_) = runs["pack_first"], runs["pack_last"]
    if where == "patcher":  # the documented exception: the order on the wire decides
        assert not torch.allclose(noise1, noise2) and not torch.allclose(out1, out2)
    else:
        assert torch.equal(noise1, noise2) and torch.equal(out1, out2)


# ------------------------------------------------------------------ several patches on one wire, through the executor

def _wire(chain, label):
    """An API prompt: the tiny SDXL model through ``chain`` (node ids in wire order), a capture, the
    real KSampler and SaveLatent, as the server would run it."""
    inputs = {
        "lora": {"class_type": "LoraLoaderModelOnly", "inputs": {"lora_name": tiny_lora_name(), "strength_model": 1.0}},
        "freeu": {"class_type": "FreeU_V2", "inputs": {"b1": 1.3, "b2": 1.4, "s1": 0.9, "s2": 0.2}},
        "pag": {"class_type": "PerturbedAttentionGuidance", "inputs": {"scale": 3.0}},
        "erase": {"class_type": "NoiseSemanticErase", "inputs": {"samples": 2, "restandardize": True}},
        "inject": {"class_type": "NoiseSemanticInject", "inputs": {"strength": 0.5, "decorrelate": True,
                                                                   "direction": "guided", "candidates": 2}},
    }
    p = {"model": {"class_type": "NSPTestTinyModel", "inputs": {"family": "sdxl", "seed": 0}},
         "cond": {"class_type": "NSPTestTinyConditioning", "inputs": {"family": "sdxl", "seed": 0, "batch": 1}},
         "latent": {"class_type": "EmptyLatentImage", "inputs": {"width": 128, "height": 128, "batch_size": 1}}}
    model = ["model", 0]
    for name in chain:
        if inputs[name]["class_type"] not in nodes.NODE_CLASS_MAPPINGS:
            pytest.skip(f"node {inputs[name]['class_type']} does not exist on this ComfyUI")
        p[name] = {"class_type": inputs[name]["class_type"], "inputs": inputs[name]["inputs"] | {"model": model}}
        model = [name, 0]
    p["capture"] = {"class_type": "NSPTestCaptureNoise", "inputs": {"model": model, "label": label}}
    p["sampler"] = {"class_type": "KSampler", "inputs": {"model": ["capture", 0], "seed": SEED, "steps": STEPS,
                                                         "cfg": CFG, "sampler_name": "euler", "scheduler": "normal",
                                                         "positive": ["cond", 0], "negative": ["cond", 1],
                                                         "latent_image": ["latent", 0], "denoise": 1.0}}
    p["save"] = {"class_type": "SaveLatent", "inputs": {"samples": ["sampler", 0],
                                                        "filename_prefix": f"nsp_test/combo_{label}"}}
    out = host.run_prompt(p)["outputs"]["save"]["latents"][0]
    path = os.path.join(folder_paths.get_output_directory(), out["subfolder"], out["filename"])
    return probes.RECORDS[label][0]["noise"], safetensors.torch.load_file(path)["latent_tensor"]


def test_several_patches_on_one_wire_through_the_executor():
    """LoRA, FreeU_V2 and PAG with the pack, as the server runs a prompt: the pack last on the wire,
    or its two nodes spread between the others, gives the same start noise and the same latent."""
    last_noise, last_out = _wire(["lora", "freeu", "pag", "erase", "inject"], "last")
    spread_noise, spread_out = _wire(["erase", "lora", "inject", "pag", "freeu"], "spread")
    alone_noise, alone_out = _wire(["erase", "inject"], "alone")
    others_noise, others_out = _wire(["lora", "freeu", "pag"], "others")
    assert torch.equal(others_noise, comfy.sample.prepare_noise(torch.zeros(others_noise.shape), SEED))
    assert not torch.allclose(last_noise, others_noise)  # refined
    assert not torch.allclose(last_noise, alone_noise)  # through the patched model
    assert not torch.allclose(last_out, alone_out) and not torch.allclose(last_out, others_out)
    assert torch.equal(last_noise, spread_noise) and torch.equal(last_out, spread_out)


# ------------------------------------------------------------------ ComfyUI's context windows (long video)

def context_windows(model, schedule_="standard_static", freenoise=False):
    """WAN Context Windows on the tiny WAN: 6 latent frames in windows of 3 (9 real frames), overlap 1."""
    cls = nodes.NODE_CLASS_MAPPINGS.get("WanContextWindowsManual")
    if cls is None:
        pytest.skip("node WanContextWindowsManual does not exist on this ComfyUI")
    inputs = dict(model=model, context_length=9, context_overlap=4, context_schedule=schedule_, context_stride=1,
                  closed_loop=False, fuse_method="pyramid")
    if "freenoise" in cls.INPUT_TYPES()["required"]:
        inputs["freenoise"] = freenoise
    elif freenoise:
        pytest.skip("WanContextWindowsManual has no FreeNoise on this ComfyUI")
    return node("WanContextWindowsManual", **inputs)


def video():
    return {"samples": torch.zeros(tiny_models.latent_shape("wan", frames=6))}


def test_context_windows_in_both_orders():
    """The probes go through the context windows like every sampler step, one row per call (the
    windows take one timestep per call), each looked up among the sampler's sigmas."""
    family, pack = "wan", Pack(erase=2, strength=0.5, candidates=2)
    base = tiny_models.make_model(family)
    lat = video()
    stock_noise = comfy.sample.prepare_noise(lat["samples"], SEED)
    assert not torch.allclose(sample(context_windows(base), family, lat), sample(base, family, lat))
    pack_out, pack_noise, *_ = run_captured(pack.apply(base), family, lat, pack, label="pack")
    runs = {}
    for order in ORDERS:
        model = context_windows(pack.apply(base)) if order == "pack_first" else pack.apply(context_windows(base))

        def inspect(rec):
            # The recomputation's own probe calls need their sigma among the sampler's (0.3.75's
            # windows stop on a sigma they cannot find); the static schedule ignores the step.
            topts = rec["extra_args"]["model_options"]["transformer_options"]
            sig, ms = topts["sample_sigmas"], rec["guider"].inner_model.model_sampling
            probe = [probes.probe_sigma(ms, t) for t in schedule().taus]
            topts["sample_sigmas"] = torch.cat([sig, torch.tensor(probe, dtype=sig.dtype)])
            try:
                return expected(rec, stock_noise, pack)
            finally:
                topts["sample_sigmas"] = sig

        out = sample(probes.capture(model, order, inspect=inspect), family, lat)
        rec = probes.RECORDS[order][0]
        runs[order] = (out, rec["noise"])
        assert not torch.allclose(rec["noise"], stock_noise)
        assert torch.allclose(rec["noise"], rec["inspect"], atol=2e-4), float((rec["noise"] - rec["inspect"]).abs().max())
        assert not torch.allclose(rec["noise"], pack_noise)  # the probes went through the windows
        assert not torch.allclose(out, pack_out)  # the windows still apply
    assert torch.equal(runs["pack_first"][1], runs["pack_last"][1]) and torch.equal(runs["pack_first"][0],
                                                                                    runs["pack_last"][0])


def _freenoise_copies(noise, length=3):
    """FreeNoise (context length 3, overlap 1) fills every frame past the first window with a copy of
    an earlier frame."""
    frames = noise.shape[2]
    return all(any(torch.equal(noise[:, :, t], noise[:, :, s]) for s in range(t)) for t in range(length, frames))


def test_freenoise_sees_the_refined_noise_only_after_the_pack():
    """0.33's WAN Context Windows with FreeNoise is ComfyUI's own SAMPLER_SAMPLE wrapper (a patcher
    wrapper): after the pack on the wire it reshuffles the refined noise; before it, the pack refines
    the reshuffled noise and its copies are gone (README "Combining with other patches")."""
    family, pack = "wan", Pack(erase=2, strength=0.5)
    base = tiny_models.make_model(family)
    lat = video()
    stock_noise = comfy.sample.prepare_noise(lat["samples"], SEED)
    models = {"after": context_windows(pack.apply(base), freenoise=True),
              "before": pack.apply(context_windows(base, freenoise=True)),
              "plain": context_windows(pack.apply(base))}
    after, before, plain_noise = (run_captured(models[k], family, lat, pack, label=k, recompute=False)[1]
                                  for k in ("after", "before", "plain"))
    assert not _freenoise_copies(stock_noise) and not _freenoise_copies(plain_noise)
    assert _freenoise_copies(after)  # FreeNoise acted on the refined noise ...
    assert torch.equal(after[:, :, :3], plain_noise[:, :, :3])  # ... whose first window it keeps
    assert not _freenoise_copies(before)  # the pack refined FreeNoise's output: no copies left
    assert not torch.allclose(before, after)


# ------------------------------------------------------------------ step caches (EasyCache, LazyCache)

def starting_from(model, noise):
    """A clone whose sampler starts from ``noise`` (a test-only SAMPLER_SAMPLE wrapper): the run the
    sampler would make from the refined noise with no probes before it."""
    def wrapper(executor, guider, sigmas, extra_args, callback, _noise, *args):
        return executor(guider, sigmas, extra_args, callback, noise.clone(), *args)
    m = model.clone()
    m.add_wrapper_with_key(pe.WrappersMP.SAMPLER_SAMPLE, "nsp_test_fixed_noise", wrapper)
    return m


@pytest.mark.parametrize("cache,family", [("EasyCache", "flux"), ("LazyCache", "sdxl")])
def test_step_cache_does_not_take_the_probes_for_steps(cache, family):
    """EasyCache and LazyCache skip a model call that looks like the previous one. The probes are not
    sampling steps: they are computed in full, and the sampler's cache then behaves exactly as it
    would from the refined noise alone."""
    pack = Pack(erase=2, strength=0.5)
    cached = lambda m: node(cache, model=m, reuse_threshold=0.5, start_percent=0.0, end_percent=1.0, verbose=False)
    base = tiny_models.make_model(family)
    lat = empty(family)
    steps = 8  # enough steps for the cache to skip some

    def run(model, label):
        pos, neg = conditioning(family)
        m = probes.capture(model, label)
        out = nodes.KSampler().sample(m, SEED, steps, CFG, "euler", "normal", pos, neg, lat, 1.0)[0]["samples"]
        return out, probes.RECORDS[label][0]["noise"]

    _, pack_noise = run(pack.apply(base), "pack")
    stock_cached, _ = run(cached(base), "cache")
    assert not torch.allclose(stock_cached, run(base, "stock")[0])  # the cache skips steps here
    runs = {order: run(cached(pack.apply(base)) if order == "pack_first" else pack.apply(cached(base)), order)
            for order in ORDERS}
    from_refined, _ = run(cached(starting_from(base, pack_noise)), "from_refined")
    for order, (out, noise) in runs.items():
        assert torch.equal(noise, pack_noise), order  # probes computed in full
        assert torch.equal(out, from_refined), order  # the sampler's cache untouched by the probes
    assert torch.equal(runs["pack_first"][0], runs["pack_last"][0])
