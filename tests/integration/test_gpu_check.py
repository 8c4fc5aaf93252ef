"""benchmarks/gpu_check.py, the script that measures the pack on a GPU, runs here on the CPU at tiny
shapes (the same code path: ComfyUI's model classes, comfy.sample.sample, the pack's wrapper, and a
second process under ComfyUI's own --reserve-vram). Its timings are reported, never asserted; what is
checked is the machinery: counts of model evaluations, probe calls within K, the noise's dtype, and
that a chunked probe batch gives the same refined noise as the unchunked one."""
import json
import os
import subprocess
import sys
from pathlib import Path

import host

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_check_tiny_run(tmp_path):
    env = dict(os.environ, COMFYUI_PATH=str(host.comfyui_path()))
    p = subprocess.run([sys.executable, "-m", "benchmarks.gpu_check", "--tiny", "--out", str(tmp_path / "gc")],
                       cwd=ROOT, env=env, timeout=900, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    out = json.loads((tmp_path / "gc.json").read_text())
    assert out["tiny"] and [f["family"] for f in out["families"]] == ["sdxl", "flux", "wan"]
    for fam in out["families"]:
        rows = 1 if fam["cfg"] == 1.0 else 2  # ComfyUI skips the uncond branch at cfg 1
        assert fam["stock"]["evals"] == fam["steps"] * rows
        runs = fam["runs"]
        # Extra evaluations = probes x CFG branches (x candidates); screening reads both branches
        # even at cfg 1, which the pack asks for by turning ComfyUI's cfg-1 shortcut off.
        assert runs["inject K=1"]["extra_evals"] == 1 * rows
        assert runs["inject K=5"]["extra_evals"] == 5 * rows
        assert runs["paper: erase 4 + inject K=5"]["extra_evals"] == 5 * rows
        assert runs["screen 4, K=1"]["extra_evals"] == 4 * 2
        for name, r in runs.items():
            assert r["probe_calls"] == 1, name  # plenty of memory here: one batched call
            assert r["noise_dtype"] == "torch.float32" and r["finite"], name
            assert abs(r["noise_std"] - 1.0) < 0.05, name
        sp = fam["split"]  # memory for a sampling step's 2 latents: screening 4 splits 8 -> 4 -> 2 per call
        assert sp["refused"] == [8, 4] and sp["probe_calls_run"] == 4 and sp["same_noise"], sp
        rc = fam["reserve_check"]
        assert "error" not in rc, rc
        assert 1 <= rc["probe_calls"] <= 5 and rc["same_noise"], rc
    md = (tmp_path / "gc.md").read_text()
    assert md.count("| stock |") == 3 and "--reserve-vram" in md
