from comfy_api.latest import io

from . import core, patch
from .schema import CATEGORY

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
                io.Int.Input("samples", default=1, min=1, max=64,
                             tooltip="n: how many noises are combined. 1 (default) = the sampler's own noise, "
                                     "unchanged: erasure did not beat raising CFG in our benchmarks (help page). "
                                     "The paper uses 4. Extra draws come from seeds derived from the sampler's "
                                     "seed, on the CPU, so results do not depend on the GPU."),
                io.Boolean.Input("restandardize", default=True,
                                 tooltip="After combining (samples > 1), rescale each latent to exactly "
                                         "zero mean and unit variance."),
            ],
            outputs=[io.Model.Output(
                tooltip="The model, patched so that every sampler using it starts from the erased noise.")],
        )

    @classmethod
    def execute(cls, model, samples, restandardize) -> io.NodeOutput:
        core.check_samples(samples, node=TITLE)
        return io.NodeOutput(patch.patched(model, "erase", {"samples": int(samples),
                                                            "restandardize": bool(restandardize)}))

    patch = execute  # the V1 method name, for scripts that call the class directly (as ComfyUI's FreeU keeps)
