"""Stock sampling across CFG scales on the compositional task: how often plain CFG gets every
attribute right, on seen and on held-out combinations, through ComfyUI's real KSampler.

    .venv/bin/python -m benchmarks.compositional.stock_eval              # writes benchmarks/results/compositional_stock.md
    .venv/bin/python -m benchmarks.compositional.stock_eval --n 64 --out /tmp/x.md --weights /tmp/w   # sizing

N prompts per split (``task.prompts(split, N)``), one image each, seed --seed with batch_index
0..N-1, 20 euler steps ('normal' scheduler for eps, 'simple' for flow), negative = the empty prompt.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CFGS = (1.0, 2.0, 3.0, 4.5, 6.0, 8.0)
KEYS = ("all", "digit_first", "colour_first", "digit_second", "colour_second", "binding_swap", "colour_leak",
        "missing_object", "first_on_right")


def sample(nodes, task, kind, model, prompts, cfg, steps=20, seed=0, chunk=256):
    """Images for prompts, one each, batch_index 0..N-1 (so a prompt's noise does not depend on
    the chunking)."""
    import torch
    out = []
    for i in range(0, len(prompts), chunk):
        ps = prompts[i:i + chunk]
        latent = {"samples": task.empty_latent(kind, len(ps)), "batch_index": list(range(i, i + len(ps)))}
        res = nodes.common_ksampler(model, seed, steps, cfg, *task.sampler[kind], task.conditioning(kind, ps),
                                    task.null_conditioning(kind, len(ps)), latent)[0]["samples"]
        out.append(task.decode(kind, res))
    return torch.cat(out)


def sweep(nodes, task, kind, n, cfgs=CFGS, steps=20, seed=0) -> list:
    rows = []
    model = task.load(kind)
    for split in ("seen", "heldout"):
        ps = task.prompts(split, n)
        for cfg in cfgs:
            t0 = time.perf_counter()
            res = task.judge(sample(nodes, task, kind, model, ps, cfg, steps, seed), ps)
            row = {"kind": kind, "split": split, "cfg": cfg, "n": n} | {k: float(res[k].float().mean()) for k in KEYS}
            row["fail"] = 1.0 - row["all"]
            row["wall_s"] = round(time.perf_counter() - t0, 1)
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def report(rows, desc, cmd, path: Path) -> None:
    lines = ["# Compositional task: stock sampling across CFG", "",
             f"Command: `{cmd}`", "",
             "Pass = every attribute right (both digits, both colours), judged by the independent judge. "
             "Fail = 1 - pass. binding swap: both prompted colours drawn but exchanged between the two objects; "
             "colour leak: both objects one of the two prompted colours; missing: a half (nearly) empty or one of "
             "two different prompted digits drawn nowhere; 1st on right: the first object drawn on the right. "
             "One image per prompt, KSampler seed 0 with batch_index 0..n-1, 20 euler steps ('normal' scheduler "
             "for eps, 'simple' for flow), negative = the empty prompt. Prompts: task.prompts(split, n). "
             "See docs/compositional.md.", "",
             f"Judge accuracy on real scenes of held-out prompts (glyphs the judge never saw): "
             f"`{json.dumps(desc['judge_accuracy_real_heldout_scenes'])}`", ""]
    for kind in ("eps", "flow"):
        kr = [r for r in rows if r["kind"] == kind]
        if not kr:
            continue
        info = desc[kind]
        lines += [f"## {kind}: {info['comfy_class']}, {info['recipe'].get('params')} parameters, "
                  f"trained {info['recipe'].get('steps')} steps x batch {info['recipe'].get('batch')} "
                  f"({info['recipe'].get('train_seconds')} s)", "",
                  "| split | cfg | n | fail | digit 1 | colour 1 | digit 2 | colour 2 | binding swap | colour leak | missing | 1st on right |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in kr:
            lines.append(f"| {r['split']} | {r['cfg']} | {r['n']} | **{r['fail']:.3f}** | {r['digit_first']:.3f} | "
                         f"{r['colour_first']:.3f} | {r['digit_second']:.3f} | {r['colour_second']:.3f} | "
                         f"{r['binding_swap']:.3f} | {r['colour_leak']:.3f} | {r['missing_object']:.3f} | "
                         f"{r['first_on_right']:.2f} |")
        best = {s: min((r for r in kr if r["split"] == s), key=lambda r: r["fail"]) for s in ("seen", "heldout")}
        lines += ["", f"Best cfg: seen {best['seen']['cfg']} (fail {best['seen']['fail']:.3f}), held-out "
                      f"{best['heldout']['cfg']} (fail {best['heldout']['fail']:.3f}).", ""]
    lines += ["Raw rows:", "", "```", *[json.dumps(r) for r in rows], "```", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    print(f"wrote {path}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", choices=["eps", "flow", "both"], default="both")
    ap.add_argument("--n", type=int, default=300, help="prompts per split")
    ap.add_argument("--cfg", type=float, nargs="*", default=list(CFGS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--weights", type=Path, help="folder of eps/flow.safetensors (default: the shipped ones)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "compositional_stock.md")
    args = ap.parse_args(argv)
    cmd = ".venv/bin/python -m benchmarks.compositional.stock_eval " + " ".join(sys.argv[1:] if argv is None else argv)
    sys.path.insert(0, str(ROOT / "tests"))
    import host
    nodes = host.boot()  # rewrites sys.argv
    import torch
    torch.set_num_threads(1)
    from .task import CompositionalTask
    task = CompositionalTask(args.weights)
    rows = []
    with torch.inference_mode():
        for kind in (["eps", "flow"] if args.kind == "both" else [args.kind]):
            rows += sweep(nodes, task, kind, args.n, args.cfg, seed=args.seed)
    report(rows, task.describe(), cmd.strip(), args.out)


if __name__ == "__main__":
    main()
