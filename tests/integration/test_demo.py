"""The pack's main job on its embedded demo models (README set-up command 1, smaller): the shipped
digits eps UNet and flow DiT through the real executor, the real KSampler and the pack's nodes,
plus the compositional model's grid. Checks machinery: the outputs are written, every variant was
sampled, and the refined variants changed the images. What they achieve is reported by the demo
and the frontier benchmark (benchmarks/results/frontier_*.md), never asserted here."""
import json
import subprocess
import sys

import host


def test_demo_writes_grids_tables_and_runs_every_variant(tmp_path):
    subprocess.run([sys.executable, str(host.ROOT / "demo" / "run_demo.py"), "--kinds", "eps", "flow",
                    "--cfgs", "0.5", "--batch", "8", "--out", str(tmp_path)],
                   check=True, capture_output=True, timeout=900)
    for kind in ("eps", "flow"):
        assert (tmp_path / f"grid_{kind}_cfg0.5.png").stat().st_size > 1000
        prompt = json.loads((tmp_path / f"prompt_{kind}_cfg0.5.json").read_text())
        ours = {k: v for k, v in prompt.items() if v["class_type"] == "NoiseSemanticInject"}
        assert {v["inputs"]["candidates"] for v in ours.values()} == {4, 1}  # screening, and the paper's
        assert "schedule" not in prompt["inject"]["inputs"]
    assert list(tmp_path.glob("grid_compositional_*.png"))
    rows = {}
    for line in (tmp_path / "alignment.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) > 4 and cells[0].split(":")[0] in ("eps", "flow") and cells[1] == "0.5":
            rows[(cells[0].split(":")[0], cells[2])] = cells[3:]
    for kind in ("eps", "flow"):
        variants = {v for k, v in rows if k == kind}
        assert variants == {"stock KSampler", "screening: Inject candidates 4", "paper: Erase 4 + Inject 0.3"}, rows
