"""ComfyUI Noise Semantics: Semantic Erasure and Semantic Injection of the initial noise
(arXiv 2511.07756), as MODEL patches that any sampler picks up."""

# Served at /extensions/<install folder>/. The frontend fetches a node's help page from the same
# folder-named path (js/docs/<NodeId>.md), so pyproject.toml names no second web folder.
WEB_DIRECTORY = "./js"

from comfy_api.latest import ComfyExtension, io

from .noise_semantics.erase import NoiseSemanticErase
from .noise_semantics.inject import NoiseSemanticInject
from .noise_semantics.preview import NoiseSemanticPreview
from .noise_semantics.schedule import TemporalWeightSchedule


class NoiseSemanticsExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return [NoiseSemanticErase, NoiseSemanticInject, TemporalWeightSchedule, NoiseSemanticPreview]


async def comfy_entrypoint() -> NoiseSemanticsExtension:
    return NoiseSemanticsExtension()


__all__ = ["WEB_DIRECTORY", "comfy_entrypoint"]
