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
                # headroom from the stored verdicts: one capture per refined run, reseed controls
                h = a["headroom"]
                assert len(h["capture"]) == len(a["points"]) and h["reseed"] and h["stock"]
                assert all("capture_of_4" in c for c in h["capture"])  # quick runs keep >= 4 noises
                assert all(s["oracle"]["2"] >= s["stock"] for s in h["stock"])
        md = (tmp_path / f"frontier_quick_{task}.md").read_text()
        assert "### Verdicts" in md and (tmp_path / f"frontier_quick_{task}.png").stat().st_size > 1000
        assert "### Capture" in md and "random reseed m=2" in md


def test_quick_steps_frontier_writes_both_tasks(tmp_path):
    env = dict(os.environ, COMFYUI_PATH=str(host.comfyui_path()))
    subprocess.run([sys.executable, "-m", "benchmarks.frontier.run", "--steps-frontier", "--quick", "--out",
                    str(tmp_path)], cwd=ROOT, env=env, check=True, timeout=600, capture_output=True)
    for task in ("digits", "compositional"):
        out = json.loads((tmp_path / f"frontier_quick_steps_{task}.json").read_text())
        cfg = "4.5" if task == "compositional" else "1"
        assert set(out["sections"]) == {f"eps cfg {cfg}", f"flow cfg {cfg}"}
        for sec in out["sections"].values():
            runs = sec["runs"]
            # every step count ran at its own number of steps: stock's evaluations grow with the steps
            c = [r["config"] for r in runs]
            stock = sorted((x["steps"], r["evals"]) for x, r in zip(c, runs)
                           if x["erase"] == 1 and x["inject"] == 0 and x["candidates"] == 1)
            assert [s for s, _ in stock] == [4, 8] and stock[0][1] < stock[1][1]
            assert all(len(r["ok"]["all"]) == out["meta"]["prompts"] for r in runs)  # verdicts stored
            assert sec["analysis"]["verdicts"] and sec["analysis"]["points"]
        assert "Verdicts" in (tmp_path / f"frontier_quick_steps_{task}.md").read_text()
