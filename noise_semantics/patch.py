"""ComfyUI glue: one SAMPLER_SAMPLE wrapper that refines the sampler's starting noise.

Why a wrapper on the MODEL wire: KSampler/KSamplerAdvanced draw their noise from their own seed
inside ``nodes.common_ksampler``; no LATENT can replace it. The SAMPLER_SAMPLE wrapper runs after
the model is loaded on its device and the conditioning is prepared, and is handed the noise, the
sigmas and the guider (the sampler's own prompt, CFG and every other model patch). So the
refinement uses exactly what the sampler uses, with KSampler, KSamplerAdvanced, SamplerCustom and
SamplerCustomAdvanced alike.

Both nodes write their settings into ``transformer_options["noise_semantics"]`` of a cloned
model and register the same wrapper once, so the paper's order (erase, then inject) holds however
the two nodes are chained, and a second node of the same kind replaces the first one's settings.
"""
from __future__ import annotations

import logging
import math

import torch

import comfy.model_base
import comfy.model_management
import comfy.model_sampling
import comfy.patcher_extension
import comfy.utils

from . import core

WRAPPER_KEY = "noise_semantics"
OPTIONS_KEY = "noise_semantics"
log = logging.getLogger("comfyui-noise-semantics")


def partial_latent(model) -> str | None:
    """Why this model reads only part of the latent it is sampled with, or None. There an injected
    noise, standardized over the whole latent, is not a unit Gaussian sample where the model reads it
    (the dead entries carry none of the semantic direction), so Inject refuses it; Erase and screening
    keep every entry an i.i.d. Gaussian and stay exact.

    TRELLIS.2 (ComfyUI 0.33): its dense structure stage samples EmptyTrellis2LatentStructure's
    32 x 16^3 latent, but the model reads channels 0-7 and pads its output with 24 zero channels
    (comfy/ldm/trellis2/model.py); its sparse stages pad every shape of a batch to the largest voxel
    count and return zeros there."""
    trellis2 = getattr(comfy.model_base, "Trellis2", None)
    if trellis2 is not None and isinstance(getattr(model, "model", None), trellis2):
        return ("TRELLIS.2 reads only part of its latent (8 of the 32 channels in its structure stage; "
                "padded voxels in its sparse stages)")
    return None


def patched(model, part: str, settings: dict):
    """Clone ``model`` and set one part ('erase' or 'inject') of the refinement."""
    if part == "inject" and settings.get("strength", 0) > 0:
        why = partial_latent(model)
        if why is not None:
            raise core.NoiseSemanticsError(
                f"[Noise Semantic Inject] input 'model': {why}, so an injected noise would not be a unit "
                f"Gaussian sample where the model reads it. Fix: set strength to 0 (screening with candidates "
                f"still works), or use Noise Semantic Erase alone, which is exact on this model")
    m = model.clone()
    topts = m.model_options.setdefault("transformer_options", {})
    cfg = dict(topts.get(OPTIONS_KEY, {}))
    cfg[part] = dict(settings)
    topts[OPTIONS_KEY] = cfg
    if not m.get_wrappers(comfy.patcher_extension.WrappersMP.SAMPLER_SAMPLE, WRAPPER_KEY):
        m.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.SAMPLER_SAMPLE, WRAPPER_KEY, refine_noise_wrapper)
    return m


def settings_of(model_options: dict) -> dict:
    return model_options.get("transformer_options", {}).get(OPTIONS_KEY, {})


def probe_chunk(model, z: torch.Tensor, probes: int, rows: int, free: float | None = None) -> int:
    """Largest number of probes per guided call whose batch (probes x B x ``rows``: CFG branches
    times screening candidates) fits, by the same estimate ComfyUI's calc_cond_batch uses. The
    memory the user reserved for other programs (--reserve-vram) is not ours to batch into: the
    probes are extra work on top of sampling, so they stay out of it."""
    if free is None:
        free = comfy.model_management.get_free_memory(z.device) - comfy.model_management.extra_reserved_memory()
    for c in range(probes, 0, -1):
        shape = (c * z.shape[0] * rows,) + tuple(z.shape[1:])
        try:
            need = model.memory_required(shape)
        except Exception:  # models without an estimate: one call for all probes
            return probes
        if need * 1.5 < free:
            return c
    return 1


def _needs_branches(settings: dict) -> bool:
    return settings.get("direction", "guided") != "guided" or settings.get("candidates", 1) > 1


def sampler_start(guider, extra_args, sigmas, latent_image, denoise_mask, settings: dict):
    """core.SamplerStart for input-aware probes, built from the model's own rules, or None: the probes
    then see the noise alone (the node's behaviour). Not a node input: measured on img2img and
    inpainting (benchmarks/img2img.py), it did not earn one (docs/method.md); the setting
    ``probe_input`` = 'sampler' in the inject settings (``patched``) is how the benchmark and the tests
    reach it. An empty input latent without a mask (txt2img) gives None under both settings."""
    probe_input = settings.get("probe_input", "noise")
    if probe_input not in core.PROBE_INPUTS:
        raise core.NoiseSemanticsError(f"[Noise Semantic Inject] setting 'probe_input' is {probe_input!r}. Fix: "
                                       f"use one of {', '.join(core.PROBE_INPUTS)}")
    if probe_input != "sampler" or latent_image is None:
        return None
    if denoise_mask is None and torch.count_nonzero(latent_image) == 0:
        return None
    model = guider.inner_model
    ms = model.model_sampling
    sigma_max = float(ms.sigma_max)

    def noise_scaling(sig, noise, latent):
        # the sampler's own rule for its first sigma: full-variance noise at sigma_max (max_denoise)
        top = float(sig[0])
        return ms.noise_scaling(sig, noise, latent, max_denoise=math.isclose(top, sigma_max, rel_tol=1e-5)
                                or top > sigma_max)

    def kept_scaling(sig, noise, latent, x, mask):
        return model.scale_latent_inpaint(x=x, sigma=sig, noise=noise, latent_image=latent, denoise_mask=mask)

    mask_at = None
    fn = extra_args["model_options"].get("denoise_mask_function")
    if fn is not None and denoise_mask is not None:
        def mask_at(sig, mask):
            return fn(sig, mask, extra_options={"model": guider, "sigmas": sigmas})
    return core.SamplerStart(latent_image, noise_scaling, denoise_mask, kept_scaling, mask_at)


def one_row_per_call(predict):
    """ComfyUI's context windows (the Context Windows and WAN Context Windows nodes) take one timestep
    per model call: on 0.3.75 and 0.33 a batch of two fails even in stock sampling. With them on, the
    probe batch (probes x candidates x samples) goes through the model one row at a time."""
    def run(x, sig):
        outs = [predict(x[i:i + 1], sig[i:i + 1]) for i in range(x.shape[0])]
        if isinstance(outs[0], tuple):
            return tuple(torch.cat(parts, 0) for parts in zip(*outs))
        return torch.cat(outs, 0)
    return run


def without_step_cache(model_options: dict, model_sampling) -> dict:
    """ComfyUI's EasyCache and LazyCache nodes keep a step cache in ``transformer_options["easycache"]``
    and skip a model call when it looks like the previous one: they take every call for a sampling
    step. A probe is not one. Each probe call gets an empty cache of the same settings (the node's own
    clone), so the probes are computed in full and the sampler's cache starts as it would without them."""
    cache = model_options.get("transformer_options", {}).get("easycache")
    if cache is None or not hasattr(cache, "clone") or not hasattr(cache, "prepare_timesteps"):
        return model_options
    out = dict(model_options)
    out["transformer_options"] = dict(out["transformer_options"], easycache=cache.clone().prepare_timesteps(model_sampling))
    return out


def probe_sigma(model_sampling, tau: float) -> float:
    """The sigma of a probe at normalized time ``tau`` (1 = pure noise), defined so that a setting means
    the same signal-to-noise ratio on every rectified-flow model whatever its shift (issue 18 item 6).

    Rectified flow (ComfyUI's CONST sampling: FLUX, SD3, WAN, ...): x = (1 - sigma) x0 + sigma n, so
    sigma itself is the noise fraction and ``sigma = tau`` (SNR ((1 - tau) / tau)^2). The shift only
    moves where the sampler's steps fall; through ``percent_to_sigma`` a probe at tau 0.6 would sit at
    sigma 0.82 on FLUX-like shift 3 and 0.92 on WAN's shift 8, where the screening score measured weaker
    (benchmarks/results/selectors.md). Other families (eps, v): ``percent_to_sigma(1 - tau)``, the
    fraction of the model's own noise schedule, which no shift node moves; clamped to sigma_max
    (percent 0 is a 'max denoise' sentinel, 1e9, on discrete models)."""
    sigma_max = float(model_sampling.sigma_max)
    if isinstance(model_sampling, comfy.model_sampling.CONST):
        return min(max(float(tau), float(model_sampling.sigma_min)), sigma_max)
    return min(float(model_sampling.percent_to_sigma(1.0 - tau)), sigma_max)


def run_injection(guider, extra_args, z: torch.Tensor, settings: dict, candidates=None, segments=None,
                  start=None) -> tuple:
    node = "Noise Semantic Inject"
    schedule = settings["schedule"]
    strength = settings["strength"]
    model = guider.inner_model
    ms = model.model_sampling
    sigma_max = float(ms.sigma_max)
    branches = _needs_branches(settings)
    model_options = extra_args["model_options"]
    if branches:
        if getattr(guider, "conds", {}).get("negative") is None:
            raise core.NoiseSemanticsError(
                f"[{node}] direction 'prompt' and candidates > 1 compare the prompt with the negative "
                f"(unconditional) prompt, but this sampler's guider has none. Fix: sample with a guider that "
                f"has a negative (KSampler, CFGGuider), or use direction 'guided' with candidates 1")
        seen = {}

        def read_branches(args):
            # sampler_post_cfg_function: the probe call's own hook, so CFG's two predictions can be
            # read without a second model call; it returns the guided result unchanged.
            seen["cond"], seen["uncond"] = args["cond_denoised"], args["uncond_denoised"]
            return args["denoised"]

        model_options = dict(model_options)
        model_options["sampler_post_cfg_function"] = list(model_options.get("sampler_post_cfg_function", [])) + [
            read_branches]
        # At cfg 1 ComfyUI skips the unconditional branch; the conflict needs it (cost: 2 evaluations/probe).
        model_options["disable_cfg1_optimization"] = True

    def sigma_of_tau(tau: float) -> float:
        return probe_sigma(ms, tau)

    windows = model_options.get("context_handler") is not None
    own = model_options.get("transformer_options", {}).get("sample_sigmas")
    if windows and own is not None:
        # The context windows find the step by looking the call's sigma up in the sampler's sigmas
        # (0.3.75 stops on a sigma it cannot find; 0.33 keeps whatever step the windows were left at): for
        # the probe calls only, the probe sigmas follow the sampler's own.
        probe = [sigma_of_tau(t) for t, w in zip(schedule.taus, schedule.weights) if w != 0.0]
        model_options = dict(model_options)
        model_options["transformer_options"] = dict(model_options["transformer_options"], sample_sigmas=torch.cat(
            [own, torch.tensor(probe, dtype=own.dtype, device=own.device)]))

    def c_in(sig: torch.Tensor) -> torch.Tensor:
        one = torch.ones((sig.shape[0],) + (1,) * (z.ndim - 1), dtype=torch.float32, device=z.device)
        return ms.calculate_input(sig, one).reshape(sig.shape[0])

    calls = [0]

    def predict(x, sig):
        comfy.model_management.throw_exception_if_processing_interrupted()
        calls[0] += 1
        try:
            d = guider(x, sig, model_options=without_step_cache(model_options, ms), seed=extra_args.get("seed"))
        except comfy.model_management.InterruptProcessingException:
            raise
        except torch.OutOfMemoryError:
            raise
        except Exception as e:
            raise core.NoiseSemanticsError(
                f"[{node}] the model rejected a probe batch of shape {tuple(x.shape)}: {e}. Fix: use a latent "
                f"this model accepts (right channels, size and frame count), or remove the Inject node to "
                f"check the model alone") from e
        if not branches:
            return d
        return d, seen.pop("cond"), seen.pop("uncond")

    live = sum(1 for w in schedule.weights if w != 0.0)
    cfg_branches = 2 if branches or not math.isclose(getattr(guider, "cfg", 1.0), 1.0) else 1
    chunk = probe_chunk(model, z, live, cfg_branches * (len(candidates) if candidates else 1))
    while True:
        pbar = comfy.utils.ProgressBar(live)
        calls[0] = 0
        try:
            out = core.refine_inject(z, schedule, strength, sigma_of_tau, c_in,
                                     one_row_per_call(predict) if windows else predict, chunk=chunk,
                                     on_chunk=pbar.update, decorrelated=settings.get("decorrelate", True),
                                     direction=settings.get("direction", "guided"), candidates=candidates,
                                     node=node, segments=segments, start=start)
            return out, calls[0], chunk
        except torch.OutOfMemoryError:
            if chunk == 1:
                raise
            chunk = max(1, chunk // 2)
            log.warning("%s: out of memory, retrying with %d probe(s) per model call", node, chunk)
            comfy.model_management.soft_empty_cache(True)


def packed_shapes(guider, noise: torch.Tensor, node: str):
    """The sub-latent shapes when the sampler packed several latents into this one noise tensor
    (ComfyUI 0.33: a nested latent such as LTX-2's video + audio becomes [B, 1, N] and the model
    keeps the shapes in ``latent_shapes``), else None (one latent; hosts without latent_shapes)."""
    shapes = getattr(guider.inner_model, "latent_shapes", None)
    if shapes is None or len(shapes) < 2:
        return None
    sizes = [math.prod(s[1:]) for s in shapes]
    if noise.ndim != 3 or noise.shape[1] != 1 or noise.shape[2] != sum(sizes):
        raise core.NoiseSemanticsError(
            f"[{node}] this sampler packs {len(shapes)} latents {[tuple(s) for s in shapes]} into one, "
            f"but its noise has shape {tuple(noise.shape)}, not [B, 1, {sum(sizes)}]: the sub-latents cannot be "
            f"told apart. Fix: remove the Noise Semantic nodes from this model (this ComfyUI packs latents in a "
            f"way this pack does not know)")
    return [tuple(s) for s in shapes]


def starting_noises(noise: torch.Tensor, seed: int, shapes, candidates: int, erase_s) -> list:
    """Screening's candidates (the sampler's noise first), each erased like the sampler's noise.
    A packed noise is split into its sub-latents and each is drawn and erased as the latent it is
    (its own extra draws, keyed on its own values, re-standardized on its own), then packed again."""
    subs = [noise] if shapes is None else comfy.utils.unpack_latents(noise, shapes)
    per_sub = []
    for sub in subs:
        cands = core.candidate_noises(sub, seed, candidates) if candidates > 1 else [sub]
        if erase_s is not None:
            cands = [core.erase(c, seed, erase_s["samples"], erase_s["restandardize"]) for c in cands]
        per_sub.append(cands)
    if shapes is None:
        return per_sub[0]
    return [comfy.utils.pack_latents([cands[j] for cands in per_sub])[0] for j in range(candidates)]


def refine_noise_wrapper(executor, guider, sigmas, extra_args, callback, noise, latent_image, denoise_mask,
                         disable_pbar):
    settings = settings_of(extra_args["model_options"])
    erase_s, inject_s = settings.get("erase"), settings.get("inject")
    if erase_s is None and inject_s is None:
        return executor(guider, sigmas, extra_args, callback, noise, latent_image, denoise_mask, disable_pbar)
    if torch.count_nonzero(noise) == 0:
        # add_noise disabled (refiner stage, WAN 2.2 low-noise stage): nothing to refine, by design.
        log.info("Noise Semantics: this sampler adds no noise (add_noise disabled); noise left untouched")
        return executor(guider, sigmas, extra_args, callback, noise, latent_image, denoise_mask, disable_pbar)

    seed = extra_args.get("seed")
    seed = 0 if seed is None else int(seed)
    node = " + ".join(n for n, s in (("Noise Semantic Erase", erase_s), ("Noise Semantic Inject", inject_s)) if s is not None)
    shapes = packed_shapes(guider, noise, node)
    segments = None if shapes is None else [math.prod(s[1:]) for s in shapes]
    notes = [] if shapes is None else [f"{len(shapes)} packed latents {shapes}, each refined as its own sample"]
    m = inject_s.get("candidates", 1) if inject_s is not None else 1
    cands = starting_noises(noise, seed, shapes, m, erase_s)
    if erase_s is not None:
        notes.append(f"erased with n={erase_s['samples']}")
    z = cands[0]
    if inject_s is not None and inject_s["strength"] == 0 and m == 1:
        notes.append("inject strength 0: no change")
    elif inject_s is not None:
        z, calls, chunk = run_injection(guider, extra_args, z, inject_s, cands if m > 1 else None, segments,
                                        sampler_start(guider, extra_args, sigmas, latent_image, denoise_mask,
                                                      inject_s))
        what = f"screened {m} candidate noises, " if m > 1 else ""
        notes.append(f"{what}injected strength {inject_s['strength']:g} ({inject_s.get('direction', 'guided')}) "
                     f"from {len(inject_s['schedule'])} probe(s) in {calls} guided call(s) of up to {chunk} probe(s)")
    ms = guider.inner_model.model_sampling
    if float(sigmas[0]) < float(ms.sigma_max) * (1 - 1e-3):
        notes.append(f"sampling starts below sigma_max ({float(sigmas[0]):.4g} < {float(ms.sigma_max):.4g}, "
                     f"denoise < 1): the refined noise is what gets added to the input latent")
    log.info("Noise Semantics: %s", "; ".join(notes))
    return executor(guider, sigmas, extra_args, callback, z, latent_image, denoise_mask, disable_pbar)
