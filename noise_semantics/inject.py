from . import core, patch


class NoiseSemanticInject:
    """Semantic Injection (Temporal Prediction Weighting) on the MODEL wire."""

    DESCRIPTION = ("Semantic Injection: before sampling, the model is asked at several times what it makes of the "
                   "noise under your prompt (with the sampler's CFG), and the noise is nudged along that "
                   "denoising direction: z' = (z + strength * e) / sqrt(1 + strength^2), still unit variance. "
                   "Costs one batched model call holding every probe (the compute of about one sampling step per probe, "
                   "less wall time when the GPU has headroom). Runs after Noise Semantic Erase "
                   "whatever the order of the two nodes.")
    CATEGORY = "sampling/noise semantics"
    RETURN_TYPES = ("MODEL",)
    OUTPUT_TOOLTIPS = ("The model, patched so that every sampler using it starts from the injected noise.",)
    FUNCTION = "patch"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL", {"tooltip": "The diffusion model to patch (SDXL, FLUX, WAN, ...)."}),
            "strength": ("FLOAT", {"default": 0.3, "min": 0.0, "max": 4.0, "step": 0.01,
                                   "tooltip": "delta: how far the noise moves toward what the prompt predicts. "
                                              "0 = no change (and no model call)."}),
            "decorrelate": ("BOOLEAN", {"default": True,
                                        "tooltip": "Keep only what the model adds to the noise: a denoising step mostly "
                                                   "points back at the noise itself, so without this the mix shrinks "
                                                   "the noise and strength near 1 makes every seed the same image. On: "
                                                   "strength is an exact mix, noise share 1/sqrt(1+s^2), semantic share "
                                                   "s/sqrt(1+s^2). Off: the paper's formula as written (denoising sign)."}),
        }, "optional": {
            "direction": (list(core.DIRECTIONS), {"default": "guided",
                          "tooltip": "guided: the paper's injection, the CFG-guided denoising direction. prompt: only "
                                     "what the prompt changes in the model's prediction (cond - uncond); near zero "
                                     "where the noise already agrees with the prompt. adaptive: guided, with each image's strength "
                                     "scaled by how much the prompt and the noise's own content disagree. prompt and "
                                     "adaptive need a negative prompt."}),
            "candidates": ("INT", {"default": 1, "min": 1, "max": 16,
                                   "tooltip": "Noise screening: probe this many noises per image (the sampler's own "
                                              "first) and keep the one that already agrees best with the prompt. "
                                              "1 = off. Costs candidates x probes evaluations."}),
            "schedule": (core.SCHEDULE_TYPE, {"tooltip": "Probe times and weights from a Temporal Weight Schedule "
                                                         "node. Not connected: the node's defaults."}),
        }}

    def patch(self, model, strength, decorrelate=True, schedule=None, direction="guided", candidates=1):
        core.check_strength(strength)
        if schedule is None:
            schedule = core.DEFAULT_SCHEDULE
        if not isinstance(schedule, core.TemporalSchedule):
            raise core.NoiseSemanticsError(
                f"[Noise Semantic Inject] input 'schedule' is a {type(schedule).__name__}, not a schedule. Fix: "
                f"connect a Temporal Weight Schedule node, or leave the input unconnected for the defaults")
        if direction not in core.DIRECTIONS:
            raise core.NoiseSemanticsError(f"[Noise Semantic Inject] input 'direction' is {direction!r}. Fix: choose "
                                           f"one of {', '.join(core.DIRECTIONS)}")
        if int(candidates) < 1:
            raise core.NoiseSemanticsError(f"[Noise Semantic Inject] input 'candidates' is {candidates}. Fix: use 1 "
                                           f"(no screening) or more")
        return (patch.patched(model, "inject", {"strength": float(strength), "decorrelate": bool(decorrelate),
                                                "schedule": schedule, "direction": direction,
                                                "candidates": int(candidates)}),)
