"""Test-only instruments, attached through ComfyUI's own extension points (a SAMPLER_SAMPLE
wrapper and an APPLY_MODEL wrapper on a model clone), never by replacing ComfyUI functions.

* ``capture(model)``: a clone whose sampler records the noise it actually starts from, plus the
  guider and sigmas, so a test can recompute the expected refined noise independently.
* ``count_calls(model)``: a clone that counts diffusion-model evaluations and their batch sizes.
* Test-only graph nodes (tiny models, conditioning, capture) for runs through the real executor.
"""
from __future__ import annotations

import comfy.model_sampling
import comfy.patcher_extension as pe

RECORDS: dict[str, list] = {}


def probe_sigma(ms, tau: float) -> float:
    """The probe sigma the pack must use at normalized time tau, written out independently: rectified
    flow (CONST) sigma = tau whatever the shift; other families the fraction of their own schedule."""
    if isinstance(ms, comfy.model_sampling.CONST):
        return min(max(float(tau), float(ms.sigma_min)), float(ms.sigma_max))
    return min(float(ms.percent_to_sigma(1 - tau)), float(ms.sigma_max))


def _recorder(label, inspect):
    def wrapper(executor, guider, sigmas, extra_args, callback, noise, latent_image, denoise_mask, disable_pbar):
        rec = {"noise": noise.detach().clone(), "guider": guider, "sigmas": sigmas.detach().clone(),
               "extra_args": extra_args, "seed": extra_args.get("seed"), "latent_image": latent_image}
        if inspect is not None:  # the guider is only usable while sampling runs
            rec["inspect"] = inspect(rec)
        RECORDS.setdefault(label, []).append(rec)
        return executor(guider, sigmas, extra_args, callback, noise, latent_image, denoise_mask, disable_pbar)
    return wrapper


def capture(model, label="capture", inspect=None):
    """Clone with an innermost SAMPLER_SAMPLE wrapper (added after the pack's, so it runs inside
    it and sees the noise the sampler really starts from). ``inspect(record)`` runs in there too,
    while the guider can still predict."""
    RECORDS.pop(label, None)
    m = model.clone()
    m.add_wrapper_with_key(pe.WrappersMP.SAMPLER_SAMPLE, "nsp_test_capture_" + label, _recorder(label, inspect))
    return m



def branch_predict(rec):
    """For an independent recomputation: the captured sampler's guided prediction with both CFG
    branches read through a post-CFG hook of the test's own (ComfyUI's cfg-1 shortcut off, as the
    pack asks for its probes). Returns predict(x, sigma) -> (D, D_cond, D_uncond)."""
    guider, extra = rec["guider"], rec["extra_args"]
    seen = {}

    def hook(args):
        seen["c"], seen["u"] = args["cond_denoised"], args["uncond_denoised"]
        return args["denoised"]
    mo = dict(extra["model_options"], disable_cfg1_optimization=True)
    mo["sampler_post_cfg_function"] = list(mo.get("sampler_post_cfg_function", [])) + [hook]

    def predict(x, sig):
        d = guider(x, sig, model_options=mo, seed=extra["seed"])
        return d, seen.pop("c"), seen.pop("u")
    return predict


class CallCounter:
    def __init__(self):
        self.batches = []

    @property
    def calls(self):
        return len(self.batches)

    def __call__(self, executor, x, t, *args, **kwargs):
        self.batches.append(int(x.shape[0]))
        return executor(x, t, *args, **kwargs)


def count_calls(model):
    m = model.clone()
    counter = CallCounter()
    pe.add_wrapper_with_key(pe.WrappersMP.APPLY_MODEL, "nsp_test_counter", counter, m.model_options,
                            is_model_options=True)
    return m, counter


# ---------------------------------------------------------------- test-only graph nodes

class TinyModel:
    CATEGORY = "_test"
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"family": (["sdxl", "flux", "wan"],), "seed": ("INT", {"default": 0})}}

    def load(self, family, seed):
        import tiny_models
        return (tiny_models.make_model(family, seed),)


class TinyConditioning:
    CATEGORY = "_test"
    RETURN_TYPES = ("CONDITIONING", "CONDITIONING")
    RETURN_NAMES = ("positive", "negative")
    FUNCTION = "make"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"family": (["sdxl", "flux", "wan"],), "seed": ("INT", {"default": 0}),
                             "batch": ("INT", {"default": 1, "min": 1})}}

    def make(self, family, seed, batch):
        import tiny_models
        return tiny_models.make_conditioning(family, seed, batch)


class CaptureNoise:
    CATEGORY = "_test"
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "patch"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "label": ("STRING", {"default": "capture"})}}

    def patch(self, model, label):
        return (capture(model, label),)


TEST_NODES = {"NSPTestTinyModel": TinyModel, "NSPTestTinyConditioning": TinyConditioning,
              "NSPTestCaptureNoise": CaptureNoise}


def register():
    import nodes
    nodes.NODE_CLASS_MAPPINGS.update(TEST_NODES)
