"""Does refining the initial noise make a real model follow its prompt better? Measured on the
two shipped digits models (demo/models.py: an SD1.5-class eps UNet and a FLUX-schnell-class flow
DiT, both trained on scikit-learn's 8x8 digits), through ComfyUI's real sampling code.

    .venv/bin/python benchmarks/digits_eval.py            # full run (~11 min, one busy CPU core)
    .venv/bin/python benchmarks/digits_eval.py --quick    # smoke run (~1 min)

Protocol
* N noises (KSampler seed --seed, a batch with ``batch_index`` 0..N-1 repeated for every digit,
  so all ten prompts start from exactly the same N noises) x 10 digit prompts, sampled by
  ``nodes.common_ksampler`` (what the KSampler node runs) with the pack's real node classes
  (NoiseSemanticErase / NoiseSemanticInject / NoiseSemanticTemporalSchedule, taken from
  ``nodes.NODE_CLASS_MAPPINGS`` after ComfyUI loaded the pack) patching the MODEL.
* Judge: a logistic regression trained only on the real digits (independent of the diffusion
  models), applied to the decoded 8x8 pixels.
* A noise's own class: what the model makes of that noise with the empty (null) prompt and no
  guidance, stock sampler. A (noise, prompt) pair "matches" when that class is the prompted digit.
* Metrics per configuration: prompt-class accuracy (all pairs; matched; mismatched),
  "follows noise" = share of mismatched pairs rendered as the noise's own class, mean judge
  probability of the prompted class, diversity = mean pairwise pixel distance among the N samples
  of a digit divided by the same figure for the real digits of that class (averaged over digits;
  collapse shows as a drop), fixed / broken = pairs that flip from wrong to right / right to wrong
  against stock (paired, same noise and prompt), the accuracy change against stock with a 95%
  paired bootstrap interval over noises, and cost = model evaluations per image
  (counted by a ``model_function_wrapper``; one evaluation = one latent through the network, so
  CFG costs two per step), split into the sampler's and the refinement's.
* Main comparison (stock, Erase, Inject, Erase + Inject at the nodes' live defaults) at cfg 0.5,
  1, 1.5, 3; stock alone at cfg 0.75, 1.25, 2 (what plain guidance buys); sweeps at cfg 0.5 and 1
  (Inject alone): strength, probes K, schedule shape, decorrelate; Erase samples n, restandardize.

Writes benchmarks/results/digits.md and digits.json (--quick: digits_quick.*).
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "demo"))

SAMPLER = {"eps": ("euler", "normal"), "flow": ("euler", "simple")}
MODEL_NAME = {"eps": "SD1.5-class UNet (eps, discrete sigmas)", "flow": "FLUX-schnell-class DiT (rectified flow)"}


class Counter:
    """model_function_wrapper that counts network evaluations (latents through apply_model)."""

    def __init__(self):
        self.calls = 0
        self.latents = 0

    def __call__(self, apply_model, args):
        self.calls += 1
        self.latents += int(args["input"].shape[0])
        return apply_model(args["input"], args["timestep"], **args["c"])

    def reset(self):
        self.calls = self.latents = 0

    def __deepcopy__(self, memo):
        return self  # ModelPatcher.clone deep-copies model_options: keep counting into this one


def diversity_reference(dm):
    """Mean within-class pairwise pixel distance of the real digits, per class."""
    import torch
    images, labels = dm.load_digits()
    return [float(torch.pdist(images[labels == c].reshape(-1, 64) / 16.0).mean()) for c in range(10)]


class Bench:
    def __init__(self, nodes, dm, kind, n_noises, steps, seed, defaults):
        import torch
        self.defaults = defaults
        self.nodes, self.dm, self.kind, self.N, self.steps, self.seed = nodes, dm, kind, n_noises, steps, seed
        self.patcher, self.emb = dm.load(kind)
        self.counter = Counter()
        self.patcher.set_model_unet_function_wrapper(self.counter)
        self.classes = [c for c in range(10) for _ in range(n_noises)]
        self.pos = dm.conditioning(self.emb, kind, self.classes)
        self.null = dm.conditioning(self.emb, kind, dm.NULL_CLASS)
        self.E = nodes.NODE_CLASS_MAPPINGS["NoiseSemanticErase"]
        self.I = nodes.NODE_CLASS_MAPPINGS["NoiseSemanticInject"]
        self.S = nodes.NODE_CLASS_MAPPINGS["NoiseSemanticTemporalSchedule"]
        self.torch = torch
        self.stock_ok = {}
        self.stock_evals = {}

    def sample(self, model, cfg, pos, batch_index):
        import torch
        n = len(batch_index)
        latent = {"samples": self.dm.empty_latent(self.kind, n), "batch_index": list(batch_index)}
        sampler, scheduler = SAMPLER[self.kind]
        self.counter.reset()
        t0 = time.perf_counter()
        out = self.nodes.common_ksampler(model, self.seed, self.steps, cfg, sampler, scheduler, pos, self.null,
                                         latent)[0]["samples"]
        return self.dm.decode(self.patcher, out), self.counter.latents / n, self.counter.calls, time.perf_counter() - t0

    def own_classes(self, clf):
        px, _, _, _ = self.sample(self.patcher, 1.0, self.null, range(self.N))
        pred, prob = self.dm.classify(clf, px)
        self.own = self.torch.as_tensor(pred)
        return self.own

    def patched(self, erase=None, inject=None, schedule=None, inject_opts=None, erase_opts=None):
        """The model through the pack's node classes, every input at its live default unless set."""
        m = self.patcher
        if erase:
            kw = self.defaults["NoiseSemanticErase"] | (erase_opts or {}) | {"model": m, "samples": erase}
            m = getattr(self.E(), self.E.FUNCTION)(**kw)[0]
        if inject:
            kw = self.defaults["NoiseSemanticInject"] | (inject_opts or {}) | {"model": m, "strength": inject}
            if schedule:
                kw["schedule"] = getattr(self.S(), self.S.FUNCTION)(
                    **(self.defaults["NoiseSemanticTemporalSchedule"] | schedule))[0]
            m = getattr(self.I(), self.I.FUNCTION)(**kw)[0]
        return m

    def run(self, clf, ref_div, cfg, erase=None, inject=None, schedule=None, inject_opts=None, erase_opts=None):
        torch = self.torch
        model = self.patched(erase, inject, schedule, inject_opts, erase_opts)
        px, evals, calls, wall = self.sample(model, cfg, self.pos, list(range(self.N)) * 10)
        pred, prob = self.dm.classify(clf, px)
        pred = torch.as_tensor(pred)
        prob = torch.as_tensor(prob)
        target = torch.as_tensor(self.classes)
        own = self.own.repeat(10)
        ok = pred == target
        match = own == target
        mism = ~match
        div = []
        for c in range(10):
            x = px[target == c].reshape(-1, 64) / 16.0
            div.append(float(torch.pdist(x).mean()) / ref_div[c])
        r = {
            "kind": self.kind, "cfg": cfg, "erase": erase or 1, "inject": inject or 0.0,
            "schedule": schedule, "inject_opts": inject_opts or {}, "erase_opts": erase_opts or {},
            "n": int(len(target)),
            "acc_per_digit": [float(ok[target == c].float().mean()) for c in range(10)],
            "acc": float(ok.float().mean()),
            "acc_match": float(ok[match].float().mean()) if match.any() else float("nan"),
            "acc_mismatch": float(ok[mism].float().mean()) if mism.any() else float("nan"),
            "n_match": int(match.sum()),
            "follows_noise": float((pred[mism] == own[mism]).float().mean()) if mism.any() else float("nan"),
            "p_prompt": float(prob[torch.arange(len(target)), target].mean()),
            "diversity": sum(div) / len(div),
            "evals_per_image": evals, "model_calls": calls, "wall_s": round(wall, 2),
        }
        key = cfg
        if erase is None and not inject:
            r["errors_per_noise"] = (~ok).reshape(10, self.N).sum(0).tolist()
            self.stock_ok[key] = ok
            self.stock_evals[key] = evals
        base = self.stock_ok.get(key)
        if base is not None:
            r["fixed"] = int((~base & ok).sum())
            r["broken"] = int((base & ~ok).sum())
            r["delta_acc"], r["delta_ci"] = paired_bootstrap(base, ok, self.N)
        return r


def paired_bootstrap(base, ok, n_noises, reps=2000, seed=0):
    """Accuracy difference against stock and its 95% interval, resampling whole noises (every
    noise is shared by the ten prompts and by stock, so noises, not images, are the units)."""
    import torch
    d = (ok.float() - base.float()).reshape(10, n_noises).mean(0)  # per noise, over the 10 digits
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, n_noises, (reps, n_noises), generator=g)
    boots = d[idx].mean(1).sort().values
    return float(d.mean()), (float(boots[int(0.025 * reps)]), float(boots[int(0.975 * reps) - 1]))


def fmt(x, d=3):
    if isinstance(x, float):
        return "-" if math.isnan(x) else f"{x:.{d}f}"
    return str(x)


def label(r):
    parts = []
    if r["erase"] > 1:
        opts = "".join(f", {k}={v}" for k, v in r.get("erase_opts", {}).items())
        parts.append(f"Erase n={r['erase']}{opts}")
    if r["inject"] > 0:
        s = r["schedule"]
        sdesc = "default schedule" if not s else (
            f"K={s['probes']} {s['weighting']}" + (f" c={s['center']}" if s["weighting"] == "bump" else "")
            + f" tau[{s['tau_min']},{s['tau_max']}]")
        opts = "".join(f", {k}={v}" for k, v in r.get("inject_opts", {}).items())
        parts.append(f"Inject d={r['inject']:g} ({sdesc}{opts})")
    return " + ".join(parts) or "stock"


HEAD = ("| config | acc | vs stock [95% CI] | acc, noise matches | acc, noise differs | follows noise | p(prompt) "
        "| diversity | fixed / broken | evals/image (refine) | s |")
SEP = "|---|---|---|---|---|---|---|---|---|---|---|"


def row(r, stock_evals):
    extra = r["evals_per_image"] - stock_evals
    refined = "fixed" in r and (r["erase"] > 1 or r["inject"] > 0)
    fb = f"{r['fixed']} / {r['broken']}" if refined else "-"
    dv = (f"{r['delta_acc']:+.3f} [{r['delta_ci'][0]:+.3f}, {r['delta_ci'][1]:+.3f}]" if refined else "-")
    return (f"| {label(r)} | {fmt(r['acc'])} | {dv} | {fmt(r['acc_match'])} (n={r['n_match']}) | "
            f"{fmt(r['acc_mismatch'])} | {fmt(r['follows_noise'])} | {fmt(r['p_prompt'])} | {fmt(r['diversity'])} | "
            f"{fb} | {r['evals_per_image']:.1f} (+{extra:.1f}) | {r['wall_s']:.0f} |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="few noises, few configs: a smoke run under 2 minutes")
    ap.add_argument("--kinds", nargs="+", choices=["eps", "flow"], default=["eps", "flow"])
    ap.add_argument("--noises", type=int, help="noises per digit (default 40, quick 20)")
    ap.add_argument("--steps", type=int, help="sampler steps (default 20, quick 10)")
    ap.add_argument("--cfgs", type=float, nargs="+",
                    help="cfg values of the main comparison (default 0.5 1 1.5 3; quick 0.5)")
    ap.add_argument("--sweep-cfgs", type=float, nargs="+",
                    help="cfg values of the sweeps (default 0.5 1: weakened prompt and no guidance, where these "
                         "models still miss; quick 0.5)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads; 1 is much faster than 2 on a busy shared machine")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args(argv)
    cmdline = " ".join(["benchmarks/digits_eval.py"] + list(argv if argv is not None else sys.argv[1:]))
    N = args.noises or (20 if args.quick else 40)
    steps = args.steps or (10 if args.quick else 20)
    cfgs = args.cfgs or ([0.5] if args.quick else [0.5, 1.0, 1.5, 3.0])
    sweep_cfgs = args.sweep_cfgs or ([0.5] if args.quick else [0.5, 1.0])
    frontier = [] if args.quick else [0.75, 1.25, 2.0]
    t_start = time.perf_counter()

    import host
    nodes = host.boot()
    import torch
    torch.set_num_threads(args.threads)
    import comfy.utils
    comfy.utils.PROGRESS_BAR_ENABLED = False
    import demo_nodes
    dm = demo_nodes.demo_models()
    clf, held = dm.train_classifier()
    ref_div = diversity_reference(dm)

    defaults = {nid: {k: v[1]["default"] for sec in ("required", "optional")
                      for k, v in nodes.NODE_CLASS_MAPPINGS[nid].INPUT_TYPES().get(sec, {}).items()
                      if len(v) > 1 and isinstance(v[1], dict) and "default" in v[1]}
                for nid in ("NoiseSemanticErase", "NoiseSemanticInject", "NoiseSemanticTemporalSchedule")}
    d_n = defaults["NoiseSemanticErase"]["samples"]
    d_s = defaults["NoiseSemanticInject"]["strength"]
    d_sched = defaults["NoiseSemanticTemporalSchedule"]

    def sched(**kw):
        return dict(d_sched, **kw)

    if args.quick:
        strengths, Ks, shapes, erase_ns = [d_s, 1.0], [1, d_sched["probes"]], [sched(weighting="uniform")], []
        no_decor = [1.0]
    else:
        strengths = [0.1, 0.3, 0.6, 1.0, 2.0]
        Ks = [1, 3, 5, 9]
        shapes = [sched(weighting="uniform"), sched(center=0.95), sched(center=0.6),
                  sched(tau_min=0.2, center=0.5, half_width=0.6)]
        erase_ns = [2, 8]
        no_decor = [d_s, 1.0]

    results = {"meta": {"noises": N, "steps": steps, "cfgs": cfgs, "sweep_cfgs": sweep_cfgs, "frontier_cfgs": frontier, "seed": args.seed,
                        "judge_heldout_acc": held, "node_defaults": defaults, "torch": torch.__version__,
                        "threads": torch.get_num_threads(), "machine": platform.machine(),
                        "quick": args.quick}, "models": {}}
    md = ["# Digits benchmark: noise-semantics refinement on two real (tiny) models", "",
          f"{N} noises x 10 digit prompts per configuration (the same noises for every digit and every "
          f"configuration), {steps} euler steps, KSampler seed {args.seed}. Judge: logistic regression on the "
          f"real 8x8 digits, held-out accuracy {held:.3f}. Node defaults at run time: Erase samples={d_n}, "
          f"Inject strength={d_s}, schedule {json.dumps(d_sched)}.", "",
          "Columns: acc = judge reads the prompted digit; vs stock = accuracy difference against stock at the "
          "same cfg, 95% interval from a paired bootstrap over noises (the noises, shared by all prompts, "
          "are the sampling unit); 'noise matches/differs' split the pairs by the "
          "noise's own class (empty prompt, no guidance); follows noise = mismatched pairs rendered as the "
          "noise's own class; diversity = within-digit spread / real digits' spread (1 = as varied as the "
          "data; collapse shows as a drop); fixed / broken = pairs wrong->right / right->wrong against "
          "stock at the same cfg; evals/image = network evaluations per image (+ = the refinement's share).", ""]
    for kind in args.kinds:
        b = Bench(nodes, dm, kind, N, steps, args.seed, defaults)
        own = b.own_classes(clf)
        counts = torch.bincount(own, minlength=10).tolist()
        info = b.patcher.model.digits_info
        md += [f"## {kind}: {MODEL_NAME[kind]}, {dm.count_params(b.patcher.model):,} parameters", "",
               f"Noises' own classes (empty prompt), counts per digit 0..9: {counts}.", ""]
        print(f"== {kind}: own classes {counts}", flush=True)
        allr = []
        md += ["### Stock vs Erase vs Inject vs Erase+Inject (node defaults)", "", HEAD, SEP]
        for cfg in cfgs:
            md.append(f"| **cfg {cfg:g}** | | | | | | | | | | |")
            for e, i in ((None, None), (d_n, None), (None, d_s), (d_n, d_s)):
                r = b.run(clf, ref_div, cfg, erase=e, inject=i)
                r["group"] = "main"
                allr.append(r)
                md.append(row(r, b.stock_evals[r['cfg']]))
                print(md[-1], flush=True)
        conc = []
        for r in allr:
            if r["group"] == "main" and "errors_per_noise" in r and sum(r["errors_per_noise"]):
                e = sorted(r["errors_per_noise"], reverse=True)
                k = sum(1 for x in e if x)
                conc.append(f"cfg {r['cfg']:g}: {sum(e)} misses on {k} of {N} noises, the worst noises miss "
                            f"{', '.join(str(x) for x in e[:5])} of the 10 digits")
        if conc:
            md += ["", "Where stock misses (per noise, over the 10 digits): " + "; ".join(conc) + "."]
        # stock at more cfg values: the baseline's own accuracy / diversity / cost frontier
        extra_cfgs = [c for c in frontier if c not in cfgs]
        if extra_cfgs:
            md += ["", "### Stock at other cfg values (what plain guidance buys, for comparison)", "", HEAD, SEP]
            for cfg in extra_cfgs:
                r = b.run(clf, ref_div, cfg)
                r["group"] = "cfg"
                allr.append(r)
                md.append(row(r, b.stock_evals[r["cfg"]]).replace("| stock |", f"| stock, cfg {cfg:g} |"))
                print(md[-1], flush=True)
        sweeps = ([("strength", dict(inject=s)) for s in strengths]
                  + [("probes", dict(inject=d_s, schedule=sched(probes=k))) for k in Ks]
                  + [("schedule", dict(inject=d_s, schedule=s)) for s in shapes]
                  + [("decorrelate", dict(inject=st, inject_opts={"decorrelate": False})) for st in no_decor
                     if "decorrelate" in defaults["NoiseSemanticInject"]]
                  + [("erase", dict(erase=n)) for n in erase_ns]
                  + ([("erase", dict(erase=d_n, erase_opts={"restandardize": False}))] if erase_ns else []))
        for sc in sweep_cfgs:
            if sc not in b.stock_ok:
                b.run(clf, ref_div, sc)  # stock at the sweep cfg, for the paired comparison
            md += ["", f"### Sweeps at cfg {sc:g} (Inject alone unless noted; other settings at the node defaults)",
                   "", HEAD, SEP]
            for group, kw in sweeps:
                r = b.run(clf, ref_div, sc, **kw)
                r["group"] = group
                allr.append(r)
                md.append(row(r, b.stock_evals[r["cfg"]]))
                print(md[-1], flush=True)
        md.append("")
        results["models"][kind] = {"params": dm.count_params(b.patcher.model), "train_info": info,
                                   "own_class_counts": counts, "stock_evals_per_image": {str(k): v for k, v in b.stock_evals.items()},
                                   "runs": allr}
    total = time.perf_counter() - t_start
    results["meta"]["wall_s"] = round(total, 1)
    md += [f"Total wall time {total:.0f} s on {torch.get_num_threads()} CPU threads "
           f"(`{cmdline}`)."]
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "digits_quick" if args.quick else "digits"
    (args.out / f"{stem}.md").write_text("\n".join(md) + "\n")
    (args.out / f"{stem}.json").write_text(json.dumps(results, indent=1, default=float))
    print("\n".join(md))
    print(f"wrote {args.out / (stem + '.md')} and .json in {total:.0f} s")


if __name__ == "__main__":
    main()
