"""Puts tests/ (the shared harness: host.py, tiny_models.py, probes.py, ...) and the repo root (the
pack's pure-torch package, noise_semantics) on sys.path. Nothing else: tests/unit must run without
ComfyUI; tests/integration/conftest.py boots it."""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
for p in (HERE.parent, HERE):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))
