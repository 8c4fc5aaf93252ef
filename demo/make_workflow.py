"""Writes demo/workflows/noise_semantics_demo_digits.json: the workflow a new user finds in the
served ComfyUI's workflow list (demo/served_base.py puts it there). Stock and refined side by side on
the shipped digits eps model: two real KSamplers with the same seed, prompt and settings; the refined
one's MODEL goes through the pack's Noise Semantic Inject with noise screening on (candidates 4), the
mode the README recommends below the usual cfg. The Note's numbers are measured here, on this run,
with the demo's judge (demo/models.py: a logistic regression on the real digits).

    .venv/bin/python demo/make_workflow.py

Widget values come from the LIVE node definitions (the pack's defaults plus the demo's settings),
so re-run it after the defaults change; tests/integration/test_demo.py checks the file against them.
"""
from __future__ import annotations

import json
import sys
import tempfile
import uuid
from pathlib import Path

DEMO = Path(__file__).resolve().parent
ROOT = DEMO.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(DEMO))
OUT = DEMO / "workflows" / "noise_semantics_demo_digits.json"

# What the workflow shows. cfg 0.5: weak guidance, where screening beat raising CFG on this model
# (README, "What it does, measured"); at the usual cfg 3 it changes ~nothing.
KIND, DIGIT, SEED, BATCH, STEPS, CFG, USUAL_CFG = "eps", 3, 1, 16, 20, 0.5, 3.0
SAMPLER, SCHEDULER = "euler", "normal"
SCREEN = {"candidates": 4}
SCALE, COLUMNS = 8, 8
OUR_COLOR = {"color": "#223", "bgcolor": "#335"}
NOTE_COLOR = {"color": "#432", "bgcolor": "#653"}


class Graph:
    """A UI-format (litegraph 0.4) workflow, widget values in the live definitions' order."""

    def __init__(self, wa):
        self.wa, self.nodes, self.links = wa, [], []

    def node(self, type_, pos, size, widgets=None, inputs=(), outputs=(), title=None, extra=None):
        nid = len(self.nodes) + 1
        values = []
        if type_ == "Note":
            values = [widgets]
        else:
            for spec in self.wa.widget_specs(type_):
                values.append((widgets or {}).get(spec.name, spec.default()))
                values.extend("fixed" for _ in spec.extras)  # control_after_generate: the seed stays
        n = {"id": nid, "type": type_, "pos": list(pos), "size": list(size), "flags": {}, "order": 0, "mode": 0,
             "inputs": [{"name": k, "type": t, "link": None} for k, t in inputs],
             "outputs": [{"name": k, "type": t, "links": [], "slot_index": i} for i, (k, t) in enumerate(outputs)],
             "properties": {} if type_ == "Note" else {"Node name for S&R": type_},
             "widgets_values": values}
        if title:
            n["title"] = title
        n.update(extra or {})
        self.nodes.append(n)
        return nid

    def connect(self, o, oslot, t, tname):
        on, tn = self.nodes[o - 1], self.nodes[t - 1]
        ti = next(i for i, inp in enumerate(tn["inputs"]) if inp["name"] == tname)
        lid = len(self.links) + 1
        typ = on["outputs"][oslot]["type"]
        self.links.append([lid, o, oslot, t, ti, typ])
        on["outputs"][oslot]["links"].append(lid)
        tn["inputs"][ti]["link"] = lid

    def data(self):
        deps = {n["id"]: {l[1] for l in self.links if l[3] == n["id"]} for n in self.nodes}
        order, done = [], set()
        while len(order) < len(deps):
            ready = sorted(n for n in deps if n not in done and deps[n] <= done)
            done.update(ready)
            order += ready
        for i, nid in enumerate(order):
            self.nodes[nid - 1]["order"] = i
        return {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, "comfyui-noise-semantics/demo/" + OUT.name)),
                "revision": 0, "last_node_id": len(self.nodes), "last_link_id": len(self.links),
                "nodes": self.nodes, "links": self.links, "groups": [], "config": {},
                "extra": {"ds": {"scale": 0.8, "offset": [90, 150]}}, "version": 0.4}


def build(wa, note: str) -> dict:
    import demo_nodes
    empty_id, w, h = demo_nodes.demo_models().empty_latent_node(KIND)
    g = Graph(wa)
    # (name, type) of outputs; inputs are named in lower case
    M, C, L, I = ("MODEL", "MODEL"), ("CONDITIONING", "CONDITIONING"), ("LATENT", "LATENT"), ("IMAGE", "IMAGE")
    m = ("model", "MODEL")
    # Four columns (inputs, samplers, decoders, images), the stock row above the refined row,
    # the Note below: about 1450 x 900 canvas units, seen whole at the view's scale 0.8 (clear of
    # the frontend's breadcrumb and Run bar at the top).
    load = g.node("DigitsDemoModelLoader", (0, 0), (270, 58), {"kind": KIND}, outputs=[M])
    pos = g.node("DigitsDemoClassConditioning", (0, 100), (270, 82), {"digit": DIGIT}, [m], [C],
                 title=f"Prompt: the digit {DIGIT}")
    neg = g.node("DigitsDemoClassConditioning", (0, 220), (270, 82), {"digit": 10}, [m], [C],
                 title="Negative: the empty prompt (10)")
    lat = g.node(empty_id, (0, 340), (270, 130), {"width": w, "height": h, "batch_size": BATCH}, outputs=[L],
                 title=f"{BATCH} noises (one batch)")
    inject = g.node("NoiseSemanticInject", (0, 510), (270, 200), SCREEN,
                    [m, ("schedule", "NOISE_SEMANTIC_SCHEDULE")], [M], extra=OUR_COLOR)
    g.nodes[inject - 1]["inputs"][1]["shape"] = 7  # optional input, drawn hollow as the frontend does
    ks = {"seed": SEED, "steps": STEPS, "cfg": CFG, "sampler_name": SAMPLER, "scheduler": SCHEDULER, "denoise": 1.0}
    ins = [m, ("positive", "CONDITIONING"), ("negative", "CONDITIONING"), ("latent_image", "LATENT")]
    stock = g.node("KSampler", (300, 0), (280, 262), ks, ins, [L], title="KSampler: stock")
    refined = g.node("KSampler", (300, 330), (280, 262), ks, ins, [L], title="KSampler: refined (same settings)")
    dec = {"scale": SCALE, "columns": COLUMNS}
    dins = [m, ("samples", "LATENT")]
    dstock = g.node("DigitsDemoLatentToImage", (610, 0), (250, 106), dec, dins, [I])
    drefined = g.node("DigitsDemoLatentToImage", (610, 330), (250, 106), dec, dins, [I])
    pstock = g.node("PreviewImage", (890, 0), (560, 250), {}, [("images", "IMAGE")],
                    title="stock KSampler")
    prefined = g.node("PreviewImage", (890, 330), (560, 250), {}, [("images", "IMAGE")],
                      title="refined: Noise Semantic Inject, candidates 4")
    g.node("Note", (300, 640), (1150, 240), note, title="What to look at", extra=NOTE_COLOR)
    for t in (pos, neg, inject, stock, dstock, drefined):
        g.connect(load, 0, t, "model")
    g.connect(inject, 0, refined, "model")
    for s in (stock, refined):
        g.connect(pos, 0, s, "positive")
        g.connect(neg, 0, s, "negative")
        g.connect(lat, 0, s, "latent_image")
    g.connect(stock, 0, dstock, "samples")
    g.connect(refined, 0, drefined, "samples")
    g.connect(dstock, 0, pstock, "images")
    g.connect(drefined, 0, prefined, "images")
    return g.data()


def measure(nodes, host, cfg: float) -> dict:
    """Judge accuracy of stock and screening over the digits 0..9 (the workflow's seed, batch and
    steps), through run_demo's prompt: its "inject" variant is this workflow's Inject."""
    import torch

    import demo_nodes
    import run_demo
    dm = demo_nodes.demo_models()
    clf, _ = dm.train_classifier()
    res = demo_nodes.pixels_of(host.run_prompt(run_demo.build_prompt(nodes, KIND, SEED, BATCH, STEPS, cfg)))
    out = {}
    for v in ("stock", "inject"):
        ok = [int((torch.as_tensor(dm.classify(clf, res[f"{v}_{d}"])[0]) == d).sum()) for d in range(10)]
        out[v] = ok
    return out


def note_text(low: dict, usual: dict) -> str:
    s, r = low["stock"], low["inject"]
    return (
        "Noise Semantics demo: stock vs refined, on a tiny digits model shipped with the repository (an SD1.5-class "
        "UNet the project trained on 8x8 handwritten digits; no download). Press Run (Queue).\n\n"
        f"Both KSamplers get the same seed ({SEED}), prompt (the digit {DIGIT}), {BATCH} noises, {STEPS} steps and "
        f"cfg {CFG:g}. The only difference: the refined sampler's MODEL goes through Noise Semantic Inject with "
        f"candidates = {SCREEN['candidates']} (noise screening: per image it probes {SCREEN['candidates']} noises "
        "once, at tau 0.6, and keeps the one whose own content already agrees best with the prompt; strength 0: "
        "no injection). The pack's defaults change nothing; candidates 4 is the one input changed here.\n\n"
        f"What to look at: count the {DIGIT}s in each sheet. Here the refined sheet has {r[DIGIT]} of {BATCH}, stock "
        f"{s[DIGIT]} (the demo's judge, a classifier trained on the real digits). Over all ten digits at this seed: "
        f"stock {sum(s)} of {10 * BATCH} right, refined {sum(r)}. Change the digit or the seed to see others; "
        "some digits gain nothing.\n\n"
        f"cfg {CFG:g} is weak guidance, on purpose: that is where screening measurably helps on this model. At the "
        f"usual cfg ({USUAL_CFG:g} for this model) the gain is ~nil: stock {sum(usual['stock'])}, refined "
        f"{sum(usual['inject'])} of {10 * BATCH} at this seed; in the benchmark 0 images fixed and 0 broken of 400 "
        "(README, \"What it does, measured\"). Set cfg 3 on both KSamplers to see them agree.\n\n"
        "Cost: 8 extra network evaluations per image (4 candidates x prompt and negative, one probe).\n"
        "The loader, digit prompt and latent-to-image nodes are the demo's own (custom_nodes/comfyui-nsp-demo, "
        "from demo/ in the repository); they are not part of the pack.")


def main():
    import host
    import served_base
    nodes = host.boot(served_base.prepare(Path(tempfile.mkdtemp(prefix="nsp-demo-base-"))))
    import torch
    torch.set_num_threads(1)
    import comfy.utils
    comfy.utils.PROGRESS_BAR_ENABLED = False
    import workflow_api as wa
    low, usual = measure(nodes, host, CFG), measure(nodes, host, USUAL_CFG)
    print("cfg", CFG, low, "\ncfg", USUAL_CFG, usual)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(build(wa, note_text(low, usual)), indent=1) + "\n", encoding="utf-8")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
