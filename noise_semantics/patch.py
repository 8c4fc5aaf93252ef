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
from dataclasses import dataclass

import torch

import comfy.model_base
import comfy.model_management
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


def cfg_rows(guider, branches: bool) -> int:
    """Evaluations per probe and noise: CFG's two branches, or one where ComfyUI skips the
    unconditional branch (cfg 1) and the probes do not read it."""
    return 2 if branches or not math.isclose(getattr(guider, "cfg", 1.0), 1.0) else 1


def probe_with_model(guider, extra_args, z: torch.Tensor, settings: dict, body, rows: int = 1, branches=None,
                     node: str = "Noise Semantic Inject") -> tuple:
    """The probing both Noise Semantic Inject and Noise Semantic Preview do, inside a sampler's
    SAMPLER_SAMPLE wrapper: builds ``predict`` (the sampler's own guider, its CFG branches read when
    ``branches``), the probe sigmas and the network's input scaling, and runs
    ``body(sigma_of_tau, c_in, predict, chunk, on_chunk)`` (a call of core.refine_inject or
    core.screen) in chunks of probes that fit in memory, halving the chunk on out-of-memory.
    ``rows``: noises probed per sample (screening's candidates). Returns (body's result, guided calls,
    chunk)."""
    schedule = settings["schedule"]
    model = guider.inner_model
    ms = model.model_sampling
    sigma_max = float(ms.sigma_max)
    branches = _needs_branches(settings) if branches is None else branches
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
            if node == PREVIEW:  # the Preview's latent is its own input
                raise core.NoiseSemanticsError(
                    f"[{node}] input 'latent': the model rejected a probe batch of shape {tuple(x.shape)}: {e}. "
                    f"Fix: connect the latent this model's sampler gets (right channels, size and frame count)") from e
            raise core.NoiseSemanticsError(
                f"[{node}] the model rejected a probe batch of shape {tuple(x.shape)}: {e}. Fix: use a latent "
                f"this model accepts (right channels, size and frame count), or remove the Inject node to "
                f"check the model alone") from e
        if not branches:
            return d
        return d, seen.pop("cond"), seen.pop("uncond")

    live = sum(1 for w in schedule.weights if w != 0.0)
    chunk = probe_chunk(model, z, live, cfg_rows(guider, branches) * rows)
    while True:
        pbar = comfy.utils.ProgressBar(live)
        calls[0] = 0
        try:
            out = body(sigma_of_tau, c_in, one_row_per_call(predict) if windows else predict, chunk, pbar.update)
            return out, calls[0], chunk
        except torch.OutOfMemoryError:
            if chunk == 1:
                raise
            chunk = max(1, chunk // 2)
            log.warning("%s: out of memory, retrying with %d probe(s) per model call", node, chunk)
            comfy.model_management.soft_empty_cache(True)


def run_injection(guider, extra_args, z: torch.Tensor, settings: dict, candidates=None, segments=None,
                  start=None, report: dict | None = None) -> tuple:
    """Noise Semantic Inject's refinement of ``z`` (screening ``candidates`` first), probing through
    ``probe_with_model``. Returns (refined noise, guided calls, chunk); ``report``: see
    core.refine_inject."""
    node = "Noise Semantic Inject"

    def body(sigma_of_tau, c_in, predict, chunk, on_chunk):
        return core.refine_inject(z, settings["schedule"], settings["strength"], sigma_of_tau, c_in, predict,
                                  chunk=chunk, on_chunk=on_chunk, decorrelated=settings.get("decorrelate", True),
                                  direction=settings.get("direction", "guided"), candidates=candidates, node=node,
                                  segments=segments, start=start, report=report)
    return probe_with_model(guider, extra_args, z, settings, body, len(candidates) if candidates else 1, node=node)


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


PREVIEW = "Noise Semantic Preview"


@dataclass
class PreviewSink:
    """Where the Preview node's probing (inside the sampler wrapper) leaves its findings: an object,
    not a dict, so that it is shared, not copied, when the sampler clones its model options."""
    screening: core.Screening | None = None
    prefers: torch.Tensor | None = None
    asked: torch.Tensor | None = None
    calls: int = 0


def preview_probes(guider, sigmas, extra_args, noise, erase_s: dict | None, preview_s: dict):
    """Noise Semantic Preview, inside a real sampler set-up (CFGGuider.sample: model loaded,
    conditioning prepared): the candidates Inject would screen from this noise (erased first if the
    model carries Erase), probed through the same ``probe_with_model`` / ``core.screen``, both CFG
    branches and the mean predictions kept. The sampler itself is never run."""
    seed = extra_args.get("seed")
    seed = 0 if seed is None else int(seed)
    shapes = packed_shapes(guider, noise, PREVIEW)
    if shapes is not None:
        raise core.NoiseSemanticsError(
            f"[{PREVIEW}] input 'latent' holds {len(shapes)} latents {shapes} packed into one; a sheet of them "
            f"cannot be decoded as one picture. Fix: preview with the video (or image) latent alone")
    m = int(preview_s["candidates"])
    cands = starting_noises(noise, seed, None, m, erase_s)
    schedule = preview_s["schedule"]

    def body(sigma_of_tau, c_in, predict, chunk, on_chunk):
        return core.screen(cands[0], schedule, sigma_of_tau, c_in, predict, cands if m > 1 else None, True, chunk,
                           on_chunk, PREVIEW, denoised=True)
    found, calls, _ = probe_with_model(guider, extra_args, cands[0], {"schedule": schedule}, body, m, branches=True,
                                       node=PREVIEW)
    sink = preview_s["sink"]
    out = guider.inner_model.process_latent_out  # model space -> the LATENT a VAE decodes
    sink.screening, sink.calls = found, calls
    sink.prefers = out(found.probes.uncond.to(noise.dtype)).float()
    sink.asked = out(found.probes.denoised.to(noise.dtype)).float()
    return noise


def report_lines(found: core.Screening | None, batch: int, strength: float, evaluations: int) -> list:
    """Per image of the batch: the candidate kept, the scores, the strength and the extra evaluations
    (what the Inject node shows after a run)."""
    lines = []
    for b in range(batch):
        if found is not None and found.pick is not None:
            k = int(found.pick[b])
            scores = " ".join(f"[{float(v):.3f}]" if j == k else f"{float(v):.3f}"
                              for j, v in enumerate(found.scores[:, b]))
            what = f"kept candidate {k + 1} of {found.scores.shape[0]} (conflict {scores})"
        else:
            what = "the sampler's own noise"
        lines.append(f"image {b + 1}: {what}, strength {strength:g}, {evaluations} extra evaluations")
    return lines


def show_on_node(node_id, text: str) -> None:
    """Text on a node in the browser, through ComfyUI's own progress-text channel (as its Get Image
    Size node does); nothing without a server (ComfyUI run as a library)."""
    if node_id is None:
        return
    try:
        import server
    except ImportError:
        return
    instance = getattr(server.PromptServer, "instance", None)
    if instance is not None and hasattr(instance, "send_progress_text"):
        # to the browser that queued the prompt, as ComfyUI's progress bar is sent
        instance.send_progress_text(text, str(node_id), getattr(instance, "client_id", None))


def refine_noise_wrapper(executor, guider, sigmas, extra_args, callback, noise, latent_image, denoise_mask,
                         disable_pbar):
    settings = settings_of(extra_args["model_options"])
    erase_s, inject_s = settings.get("erase"), settings.get("inject")
    if settings.get("preview") is not None:
        return preview_probes(guider, sigmas, extra_args, noise, erase_s, settings["preview"])
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
    report = {}
    if inject_s is not None and inject_s["strength"] == 0 and m == 1:
        notes.append("inject strength 0: no change")
        evaluations = 0
    elif inject_s is not None:
        z, calls, chunk = run_injection(guider, extra_args, z, inject_s, cands if m > 1 else None, segments,
                                        sampler_start(guider, extra_args, sigmas, latent_image, denoise_mask,
                                                      inject_s), report)
        what = f"screened {m} candidate noises, " if m > 1 else ""
        notes.append(f"{what}injected strength {inject_s['strength']:g} ({inject_s.get('direction', 'guided')}) "
                     f"from {len(inject_s['schedule'])} probe(s) in {calls} guided call(s) of up to {chunk} probe(s)")
        live = sum(1 for w in inject_s["schedule"].weights if w != 0.0)
        evaluations = live * m * cfg_rows(guider, _needs_branches(inject_s))
    ms = guider.inner_model.model_sampling
    if float(sigmas[0]) < float(ms.sigma_max) * (1 - 1e-3):
        notes.append(f"sampling starts below sigma_max ({float(sigmas[0]):.4g} < {float(ms.sigma_max):.4g}, "
                     f"denoise < 1): the refined noise is what gets added to the input latent")
    log.info("Noise Semantics: %s", "; ".join(notes))
    if inject_s is not None:
        lines = report_lines(report.get("screening"), noise.shape[0], inject_s["strength"], evaluations)
        log.info("Noise Semantic Inject: %s", "; ".join(lines))
        show_on_node(inject_s.get("node_id"), "\n".join(lines))
    return executor(guider, sigmas, extra_args, callback, z, latent_image, denoise_mask, disable_pbar)
