from comfy_api.latest import io

from . import core, patch
from .schema import CATEGORY, Schedule, apply_to_input, check_apply_to

TITLE = "Noise Semantic Inject"


class NoiseSemanticInject(io.ComfyNode):
    """Semantic Injection (Temporal Prediction Weighting) on the MODEL wire."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="NoiseSemanticInject",
            display_name=TITLE,
            category=CATEGORY,
            description=("Before sampling, asks the model what it makes of the starting noise under your prompt "
                         "(with the sampler's CFG). candidates > 1 screens: it probes that many noises per image "
                         "(the sampler's own first) and keeps the one whose own content already agrees best with "
                         "the prompt. strength > 0 adds the paper's Semantic Injection, z' = (z + strength * e) / "
                         "sqrt(1 + strength^2). At its defaults it changes nothing: at the cfg people use no setting "
                         "gained beyond noise (picking the best of 4 noises: +0.03 [-0.01, +0.08] accuracy offline, "
                         "+0.00 [-0.02, +0.02] through this node; help page). "
                         "Runs after Noise Semantic Erase."),
            inputs=[
                io.Model.Input("model", tooltip="The diffusion model to patch (SDXL, FLUX, WAN, ...)."),
                io.Float.Input("strength", default=0.0, min=0.0, max=4.0, step=0.01,
                               tooltip="How far the noise moves toward what the model predicts (the paper's "
                                       "injection); 0 = none (default, see the help page)."),
                io.Boolean.Input("decorrelate", default=True,
                                 tooltip="Inject only what the model adds to the noise, so strength is an exact "
                                         "noise/semantics mix (off: the paper's formula as written)."),
                Schedule.Input("schedule", optional=True,
                               tooltip="Probe times and weights from a Temporal Weight Schedule node; unconnected: "
                                       "one probe at tau 0.6."),
                # Optional, so that workflows and API prompts saved before these inputs existed still load.
                io.Combo.Input("direction", options=list(core.DIRECTIONS), default="guided", optional=True,
                               tooltip="What strength injects: guided (the paper's CFG-guided direction) or prompt "
                                       "(only what the prompt changes, cond - uncond; needs a negative prompt)."),
                io.Int.Input("candidates", default=1, min=1, max=16, optional=True,
                             tooltip="Noise screening: probe this many noises per image and keep the one that "
                                     "already agrees best with the prompt; 1 = off (default), try 4 below your "
                                     "usual cfg."),
                apply_to_input(),
            ],
            outputs=[io.Model.Output(
                tooltip="The model, patched so that every sampler using it starts from the injected noise.")],
            # its own id, so that the sampler's run can report on this node what it did (patch.show_on_node);
            # not_idempotent puts the id in the cache key (a V3 hidden unique_id does not, on 0.3.75 and 0.33),
            # so an Inject of another workflow with the same inputs never hands its cached id to this one
            hidden=[io.Hidden.unique_id],
            not_idempotent=True,
        )

    @classmethod
    def execute(cls, model, strength, decorrelate=True, schedule=None, direction="guided",
                candidates=1, apply_to=patch.APPLY_TO[0]) -> io.NodeOutput:
        core.check_strength(strength, node=TITLE)
        if schedule is None:
            schedule = core.DEFAULT_SCHEDULE
        if not isinstance(schedule, core.TemporalSchedule):
            raise core.NoiseSemanticsError(
                f"[{TITLE}] input 'schedule' is a {type(schedule).__name__}, not a schedule. Fix: "
                f"connect a Temporal Weight Schedule node, or leave the input unconnected for the defaults")
        if direction not in core.DIRECTIONS:
            raise core.NoiseSemanticsError(f"[{TITLE}] input 'direction' is {direction!r}. Fix: choose one of "
                                           f"{', '.join(core.DIRECTIONS)}")
        check_apply_to(apply_to, TITLE)
        if int(candidates) < 1:
            raise core.NoiseSemanticsError(f"[{TITLE}] input 'candidates' is {candidates}. Fix: use 1 (no "
                                           f"screening) or more")
        hidden = getattr(cls, "hidden", None)  # None when the class is called directly, outside ComfyUI's executor
        return io.NodeOutput(patch.patched(model, "inject", {"strength": float(strength),
                                                             "decorrelate": bool(decorrelate),
                                                             "schedule": schedule, "direction": direction,
                                                             "candidates": int(candidates),
                                                             "apply_to": apply_to,
                                                             "node_id": getattr(hidden, "unique_id", None)}))

    patch = execute  # the V1 method name, for scripts that call the class directly (as ComfyUI's FreeU keeps)
