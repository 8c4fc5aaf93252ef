"""The paper's "shortened trajectory" (issue 15 item 3): accuracy against total network evaluations
per image, over the number of sampler steps, for stock and for each method at one cfg.

Stock's frontier in evaluations is its best accuracy for a budget: over its step counts sorted by
evaluations, the running maximum (a user can always run fewer steps, and on some models fewer steps
are more accurate), linearly interpolated between step counts. A method at s steps is compared with
(a) stock at the same s steps (what the method adds, at its extra cost), (b) that frontier at the
method's evaluations (a gain there is a speed gain: no stock step count reaches that accuracy for
that many evaluations; the verdict reads this one), and (c) stock's best step count among those that
cost no more than the method (a setting a user can run instead). Intervals: the two-way paired bootstrap
of ``headroom`` (prompts and noises resampled, the same indices for every configuration)."""
from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from . import headroom as hr


def base_method(config) -> str:
    return dataclasses.replace(config, steps=0).method()


def _acc_reps(ok: np.ndarray, idx) -> np.ndarray:
    return hr._resample(ok, idx).mean((1, 2))


def analyse(runs, attr: str = "all", reps: int = 1000) -> dict:
    oks = [hr._np(r.ok[attr]) for r in runs]
    P, N = oks[0].shape
    idx = hr.boot_idx(P, N, reps)
    stock = sorted([(r, ok) for r, ok in zip(runs, oks) if not r.config.refined], key=lambda x: x[0].evals)
    s_evals = np.array([r.evals for r, _ in stock])
    # stock's frontier: running maximum over evaluations, per bootstrap replicate too
    s_reps = np.maximum.accumulate(np.stack([_acc_reps(ok, idx) for _, ok in stock], 1), axis=1)  # [R, S]
    s_acc = np.maximum.accumulate(np.array([ok.mean() for _, ok in stock]))
    raw = np.array([ok.mean() for _, ok in stock])
    by_steps = {r.config.steps: ok for r, ok in stock}

    def interp(e, accs):
        return np.array([np.interp(e, s_evals, a) for a in np.atleast_2d(accs)])

    out = {"stock": [{"steps": r.config.steps, "evals": r.evals, "acc": float(ok.mean()),
                      "headroom": hr.headroom(ok)} for r, ok in stock], "points": []}
    for r, ok in zip(runs, oks):
        if not r.config.refined:
            continue
        a = _acc_reps(ok, idx)
        p = {"label": r.config.label(), "method": base_method(r.config), "steps": r.config.steps,
             "evals": r.evals, "acc": float(ok.mean())}
        if r.config.steps in by_steps:
            p["same_steps"] = hr.capture(ok, by_steps[r.config.steps], hr.method_m(r.config), idx)
        flag = ("more evaluations than any stock point" if r.evals > s_evals[-1] else
                "fewer evaluations than any stock point" if r.evals < s_evals[0] else "")
        at = float(interp(r.evals, s_acc)[0])
        d = a - interp(r.evals, s_reps)
        p["equal_evals"] = {"stock_at": at, "delta": float(ok.mean()) - at, "ci": hr._pct(d), "flag": flag}
        cheaper = [i for i, e in enumerate(s_evals) if e <= r.evals]
        if cheaper:
            j = cheaper[-1]
            i = max(cheaper, key=lambda i: raw[i])
            p["best_cheaper"] = {"steps": stock[i][0].config.steps, "evals": float(s_evals[i]),
                                 "delta": float(ok.mean() - s_acc[j]), "ci": hr._pct(a - s_reps[:, j])}
        out["points"].append(p)
    out["verdicts"] = verdicts(out["points"])
    return out


def verdicts(points: list) -> dict:
    """Per method: does it, at some step count, beat stock's frontier in evaluations?"""
    fams = defaultdict(list)
    for p in points:
        fams[p["method"]].append(p)
    out = {}
    for meth, ps in fams.items():
        inside = [p for p in ps if not p["equal_evals"]["flag"]]
        above = [p for p in inside if p["equal_evals"]["ci"][0] > 0]
        below = [p for p in inside if p["equal_evals"]["ci"][1] < 0]
        counts = (f"{len(above)} above, {len(below)} below, {len(inside) - len(above) - len(below)} within noise"
                  + (f", {len(ps) - len(inside)} outside stock's range" if len(ps) > len(inside) else ""))
        if above:
            b = max(above, key=lambda p: p["equal_evals"]["ci"][0])
            e = b["equal_evals"]
            out[meth] = (f"FASTER than stock at equal evaluations at some step count ({counts}; best at {b['steps']} "
                         f"steps: {e['delta']:+.3f} [{e['ci'][0]:+.3f}, {e['ci'][1]:+.3f}])")
        elif inside and len(below) == len(inside):
            out[meth] = f"below stock's frontier in evaluations at every step count ({counts})"
        else:
            out[meth] = f"not faster than stock at equal evaluations ({counts})"
    return out


def _ci(d, key="ci"):
    ci = d.get(key)
    return f"{d['delta']:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else f"{d['delta']:+.3f}"


def markdown(out: dict) -> str:
    meta = out["meta"]
    md = [f"# Steps frontier: {meta['task']}", "",
          f"`{meta['command']}`: {meta['noises']} noises x {meta['prompts']} {meta['split']} prompts per "
          f"configuration (the same noises for every prompt and configuration), KSampler seed {meta['seed']}; "
          f"stock at {meta['steps']} steps, the methods at {meta['method_steps']} steps.", "",
          "The paper says refined noise lets the model generate along a shorter trajectory. Here: accuracy "
          "(the judge finds every attribute right) against **evals**, the network evaluations per image "
          "(CFG counts two per step; the probes included). **vs stock, same steps** = the method's change "
          "at its own step count, with images fixed / broken; **vs stock, equal evals** = against stock's "
          "frontier in evaluations at the method's evaluations: stock's best accuracy over the step counts "
          "costing no more (running maximum), interpolated between step counts (a positive interval is a "
          "speed gain: no stock step count reaches that accuracy for that many evaluations); **vs best "
          "cheaper stock** = against stock's best step count among those costing no more than the method "
          "(a setting a user can run instead). Intervals: 95 %, paired "
          "two-way bootstrap over prompts and noises. **oracle best of 4**: see "
          "benchmarks/frontier/headroom.py.", ""]
    for key, sec in out["sections"].items():
        a = sec["analysis"]
        md += [f"## {sec['kind']} model, cfg {sec['cfg']:g}", "", f"`{sec['command']}` ({sec['wall_s']:.0f} s)", "",
               "| stock steps | evals | acc | oracle best of 4 |", "|---|---|---|---|"]
        for s in a["stock"]:
            o4 = s["headroom"]["oracle"].get(4, s["headroom"]["oracle"].get("4"))
            md.append(f"| {s['steps']} | {s['evals']:g} | {s['acc']:.3f} | " + (f"{o4:.3f}" if o4 is not None else "-") + " |")
        md += ["", "| method | steps | evals | acc | vs stock, same steps | fixed / broken | vs stock, equal evals "
               "| vs best cheaper stock |", "|---|---|---|---|---|---|---|---|"]
        for p in a["points"]:
            ss, ee, nx = p.get("same_steps"), p["equal_evals"], p.get("best_cheaper")
            md.append(f"| {p['method']} | {p['steps']} | {p['evals']:g} | {p['acc']:.3f} | "
                      + (f"{_ci(ss, 'delta_ci')} | {ss['fixed']} / {ss['broken']}" if ss else "- | -") + " | "
                      + (f"n/a ({ee['flag']})" if ee["flag"] else _ci(ee)) + " | "
                      + (f"{_ci(nx)} (stock {nx['steps']} steps, {nx['evals']:g} evals)" if nx else "-") + " |")
        md += ["", "Verdicts:", ""] + [f"- {m}: {v}" for m, v in a["verdicts"].items()] + [""]
    return "\n".join(md) + "\n"


def plot(out: dict, path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    secs = list(out["sections"].values())
    fig, axes = plt.subplots(1, len(secs), figsize=(5 * len(secs), 4), squeeze=False)
    for ax, sec in zip(axes[0], secs):
        a = sec["analysis"]
        ax.plot([s["evals"] for s in a["stock"]], [s["acc"] for s in a["stock"]], "k-o", label="stock")
        for s in a["stock"]:
            ax.annotate(str(s["steps"]), (s["evals"], s["acc"]), fontsize=7)
        fams = defaultdict(list)
        for p in a["points"]:
            fams[p["method"]].append(p)
        for meth, ps in fams.items():
            ps = sorted(ps, key=lambda p: p["evals"])
            ax.plot([p["evals"] for p in ps], [p["acc"] for p in ps], "-o", ms=3, label=meth)
        ax.set(xlabel="evaluations per image", ylabel="all attributes right",
               title=f"{out['meta']['task']} {sec['kind']}, cfg {sec['cfg']:g}")
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def write(stem: Path, meta: dict, section: dict) -> None:
    """Adds (or replaces) one (kind, cfg) section in the task's steps report and rewrites it."""
    path = stem.with_suffix(".json")
    out = {"meta": meta, "sections": {}}
    if path.exists():
        old = json.loads(path.read_text())
        same = ("task", "quick", "seed", "noises", "prompts", "split")
        if all(old["meta"].get(k) == meta.get(k) for k in same):
            out["sections"] = old["sections"]
    out["sections"][f"{section['kind']} cfg {section['cfg']:g}"] = section
    out["sections"] = dict(sorted(out["sections"].items(), key=lambda kv: (-kv[1]["cfg"], kv[1]["kind"])))
    _save(stem, out)


def reanalyse(stem: Path) -> None:
    from .experiment import from_json
    out = json.loads(stem.with_suffix(".json").read_text())
    for sec in out["sections"].values():
        sec["analysis"] = analyse([from_json(r) for r in sec["runs"]])
    _save(stem, out)
    print(f"re-analysed {stem}.md/.json/.png")


def _save(stem: Path, out: dict) -> None:
    stem.with_suffix(".json").write_text(json.dumps(out, indent=1))
    stem.with_suffix(".md").write_text(markdown(out))
    plot(out, stem.with_suffix(".png"))


def summary(outs: list) -> str:
    """The steps verdicts of every task, model and cfg, as one table."""
    cols, rows = [], {}
    for out in outs:
        for sec in out["sections"].values():
            col = f"{out['meta']['task']} {sec['kind']} cfg {sec['cfg']:g}"
            cols.append(col)
            for meth, v in sec["analysis"]["verdicts"].items():
                rows.setdefault(meth, {})[col] = (v.replace("FASTER than stock at equal evaluations at some step count", "**faster**")
                                                  .replace("not faster than stock at equal evaluations", "not faster")
                                                  .replace("below stock's frontier in evaluations at every step count", "below everywhere"))
    md = ["| method (steps frontier) | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for meth in sorted(rows):
        md.append(f"| {meth} | " + " | ".join(rows[meth].get(c, "not run") for c in cols) + " |")
    return "\n".join(md) + "\n"
