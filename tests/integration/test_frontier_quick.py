"""The one command that reproduces every frontier table and plot, in its quick mode (what CI can
afford): it runs end to end on this host and writes complete reports for both tasks."""
import json
import os
import subprocess
import sys
from pathlib import Path

import host

ROOT = Path(__file__).resolve().parents[2]


def test_quick_frontier_run_writes_both_tasks(tmp_path):
    env = dict(os.environ, COMFYUI_PATH=str(host.comfyui_path()))
    subprocess.run([sys.executable, "-m", "benchmarks.frontier.run", "--quick", "--out", str(tmp_path)],
                   cwd=ROOT, env=env, check=True, timeout=900, capture_output=True)
    for task, splits in (("digits", {"all"}), ("compositional", {"heldout", "seen"})):
        out = json.loads((tmp_path / f"frontier_quick_{task}.json").read_text())
        assert set(out["kinds"]) == {"eps", "flow"}
        for k in out["kinds"].values():
            assert set(k["analysis"]) == splits
            for a in k["analysis"].values():
                assert a["verdicts"] and all(p["same_cfg"] for p in a["points"])
        md = (tmp_path / f"frontier_quick_{task}.md").read_text()
        assert "### Verdicts" in md and (tmp_path / f"frontier_quick_{task}.png").stat().st_size > 1000
