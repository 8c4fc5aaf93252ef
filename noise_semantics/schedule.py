from comfy_api.latest import io

from . import core
from .schema import CATEGORY, Schedule

TITLE = "Temporal Weight Schedule"


class TemporalWeightSchedule(io.ComfyNode):
    """Where in time Noise Semantic Inject asks the model, and how much each answer counts."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        d = core.TPW_SCHEDULE.params
        return io.Schema(
            node_id="NoiseSemanticTemporalSchedule",
            display_name=TITLE,
            category=CATEGORY,
            description=("Temporal Prediction Weighting (TPW) for Noise Semantic Inject: K probe times spread over "
                         "[tau_min, tau_max] (1 = pure noise, 0 = clean image) and a bump of weights over them. "
                         "Early times (near 1) carry layout, middle times structure, late times detail. Its "
                         "defaults are the paper's five probes; unconnected, Inject uses one probe at tau 0.6, "
                         "which did as well on the pack's benchmarks at a fifth of the cost."),
            inputs=[
                io.Int.Input("probes", default=d["probes"], min=1, max=64,
                             tooltip="K: how many times the model is asked, in one batched call when memory "
                                     "allows (about one sampling step of compute per probe)."),
                io.Float.Input("tau_min", default=d["tau_min"], min=0.001, max=1.0, step=0.01,
                               tooltip="Latest probe time, in (0, 1] (1 = pure noise, 0 = the finished image)."),
                io.Float.Input("tau_max", default=d["tau_max"], min=0.001, max=1.0, step=0.01,
                               tooltip="Earliest probe time, in (0, 1]; must be >= tau_min."),
                io.Combo.Input("weighting", options=["bump", "uniform"], default="bump",
                               tooltip="bump: w(tau) = max(1 - |(tau - center)/half_width|^(2*flatness), 0); "
                                       "uniform: every probe counts the same (help page)."),
                io.Float.Input("center", default=d["center"], min=0.0, max=1.0, step=0.01,
                               tooltip="Time where the bump peaks (bump weighting)."),
                io.Float.Input("half_width", default=d["half_width"], min=0.01, max=2.0, step=0.01,
                               tooltip="Distance from the center, in tau units, at which the weight reaches 0 "
                                       "(bump weighting)."),
                io.Float.Input("flatness", default=d["flatness"], min=0.1, max=10.0, step=0.1,
                               tooltip="p: 1 = a parabola, larger = a flatter top with steeper sides (bump "
                                       "weighting)."),
            ],
            outputs=[Schedule.Output(display_name="schedule",
                                     tooltip="Probe times and weights; connect to Noise Semantic Inject's "
                                             "schedule input.")],
        )

    @classmethod
    def execute(cls, probes, tau_min, tau_max, weighting, center, half_width, flatness) -> io.NodeOutput:
        if weighting == "uniform":  # center, half_width and flatness do not apply, so are not checked
            return io.NodeOutput(core.make_schedule(probes, tau_min, tau_max, weighting="uniform", node=TITLE))
        return io.NodeOutput(core.make_schedule(probes, tau_min, tau_max, center, half_width, flatness, weighting,
                                                node=TITLE))

    build = execute  # the V1 method name, for scripts that call the class directly (as ComfyUI's FreeU keeps)
