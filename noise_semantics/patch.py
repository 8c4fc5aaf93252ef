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

import comfy.model_management
import comfy.patcher_extension
import comfy.utils

from . import core

WRAPPER_KEY = "noise_semantics"
OPTIONS_KEY = "noise_semantics"
log = logging.getLogger("comfyui-noise-semantics")


def patched(model, part: str, settings: dict):
    """Clone ``model`` and set one part ('erase' or 'inject') of the refinement."""
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
    times screening candidates) fits, by the same estimate ComfyUI's calc_cond_batch uses."""
    if free is None:
        free = comfy.model_management.get_free_memory(z.device)
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


def run_injection(guider, extra_args, z: torch.Tensor, settings: dict, candidates=None) -> tuple:
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
        # percent_to_sigma(0) is a 'max denoise' sentinel (1e9) for discrete models: clamp.
        return min(float(ms.percent_to_sigma(1.0 - tau)), sigma_max)

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
                                     node=node)
            return out, calls[0], chunk
        except torch.OutOfMemoryError:
            if chunk == 1:
                raise
            chunk = max(1, chunk // 2)
            log.warning("%s: out of memory, retrying with %d probe(s) per model call", node, chunk)
            comfy.model_management.soft_empty_cache(True)


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
    z = noise
    notes = []
    m = inject_s.get("candidates", 1) if inject_s is not None else 1
    # Screening's candidates come from the sampler's noise and are each erased like it.
    cands = core.candidate_noises(z, seed, m) if m > 1 else [z]
    if erase_s is not None:
        cands = [core.erase(c, seed, erase_s["samples"], erase_s["restandardize"]) for c in cands]
        notes.append(f"erased with n={erase_s['samples']}")
    z = cands[0]
    if inject_s is not None and inject_s["strength"] == 0 and m == 1:
        notes.append("inject strength 0: no change")
    elif inject_s is not None:
        z, calls, chunk = run_injection(guider, extra_args, z, inject_s, cands if m > 1 else None)
        what = f"screened {m} candidate noises, " if m > 1 else ""
        notes.append(f"{what}injected strength {inject_s['strength']:g} ({inject_s.get('direction', 'guided')}) "
                     f"from {len(inject_s['schedule'])} probe(s) in {calls} guided call(s) of up to {chunk} probe(s)")
    ms = guider.inner_model.model_sampling
    if float(sigmas[0]) < float(ms.sigma_max) * (1 - 1e-3):
        notes.append(f"sampling starts below sigma_max ({float(sigmas[0]):.4g} < {float(ms.sigma_max):.4g}, "
                     f"denoise < 1): the refined noise is what gets added to the input latent")
    log.info("Noise Semantics: %s", "; ".join(notes))
    return executor(guider, sigmas, extra_args, callback, z, latent_image, denoise_mask, disable_pbar)
