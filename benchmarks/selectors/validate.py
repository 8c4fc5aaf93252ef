"""End-to-end check of screening settings through the real nodes and KSampler (the frontier
benchmark's Runner: Temporal Weight Schedule -> Noise Semantic Inject -> common_ksampler), at the usual
cfg, against stock at the same cfg on the same prompts and noises. The pack's own candidates are new
noises (derived seeds), not the stored ones, so this is not the offline study again.

    .venv/bin/python -m benchmarks.selectors.validate --tasks compositional --kinds eps
Writes benchmarks/results/selectors_validate_<task>_<kind>.json (merged into selectors.md by --merge)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
SETTINGS = [(2, 0.9), (4, 0.9), (4, 0.6)]   # (candidates, probe tau)


def delta_ci(ok, stock, rows, boot=2000, seed=0):
    import torch
    d = (ok[rows].float() - stock[rows].float()).mean(1)       # per prompt, paired on the own noise
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, len(d), (boot, len(d)), generator=g)
    bs = d[idx].mean(1)
    return float(d.mean()), [float(bs.quantile(0.025)), float(bs.quantile(0.975))]


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", nargs="+", default=["compositional", "digits"])
    ap.add_argument("--kinds", nargs="+", default=["eps", "flow"])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT / "tests"))
    import host
    nodes = host.boot()
    import torch
    torch.set_num_threads(1)
    import comfy.utils
    comfy.utils.PROGRESS_BAR_ENABLED = False
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from frontier.experiment import Config, Runner, sched
    from frontier.tasks import get_task
    from .run import USUAL, frontier_setup
    for tname in args.tasks:
        task = get_task(tname)
        prompts, splits, N, steps = frontier_setup(task, tname, args.quick)
        for kind in args.kinds:
            runner = Runner(nodes, task, kind, N, steps, 7, prompts, splits)
            cfg = USUAL[tname]
            stock = runner.run(Config(cfg))
            out = {"task": tname, "kind": kind, "cfg": cfg, "stock": {s: float(stock.ok["all"][r].float().mean())
                                                                      for s, r in splits.items()}, "rows": []}
            for m, tau in SETTINGS:
                r = runner.run(Config(cfg, candidates=m, schedule=sched(probes=1, tau_min=tau, tau_max=tau)))
                row = {"candidates": m, "tau": tau, "evals": r.evals, "stock_evals": stock.evals}
                for s, rows in splits.items():
                    d, ci = delta_ci(r.ok["all"], stock.ok["all"], rows)
                    row[s] = {"acc": float(r.ok["all"][rows].float().mean()), "delta": d, "delta_ci": ci}
                out["rows"].append(row)
                print(f"[{tname}/{kind} cfg {cfg:g}] screen m={m} tau {tau:g}: {row}", flush=True)
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / f"selectors_validate{'_quick' if args.quick else ''}_{tname}_{kind}.json").write_text(
                json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
