"""Stock versus refined on the compositional model (benchmarks/compositional/): two coloured digits
per prompt, prompts held out of training. Same noises, same prompt, same KSampler settings; the
refined column puts the pack's nodes on the MODEL wire (benchmarks/frontier/experiment.py runs both
through ComfyUI's KSampler code). A red frame marks an image where the independent judge finds an
attribute wrong.

    .venv/bin/python demo/compositional_grid.py --out demo/output
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The setting shown: noise screening, the mode the frontier benchmark found ahead of raising CFG
# (README, "What it does, measured").
REFINED = {"candidates": 4, "schedule": (("probes", 1), ("tau_max", 0.6), ("tau_min", 0.6))}


def draw(path: Path, prompts, panels, title: str, cell: int = 40) -> None:
    """panels: [(name, images [P, N, 3, H, W] in 0..1, ok [P, N])]."""
    from PIL import Image, ImageDraw
    P, N = panels[0][1].shape[:2]
    h, w = panels[0][1].shape[-2:]
    cw, ch = cell * w // h, cell
    gap, top, left, label = 20, 30, 8, 150
    panel_w = N * (cw + 2)
    W = left + label + len(panels) * panel_w + (len(panels) - 1) * gap + left
    H = top + 14 + P * (ch + 2) + 8
    im = Image.new("RGB", (W, H), "white")
    dr = ImageDraw.Draw(im)
    dr.text((left, 4), title, fill="black")
    for r, p in enumerate(prompts):
        dr.text((left, top + 14 + r * (ch + 2) + ch // 2 - 5), p, fill="black")
    for pi, (name, imgs, ok) in enumerate(panels):
        x0 = left + label + pi * (panel_w + gap)
        dr.text((x0, top), name, fill="black")
        for r in range(P):
            for c in range(N):
                arr = (imgs[r, c].permute(1, 2, 0).clamp(0, 1) * 255).byte().numpy()
                tile = Image.fromarray(arr, "RGB").resize((cw - 4, ch - 4), Image.NEAREST)
                x, y = x0 + c * (cw + 2), top + 14 + r * (ch + 2)
                im.paste(tile, (x + 2, y + 2))
                if not bool(ok[r, c]):
                    dr.rectangle([x, y, x + cw - 1, y + ch - 1], outline=(220, 30, 30), width=2)
    im.save(path)


def run(nodes, out: Path, kinds=("eps", "flow"), prompts_n: int = 8, noises: int = 6, steps: int = 20,
        seed: int = 7, cfgs: dict | None = None) -> list:
    sys.path.insert(0, str(ROOT))
    from benchmarks.compositional import data
    from benchmarks.frontier.experiment import Config, Runner
    from benchmarks.frontier.tasks import get_task
    task = get_task("compositional")
    # cfg 2, below these models' best cfg (4.5): where the frontier benchmark found screening ahead of
    # raising CFG on the eps model (at their usual cfg it is within noise of stock)
    cfgs = cfgs or {"eps": 2.0, "flow": 2.0}
    lines, written = [], []
    for kind in kinds:
        prompts = task.prompts("heldout", prompts_n)
        r = Runner(nodes, task, kind, noises, steps, seed, prompts, keep_images=True)
        cfg = cfgs[kind]
        stock, refined = r.run(Config(cfg)), r.run(Config(cfg, **REFINED))
        names = [data.describe_prompt(p) for p in prompts]
        path = out / f"grid_compositional_{kind}_cfg{cfg:g}.png"
        draw(path, names, [("stock KSampler", stock.extra["images"], stock.ok["all"]),
                           (f"refined: {refined.config.method()}", refined.extra["images"], refined.ok["all"])],
             f"compositional {kind} model, held-out prompts, cfg {cfg:g}, {steps} euler steps, seed {seed}; "
             f"same noises per column")
        a, b = stock.ok["all"], refined.ok["all"]
        lines.append(f"| {kind} | {cfg:g} | {float(a.float().mean()):.3f} | {float(b.float().mean()):.3f} | "
                     f"{int((b & ~a).sum())} / {int((a & ~b).sum())} | {stock.evals:.0f} / {refined.evals:.0f} |")
        written.append(path)
    md = ["## Compositional model (held-out prompts)", "",
          f"Refined = {Config(0, **REFINED).method()}; all attributes right (judge), fixed / broken against stock.",
          "", "| model | cfg | stock | refined | fixed / broken | evals per image (stock / refined) |",
          "|---|---|---|---|---|---|"] + lines
    return md, written


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "demo" / "output")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT / "tests"))
    import host
    nodes = host.boot()
    import torch
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    md, paths = run(nodes, args.out)
    (args.out / "compositional.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    print("wrote", ", ".join(str(p) for p in paths))


if __name__ == "__main__":
    main()
