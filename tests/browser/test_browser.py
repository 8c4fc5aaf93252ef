"""The pack's web extension (js/) in a real browser, against a real ComfyUI server.

A ComfyUI server runs as a subprocess (``main.py --cpu --front-end-root <frontend>``) with this
checkout in its custom_nodes/; Debian's headless Chromium, driven by Playwright, opens the real
frontend. Each test runs on every frontend of the host and in both node renderers (see conftest.py:
``test_x[1.58.1-vue]``). Checked there:

* the pack's extension and node types are registered, and the previews never reach a workflow or
  a prompt;
* the schedule formula of js/noise_semantics.js equals noise_semantics/core.py make_schedule, on
  valid and invalid settings;
* "Temporal Weight Schedule" draws w(tau) and its probes with core's numbers, and redraws when a
  widget changes (pixels of the node change accordingly);
* "Noise Semantic Inject" shows the noise / semantics shares 1/sqrt(1+d^2) and d/sqrt(1+d^2);
* the bundled workflows (workflows/*.json) load with no missing node (and a bogus node type is
  reported missing, so the check can fail);
* the node help pages (js/docs/<NodeId>.md) open from the selection toolbox's info button and render;
* no console error and no uncaught page error, apart from the benign ones in nsp_harness.BENIGN.

The tests drive the frontend through ``app``, the LiteGraph graph, its nodes and widgets and the
canvas transform (helpers in nsp_harness.PAGE_HELPERS), not through the frontend's CSS classes, so a
new frontend release does not break them. Where pixels are checked, the area is located through the
graph (node position and size, canvas transform).

Needs /usr/bin/chromium, Playwright and the frontends (``bash scripts/browser_deps.sh``). Skipped
without them, unless NSP_REQUIRE_BROWSER is set (CI), where their absence fails.
Screenshots go to NSP_BROWSER_ARTIFACTS (default: pytest's tmp dir); with NSP_UPDATE_SCREENSHOTS=1
those of conftest.DOC_TARGET also replace docs/img/*.png.
"""
from __future__ import annotations

import io
import json
import os
import re
import urllib.request
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
JS = (ROOT / "js" / "noise_semantics.js").read_text()
PACK = "comfyui-noise-semantics"
OURS = ("NoiseSemanticErase", "NoiseSemanticInject", "NoiseSemanticTemporalSchedule", "NoiseSemanticPreview")
WORKFLOWS = sorted((ROOT / "workflows").glob("*.json"))


def _js_const(name: str) -> str:
    """A string constant of js/noise_semantics.js, so the tests follow a rename there."""
    m = re.search(rf"const {name}\s*=\s*[\"'`]([^\"'`]+)[\"'`]", JS)
    assert m, f"js/noise_semantics.js defines no const {name}"
    return m.group(1)


def _rgb(hex_colour: str):
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))


def _extension_name() -> str:
    """The name js/noise_semantics.js registers its extension under: a string literal, or a constant."""
    m = re.search(r"registerExtension\(\{\s*name:\s*(?:[\"'`]([^\"'`]+)[\"'`]|(\w+))", JS)
    assert m, "js/noise_semantics.js: no app.registerExtension({ name: ... })"
    return m.group(1) or _js_const(m.group(2))


EXTENSION = _extension_name()
CURVE_WIDGET = _js_const("CURVE_WIDGET")
MIX_WIDGET = _js_const("MIX_WIDGET")
ACCENT = _rgb(_js_const("ACCENT"))       # the curve and the semantics bar
NOISE_GREY = _rgb(_js_const("NOISE"))    # the noise bar


# --------------------------------------------------------------------------- pixels

def _png(data: bytes) -> np.ndarray:
    from PIL import Image
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)


def _shot(page, rect) -> np.ndarray:
    return _png(page.screenshot(clip=rect))


def _mask(img: np.ndarray, rgb, tol: int) -> np.ndarray:
    return (np.abs(img - np.array(rgb, dtype=np.int16)) <= tol).all(axis=2)


def _runs(row: np.ndarray):
    """(start, length) of each run of True in a 1-D boolean array."""
    padded = np.concatenate(([False], row, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b - a)) for a, b in zip(edges[::2], edges[1::2])]


def _longest_run(mask: np.ndarray):
    """(length, x, y) of the longest horizontal run in a mask: a drawn bar (the glyphs of text in a
    similar colour only make short runs)."""
    best = (0, 0, 0)
    for y in range(mask.shape[0]):
        for x, n in _runs(mask[y]):
            best = max(best, (n, x, y))
    return best


def _bars(img: np.ndarray):
    """Lengths of the noise and semantics bars of the Inject preview. The semantics bar is the
    longest accent run; the noise bar is the grey run starting at the same x in the row above (so no
    other grey line of the node is taken for it)."""
    sem, sx, sy = _longest_run(_mask(img, ACCENT, 12))
    grey = _mask(img, NOISE_GREY, 12)
    if sem < 4:   # strength 0: no semantics bar
        return _longest_run(grey)[0], sem
    noise = 0
    for y in range(max(sy - img.shape[0] // 3, 0), sy):
        for x, n in _runs(grey[y]):
            if abs(x - sx) <= 3:
                noise = max(noise, n)
    return noise, sem


def _diff(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return 255.0
    return float(np.abs(a - b).mean())


def _save_doc_image(target, png: bytes, name: str, artifacts: Path, width: int | None = None):
    """Into the artifacts folder as taken; from conftest.DOC_TARGET with NSP_UPDATE_SCREENSHOTS=1 also
    into docs/img/, scaled to `width` and with a palette (big views), so the PNGs stay small."""
    (artifacts / f"{target.id}_{name}").write_bytes(png)
    if not (target.docs and os.environ.get("NSP_UPDATE_SCREENSHOTS") == "1"):
        return
    from PIL import Image
    img = Image.open(io.BytesIO(png))
    if width and img.size[0] > width:
        img = img.convert("RGB").resize((width, round(img.size[1] * width / img.size[0])), Image.LANCZOS)
        img = img.quantize(256, method=Image.Quantize.MEDIANCUT)
    (ROOT / "docs" / "img").mkdir(parents=True, exist_ok=True)
    img.save(ROOT / "docs" / "img" / name, optimize=True)


# --------------------------------------------------------------------------- page helpers

def _ev(page, js: str, *args):
    return page.evaluate(js, list(args)) if args else page.evaluate(js)


def _add(page, node_type, x, y):
    _mouse_away(page)
    node = _ev(page, "([t, x, y]) => __nsp.add(t, x, y)", node_type, x, y)
    _ev(page, "async () => { await __nsp.redraw(); await __nsp.sleep(100); await __nsp.redraw(); }")
    return node


def _set(page, node, name, value):
    _ev(page, "async ([id, name, v]) => { await __nsp.set(id, name, v); await __nsp.frames(); }", node, name, value)


def _curve(page, node):
    return _ev(page, "([id]) => __nsp.curve(id)", node)


def _mix(page, node):
    return _ev(page, "([id]) => __nsp.mix(id)", node)


def _value(page, node, name):
    return _ev(page, "([id, name]) => __nsp.widget(id, name).value", node, name)


def _node_rect(page, node, pad=12, above=16):
    return _ev(page, "([id, pad, above]) => __nsp.nodeRect(id, pad, above)", node, pad, above)


def _mouse_away(page):
    """The mouse to an empty part of the canvas (right of every node the tests add), so no hover
    highlight or tooltip gets into a screenshot."""
    r = _ev(page, "() => __nsp.canvasRect()")
    page.mouse.move(r["x"] + r["width"] - 120, r["y"] + r["height"] / 2)


def _click_widget(page, node, name, where):
    """A user's click on a canvas-drawn widget (classic renderer), located through the graph."""
    page.mouse.click(*_ev(page, "([id, name, where]) => __nsp.widgetPoint(id, name, where)", node, name, where))
    _mouse_away(page)
    _ev(page, "() => __nsp.redraw()")


def _preview_area(page, target, node, widget):
    """Where a preview is on the page: the widget's own rectangle on the classic canvas; in the Vue
    renderer (which lays widgets out itself) the whole node."""
    if target.mode == "classic":
        return _ev(page, "([id, w]) => __nsp.widgetRect(id, w)", node, widget)
    return _node_rect(page, node, 0, 0)


# --------------------------------------------------------------------------- tests

def test_pack_served_and_registered(target, page):
    ext = target.server.get_json("/extensions")
    assert f"/extensions/{PACK}/noise_semantics.js" in ext
    info = target.server.get_json("/object_info")
    for node in OURS:
        assert info[node]["python_module"] == f"custom_nodes.{PACK}"
    assert _ev(page, "([n]) => app.extensions.some((e) => e.name === n)", EXTENSION), \
        f"extension {EXTENSION} (js/noise_semantics.js) not registered"
    registered = _ev(page, "([types]) => types.filter((t) => LiteGraph.registered_node_types[t])", list(OURS))
    assert registered == list(OURS)
    # the previews are extra canvas widgets that never reach a workflow or a prompt
    s = _add(page, "NoiseSemanticTemporalSchedule", 50, 50)
    i = _add(page, "NoiseSemanticInject", 450, 50)
    out = _ev(page, """async ([s, i]) => {
        const p = await app.graphToPrompt();
        const names = (id) => __nsp.node(id).widgets.map((w) => w.name);
        return {s: names(s), i: names(i),
                sValues: __nsp.node(s).serialize().widgets_values, iValues: __nsp.node(i).serialize().widgets_values,
                sPrompt: Object.keys(p.output[String(s)].inputs), iPrompt: Object.keys(p.output[String(i)].inputs)};
    }""", s, i)
    for key, preview in (("s", CURVE_WIDGET), ("i", MIX_WIDGET)):
        assert out[key][-1] == preview, out[key]
        assert len(out[key + "Values"]) == len(out[key]) - 1
        assert preview not in out[key + "Prompt"]
    # every widget input of the node definitions is there, in their order
    assert out["s"][:-1] == info["NoiseSemanticTemporalSchedule"]["input_order"]["required"]
    assert "strength" in out["i"]


def test_js_schedule_formula_matches_core(page, core):
    """The copy of make_schedule in js/ against noise_semantics/core.py, valid and invalid settings alike."""
    cases = [
        dict(probes=5, tau_min=0.5, tau_max=1.0, weighting="bump", center=0.8, half_width=0.5, flatness=1.0),
        dict(probes=9, tau_min=0.1, tau_max=0.9, weighting="bump", center=0.5, half_width=0.4, flatness=5.0),
        dict(probes=1, tau_min=0.3, tau_max=0.7, weighting="bump", center=0.6, half_width=0.3, flatness=2.0),
        dict(probes=7, tau_min=0.2, tau_max=1.0, weighting="uniform", center=0.8, half_width=0.5, flatness=1.0),
        dict(probes=6, tau_min=0.05, tau_max=0.95, weighting="bump", center=0.3, half_width=0.25, flatness=0.7),
        # invalid: reversed range, empty range with several probes, bump far from every probe
        dict(probes=5, tau_min=0.9, tau_max=0.4, weighting="bump", center=0.8, half_width=0.5, flatness=1.0),
        dict(probes=3, tau_min=0.6, tau_max=0.6, weighting="bump", center=0.6, half_width=0.5, flatness=1.0),
        dict(probes=4, tau_min=0.8, tau_max=1.0, weighting="bump", center=0.1, half_width=0.2, flatness=1.0),
    ]
    got = page.evaluate(f"""async (cases) => {{
        const m = await import('/extensions/{PACK}/noise_semantics.js');
        return cases.map((c) => {{ const s = m.makeSchedule(c); return {{error: s.error, taus: s.taus, weights: s.weights}}; }});
    }}""", cases)
    rejected = 0
    for case, js in zip(cases, got):
        try:
            if case["weighting"] == "uniform":  # as noise_semantics/schedule.py calls it
                py = core.make_schedule(case["probes"], case["tau_min"], case["tau_max"], weighting="uniform")
            else:
                py = core.make_schedule(**case)
        except core.NoiseSemanticsError:
            assert js["error"], f"python rejects {case}, js draws it"
            rejected += 1
            continue
        assert js["error"] is None, (case, js["error"])
        assert js["taus"] == pytest.approx(list(py.taus), abs=1e-12)
        assert js["weights"] == pytest.approx(list(py.weights), abs=1e-12)
    assert rejected == 3


def test_schedule_curve_drawn_and_live(target, page, artifacts, core):
    node = _add(page, "NoiseSemanticTemporalSchedule", 300, 200)
    curve = _curve(page, node)
    assert curve and curve["error"] is None and curve["weighting"] == "bump"
    defaults = core.TPW_SCHEDULE
    assert [p["tau"] for p in curve["probes"]] == pytest.approx(list(defaults.taus))
    assert [p["w"] for p in curve["probes"]] == pytest.approx(list(defaults.weights))
    assert len(curve["points"]) > 50 and {p[0] for p in curve["points"]} >= {0.0, 1.0}

    # the curve is on screen: the accent colour fills a real 2-D band where the graph puts the preview
    area = _preview_area(page, target, node, CURVE_WIDGET)
    bump = _shot(page, area)
    ys = np.nonzero(_mask(bump, ACCENT, 40))[0]
    assert ys.size > 200, f"curve not drawn: {ys.size} accent pixels"
    assert ys.max() - ys.min() > 20, "a bump should not be flat"
    _save_doc_image(target, page.screenshot(clip=_node_rect(page, node)), "schedule_node.png", artifacts)

    # a new center: the peak moves (numbers and pixels)
    draws = curve["draws"]
    _set(page, node, "center", 0.55)
    assert _value(page, node, "center") == pytest.approx(0.55)
    moved = _curve(page, node)
    assert moved["draws"] > draws
    peak = max(moved["points"], key=lambda p: p[1])
    assert peak[0] == pytest.approx(0.55, abs=0.01)
    py = core.make_schedule(5, 0.5, 1.0, 0.55, 0.5, 1.0, "bump")
    assert [p["w"] for p in moved["probes"]] == pytest.approx(list(py.weights))
    after = _shot(page, area)
    assert _diff(bump, after) > 0.5, "the preview's pixels did not change with the center"

    # one more probe, and "uniform" weighting: on the classic canvas a user's clicks on the widgets'
    # right arrows (located through the graph), in the Vue renderer the widget API its inputs call
    if target.mode == "classic":
        _click_widget(page, node, "probes", "right")
        _click_widget(page, node, "weighting", "right")
    else:
        _set(page, node, "probes", 6)
        _set(page, node, "weighting", "uniform")
    assert _value(page, node, "probes") == 6
    flat = _curve(page, node)
    assert flat["weighting"] == "uniform" and flat["error"] is None
    assert {p[1] for p in flat["points"]} == {1}
    assert [p["w"] for p in flat["probes"]] == [1] * 6
    uni = _shot(page, area)
    rows = np.nonzero(_mask(uni, ACCENT, 40))[0]
    assert rows.size > 100
    row = np.bincount(rows).argmax()
    assert (np.abs(rows - row) <= 8).mean() > 0.9, "uniform should draw a flat line"
    assert _diff(after, uni) > 0.5
    _save_doc_image(target, page.screenshot(clip=_node_rect(page, node)), "schedule_uniform.png", artifacts)

    # an impossible range shows the error (as the Python node would raise it), no curve
    _set(page, node, "weighting", "bump")
    _set(page, node, "tau_min", 0.95)
    _set(page, node, "tau_max", 0.6)
    bad = _curve(page, node)
    assert bad["error"] and "tau_min" in bad["error"] and bad["points"] == []
    with pytest.raises(core.NoiseSemanticsError):
        core.make_schedule(6, 0.95, 0.6, 0.55, 0.5, 1.0, "bump")
    assert not _mask(_shot(page, area), ACCENT, 12).any(), "a curve is still drawn beside the error"


@pytest.mark.parametrize("strength", [0.3, 0.0, 1.0, 2.5])
def test_inject_shows_mix(target, page, strength):
    node = _add(page, "NoiseSemanticInject", 80, 80)
    _set(page, node, "strength", strength)
    mix = _mix(page, node)
    assert mix["error"] is None
    assert mix["noise"] == pytest.approx(1 / (1 + strength ** 2) ** 0.5)
    assert mix["semantics"] == pytest.approx(strength / (1 + strength ** 2) ** 0.5)
    assert mix["noise"] ** 2 + mix["semantics"] ** 2 == pytest.approx(1.0)
    noise_bar, semantics_bar = _bars(_shot(page, _preview_area(page, target, node, MIX_WIDGET)))
    assert noise_bar > 40, "noise bar not drawn"
    if target.id == "1.32.9-vue":
        # Known defect, left: frontend 1.32.9's Vue renderer lays out Inject's optional widgets
        # (direction, candidates) taller than LiteGraph does and clips the canvas preview below its
        # first bar; 1.49.6 and 1.58.1 show it whole (checked below on those targets). The numbers
        # above are still checked here.
        return
    if strength == 0:
        assert semantics_bar < 4
    else:
        assert semantics_bar / noise_bar == pytest.approx(mix["semantics"] / mix["noise"], rel=0.05)


def test_inject_mix_follows_widgets(target, page, artifacts):
    node = _add(page, "NoiseSemanticInject", 300, 200)
    area = _preview_area(page, target, node, MIX_WIDGET)
    before = _shot(page, area)
    _save_doc_image(target, page.screenshot(clip=_node_rect(page, node)), "inject_node.png", artifacts)
    _set(page, node, "strength", 1.5)
    mix = _mix(page, node)
    assert mix["strength"] == pytest.approx(1.5)
    assert mix["semantics"] == pytest.approx(1.5 / 3.25 ** 0.5)
    assert mix["exact"] is True
    after = _shot(page, area)
    assert _diff(before, after) > 0.5
    # strength 0 with screening on still calls the model: the caption must not say otherwise
    _set(page, node, "strength", 0.0)
    assert _mix(page, node)["note"] == "strength 0: noise unchanged, no model call"
    _set(page, node, "candidates", 4)
    assert _mix(page, node)["note"] == "screening 4 noises: the best one, unmixed"
    _set(page, node, "candidates", 1)
    _set(page, node, "strength", 1.5)
    # decorrelate off (a user's click on the toggle on the classic canvas): the shares are nominal now
    if target.mode == "classic":
        _click_widget(page, node, "decorrelate", "center")
    else:
        _set(page, node, "decorrelate", False)
    assert _value(page, node, "decorrelate") is False
    assert _mix(page, node)["exact"] is False
    assert _diff(after, _shot(page, area)) > 0.2


def test_inject_preview_is_true_for_each_direction_and_marks_inactive_inputs(target, page):
    """direction prompt injects cond - uncond at its own size: no share holds before the run, so none is
    shown. At strength 0, decorrelate and direction do nothing: the preview says so and the widgets
    are disabled; they come back with strength."""
    node = _add(page, "NoiseSemanticInject", 300, 200)
    _set(page, node, "strength", 0.3)
    _set(page, node, "direction", "prompt")
    mix = _mix(page, node)
    assert mix["direction"] == "prompt" and mix["noise"] is None and mix["semantics"] is None
    assert mix["exact"] is False and "cond − uncond" in mix["note"] and mix["inactive"] == []
    _set(page, node, "direction", "guided")
    assert _mix(page, node)["noise"] == pytest.approx(1 / 1.09 ** 0.5)
    _set(page, node, "strength", 0.0)
    assert sorted(_mix(page, node)["inactive"]) == ["decorrelate", "direction"]
    assert _ev(page, "([id]) => ['decorrelate', 'direction'].map((n) => !!__nsp.widget(id, n).disabled)", node) == \
        [True, True]
    _set(page, node, "strength", 0.5)
    assert _mix(page, node)["inactive"] == []
    assert _ev(page, "([id]) => ['decorrelate', 'direction'].map((n) => !!__nsp.widget(id, n).disabled)", node) == \
        [False, False]


def test_erase_samples_widget_is_labelled_apart_from_latent_samples(target, page):
    """Erase's INT input keeps its id 'samples' (saved workflows and prompts use it) and is shown as
    'noises combined (n)', not to be taken for a LATENT 'samples' input."""
    node = _add(page, "NoiseSemanticErase", 80, 80)
    got = _ev(page, "([id]) => { const w = __nsp.widget(id, 'samples');"
                    " return [w.name, w.label ?? null, w.value]; }", node)
    assert got == ["samples", "noises combined (n)", 1]


def _graph_types(data):
    types = {n["type"] for n in data.get("nodes", [])}
    subgraphs = (data.get("definitions") or {}).get("subgraphs", [])
    for sg in subgraphs:
        types |= {n["type"] for n in sg.get("nodes", [])}
    return types - {sg["id"] for sg in subgraphs}


def _load(page, data, name):
    """A workflow loaded as the frontend loads a file (app.loadGraphData), its warnings shown."""
    _ev(page, "async ([d, name]) => { await app.loadGraphData(d, true, true, name); await __nsp.frames();"
              " await __nsp.sleep(300); }", data, name)


def _input_pictures(target, page, data):
    """The picture each Load Image asks for, in the server's input folder and the frontend's lists,
    as after the user's upload (the img2img workflow ships none): without it the preview request is a
    404, and 1.49.6 / 1.58.1 mark the node as missing its file."""
    from PIL import Image
    made = False
    for n in data.get("nodes", []):
        if n["type"] == "LoadImage":
            f = target.server.base / "input" / n["widgets_values"][0]
            if not f.exists():
                Image.new("RGB", (64, 64), (90, 120, 150)).save(f)
                made = True
    if made:
        _ev(page, "async () => { await app.refreshComboInNodes(); }")


@pytest.mark.parametrize("workflow", [pytest.param(p, id=p.stem) for p in WORKFLOWS])
def test_workflow_loads_without_missing_nodes(target, page, workflow, artifacts):
    data = json.loads(workflow.read_text())
    _input_pictures(target, page, data)
    types = _graph_types(data)
    unknown = _ev(page, "([types]) => types.filter((t) => !LiteGraph.registered_node_types[t])", sorted(types))
    assert not unknown, f"{workflow.name}: node types the frontend does not know: {unknown}"
    _load(page, data, workflow.name)
    assert _ev(page, "() => __nsp.missing()") == [], f"{workflow.name}: missing nodes in the loaded graph"
    assert _ev(page, "() => __nsp.reported()") == [], f"{workflow.name}: the frontend reports missing nodes"
    # the whole graph on screen (LiteGraph draws only the visible nodes)
    _ev(page, "async () => { await app.extensionManager.command.execute('Comfy.Canvas.FitView');"
              " await __nsp.redraw(); await __nsp.sleep(300); await __nsp.redraw(); }")
    # Every node loaded, none marked (1.49.6 and 1.58.1 also mark a loader whose model file the server
    # lacks: the server has empty stand-ins for the workflows' models, see conftest.workflow_models)
    state = _ev(page, """() => app.graph.nodes.map((n) => ({
        id: n.id, type: n.type, errors: !!n.has_errors,
        curve: n.__nsCurve ? {error: n.__nsCurve.error, probes: n.__nsCurve.probes.length} : null,
        mix: n.__nsMix ? {error: n.__nsMix.error} : null,
        fits: n.size[1] >= n.computeSize()[1] - 1}))""")
    assert {n["type"] for n in state} >= {"NoiseSemanticErase", "NoiseSemanticInject"}, state
    for n in state:
        assert not n["errors"], f"{workflow.name}: node {n} is marked with an error"
        if n["type"] == "NoiseSemanticTemporalSchedule":
            assert n["curve"] and n["curve"]["error"] is None and n["curve"]["probes"] > 0, n
            assert n["fits"], f"{workflow.name}: the schedule node is too small for its preview"
        if n["type"] == "NoiseSemanticInject":
            assert n["mix"] and n["mix"]["error"] is None, n
            assert n["fits"], n
    _save_doc_image(target, page.screenshot(clip=_ev(page, "() => __nsp.canvasRect()")),
                    f"workflow_{workflow.stem}.png", artifacts, width=1400)


def test_workflow_saved_before_apply_to_loads_with_its_values(target, page):
    """A workflow saved before Erase and Inject had apply_to (their widgets_values one shorter) loads:
    every saved value lands on its widget, and apply_to takes its default."""
    data = json.loads((ROOT / "workflows" / "flux1_dev_noise_semantics.json").read_text())
    saved = {}
    for n in data["nodes"]:
        if n["type"] in ("NoiseSemanticErase", "NoiseSemanticInject"):
            n["widgets_values"] = n["widgets_values"][:-1]  # as saved before apply_to existed
            n["widgets_values"][0] = 3 if n["type"] == "NoiseSemanticErase" else 0.25
            saved[n["id"]] = n["widgets_values"]
    _load(page, data, "old_flux.json")
    assert _ev(page, "() => __nsp.missing()") == []
    for nid, values in saved.items():
        got = _ev(page, "([id]) => __nsp.node(id).widgets.filter((w) => w.name && !w.name.startsWith('ns_'))"
                        ".map((w) => [w.name, w.value])", nid)
        names = [name for name, _ in got]
        assert [v for _, v in got][:len(values)] == values, got
        assert names[-1] == "apply_to" and got[-1][1] == "from pure noise only", got


def test_missing_node_check_can_fail(target, page):
    """Control: a workflow with an unknown node type is caught by the graph check and reported by the
    frontend, so an empty report above means something."""
    bogus = {"nodes": [{"id": 1, "type": "NspNoSuchNode", "pos": [0, 0], "size": [200, 80], "flags": {},
                        "order": 0, "mode": 0, "inputs": [], "outputs": [], "properties": {}}],
             "links": [], "groups": [], "config": {}, "extra": {}, "version": 0.4, "last_node_id": 1,
             "last_link_id": 0}
    _load(page, bogus, "bogus.json")
    assert _ev(page, "() => __nsp.missing()") == ["NspNoSuchNode"]
    page.wait_for_function("() => __nsp.reported().includes('NspNoSuchNode')", timeout=10_000)
    # whatever the frontend shows for it (a dialog up to 1.32, a notice in the page later) goes away
    page.keyboard.press("Escape")
    page.get_by_role("dialog").filter(has_text="NspNoSuchNode").wait_for(state="hidden", timeout=10_000)
    target.log.take()  # what the frontend logs about the unknown node is expected here


def _close_node_help(page):
    """Closes whatever holds the node help: the panel on the right (1.49.6,
    1.58.1), a sidebar tab (1.32.9)."""
    _ev(page, """async () => {
        const s = app.extensionManager.setting;
        if (s.get('Comfy.RightSidePanel.IsOpen')) await s.set('Comfy.RightSidePanel.IsOpen', false);
        const tab = app.extensionManager.sidebarTab?.activeSidebarTabId;
        if (tab) await app.extensionManager.command.execute(`Workspace.ToggleSidebarTab.${tab}`);
        await __nsp.frames();
    }""")


@pytest.mark.parametrize("node_type,heading", [
    ("NoiseSemanticErase", "Noise Semantic Erase"),
    ("NoiseSemanticInject", "Noise Semantic Inject"),
    ("NoiseSemanticTemporalSchedule", "Temporal Weight Schedule"),
    ("NoiseSemanticPreview", "Noise Semantic Preview"),
])
def test_node_help_page(target, page, artifacts, node_type, heading):
    """The frontend's node help (the selection toolbox's info button) shows js/docs/<NodeId>.md."""
    with urllib.request.urlopen(f"{target.server.url}/extensions/{PACK}/docs/{node_type}.md") as r:
        assert r.status == 200 and heading in r.read().decode()
    node = _add(page, node_type, 500, 250)
    _ev(page, "async ([id]) => { app.canvas.deselectAll?.(); app.canvas.selectNode(__nsp.node(id)); await __nsp.redraw(); }",
        node)
    # the toolbox's info button, by the test id the frontend gives it for its own browser tests
    info = page.locator('[data-testid="info-button"]').first
    info.wait_for(state="visible", timeout=10_000)
    try:
        info.click()
        # rendered markdown: the page's title and its "## Inputs" section are headings, the raw
        # markdown is nowhere on the page
        page.get_by_role("heading", name=heading, exact=True).first.wait_for(state="visible", timeout=10_000)
        page.get_by_role("heading", name="Inputs", exact=True).first.wait_for(state="visible", timeout=5_000)
        assert page.get_by_text("## Inputs").count() == 0
        if node_type == "NoiseSemanticTemporalSchedule":
            _save_doc_image(target, page.screenshot(), "node_help.png", artifacts, width=1400)
    finally:
        _close_node_help(page)
    page.get_by_role("heading", name=heading, exact=True).first.wait_for(state="hidden", timeout=10_000)
