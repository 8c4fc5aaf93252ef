"""The selector study's one command in its quick mode (CI): real KSampler runs through the study's
SAMPLER_SAMPLE wrapper, every score per (prompt, noise), and the report. Research outcomes are not
asserted; the machinery is: the attention hook returned maps for both model kinds, every score has one
value per pair, the tables exist."""
import json
import os
import subprocess
import sys
from pathlib import Path

import host

ROOT = Path(__file__).resolve().parents[2]


def test_quick_selector_study_runs_and_reports(tmp_path):
    env = dict(os.environ, COMFYUI_PATH=str(host.comfyui_path()))
    subprocess.run([sys.executable, "-m", "benchmarks.selectors", "--quick", "--out", str(tmp_path)],
                   cwd=ROOT, env=env, check=True, timeout=600, capture_output=True)
    raw = json.loads((tmp_path / "selectors_quick.json").read_text())
    assert {r["kind"] for r in raw["runs"]} == {"eps", "flow"}
    for r in raw["runs"]:
        P, N = len(r["ok"]), len(r["ok"][0])
        assert N == 8
        # the attention hook saw the UNet's cross-attention and the DiT's joint attention
        assert any(k.startswith("attn_overlap") for k in r["scores"]), r["kind"]
        for name, v in r["scores"].items():
            assert len(v) == P and all(len(row) == N for row in v), name
    md = (tmp_path / "selectors_quick.md").read_text()
    assert "## Summary" in md and "random reseed" in md
