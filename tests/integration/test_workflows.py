"""The drag-and-drop workflows in workflows/: valid against the LIVE ComfyUI node definitions, and
runnable end to end.

Static checks, per workflow (UI/litegraph format, version 0.4):
- graph bookkeeping: node and link ids unique, every link recorded on both ends, last ids;
- every node type is registered (frontend-only Note / MarkdownNote / Reroute / PrimitiveNode aside)
  and its saved output slots are the live RETURN_TYPES, or their start where a newer ComfyUI added
  outputs (docs/workflows.md: the files are saved for the oldest supported ComfyUI);
- every link joins compatible types (origin output type == target input type, or "*");
- every widget value is valid for the live definition: count (with the frontend's hidden
  "control after generate" values; trailing optional or advanced widgets a newer ComfyUI added
  take their defaults, as in the frontend), INT/FLOAT ranges, BOOLEAN, STRING, COMBO choices.
  Model file combos (ckpt/unet/clip/vae names) list the files in ComfyUI's model folders, which
  are empty on a test host; the check registers a scratch model folder holding zero-byte files
  named as the workflow's ``properties.models`` entries (name + directory, as in the official
  templates), so the value must match a declared file in the right folder, not just look like one;
- conversion to the API format (tests/workflow_api.py) passes ``execution.validate_prompt``:
  with no model files, the only errors are "value_not_in_list" for exactly those model-file
  inputs (what a user without the models would see); with the placeholder files, no error;
- the pack's nodes sit on the MODEL wire of every sampler that adds noise (Erase -> Inject with a
  Temporal Weight Schedule), after ModelSamplingSD3 where there is one, and on no sampler with
  add_noise disabled.

End to end, on the CPU, in ComfyUI's real executor (tests/host.py): the loaders and text encoders
are swapped for tiny stand-ins (tests/stand_ins.py); the latent size is shrunk (64 x 64 px, 5 video
frames; img2img: the image scale node's megapixels set to its minimum, on a 64 x 64 test picture put
in ComfyUI's input folder under the file name Load Image asks for, as a user uploads one);
everything else runs as shipped, steps included. A capture node before each sampler
records the noise the sampler receives: in the first stage, at the nodes' defaults, it must equal
ComfyUI's stock noise (comfy.sample.prepare_noise with the sampler's seed), and with Inject on differ
from it and from the erased-only noise (noise_semantics/core.py erase() of the stock noise); it must
be all zeros in a stage with add_noise disabled, and equal the stock noise when the pack's nodes
are bypassed (control run, bypassed the way the frontend does it: node mode 4). Output files must
exist, pictures at 8 x the sampled latent's size.

The img2img edit workflow is the one file with Inject on (strength 0.3, the benchmark's niche; every
other file keeps the nodes' defaults): its output must differ from the same graph at strength 0,
which samples from the stock noise.
"""
from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path

import pytest

import host
from noise_semantics import core

ROOT = host.ROOT

WORKFLOW_DIR = ROOT / "workflows"
WORKFLOWS = sorted(WORKFLOW_DIR.glob("*.json"))
# The model workflows; each also has a <name>_compare.json (stock and refined side by side, with a Noise
# Semantic Preview sheet), whose own end-to-end checks are in test_compare_workflows.py. The static checks
# here run on both.
PLAIN = [p for p in WORKFLOWS if not p.stem.endswith("_compare")]
FAMILY_BY_PREFIX = {"sdxl": "sdxl", "flux": "flux", "wan": "wan", "sd15": "sd15"}
SAMPLERS = {"KSampler", "KSamplerAdvanced"}
OURS = {"NoiseSemanticErase", "NoiseSemanticInject", "NoiseSemanticTemporalSchedule"}
EMPTY_LATENTS = {"EmptyLatentImage", "EmptySD3LatentImage", "EmptyHunyuanLatentVideo"}
TEST_SIZE, TEST_LENGTH = 64, 5  # pixels; video frames (-> 2 latent frames)
EDIT_WORKFLOW = WORKFLOW_DIR / "sd15_img2img_edit_noise_semantics.json"
EDIT_STRENGTH = 0.3  # benchmarks/results/img2img.md


def family_of(path: Path) -> str:
    for prefix, fam in FAMILY_BY_PREFIX.items():
        if path.name.startswith(prefix):
            return fam
    raise AssertionError(f"{path.name}: no model family for this file name (expected one of {list(FAMILY_BY_PREFIX)})")


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def live():
    nodes = host.boot()
    import torch

    import stand_ins
    import workflow_api
    # Tiny tensors: one thread avoids the thread-pool overhead that dominates on a shared CPU.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    stand_ins.register(nodes)
    pictures = _input_pictures()
    yield {"nodes": nodes, "wa": workflow_api, "si": stand_ins}
    for p in pictures:
        p.unlink()
    stand_ins.unregister(nodes)
    torch.set_num_threads(threads)


def _input_pictures() -> list[Path]:
    """A 64 x 64 test picture in ComfyUI's input folder under each name a workflow's Load Image asks
    for (the user's upload; the workflows ship none). Returns the files made."""
    import folder_paths
    from PIL import Image
    import numpy as np
    made = []
    for path in WORKFLOWS:
        for n in load(path)["nodes"]:
            if n["type"] != "LoadImage":
                continue
            f = Path(folder_paths.get_input_directory()) / n["widgets_values"][0]
            if not f.exists():
                rgb = np.random.default_rng(len(made)).integers(0, 256, (TEST_SIZE, TEST_SIZE, 3), dtype=np.uint8)
                Image.fromarray(rgb).save(f)
                made.append(f)
    return made


def test_workflows_present():
    names = {p.name for p in WORKFLOWS}
    assert {"sdxl_base_refiner_noise_semantics.json", "flux1_dev_noise_semantics.json",
            "wan21_t2v_1.3B_noise_semantics.json", "wan22_14B_t2v_noise_semantics.json",
            EDIT_WORKFLOW.name} <= names, names


# ---------------------------------------------------------------- model file placeholders

def declared_models(wf: dict) -> dict:
    """{(node_id, file name): directory} from the nodes' properties.models (official template style)."""
    out = {}
    for n in wf["nodes"]:
        for m in (n.get("properties") or {}).get("models", []):
            out[(n["id"], m["name"])] = m["directory"]
    return out


class ModelPlaceholders:
    """Zero-byte files named as a workflow's declared model files, in a scratch folder registered
    with folder_paths for the declared directory, so the loaders' file lists contain them."""

    def __init__(self, wf):
        import folder_paths
        self.fp = folder_paths
        self.tmp = tempfile.TemporaryDirectory(prefix="nsp-model-placeholders-")
        self.added = []
        for (_, name), directory in declared_models(wf).items():
            assert directory in folder_paths.folder_names_and_paths, \
                f"model directory {directory!r} is not a ComfyUI model folder"
            d = Path(self.tmp.name) / directory
            d.mkdir(exist_ok=True)
            (d / name).touch()
            if (directory, str(d)) not in self.added:
                folder_paths.add_model_folder_path(directory, str(d))
                self.added.append((directory, str(d)))

    def close(self):
        for directory, d in self.added:
            paths = self.fp.folder_names_and_paths[directory][0]
            if d in paths:
                paths.remove(d)
            self.fp.filename_list_cache.pop(directory, None)
        self.tmp.cleanup()


@pytest.fixture
def placeholders():
    made = []

    def make(wf):
        p = ModelPlaceholders(wf)
        made.append(p)
        return p
    yield make
    for p in made:
        p.close()


# ---------------------------------------------------------------- static checks

@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_graph_bookkeeping(path):
    wf = load(path)
    assert wf.get("version") == 0.4
    nodes = {}
    for n in wf["nodes"]:
        assert n["id"] not in nodes, f"duplicate node id {n['id']}"
        nodes[n["id"]] = n
        assert len(n["pos"]) == 2 and len(n["size"]) == 2
    links = {}
    for link in wf["links"]:
        lid, o, os_, t, ts, typ = link
        assert lid not in links, f"duplicate link id {lid}"
        links[lid] = link
        assert o in nodes and t in nodes, f"link {lid} joins missing nodes"
        assert lid in (nodes[o]["outputs"][os_].get("links") or []), f"link {lid} not on its origin's output"
        assert nodes[t]["inputs"][ts].get("link") == lid, f"link {lid} not on its target's input"
        assert nodes[o]["outputs"][os_]["type"] == typ, f"link {lid} type {typ} != origin output type"
    for n in wf["nodes"]:
        for i, inp in enumerate(n.get("inputs") or []):
            if inp.get("link") is not None:
                link = links.get(inp["link"])
                assert link and link[3] == n["id"] and link[4] == i, f"node {n['id']} input {inp['name']}: stale link"
        for s, out in enumerate(n.get("outputs") or []):
            for lid in out.get("links") or []:
                link = links.get(lid)
                assert link and link[1] == n["id"] and link[2] == s, f"node {n['id']} output {s}: stale link {lid}"
    assert wf["last_node_id"] >= max(nodes), "last_node_id below the largest node id"
    assert wf["last_link_id"] >= max(links), "last_link_id below the largest link id"
    orders = sorted(n["order"] for n in wf["nodes"])
    assert orders == list(range(len(orders)))
    for g in wf.get("groups", []):
        assert len(g["bounding"]) == 4 and g["title"]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_node_types_registered(live, path):
    wa, mapping = live["wa"], live["nodes"].NODE_CLASS_MAPPINGS
    wf = load(path)
    for n in wf["nodes"]:
        if n["type"] in wa.FRONTEND_ONLY:
            continue
        assert n["type"] in mapping, f"node {n['id']}: type {n['type']} is not registered"
        returned = wa.return_types(n["type"])
        ui = [o["type"] for o in n.get("outputs") or []]
        # On load the frontend rebuilds a node's output slots from the live definition, keeping each
        # saved slot's links (ComfyNode.configure zips the two lists, 1.32 and 1.49 alike): outputs a
        # newer ComfyUI added at the end appear (0.33's SaveImage / SaveVideo now return their
        # input), while a saved slot the live node lacks, or of another type, would stay stale.
        assert ui == returned[:len(ui)], \
            f"node {n['id']} ({n['type']}): outputs {ui} but the live node returns {returned}"
    assert any(n["type"] in ("Note", "MarkdownNote") and "Noise Semantic" in n["widgets_values"][0]
               for n in wf["nodes"]), "no Note explaining the pack's settings"


def _origin_type(wa, nodes, links, link):
    """(type, widget_spec_or_None) of what a link carries, through Reroutes."""
    o = nodes[link[1]]
    if o["type"] == "Reroute":
        up = o["inputs"][0].get("link")
        return _origin_type(wa, nodes, links, links[up]) if up is not None else ("*", None)
    if o["type"] == "PrimitiveNode":
        return "PRIMITIVE", None
    return wa.return_types(o["type"])[link[2]], None


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_links_join_compatible_types(live, path):
    wa = live["wa"]
    wf = load(path)
    nodes = {n["id"]: n for n in wf["nodes"]}
    links = {lk[0]: lk for lk in wf["links"]}
    for link in wf["links"]:
        lid, o, os_, t, ts, typ = link
        target = nodes[t]
        if target["type"] in wa.FRONTEND_ONLY:
            continue
        inp = target["inputs"][ts]
        name = (inp.get("widget") or {}).get("name") or inp["name"]
        defined = wa.all_inputs(target["type"])
        assert name in defined, f"link {lid}: {target['type']} has no input {name!r}"
        in_type = defined[name][0]
        out_type, _ = _origin_type(wa, nodes, links, link)
        if out_type == "PRIMITIVE":
            # A PrimitiveNode takes the type of the widget it feeds; its value is checked below.
            assert in_type in wa.WIDGET_TYPES, f"link {lid}: PrimitiveNode into non-widget input {name!r}"
            assert (inp.get("widget") or {}).get("name") == name
            continue
        assert out_type == in_type or "*" in (out_type, in_type), \
            f"link {lid}: {nodes[o]['type']} output {os_} ({out_type}) -> {target['type']}.{name} ({in_type})"


def _check_value(spec, value, where):
    if spec.type == "INT":
        assert isinstance(value, int) and not isinstance(value, bool), f"{where}: {value!r} is not an INT"
    elif spec.type == "FLOAT":
        assert isinstance(value, (int, float)) and not isinstance(value, bool), f"{where}: {value!r} not a FLOAT"
    elif spec.type == "BOOLEAN":
        assert isinstance(value, bool), f"{where}: {value!r} is not a BOOLEAN"
    elif spec.type == "STRING":
        assert isinstance(value, str), f"{where}: {value!r} is not a STRING"
    elif spec.type == "COMBO":
        assert value in spec.choices, f"{where}: {value!r} not in {spec.choices}"
    if spec.type in ("INT", "FLOAT"):
        lo, hi = spec.options.get("min"), spec.options.get("max")
        assert lo is None or value >= lo, f"{where}: {value} < min {lo}"
        assert hi is None or value <= hi, f"{where}: {value} > max {hi}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_widget_values_valid(live, placeholders, path):
    wa = live["wa"]
    wf = load(path)
    placeholders(wf)  # model file combos now list the declared files (see module docstring)
    nodes = {n["id"]: n for n in wf["nodes"]}
    links = {lk[0]: lk for lk in wf["links"]}
    for n in wf["nodes"]:
        if n["type"] in wa.FRONTEND_ONLY:
            continue
        for spec, value, extras in wa.bind_widgets(n):  # raises when the values do not fit the live node
            where = f"node {n['id']} ({n['type']}).{spec.name}"
            _check_value(spec, value, where)
            assert set(extras) == set(spec.extras), where
            if "control_after_generate" in extras:
                v = extras["control_after_generate"]
                assert v in wa.CONTROL_VALUES, f"{where}: control_after_generate {v!r}"
        # Values arriving from PrimitiveNodes must be valid for the widget they feed.
        for inp in n.get("inputs") or []:
            lid = inp.get("link")
            if lid is None or nodes[links[lid][1]]["type"] != "PrimitiveNode":
                continue
            spec = next(s for s in wa.widget_specs(n["type"]) if s.name == inp["widget"]["name"])
            _check_value(spec, nodes[links[lid][1]]["widgets_values"][0], f"PrimitiveNode -> {n['id']}.{spec.name}")


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_model_files_declared(live, path):
    """Every model file a loader asks for is declared with a download URL and its folder."""
    import folder_paths
    wa = live["wa"]
    wf = load(path)
    declared = {}
    for n in wf["nodes"]:
        for m in (n.get("properties") or {}).get("models", []):
            assert m["url"].startswith("https://huggingface.co/"), m
            assert m["directory"] in folder_paths.folder_names_and_paths, m
            declared[(n["id"], m["name"])] = m["directory"]
    exts = tuple(folder_paths.supported_pt_extensions)
    for n in wf["nodes"]:
        if n["type"] in wa.FRONTEND_ONLY:
            continue
        for name, v in wa.widget_values(n).items():
            if isinstance(v, str) and v.endswith(exts):
                assert (n["id"], v) in declared, f"node {n['id']} ({n['type']}).{name} = {v!r} is not declared"


def _validate(prompt):
    import asyncio

    import execution
    return asyncio.run(execution.validate_prompt("test-workflows", prompt, None))


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_api_prompt_validates(live, placeholders, path):
    wa = live["wa"]
    wf = load(path)
    prompt = wa.to_api(wf)
    nodes = {n["id"]: n for n in wf["nodes"]}
    import folder_paths
    declared = declared_models(wf)
    # (node id, input name) -> whether this ComfyUI has the file (normally not, on a test host)
    model_inputs = {(str(nid), name): v in folder_paths.get_filename_list(declared[(nid, v)])
                    for nid, n in nodes.items() if n["type"] not in wa.FRONTEND_ONLY and n.get("mode", 0) == 0
                    for name, v in wa.widget_values(n).items() if (nid, v) in declared}
    assert model_inputs, "no model file inputs found"

    # 1. As on this ComfyUI (no model files): exactly the missing files are reported, nothing else.
    ok, error, outputs, node_errors = _validate(prompt)
    reported = set()
    for nid, info in node_errors.items():
        for e in info["errors"]:
            assert e["type"] == "value_not_in_list", f"node {nid}: unexpected validation error {e}"
            reported.add((nid, e["extra_info"]["input_name"]))
    missing = {k for k, present in model_inputs.items() if not present}
    assert reported == missing, f"reported {sorted(reported)}, expected the missing model files {sorted(missing)}"
    assert ok == (not missing)

    # 2. With the declared files present (zero-byte placeholders), the prompt is valid as a whole.
    placeholders(wf)
    ok, error, outputs, node_errors = _validate(prompt)
    assert ok, f"{error} {json.dumps(node_errors, default=str)[:2000]}"
    assert not node_errors
    out_types = {prompt[o]["class_type"] for o in outputs}
    assert out_types & {"SaveImage", "SaveVideo"}, out_types


def _upstream_models(prompt, sampler_id):
    """class_types along the MODEL wire of a sampler, nearest first."""
    chain, cur = [], prompt[sampler_id]["inputs"]["model"]
    while isinstance(cur, list):
        node = prompt[cur[0]]
        chain.append((cur[0], node["class_type"]))
        cur = node["inputs"].get("model")
    return chain


def adds_noise(node) -> bool:
    return node["class_type"] == "KSampler" or node["inputs"].get("add_noise") == "enable"


@pytest.mark.parametrize("path", PLAIN, ids=lambda p: p.stem)
def test_pack_nodes_on_model_wire(live, path):
    wa = live["wa"]
    prompt = wa.to_api(load(path))
    samplers = [k for k, v in prompt.items() if v["class_type"] in SAMPLERS]
    assert samplers
    for sid in samplers:
        chain = [c for _, c in _upstream_models(prompt, sid)]
        if adds_noise(prompt[sid]):
            assert chain[:2] == ["NoiseSemanticInject", "NoiseSemanticErase"], f"sampler {sid}: MODEL wire {chain}"
            inject = prompt[_upstream_models(prompt, sid)[0][0]]
            sched = inject["inputs"].get("schedule")
            assert isinstance(sched, list) and prompt[sched[0]]["class_type"] == "NoiseSemanticTemporalSchedule"
            if "ModelSamplingSD3" in chain:
                assert chain.index("ModelSamplingSD3") > chain.index("NoiseSemanticErase"), chain
        else:
            assert not OURS & set(chain), f"add_noise disabled sampler {sid} has the pack's nodes: {chain}"
    # Two-stage graphs (SDXL refiner, Wan 2.2 high/low): the second stage adds no noise.
    assert any(not adds_noise(prompt[s]) for s in samplers) == (len(samplers) > 1)


# ---------------------------------------------------------------- converter unit checks

def test_converter_frontend_rules(live):
    """Reroute, PrimitiveNode, bypass (mode 4), mute (mode 2), Note, control_after_generate."""
    wa = live["wa"]
    wf = {"version": 0.4, "last_node_id": 8, "last_link_id": 5, "nodes": [
        {"id": 1, "type": "CheckpointLoaderSimple", "mode": 0, "inputs": [],
         "outputs": [{"name": "MODEL", "type": "MODEL", "links": [1]}, {"name": "CLIP", "type": "CLIP", "links": []},
                     {"name": "VAE", "type": "VAE", "links": []}], "widgets_values": ["a.safetensors"]},
        {"id": 2, "type": "Reroute", "mode": 0, "inputs": [{"name": "", "type": "*", "link": 1}],
         "outputs": [{"name": "", "type": "MODEL", "links": [2]}], "widgets_values": []},
        {"id": 3, "type": "NoiseSemanticErase", "mode": 4, "inputs": [{"name": "model", "type": "MODEL", "link": 2}],
         "outputs": [{"name": "MODEL", "type": "MODEL", "links": [3]}], "widgets_values": [4, True]},
        {"id": 4, "type": "KSampler", "mode": 0,
         "inputs": [{"name": "model", "type": "MODEL", "link": 3},
                    {"name": "seed", "type": "INT", "widget": {"name": "seed"}, "link": 4}],
         "outputs": [{"name": "LATENT", "type": "LATENT", "links": []}],
         "widgets_values": [5, "randomize", 12, 6.5, "euler", "normal", 0.75]},
        {"id": 5, "type": "PrimitiveNode", "mode": 0, "inputs": [],
         "outputs": [{"name": "INT", "type": "INT", "widget": {"name": "seed"}, "links": [4]}],
         "widgets_values": [1234, "fixed"]},
        {"id": 6, "type": "Note", "mode": 0, "inputs": [], "outputs": [], "widgets_values": ["hello"]},
        {"id": 7, "type": "NoiseSemanticInject", "mode": 2, "inputs": [{"name": "model", "type": "MODEL", "link": None}],
         "outputs": [{"name": "MODEL", "type": "MODEL", "links": []}],
         "widgets_values": [s.options.get("default") for s in wa.widget_specs("NoiseSemanticInject")]},
    ], "links": [[1, 1, 0, 2, 0, "MODEL"], [2, 2, 0, 3, 0, "MODEL"], [3, 3, 0, 4, 0, "MODEL"],
                 [4, 5, 0, 4, 1, "INT"]]}
    api = wa.to_api(wf)
    assert set(api) == {"1", "4"}
    k = api["4"]["inputs"]
    assert k["model"] == ["1", 0]                    # through the bypassed Erase and the Reroute
    assert k["seed"] == 1234                         # from the PrimitiveNode, not the widget's 5
    assert (k["steps"], k["cfg"], k["sampler_name"], k["scheduler"], k["denoise"]) == (12, 6.5, "euler", "normal", 0.75)
    assert "randomize" not in k.values()             # the hidden control value never reaches the API
    bad = copy.deepcopy(wf)
    bad["nodes"][3]["widgets_values"] = [5, 12, 6.5, "euler", "normal", 0.75]  # control value missing
    with pytest.raises(wa.WorkflowError, match="control_after_generate"):
        wa.to_api(bad)


def test_converter_fills_widgets_a_newer_comfyui_added(live):
    """A workflow saved before a node gained a trailing optional widget (or a required one flagged
    advanced) loads with that widget's default (the frontend's behaviour); any other missing value,
    or a surplus value, is an error."""
    wa = live["wa"]

    class Grown:  # CreateVideo's shape: fps, then (0.33) an optional bit_depth
        RETURN_TYPES = ("VIDEO",)

        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {"images": ("IMAGE",), "fps": ("FLOAT", {"default": 30.0})},
                    "optional": {"bit_depth": (["8-bit", "10-bit"], {"default": "8-bit"})}}

    defs = type("LiveNodes", (), {"NODE_CLASS_MAPPINGS": {"Grown": Grown}})
    node = {"id": 9, "type": "Grown", "widgets_values": [16]}
    assert wa.widget_values(node, defs) == {"fps": 16, "bit_depth": "8-bit"}
    assert wa.widget_values(dict(node, widgets_values=[16, "10-bit"]), defs) == {"fps": 16, "bit_depth": "10-bit"}
    for stale in ([], [16, "10-bit", 1]):
        with pytest.raises(wa.WorkflowError, match=r"\[fps, bit_depth \(optional\)\]"):
            wa.widget_values(dict(node, widgets_values=stale), defs)

    def scaler(**after):  # ImageScaleToTotalPixels' shape: 0.33 added a required widget flagged advanced
        class Scaled:
            RETURN_TYPES = ("IMAGE",)

            @classmethod
            def INPUT_TYPES(cls):
                return {"required": {"image": ("IMAGE",), "megapixels": ("FLOAT", {"default": 1.0}),
                                     "resolution_steps": ("INT", {"default": 1, "advanced": True}), **after}}
        return type("LiveNodes", (), {"NODE_CLASS_MAPPINGS": {"Scaled": Scaled}})

    node = {"id": 4, "type": "Scaled", "widgets_values": [0.5]}
    assert wa.widget_values(node, scaler()) == {"megapixels": 0.5, "resolution_steps": 1}
    assert wa.widget_values(dict(node, widgets_values=[0.5, 8]), scaler()) == \
        {"megapixels": 0.5, "resolution_steps": 8}
    with pytest.raises(wa.WorkflowError):  # a required widget without the flag after it: stale
        wa.widget_values(node, scaler(mode=(["a", "b"], {})))


def test_converter_expands_dynamic_combos(live):
    """0.33's V3 dynamic combo (SaveVideo's format -> codec): the chosen option's widgets follow
    the combo, named "<combo>.<input>"; a hidden optional combo added later takes its first key."""
    wa = live["wa"]

    def dyn(options, **extra):
        return (wa.DYNAMIC_COMBO, {"options": [{"key": k, "inputs": v} for k, v in options.items()], **extra})

    codec = dyn({"auto": {}, "h264": {"required": {"crf": ("FLOAT", {"default": 23.0, "min": 0.0, "max": 51.0})}}})

    class Saver:
        RETURN_TYPES = ()

        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {"video": ("VIDEO",), "prefix": ("STRING", {"default": "v"}),
                                 "format": dyn({"auto": {"required": {"codec": codec}}, "webm": {}})},
                    "optional": {"codec": dyn({"auto": {}, "h264": {}}, hidden=True)}}

    defs = type("LiveNodes", (), {"NODE_CLASS_MAPPINGS": {"Saver": Saver}})
    node = {"id": 3, "type": "Saver", "widgets_values": ["v", "auto", "h264", 20.0]}
    assert wa.widget_values(node, defs) == {"prefix": "v", "format": "auto", "format.codec": "h264",
                                            "format.codec.crf": 20.0, "codec": "auto"}
    assert wa.widget_values(dict(node, widgets_values=["v", "webm", "h264"]), defs) == \
        {"prefix": "v", "format": "webm", "codec": "h264"}
    with pytest.raises(wa.WorkflowError):  # the h264 option's crf has no value
        wa.widget_values(dict(node, widgets_values=["v", "auto", "h264"]), defs)


# ---------------------------------------------------------------- end to end

def _shrink_latents(prompt):
    """Empty latents to TEST_SIZE; img2img: the scale node before VAE Encode to its smallest setting
    (0.01 megapixels: the 64 x 64 test picture becomes 102 x 102, encoded as a 12 x 12 latent)."""
    found = []
    for nid, node in prompt.items():
        if node["class_type"] in EMPTY_LATENTS:
            node["inputs"].update(width=TEST_SIZE, height=TEST_SIZE, batch_size=1)
            if "length" in node["inputs"]:
                node["inputs"]["length"] = TEST_LENGTH
            found.append(nid)
        elif node["class_type"] == "ImageScaleToTotalPixels":
            node["inputs"]["megapixels"] = 0.01
            found.append(nid)
    assert found, "no empty latent or image scale node to shrink"
    return prompt


def _saved_files(history):
    import folder_paths
    files = []
    for nid, ui in history["outputs"].items():
        for key, items in ui.items():
            for it in items if isinstance(items, (list, tuple)) else []:
                if isinstance(it, dict) and "filename" in it:
                    base = folder_paths.get_directory_by_type(it.get("type", "output"))
                    files.append(Path(base) / it.get("subfolder", "") / it["filename"])
    return files


def _run(live, prompt):
    si = live["si"]
    si.CAPTURED.clear()
    si.EVALS.clear()
    history = host.run_prompt(prompt)
    return history, {k: list(v) for k, v in si.CAPTURED.items()}


def _prepare(live, wf, family):
    wa, si = live["wa"], live["si"]
    prompt = _shrink_latents(wa.to_api(wf))
    prompt, swapped = si.swap_heavy_nodes(prompt, family)
    assert swapped, "nothing swapped"
    samplers = sorted((k for k, v in prompt.items() if v["class_type"] in SAMPLERS), key=int)
    next_id = max(int(k) for k in prompt) + 1
    for i, sid in enumerate(samplers):
        prompt = si.insert_capture(prompt, sid, f"sampler-{sid}", str(next_id + i))
    return prompt, samplers


@pytest.mark.parametrize("path", PLAIN, ids=lambda p: p.stem)
def test_runs_end_to_end(live, path):
    import av
    import comfy.sample
    import torch
    from PIL import Image

    family = family_of(path)
    wf = load(path)
    prompt, samplers = _prepare(live, wf, family)
    swapped_types = {v["class_type"] for v in prompt.values()}
    assert not swapped_types & {"CheckpointLoaderSimple", "UNETLoader", "CLIPLoader", "DualCLIPLoader",
                                "VAELoader", "CLIPTextEncode", "CLIPTextEncodeFlux"}
    assert OURS <= swapped_types

    history, captured = _run(live, prompt)

    # Outputs written.
    files = _saved_files(history)
    want = ".mp4" if any(v["class_type"] == "SaveVideo" for v in prompt.values()) else ".png"
    assert any(f.suffix == want for f in files), f"no {want} output reported: {history['outputs']}"
    # Pictures: 8 x the latent the first sampler got (the VAE's factor): TEST_SIZE from an empty latent.
    lat = captured[f"sampler-{samplers[0]}"][0]["latent_image"]
    size = (8 * lat.shape[-1], 8 * lat.shape[-2])
    if EMPTY_LATENTS & swapped_types:
        assert size == (TEST_SIZE, TEST_SIZE), size
    for f in files:
        assert f.is_file() and f.stat().st_size > 0, f
        if f.suffix == ".png":
            assert Image.open(f).size == size
        else:
            with av.open(str(f)) as c:
                frames = [fr for fr in c.decode(video=0)]
            assert len(frames) == TEST_LENGTH and (frames[0].width, frames[0].height) == (TEST_SIZE, TEST_SIZE)

    # The noise each sampler received.
    def stock(rec):
        return comfy.sample.prepare_noise(torch.zeros_like(rec["latent_image"]), int(rec["seed"]))

    for sid in samplers:
        recs = captured.get(f"sampler-{sid}")
        assert recs and len(recs) == 1, f"sampler {sid} did not sample exactly once"
        rec = recs[0]
        noise = rec["noise"]
        assert torch.isfinite(noise).all()
        if adds_noise(prompt[sid]):
            assert int(rec["seed"]) == int(prompt[sid]["inputs"].get("seed", prompt[sid]["inputs"].get("noise_seed")))
            ref = stock(rec)
            assert noise.shape == ref.shape
            assert abs(float(noise.std()) - 1.0) < 0.1, "refined noise is not unit variance"
            # The pack's chain acted as its saved settings say: each screening candidate (the stock noise
            # first) erased as the core computes it; with strength 0 the sampler starts from one of
            # them, with strength > 0 from an injected noise that is none of them.
            chain = dict((c, i) for i, c in _upstream_models(prompt, sid))
            er = prompt[chain["NoiseSemanticErase"]]["inputs"]
            inj = prompt[chain["NoiseSemanticInject"]]["inputs"]
            cands = [core.erase(c, int(rec["seed"]), er["samples"], er["restandardize"])
                     for c in core.candidate_noises(ref, int(rec["seed"]), inj.get("candidates", 1))]
            hits = [torch.allclose(noise, c, atol=1e-5) for c in cands]
            if inj["strength"] == 0 and len(cands) == 1:  # the defaults: every step off, the stock noise
                assert torch.equal(noise, ref), f"sampler {sid}: the defaults changed the noise"
            elif inj["strength"] == 0:
                assert any(hits), f"sampler {sid} starts from none of the screened candidates"
            else:
                assert not any(hits), f"sampler {sid}: no injection on top of erasure and screening"
        else:
            assert torch.count_nonzero(noise) == 0, f"add_noise-disabled sampler {sid} received non-zero noise"

    # Control: the same graph with the pack's nodes bypassed in the UI (mode 4): stock noise.
    ctrl_wf = copy.deepcopy(wf)
    for n in ctrl_wf["nodes"]:
        if n["type"] in OURS:
            n["mode"] = 4
    ctrl, _ = _prepare(live, ctrl_wf, family)
    assert not OURS & {v["class_type"] for v in ctrl.values()}
    _, captured = _run(live, ctrl)
    for sid in samplers:
        rec = captured[f"sampler-{sid}"][0]
        if adds_noise(prompt[sid]):
            assert torch.equal(rec["noise"], stock(rec)), f"control: sampler {sid} did not get the stock noise"
        else:
            assert torch.count_nonzero(rec["noise"]) == 0


# ---------------------------------------------------------------- the img2img edit workflow

def _inject_strength(wa, wf):
    return [wa.widget_values(n)["strength"] for n in wf["nodes"] if n["type"] == "NoiseSemanticInject"]


def test_only_the_edit_workflow_turns_inject_on(live):
    """The measured niche (README, "Img2img and inpainting") ships Inject 0.3 at an img2img denoise in
    the benchmark's range; every other workflow keeps the nodes' defaults, which change nothing."""
    wa = live["wa"]
    for path in PLAIN:
        wf = load(path)
        if path == EDIT_WORKFLOW:
            assert _inject_strength(wa, wf) == [EDIT_STRENGTH]
            (ks,) = [wa.widget_values(n) for n in wf["nodes"] if n["type"] == "KSampler"]
            assert 0.3 <= ks["denoise"] <= 0.6, ks  # the denoise values Inject was measured at
            assert any(n["type"] == "VAEEncode" for n in wf["nodes"])
        else:
            assert _inject_strength(wa, wf) == [0.0], path.name


def test_edit_workflow_output_differs_from_strength_0(live):
    """The executor's picture with the shipped strength differs from the same graph at strength 0,
    and strength 0 samples from ComfyUI's stock noise (so the difference is the injection)."""
    import comfy.sample
    import numpy as np
    import torch
    from PIL import Image

    wa = live["wa"]
    wf = load(EDIT_WORKFLOW)
    pictures, noises = {}, {}
    for strength in (EDIT_STRENGTH, 0.0):
        g = copy.deepcopy(wf)
        (inj,) = [n for n in g["nodes"] if n["type"] == "NoiseSemanticInject"]
        inj["widgets_values"][0] = strength
        assert wa.widget_values(inj)["strength"] == strength
        prompt, samplers = _prepare(live, g, family_of(EDIT_WORKFLOW))
        history, captured = _run(live, prompt)
        (png,) = [f for f in _saved_files(history) if f.suffix == ".png"]
        pictures[strength] = np.asarray(Image.open(png), dtype=np.int16)
        (sid,) = samplers
        rec = captured[f"sampler-{sid}"][0]
        noises[strength] = (rec["noise"], comfy.sample.prepare_noise(torch.zeros_like(rec["latent_image"]),
                                                                      int(rec["seed"])))
    noise0, stock0 = noises[0.0]
    assert torch.equal(noise0, stock0), "strength 0 did not sample from the stock noise"
    noise, stock = noises[EDIT_STRENGTH]
    assert torch.equal(stock, stock0) and not torch.allclose(noise, stock, atol=1e-3)
    diff = np.abs(pictures[EDIT_STRENGTH] - pictures[0.0])
    assert diff.max() > 0, "the picture at strength 0.3 equals the one at strength 0"


# ---------------------------------------------------------------- the Notes' cost numbers

@pytest.mark.parametrize("path", [p for p in WORKFLOWS if not p.stem.endswith("_compare")], ids=lambda p: p.stem)
def test_note_cost_is_what_the_executor_counts(live, path):
    """The cost line of each Note (scripts/make_workflows.py writes it from a formula) matches the
    network evaluations counted in the executor: the workflow as the Note prices it (4 candidates; the
    edit workflow as shipped) minus the same graph with the pack's nodes bypassed."""
    wa = live["wa"]
    wf = load(path)
    priced = copy.deepcopy(wf)
    (inj,) = [n for n in priced["nodes"] if n["type"] == "NoiseSemanticInject"]
    if path != EDIT_WORKFLOW:
        names = [s.name for s in wa.widget_specs("NoiseSemanticInject")]
        inj["widgets_values"][names.index("candidates")] = 4
    stock = copy.deepcopy(wf)
    for n in stock["nodes"]:
        if n["type"] in OURS:
            n["mode"] = 4
    counts = []
    for g in (priced, stock):
        prompt, _ = _prepare(live, g, family_of(path))
        _run(live, prompt)
        counts.append(sum(live["si"].EVALS.values()))
    extra, run = counts[0] - counts[1], counts[1]
    assert extra > 0
    (note,) = [n["widgets_values"][0] for n in wf["nodes"] if n["type"] == "Note" and "Noise Semantics" in n.get(
        "title", "")]
    pct = round(100 * extra / run)
    want = f"{extra} network evaluations per image on top of the sampling's {run}: +{pct} %"
    assert want in note, (want, [ln for ln in note.splitlines() if "Cost" in ln])
    # the same numbers where the docs quote them (README, docs/workflows.md; FLUX also on Inject's help page)
    root = WORKFLOW_DIR.parent
    docs = ["README.md", "docs/workflows.md"] + (["js/docs/NoiseSemanticInject.md"] if family_of(path) == "flux" else [])
    for doc in docs:
        text = " ".join((root / doc).read_text(encoding="utf-8").split())
        assert f"+{extra} of {run}" in text and f"+{pct} %" in text, (doc, extra, run, pct)
