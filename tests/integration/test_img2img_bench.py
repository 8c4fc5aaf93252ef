"""The img2img / inpainting benchmark (benchmarks/img2img.py) in its quick mode, in this session's
ComfyUI: it runs end to end through the real nodes and KSampler and writes a complete report.
Machinery only: what the methods achieve is reported by the benchmark, never asserted."""
import json
import sys
from pathlib import Path

import comfy.utils

import host

host.boot()
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks import img2img  # noqa: E402


def test_quick_img2img_run_writes_every_scenario(tmp_path):
    bar = comfy.utils.PROGRESS_BAR_ENABLED
    try:
        img2img.main(["--quick", "--steps", "4", "--out", str(tmp_path)])
    finally:
        comfy.utils.PROGRESS_BAR_ENABLED = bar
    res = json.loads((tmp_path / "img2img_quick.json").read_text())
    plan = res["meta"]["plan"]
    assert set(res["kinds"]) == {"eps", "flow"}
    for k in res["kinds"].values():
        for scen in ("edit", "keep", "inpaint"):
            runs = [r for r in k["runs"] if r["scenario"] == scen]
            assert len(runs) == len(plan[scen]["stock"]) + len(plan[scen]["methods"]) * len(plan["methods"]) * 2
            assert all(len(r["hit"]) == len(r["dist"]) == res["meta"]["inputs"] for r in runs)
            rows = [a for a in k["analysis"] if a["scenario"] == scen]
            assert rows and all("vs_stock" in a for a in rows)
            assert all("vs_noise" in a for a in rows if a["probe_input"] == "sampler")
            assert all(("frontier" in a) == (scen == "edit") for a in rows)
        # the probes cost evaluations: every method run evaluates more than stock's
        stock_evals = max(r["evals"] for r in k["runs"] if r["method"] == "stock")
        assert all(r["evals"] > stock_evals for r in k["runs"] if r["method"] != "stock")
    md = (tmp_path / "img2img_quick.md").read_text()
    assert "## eps model, inpaint, cfg 3" in md and "## flow model, edit, cfg 3" in md
