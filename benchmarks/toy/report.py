"""The toy's tables (one seed; mean and spread over seeds) and its figure."""
from __future__ import annotations

import json
import math

from .data import CLASSES


def _json(obj) -> str:
    """Strict JSON: NaN/inf (e.g. the loss of a cached model) become null."""
    def clean(o):
        if isinstance(o, float) and not math.isfinite(o):
            return None
        if isinstance(o, dict):
            return {k: clean(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [clean(v) for v in o]
        return o
    return json.dumps(clean(obj), indent=1, allow_nan=False) + "\n"

def markdown(rows, meta):
    out = [f"# Toy Figure-2 reproduction ({'quick' if meta['quick'] else 'full'} run, seed {meta['seed']})", "",
           f"torch {meta['torch']}, CPU, {meta['threads']} thread(s), total {meta['total_s']:.1f}s; "
           f"CFG {meta['cfg']}, Euler {meta['sampler_steps']} steps; TPW schedule = the node's default "
           f"(taus {[round(t, 3) for t in meta['schedule']['taus']]}, "
           f"weights {[round(w, 3) for w in meta['schedule']['weights']]}). "
           f"Sliced W2 to the intended target (lower is better), mean over the 3 target classes, "
           f"{meta['n_eval']} samples per class. prec = share of samples within the 95th percentile of "
           f"true samples' distance to the target's support (true samples: 0.95; higher is better); "
           f"wrong = share of samples on another class's support instead (semantic leak); "
           f"supp = mean distance to the support; mean abs(z) = mean norm of the starting noise (N(0,I) in 2-D: 1.25). rec = share of the mismatched-to-matched gap "
           f"closed (1 = as good as matched, < 0 = worse than mismatched), for SW and for prec.", ""]
    for fam in dict.fromkeys(r["family"] for r in rows):
        out += [f"## {fam} model", "", "| condition | SW2 | rec(SW) | prec | rec(prec) | wrong | supp | mean abs(z) |",
                "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for r in rows:
            if r["family"] == fam:
                out.append(f"| {r['name']} | {r['sw']:.3f} | {r['rec_sw']:+.2f} | {r['prec']:.3f} | "
                           f"{r['rec_prec']:+.2f} | {r['wrong']:.3f} | {r['supp']:.3f} | {r['znorm']:.2f} |")
        out.append("")
    return "\n".join(out)


def markdown_seeds(rows, meta):
    seeds = meta["seeds"]
    out = [f"# Toy Figure-2 reproduction: robustness over seeds {seeds}", "",
           "Each seed redraws the seed banks, the training data, the network init and the evaluation "
           "noises, and retrains both models. Mean (min..max) over seeds; metrics as in toy.md.", ""]
    for fam in dict.fromkeys(r["family"] for r in rows):
        out += [f"## {fam} model", "", "| condition | SW2 | prec | wrong | rec(prec) |", "|---|---|---|---|---|"]
        names = list(dict.fromkeys(r["name"] for r in rows if r["family"] == fam))
        for name in names:
            rs = [r for r in rows if r["family"] == fam and r["name"] == name]
            cells = []
            for k, f in (("sw", ".3f"), ("prec", ".3f"), ("wrong", ".3f"), ("rec_prec", "+.2f")):
                v = [r[k] for r in rs]
                cells.append(f"{sum(v) / len(v):{f}} ({min(v):{f}}..{max(v):{f}})")
            out.append(f"| {name} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def plot(panels_by_fam, refs, path, delta):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    keys = [("matched", "Matched"), ("mismatched", "Mismatched"), ("erased", "Erased (n=4)"),
            ("injected", f"Injected (denoising, $\\delta$={delta})"),
            ("injected_opposite", f"Injected (opposite, $\\delta$={delta})"),
            ("erase_inject", f"Erase+Inject ($\\delta$={delta})")]
    fams = list(panels_by_fam)
    colors = ("tab:blue", "tab:orange", "tab:green")
    fig, axes = plt.subplots(len(fams), len(keys), figsize=(3 * len(keys), 3.1 * len(fams)), squeeze=False)
    for i, fam in enumerate(fams):
        for j, (k, title) in enumerate(keys):
            ax = axes[i, j]
            for b in range(3):
                ax.scatter(refs[b][:600, 0], refs[b][:600, 1], s=1, c="lightgray")
            smp = panels_by_fam[fam].get(k)
            if smp is not None:
                for b in range(3):
                    ax.scatter(smp[b][:, 0], smp[b][:, 1], s=2, c=colors[b], label=CLASSES[b] if j == 0 else None)
            ax.set_xlim(-3.0, 3.0)
            ax.set_ylim(-3.0, 3.0)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{title}" + (f"\n[{fam}]" if True else ""), fontsize=9)
        axes[i, 0].legend(loc="lower left", fontsize=7, markerscale=4)
    fig.suptitle("Samples generated for each label (colour = the label asked for; grey = the three true targets; "
                 "a dot on another shape = wrong class)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
