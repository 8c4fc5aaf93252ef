from .erase import NoiseSemanticErase
from .inject import NoiseSemanticInject
from .schedule import TemporalWeightSchedule

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
