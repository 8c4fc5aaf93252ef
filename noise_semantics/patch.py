"""ComfyUI glue: one SAMPLER_SAMPLE wrapper that refines the sampler's starting noise.

Why a wrapper on the MODEL wire: KSampler/KSamplerAdvanced draw their noise from their own seed
inside ``nodes.common_ksampler``; no LATENT can replace it. The SAMPLER_SAMPLE wrapper runs after
the model is loaded on its device and the conditioning is prepared, and is handed the noise, the
sigmas and the guider (the sampler's own prompt, CFG and every other model patch). So the
refinement uses exactly what the sampler uses, with KSampler, KSamplerAdvanced, SamplerCustom and
SamplerCustomAdvanced alike.

Both nodes write their settings into ``model_options["noise_semantics"]`` of a cloned model and
register the same wrapper once, so the paper's order (erase, then inject) holds however
the two nodes are chained, and a second node of the same kind replaces the first one's settings.
"""
from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass
import types

import torch

import comfy.model_base
import comfy.model_management
import comfy.model_sampling
import comfy.patcher_extension
import comfy.utils

from . import core

WRAPPER_KEY = "noise_semantics"
OPTIONS_KEY = "noise_semantics"
# Erase's and Inject's 'apply_to': which samplers on the patched MODEL refine their noise. The first is
# the default (starts_from_pure_noise): a hires-fix second pass, a detailer's crops and a tiled
# upscaler's tiles sample the same MODEL at denoise < 1, and would each pay for (and get) the
# refinement meant for the txt2img pass.
APPLY_TO = ("from pure noise only", "every sampler")
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
    # In model_options, not transformer_options: the latter goes into every model call, and a compiled
    # model (TorchCompileModel) guards on its contents; one more key there built the graphs of SDXL's and
    # WAN's attention blocks once more for a patched model (benchmarks/gpu_check --compile).
    cfg = dict(m.model_options.get(OPTIONS_KEY, {}))
    cfg[part] = dict(settings)
    m.model_options[OPTIONS_KEY] = cfg
    if not m.get_wrappers(comfy.patcher_extension.WrappersMP.SAMPLER_SAMPLE, WRAPPER_KEY):
        m.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.SAMPLER_SAMPLE, WRAPPER_KEY, refine_noise_wrapper)
    return m


def starts_from_pure_noise(guider, sigmas, latent_image) -> bool:
    """The sampler starts from noise alone: an empty latent (txt2img, whatever the scheduler's first
    sigma: ddim_uniform starts below sigma_max), or the model's sigma_max (denoise 1, where the input
    latent is drowned in noise)."""
    if latent_image is None or torch.count_nonzero(latent_image) == 0:
        return True
    return float(sigmas[0]) >= float(guider.inner_model.model_sampling.sigma_max) * (1 - 1e-3)


def settings_of(model_options: dict) -> dict:
    return model_options.get(OPTIONS_KEY, {})


def probe_chunk(model, z: torch.Tensor, probes: int, rows: int, free: float | None = None) -> int:
    """Whole probes per guided call whose batch (probes x B x ``rows``: CFG branches times screening
    candidates) fits in one model call, by ComfyUI's estimate: ``probe_rows`` in groups of one probe (the
    GPU check reports it; the pack itself splits by rows)."""
    per_probe = z.shape[0] * rows
    return max(1, probe_rows(model, z, probes * per_probe, per_probe, 1, free=free) // per_probe)


def is_out_of_memory(e: BaseException) -> bool:
    """ComfyUI's own out-of-memory test (0.33: ``model_management.is_oom``, which also knows the
    accelerator errors that say so; 0.3.75: ``OOM_EXCEPTION``, torch's CUDA/XPU OutOfMemoryError), plus
    the backends whose allocators raise a plain RuntimeError that says it (Apple MPS: "MPS backend out
    of memory"; older ROCm/XPU builds: "HIP/XPU out of memory")."""
    mm = comfy.model_management
    is_oom = getattr(mm, "is_oom", None)
    if is_oom is not None and is_oom(e):
        return True
    oom = getattr(mm, "OOM_EXCEPTION", None)
    if oom is not None and oom is not Exception and isinstance(e, oom):  # Exception: torch without it
        return True
    return isinstance(e, torch.OutOfMemoryError) or (isinstance(e, RuntimeError) and "out of memory" in str(e).lower())


def row_conditioning(guider, group: int) -> bool:
    """Whether every per-row conditioning tensor of the guider repeats in step with whole groups of
    ``group`` rows. ComfyUI fits each one to a call's batch with ``repeat_to_batch_size`` (tiled, or cut
    to the first rows): a batch of 1 or of a divisor of B tiles the same way in every group of B rows;
    any other (a conditioning batch of 2 with 3 latents, or more rows than latents) lines up with the
    samples only in a call of exactly B rows, as in a sampling step."""
    for entries in getattr(guider, "conds", {}).values():
        for entry in entries or ():
            for c in (entry.get("model_conds") or {}).values():
                for t in (c.cond if isinstance(getattr(c, "cond", None), (list, tuple)) else [getattr(c, "cond", None)]):
                    if torch.is_tensor(t) and t.ndim > 0 and t.shape[0] > 1 and (
                            t.shape[0] > group or group % t.shape[0]):
                        return False
    return True


def guider_branches(guider, forced: bool) -> int:
    """How many conditionings the guider sends through the model per call (ComfyUI batches them into
    one model call when they fit): CFGGuider 2 (1 at cfg 1), Dual CFG and Perp-Neg 3, BasicGuider 1;
    ComfyUI 0.33's Dual Model CFG Guider runs its negative on the other model, so 1 per model. ``forced``:
    the probes disabled the cfg-1 shortcut (they read both branches)."""
    conds = getattr(guider, "conds", {}) or {}
    if hasattr(guider, "uncond_model_patcher"):
        return 1
    n = max(1, sum(1 for v in conds.values() if v is not None))
    if forced or n < 2:
        return n
    if "middle" in conds:  # Dual CFG: regular style drops the negative at cfg2 1, then the middle at cfg1 1
        if getattr(guider, "nested", False) or not math.isclose(getattr(guider, "cfg2", 0.0), 1.0):
            return n
        return 1 if math.isclose(getattr(guider, "cfg1", 0.0), 1.0) else 2
    if "empty_negative_prompt" in conds:  # Perp-Neg: drops the negative at neg_scale 0, the empty at cfg 1 too
        if not math.isclose(getattr(guider, "neg_scale", 1.0), 0.0):
            return n
        return 1 if math.isclose(getattr(guider, "cfg", 0.0), 1.0) else 2
    return 1 if math.isclose(getattr(guider, "cfg", 1.0), 1.0) else n


def cond_shapes(guider, rows: int, branches: int) -> dict:
    """The conditioning shapes calc_cond_batch hands ``memory_required`` for ``branches`` entries of
    ``rows`` rows each: only the conds the model counts (``memory_usage_factor_conds``: reference latents
    of Kontext, Qwen-Image edit, Lumina 2 and the like on 0.33), fitted to the batch as ComfyUI fits them."""
    keys = getattr(guider.inner_model, "memory_usage_factor_conds", ())
    out = {}
    if not keys:
        return out
    entries = [v[0] for v in (getattr(guider, "conds", {}) or {}).values() if v][:branches]
    try:
        for entry in entries:
            mc = entry.get("model_conds") or {}
            for k in keys:
                if k in mc:
                    out.setdefault(k, []).append(mc[k].process_cond(batch_size=rows, area=None).size())
    except Exception:  # a cond class this code does not know: the latent's own estimate
        return {}
    return out


def probe_rows(model, z: torch.Tensor, total: int, group: int, branches: int, shapes=None,
               free: float | None = None) -> int:
    """Rows of the probe batch (probes x candidates x B, k-major) per guided call: the most, in whole
    groups of B, whose call fits by ComfyUI's own estimate (calc_cond_batch's ``memory_required(shape,
    cond_shapes) * 1.5 < free``). First with every branch in one model call; if even B rows of every
    branch do not fit, the most whose single branch fits (calc_cond_batch then runs the branches one by
    one, as it does in sampling); at least B rows, what a sampling step needs. ``shapes(rows, branches)``
    gives the conditioning shapes. The memory the user reserved (--reserve-vram) stays out of it."""
    if free is None:
        free = comfy.model_management.get_free_memory(z.device) - comfy.model_management.extra_reserved_memory()

    def fits(groups: int, k: int) -> bool:
        n = groups * group
        shape = (n * k,) + tuple(z.shape[1:])
        try:
            need = model.memory_required(shape, cond_shapes=shapes(n, k) if shapes is not None else {})
        except TypeError:  # an estimate without conditioning shapes (a model class of another pack)
            need = model.memory_required(shape)
        return need * 1.5 < free

    most = max(1, total // group)
    try:
        for k in (branches, 1) if branches > 1 else (1,):
            if not fits(1, k):
                continue
            lo, hi = 1, most  # the estimate grows with the batch: the largest that fits, by bisection
            while lo < hi:
                mid = (lo + hi + 1) // 2
                lo, hi = (mid, hi) if fits(mid, k) else (lo, mid - 1)
            return lo * group
    except Exception:  # models without an estimate: one call for the whole batch
        return total
    return group


def compiled(model_options: dict) -> bool:
    """Whether ComfyUI's TorchCompileModel (comfy_api.torch_helpers.set_torch_compile_wrapper, which leaves
    its settings under ``torch_compile_kwargs``) compiles this model. A batch of several probes has a batch
    size the compiled model has not seen: torch.compile would build its graphs once more, with a dynamic
    batch size, on the first patched run (measured: as long as the first compilation; benchmarks/gpu_check
    --compile). Calls of B rows per branch (one probe of one candidate) have the sampler's own batch shape
    (B x CFG rows), so the probes, screening's candidates too, run on the graphs sampling compiled."""
    return "torch_compile_kwargs" in model_options


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


def branch_pair(guider, node: str):
    """The two predictions screening and direction 'prompt' compare, for this guider: a function of the
    post-CFG hook's arguments giving (D_cond, D_uncond) for the call that compares them, else None; None
    for the Dual CFG Guider, read where the model computes them instead (``dual_cfg_reader``). Refuses
    (the node's error, naming the fix) a guider that never computes that pair.

    * CFGGuider (KSampler, CFG Guider) and subclasses: the positive against the negative.
    * ComfyUI 0.33's Dual Model CFG Guider: the positive (main model) against the negative (negative
      model); at cfg 1 it loads no negative model and has no negative pass: refused.
    * Perp-Neg Guider: the positive against the empty prompt, its unconditional prediction (the negative
      is pushed away only along its part orthogonal to the positive); its hook reports all three.
    * Dual CFG Guider (both styles): cond1 against the negative, the pair the whole guidance runs between.
      Its hook sees another pair (regular: cond2 against the negative; nested: cond1 against cond2), so the
      two are read from the model call that computes all three conds. Under context windows that call is
      made per window: refused there.
    * BasicGuider, or any guider without a negative: refused."""
    conds = getattr(guider, "conds", {}) or {}
    fix = "or use direction 'guided' with candidates 1 (plain injection works with any guider)"
    if "middle" in conds and conds.get("negative") is not None:
        return None
    if conds.get("negative") is None:
        raise core.NoiseSemanticsError(
            f"[{node}] direction 'prompt' and candidates > 1 compare the prompt with the negative "
            f"(unconditional) prompt, but this sampler's guider has none. Fix: sample with a guider that "
            f"has a negative (KSampler, CFGGuider), {fix}")
    if hasattr(guider, "uncond_model_patcher") and getattr(guider, "uncond_inner", None) is None:
        raise core.NoiseSemanticsError(
            f"[{node}] direction 'prompt' and candidates > 1 compare the prompt with the negative, but the Dual "
            f"Model CFG Guider runs no negative pass at cfg 1 (it loads model_negative only when cfg is not 1). "
            f"Fix: set the guider's cfg above 1, {fix}")
    positive = conds.get("positive")
    perp = "empty_negative_prompt" in conds

    def pair(args):
        if args.get("cond") is not positive:
            return None
        if perp:
            return (args["cond_denoised"], args["empty_cond_denoised"]) if "empty_cond_denoised" in args else None
        return args["cond_denoised"], args["uncond_denoised"]
    return pair


def dual_cfg_reader(guider, model_options: dict, seen: dict, node: str) -> dict:
    """``model_options`` with a CALC_COND_BATCH wrapper (ComfyUI's hook around the batched model call of a
    guider's conds) that keeps the Dual CFG Guider's cond1 and negative predictions in ``seen``, found by
    identity with the guider's own cond lists, and returns the outputs unchanged."""
    if model_options.get("context_handler") is not None:
        raise core.NoiseSemanticsError(
            f"[{node}] direction 'prompt' and candidates > 1 with the Dual CFG Guider read cond1 and the negative "
            f"from the model call, which context windows split per window. Fix: sample without context windows, "
            f"or use direction 'guided' with candidates 1")
    positive, negative = guider.conds["positive"], guider.conds["negative"]

    def read(executor, model, conds, x_in, timestep, model_options):
        out = executor(model, conds, x_in, timestep, model_options)
        at = {id(c): i for i, c in enumerate(conds) if c is not None}
        if id(positive) in at and id(negative) in at:
            seen["cond"], seen["uncond"] = out[at[id(positive)]], out[at[id(negative)]]
        return out
    mo = dict(model_options)
    topts = dict(mo.get("transformer_options", {}))
    wrappers = dict(topts.get("wrappers", {}))
    kind = comfy.patcher_extension.WrappersMP.CALC_COND_BATCH
    wrappers[kind] = dict(wrappers.get(kind, {}), **{WRAPPER_KEY + "_branches": [read]})
    topts["wrappers"] = wrappers
    mo["transformer_options"] = topts
    return mo


def explain_probe_error(e: Exception, model, z: torch.Tensor, segments, shape: tuple, node: str) -> None:
    """A probe call failed with something other than out-of-memory. The probe batch has the sampler's
    per-latent shape, so the error is the model's (or another pack's patch's) own: it keeps its type and
    message, with a note on where it happened. Only a latent whose channels or dimensions are not the
    model's is called a wrong latent (the node's error)."""
    fmt = getattr(model, "latent_format", None)
    ch, dims = getattr(fmt, "latent_channels", None), getattr(fmt, "latent_dimensions", None)
    if segments is None and ch is not None and dims is not None and (z.ndim - 2 != dims or z.shape[1] != ch):
        # the Preview's latent is its own input; Inject's comes from the sampler
        where, fix = (("input 'latent': ", "connect the latent this model's sampler gets (its own Empty Latent "
                       "node or VAE)") if node == PREVIEW else
                      ("", "use a latent made for this model (its own Empty Latent node or VAE)"))
        raise core.NoiseSemanticsError(
            f"[{node}] {where}the model failed on a probe batch of shape {shape}: {e}. The latent has shape "
            f"{tuple(z.shape[1:])}, but this model takes {ch} channels and {dims} spatial dimension(s). Fix: "
            f"{fix}") from e
    if hasattr(e, "add_note"):
        e.add_note(f"[{node}] raised in a probe call (batch of shape {shape}, the sampler's latent shape); "
                   f"without the Noise Semantic nodes the sampler runs the same model and patches")


CFG_FUNCTIONS = ("sampler_pre_cfg_function", "sampler_cfg_function", "sampler_post_cfg_function")


def own_state(fn):
    """For the probe calls: a copy of a CFG function that keeps state across calls in its closure
    (ComfyUI's APG node: a momentum average of cond - uncond, reset only when the sigma rises), with
    closure cells of its own, so what the probes do to that state stays in the copy. The sampler
    keeps calling the original. Not a plain function (a class instance, a partial): used as it is."""
    if not isinstance(fn, types.FunctionType) or not fn.__closure__:
        return fn
    cells = []
    for c in fn.__closure__:
        try:
            cells.append(types.CellType(c.cell_contents))
        except ValueError:  # a cell not yet bound
            cells.append(types.CellType())
    copy = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, tuple(cells))
    copy.__kwdefaults__ = fn.__kwdefaults__
    copy.__dict__.update(fn.__dict__)
    return copy


@contextlib.contextmanager
def step_state_kept(guider, model_options: dict):
    """The probe calls go through the sampler's guider before its first step, and three kinds of state
    ComfyUI keeps across the model calls of a run would take them for steps:

    * Scheduled hooks (Create Hook Keyframe on a hook LoRA, set on the conditioning): each call moves
      the hook's keyframe forward to the one for its sigma, never back (HookKeyframeGroup
      .prepare_current_keyframe), and the patcher keeps the weights hooked at that strength. A probe
      at a low sigma would start the sampler on a later keyframe. The probe calls see the conds with
      hooks of their own (the hooks' clone, holding a clone of the keyframe group, as
      ``without_step_cache`` gives each probe call its own cache), and the patcher's hooked weights
      go back to where sampling starts (none applied, none cached: clear_cached_hook_weights).
    * A ControlNet / T2I adapter keeps the hint it resized and broadcast to the first call's batch
      (``cond_hint``; a T2I adapter also its features of that batch). A probe batch is another size:
      the hint each ControlNet held before the probes is put back, so the sampler's first call
      prepares it as it does without the pack (a T2I adapter would otherwise reuse probe-batch features).
    * A CFG function with state in its closure (APG's momentum, reset only when the sigma rises: a probe
      at the sampler's first sigma, or above an img2img sampler's, was averaged into its first step):
      while the probes run, ``model_options`` holds copies with their own closure (``own_state``).

    Everything else these calls read is per call (ControlNet timestep ranges, cond timestep ranges,
    transformer_options["sigmas"]), or is handled where the probe call is built (context windows,
    step caches)."""
    conds = getattr(guider, "conds", None) or {}
    keyframes, groups, controls = {}, {}, {}

    def own_group(group):
        if id(group) not in groups:
            g = group.clone()
            for hook in g.hooks:
                kf = hook.hook_keyframe
                hook.hook_keyframe = keyframes.setdefault(id(kf), kf.clone())
            groups[id(group)] = g
        return groups[id(group)]

    probe_conds = {}
    for k, cs in conds.items():
        probe_conds[k] = [dict(c, hooks=own_group(c["hooks"])) if c.get("hooks") is not None else c for c in cs]
        for c in cs:
            ctrl = c.get("control")
            while ctrl is not None and id(ctrl) not in controls:
                controls[id(ctrl)] = (ctrl, getattr(ctrl, "cond_hint", None))
                ctrl = getattr(ctrl, "previous_controlnet", None)
    if groups:
        guider.conds = probe_conds
    cfg_fns = {k: model_options[k] for k in CFG_FUNCTIONS if model_options.get(k) is not None}
    for k, v in cfg_fns.items():
        model_options[k] = [own_state(f) for f in v] if isinstance(v, list) else own_state(v)
    try:
        yield
    finally:
        model_options.update(cfg_fns)
        if groups:
            guider.conds = conds
            patcher = getattr(guider.inner_model, "current_patcher", None) or guider.model_patcher
            for p in [patcher] + list(model_options.get("multigpu_clones", {}).values()):
                p.clear_cached_hook_weights()
        for ctrl, hint in controls.values():
            if getattr(ctrl, "cond_hint", None) is not hint:
                ctrl.cond_hint = hint


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


def cfg_rows(guider, branches: bool) -> int:
    """Evaluations per probe and noise: CFG's two branches, or one where ComfyUI skips the
    unconditional branch (cfg 1) and the probes do not read it."""
    return 2 if branches or not math.isclose(getattr(guider, "cfg", 1.0), 1.0) else 1


def probe_with_model(guider, extra_args, z: torch.Tensor, settings: dict, body, per_sample: int = 1,
                     branches=None, node: str = "Noise Semantic Inject", segments=None) -> tuple:
    """The probing both Noise Semantic Inject and Noise Semantic Preview do, inside a sampler's
    SAMPLER_SAMPLE wrapper: builds ``predict`` (the sampler's own guider, its CFG branches read when
    ``branches``), the probe sigmas and the network's input scaling, and runs
    ``body(sigma_of_tau, c_in, predict, rows, on_chunk)`` (a call of core.refine_inject or
    core.screen) in calls of ``rows`` rows of the probe batch that fit in memory (``probe_rows``), halving
    them on out-of-memory down to what a sampling step needs. ``per_sample``: noises probed per sample
    (screening's candidates). Returns (body's result, guided calls, rows per call)."""
    schedule = settings["schedule"]
    model = guider.inner_model
    ms = model.model_sampling
    branches = _needs_branches(settings) if branches is None else branches
    model_options = extra_args["model_options"]
    if branches:
        pair = branch_pair(guider, node)
        seen = {}

        def read_branches(args):
            # sampler_post_cfg_function: the probe call's own hook, so the guider's two predictions can
            # be read without a second model call; it returns the guided result unchanged. Only the
            # call that compares the pair screening reads counts (Dual CFG calls it for other pairs).
            got = pair(args)
            if got is not None:
                seen["cond"], seen["uncond"] = got
            return args["denoised"]

        model_options = dict(model_options)
        if pair is None:
            model_options = dual_cfg_reader(guider, model_options, seen, node)
        else:
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
        except Exception as e:
            if not isinstance(e, comfy.model_management.InterruptProcessingException) and not is_out_of_memory(e):
                explain_probe_error(e, model, z, segments, tuple(x.shape), node)
            raise
        if not branches:
            return d
        if "cond" not in seen:
            raise core.NoiseSemanticsError(
                f"[{node}] direction 'prompt' and candidates > 1 read the guider's positive and negative "
                f"predictions from ComfyUI's post-CFG hook, but this sampler's guider "
                f"({type(guider).__name__}) did not report them. Fix: sample with KSampler or the CFG Guider, "
                f"or use direction 'guided' with candidates 1")
        return d, seen.pop("cond"), seen.pop("uncond")

    live = sum(1 for w in schedule.weights if w != 0.0)
    B = z.shape[0]
    total = live * B * per_sample
    n_br = guider_branches(guider, branches)
    if compiled(model_options):
        # TorchCompileModel: calls of B rows have the sampler's own batch shape (B x its CFG rows), so the
        # probes run on the graphs sampling compiled instead of compiling new ones for the probe batch
        rows = B
    elif row_conditioning(guider, B):
        rows = probe_rows(model, z, total, B, n_br, lambda n, k: cond_shapes(guider, n, k))
    else:
        rows = B
        log.info("%s: the conditioning's batch does not tile with %d latent(s); one latent batch per probe call",
                 node, B)
    while True:
        pbar = comfy.utils.ProgressBar(live)
        calls[0] = 0
        try:
            # The probes only read the model, as the sampler after them does (k-diffusion's samplers run
            # under no_grad): no autograd graph, and the sampler's grad mode in the probe calls (a compiled
            # model guards on it) when the caller is not already in ComfyUI's inference mode.
            with torch.no_grad():
                out = body(sigma_of_tau, c_in, one_row_per_call(predict) if windows else predict, rows, pbar.update)
            return out, calls[0], rows
        except Exception as e:
            if not is_out_of_memory(e) or rows <= B:
                raise
        # out of the except block, so the failed call's frames (and their tensors) are freed first
        rows = max(B, rows // 2 // B * B)
        log.warning("%s: out of memory, retrying with %d latent(s) per branch per model call", node, rows)
        comfy.model_management.soft_empty_cache(True)


def run_injection(guider, extra_args, z: torch.Tensor, settings: dict, candidates=None, segments=None,
                  start=None, report: dict | None = None) -> tuple:
    """Noise Semantic Inject's refinement of ``z`` (screening ``candidates`` first), probing through
    ``probe_with_model``. Returns (refined noise, guided calls, rows per call); ``report``: see
    core.refine_inject."""
    node = "Noise Semantic Inject"

    def body(sigma_of_tau, c_in, predict, rows, on_chunk):
        return core.refine_inject(z, settings["schedule"], settings["strength"], sigma_of_tau, c_in, predict,
                                  rows=rows, on_chunk=on_chunk, decorrelated=settings.get("decorrelate", True),
                                  direction=settings.get("direction", "guided"), candidates=candidates, node=node,
                                  segments=segments, start=start, report=report)
    return probe_with_model(guider, extra_args, z, settings, body, len(candidates) if candidates else 1, node=node,
                            segments=segments)


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

    def body(sigma_of_tau, c_in, predict, rows, on_chunk):
        return core.screen(cands[0], schedule, sigma_of_tau, c_in, predict, cands if m > 1 else None, True,
                           on_chunk=on_chunk, node=PREVIEW, denoised=True, rows=rows)
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

    if not starts_from_pure_noise(guider, sigmas, latent_image):
        skip = [n for n, s in (("Erase", erase_s), ("Inject", inject_s))
                if s is not None and s.get("apply_to", APPLY_TO[0]) == APPLY_TO[0]]
        if skip:
            log.info("Noise Semantics: Noise Semantic %s left this sampler's noise untouched: it starts from a "
                     "latent below sigma_max (%.4g < %.4g: denoise < 1, such as img2img, a hires-fix pass, a "
                     "detailer crop or a tile) and apply_to is '%s'. Set apply_to to '%s' to refine it too",
                     " and ".join(skip),
                     float(sigmas[0]), float(guider.inner_model.model_sampling.sigma_max), APPLY_TO[0], APPLY_TO[1])
            erase_s = None if "Erase" in skip else erase_s
            inject_s = None if "Inject" in skip else inject_s
            if erase_s is None and inject_s is None:
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
        with step_state_kept(guider, extra_args["model_options"]):  # the probes are not sampling steps
            z, calls, rows = run_injection(guider, extra_args, z, inject_s, cands if m > 1 else None, segments,
                                           sampler_start(guider, extra_args, sigmas, latent_image, denoise_mask,
                                                         inject_s), report)
        what = f"screened {m} candidate noises, " if m > 1 else ""
        notes.append(f"{what}injected strength {inject_s['strength']:g} ({inject_s.get('direction', 'guided')}) "
                     f"from {len(inject_s['schedule'])} probe(s) in {calls} guided call(s) of up to {rows} latent(s) per "
                     f"branch")
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
