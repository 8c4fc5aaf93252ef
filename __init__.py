"""ComfyUI Noise Semantics: Semantic Erasure and Semantic Injection of the initial noise
(arXiv 2511.07756), as MODEL patches that any sampler picks up."""
if __package__:
    from .noise_semantics.erase import NoiseSemanticErase
    from .noise_semantics.inject import NoiseSemanticInject
    from .noise_semantics.schedule import TemporalWeightSchedule

    NODE_CLASS_MAPPINGS = {
        "NoiseSemanticErase": NoiseSemanticErase,
        "NoiseSemanticInject": NoiseSemanticInject,
        "NoiseSemanticTemporalSchedule": TemporalWeightSchedule,
    }
    NODE_DISPLAY_NAME_MAPPINGS = {
        "NoiseSemanticErase": "Noise Semantic Erase",
        "NoiseSemanticInject": "Noise Semantic Inject",
        "NoiseSemanticTemporalSchedule": "Temporal Weight Schedule",
    }
else:  # imported as a plain file (pytest, from a checkout whose folder name is no identifier)
    NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS = {}, {}

WEB_DIRECTORY = "./js"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
