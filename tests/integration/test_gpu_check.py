"""benchmarks/gpu_check/, the script that measures the pack on a GPU, runs here on the CPU at tiny
shapes (the same code path: ComfyUI's model classes, comfy.sample.sample, the pack's wrapper, a second
process under ComfyUI's own --reserve-vram, and one with a partially loaded model). Its timings are
reported, never asserted; what is checked is the machinery: counts of model evaluations, probe calls
within K, the noise's dtype, that the parts of a run add up to its wall time, that a chunked probe batch
and a partially loaded model give the same refined noise as the unchunked, fully loaded run.

What the CPU does not cover of the --lowvram round: ComfyUI takes no --lowvram next to --cpu and loads
whole models on a CPU, so the child unloads half of the weights itself (ComfyUI's own
ModelPatcher.partially_unload); the layers left out are cast in per call (a no-op copy on one device),
so the cost of streaming weights is measured on a GPU only."""
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
        for name, r in list(runs.items()) + [("stock", fam["stock"])]:
            # the parts are in order (set-up, probes, sampling, finish) and the probes' model calls all
            # fall in the probes part: none before the sampler starts, all of them before sampling
            parts = [r["setup_s"], r["probes_s"], r["sampling_s"], r["finish_s"]]
            assert min(parts) >= 0 and abs(sum(parts) - r["wall_s"]) <= 0.02 * r["wall_s"] + 1e-3, (name, parts)
            assert r["evals_before_sampler"] == 0 and len(r["step_s"]) == fam["steps"], name
            assert r["probe_evals"] == (0 if name == "stock" else r["extra_evals"]), name
        rc = fam["reserve_check"]
        assert "error" not in rc, rc
        assert 1 <= rc["probe_calls"] <= 5 and rc["same_noise"], rc
        lv = fam["lowvram"]
        assert "error" not in lv, lv
        # half of the weights unloaded by ComfyUI's own partial unload: the model is in lowvram mode
        assert lv["model_lowvram"] and 0.2 < lv["loaded_fraction"] < 0.8, lv
        assert lv["extra_evals"] == 5 * rows and lv["same_noise"], lv
    md = (tmp_path / "gc.md").read_text()
    assert md.count("| stock |") == 3 and "--reserve-vram" in md and md.count("Partially loaded model") == 3
