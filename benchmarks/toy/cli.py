"""Command line of the toy (``python -m benchmarks.toy``): parse, run every seed, write the results."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from noise_semantics import core  # pure torch: no ComfyUI needed

from . import __doc__ as DOC
from .experiment import run_seed
from .report import _json, markdown, markdown_seeds, plot

ROOT = Path(__file__).resolve().parents[2]


def main(argv=None):
    p = argparse.ArgumentParser(description=DOC, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small run for a test (< 30 s)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    p.add_argument("--no-eps", action="store_true", help="skip the eps-prediction model")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds", type=int, nargs="+", default=None,
                   help="robustness mode: run the whole experiment for each seed and write "
                        "toy_seeds.md/.json with mean and spread per condition (about 3 min per seed)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads; 1 is fastest for these tiny matrices on a shared machine")
    p.add_argument("--train-steps", type=int, default=None)
    p.add_argument("--cache", default=None, help="folder to keep/reuse trained weights (off by default)")
    p.add_argument("--cfg", type=float, default=2.0, help="classifier-free guidance scale")
    p.add_argument("--dim", type=int, default=2,
                   help="noise dimension; > 2 embeds the targets in the first two coordinates and "
                        "runs core.erase/core.inject unmodified (per-sample standardization)")
    p.add_argument("--bank", type=int, default=8, help="seeds per class that are overfit to it")
    p.add_argument("--jitter", type=float, default=0.1, help="neighbourhood of a seed (std)")
    p.add_argument("--p-coupled", type=float, default=0.5, help="share of coupled pairs per batch")
    p.add_argument("--p-leak", type=float, default=0.5,
                   help="share of coupled pairs shown under another class's label")
    p.add_argument("--p-drop", type=float, default=0.1, help="label dropout (CFG)")
    p.add_argument("--couple-tau", type=float, default=0.0,
                   help="coupled pairs are trained at tau in [couple_tau, 1] only (high noise)")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    a.panel_delta = 1.0
    a.erase_inject_n = 4
    if a.quick:
        steps, a.batch, a.n_eval, a.steps = 700, 512, 96, 12
        a.erase_n, a.deltas, a.ei_deltas = (4,), (1.0,), (1.0,)
        a.no_eps = True
    else:
        steps, a.batch, a.n_eval, a.steps = 2500, 512, 384, 24
        a.erase_n, a.deltas, a.ei_deltas = (2, 4, 8), (0.25, 0.5, 1.0, 2.0), (0.5, 1.0)
    a.train_steps = a.train_steps or steps
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    prefix = ("toy_quick" if a.quick else "toy") + (f"_d{a.dim}" if a.dim != 2 else "")
    t0 = time.time()

    def log(msg):
        print(f"[{time.time() - t0:6.1f}s] {msg}", flush=True)

    seeds = a.seeds or [a.seed]
    all_rows, first = [], None
    for seed in seeds:
        a.seed = seed
        rows, panels, timing, refs = run_seed(a, log)
        all_rows += rows
        if first is None:
            first = (rows, panels, timing, refs)
    rows, panels, timing, refs = first
    meta = dict(quick=a.quick, torch=torch.__version__, threads=a.threads, total_s=time.time() - t0,
                n_eval=a.n_eval, train_steps=a.train_steps, batch=a.batch, sampler_steps=a.steps,
                cfg=a.cfg, p_coupled=a.p_coupled, p_drop=a.p_drop, p_leak=a.p_leak, bank=a.bank,
                jitter=a.jitter, couple_tau=a.couple_tau, dim=a.dim, seed=seeds[0], seeds=seeds,
                schedule=dict(zip(("taus", "weights"), (core.TPW_SCHEDULE.taus, core.TPW_SCHEDULE.weights))),
                timing=timing)
    if len(seeds) > 1:
        prefix += "_seeds"
        md = markdown_seeds(all_rows, meta)
        (out / f"{prefix}.md").write_text(md + "\n")
        (out / f"{prefix}.json").write_text(_json(dict(meta=meta, rows=all_rows)))
        print(md)
        log(f"results: {out / (prefix + '.md')}, {out / (prefix + '.json')}")
        return all_rows, meta
    md = markdown(rows, meta)
    (out / f"{prefix}.md").write_text(md + "\n")
    (out / f"{prefix}.json").write_text(_json(dict(meta=meta, rows=rows)))
    plot(panels, refs, out / f"{prefix}.png", a.panel_delta)
    print(md)
    log(f"results: {out / (prefix + '.md')}, {out / (prefix + '.json')}, {out / (prefix + '.png')}")
    return rows, meta
