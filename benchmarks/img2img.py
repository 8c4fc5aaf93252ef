"""Img2img and inpainting: should Inject's probes see the sampler's input?

    .venv/bin/python -m benchmarks.img2img            # full run (~15 min on 2 shared CPU cores), writes results/img2img.{md,json}
    .venv/bin/python -m benchmarks.img2img --quick    # smoke run (seconds), writes img2img_quick.*

Data: real 8x8 digits (scikit-learn's set, the digits demo models' training data), a fixed set of
``--inputs`` per run, balanced over the 10 classes, each encoded to a LATENT the way the demo
models define it. Models: the shipped digits demo models (eps UNet, flow DiT). Sampling: ComfyUI's
real ``nodes.common_ksampler`` (what KSampler runs), euler, ``--steps`` steps, one seed, each input
with its own noise (``batch_index``), the same noises for every configuration (paired). Judge: the
demo's logistic regression on real digits.

Three scenarios, each at cfg 1 and 3:
* **edit**: img2img with the prompt = another class. followed = the judge reads the prompted class.
  Stock's knob is denoise: its sweep is the frontier of followed against distance to the input.
* **keep**: img2img with the prompt = the input's class: class kept, distance (do no harm).
* **inpaint**: the right half masked (SetLatentNoiseMask's ``noise_mask``), prompt = the input's
  class: class kept, distance on the masked half; stock swept over denoise as well.
distance = mean absolute pixel difference to the input, pixels in [0, 1].

Methods: the paper's Inject (strength 0.3, the Temporal Weight Schedule node at its defaults: five
probes over tau [0.5, 1]), Inject 0.3 from Inject's own one-probe schedule (tau 0.6), and screening
(candidates 4, one probe), each with the probes seeing the noise alone (``noise``, the node's) and
seeing what the sampler sees (``sampler``: the input noised to the probe's sigma, the kept half; the
pack's ``probe_input`` setting, set on the Inject node's output, since it is not a node input)."""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
REPS = 1000


# --------------------------------------------------------------------------- plan

METHODS = {  # name -> Inject inputs (schedule: "tpw" = a Temporal Weight Schedule node at its defaults)
    "inject 0.3 (5 probes)": {"strength": 0.3, "schedule": "tpw"},
    "inject 0.3 (1 probe)": {"strength": 0.3},
    "screen m=4 (1 probe)": {"strength": 0.0, "candidates": 4},
}
PROBE_INPUTS = ("noise", "sampler")


def plan(quick: bool) -> dict:
    if quick:
        return {"cfgs": [3.0], "edit": {"stock": [0.4, 0.6], "methods": [0.6]},
                "keep": {"stock": [0.4], "methods": [0.4]}, "inpaint": {"stock": [1.0], "methods": [1.0]},
                "methods": ["inject 0.3 (1 probe)", "screen m=4 (1 probe)"]}
    return {"cfgs": [1.0, 3.0], "edit": {"stock": [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8], "methods": [0.3, 0.4, 0.6]},
            "keep": {"stock": [0.3, 0.4, 0.6], "methods": [0.4, 0.6]},
            "inpaint": {"stock": [0.6, 0.8, 1.0], "methods": [1.0]}, "methods": list(METHODS)}


# --------------------------------------------------------------------------- data

def pick_inputs(dm, n: int, seed: int):
    """n real digits, n/10 per class (drawn at random, fixed by seed), and an edit target per input
    (another class, uniformly)."""
    import torch
    images, labels = dm.load_digits()
    rng = np.random.default_rng(seed)
    per = max(1, n // 10)
    idx = np.concatenate([rng.choice(np.flatnonzero(labels.numpy() == c), per, replace=False) for c in range(10)])
    lab = labels[idx]
    target = (lab + torch.as_tensor(rng.integers(1, 10, len(idx)))) % 10
    return images[idx], lab, target, idx


# --------------------------------------------------------------------------- experiment

class Bench:
    def __init__(self, nodes, task, kind: str, images, labels, targets, steps: int, seed: int):
        from benchmarks.frontier.experiment import EvalCounter, node_defaults
        self.nodes, self.task, self.kind, self.steps, self.seed = nodes, task, kind, steps, seed
        self.base = task.load(kind)
        self.counter = EvalCounter()
        self.base.set_model_unet_function_wrapper(self.counter)
        m = self.base.model
        model_space = task.dm.encode(images, kind, m.digits_stats)
        self.latent = m.process_latent_out(model_space)  # a LATENT as VAEEncode would give it
        self.pixels = images / 16.0
        self.labels, self.targets = labels, targets
        self.N = len(images)
        self.neg = task.null_conditioning(kind, 1)
        self.defaults = {nid: node_defaults(nodes, nid) for nid in ("NoiseSemanticInject",
                                                                   "NoiseSemanticTemporalSchedule")}
        side = self.latent.shape[-1]
        mask = torch_zeros((self.N, 1, side, side))
        mask[..., side // 2:] = 1.0  # regenerate the right half
        self.mask = mask
        self.half = (slice(None), slice(None), slice(4, 8))  # the masked pixels

    def model_for(self, method: str | None, probe_input: str):
        from benchmarks.frontier.experiment import apply_node
        if method is None:
            return self.base
        spec = dict(METHODS[method])
        # Every sampler here starts below sigma_max (denoise < 1): the node's default would skip them.
        kw = self.defaults["NoiseSemanticInject"] | {"model": self.base, "apply_to": "every sampler"}
        if spec.pop("schedule", None) == "tpw":
            kw["schedule"] = apply_node(self.nodes, "NoiseSemanticTemporalSchedule",
                                        **self.defaults["NoiseSemanticTemporalSchedule"])
        else:
            kw.pop("schedule", None)  # unconnected: Inject's own one-probe schedule
        m = apply_node(self.nodes, "NoiseSemanticInject", **(kw | spec))
        if probe_input != "noise":
            # Not a node input (this benchmark is why): the pack's own setting, on the node's output.
            patch = self.pack_module("patch")
            m = patch.patched(m, "inject", patch.settings_of(m.model_options)["inject"] | {"probe_input": probe_input})
        return m

    def pack_module(self, name: str):
        """A module of the pack as ComfyUI loaded it (from its custom_nodes folder)."""
        import importlib
        pkg = self.nodes.NODE_CLASS_MAPPINGS["NoiseSemanticInject"].__module__.rsplit(".", 1)[0]
        return importlib.import_module(f"{pkg}.{name}")

    def run(self, scenario: str, cfg: float, denoise: float, method: str | None, probe_input: str = "noise"):
        import torch
        prompts = self.targets if scenario == "edit" else self.labels
        pos = self.task.conditioning(self.kind, prompts.tolist())
        latent = {"samples": self.latent.clone(), "batch_index": list(range(self.N))}
        if scenario == "inpaint":
            latent["noise_mask"] = self.mask.clone()
        sampler, scheduler = self.task.sampler[self.kind]
        self.counter.latents = 0
        t0 = time.perf_counter()
        out = self.nodes.common_ksampler(self.model_for(method, probe_input), self.seed, self.steps, cfg, sampler,
                                         scheduler, pos, self.neg, latent, denoise=denoise)[0]["samples"]
        wall = time.perf_counter() - t0
        px = self.task.decode(self.kind, out)[:, 0]  # [N, 8, 8] in [0, 1]
        diff = (px - self.pixels).abs()
        dist = (diff[self.half[0], self.half[1], self.half[2]] if scenario == "inpaint" else diff).flatten(1).mean(1)
        pred = torch.as_tensor(self.task.dm.classify(self.task.clf, px * 16.0)[0])
        return {"scenario": scenario, "cfg": cfg, "denoise": denoise, "method": method or "stock",
                "probe_input": probe_input if method else None,
                "hit": (pred == prompts).int().tolist(), "dist": [round(float(d), 5) for d in dist],
                "evals": self.counter.latents / self.N, "wall_s": round(wall, 2)}


def torch_zeros(shape):
    import torch
    return torch.zeros(shape)


# --------------------------------------------------------------------------- analysis

def _arr(r):
    return np.asarray(r["hit"], dtype=float), np.asarray(r["dist"], dtype=float)


def _ci(x):
    lo, hi = np.percentile(x, [2.5, 97.5])
    return [float(lo), float(hi)]


def analyse(runs: list, N: int, seed: int = 0) -> list:
    """Every method run against stock: at the same denoise (paired differences in hit rate and
    distance), and for edits against stock's denoise curve at the method's own distance (frontier
    gap: hit rate minus stock's, interpolated; > 0 = more edits followed than stock buys with its
    denoise knob at that fidelity). 95 % paired bootstrap over inputs. Also sampler minus noise."""
    idx = np.random.default_rng(seed).integers(0, N, size=(REPS, N))
    out, gaps = [], {}
    key = lambda r: (r["scenario"], r["cfg"])
    for r in runs:
        if r["method"] == "stock":
            continue
        stock = sorted([s for s in runs if s["method"] == "stock" and key(s) == key(r)], key=lambda s: s["denoise"])
        h, d = _arr(r)
        row = {"scenario": r["scenario"], "cfg": r["cfg"], "denoise": r["denoise"], "method": r["method"],
               "probe_input": r["probe_input"], "hit": float(h.mean()), "dist": float(d.mean()), "evals": r["evals"]}
        same = [s for s in stock if s["denoise"] == r["denoise"]]
        if same:
            sh, sd = _arr(same[0])
            dh, dd = (h - sh)[idx].mean(1), (d - sd)[idx].mean(1)
            row["vs_stock"] = {"hit": float((h - sh).mean()), "hit_ci": _ci(dh), "dist": float((d - sd).mean()),
                               "dist_ci": _ci(dd), "fixed": int(((h == 1) & (sh == 0)).sum()),
                               "broken": int(((h == 0) & (sh == 1)).sum())}
        if r["scenario"] == "edit" and len(stock) > 1:
            sh = np.stack([_arr(s)[0] for s in stock])  # [C, N]
            sd = np.stack([_arr(s)[1] for s in stock])

            def gap(rows):
                cd, ch = sd[:, rows].mean(1), sh[:, rows].mean(1)
                o = np.argsort(cd)
                return h[rows].mean() - np.interp(d[rows].mean(), cd[o], ch[o])
            g = np.array([gap(i) for i in idx])
            gaps[(key(r), r["denoise"], r["method"], r["probe_input"])] = g
            full = sd.mean(1)
            flag = "" if full.min() <= d.mean() <= full.max() else "outside stock's distance range (clamped)"
            row["frontier"] = {"gap": float(gap(np.arange(N))), "ci": _ci(g), "flag": flag}
        twin = [t for t in runs if t["method"] == r["method"] and key(t) == key(r) and t["denoise"] == r["denoise"]
                and t["probe_input"] == "noise"]
        if r["probe_input"] == "sampler" and twin:
            th, td = _arr(twin[0])
            row["vs_noise"] = {"hit": float((h - th).mean()), "hit_ci": _ci((h - th)[idx].mean(1)),
                               "dist": float((d - td).mean()), "dist_ci": _ci((d - td)[idx].mean(1))}
            tw = (key(r), r["denoise"], r["method"], "noise")
            if tw in gaps:  # the two frontier gaps on the same resampled inputs
                gd = gaps[(key(r), r["denoise"], r["method"], "sampler")] - gaps[tw]
                row["vs_noise"]["gap"] = float(row["frontier"]["gap"] - [a for a in out if a["scenario"] == r[
                    "scenario"] and a["cfg"] == r["cfg"] and a["denoise"] == r["denoise"] and a["method"] == r[
                    "method"] and a["probe_input"] == "noise"][0]["frontier"]["gap"])
                row["vs_noise"]["gap_ci"] = _ci(gd)
        out.append(row)
    return out


# --------------------------------------------------------------------------- report

def _d(x, k):
    return f"{x[k]:+.3f} [{x[k + '_ci'][0]:+.3f}, {x[k + '_ci'][1]:+.3f}]"


def markdown(res: dict) -> str:
    meta = res["meta"]
    md = ["# Img2img and inpainting: pure-noise probes against input-aware probes", "",
          f"`{meta['command']}`: {meta['inputs']} real digits ({meta['inputs'] // 10} per class), {meta['steps']} "
          f"euler steps, KSampler seed {meta['seed']} (each input its own noise, the same for every configuration); "
          f"ComfyUI {meta['comfyui']}, torch {meta['torch']}; wall {meta['wall_s']:.0f} s. Judge: the demo's logistic "
          f"regression on real digits (held-out accuracy {meta['judge_acc']:.3f}).", "",
          "Reading: **hit** = edit: the judge reads the prompted (other) class; keep / inpaint: the input's class is "
          "kept. **dist** = mean |pixel - input pixel| (pixels in [0, 1]; inpaint: the masked right half only). "
          "**vs stock** = minus stock at the same denoise, 95 % paired bootstrap over inputs (fixed / broken: "
          "inputs the method turned to a hit / a miss). **frontier gap** (edits) = hit minus stock's hit interpolated "
          "on its denoise curve at the method's distance: > 0 is a trade of fidelity for prompt-following that stock's "
          "denoise knob cannot buy. **sampler - noise** = the input-aware probes minus the pure-noise probes, same "
          "method and denoise. **evals** = network evaluations per image.", ""]
    md += summary(res)
    for kind, k in res["kinds"].items():
        for scen in ("edit", "keep", "inpaint"):
            for cfg in meta["cfgs"]:
                stock = [r for r in k["runs"] if r["method"] == "stock" and r["scenario"] == scen and r["cfg"] == cfg]
                rows = [a for a in k["analysis"] if a["scenario"] == scen and a["cfg"] == cfg]
                if not stock:
                    continue
                md += [f"## {kind} model, {scen}, cfg {cfg:g}", "", "Stock over denoise: " + ", ".join(
                    f"{r['denoise']:g}: hit {np.mean(r['hit']):.3f} dist {np.mean(r['dist']):.3f}" for r in stock), ""]
                cols = ["denoise", "method", "probes see", "hit", "dist", "hit vs stock", "dist vs stock",
                        "fixed/broken"]
                if scen == "edit":
                    cols.append("frontier gap")
                cols += ["sampler - noise: hit", "sampler - noise: dist"]
                if scen == "edit":
                    cols.append("sampler - noise: gap")
                cols.append("evals")
                md += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
                for a in rows:
                    v = a.get("vs_stock")
                    cells = [f"{a['denoise']:g}", a["method"], a["probe_input"], f"{a['hit']:.3f}", f"{a['dist']:.3f}",
                             _d(v, "hit") if v else "", _d(v, "dist") if v else "",
                             f"{v['fixed']}/{v['broken']}" if v else ""]
                    if scen == "edit":
                        f = a.get("frontier")
                        cells.append(f"{f['gap']:+.3f} [{f['ci'][0]:+.3f}, {f['ci'][1]:+.3f}]"
                                     + (" *" if f["flag"] else "") if f else "")
                    vn = a.get("vs_noise")
                    cells += [_d(vn, "hit") if vn else "", _d(vn, "dist") if vn else ""]
                    if scen == "edit":
                        cells.append(_d(vn, "gap") if vn and "gap" in vn else "")
                    cells.append(f"{a['evals']:.0f}")
                    md.append("| " + " | ".join(cells) + " |")
                md.append("")
    md += ["`*` = the method's distance lies outside stock's swept range: the gap is against the nearest end of "
           "the curve.", ""]
    return "\n".join(md)


def _sign(ci):
    return "above" if ci[0] > 0 else "below" if ci[1] < 0 else "within"


def summary(res: dict) -> list:
    """Counts over every (cfg, denoise, method) per model and probe input: edits against stock's
    frontier (saturated = every edit followed by both, no curve to beat) and sampler against noise;
    keeps and inpainting, distance against stock at the same denoise and images fixed / broken."""
    md = ["## Summary", "", "| model | method | probes see | edits vs stock's frontier: above / below / within "
          "(saturated) | edits, sampler vs noise on the frontier: ahead / behind / within | keep: dist vs stock, "
          "fixed / broken | inpaint: dist vs stock, fixed / broken |", "|---|---|---|---|---|---|---|"]
    families = (("inject 0.3 (1 or 5 probes)", "inject"), ("screen m=4", "screen"))
    for kind, k in res["kinds"].items():
        for (fam, prefix), pi in ((f, pi) for f in families for pi in PROBE_INPUTS):
            rows = [a for a in k["analysis"] if a["probe_input"] == pi and a["method"].startswith(prefix)]
            if not rows:
                continue
            ed = [a for a in rows if a["scenario"] == "edit"]
            sat = [a for a in ed if a["frontier"]["ci"] == [0.0, 0.0]]
            c = {s: sum(_sign(a["frontier"]["ci"]) == s for a in ed if a not in sat) for s in ("above", "below", "within")}
            cells = [kind, fam, pi, f"{c['above']} / {c['below']} / {c['within']} ({len(sat)})"]
            if pi == "sampler":
                g = [a["vs_noise"]["gap_ci"] for a in ed if a not in sat]
                cells.append(" / ".join(str(sum(_sign(x) == s for x in g)) for s in ("above", "below", "within")))
            else:
                cells.append("")
            for scen in ("keep", "inpaint"):
                v = [a["vs_stock"] for a in rows if a["scenario"] == scen]
                cells.append(f"{min(x['dist'] for x in v):+.3f} .. {max(x['dist'] for x in v):+.3f}, "
                             f"{sum(x['fixed'] for x in v)} / {sum(x['broken'] for x in v)}")
            md.append("| " + " | ".join(cells) + " |")
    return md + ["", "Per setting, below: every number with its interval.", ""]


# --------------------------------------------------------------------------- main

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--inputs", type=int, help="real digits per run (default 120; quick 10)")
    ap.add_argument("--steps", type=int, help="euler steps (default 20; quick 6)")
    ap.add_argument("--kinds", nargs="+", default=["eps", "flow"])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--reanalyse", action="store_true", help="rebuild the report from the saved JSON (no sampling)")
    args = ap.parse_args(argv)
    stem = "img2img_quick" if args.quick else "img2img"
    if args.reanalyse:
        res = json.loads((args.out / f"{stem}.json").read_text())
        for k in res["kinds"].values():
            k["analysis"] = analyse(k["runs"], res["meta"]["inputs"])
        _write(args.out, stem, res)
        return res
    inputs = args.inputs or (10 if args.quick else 120)
    steps = args.steps or (6 if args.quick else 20)
    command = "python -m benchmarks.img2img " + " ".join(argv if argv is not None else sys.argv[1:])
    sys.path.insert(0, str(ROOT / "tests"))
    import host
    nodes = host.boot()
    import torch
    torch.set_num_threads(1)
    import comfy.utils
    comfy.utils.PROGRESS_BAR_ENABLED = False
    import comfyui_version
    from benchmarks.frontier.tasks import DigitsTask

    p = plan(args.quick)
    task = DigitsTask()
    images, labels, targets, idx = pick_inputs(task.dm, inputs, args.seed)
    t0 = time.perf_counter()
    res = {"meta": {"command": command, "inputs": len(images), "steps": steps, "seed": args.seed, "cfgs": p["cfgs"],
                    "plan": p, "input_index": idx.tolist(), "judge_acc": task.judge_acc, "torch": torch.__version__,
                    "comfyui": comfyui_version.__version__, "machine": platform.machine()},
           "kinds": {}}
    for kind in args.kinds:
        b = Bench(nodes, task, kind, images, labels, targets, steps, args.seed)
        runs = []
        for cfg in p["cfgs"]:
            for scen in ("edit", "keep", "inpaint"):
                for dn in p[scen]["stock"]:
                    runs.append(b.run(scen, cfg, dn, None))
                    _log(kind, runs[-1])
                for dn in p[scen]["methods"]:
                    for meth in p["methods"]:
                        for pi in PROBE_INPUTS:
                            runs.append(b.run(scen, cfg, dn, meth, pi))
                            _log(kind, runs[-1])
        res["kinds"][kind] = {"runs": runs, "analysis": analyse(runs, len(images))}
    res["meta"]["wall_s"] = time.perf_counter() - t0
    _write(args.out, stem, res)
    return res


def _log(kind, r):
    print(f"[{kind}] {r['scenario']} cfg {r['cfg']:g} denoise {r['denoise']:g} {r['method']} "
          f"{r['probe_input'] or ''}: hit {np.mean(r['hit']):.3f} dist {np.mean(r['dist']):.4f} "
          f"({r['wall_s']:.1f} s)", flush=True)


def _write(out: Path, stem: str, res: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(res, indent=1))
    (out / f"{stem}.md").write_text(markdown(res))


if __name__ == "__main__":
    main()
