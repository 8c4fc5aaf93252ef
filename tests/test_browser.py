"""The pack's web extension (js/) in a real browser, against a real ComfyUI server.

A ComfyUI server runs as a subprocess (``main.py --cpu``) with this checkout in its custom_nodes/;
Debian's headless Chromium, driven by Playwright, opens the real frontend
(comfyui-frontend-package). Checked there:

* the pack's node types are registered and the bundled workflows (workflows/*.json) load without a
  missing-node dialog (and a bogus node type does raise it, so the check can fail);
* "Temporal Weight Schedule" draws w(tau) and its probes, with the numbers of noise_semantics/core.py
  make_schedule, and redraws when a widget is changed through the UI (typed into the value prompt,
  picked from the combo menu); pixels of the screenshot change accordingly;
* "Noise Semantic Inject" shows the noise / semantics shares 1/sqrt(1+d^2) and d/sqrt(1+d^2);
* the node help pages (js/docs/<NodeId>.md) open from the selection toolbox's info button;
* the same previews render with the frontend's "Nodes 2.0" (Vue) node renderer;
* no console error and no uncaught page error, apart from the few benign ones listed with their
  reasons in tests/browser/nsp_harness.py.

Needs /usr/bin/chromium and Playwright (``bash scripts/browser_deps.sh``). Skipped without them,
unless NSP_REQUIRE_BROWSER is set (CI), where their absence fails.
Screenshots go to NSP_BROWSER_ARTIFACTS (default: pytest's tmp dir); with
NSP_UPDATE_SCREENSHOTS=1 they also replace docs/img/*.png.
"""
from __future__ import annotations

import io
import json
import os
import sys
import urllib.request
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE / "browser"))
import nsp_harness as harness  # noqa: E402

PACK = "comfyui-noise-semantics"
OURS = ("NoiseSemanticErase", "NoiseSemanticInject", "NoiseSemanticTemporalSchedule")
WORKFLOWS = sorted((ROOT / "workflows").glob("*.json"))
ACCENT = (108, 178, 255)   # the curve colour in js/noise_semantics.js
NOISE_GREY = (154, 154, 154)



def _require_browser():
    required = bool(os.environ.get("NSP_REQUIRE_BROWSER"))
    missing = []
    if not harness.have_chromium():
        missing.append(f"{harness.CHROMIUM} (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright (pip install playwright)")
    if missing:
        msg = "browser test needs " + ", ".join(missing) + "; run scripts/browser_deps.sh"
        if required:
            pytest.fail(msg + " (NSP_REQUIRE_BROWSER is set)")
        pytest.skip(msg)


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    _require_browser()
    srv = harness.ComfyServer(tmp_path_factory.mktemp("comfy-base")).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    out = os.environ.get("NSP_BROWSER_ARTIFACTS")
    path = Path(out) if out else tmp_path_factory.mktemp("browser-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


PAGE_HELPERS = r"""
window.__nsp = {
  node: (id) => app.graph.getNodeById(id),
  widget(id, name) { return this.node(id).widgets.find((w) => w.name === name); },
  add(type, x, y) {
    const n = LiteGraph.createNode(type);
    n.pos = [x, y];
    app.graph.add(n);
    return n.id;
  },
  set(id, name, value) { this.widget(id, name).value = value; },
  frames: () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => r()))),
  async redraw() { app.canvas.setDirty(true, true); await this.frames(); },
  // a graph-space rectangle in page (CSS) pixels
  rect(x, y, w, h) {
    const r = app.canvas.canvas.getBoundingClientRect();
    const [cx, cy] = app.canvas.ds.convertOffsetToCanvas([x, y]);
    const s = app.canvas.ds.scale;
    return { x: r.left + cx, y: r.top + cy, width: w * s, height: h * s };
  },
  widgetRect(id, name) {
    const n = this.node(id), w = this.widget(id, name);
    const h = w.computeSize ? w.computeSize(n.size[0])[1] : LiteGraph.NODE_WIDGET_HEIGHT;
    return this.rect(n.pos[0], n.pos[1] + w.y, n.size[0], h);
  },
  nodeRect(id, pad = 0) {
    const n = this.node(id), t = LiteGraph.NODE_TITLE_HEIGHT;
    const top = pad + 16;  // the node-source badge above the title bar
    return this.rect(n.pos[0] - pad, n.pos[1] - t - top, n.size[0] + 2 * pad, n.size[1] + t + top + pad);
  },
  curve: (id) => JSON.parse(JSON.stringify(app.graph.getNodeById(id).__nsCurve ?? null)),
  mix: (id) => JSON.parse(JSON.stringify(app.graph.getNodeById(id).__nsMix ?? null)),
  toasts: () => [...document.querySelectorAll('.p-toast-message')].map((t) => t.innerText.trim()),
  dialogs: () => [...document.querySelectorAll('[role="dialog"]')]
    .filter((d) => d.offsetParent !== null).map((d) => d.innerText.slice(0, 300)),
};
"""


@pytest.fixture(scope="module")
def browser(server, tmp_path_factory):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        ctx, page = harness.launch_browser(p, tmp_path_factory.mktemp("chromium-profile"))
        log = harness.ConsoleLog()
        log.attach(page)
        # the "Nodes 2.0" banner a first visit shows over the top of the canvas (dismissed by a click)
        page.add_init_script("localStorage.setItem('vueNodesBannerDismissed', 'true')")
        page.goto(server.url + "/")
        page.wait_for_function(
            "() => window.app?.graph && window.app?.canvas && window.LiteGraph?.registered_node_types?."
            "NoiseSemanticTemporalSchedule", timeout=120_000)
        page.evaluate(PAGE_HELPERS)
        yield page, log
        print("\nconsole errors ignored as benign:")
        for text, url, reason in log.ignored:
            print(f"  {text.splitlines()[0][:120]} [{url}] -- {reason}")
        ctx.close()


@pytest.fixture
def page(browser, request):
    """The shared page, checked for console errors after each test."""
    pg, log = browser
    log.take()
    pg.evaluate("async () => { app.graph.clear(); app.canvas.ds.scale = 1; app.canvas.ds.offset[0] = 0;"
                " app.canvas.ds.offset[1] = 0; await __nsp.redraw(); }")
    yield pg
    errors = log.take()
    assert not errors, f"console errors during {request.node.name}:\n" + "\n".join(
        f"{t} [{u}]" for t, u in errors)


# --------------------------------------------------------------------------- helpers

def _png(data: bytes):
    from PIL import Image
    return Image.open(io.BytesIO(data)).convert("RGB")


def _shot(page, rect, path=None):
    return _png(page.screenshot(clip=rect, path=str(path) if path else None))


def _color_pixels(img, rgb, tol=40):
    """(x, y) of the pixels within tol of rgb (per channel)."""
    px = img.load()
    w, h = img.size
    return [(x, y) for y in range(h) for x in range(w)
            if all(abs(px[x, y][c] - rgb[c]) <= tol for c in range(3))]


def _longest_run(img, rgb, tol=12) -> int:
    """Longest horizontal run of pixels within tol of rgb: the length of a drawn bar (text glyphs
    of a similar colour only make short runs)."""
    px = img.load()
    w, h = img.size
    best = 0
    for y in range(h):
        run = 0
        for x in range(w):
            if all(abs(px[x, y][c] - rgb[c]) <= tol for c in range(3)):
                run += 1
                best = max(best, run)
            else:
                run = 0
    return best


def _diff(a, b) -> float:
    from PIL import ImageChops, ImageStat
    if a.size != b.size:
        return 255.0
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3


def _save_doc_image(img_or_path, name, artifacts, width=None):
    from PIL import Image
    img = Image.open(img_or_path) if isinstance(img_or_path, (str, Path)) else img_or_path
    if width and img.size[0] > width:
        img = img.resize((width, round(img.size[1] * width / img.size[0])), Image.LANCZOS)
        img = img.quantize(256, method=Image.Quantize.MEDIANCUT)  # big views: a palette keeps the PNG small
    img.save(artifacts / name, optimize=True)
    if os.environ.get("NSP_UPDATE_SCREENSHOTS") == "1":
        (ROOT / "docs" / "img").mkdir(parents=True, exist_ok=True)
        img.save(ROOT / "docs" / "img" / name, optimize=True)


def _client_point(page, node_id, gx, gy):
    """Page coordinates of a point given in the node's own graph coordinates."""
    return page.evaluate(
        "([id, gx, gy]) => { const n = __nsp.node(id); const r = __nsp.rect(n.pos[0] + gx, n.pos[1] + gy, 0, 0);"
        " return [r.x, r.y]; }", [node_id, gx, gy])


def _widget_center(page, node_id, name):
    return page.evaluate(
        "([id, name]) => { const n = __nsp.node(id), w = __nsp.widget(id, name);"
        " return [n.size[0] / 2, w.y + LiteGraph.NODE_WIDGET_HEIGHT / 2]; }", [node_id, name])


def _type_into_widget(page, node_id, name, value):
    """What a user does: click the middle of a number widget, type into the value prompt, Enter."""
    gx, gy = _widget_center(page, node_id, name)
    page.mouse.click(*_client_point(page, node_id, gx, gy))
    box = page.locator(".graphdialog input").first
    box.wait_for(state="visible", timeout=5000)
    box.fill(str(value))
    box.press("Enter")
    page.evaluate("() => __nsp.redraw()")


def _pick_combo(page, node_id, name, option):
    """What a user does: click the middle of a combo widget, then the entry in its menu."""
    gx, gy = _widget_center(page, node_id, name)
    page.mouse.click(*_client_point(page, node_id, gx, gy))
    entry = page.locator(".litecontextmenu .litemenu-entry", has_text=option).first
    entry.wait_for(state="visible", timeout=5000)
    entry.click()
    page.evaluate("() => __nsp.redraw()")


def _add_schedule(page, x=300, y=200):
    node_id = page.evaluate(f"() => __nsp.add('NoiseSemanticTemporalSchedule', {x}, {y})")
    page.evaluate("() => __nsp.redraw()")
    return node_id


# --------------------------------------------------------------------------- tests

def test_pack_served_and_registered(server, page):
    ext = server.get_json("/extensions")
    assert f"/extensions/{PACK}/noise_semantics.js" in ext
    info = server.get_json("/object_info")
    for node in OURS:
        assert info[node]["python_module"] == f"custom_nodes.{PACK}"
    registered = page.evaluate(f"() => {json.dumps(list(OURS))}.filter((t) => LiteGraph.registered_node_types[t])")
    assert registered == list(OURS)
    # the previews are extra canvas widgets that never reach a workflow or a prompt
    out = page.evaluate("""async () => {
        const s = __nsp.add('NoiseSemanticTemporalSchedule', 50, 50);
        const i = __nsp.add('NoiseSemanticInject', 450, 50);
        const p = await app.graphToPrompt();
        const names = (id) => app.graph.getNodeById(id).widgets.map((w) => w.name);
        return {s: names(s), i: names(i),
                sValues: app.graph.getNodeById(s).serialize().widgets_values,
                iValues: app.graph.getNodeById(i).serialize().widgets_values,
                sPrompt: Object.keys(p.output[String(s)].inputs), iPrompt: Object.keys(p.output[String(i)].inputs)};
    }""")
    for key, preview in (("s", "ns_schedule_preview"), ("i", "ns_mix_preview")):
        assert out[key][-1] == preview, out[key]
        assert len(out[key + "Values"]) == len(out[key]) - 1
        assert preview not in out[key + "Prompt"]
    # every widget input of the node definitions is there, in their order
    sched = info["NoiseSemanticTemporalSchedule"]["input_order"]["required"]
    assert out["s"][:-1] == sched
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
    got = page.evaluate("""async (cases) => {
        const m = await import('/extensions/comfyui-noise-semantics/noise_semantics.js');
        return cases.map((c) => { const s = m.makeSchedule(c); return {error: s.error, taus: s.taus, weights: s.weights}; });
    }""", cases)
    for case, js in zip(cases, got):
        try:
            if case["weighting"] == "uniform":  # as noise_semantics/schedule.py calls it
                py = core.make_schedule(case["probes"], case["tau_min"], case["tau_max"], weighting="uniform")
            else:
                py = core.make_schedule(**case)
        except core.NoiseSemanticsError:
            assert js["error"], f"python rejects {case}, js draws it"
            continue
        assert js["error"] is None, (case, js["error"])
        assert js["taus"] == pytest.approx(list(py.taus), abs=1e-12)
        assert js["weights"] == pytest.approx(list(py.weights), abs=1e-12)


def test_schedule_curve_drawn_and_live(page, artifacts, core):
    node = _add_schedule(page)
    curve = page.evaluate(f"() => __nsp.curve({node})")
    assert curve and curve["error"] is None and curve["weighting"] == "bump"
    defaults = core.DEFAULT_SCHEDULE
    assert [p["tau"] for p in curve["probes"]] == pytest.approx(list(defaults.taus))
    assert [p["w"] for p in curve["probes"]] == pytest.approx(list(defaults.weights))
    assert len(curve["points"]) > 50 and {p[0] for p in curve["points"]} >= {0.0, 1.0}

    # the curve is on screen: the accent colour fills a real 2-D band in the preview's box
    rect = page.evaluate(f"() => __nsp.widgetRect({node}, 'ns_schedule_preview')")
    bump = _shot(page, rect)
    pts = _color_pixels(bump, ACCENT)
    assert len(pts) > 200, f"curve not drawn: {len(pts)} accent pixels"
    ys = sorted(y for _, y in pts)
    assert ys[-1] - ys[0] > 20, "a bump should not be flat"
    _save_doc_image(_shot(page, page.evaluate(f"() => __nsp.nodeRect({node}, 12)")), "schedule_node.png", artifacts)

    # a user types a new center: the peak moves (numbers and pixels)
    draws = curve["draws"]
    _type_into_widget(page, node, "center", 0.55)
    assert page.evaluate(f"() => __nsp.widget({node}, 'center').value") == pytest.approx(0.55)
    moved = page.evaluate(f"() => __nsp.curve({node})")
    assert moved["draws"] > draws
    peak = max(moved["points"], key=lambda p: p[1])
    assert peak[0] == pytest.approx(0.55, abs=0.01)
    py = core.make_schedule(5, 0.5, 1.0, 0.55, 0.5, 1.0, "bump")
    assert [p["w"] for p in moved["probes"]] == pytest.approx(list(py.weights))
    after = _shot(page, rect)
    assert _diff(bump, after) > 0.5, "the preview's pixels did not change with the center"

    # a user types more probes: one more dot
    _type_into_widget(page, node, "probes", 8)
    assert len(page.evaluate(f"() => __nsp.curve({node})")["probes"]) == 8

    # a user picks "uniform" from the combo menu: a flat line at w = 1
    _pick_combo(page, node, "weighting", "uniform")
    flat = page.evaluate(f"() => __nsp.curve({node})")
    assert flat["weighting"] == "uniform" and flat["error"] is None
    assert {p[1] for p in flat["points"]} == {1}
    assert [p["w"] for p in flat["probes"]] == [1] * 8
    uni = _shot(page, rect)
    upts = _color_pixels(uni, ACCENT)
    assert len(upts) > 100
    row = max(set(y for _, y in upts), key=lambda r: sum(1 for _, y in upts if y == r))
    assert sum(1 for _, y in upts if abs(y - row) <= 4) / len(upts) > 0.9, "uniform should draw a flat line"
    assert _diff(after, uni) > 0.5
    _save_doc_image(_shot(page, page.evaluate(f"() => __nsp.nodeRect({node}, 12)")), "schedule_uniform.png",
                    artifacts)

    # an impossible range shows the error (as the Python node would raise it), no curve
    _pick_combo(page, node, "weighting", "bump")
    _type_into_widget(page, node, "tau_min", 0.95)
    _type_into_widget(page, node, "tau_max", 0.6)
    bad = page.evaluate(f"() => __nsp.curve({node})")
    assert bad["error"] and "tau_min" in bad["error"] and bad["points"] == []
    with pytest.raises(core.NoiseSemanticsError):
        core.make_schedule(8, 0.95, 0.6, 0.55, 0.5, 1.0, "bump")


@pytest.mark.parametrize("strength", [0.3, 0.0, 1.0, 2.5])
def test_inject_shows_mix(page, strength):
    node = page.evaluate("() => __nsp.add('NoiseSemanticInject', 80, 80)")
    page.evaluate(f"async () => {{ __nsp.set({node}, 'strength', {strength}); await __nsp.redraw(); }}")
    mix = page.evaluate(f"() => __nsp.mix({node})")
    assert mix["error"] is None
    assert mix["noise"] == pytest.approx(1 / (1 + strength ** 2) ** 0.5)
    assert mix["semantics"] == pytest.approx(strength / (1 + strength ** 2) ** 0.5)
    assert mix["noise"] ** 2 + mix["semantics"] ** 2 == pytest.approx(1.0)
    img = _shot(page, page.evaluate(f"() => __nsp.widgetRect({node}, 'ns_mix_preview')"))
    noise_bar = _longest_run(img, NOISE_GREY)
    semantics_bar = _longest_run(img, ACCENT)
    assert noise_bar > 40, "noise bar not drawn"
    if strength == 0:
        assert semantics_bar < 4
    else:
        assert semantics_bar / noise_bar == pytest.approx(mix["semantics"] / mix["noise"], rel=0.05)


def test_inject_mix_follows_ui(page, artifacts):
    node = page.evaluate("() => __nsp.add('NoiseSemanticInject', 300, 200)")
    page.evaluate("() => __nsp.redraw()")
    rect = page.evaluate(f"() => __nsp.widgetRect({node}, 'ns_mix_preview')")
    before = _shot(page, rect)
    _save_doc_image(_shot(page, page.evaluate(f"() => __nsp.nodeRect({node}, 12)")), "inject_node.png", artifacts)
    _type_into_widget(page, node, "strength", 1.5)
    mix = page.evaluate(f"() => __nsp.mix({node})")
    assert mix["strength"] == pytest.approx(1.5)
    assert mix["semantics"] == pytest.approx(1.5 / 3.25 ** 0.5)
    assert mix["exact"] is True
    after = _shot(page, rect)
    assert _diff(before, after) > 0.5
    if page.evaluate(f"() => !!__nsp.widget({node}, 'decorrelate')"):
        # a click on the toggle: the preview says the shares are only nominal now
        gx, gy = _widget_center(page, node, "decorrelate")
        page.mouse.click(*_client_point(page, node, gx, gy))
        page.evaluate("() => __nsp.redraw()")
        assert page.evaluate(f"() => __nsp.widget({node}, 'decorrelate').value") is False
        assert page.evaluate(f"() => __nsp.mix({node})")["exact"] is False
        assert _diff(after, _shot(page, rect)) > 0.2


def _graph_types(data):
    types = {n["type"] for n in data.get("nodes", [])}
    for sg in (data.get("definitions") or {}).get("subgraphs", []):
        types |= {n["type"] for n in sg.get("nodes", [])}
    subgraph_ids = {sg["id"] for sg in (data.get("definitions") or {}).get("subgraphs", [])}
    return types - subgraph_ids


def _load(page, data, name):
    if "nodes" in data:
        page.evaluate("async ([d, name]) => { await app.loadGraphData(d, true, true, name); }", [data, name])
    else:  # API format
        page.evaluate("async ([d, name]) => { await app.loadApiJson(d, name); }", [data, name])
    page.evaluate("async () => { await __nsp.frames(); await new Promise((r) => setTimeout(r, 300)); }")


def _build_demo_graph(page):
    """A small graph with the pack's three nodes wired as in a real workflow (until workflows/ exists)."""
    return page.evaluate("""async () => {
        const g = app.graph, add = (t, x, y) => { const n = LiteGraph.createNode(t); n.pos = [x, y]; g.add(n); return n; };
        const ckpt = add('CheckpointLoaderSimple', 20, 60);
        const erase = add('NoiseSemanticErase', 380, 40);
        const sched = add('NoiseSemanticTemporalSchedule', 380, 200);
        const inj = add('NoiseSemanticInject', 720, 40);
        const pos = add('CLIPTextEncode', 720, 260), neg = add('CLIPTextEncode', 720, 480);
        const lat = add('EmptyLatentImage', 380, 620);
        const ks = add('KSampler', 1100, 40);
        ckpt.connect(0, erase, 0); erase.connect(0, inj, 0); sched.connect(0, inj, 1);
        ckpt.connect(1, pos, 0); ckpt.connect(1, neg, 0);
        inj.connect(0, ks, 0); pos.connect(0, ks, 1); neg.connect(0, ks, 2); lat.connect(0, ks, 3);
        return app.graph.serialize();
    }""")


WORKFLOW_CASES = [pytest.param(p, id=p.stem) for p in WORKFLOWS] or [pytest.param(None, id="built-in-graph")]


@pytest.mark.parametrize("workflow", WORKFLOW_CASES)
def test_workflow_loads_without_missing_nodes(page, workflow, artifacts):
    if workflow is None:
        data, name = _build_demo_graph(page), "demo.json"
    else:
        data, name = json.loads(workflow.read_text()), workflow.name
    types = _graph_types(data) if "nodes" in data else {n["class_type"] for n in data.values()}
    unknown = page.evaluate("(types) => types.filter((t) => !LiteGraph.registered_node_types[t])", sorted(types))
    assert not unknown, f"{name}: node types the frontend does not know: {unknown}"
    toasts = page.evaluate("() => __nsp.toasts()")
    _load(page, data, name)
    assert page.evaluate("() => __nsp.dialogs()") == [], f"{name}: a dialog opened on load"
    new_toasts = [t for t in page.evaluate("() => __nsp.toasts()") if t not in toasts]
    assert not new_toasts, f"{name}: the frontend warned on load: {new_toasts}"
    # the whole graph on screen (LiteGraph draws only the visible nodes)
    page.evaluate("async () => { await app.extensionManager.command.execute('Comfy.Canvas.FitView'); "
                  "await __nsp.redraw(); await new Promise((r) => setTimeout(r, 300)); }")
    state = page.evaluate("""() => app.graph.nodes.map((n) => ({id: n.id, type: n.type,
        known: !!LiteGraph.registered_node_types[n.type] || !!n.subgraph, errors: !!n.has_errors,
        curve: n.__nsCurve ? {error: n.__nsCurve.error, probes: n.__nsCurve.probes.length} : null,
        mix: n.__nsMix ? {error: n.__nsMix.error} : null,
        fits: n.size[1] >= n.computeSize()[1] - 1}))""")
    assert state, f"{name}: no nodes loaded"
    for n in state:
        assert n["known"] and not n["errors"], f"{name}: node {n} did not load"
        if n["type"] == "NoiseSemanticTemporalSchedule":
            assert n["curve"] and n["curve"]["error"] is None and n["curve"]["probes"] > 0, n
            assert n["fits"], f"{name}: the schedule node is too small for its preview"
        if n["type"] == "NoiseSemanticInject":
            assert n["mix"] and n["mix"]["error"] is None, n
            assert n["fits"], n
    stem = workflow.stem if workflow is not None else "demo"
    _save_doc_image(_shot(page, page.evaluate("() => { const r = app.canvas.canvas.getBoundingClientRect();"
                                              " return {x: r.left, y: r.top, width: r.width, height: r.height}; }")),
                    f"workflow_{stem}.png", artifacts, width=1400)


def test_missing_node_check_can_fail(browser):
    """Control: a workflow with an unknown node type does raise the frontend's missing-nodes dialog,
    so the absence of that dialog below means something."""
    page, log = browser
    log.take()
    bogus = {"nodes": [{"id": 1, "type": "NspNoSuchNode", "pos": [0, 0], "size": [200, 80], "flags": {},
                        "order": 0, "mode": 0, "inputs": [], "outputs": [], "properties": {}}],
             "links": [], "groups": [], "config": {}, "extra": {}, "version": 0.4, "last_node_id": 1,
             "last_link_id": 0}
    _load(page, bogus, "bogus.json")
    page.wait_for_function("() => __nsp.dialogs().length > 0", timeout=10_000)
    assert "NspNoSuchNode" in " ".join(page.evaluate("() => __nsp.dialogs()"))
    page.keyboard.press("Escape")
    page.wait_for_function("() => __nsp.dialogs().length === 0", timeout=10_000)
    log.take()  # whatever the frontend logs about the unknown node is expected here


@pytest.mark.parametrize("node_type,heading", [
    ("NoiseSemanticErase", "Noise Semantic Erase"),
    ("NoiseSemanticInject", "Noise Semantic Inject"),
    ("NoiseSemanticTemporalSchedule", "Temporal Weight Schedule"),
])
def test_node_help_page(server, page, artifacts, node_type, heading):
    """The frontend's node help (selection toolbox: info) shows js/docs/<NodeId>.md."""
    with urllib.request.urlopen(f"{server.url}/extensions/{PACK}/docs/{node_type}.md") as r:
        assert r.status == 200 and heading in r.read().decode()
    node = page.evaluate(f"() => __nsp.add('{node_type}', 800, 250)")  # clear of the sidebar
    page.evaluate("() => __nsp.redraw()")
    # select it as a user does: a click on the title bar
    page.mouse.click(*_client_point(page, node, 40, -15))
    page.wait_for_function(f"() => app.canvas.selected_nodes?.[{node}]", timeout=5000)
    info = page.locator('[data-testid="info-button"]').first
    info.wait_for(state="visible", timeout=10_000)
    info.click()
    help_md = page.locator(".node-help-content .markdown-content").first
    help_md.wait_for(state="visible", timeout=10_000)
    page.wait_for_function("(h) => document.querySelector('.node-help-content .markdown-content')"
                           "?.innerText.includes(h)", arg=heading, timeout=10_000)
    text = help_md.inner_text()
    assert "## Inputs" not in text and "Inputs" in text  # markdown rendered, not shown raw
    if node_type == "NoiseSemanticTemporalSchedule":
        _save_doc_image(_png(page.screenshot()), "node_help.png", artifacts, width=1400)
    info.click()  # the same button closes the help again
    help_md.wait_for(state="hidden", timeout=10_000)


def test_previews_in_vue_node_renderer(page, artifacts):
    """With the frontend's "Nodes 2.0" renderer the previews are drawn through its legacy-widget canvas."""
    page.evaluate("async () => { await app.extensionManager.setting.set('Comfy.VueNodes.Enabled', true); }")
    try:
        node = page.evaluate("() => __nsp.add('NoiseSemanticTemporalSchedule', 80, 80)")
        inj = page.evaluate("() => __nsp.add('NoiseSemanticInject', 500, 80)")
        page.wait_for_selector(f'[data-node-id="{node}"] canvas', timeout=15_000)
        page.evaluate("() => __nsp.redraw()")
        canvas = page.locator(f'[data-node-id="{node}"] canvas').first
        img = _png(canvas.screenshot())
        assert len(_color_pixels(img, ACCENT)) > 100, "no curve in the Vue node's preview canvas"
        page.locator(f'[data-node-id="{node}"]').first.screenshot(path=str(artifacts / "schedule_node_vue.png"))
        draws = page.evaluate(f"() => __nsp.curve({node}).draws")
        # a change through the widget API (what the Vue widgets call) redraws the preview
        page.evaluate(f"() => {{ const w = __nsp.widget({node}, 'weighting'); w.value = 'uniform';"
                      f" w.callback?.('uniform'); }}")
        page.evaluate("() => __nsp.frames()")
        flat = page.evaluate(f"() => __nsp.curve({node})")
        assert flat["draws"] > draws and flat["weighting"] == "uniform"
        assert _diff(img, _png(canvas.screenshot())) > 0.5
        page.wait_for_selector(f'[data-node-id="{inj}"] canvas', timeout=15_000)
        assert page.evaluate(f"() => __nsp.mix({inj})")["error"] is None
    finally:
        page.evaluate("async () => { await app.extensionManager.setting.set('Comfy.VueNodes.Enabled', false); }")
