"""One KSampler run (``comfy.sample.sample``, as ``nodes.common_ksampler`` calls it), stock or with the
pack's wrapper, timed in parts:

* set-up: from the call to the start of the sampler (ComfyUI loads the model, prepares the conditioning);
* probes: the pack's refinement (erase, the probe calls, the injection), from the sampler's start to the
  start of the sampling proper (stock: ~0);
* sampling: the sampler's steps (each step's time too, from ComfyUI's step callback);
* finish: after the last step (ComfyUI's clean-up, the output latent).

Two SAMPLER_SAMPLE wrappers of this script mark the parts: one registered before the pack's wrapper
(outside it: the sampler's start), one after (inside it: what the sampler really starts from)."""
from __future__ import annotations

import time

from .comfy_env import GIB, sync


def timed_model(model, settings: dict | None, at_sampler_start=None, count=lambda: 0):
    """A clone of ``model`` with the outer timing wrapper, then the pack's parts as its nodes set them
    (``noise_semantics.patch.patched``, what "Noise Semantic Erase" / "Noise Semantic Inject" call)."""
    import comfy.patcher_extension as pe
    from noise_semantics import patch
    marks = {}

    def outer(executor, guider, *args, **kwargs):
        if at_sampler_start is not None:
            marks["at_sampler_start"] = at_sampler_start(guider)
        sync()
        marks["sampler_start"] = time.perf_counter()
        marks["evals_before"] = count()  # model calls before the sampler's start: none expected
        out = executor(guider, *args, **kwargs)
        sync()
        marks["sampler_end"] = time.perf_counter()
        return out

    m = model.clone()
    m.add_wrapper_with_key(pe.WrappersMP.SAMPLER_SAMPLE, "gpu_check_outer", outer)
    for part in ("erase", "inject"):
        if settings and part in settings:
            m = patch.patched(m, part, settings[part])
    return m, marks


def sample(model, spec, positive, negative, seed: int, settings: dict | None = None, steps: int | None = None,
           keep_noise: bool = False, on_start=None, at_sampler_start=None) -> dict:
    """Runs ``model`` (stock, or patched with ``settings``) once; returns the measurements.
    ``at_sampler_start(guider)``: called at the sampler's start, before the pack's wrapper (untimed);
    ``on_start(guider)``: called where the sampling proper starts (e.g. to read what is loaded)."""
    import torch
    import comfy.model_management as mm
    import comfy.patcher_extension as pe
    import comfy.sample
    from benchmarks.frontier.experiment import EvalCounter

    counter = EvalCounter()
    m, marks = timed_model(model, settings, at_sampler_start, lambda: counter.latents)
    m.set_model_unet_function_wrapper(counter)
    seen = {}

    def inner(executor, guider, sigmas, extra_args, callback, noise, latent_image, denoise_mask, disable_pbar):
        # Registered after the pack's wrapper, so it runs inside it: what the sampler really starts from.
        sync()
        seen.update(t=time.perf_counter(), latents=counter.latents, calls=counter.calls, dtype=str(noise.dtype),
                    std=float(noise.float().std()), finite=bool(torch.isfinite(noise).all()),
                    contiguous=noise.is_contiguous(), device=str(noise.device))
        if keep_noise:
            seen["noise"] = noise.detach().float().cpu()
        if on_start is not None:
            seen["on_start"] = on_start(guider)
        out = executor(guider, sigmas, extra_args, callback, noise, latent_image, denoise_mask, disable_pbar)
        sync()
        seen["t_end"] = time.perf_counter()
        return out

    m.add_wrapper_with_key(pe.WrappersMP.SAMPLER_SAMPLE, "gpu_check_inner", inner)
    steps_at = []

    def step_done(step, x0, x, total):
        sync()
        steps_at.append(time.perf_counter())

    latent = torch.zeros(spec.latent)
    noise = comfy.sample.prepare_noise(latent, seed)
    cuda = mm.get_torch_device().type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    sync()
    t0 = time.perf_counter()
    with torch.inference_mode():  # as ComfyUI's executor runs every node (execution.py)
        out = comfy.sample.sample(m, noise, steps or spec.steps, spec.cfg, spec.sampler, spec.scheduler, positive,
                                  negative, latent, seed=seed, disable_pbar=True, callback=step_done)
    sync()
    t1 = time.perf_counter()
    n = spec.latent[0]
    step_s = [b - a for a, b in zip([seen["t"]] + steps_at[:-1], steps_at)]
    return {
        "wall_s": t1 - t0,
        "setup_s": marks["sampler_start"] - t0,
        "probes_s": seen["t"] - marks["sampler_start"],
        "sampling_s": seen["t_end"] - seen["t"],
        "finish_s": t1 - seen["t_end"],
        "refine_s": seen["t"] - t0,  # set-up + probes: the time before the first sampling step
        "step_s": step_s,
        "peak_gib": torch.cuda.max_memory_allocated() / GIB if cuda else None,
        "evals": counter.latents / n,
        "probe_evals": seen["latents"] / n,
        "evals_before_sampler": marks["evals_before"] / n,
        "probe_calls": seen["calls"],
        "noise_dtype": seen["dtype"],
        "noise_std": seen["std"],
        "noise_contiguous": seen["contiguous"],
        "finite": seen["finite"] and bool(torch.isfinite(out).all()),
        "noise": seen.get("noise"),
        "on_start": seen.get("on_start"),
    }


def gib(v) -> str:
    return "-" if v is None else f"{v:.2f} GiB"
