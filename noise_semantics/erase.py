from . import core, patch


class NoiseSemanticErase:
    """Semantic Erasure (Noise Latent Normalization) on the MODEL wire."""

    DESCRIPTION = ("Semantic Erasure: the sampler's noise is summed with n-1 more draws and re-normalized "
                   "(z = sum z_i / sqrt(n)), diluting what any single draw 'prefers' to show. Put it between the "
                   "model loader and any sampler; the sampler's own seed is used, so changing the seed changes "
                   "the result as usual.")
    CATEGORY = "sampling/noise semantics"
    RETURN_TYPES = ("MODEL",)
    OUTPUT_TOOLTIPS = ("The model, patched so that every sampler using it starts from the erased noise.",)
    FUNCTION = "patch"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL", {"tooltip": "The diffusion model to patch (SDXL, FLUX, WAN, ...)."}),
            "samples": ("INT", {"default": 4, "min": 1, "max": 64,
                                "tooltip": "n: how many noises are combined. 1 = the sampler's own noise, unchanged. "
                                           "Extra draws come from seeds derived from the sampler's seed, on the CPU, "
                                           "so results do not depend on the GPU."}),
            "restandardize": ("BOOLEAN", {"default": True,
                                          "tooltip": "After combining (samples > 1), rescale each latent to exactly "
                                                     "zero mean and unit variance."}),
        }}

    def patch(self, model, samples, restandardize):
        core.check_samples(samples)
        return (patch.patched(model, "erase", {"samples": int(samples), "restandardize": bool(restandardize)}),)
