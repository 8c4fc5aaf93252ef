"""The digits demo's nodes as a ComfyUI custom-node folder, NOT part of the pack (not shipped:
.comfyignore lets only the pack's own files into the archive users download).

``demo/served_base.py`` links this folder into the served base directory's custom_nodes/, next to
the pack, so ComfyUI loads the demo nodes as it loads any custom node. The node code lives in
``demo/demo_nodes.py`` (one copy, also what ``demo/run_demo.py`` runs); it reads the shipped
weights ``demo/*.safetensors`` directly, so no models folder is needed.
"""
import importlib.util
import sys
from pathlib import Path

# A private module name: a bare "demo_nodes" on sys.modules could collide with another pack's.
_NAME = "noise_semantics_demo_nodes"
if _NAME not in sys.modules:
    _spec = importlib.util.spec_from_file_location(_NAME, Path(__file__).resolve().parents[1] / "demo_nodes.py")
    _mod = importlib.util.module_from_spec(_spec)
    sys.modules[_NAME] = _mod
    _spec.loader.exec_module(_mod)

NODE_CLASS_MAPPINGS = sys.modules[_NAME].NODE_CLASS_MAPPINGS
NODE_DISPLAY_NAME_MAPPINGS = sys.modules[_NAME].NODE_DISPLAY_NAME_MAPPINGS
