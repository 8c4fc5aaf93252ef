"""The probes are not sampling steps (issue 18 item 2): state ComfyUI keeps across the model calls of
one sampling run must not see them. For each piece of per-step state that exists on the host, a run
with the pack is compared with the run the sampler makes from the same refined noise with no probes
before it (``starting_from``): same per-call state, same output, bit for bit.

* Scheduled hooks: a hook LoRA on the conditioning (Create Hook LoRA + Create Hook Keyframe + Set Hook
  Keyframes + Cond Pair Set Props, ComfyUI's own nodes) at strength 1.0 from 0 % and 0.0 from 30 %.
  ComfyUI moves each hook's keyframe forward from the sigma of every model call and never back.
* ControlNet with a timestep range (start/end percent) and a hint batch of 2 images, whose resized
  hint the ControlNet caches and re-broadcasts to each call's batch.
* T2I adapter: features computed once from the hint at the first call's batch.
* APG (a pre-CFG function with a momentum average in its closure, reset only when the sigma rises).
* An ancestral sampler's per-step noise.
"""
from __future__ import annotations

import logging

import pytest
import safetensors.torch
import torch

import comfy.patcher_extension as pe
import folder_paths
import nodes

import probes
import tiny_models
from test_combos import Pack, conditioning, empty, node, outputs, starting_from, tiny_controlnet, tiny_lora_name

SEED = 4242
STEPS = 6
CFG = 3.0


class DefaultPack(Pack):
    """Erase 2, Inject at its default schedule (one probe at tau 0.6: a low sigma, called before the
    first step)."""

    def apply(self, model):
        m = node("NoiseSemanticErase", model=model, samples=self.erase, restandardize=True)
        return node("NoiseSemanticInject", model=m, strength=self.strength, decorrelate=True, direction="guided",
                    candidates=self.candidates)


def hooked_conditioning(family="sdxl", where="both"):
    """(positive, negative) with a hook LoRA at strength 1.0 from 0 % and 0.0 from 30 % on both (one hook
    group: ComfyUI patches the weights per call) or on the positive only (two groups, hooked and none:
    ComfyUI caches the hooked weights), and the hook group (its keyframe group is the one ComfyUI
    advances while sampling)."""
    hooks = node("CreateHookLoraModelOnly", lora_name=tiny_lora_name(), strength_model=1.0)
    kf = node("CreateHookKeyframe", strength_mult=1.0, start_percent=0.0)
    kf = node("CreateHookKeyframe", strength_mult=0.0, start_percent=0.3, prev_hook_kf=kf)
    hooks = node("SetHookKeyframes", hooks=hooks, hook_kf=kf)
    pos, neg = conditioning(family)
    if where == "both":
        cpos, cneg = outputs("PairConditioningSetProperties", positive_NEW=pos, negative_NEW=neg, strength=1.0,
                             set_cond_area="default", hooks=hooks)[:2]
    else:
        cpos, cneg = node("ConditioningSetProperties", cond_NEW=pos, strength=1.0, set_cond_area="default",
                          hooks=hooks), neg
    return (cpos, cneg), hooks


class KeyframeLog:
    """Per model call of the sampling run: (sigma, keyframe index, strength) of each hook, read in an
    APPLY_MODEL wrapper (after ComfyUI prepared the call's keyframes). Calls before the sampler starts
    (the probes) are not logged: a SAMPLER_SAMPLE wrapper inside the pack's switches logging on."""

    def __init__(self, hooks):
        self.hooks, self.on, self.calls = hooks, False, []

    def attach(self, model):
        m = model.clone()

        def start(executor, *args, **kwargs):
            self.on = True
            try:
                return executor(*args, **kwargs)
            finally:
                self.on = False

        def call(executor, x, t, *args, **kwargs):
            if self.on:
                self.calls.append((round(float(t[0]), 5),) + tuple(
                    (h.hook_keyframe._current_index, float(h.strength)) for h in self.hooks.hooks))
            return executor(x, t, *args, **kwargs)
        m.add_wrapper_with_key(pe.WrappersMP.SAMPLER_SAMPLE, "nsp_test_kf_start", start)
        pe.add_wrapper_with_key(pe.WrappersMP.APPLY_MODEL, "nsp_test_kf_log", call, m.model_options,
                                is_model_options=True)
        return m


def ksample(model, cond, lat, steps=STEPS, denoise=1.0):
    pos, neg = cond
    return nodes.KSampler().sample(model, SEED, steps, CFG, "euler", "normal", pos, neg, lat, denoise)[0]["samples"]


def pack_and_reference(base, cond, lat, pack, hooks=None):
    """(pack run, reference run): outputs, logs and the refined noise. The reference samples the
    refined noise with no probes before it."""
    logs = [KeyframeLog(hooks) if hooks is not None else None for _ in range(2)]
    wrap = (lambda m, i: logs[i].attach(m)) if hooks is not None else (lambda m, i: m)
    out = ksample(wrap(probes.capture(pack.apply(base), "pack"), 0), cond, lat)
    noise = probes.RECORDS["pack"][0]["noise"]
    ref = ksample(wrap(starting_from(base, noise), 1), cond, lat)
    return out, ref, noise, logs


@pytest.mark.parametrize("where,candidates", [("both", 1), ("positive", 2)])
def test_scheduled_hook_keyframes_follow_the_sampler_not_the_probes(where, candidates):
    """The keyframe sequence of the sampling steps is the one ComfyUI gives without the pack: LoRA at
    1.0 for the first 30 %, then 0.0; the probes (at low sigma, before the first step) moved it to the
    late keyframe before the fix."""
    family, base, lat = "sdxl", tiny_models.make_model("sdxl"), empty("sdxl")
    cond, hooks = hooked_conditioning(family, where)
    assert not torch.allclose(ksample(base, cond, lat), ksample(base, conditioning(family), lat))  # the hook acts
    pack = DefaultPack(erase=2, strength=0.5, candidates=candidates)
    out, ref, noise, (log, ref_log) = pack_and_reference(base, cond, lat, pack, hooks)
    assert log.calls and log.calls == ref_log.calls, (log.calls, ref_log.calls)
    strengths = [c[1][1] for c in ref_log.calls]
    assert strengths[0] == 1.0 and strengths[-1] == 0.0, ref_log.calls  # the schedule switches mid-run
    assert torch.equal(out, ref)
    # and again: a second run of the same graph (the hooks carry state from the last run) is the same
    out2, ref2, *_ = pack_and_reference(base, cond, lat, pack, hooks)
    assert torch.equal(out2, out) and torch.equal(ref2, ref)


@pytest.mark.parametrize("hint_batch", [1, 2])
def test_controlnet_timestep_range_and_hint_cache_follow_the_sampler(hint_batch):
    """A ControlNet active from 0 % to 40 % of the run, its hint a batch of 1 or 2 images for a latent
    batch of 2: the probes (another batch size, another sigma) leave the sampler's control as it is."""
    family, base = "sdxl", tiny_models.make_model("sdxl")
    lat = {"samples": torch.zeros(tiny_models.latent_shape(family, batch=2))}
    pos, neg = tiny_models.make_conditioning(family, 0, 1)
    side = lat["samples"].shape[-1] * 8
    hint = torch.rand(hint_batch, side, side, 3, generator=torch.manual_seed(6))
    cond = outputs("ControlNetApplyAdvanced", positive=pos, negative=neg, control_net=tiny_controlnet(),
                   image=hint, strength=1.0, start_percent=0.0, end_percent=0.4)[:2]
    assert not torch.allclose(ksample(base, cond, lat), ksample(base, (pos, neg), lat))  # the ControlNet acts
    out, ref, *_ = pack_and_reference(base, cond, lat, DefaultPack(erase=2, strength=0.5, candidates=2))
    assert torch.equal(out, ref)


@pytest.mark.parametrize("case", ["txt2img_tau1", "img2img"])
def tiny_t2i_adapter():
    """A T2I adapter from ComfyUI's classes (comfy.t2i_adapter.adapter.Adapter, SD1.5 layout, widths of the
    tiny SDXL UNet) in comfy.controlnet.T2IAdapter, as load_t2i_adapter builds one. Hint at 4x the latent
    side: its first feature (32 channels at the latent's half side) lands on the UNet's third input block."""
    import comfy.controlnet
    import comfy.t2i_adapter.adapter
    import model_init
    net = comfy.t2i_adapter.adapter.Adapter(channels=[32, 64], nums_rb=1, cin=3 * 64, ksize=1, sk=True,
                                            use_conv=False, xl=False)
    model_init.init_weights(net, 9)
    net.requires_grad_(False)
    return comfy.controlnet.T2IAdapter(net, net.input_channels, 4, "nearest-exact", device=torch.device("cpu"))


@pytest.mark.parametrize("hint_batch", [1, 2])
def test_t2i_adapter_features_follow_the_sampler(hint_batch, caplog):
    """A T2I adapter computes its features once, from the hint broadcast to the first call's batch, and
    reuses them: computed at the probe batch, they no longer fit the sampler's (ComfyUI then skips them
    with a warning)."""
    family, base = "sdxl", tiny_models.make_model("sdxl")
    lat = {"samples": torch.zeros(tiny_models.latent_shape(family, batch=2))}
    pos, neg = tiny_models.make_conditioning(family, 0, 1)
    side = lat["samples"].shape[-1] * 4
    hint = torch.rand(hint_batch, side, side, 3, generator=torch.manual_seed(8))
    cond = outputs("ControlNetApplyAdvanced", positive=pos, negative=neg, control_net=tiny_t2i_adapter(),
                   image=hint, strength=1.0, start_percent=0.0, end_percent=1.0)[:2]
    assert not torch.allclose(ksample(base, cond, lat), ksample(base, (pos, neg), lat))  # the adapter acts
    with caplog.at_level(logging.WARNING):
        out, ref, *_ = pack_and_reference(base, cond, lat, DefaultPack(erase=2, strength=0.5, candidates=2))
    assert "control could not be applied" not in caplog.text
    assert torch.equal(out, ref)


@pytest.mark.parametrize("case", ["txt2img_tau1", "img2img"])
def test_cfg_function_state_follows_the_sampler(case):
    """ComfyUI's APG node (Adaptive Projected Guidance) keeps a momentum average of cond - uncond across
    model calls in its pre-CFG function, reset only when the sigma goes up. A probe at sigma_max (a
    schedule with tau 1.0) before a sampler that starts there, or a probe above the first sigma of an
    img2img sampler, would be averaged into the sampler's first step."""
    family, base = "sdxl", tiny_models.make_model("sdxl")
    apg = node("APG", model=base, eta=1.0, norm_threshold=0.0, momentum=0.5)
    if case == "txt2img_tau1":
        sched = node("NoiseSemanticTemporalSchedule", probes=2, tau_min=0.5, tau_max=1.0, weighting="uniform",
                     center=0.8, half_width=0.5, flatness=1.0)
        lat, denoise, apply_to = empty(family), 1.0, "from pure noise only"
    else:
        sched = None
        src = torch.randn(tiny_models.latent_shape(family), generator=torch.manual_seed(5))
        lat, denoise, apply_to = {"samples": src}, 0.5, "every sampler"
    patched = node("NoiseSemanticInject", model=apg, strength=0.5, decorrelate=True, schedule=sched,
                   direction="guided", candidates=1, apply_to=apply_to)
    cond = conditioning(family)
    out = ksample(probes.capture(patched, "pack"), cond, lat, denoise=denoise)
    noise = probes.RECORDS["pack"][0]["noise"]
    ref = ksample(starting_from(apg, noise), cond, lat, denoise=denoise)
    assert not torch.equal(ksample(apg, cond, lat, denoise=denoise), ksample(base, cond, lat, denoise=denoise))
    assert torch.equal(out, ref)


def test_ancestral_sampler_noise_follows_the_sampler():
    """An ancestral sampler draws fresh noise every step from its own seeded generator: the probes draw
    nothing from it (nor from torch's global generator), so its draws are the stock ones."""
    family, base = "sdxl", tiny_models.make_model("sdxl")
    lat, (pos, neg) = empty(family), conditioning(family)

    def run(model):
        return nodes.KSampler().sample(model, SEED, STEPS, CFG, "euler_ancestral", "normal", pos, neg, lat,
                                       1.0)[0]["samples"]
    torch.manual_seed(0)
    out = run(probes.capture(DefaultPack(erase=2, strength=0.5, candidates=2).apply(base), "pack"))
    torch.manual_seed(0)
    ref = run(starting_from(base, probes.RECORDS["pack"][0]["noise"]))
    assert torch.equal(out, ref)
