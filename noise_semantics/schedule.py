from . import core


class TemporalWeightSchedule:
    """Where in time Noise Semantic Inject asks the model, and how much each answer counts."""

    DESCRIPTION = ("Temporal Prediction Weighting (TPW) for Noise Semantic Inject: K probe times spread over "
                   "[tau_min, tau_max] (1 = pure noise, 0 = clean image) and a bump of weights over them. "
                   "Early times (near 1) carry layout, middle times structure, late times detail.")
    CATEGORY = "sampling/noise semantics"
    RETURN_TYPES = (core.SCHEDULE_TYPE,)
    RETURN_NAMES = ("schedule",)
    OUTPUT_TOOLTIPS = ("Probe times and weights; connect to Noise Semantic Inject's schedule input.",)
    FUNCTION = "build"

    @classmethod
    def INPUT_TYPES(cls):
        d = core.DEFAULT_SCHEDULE.params
        return {"required": {
            "probes": ("INT", {"default": d["probes"], "min": 1, "max": 64,
                               "tooltip": "K: how many times the model is asked. All probes go through the sampler's "
                                          "model in one batched call when memory allows (compute: about one sampling step per probe)."}),
            "tau_min": ("FLOAT", {"default": d["tau_min"], "min": 0.001, "max": 1.0, "step": 0.01,
                                  "tooltip": "Latest probe time, in (0, 1]. 1 = pure noise, 0 = the finished image."}),
            "tau_max": ("FLOAT", {"default": d["tau_max"], "min": 0.001, "max": 1.0, "step": 0.01,
                                  "tooltip": "Earliest probe time, in (0, 1]; must be >= tau_min."}),
            "weighting": (["bump", "uniform"], {"default": "bump",
                                                "tooltip": "bump: w(tau) = max(1 - |(tau - center)/half_width|^(2*flatness), 0). "
                                                           "uniform: every probe counts the same (center, half_width, "
                                                           "flatness are then not used)."}),
            "center": ("FLOAT", {"default": d["center"], "min": 0.0, "max": 1.0, "step": 0.01,
                                 "tooltip": "Time where the bump peaks (bump weighting)."}),
            "half_width": ("FLOAT", {"default": d["half_width"], "min": 0.01, "max": 2.0, "step": 0.01,
                                     "tooltip": "Distance from the center, in tau units, at which the weight reaches 0 "
                                                "(bump weighting)."}),
            "flatness": ("FLOAT", {"default": d["flatness"], "min": 0.1, "max": 10.0, "step": 0.1,
                                   "tooltip": "p: 1 = a parabola, larger = a flatter top with steeper sides (bump weighting)."}),
        }}

    def build(self, probes, tau_min, tau_max, weighting, center, half_width, flatness):
        if weighting == "uniform":
            return (core.make_schedule(probes, tau_min, tau_max, weighting="uniform"),)
        return (core.make_schedule(probes, tau_min, tau_max, center, half_width, flatness, weighting),)
