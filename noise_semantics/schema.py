"""What the node schemas share: their menu category and the wire type of a schedule."""
from comfy_api.latest import io

from . import core, patch

CATEGORY = "sampling/noise semantics"
# A custom socket type: only a Temporal Weight Schedule output connects to Inject's schedule input.
Schedule = io.Custom(core.SCHEDULE_TYPE)


def apply_to_input():
    """Erase's and Inject's 'apply_to' (optional: workflows saved before it load with the default)."""
    return io.Combo.Input("apply_to", options=list(patch.APPLY_TO), default=patch.APPLY_TO[0], optional=True,
                          tooltip="Which samplers on this model refine their noise: those starting from pure noise "
                                  "(empty latent or denoise 1), or also img2img, hires-fix passes, crops and tiles.")


def check_apply_to(apply_to, node: str):
    if apply_to not in patch.APPLY_TO:
        raise core.NoiseSemanticsError(f"[{node}] input 'apply_to' is {apply_to!r}. Fix: choose one of "
                                       f"{', '.join(repr(a) for a in patch.APPLY_TO)}")
