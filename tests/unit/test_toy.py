"""The paper's Figure 2 toy (python -m benchmarks.toy --quick, about 20 s): the sign of the injection and
the noise-semantic mismatch effect, as orderings of measured numbers (no timing). Pure torch: no
ComfyUI."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_toy_quick_orders_as_the_paper_and_settles_the_sign(tmp_path):
    subprocess.run([sys.executable, "-m", "benchmarks.toy", "--quick", "--out", str(tmp_path)], cwd=ROOT,
                   check=True, capture_output=True, timeout=600)
    rows = {r["name"]: r for r in json.loads((tmp_path / "toy_quick.json").read_text())["rows"]}
    pick = lambda prefix: next(r for n, r in rows.items() if n.startswith(prefix))
    matched, mismatched = pick("matched seed"), pick("mismatched seed")
    toward, away = pick("Injected denoising"), pick("Injected opposite")
    assert mismatched["wrong"] > matched["wrong"] + 0.05     # noise semantics matter
    assert toward["prec"] > mismatched["prec"] > away["prec"]  # the denoising sign helps, the literal hurts
    assert toward["wrong"] < mismatched["wrong"]
