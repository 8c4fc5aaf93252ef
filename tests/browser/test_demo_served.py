"""The first run a user clicks through: the demo workflow in the served ComfyUI.

The server is laid out as ``scripts/start.sh`` serves it (``demo/served_base.py``, see conftest.py):
the pack, the demo's own node folder and the demo workflow in the user's workflow list. On every
target the test opens the workflow from the workflows sidebar, presses the real Run button and waits
until the frontend shows both images (stock and refined). Checked:

* the frontend posted the workflow as shipped: both KSamplers with the same settings, the refined
  one's MODEL through the pack's Noise Semantic Inject with screening on;
* both images are loaded by the frontend and drawn on the page, and they differ (screening changed
  the result);
* the refined image (and the stock one) equals, pixel for pixel, what the same workflow gives through
  ComfyUI's executor without a server or a frontend (tests/workflow_api.py converts it, tests/host.py
  runs it in this process, once per session).

What the images show (how many digits are right) is reported in the workflow's Note, measured by
``demo/make_workflow.py``; it is never asserted here.

And the first page: the link ``scripts/start.sh`` prints (``served_base.FIRST_PAGE``), opened from a
fresh browser profile, shows the demo graph with no dialog over it, with the settings the served base
gets (``served_base.SETTINGS``).
"""
from __future__ import annotations

import io
import json
import re
import urllib.request
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DEMO_WORKFLOW = ROOT / "demo" / "workflows" / "noise_semantics_demo_digits.json"
import nsp_harness as harness  # noqa: E402
import served_base  # noqa: E402  (demo/, on sys.path through conftest.py)
from test_browser import _save_doc_image  # noqa: E402


def _png(data: bytes) -> np.ndarray:
    from PIL import Image
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)


def _previews(wf: dict) -> dict:
    """{"stock": id, "refined": id} of the PreviewImage nodes, told apart by the graph: the refined
    one's KSampler takes its MODEL from Noise Semantic Inject."""
    nodes = {n["id"]: n for n in wf["nodes"]}
    origin = {l[0]: l[1] for l in wf["links"]}

    def up(nid, name):
        inp = next(i for i in nodes[nid]["inputs"] if i["name"] == name)
        return origin[inp["link"]]

    out = {}
    for n in wf["nodes"]:
        if n["type"] == "PreviewImage":
            sampler = up(up(n["id"], "images"), "samples")
            out["refined" if nodes[up(sampler, "model")]["type"] == "NoiseSemanticInject" else "stock"] = n["id"]
    assert set(out) == {"stock", "refined"}, out
    return out


@pytest.fixture(scope="session")
def executor_images():
    """{node id: pixels} of the demo workflow run through ComfyUI's executor in this process, with no
    server and no frontend: converted to an API prompt by tests/workflow_api.py (from the live node
    definitions, not the frontend's own conversion) and run in the real PromptExecutor
    (tests/host.py), the demo's nodes loaded from their folder by ComfyUI's loader. One torch thread,
    as the test server runs (nsp_harness.ComfyServer). In a thread of its own: Playwright's sync API
    keeps an event loop running in this one, and ComfyUI's boot and executor start their own."""
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(_run_in_executor).result()


def _run_in_executor():
    import host
    nodes = host.boot()  # the session's ComfyUI when the integration tests ran before, else a new one
    served_base.load_demo_nodes(nodes)
    import folder_paths
    import torch
    import workflow_api
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        history = host.run_prompt(workflow_api.to_api(json.loads(DEMO_WORKFLOW.read_text())))
    finally:
        torch.set_num_threads(threads)
    out = {}
    for node, ui in history["outputs"].items():
        for im in ui.get("images", [])[:1]:
            path = Path(folder_paths.get_directory_by_type(im["type"])) / im.get("subfolder", "") / im["filename"]
            out[int(node)] = _png(path.read_bytes())
    return out


def _close_demo(page):
    """Closes the demo workflow's tab if it is open (this test on another renderer, same page, opened
    it). The Vue renderer resizes nodes, which marks the workflow modified: the frontend then asks
    whether to save it, and the answer is no, as a user's would be."""
    active = "([n]) => !!app.extensionManager.workflow.activeWorkflow?.path?.endsWith(n)"
    for _ in range(3):
        if not page.evaluate(active, [DEMO_WORKFLOW.name]):
            return
        # not awaited: the command waits for the answer to its dialog
        page.evaluate("() => { app.extensionManager.command.execute('Workspace.CloseWorkflow'); }")
        page.wait_for_function(f"() => !({active})([{json.dumps(DEMO_WORKFLOW.name)}])"
                               " || !!document.querySelector('[role=dialog]')", timeout=10_000)
        dialog = page.get_by_role("dialog").filter(has_text=DEMO_WORKFLOW.stem)
        if dialog.count():
            # "No" up to 1.49, "Close anyway" in 1.58: close without saving
            dialog.locator("button").filter(has_text=re.compile(r"^\s*(No|Close anyway)\s*$")).click()
            dialog.wait_for(state="hidden", timeout=10_000)
    raise AssertionError("the demo workflow's tab did not close")


def _toggle_workflows_sidebar(page):
    page.evaluate("async () => { await app.extensionManager.command.execute('Workspace.ToggleSidebarTab.workflows');"
                  " await __nsp.frames(); }")


# on the page: the image the frontend shows for a node's output, once it has loaded it (the classic
# canvas draws node.imgs, the Vue renderer an <img> in the node); null until then
SHOWN = """([ids]) => ids.map((id) => {
    const out = app.nodeOutputs?.[String(id)]?.images?.[0];
    if (!out) return null;
    const key = 'filename=' + encodeURIComponent(out.filename);
    const imgs = [...(app.graph.getNodeById(id).imgs ?? []), ...document.querySelectorAll('img')];
    const img = imgs.find((i) => i.src?.includes(key) && i.complete && i.naturalWidth > 0);
    return img ? {src: img.src, w: img.naturalWidth, h: img.naturalHeight, type: out.type} : null;
})"""


def test_demo_workflow_runs_from_the_users_list(target, page, artifacts, executor_images):
    wf = json.loads(DEMO_WORKFLOW.read_text())
    ids = _previews(wf)
    assert DEMO_WORKFLOW.name in target.server.get_json("/userdata?dir=workflows")
    _close_demo(page)
    # as a user opens it: the workflows sidebar, a click on its name
    _toggle_workflows_sidebar(page)
    page.get_by_text(DEMO_WORKFLOW.stem).first.click()
    page.wait_for_function("() => app.graph.nodes.some((n) => n.type === 'DigitsDemoModelLoader')", timeout=30_000)
    _toggle_workflows_sidebar(page)
    try:
        assert page.evaluate("() => __nsp.missing()") == []
        # every node of the file (ids as strings: newer frontends keep some as strings)
        assert sorted(page.evaluate("() => app.graph.nodes.map((n) => String(n.id))")) == \
            sorted(str(n["id"]) for n in wf["nodes"])
        # the real Run button
        with page.expect_response(lambda r: r.url.endswith("/prompt") and r.request.method == "POST") as resp:
            page.locator('[data-testid="queue-button"]').locator("visible=true").first.click()
        assert resp.value.ok, resp.value.text()
        prompt_id = resp.value.json()["prompt_id"]
        page.wait_for_function(f"() => ({SHOWN})([{json.dumps(list(ids.values()))}]).every(Boolean)",
                               timeout=240_000)
        shown = dict(zip(ids, page.evaluate(SHOWN, [list(ids.values())])))

        # what the frontend posted: the shipped settings, the same for both samplers
        prompt = target.server.get_json(f"/history/{prompt_id}")[prompt_id]["prompt"][2]
        samplers = [v for v in prompt.values() if v["class_type"] == "KSampler"]
        assert len(samplers) == 2
        same = [{k: v for k, v in s["inputs"].items() if k != "model"} for s in samplers]
        assert same[0] == same[1]
        inject = [v for v in prompt.values() if v["class_type"] == "NoiseSemanticInject"]
        assert len(inject) == 1 and inject[0]["inputs"]["candidates"] > 1

        # the images the frontend loaded: they differ, and each equals what the executor gives
        ui = {k: _png(urllib.request.urlopen(v["src"], timeout=10).read()) for k, v in shown.items()}
        for k in ids:
            assert ui[k].shape[:2] == (shown[k]["h"], shown[k]["w"])
        diff = float(np.abs(ui["stock"] - ui["refined"]).mean())
        assert diff > 1.0, f"stock and refined images are (nearly) the same: mean abs diff {diff:.3f}"
        for k in ids:
            ref = executor_images[ids[k]]
            assert ui[k].shape == ref.shape, (k, ui[k].shape, ref.shape)
            bad = int((ui[k] != ref).any(axis=2).sum())
            assert bad == 0, f"{k}: {bad} pixels differ from the executor's run of the same workflow"

        # and drawn on the page: the sheets' white background fills part of each preview node (the
        # dark theme has no white area of that size), and the two nodes look different
        page.evaluate("async () => { await __nsp.redraw(); await __nsp.sleep(200); await __nsp.redraw(); }")
        shots = {}
        for k, nid in ids.items():
            rect = page.evaluate("([id]) => __nsp.nodeRect(id)", [nid])
            shots[k] = _png(page.screenshot(clip=rect))
            white = float((shots[k] > 235).all(axis=2).mean())
            assert white > 0.1, f"{k}: the image is not drawn in its node ({white:.3f} of it white)"
        assert shots["stock"].shape != shots["refined"].shape or \
            float(np.abs(shots["stock"] - shots["refined"]).mean()) > 1.0
        # the README's picture of the demo (conftest.DOC_TARGET, NSP_UPDATE_SCREENSHOTS=1)
        _save_doc_image(target, page.screenshot(), "demo_workflow.png", artifacts, width=1400)
        print(f"\n{target.id}: stock vs refined mean abs pixel diff {diff:.2f}")
    finally:
        _close_demo(page)


def test_first_page_opens_the_demo(target, stack, artifacts, tmp_path):
    """start.sh's link from a fresh browser profile (a new context: nothing in its localStorage or
    sessionStorage, so nothing to restore): the first screen is the demo workflow, every node of it,
    no template browser or other dialog over it, no console error."""
    # the served base's own settings (the test server adds a returning user's on top of them)
    settings = json.loads((served_base.prepare(tmp_path / "base") / "user" / "default"
                           / "comfy.settings.json").read_text())
    assert settings.items() >= served_base.SETTINGS.items()
    wf = json.loads(DEMO_WORKFLOW.read_text())
    assert DEMO_WORKFLOW.stem == served_base.DEMO_WORKFLOW
    ctx, page = harness.new_page(stack.browser, scale=1.0)
    log = harness.ConsoleLog()
    log.attach(page)
    try:
        page.goto(target.server.url + served_base.FIRST_PAGE)
        page.wait_for_function("() => window.app?.graph?.nodes?.some((n) => n.type === 'DigitsDemoModelLoader')",
                               timeout=120_000)
        page.wait_for_timeout(1000)  # a dialog the start-up opens after the graph (1.32.9's template browser)
        assert sorted(page.evaluate("() => app.graph.nodes.map((n) => String(n.id))")) == \
            sorted(str(n["id"]) for n in wf["nodes"])
        assert page.evaluate("() => app.extensionManager.workflow.activeWorkflow?.filename ?? null") == \
            DEMO_WORKFLOW.stem
        dialogs = page.get_by_role("dialog").all_inner_texts()
        assert not dialogs, f"a dialog covers the demo on the first page: {dialogs}"
        (artifacts / f"{target.id}_first_page.png").write_bytes(page.screenshot())
        assert not log.errors, "console errors on the first page:\n" + "\n".join(f"{t} [{u}]" for t, u in log.errors)
    finally:
        ctx.close()
