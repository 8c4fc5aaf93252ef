"""Tables and plots of a frontier run (``run.py``)."""
from __future__ import annotations

from collections import defaultdict

from . import frontier


def analyse(runs, splits: dict) -> dict:
    """Per split: every refined run against stock's frontier (matched diversity) and against
    stock at its own cfg (fixed / broken), and a verdict per method family."""
    N = runs[0].ok["all"].shape[1]
    idx = frontier.bootstrap_idx(N)
    stock = [r for r in runs if not r.config.refined and not r.config.steps]
    by_cfg = {r.config.cfg: r for r in stock}
    out = {}
    for name, rows in splits.items():
        pts, fams = [], defaultdict(list)
        for r in runs:
            if not r.config.refined:
                continue
            m = frontier.matched(r, stock, rows, idx)
            p = frontier.paired_vs_stock(r, by_cfg[r.config.cfg], rows, idx) if r.config.cfg in by_cfg else None
            pts.append({"label": r.config.label(), "method": r.config.method(), "family": r.config.family(),
                        "cfg": r.config.cfg,
                        "evals": r.evals, "matched": m, "same_cfg": p,
                        "attrs": {k: float(v[rows].float().mean()) for k, v in r.ok.items()}})
            fams[r.config.family()].append(m)
        out[name] = {"points": pts, "verdicts": {k: frontier.verdict(v) for k, v in fams.items()},
                     "stock": [{"cfg": r.config.cfg, "evals": r.evals, "diversity": float(r.div[rows].mean()),
                                "attrs": {k: float(v[rows].float().mean()) for k, v in r.ok.items()}} for r in stock]}
    return out


def _ci(x):
    return f"{x['delta']:+.3f} [{x['ci'][0]:+.3f}, {x['ci'][1]:+.3f}]"


def markdown(out: dict) -> str:
    meta = out["meta"]
    md = [f"# Frontier benchmark: {meta['task']}", "",
          f"`{meta['command']}`: {meta['noises']} noises x {meta['prompts']} prompts per configuration "
          f"(the same noises for every prompt and configuration), {meta['steps']} euler steps, KSampler seed "
          f"{meta['seed']}; splits {meta['splits']}; wall {meta.get('wall_s', 0):.0f} s. Task: {meta['describe']}.", "",
          "Reading the tables: **acc** = the judge finds every attribute right; **div** = mean distance between "
          "images of the same prompt (higher = more varied); **evals** = network evaluations per image "
          "(CFG counts two per step; the refinement's probes included). **vs frontier** = accuracy minus stock's "
          "accuracy interpolated at the same diversity on stock's cfg curve, 95 % paired bootstrap over noises: "
          "only a positive interval is a gain the cfg knob cannot buy. **vs same cfg** = against stock at the "
          "same cfg, with images fixed / broken.", ""]
    for kind, k in out["kinds"].items():
        for split, a in k["analysis"].items():
            attrs = list(a["stock"][0]["attrs"])
            md += [f"## {kind} model, {split} prompts", "", f"`{k.get('command', meta['command'])}`", "",
                   "### Stock over cfg", "",
                   "| cfg | " + " | ".join(attrs) + " | div | evals |", "|---|" + "---|" * (len(attrs) + 2)]
            for s in a["stock"]:
                md.append(f"| {s['cfg']:g} | " + " | ".join(f"{s['attrs'][t]:.3f}" for t in attrs)
                          + f" | {s['diversity']:.3f} | {s['evals']:.0f} |")
            md += ["", "### Methods", "",
                   "| configuration | acc | div | evals | vs frontier | vs same cfg | fixed / broken |",
                   "|---|---|---|---|---|---|---|"]
            for p in a["points"]:
                m, s = p["matched"], p["same_cfg"]
                vs = (f"{_ci(m)} ({m['flag']})" if "dominat" in m["flag"] else f"n/a ({m['flag']})") if m["flag"] else _ci(m)
                md.append(f"| {p['label']} | {m['acc']:.3f} | {m['diversity']:.3f} | {p['evals']:.0f} | {vs} | "
                          + (f"{_ci(s)} | {s['fixed']} / {s['broken']} |" if s else "- | - |"))
            md += ["", "### Verdicts (each method family against stock's frontier)", ""]
            md += [f"- {meth}: {v}" for meth, v in a["verdicts"].items()]
            md.append("")
    return "\n".join(md) + "\n"


def plot(out: dict, path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    kinds = list(out["kinds"])
    splits = list(next(iter(out["kinds"].values()))["analysis"])
    fig, axes = plt.subplots(len(kinds), 2 * len(splits), figsize=(6 * len(splits) * 2, 4.5 * len(kinds)),
                             squeeze=False)
    for i, kind in enumerate(kinds):
        for j, split in enumerate(splits):
            a = out["kinds"][kind]["analysis"][split]
            ax_d, ax_e = axes[i, 2 * j], axes[i, 2 * j + 1]
            st = sorted(a["stock"], key=lambda s: s["cfg"])
            ax_d.plot([s["diversity"] for s in st], [s["attrs"]["all"] for s in st], "k-o", label="stock (cfg sweep)")
            for s in st:
                ax_d.annotate(f"{s['cfg']:g}", (s["diversity"], s["attrs"]["all"]), fontsize=7)
            ax_e.plot([s["evals"] for s in st], [s["attrs"]["all"] for s in st], "ko", label="stock")
            fams = defaultdict(list)
            for p in a["points"]:
                fams[p["family"]].append(p)
            for fam, ps in fams.items():
                ax_d.scatter([p["matched"]["diversity"] for p in ps], [p["matched"]["acc"] for p in ps], s=14, label=fam)
                ax_e.scatter([p["evals"] for p in ps], [p["matched"]["acc"] for p in ps], s=14, label=fam)
            ax_d.set(xlabel="diversity", ylabel="all attributes right", title=f"{out['meta']['task']} {kind}, {split}")
            ax_e.set(xlabel="evaluations per image", ylabel="all attributes right", title="cost")
            ax_d.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def summary(outs: list) -> str:
    """One table across tasks and models: each method family's verdict on the held-out (or only)
    split, as the README shows it."""
    cols, rows = [], {}
    for out in outs:
        for kind, k in out["kinds"].items():
            split = "heldout" if "heldout" in k["analysis"] else next(iter(k["analysis"]))
            col = f"{out['meta']['task']} {kind}" + (" (held-out)" if split == "heldout" else "")
            cols.append(col)
            for fam, v in k["analysis"][split]["verdicts"].items():
                rows.setdefault(fam, {})[col] = v
    short = lambda v: (v.replace("ABOVE stock's frontier at some setting", "**above**")
                        .replace("not above stock's frontier", "not above")
                        .replace("below stock's frontier at every setting", "below everywhere")
                        .replace(" point(s) outside stock's diversity range not compared", " outside range"))
    md = ["| method family | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for fam in sorted(rows):
        md.append(f"| {fam} | " + " | ".join(short(rows[fam].get(c, "not run")) for c in cols) + " |")
    return "\n".join(md) + "\n"
