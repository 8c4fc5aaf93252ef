"""The pack's main job on its embedded demo models (README set-up command 1, smaller): the shipped
digits eps UNet and flow DiT through the real executor, the real KSampler and the pack's nodes,
plus the compositional model's grid. Checks machinery: the outputs are written, every variant was
sampled, and the refined variants changed the images. What they achieve is reported by the demo
and the frontier benchmark (benchmarks/results/frontier_*.md), never asserted here."""
import json
import subprocess
import sys

import host


def test_demo_writes_grids_tables_and_runs_every_variant(tmp_path):
    out = subprocess.run([sys.executable, str(host.ROOT / "demo" / "run_demo.py"), "--kinds", "eps", "flow",
                          "--cfgs", "0.5", "--batch", "8", "--threads", "1", "--out", str(tmp_path)],
                         check=True, capture_output=True, text=True, timeout=900)
    # the terminal gets the demo's own few lines; ComfyUI's log (start-up report, model loads) its file
    lines = (out.stdout + out.stderr).strip().splitlines()
    assert len(lines) <= 8 and lines[-1].startswith("demo done in"), lines
    assert not [ln for ln in lines if "WARNING" in ln or "Traceback" in ln or "leak" in ln], lines
    assert "Requested to load" in (tmp_path / "comfyui.log").read_text()
    for kind in ("eps", "flow"):
        assert (tmp_path / f"grid_{kind}_cfg0.5.png").stat().st_size > 1000
        prompt = json.loads((tmp_path / f"prompt_{kind}_cfg0.5.json").read_text())
        ours = {k: v for k, v in prompt.items() if v["class_type"] == "NoiseSemanticInject"}
        assert {v["inputs"]["candidates"] for v in ours.values()} == {4, 1}  # screening, and the paper's
        assert "schedule" not in prompt["inject"]["inputs"]
    assert list(tmp_path.glob("grid_compositional_*.png"))
    rows = {}
    for line in (tmp_path / "alignment.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) > 4 and cells[0].split(":")[0] in ("eps", "flow") and cells[1] == "0.5":
            rows[(cells[0].split(":")[0], cells[2])] = cells[3:]
    for kind in ("eps", "flow"):
        variants = {v for k, v in rows if k == kind}
        assert variants == {"stock KSampler", "screening: Inject candidates 4", "paper: Erase 4 + Inject 0.3"}, rows


# --------------------------------------------------------------------------- the served demo

sys.path.append(str(host.ROOT / "demo"))  # appended: demo/ has generic module names (models)
import served_base  # noqa: E402

DEMO_WORKFLOW = host.ROOT / "demo" / "workflows" / "noise_semantics_demo_digits.json"


def test_served_base_layout(tmp_path):
    """scripts/start.sh's base directory: the pack and the demo's node folder side by side in
    custom_nodes/, the demo workflow in the user's list; a copy the user edited survives a restart,
    an unedited one follows the shipped file."""
    base = served_base.prepare(tmp_path)
    nodes_dir = base / "custom_nodes"
    assert (nodes_dir / served_base.PACK_LINK).resolve() == host.ROOT
    assert (nodes_dir / served_base.DEMO_LINK).resolve() == host.ROOT / "demo" / "comfyui_nsp_demo"
    assert (nodes_dir / served_base.DEMO_LINK / "__init__.py").exists()
    copy = base / "user" / "default" / "workflows" / DEMO_WORKFLOW.name
    assert copy.read_bytes() == DEMO_WORKFLOW.read_bytes()
    # the shipped file changed since (simulated: the copy is an older demo the script wrote)
    old = b'{"old": true}\n'
    copy.write_bytes(old)
    stamp = base / "user" / served_base.STAMP
    stamp.write_text(json.dumps({DEMO_WORKFLOW.name: served_base._sha(old)}))
    served_base.prepare(base)
    assert copy.read_bytes() == DEMO_WORKFLOW.read_bytes()
    # the user saved their own edit under that name: kept
    copy.write_bytes(b'{"mine": true}\n')
    served_base.prepare(base)
    assert copy.read_bytes() == b'{"mine": true}\n'
    # the user's settings: the demo's added where unset, the user's own kept
    settings = base / "user" / "default" / "comfy.settings.json"
    assert json.loads(settings.read_text()) == served_base.SETTINGS
    settings.write_text(json.dumps({"Comfy.TutorialCompleted": False, "Comfy.Minimap.Visible": False}))
    served_base.prepare(base)
    assert json.loads(settings.read_text()) == {"Comfy.TutorialCompleted": False, "Comfy.Minimap.Visible": False}
    # the first page's link names the demo folder's example workflow, the shipped file
    assert served_base.FIRST_PAGE == f"/?template={DEMO_WORKFLOW.stem}&source={served_base.DEMO_LINK}"
    example = nodes_dir / served_base.DEMO_LINK / "example_workflows" / DEMO_WORKFLOW.name
    assert example.read_bytes() == DEMO_WORKFLOW.read_bytes()
    # something that is not our link where the demo folder goes: refused, not replaced
    (nodes_dir / served_base.DEMO_LINK).unlink()
    (nodes_dir / served_base.DEMO_LINK).mkdir()
    try:
        served_base.prepare(base)
        raise AssertionError("prepare() replaced a folder it did not make")
    except FileExistsError as e:
        assert served_base.DEMO_LINK in str(e)


def test_demo_workflow_matches_live_nodes():
    """The demo workflow (demo/make_workflow.py) against the live definitions, with the demo's node
    folder loaded by ComfyUI's own custom-node loader: every widget value binds, the API prompt passes
    ComfyUI's validation, and the graph is the comparison it claims: two KSamplers with the same
    settings, the refined one through Noise Semantic Inject at the pack's defaults except screening."""
    import asyncio

    nodes = host.boot()
    served_base.load_demo_nodes(nodes)
    import execution
    import workflow_api as wa

    wf = json.loads(DEMO_WORKFLOW.read_text())
    for n in wf["nodes"]:
        if n["type"] != "Note":
            wa.widget_values(n)
    prompt = wa.to_api(wf)
    ok, err, _, node_errors = asyncio.run(execution.validate_prompt("demo", prompt, None))
    assert ok, (err, node_errors)
    samplers = {k: v["inputs"] for k, v in prompt.items() if v["class_type"] == "KSampler"}
    assert len(samplers) == 2
    ia, ib = samplers.values()
    assert {k: v for k, v in ia.items() if k != "model"} == {k: v for k, v in ib.items() if k != "model"}
    models = {prompt[i["model"][0]]["class_type"] for i in samplers.values()}
    assert models == {"DigitsDemoModelLoader", "NoiseSemanticInject"}
    inject = next(v["inputs"] for v in prompt.values() if v["class_type"] == "NoiseSemanticInject")
    defaults = {s.name: s.default() for s in wa.widget_specs("NoiseSemanticInject")}
    assert inject["candidates"] == 4
    del defaults["candidates"]
    assert {k: inject[k] for k in defaults} == defaults  # the rest at the pack's defaults
    assert "schedule" not in inject
    assert sum(v["class_type"] == "PreviewImage" for v in prompt.values()) == 2
    note = next(n["widgets_values"][0] for n in wf["nodes"] if n["type"] == "Note")
    assert "cfg" in note and "nil" in note


def test_demo_loader_leaves_no_dead_model(caplog):
    """The demo's loader, through the pack's Inject and KSampler, in two executors one after the other
    (as demo/run_demo.py runs its prompts), the first one's caches freed by the garbage collector: no
    model ComfyUI has loaded is left with its patcher gone but its weights alive, so ComfyUI never
    warns "memory leak with model ..." (it did while the loader kept every model in a cache of its own
    and handed out clones)."""
    import gc

    import comfy.model_management as mm
    nodes = host.boot()
    served_base.load_demo_nodes(nodes)
    demo_models = sys.modules["noise_semantics_demo_nodes"].demo_models()
    empty_id, w, h = demo_models.empty_latent_node("eps")
    inject = {k: v[1]["default"] for k, v in nodes.NODE_CLASS_MAPPINGS["NoiseSemanticInject"].INPUT_TYPES()
              ["required"].items() if len(v) > 1 and "default" in v[1]}
    prompt = {
        "load": {"class_type": "DigitsDemoModelLoader", "inputs": {"kind": "eps"}},
        "inject": {"class_type": "NoiseSemanticInject", "inputs": inject | {"candidates": 2, "model": ["load", 0]}},
        "pos": {"class_type": "DigitsDemoClassConditioning", "inputs": {"model": ["load", 0], "digit": 3}},
        "neg": {"class_type": "DigitsDemoClassConditioning", "inputs": {"model": ["load", 0], "digit": 10}},
        "latent": {"class_type": empty_id, "inputs": {"width": w, "height": h, "batch_size": 2}},
        "ks": {"class_type": "KSampler", "inputs": {
            "model": ["inject", 0], "seed": 1, "steps": 2, "cfg": 1.0, "sampler_name": "euler",
            "scheduler": "normal", "positive": ["pos", 0], "negative": ["neg", 0],
            "latent_image": ["latent", 0], "denoise": 1.0}},
        "img": {"class_type": "DigitsDemoLatentToImage", "inputs": {"model": ["load", 0], "samples": ["ks", 0], "scale": 1}},
        "out": {"class_type": "DigitsDemoCollect", "inputs": {"images": ["img", 0], "label": "x", "scale": 1}},
    }
    with caplog.at_level("WARNING"):
        for _ in range(2):
            host.run_prompt(prompt)
            gc.collect()
        mm.cleanup_models_gc()
    dead = [type(m.real_model()).__name__ for m in mm.current_loaded_models if m.is_dead()]
    assert not dead, f"loaded models whose patcher is gone but whose weights are kept: {dead}"
    assert "memory leak" not in caplog.text
