from comfy_api.latest import io

from . import core, patch
from .schema import CATEGORY, apply_to_input, check_apply_to

TITLE = "Noise Semantic Erase"


class NoiseSemanticErase(io.ComfyNode):
    """Semantic Erasure (Noise Latent Normalization) on the MODEL wire."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="NoiseSemanticErase",
            display_name=TITLE,
            category=CATEGORY,
            description=("Semantic Erasure: the sampler's noise is summed with n-1 more draws and re-normalized "
                         "(z = sum z_i / sqrt(n)), diluting what any single draw 'prefers' to show. Put it between "
                         "the model loader and any sampler; the sampler's own seed is used, so changing the seed "
                         "changes the result as usual."),
            inputs=[
                io.Model.Input("model", tooltip="The diffusion model to patch (SDXL, FLUX, WAN, ...)."),
                # id 'samples' kept (saved workflows and API prompts use it); shown as 'noises combined', so
                # it is not taken for ComfyUI's LATENT input of the same name.
                io.Int.Input("samples", display_name="noises combined (n)", default=1, min=1, max=64,
                             tooltip="n: how many noises are combined; 1 (default) = the sampler's own noise, "
                                     "unchanged, the paper uses 4."),
                io.Boolean.Input("restandardize", default=True,
                                 tooltip="After combining (samples > 1), rescale each latent to exactly "
                                         "zero mean and unit variance."),
                apply_to_input(),
            ],
            outputs=[io.Model.Output(
                tooltip="The model, patched so that every sampler using it starts from the erased noise.")],
        )

    @classmethod
    def execute(cls, model, samples, restandardize, apply_to=patch.APPLY_TO[0]) -> io.NodeOutput:
        core.check_samples(samples, node=TITLE)
        check_apply_to(apply_to, TITLE)
        return io.NodeOutput(patch.patched(model, "erase", {"samples": int(samples),
                                                            "restandardize": bool(restandardize),
                                                            "apply_to": apply_to}))

    patch = execute  # the V1 method name, for scripts that call the class directly (as ComfyUI's FreeU keeps)
