"""Test-only stand-in for another custom-node pack that also wraps SAMPLER_SAMPLE (noise tools do:
they rescale, record or swap the sampler's noise). It records the noise it is handed and passes
it on scaled by ``scale``, so a test can see both what it saw and what it did.

It registers its wrapper the two ways packs do, through ComfyUI's own extension points:
``where="patcher"`` with ``ModelPatcher.add_wrapper_with_key`` (as this pack and ComfyUI's V3
nodes do), ``where="model_options"`` with ``comfy.patcher_extension.add_wrapper_with_key(...,
model_options, is_model_options=True)``.
"""
from __future__ import annotations

import comfy.patcher_extension as pe

KEY = "nsp_test_other_pack"
SEEN: dict[str, list] = {}
WHERE = ("patcher", "model_options")


def _wrapper(label: str, scale: float):
    # A plain function, not an object holding state: ModelPatcher.clone() deep-copies model_options.
    def wrapper(executor, guider, sigmas, extra_args, callback, noise, latent_image, denoise_mask, disable_pbar):
        SEEN.setdefault(label, []).append(noise.detach().clone())
        return executor(guider, sigmas, extra_args, callback, noise * scale, latent_image, denoise_mask,
                        disable_pbar)
    return wrapper


def patch(model, label: str, scale: float = 0.8, where: str = "patcher"):
    """A clone of ``model`` carrying the other pack's wrapper."""
    SEEN.pop(label, None)
    m = model.clone()
    w = _wrapper(label, scale)
    if where == "patcher":
        m.add_wrapper_with_key(pe.WrappersMP.SAMPLER_SAMPLE, KEY, w)
    elif where == "model_options":
        pe.add_wrapper_with_key(pe.WrappersMP.SAMPLER_SAMPLE, KEY, w, m.model_options, is_model_options=True)
    else:
        raise ValueError(f"where must be one of {WHERE}, not {where!r}")
    return m
