"""Build workflows/*.json from ComfyUI's official templates (pip packages
comfyui-workflow-templates-media-image==0.3.17 / -media-video==0.3.12, downloaded into a temporary
folder) by inserting the pack's nodes on the MODEL wire. Widget values of the pack's nodes come from
the LIVE node definitions (defaults; the SD1.5 img2img edit sets Inject's strength), so re-run this
after the defaults change.

    .venv/bin/python scripts/make_workflows.py

Run it on the floor host (.venv: ComfyUI 0.3.75): the files are saved for the oldest supported
ComfyUI and newer ones upgrade them on load (docs/workflows.md, "Which ComfyUI the files are saved
for").
"""
import copy
import json
import subprocess
import sys
import tempfile
import zipfile
import tomllib
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TPL = Path(tempfile.mkdtemp(prefix="nsp-templates-"))
subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(TPL),
                "comfyui-workflow-templates-media-image==0.3.17",
                "comfyui-workflow-templates-media-video==0.3.12"], check=True)
for whl in TPL.glob("*.whl"):
    zipfile.ZipFile(whl).extractall(TPL)
sys.path.insert(0, str(ROOT / "tests"))
import host  # noqa: E402

nodes = host.boot()
import workflow_api as wa  # noqa: E402

VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
OUR_COLOR = {"color": "#223", "bgcolor": "#335"}
NOTE_COLOR = {"color": "#432", "bgcolor": "#653"}


def defaults(class_type):
    out = []
    for spec in wa.widget_specs(class_type):
        out.append(spec.options.get("default", spec.choices[0] if spec.choices else None))
        out.extend("fixed" for _ in spec.extras)
    return out


D = {k: dict(zip([s.name for s in wa.widget_specs(k)], defaults(k)))
     for k in ("NoiseSemanticErase", "NoiseSemanticInject", "NoiseSemanticTemporalSchedule")}


class WF:
    def __init__(self, path):
        self.d = json.loads(Path(path).read_text())
        self.nodes = {n["id"]: n for n in self.d["nodes"]}

    def node(self, nid):
        return self.nodes[nid]

    def remove_node(self, nid):
        n = self.nodes.pop(nid)
        for inp in n.get("inputs", []):
            if inp.get("link") is not None:
                self.remove_link(inp["link"])
        for out in n.get("outputs", []):
            for lid in list(out.get("links") or []):
                self.remove_link(lid)
        self.d["nodes"] = [x for x in self.d["nodes"] if x["id"] != nid]

    def remove_link(self, lid):
        link = next((l for l in self.d["links"] if l[0] == lid), None)
        if link is None:
            return
        self.d["links"].remove(link)
        o, t = self.nodes.get(link[1]), self.nodes.get(link[3])
        if o:
            out = o["outputs"][link[2]]
            out["links"] = [x for x in out["links"] if x != lid]
        if t:
            for inp in t["inputs"]:
                if inp.get("link") == lid:
                    inp["link"] = None

    def add_node(self, type_, pos, size, widgets, inputs=(), outputs=(), title=None, extra=None):
        nid = self.d["last_node_id"] + 1
        self.d["last_node_id"] = nid
        n = {"id": nid, "type": type_, "pos": list(pos), "size": list(size), "flags": {}, "order": 0, "mode": 0,
             "inputs": [dict(i, link=None) for i in inputs],
             "outputs": [dict(o, links=[]) for o in outputs],
             "properties": {"Node name for S&R": type_} if type_ not in ("Note", "MarkdownNote") else {},
             "widgets_values": list(widgets)}
        if title:
            n["title"] = title
        if extra:
            n.update(extra)
        self.d["nodes"].append(n)
        self.nodes[nid] = n
        return nid

    def connect(self, o, oslot, t, tname):
        o_node, t_node = self.nodes[o], self.nodes[t]
        ti = next(i for i, inp in enumerate(t_node["inputs"]) if inp["name"] == tname)
        if t_node["inputs"][ti].get("link") is not None:
            self.remove_link(t_node["inputs"][ti]["link"])
        typ = o_node["outputs"][oslot]["type"]
        lid = self.d["last_link_id"] + 1
        self.d["last_link_id"] = lid
        self.d["links"].append([lid, o, oslot, t, ti, typ])
        o_node["outputs"][oslot].setdefault("links", []).append(lid)
        o_node["outputs"][oslot]["slot_index"] = oslot
        t_node["inputs"][ti]["link"] = lid
        return lid

    def model_source(self, t, tname="model"):
        inp = next(i for i in self.nodes[t]["inputs"] if i["name"] == tname)
        link = next(l for l in self.d["links"] if l[0] == inp["link"])
        return link[1], link[2]

    def insert_ours(self, sampler, x, y, note_text, note_pos, note_size, family_title, inject=None, schedule=None):
        """source MODEL -> Erase -> Inject (+ Schedule) -> sampler.model. ``inject``: widget values
        that differ from Inject's defaults (by name), for a workflow that turns it on."""
        src, slot = self.model_source(sampler)
        ex = {**OUR_COLOR}
        props = {"cnr_id": "comfyui-noise-semantics", "ver": VERSION}
        erase = self.add_node("NoiseSemanticErase", (x, y), (290, 130), list(D["NoiseSemanticErase"].values()),
                              [{"name": "model", "type": "MODEL"}], [{"name": "MODEL", "type": "MODEL"}], extra=ex)
        # One probe at tau 0.6: what Inject uses when nothing is connected (the measured default),
        # shown on the canvas so a user can switch to the paper's five probes.
        sched_values = dict(zip([s.name for s in wa.widget_specs("NoiseSemanticTemporalSchedule")],
                                defaults("NoiseSemanticTemporalSchedule"))) | LATE | (schedule or {})
        sched = self.add_node("NoiseSemanticTemporalSchedule", (x, y + 150), (290, 356),
                              list(sched_values.values()), [],
                              [{"name": "schedule", "type": "NOISE_SEMANTIC_SCHEDULE"}], extra=ex)
        inject_values = dict(zip([s.name for s in wa.widget_specs("NoiseSemanticInject")],
                                 defaults("NoiseSemanticInject"))) | (inject or {})
        inject = self.add_node("NoiseSemanticInject", (x + 320, y), (290, 192),
                               list(inject_values.values()),
                               [{"name": "model", "type": "MODEL"},
                                {"name": "schedule", "type": "NOISE_SEMANTIC_SCHEDULE", "shape": 7}],
                               [{"name": "MODEL", "type": "MODEL"}], extra=ex)
        for nid in (erase, sched, inject):
            self.nodes[nid]["properties"].update(props)
        note = self.add_node("Note", note_pos, note_size, [note_text], title=f"Noise Semantics - {family_title}",
                             extra={**NOTE_COLOR})
        self.connect(src, slot, erase, "model")
        self.connect(erase, 0, inject, "model")
        self.connect(sched, 0, inject, "schedule")
        self.connect(inject, 0, sampler, "model")
        return erase, inject, sched, note

    def add_group(self, title, bounding, color="#3f789e"):
        gid = max([g.get("id", 0) for g in self.d.get("groups", [])] + [0]) + 1
        self.d.setdefault("groups", []).append({"id": gid, "title": title, "bounding": list(bounding),
                                                "color": color, "font_size": 24, "flags": {}})

    def finish(self, out_path):
        # Execution order as the frontend computes it (topological), ids renumbered nowhere.
        deps = {nid: set() for nid in self.nodes}
        for l in self.d["links"]:
            deps[l[3]].add(l[1])
        order, done = [], set()
        while len(order) < len(deps):
            ready = sorted(n for n in deps if n not in done and deps[n] <= done)
            if not ready:
                raise RuntimeError("cycle")
            for n in ready:
                done.add(n)
                order.append(n)
        for i, nid in enumerate(order):
            self.nodes[nid]["order"] = i
        self.d["links"].sort(key=lambda l: l[0])
        self.d["last_node_id"] = max(self.nodes)
        self.d["last_link_id"] = max(l[0] for l in self.d["links"])
        # Own workflow ids (the templates' ids would collide with the official ones), stable per file.
        self.d["id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, "comfyui-noise-semantics/workflows/" + Path(out_path).name))
        # Initial view: the whole graph, groups included, on a 1600 x 900 canvas.
        xs, ys = [], []
        for n in self.d["nodes"]:
            xs += [n["pos"][0], n["pos"][0] + n["size"][0]]
            ys += [n["pos"][1] - 30, n["pos"][1] + n["size"][1]]
        for g in self.d.get("groups", []):
            b = g["bounding"]
            xs += [b[0], b[0] + b[2]]
            ys += [b[1], b[1] + b[3]]
        scale = round(min(1600 / (max(xs) - min(xs) + 80), 900 / (max(ys) - min(ys) + 80)), 3)
        self.d["extra"]["ds"] = {"scale": scale, "offset": [40 - min(xs), 40 - min(ys)]}
        self.d["extra"] = {k: v for k, v in self.d.get("extra", {}).items() if not k.startswith("VHS_")}
        Path(out_path).write_text(json.dumps(self.d, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print("wrote", out_path, len(self.d["nodes"]), "nodes", len(self.d["links"]), "links")


E, I, S = D["NoiseSemanticErase"], D["NoiseSemanticInject"], D["NoiseSemanticTemporalSchedule"]
LATE = {"probes": 1, "tau_min": 0.6, "tau_max": 0.6}


def sampling_evals(w) -> int:
    """Network evaluations per image of the workflow's own samplers, stock: each step evaluates the
    prompt and the negative (cfg 1: ComfyUI skips the negative). A KSampler at denoise < 1 still runs
    its steps. tests/integration/test_workflows.py counts them in the executor and checks this."""
    total = 0
    for n in w.d["nodes"]:
        v = n["widgets_values"]
        if n["type"] == "KSampler":  # seed, control, steps, cfg, ...
            steps, cfg = v[2], v[3]
        elif n["type"] == "KSamplerAdvanced":  # add_noise, seed, control, steps, cfg, sampler, sched, start, end
            steps, cfg = min(v[8], v[3]) - v[7], v[4]
        else:
            continue
        total += steps * (1 if cfg == 1 else 2)
    return total


def probe_evals(candidates, probes, cfg):
    """Evaluations of Inject's one batched probe call per image: each probe of each candidate, with both
    CFG branches when screening (read at cfg 1 too) or when the sampler's cfg is not 1."""
    return candidates * probes * (2 if candidates > 1 or cfg != 1 else 1)


def cost_text(w, cfg, candidates=4, probes=1):
    extra, run = probe_evals(candidates, probes, cfg), sampling_evals(w)
    return f"{extra} network evaluations per image on top of the sampling's {run}: +{round(100 * extra / run)} %"


def common_text(cfg_note, w, cfg):
    return (
        f"- Noise Semantic Inject and Noise Semantic Erase are at their defaults, which change nothing: at the cfg "
        f"these templates use, nothing the pack offers beat the stock sampler in its benchmarks (README). To try "
        f"noise screening, set Inject's candidates to 4 (it probes 4 noises per image at tau 0.6 and keeps the "
        f"one whose own content already agrees best with the prompt; it beat raising CFG below the usual cfg). "
        f"strength > 0 is the paper's injection.\n"
        f"- Noise Semantic Erase, samples = {E['samples']}: off by default for the same reason; the paper uses 4.\n"
        f"- Temporal Weight Schedule: set to one probe at tau 0.6, what Inject uses unconnected. For the "
        f"paper's temporal weighting, set its defaults ({S['probes']} probes from tau {S['tau_max']} down to "
        f"{S['tau_min']}): each probe then costs as much again.\n"
        f"- Cost with 4 candidates: every probe in one batched model call ({cfg_note}): {cost_text(w, cfg)}. At "
        f"the defaults: none.\n"
        f"- Only a sampler that starts from pure noise (an empty latent or denoise 1) is refined: Erase's and Inject's apply_to. A "
        f"hires-fix pass, a detailer or a tiled upscaler on the same MODEL keeps its stock noise (the log says "
        f"so); set apply_to to 'every sampler' to refine those too.\n"
        f"- Where it helps, and where raising CFG is the better knob: see the pack's README.\n"
        f"- Change the sampler's seed as usual: same seed, same result (the extra draws are made on the CPU).\n")


# ------------------------------------------------------------------ SDXL base + refiner
w = WF(TPL / "comfyui_workflow_templates_media_image/templates/sdxl_simple_example.json")
note = ("SDXL base + refiner with Noise Semantics.\n\n"
        "Wire: Load Checkpoint - BASE (MODEL) -> Noise Semantic Erase -> Noise Semantic Inject -> KSampler "
        "(Advanced) - BASE. Only the base model is patched: the REFINER sampler has add_noise disabled (it "
        "continues the base's latent and receives no new noise), so there is nothing to refine there; a patched "
        "model would leave it untouched anyway.\n\n"
        + common_text("CFG 8: prompt and negative prompt", w, 8) +
        "\nSDXL is an eps (noise-prediction) model: the probe asks the UNet at the sigma the sampler reaches at tau "
        "0.6 of its schedule; the direction used is minus its predicted noise (the direction a denoising step "
        "moves). Keep the base sampler's start_at_step at 0: a later start adds the refined noise to the "
        "latent at a lower sigma, as with any noise.")
erase, inject, sched, n = w.insert_ours(10, 575, -760, note, (1215, -760), (610, 540), "SDXL")
w.add_group("Noise Semantics (comfyui-noise-semantics)", (560, -802, 1280, 615))
w.finish(ROOT / "workflows/sdxl_base_refiner_noise_semantics.json")

# ------------------------------------------------------------------ FLUX.1 dev
w = WF(TPL / "comfyui_workflow_templates_media_image/templates/flux_dev_full_text_to_image.json")
note = ("FLUX.1 [dev] with Noise Semantics.\n\n"
        "Wire: Load Diffusion Model (MODEL) -> Noise Semantic Erase -> Noise Semantic Inject -> KSampler.\n\n"
        + common_text("CFG 1: the prompt only", w, 1) +
        "\nFLUX.1 dev is guidance-distilled: KSampler cfg stays 1.0 and the guidance (3.5) goes in through "
        "CLIPTextEncodeFlux, so the probes see exactly the conditioning the sampler uses. Screening also evaluates "
        "the zeroed negative at its probe (the noise's own reading), which sampling at cfg 1 skips: that is why "
        "its cost here is twice what it is at cfg > 1. FLUX is a rectified-flow model: a probe at tau asks the model at the sigma the "
        "sampler would reach at that point of its schedule (with FLUX's own shift); the direction used is minus "
        "the predicted velocity.")
erase, inject, sched, n = w.insert_ours(31, -320, -620, note, (300, -620), (600, 560), "FLUX.1 dev")
w.add_group("Noise Semantics (comfyui-noise-semantics)", (-330, -660, 1250, 630))
w.finish(ROOT / "workflows/flux1_dev_noise_semantics.json")

# ------------------------------------------------------------------ WAN 2.1 T2V 1.3B
w = WF(TPL / "comfyui_workflow_templates_media_video/templates/text_to_video_wan.json")
note = ("Wan 2.1 text-to-video 1.3B with Noise Semantics.\n\n"
        "Wire: Load Diffusion Model -> ModelSamplingSD3 (shift 8) -> Noise Semantic Erase -> Noise Semantic "
        "Inject -> KSampler. Either order with ModelSamplingSD3 gives the same result: on a rectified-flow model a "
        "probe at tau sits at sigma = tau whatever the shift (tau 0.6 = sigma 0.6, the noise level the benchmarks "
        "measured), while the sampler's steps follow the shifted schedule.\n\n"
        + common_text("CFG 6: prompt and negative prompt", w, 6) +
        "\nThe noise is the whole video latent (all frames at once): erase and inject act on it as one sample. "
        "The probe call holds probes x candidates x 2 whole video latents (8 with 4 candidates and one probe); "
        "where it does not fit, the pack splits it into calls down to the 2 latents of a sampling step.")
erase, inject, sched, n = w.insert_ours(3, 470, -720, note, (1100, -720), (640, 640), "Wan 2.1")
w.add_group("Noise Semantics (comfyui-noise-semantics)", (460, -760, 1290, 710))
w.finish(ROOT / "workflows/wan21_t2v_1.3B_noise_semantics.json")

# ------------------------------------------------------------------ WAN 2.2 14B T2V (high/low), no LoRA
# ComfyUI's own estimate of one latent at the template's 640x640x81 (latent [1, 16, 21, 80, 80]):
# model_base.memory_required for the WAN21 class at dim 5120 (memory_usage_factor 5120/2222), bf16 compute
# (the fp8_scaled weights are cast to it), PyTorch attention (ComfyUI's default on NVIDIA): 6.05 GiB. The
# same function on the CPU path (no flash attention) gives 45.4 GiB; benchmarks/gpu_check.py's split round
# prints the device's value ("WAN 2.2 14B 640x640x81").
WAN22_GIB_PER_LATENT = 6.05
# Probe time for the high-noise expert: probes on rectified flow sit at sigma = tau (patch.probe_sigma), and
# the high stage samples sigma 1.0 ... 0.89 (shift 8, switch at step 10 of 20), so tau 0.9.
WAN22_TAU = 0.9
w = WF(TPL / "comfyui_workflow_templates_media_video/templates/video_wan2_2_14B_t2v.json")
keep = {90, 92, 93, 94, 95, 96, 97, 98, 99, 91, 100, 101, 102, 104, 110, 62}
for nid in list(w.nodes):
    if nid not in keep:
        w.remove_node(nid)
dy = -750
for nid, nd in w.nodes.items():
    nd["mode"] = 0
    if nd["type"] == "ModelSamplingSD3":
        nd["widgets_values"] = [round(nd["widgets_values"][0], 6)]
    nd["pos"] = [nd["pos"][0], nd["pos"][1] + dy]
w.node(62)["pos"] = [-470, 40]
w.node(110)["pos"] = [40, 880]
md = w.node(62)["widgets_values"][0]
start, end = md.index("**LoRA**"), md.index("**VAE**")
w.node(62)["widgets_values"][0] = md[:start] + md[end:]
tree_lora = [ln for ln in w.node(62)["widgets_values"][0].splitlines() if "loras" in ln or "lightx2v" in ln]
for ln in tree_lora:
    w.node(62)["widgets_values"][0] = w.node(62)["widgets_values"][0].replace(ln + "\n", "")
w.d["groups"] = [g for g in w.d["groups"] if g["title"] in ("Step1 - Load models", "Step2 - Video size",
                                                              "Step3 Prompt", "Wan2.2 T2V fp8_scaled")
                 and g["bounding"][1] >= 700]
for g in w.d["groups"]:
    g["bounding"][1] += dy
note = ("Wan 2.2 14B text-to-video (high-noise + low-noise experts) with Noise Semantics.\n\n"
        "Wire: Load Diffusion Model (high noise) -> ModelSamplingSD3 (shift 8) -> Noise Semantic Erase -> Noise "
        "Semantic Inject -> KSampler (Advanced) high (add_noise enable, steps 0-10). Only the high-noise stage "
        "draws noise; the low-noise KSampler (Advanced) has add_noise disabled and continues the latent, so its "
        "model needs no node (a patched model would leave it untouched anyway).\n\n"
        + common_text("CFG 3.5: prompt and negative prompt", w, 3.5) +
        f"\nThe probe uses the high-noise expert, so it must sit where that model is the expert: the schedule here "
        f"is one probe at tau {WAN22_TAU} (sigma {WAN22_TAU} on this rectified-flow model, whatever the shift), inside "
        f"the range the high stage samples before the switch at step 10 of 20 (sigma 1.0 to "
        f"{8 * 0.5 / (1 + 7 * 0.5):.2f} with shift 8); the default tau 0.6 would ask the high-noise expert at a "
        f"noise level it does not sample. "
        "With the 4-step lightx2v LoRA variant of the official template, put the two nodes after the high-noise "
        "LoRA + ModelSamplingSD3 in the same way (cfg 1 there: the probes see the prompt only).\n\n"
        f"Memory: by ComfyUI's own estimate (what its sampler batches by; PyTorch attention, bf16) the 14B model "
        f"needs about {WAN22_GIB_PER_LATENT:.0f} GiB per latent at 640x640, 81 frames, and ComfyUI wants 1.5 times "
        f"that free. A sampling step sends 2 latents (prompt and negative); screening with 4 candidates sends 8 "
        f"when they fit, and where they do not, the pack splits them into calls down to 2 and retries on "
        f"out-of-memory: screening never needs more memory than the sampler, only more calls.")
erase, inject, sched, n = w.insert_ours(96, 660, -720, note, (1290, -720), (630, 660), "Wan 2.2",
                                        schedule={"tau_min": WAN22_TAU, "tau_max": WAN22_TAU})
w.add_group("Noise Semantics (comfyui-noise-semantics)", (650, -760, 1290, 740))
w.finish(ROOT / "workflows/wan22_14B_t2v_noise_semantics.json")

# ------------------------------------------------------------------ SD1.5 img2img edit (Inject on)
# The one bundled workflow with a node off its defaults: the img2img benchmark's niche
# (benchmarks/results/img2img.md). The numbers in the Note are copied from that file.
w = WF(TPL / "comfyui_workflow_templates_media_image/templates/image2image.json")
EDIT_STRENGTH, EDIT_DENOISE = 0.3, 0.4
ks = w.node(3)["widgets_values"]  # seed, control, steps, cfg, sampler, scheduler, denoise
ks[6] = EDIT_DENOISE
steps, cfg = ks[2], ks[3]
note = (
    f"SD1.5 img2img edit with Noise Semantics: Inject is ON here (strength {EDIT_STRENGTH}).\n\n"
    "Wire: Load Checkpoint (MODEL) -> Noise Semantic Erase -> Noise Semantic Inject -> KSampler; Load Image -> "
    "Scale Image to Total Pixels -> VAE Encode -> KSampler, as in the official template. Choose your own "
    "picture in Load Image and prompt for something it does not show (an edit).\n\n"
    f"- What it does: before sampling, Inject asks the model once what it predicts for your prompt from the "
    f"noise (one probe at tau 0.6, from the noise alone, not your picture) and moves the noise the sampler adds "
    f"to your picture toward that prediction: noise share {1 / (1 + EDIT_STRENGTH ** 2) ** 0.5:.2f}, prediction "
    f"share {EDIT_STRENGTH / (1 + EDIT_STRENGTH ** 2) ** 0.5:.2f}, still a unit Gaussian noise. strength 0 is "
    "exactly the stock sampler.\n"
    "- Evidence (the pack's img2img benchmark, benchmarks/results/img2img.md): 120 real digits as inputs, "
    "prompt = another digit, 20 euler steps, the pack's tiny digits models (an SD1.5-class eps UNet and a flow "
    "DiT), cfg 1 and 3. Against stock's own knob, denoise, at the same pixel distance to the input, Inject 0.3 "
    "followed the prompt more often in 15 of the 20 settings where stock had not already made every edit, was "
    "never below, and broke no edit stock made. At denoise 0.4, one probe: eps cfg 1, 0.617 of edits made "
    "against stock's 0.317 (+0.121 [+0.066, +0.180] above stock's denoise curve at the same distance); eps "
    "cfg 3, 1.000 against 0.967 (+0.020 [+0.005, +0.041]); flow cfg 3, 0.933 against 0.817 (+0.067 [+0.026, "
    "+0.107]); flow cfg 1, 0.208 against 0.117 (+0.025 [-0.013, +0.065], within noise). The price: outputs "
    "+0.008 to +0.021 further from the input (mean pixel distance on 0-1; stock's own at denoise 0.4: 0.09 to "
    "0.18). When the prompt was what the input shows (keep), or for inpainting, it kept the class as stock "
    "did (8 images fixed, 1 broken, over 24 settings of 120 inputs).\n"
    f"- Denoise {EDIT_DENOISE} instead of the template's 0.87: the gain is where stock alone does not yet make "
    "the edit reliably. At denoise 0.6 and above, at their usual cfg (3), stock already made every edit on "
    f"both digits models and Inject only moved the output further from the input; {EDIT_DENOISE} is the highest "
    "denoise measured where Inject was ahead at that cfg on both. If your edit does not take, raise denoise; "
    "once stock makes it alone, set strength to 0.\n"
    f"- Limits: tiny digits models, euler, cfg 1 and 3 only: not measured on SD1.5 itself, at this template's "
    f"cfg {cfg:g} and dpmpp_2m, or on photographs. Compare with strength 0 at the same seed.\n"
    f"- Cost: one probe at cfg {cfg:g}, {cost_text(w, cfg, candidates=1)}. The paper's five probes (connect the "
    f"Temporal Weight Schedule at its defaults) cost {probe_evals(1, 5, cfg)}; one probe's lead over stock's curve was within "
    "0.009 of five probes' in every edit setting of the eps model, up to 0.056 smaller on the flow model.\n"
    f"- Noise Semantic Erase, samples = {E['samples']}: off; it was never above stock on the pack's "
    "text-to-image benchmarks and was not part of the img2img one (the paper uses 4).\n"
    "- apply_to is 'every sampler' on Inject here: its default refines only samplers that start from pure "
    "noise, and this sampler starts at denoise " f"{EDIT_DENOISE}.\n"
    "- Change the sampler's seed as usual: same seed, same result (the extra draws are made on the CPU).")
erase, inject, sched, n = w.insert_ours(3, 280, -440, note, (920, -440), (660, 540), "SD1.5 img2img edit",
                                        inject={"strength": EDIT_STRENGTH, "apply_to": "every sampler"})
w.add_group("Noise Semantics (comfyui-noise-semantics)", (270, -480, 1320, 580))
w.finish(ROOT / "workflows/sd15_img2img_edit_noise_semantics.json")


# ================================================================== compare workflows
# <name>_compare.json for every file above: the stock sampler and the refined one side by side (same seed and
# settings), a Noise Semantic Preview sheet of the noise's own content, labelled outputs, and a Note with what
# the benchmarks measured (counted from benchmarks/results/frontier_*.json, so it follows a new benchmark run).

def widget_index(node, name):
    """Index of widget ``name`` in a saved node's widgets_values (hidden extras such as control_after_generate
    take a slot each, after their widget)."""
    i = 0
    for spec in wa.widget_specs(node["type"]):
        if spec.name == name:
            return i
        i += 1 + len(spec.extras)
    raise KeyError(f"{node['type']} has no widget {name}")


def set_widget(node, name, value, control=None):
    i = widget_index(node, name)
    node["widgets_values"][i] = value
    if control is not None:
        node["widgets_values"][i + 1] = control


def screening_counts():
    """Fixed / broken images against stock at the same cfg, for the frontier benchmarks' screening setting
    (4 candidates, one probe at tau 0.6; Inject's settings in the compare workflows), at each task's usual cfg
    and at its weak cfg, with the reseed control: stock against stock with each image's noise swapped for
    another noise of the same prompt (what a different seed alone changes; fixed = broken by construction).
    Digits: all prompts; compositional: the held-out prompts."""
    out = {}
    for task, usual, weak, split in (("digits", 3.0, 0.5, None), ("compositional", 4.5, 2.0, "heldout")):
        d = json.loads((ROOT / f"benchmarks/results/frontier_{task}.json").read_text())
        for kind, k in d["kinds"].items():
            rows = k.get("split_rows", {}).get(split) if split else None

            def ok(screen, cfg):
                for r in k["runs"]:
                    c = r["config"]
                    if c["cfg"] != cfg or c["inject"] != 0 or c["erase"] != 1:
                        continue
                    if (r["method"] == "stock") if not screen else (
                            c["candidates"] == 4 and c["schedule"] == [["probes", 1], ["tau_max", 0.6], ["tau_min", 0.6]]):
                        return r["ok"]["all"][rows[0]:rows[1]] if rows else r["ok"]["all"]
                raise KeyError(f"frontier_{task}.json {kind}: no {'screening' if screen else 'stock'} run at cfg {cfg}")
            for which, cfg in (("usual", usual), ("weak", weak)):
                st, sc = ok(False, cfg), ok(True, cfg)
                pairs = [(a, b) for ra, rb in zip(st, sc) for a, b in zip(ra, rb)]
                reseed = [(a, ra[(i + 1) % len(ra)]) for ra in st for i, a in enumerate(ra)]
                count = lambda p: (sum(1 for a, b in p if not a and b), sum(1 for a, b in p if a and not b), len(p))
                out[task, kind, which] = {"cfg": cfg, "screen": count(pairs), "reseed": count(reseed)}
    return out


COUNTS = screening_counts()


def measured(kind):
    """The Note's lines on what the benchmarks measured, for an eps or a flow model."""
    def fb(task, which):
        c = COUNTS[task, kind, which]
        (f, b, n), (rf, rb, _) = c["screen"], c["reseed"]
        return f"fixed {f} / broke {b} of {n}, against {rf} / {rb} for a different seed alone"
    du, dw = COUNTS["digits", kind, "usual"]["cfg"], COUNTS["digits", kind, "weak"]["cfg"]
    cu, cw = COUNTS["compositional", kind, "usual"]["cfg"], COUNTS["compositional", kind, "weak"]["cfg"]
    return (f"What the pack's benchmarks measured for this setting (screening, 4 candidates, one probe at tau 0.6, "
            f"on the project's tiny {kind} models; benchmarks/results/frontier_*.md):\n"
            f"- At the usual cfg: digits (cfg {du:g}) {fb('digits', 'usual')}; compositional held-out prompts "
            f"(cfg {cu:g}) {fb('compositional', 'usual')}. Within noise: at the cfg a model is normally run at, "
            f"expect about as many images broken as fixed.\n"
            f"- Below the usual cfg: digits (cfg {dw:g}) {fb('digits', 'weak')}; compositional (cfg {cw:g}) "
            f"{fb('compositional', 'weak')}. Where fixed clearly exceeds broken, screening beat raising CFG "
            f"(README, \"What it does, measured\").\n")


HOW_TO_READ = (
    "How to read it: one picture proves nothing, because any other seed changes the picture too. Set the latent's "
    "batch size to 16 and run once: 16 stock and 16 refined images, pair by pair (same position = same starting "
    "noise). Count the pairs where the refined image is right and the stock one wrong (fixed), and the reverse "
    "(broken). Then run the stock sampler once more at another seed and count the same way between the two stock "
    "runs: that is what a different noise alone does (the reseed control): it also fixes and breaks images, about "
    "as many of each. The pack helps your model at this setting only if fixed clearly exceeds broken; many changed "
    "images with fixed close to broken is what a reseed does too (README, \"Judge it on your own model\").\n")


def compare_note(title, stem, seed, cfg, kind, m, extra=""):
    return (f"COMPARE: stock vs Noise Semantics, {title}.\n\n"
            f"Two samplers with the same seed ({seed}, fixed), prompt and settings. REFINED (top): its MODEL goes "
            f"through Noise Semantic Inject with candidates {m} (noise screening: per image it probes {m} noises "
            f"once, at tau 0.6, and keeps the one whose own content already agrees best with the prompt; strength 0, "
            f"no injection). STOCK (bottom): the same model without the pack. Outputs: compare/{stem.removesuffix('_compare')}_refined and "
            f"compare/{stem.removesuffix('_compare')}_stock.\n\n"
            f"Noise Semantic Preview (right) probes the same {m} candidates with the same seed and cfg: 'prefers' is "
            f"what each noise becomes with the negative prompt alone (what the noise itself wants to show), 'asked' "
            f"the same with your prompt, both the model's blurry guess at tau 0.6, candidate 1 (the stock noise) "
            f"first. Its scores, on the node after a run, say which candidate screening keeps; Inject shows the same "
            f"choice after the run. If it keeps candidate 1, both outputs are the same picture. Change the seed in "
            f"all three nodes (stock, refined, Preview) together.\n\n"
            + HOW_TO_READ + "\n" + measured(kind) +
            f"- Cost: {2 * m} extra network evaluations per image in one batched call (the Preview costs as much "
            f"again); cfg {cfg:g} here.\n" + extra)


def make_compare(src, title, kind, m=4, note=None, extra=""):
    w = WF(src)
    stem = Path(src).stem.removesuffix("_noise_semantics") + "_compare"
    inject = next(n for n in w.d["nodes"] if n["type"] == "NoiseSemanticInject")
    erase = next(n for n in w.d["nodes"] if n["type"] == "NoiseSemanticErase")
    sched = next(n for n in w.d["nodes"] if n["type"] == "NoiseSemanticTemporalSchedule")
    set_widget(inject, "candidates", m)
    # the refined first-stage sampler: its MODEL comes from Inject
    sampler = next(nid for nid, n in w.nodes.items() if n["type"] in ("KSampler", "KSamplerAdvanced")
                   and w.model_source(nid)[0] == inject["id"])
    # everything downstream of it (second stage, decode, savers) is copied for the stock side
    down, todo = set(), [sampler]
    while todo:
        nid = todo.pop()
        for out in w.nodes[nid].get("outputs", []):
            for lid in out.get("links") or []:
                t = next(l for l in w.d["links"] if l[0] == lid)[3]
                if t not in down and t != sampler:
                    down.add(t)
                    todo.append(t)
    chain = [sampler] + sorted(down)
    ys = [w.nodes[n]["pos"][1] for n in chain]
    bottom = max(n["pos"][1] + n["size"][1] for n in w.d["nodes"])
    dy = bottom - min(ys) + 160
    copies = {}
    for nid in chain:
        n = copy.deepcopy(w.nodes[nid])
        new = w.add_node(n["type"], (n["pos"][0], n["pos"][1] + dy), n["size"], n["widgets_values"],
                         [{k: v for k, v in i.items() if k != "link"} for i in n.get("inputs", [])],
                         [{k: v for k, v in o.items() if k not in ("links", "slot_index")} for o in n.get("outputs", [])],
                         extra={k: n[k] for k in ("color", "bgcolor", "properties") if k in n})
        copies[nid] = new
    for l in list(w.d["links"]):
        lid, o, oslot, t, tslot, typ = l
        if t in copies:
            name = w.nodes[t]["inputs"][tslot]["name"]
            if t == sampler and name == "model":
                o, oslot = w.model_source(erase["id"])  # stock: the model before the pack's nodes
            w.connect(copies.get(o, o), oslot, copies[t], name)
    # labels: titles, and filename prefixes of the savers
    for nid in chain:
        for side, node in (("REFINED", w.nodes[nid]), ("STOCK", w.nodes[copies[nid]])):
            base = w.nodes[nid].get("title") or w.nodes[nid]["type"]
            node["title"] = f"{side}: {base}"
            if node["type"] in ("SaveImage", "SaveVideo", "SaveAnimatedWEBP"):
                prefix = f"compare/{stem.removesuffix('_compare')}_{side.lower()}"
                set_widget(node, "filename_prefix", ("video/" if node["type"] == "SaveVideo" else "") + prefix)
                node["title"] = f"{side}: saved as {prefix}"
    # the same fixed seed on both samplers (and the Preview): a randomized seed would drift apart between them
    seed_name = "seed" if w.nodes[sampler]["type"] == "KSampler" else "noise_seed"
    seed = w.nodes[sampler]["widgets_values"][widget_index(w.nodes[sampler], seed_name)]
    for nid in (sampler, copies[sampler]):
        set_widget(w.nodes[nid], seed_name, seed, "fixed")
    cfg = w.nodes[sampler]["widgets_values"][widget_index(w.nodes[sampler], "cfg")]
    # Noise Semantic Preview on the sampler's own inputs, decoded with the chain's VAE
    right = max(n["pos"][0] + n["size"][0] for n in w.d["nodes"]) + 120
    top = min(w.nodes[n]["pos"][1] for n in chain)
    preview_values = defaults("NoiseSemanticPreview")
    prev = w.add_node("NoiseSemanticPreview", (right, top), (320, 270), preview_values,
                      [{"name": "model", "type": "MODEL"}, {"name": "positive", "type": "CONDITIONING"},
                       {"name": "negative", "type": "CONDITIONING"}, {"name": "latent", "type": "LATENT"},
                       {"name": "schedule", "type": "NOISE_SEMANTIC_SCHEDULE", "shape": 7}],
                      [{"name": "prefers", "type": "LATENT"}, {"name": "asked", "type": "LATENT"},
                       {"name": "scores", "type": "STRING"}],
                      title="Noise Semantic Preview: what the noise wants", extra={**OUR_COLOR})
    w.nodes[prev]["properties"].update({"cnr_id": "comfyui-noise-semantics", "ver": VERSION})
    set_widget(w.nodes[prev], "seed", seed, "fixed")
    set_widget(w.nodes[prev], "cfg", cfg)
    set_widget(w.nodes[prev], "candidates", m)
    w.connect(erase["id"], 0, prev, "model")
    w.connect(sched["id"], 0, prev, "schedule")
    for a, b in (("positive", "positive"), ("negative", "negative"), ("latent_image", "latent")):
        o, oslot = w.model_source(sampler, a)
        w.connect(o, oslot, prev, b)
    decode = next(n for n in chain if w.nodes[n]["type"] == "VAEDecode")
    vae, vslot = w.model_source(decode, "vae")
    for i, (out, label) in enumerate((("prefers", "PREFERS: the noise with the negative prompt alone"),
                                      ("asked", "ASKED: the same noise with your prompt"))):
        y = top + i * 560
        dec = w.add_node("VAEDecode", (right + 360, y), (210, 46), [],
                         [{"name": "samples", "type": "LATENT"}, {"name": "vae", "type": "VAE"}],
                         [{"name": "IMAGE", "type": "IMAGE"}], title=f"decode {out}")
        show = w.add_node("PreviewImage", (right + 600, y), (520, 520), [], [{"name": "images", "type": "IMAGE"}],
                          title=f"{label} (candidate 1 = the stock noise first)")
        w.connect(prev, i, dec, "samples")
        w.connect(vae, vslot, dec, "vae")
        w.connect(dec, 0, show, "images")
    # the Note: the plain file's Note is about the defaults, which this file does not use
    old = next(n for n in w.d["nodes"] if n["type"] == "Note" and n.get("title", "").startswith("Noise Semantics - "))
    pos, size = old["pos"], old["size"]
    w.remove_node(old["id"])
    w.add_node("Note", pos, (max(size[0], 640), max(size[1], 760)),
               [note(seed, cfg) if note else compare_note(title, stem, seed, cfg, kind, m, extra)], title=f"How to read this comparison - {title}",
               extra={**NOTE_COLOR})
    lo = min(w.nodes[copies[n]]["pos"][1] for n in chain) - 60
    hi = max(w.nodes[copies[n]]["pos"][1] + w.nodes[copies[n]]["size"][1] for n in chain) + 40
    lx = min(w.nodes[copies[n]]["pos"][0] for n in chain) - 20
    rx = max(w.nodes[copies[n]]["pos"][0] + w.nodes[copies[n]]["size"][0] for n in chain) + 20
    w.add_group("STOCK: same seed, prompt and settings, no Noise Semantics nodes", (lx, lo, rx - lx, hi - lo),
                color="#444")
    w.add_group("Noise Semantic Preview: what the noise itself wants", (right - 20, top - 60, 1180, 1200))
    out = ROOT / "workflows" / f"{stem}.json"
    w.finish(out)
    return out


D["NoiseSemanticPreview"] = dict(zip([s.name for s in wa.widget_specs("NoiseSemanticPreview")],
                                     defaults("NoiseSemanticPreview")))
FLUX_CFG1 = ("- FLUX.1 dev samples at cfg 1 (its guidance is in the prompt, CLIPTextEncodeFlux): the usual-cfg case. "
             "Screening and the Preview also evaluate the zeroed negative, which sampling at cfg 1 skips.\n")
make_compare(ROOT / "workflows/sdxl_base_refiner_noise_semantics.json", "SDXL base + refiner", "eps")
make_compare(ROOT / "workflows/flux1_dev_noise_semantics.json", "FLUX.1 dev", "flow", extra=FLUX_CFG1)
make_compare(ROOT / "workflows/wan21_t2v_1.3B_noise_semantics.json", "Wan 2.1 T2V 1.3B", "flow")
make_compare(ROOT / "workflows/wan22_14B_t2v_noise_semantics.json", "Wan 2.2 14B T2V", "flow")


def edit_note(seed, cfg):
    stem = "sd15_img2img_edit_compare"
    return (
        f"COMPARE: stock vs Noise Semantic Inject, SD1.5 img2img edit.\n\n"
        f"Two KSamplers with the same seed ({seed}, fixed), picture, prompt, denoise {EDIT_DENOISE} and settings. "
        f"REFINED (top): its MODEL goes through Noise Semantic Inject at strength {EDIT_STRENGTH} (one probe at tau "
        f"0.6, from the noise alone: the noise the sampler adds to your picture moves toward what the model predicts "
        f"for your prompt). STOCK (bottom): the same model without the pack. Outputs: compare/{stem.removesuffix('_compare')}_refined and "
        f"compare/{stem.removesuffix('_compare')}_stock. Choose your own picture and prompt for something it does not show.\n\n"
        f"Noise Semantic Preview (right), same seed and cfg, one candidate (the noise the sampler draws): 'asked' is "
        f"what the model makes of that noise with your prompt at tau 0.6, the prediction Inject mixes in; 'prefers' "
        f"the same with the negative prompt alone (what the noise itself wants to show). Change the seed in all three "
        f"nodes together.\n\n"
        + HOW_TO_READ.replace("Set the latent's batch size to 16", "Put a Repeat Latent Batch (amount 16) after VAE "
                              "Encode").replace("is right", "made the edit").replace("wrong", "did not") + "\n"
        "What the pack's img2img benchmark measured (benchmarks/results/img2img.md; 120 real digits as inputs, prompt = "
        "another digit, the project's tiny eps and flow models, 20 euler steps): at denoise 0.4, one probe, Inject 0.3 "
        "made 0.617 of the edits against stock's 0.317 (eps, cfg 1), 1.000 against 0.967 (eps, cfg 3), 0.933 against "
        "0.817 (flow, cfg 3), 0.208 against 0.117 (flow, cfg 1), at +0.008 to +0.021 more pixel distance to the input; "
        "against stock's own knob (more denoise) at the same distance: +0.121, +0.020, +0.067 and +0.025 (the last "
        "within noise). When the prompt was what the input shows, or for inpainting, it kept "
        "the class as stock did (8 images fixed, 1 broken, over 24 settings of 120 inputs). Not measured on SD1.5 "
        f"itself, at this template's cfg {cfg:g} or on photographs.\n"
        f"- Cost: 2 network evaluations per image for Inject's probe (the Preview as much again).\n")


make_compare(ROOT / "workflows/sd15_img2img_edit_noise_semantics.json", "SD1.5 img2img edit", "eps", m=1,
             note=edit_note)
