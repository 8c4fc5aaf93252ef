"""Stock versus refined, on two small real models, through ComfyUI's real executor.

    bash scripts/setup_host.sh && .venv/bin/python demo/run_demo.py

Boots ComfyUI in-process (tests/host.py) on a base directory laid out as scripts/start.sh serves
it (demo/served_base.py): ComfyUI loads the pack and, from a second custom-node folder, the four
demo-only helper nodes (demo/comfyui_nsp_demo -> demo/demo_nodes.py: model loader, class prompt,
latent -> image, collector; not part of the pack); then it runs API-format prompts in ComfyUI's
PromptExecutor. Every image is sampled by the stock KSampler, from the same seed and
prompt; the refined variants put the pack's nodes on the MODEL wire:

  stock          loader -> KSampler
  screening      loader -> Noise Semantic Inject (candidates 4, the rest at its defaults) -> KSampler
  paper          loader -> Noise Semantic Erase (n=4) -> Noise Semantic Inject (strength 0.3, no
                 screening) <- Temporal Weight Schedule (defaults: five probes) -> KSampler
 The models are the shipped digits models
(demo/models.py): an SD1.5-class eps UNet and a FLUX-schnell-class flow DiT trained on
scikit-learn's 8x8 digits; the judge is a logistic regression trained on the real digits only.

Writes to --out (default demo/output/):
  grid_<kind>_cfg<cfg>.png  rows = noises, columns = digits 0..9, one panel per variant; a red
                            frame marks a digit the judge reads as another class.
  alignment.md              per model and cfg: prompt-class accuracy of each variant, split by
                            whether the noise already "prefers" the prompted digit (its class with
                            the empty prompt) or another one, and the within-digit diversity.
  prompt_<kind>_cfg<cfg>.json  the API prompt that was run.
  grid_compositional_<kind>_cfg<cfg>.png  the compositional model (demo/compositional_grid.py): held-out
                            prompts x noises, stock next to the refined setting; its table is appended
                            to alignment.md.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

# Threads that wait for the others sleep instead of spinning (read when torch starts its OpenMP pool,
# so before torch is imported): with spinning, 2 threads on a machine whose cores other programs
# also use made one eps row take minutes instead of ~10 s; sleeping, 2 threads took 9.0 s where 1 took
# 10.9 s (same busy 2-core machine). A value the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "demo"))

SAMPLER = {"eps": ("euler", "normal"), "flow": ("euler", "simple")}
MODEL_NAME = {"eps": "SD1.5-class UNet (eps)", "flow": "FLUX-schnell-class DiT (flow)"}
VARIANTS = (("stock", "stock KSampler"), ("inject", "screening: Inject candidates 4"),
            ("erase_inject", "paper: Erase 4 + Inject 0.3"))
# The paper's two steps as the nodes give them when asked: Erase n=4, Inject strength 0.3 with the
# Temporal Weight Schedule's defaults (five probes), no screening.
PAPER = {"erase": {"samples": 4}, "inject": {"strength": 0.3, "candidates": 1}}
# Noise screening, the pack's measured addition (off by default): 4 candidates, Inject's built-in
# single probe at tau 0.6 (nothing on its schedule input).
SCREEN = {"candidates": 4}
# cfg 0.5 weakens the prompt (a stress setting, no one samples like that); cfg 1 is no guidance,
# how guidance-distilled models run; from cfg ~1.25 on these toy models follow the prompt on every
# noise and nothing is left to fix (benchmarks/results/frontier_digits.md).
DEFAULT_CFGS = (0.5, 1.0, 3.0)


def node_defaults(nodes, node_id: str) -> dict:
    """Widget defaults of a live node definition (so the demo follows the pack's defaults)."""
    spec = nodes.NODE_CLASS_MAPPINGS[node_id].INPUT_TYPES()
    out = {}
    for section in ("required", "optional"):
        for k, v in spec.get(section, {}).items():
            if len(v) > 1 and isinstance(v[1], dict) and "default" in v[1]:
                out[k] = v[1]["default"]
    return out


def build_prompt(nodes, kind: str, seed: int, batch: int, steps: int, cfg: float) -> dict:
    """One API prompt: for every digit, one KSampler per variant (same seed, prompt, settings),
    plus the empty-prompt KSampler that tells each noise's own class."""
    import demo_nodes
    sampler, scheduler = SAMPLER[kind]
    empty_id, w, h = demo_nodes.demo_models().empty_latent_node(kind)
    p = {
        "load": {"class_type": "DigitsDemoModelLoader", "inputs": {"kind": kind}},
        # Inject with every widget at its live default and nothing on its schedule input, as a user
        # drops it in; and the paper's method (PAPER) with the schedule node at its defaults
        "schedule": {"class_type": "NoiseSemanticTemporalSchedule",
                     "inputs": node_defaults(nodes, "NoiseSemanticTemporalSchedule")},
        "inject": {"class_type": "NoiseSemanticInject",
                   "inputs": node_defaults(nodes, "NoiseSemanticInject") | SCREEN | {"model": ["load", 0]}},
        "erase": {"class_type": "NoiseSemanticErase",
                  "inputs": node_defaults(nodes, "NoiseSemanticErase") | PAPER["erase"] | {"model": ["load", 0]}},
        "erase_inject": {"class_type": "NoiseSemanticInject",
                         "inputs": node_defaults(nodes, "NoiseSemanticInject") | PAPER["inject"]
                         | {"model": ["erase", 0], "schedule": ["schedule", 0]}},
        "latent": {"class_type": empty_id, "inputs": {"width": w, "height": h, "batch_size": batch}},
        "null": {"class_type": "DigitsDemoClassConditioning", "inputs": {"model": ["load", 0], "digit": 10}},
    }
    models = {"stock": ["load", 0], "inject": ["inject", 0], "erase_inject": ["erase_inject", 0]}

    def sample_decode_collect(tag, model_ref, pos_ref, cfg_):
        p[f"ks_{tag}"] = {"class_type": "KSampler", "inputs": {
            "model": model_ref, "seed": seed, "steps": steps, "cfg": cfg_, "sampler_name": sampler,
            "scheduler": scheduler, "positive": pos_ref, "negative": ["null", 0],
            "latent_image": ["latent", 0], "denoise": 1.0}}
        p[f"img_{tag}"] = {"class_type": "DigitsDemoLatentToImage",
                           "inputs": {"model": ["load", 0], "samples": [f"ks_{tag}", 0], "scale": 4}}
        p[f"out_{tag}"] = {"class_type": "DigitsDemoCollect",
                           "inputs": {"images": [f"img_{tag}", 0], "label": tag, "scale": 4}}

    for d in range(10):
        p[f"cond_{d}"] = {"class_type": "DigitsDemoClassConditioning", "inputs": {"model": ["load", 0], "digit": d}}
        for v, _ in VARIANTS:
            sample_decode_collect(f"{v}_{d}", models[v], [f"cond_{d}", 0], cfg)
    # the noise's own class: the same noises (same seed and batch), empty prompt, no guidance
    sample_decode_collect("own", ["load", 0], ["null", 0], 1.0)
    return p


def draw_grid(path: Path, panels, show: int, title: str) -> None:
    """panels: [(name, pixels per digit [10][N, 8, 8], ok per digit [10][N])]."""
    from PIL import Image, ImageDraw
    cell, pad, gap, top, left = 36, 2, 24, 34, 8
    panel_w = 10 * cell
    W = left + len(panels) * panel_w + (len(panels) - 1) * gap + left
    H = top + 14 + show * cell + 8
    im = Image.new("RGB", (W, H), "white")
    dr = ImageDraw.Draw(im)
    dr.text((left, 4), title, fill="black")
    for pi, (name, px, ok) in enumerate(panels):
        x0 = left + pi * (panel_w + gap)
        dr.text((x0, top - 12), name, fill="black")
        for d in range(10):
            dr.text((x0 + d * cell + 14, top + 1), str(d), fill="gray")
            for r in range(show):
                arr = (255 * (1.0 - px[d][r] / 16.0)).clamp(0, 255).byte().numpy()
                t = Image.fromarray(arr, "L").resize((cell - 2 * pad - 2, cell - 2 * pad - 2), Image.NEAREST)
                cx, cy = x0 + d * cell, top + 14 + r * cell
                im.paste(t.convert("RGB"), (cx + pad + 1, cy + pad + 1))
                if not bool(ok[d][r]):
                    dr.rectangle([cx + pad - 1, cy + pad - 1, cx + cell - pad, cy + cell - pad],
                                 outline=(220, 30, 30), width=2)
    im.save(path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "demo" / "output")
    ap.add_argument("--kinds", nargs="+", choices=["eps", "flow"], default=["eps", "flow"])
    ap.add_argument("--cfgs", type=float, nargs="+", default=list(DEFAULT_CFGS))
    ap.add_argument("--seed", type=int, default=1, help="KSampler seed (the batch holds --batch noises from it)")
    ap.add_argument("--batch", type=int, default=32, help="noises per digit (all digits share the same noises)")
    ap.add_argument("--show", type=int, default=6, help="rows of each grid")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=0,
                    help="torch CPU threads (default 0: torch's own choice, the machine's cores). The "
                         "results do not depend on it: 1 and 2 threads gave bit-identical images on both "
                         "models (batch 32, 20 steps, cfg 0.5); only the time does")
    ap.add_argument("--log", type=Path, default=None,
                    help="where ComfyUI's own log goes (default: <out>/comfyui.log)")
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    log_path = args.log or args.out / "comfyui.log"
    quiet_comfyui(log_path)

    import host
    import served_base
    nodes = host.boot(served_base.prepare(Path(tempfile.mkdtemp(prefix="nsp-demo-base-"))))
    import torch
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    import comfy.utils
    comfy.utils.PROGRESS_BAR_ENABLED = False  # no tqdm bar per KSampler
    import demo_nodes
    dm = demo_nodes.demo_models()
    clf, held = dm.train_classifier()
    images, labels = dm.load_digits()
    ref_div = [float(torch.pdist(images[labels == c].reshape(-1, 64) / 16.0).mean()) for c in range(10)]
    show = min(args.show, args.batch)
    defaults = {k: node_defaults(nodes, k) for k in
                ("NoiseSemanticErase", "NoiseSemanticInject", "NoiseSemanticTemporalSchedule")}

    lines = ["# Digits demo: stock KSampler vs the pack's noise refinement", "",
             f"Pack node defaults used: Erase {json.dumps(defaults['NoiseSemanticErase'])}, Inject "
             f"{json.dumps(defaults['NoiseSemanticInject'])}, schedule "
             f"{json.dumps(defaults['NoiseSemanticTemporalSchedule'])}.",
             f"Each digit 0..9 is sampled from the same {args.batch} noises (KSampler seed {args.seed}, batch "
             f"{args.batch}, {args.steps} euler steps); judge: logistic regression on the real digits "
             f"(held-out accuracy {held:.3f}). A noise's own class = what the model makes of it with the empty "
             "prompt and no guidance; it 'matches' when it is the prompted digit. Diversity = mean pixel "
             "distance between the images of one digit / the same for the real digits (lower = more alike).",
             "", "| model | cfg | variant | acc | acc, noise matches | acc, noise differs | diversity | wall s |",
             "|---|---|---|---|---|---|---|---|"]
    print(f"demo: {len(args.kinds)} model(s) x {len(args.cfgs)} cfg(s), {args.batch} noises per digit, "
          f"{torch.get_num_threads()} torch thread(s); prompt-class accuracy (judge) per variant:", flush=True)
    for kind in args.kinds:
        for cfg in args.cfgs:
            t0 = time.perf_counter()
            prompt = build_prompt(nodes, kind, args.seed, args.batch, args.steps, cfg)
            (args.out / f"prompt_{kind}_cfg{cfg:g}.json").write_text(json.dumps(prompt, indent=1))
            res = demo_nodes.pixels_of(host.run_prompt(prompt))
            wall = time.perf_counter() - t0
            own = torch.as_tensor(dm.classify(clf, res["own"])[0])
            match = torch.stack([own == d for d in range(10)])  # [10, batch]
            panels, summary = [], []
            for v, name in VARIANTS:
                px = [res[f"{v}_{d}"] for d in range(10)]
                ok = torch.stack([torch.as_tensor(dm.classify(clf, px[d])[0]) == d for d in range(10)])
                div = sum(float(torch.pdist(px[d].reshape(-1, 64) / 16.0).mean()) / ref_div[d]
                          for d in range(10)) / 10
                okf = ok.float()

                def acc(m):
                    return f"{float(okf[m].mean()):.3f} (n={int(m.sum())})" if int(m.sum()) else "-"
                lines.append(f"| {kind}: {MODEL_NAME[kind]} | {cfg:g} | {name} | {float(okf.mean()):.3f} | "
                             f"{acc(match)} | {acc(~match)} | {div:.3f} | {wall:.0f} |")
                summary.append(f"{v.replace('erase_inject', 'paper').replace('inject', 'screening')} "
                               f"{float(okf.mean()):.2f}")
                panels.append((name, px, ok))
            print(f"  {kind} cfg {cfg:g}: " + ", ".join(summary) + f"  ({wall:.0f} s)", flush=True)
            draw_grid(args.out / f"grid_{kind}_cfg{cfg:g}.png", panels, show,
                      f"{MODEL_NAME[kind]}: euler {args.steps} steps, cfg {cfg:g}, seed {args.seed}; same noise "
                      f"in every row; red frame = the judge reads another digit")
    # The compositional model (two coloured digits per prompt, held-out combinations): stock versus
    # the setting the frontier benchmark recommends.
    import compositional_grid
    t0 = time.perf_counter()
    md, _ = compositional_grid.run(nodes, args.out, steps=args.steps)
    for row in md:
        cells = [c.strip() for c in row.strip("|").split("|")]
        if cells[0] in ("eps", "flow"):
            print(f"  compositional {cells[0]} cfg {cells[1]}: all attributes right, stock {cells[2]}, "
                  f"refined {cells[3]}", flush=True)
    print(f"  ({time.perf_counter() - t0:.0f} s)", flush=True)
    lines += [""] + md
    total = time.perf_counter() - t_start
    lines += ["", f"Total wall time {total:.0f} s (CPU, {torch.get_num_threads()} thread(s))."]
    (args.out / "alignment.md").write_text("\n".join(lines) + "\n")
    print(f"demo done in {total:.0f} s: the table is {args.out}/alignment.md, the pictures "
          f"{args.out}/grid_*.png; ComfyUI's own log: {log_path}")


def quiet_comfyui(log_path: Path) -> None:
    """ComfyUI's log (its start-up report, which optional nodes it skipped, every model load) goes to
    a file, not the terminal: the demo prints its own few lines. ComfyUI logs through the root logger;
    with a handler already on it, logging never adds its default one that prints to the terminal."""
    import logging
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = logging.FileHandler(log_path, mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)


if __name__ == "__main__":
    main()
