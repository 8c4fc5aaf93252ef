"""The pack's main job on its embedded demo models (README set-up command 1, smaller): the shipped
digits eps UNet and flow DiT through the real executor, the real KSampler and the pack's nodes at
their defaults. Asserts the outputs are written and that Inject raises prompt accuracy at weak
guidance, where stock sampling follows the noise's own digit (benchmarks/results/digits.md has the
full numbers)."""
import subprocess
import sys

import host


def test_demo_writes_grids_and_inject_beats_stock(tmp_path):
    subprocess.run([sys.executable, str(host.ROOT / "demo" / "run_demo.py"), "--kinds", "eps", "flow",
                    "--cfgs", "0.5", "--batch", "8", "--out", str(tmp_path)],
                   check=True, capture_output=True, timeout=900)
    for kind in ("eps", "flow"):
        assert (tmp_path / f"grid_{kind}_cfg0.5.png").stat().st_size > 1000
        assert (tmp_path / f"prompt_{kind}_cfg0.5.json").exists()
    acc = {}
    for line in (tmp_path / "alignment.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) > 4 and cells[2] in ("stock KSampler", "Inject"):
            acc[(cells[0].split(":")[0], cells[2])] = float(cells[3])
    for kind in ("eps", "flow"):
        assert acc[(kind, "Inject")] > acc[(kind, "stock KSampler")] + 0.03, acc
