"""What the nodes say after a real run, in the browser: Noise Semantic Inject reports per image the
candidate it kept, the scores, the strength and the extra evaluations; Noise Semantic Preview shows its
scores. Both through ComfyUI's own progress-text channel (PromptServer.send_progress_text, shown by every
frontend as the node's text preview widget), no route of the pack's own.

On every target (frontend x renderer, conftest.py), a graph is built in the page with the demo's tiny
digits model (the served base has the demo's nodes): a KSampler whose MODEL goes through Inject with
screening on, and a Preview on the same seed, cfg, prompt and latent; the real Run button queues it. Checked:
the text appears on both nodes, names every image of the batch, and the candidate Inject reports keeping is
the one the Preview marks, with the same scores.
"""
from __future__ import annotations

import re
import time
import zlib

from test_browser import _save_doc_image  # noqa: F401  (conftest puts tests/browser on sys.path)

TEXT_WIDGET = "$$node-text-preview"  # the frontends' progress-text widget (1.32.9, 1.49.6, 1.58.1)
BATCH, M, CFG = 2, 4, 0.5

BUILD = """async ([batch, m, seed, cfg]) => {
    const add = (t, x, y) => __nsp.add(t, x, y);
    const node = (id) => app.graph.getNodeById(id);
    const link = (a, slot, b, name) => node(a).connect(slot, node(b), node(b).inputs.findIndex((i) => i.name === name));
    const ids = {
        loader: add('DigitsDemoModelLoader', 20, 40), pos: add('DigitsDemoClassConditioning', 20, 200),
        neg: add('DigitsDemoClassConditioning', 20, 340), latent: add('EmptyLatentImage', 20, 480),
        inject: add('NoiseSemanticInject', 340, 40), sampler: add('KSampler', 700, 40),
        image: add('DigitsDemoLatentToImage', 1040, 40), show: add('PreviewImage', 1040, 260),
        preview: add('NoiseSemanticPreview', 340, 420), sheet: add('DigitsDemoLatentToImage', 700, 520),
        sheetShow: add('PreviewImage', 1040, 520),
    };
    await __nsp.set(ids.pos, 'digit', 3);
    await __nsp.set(ids.neg, 'digit', 10);
    await __nsp.set(ids.latent, 'width', 32);
    await __nsp.set(ids.latent, 'height', 32);
    await __nsp.set(ids.latent, 'batch_size', batch);
    await __nsp.set(ids.inject, 'candidates', m);
    for (const [id, s] of [[ids.sampler, 'seed'], [ids.preview, 'seed']]) {
        await __nsp.set(id, s, seed);
        await __nsp.set(id, 'control_after_generate', 'fixed');
        await __nsp.set(id, 'cfg', cfg);
    }
    await __nsp.set(ids.sampler, 'steps', 4);
    await __nsp.set(ids.preview, 'candidates', m);
    await __nsp.set(ids.sheet, 'columns', m);
    for (const c of [ids.pos, ids.neg]) link(ids.loader, 0, c, 'model');
    link(ids.loader, 0, ids.inject, 'model');
    link(ids.inject, 0, ids.sampler, 'model');
    for (const [a, b] of [['pos', 'positive'], ['neg', 'negative']]) {
        link(ids[a], 0, ids.sampler, b);
        link(ids[a], 0, ids.preview, b);
    }
    link(ids.latent, 0, ids.sampler, 'latent_image');
    link(ids.latent, 0, ids.preview, 'latent');
    link(ids.loader, 0, ids.preview, 'model');
    link(ids.sampler, 0, ids.image, 'samples');
    link(ids.loader, 0, ids.image, 'model');
    link(ids.image, 0, ids.show, 'images');
    link(ids.preview, 0, ids.sheet, 'samples');
    link(ids.loader, 0, ids.sheet, 'model');
    link(ids.sheet, 0, ids.sheetShow, 'images');
    await __nsp.redraw();
    return ids;
}"""

TEXT = f"([id]) => app.graph.getNodeById(id)?.widgets?.find((w) => w.name === {TEXT_WIDGET!r})?.value ?? null"


def test_inject_and_preview_report_after_a_run(target, page, artifacts):
    # a seed of the target's own: the same prompt queued again on the same server (the other renderer) would
    # come from ComfyUI's cache, with no sampling and so no report
    seed = 1 + zlib.crc32(target.id.encode()) % 10_000
    ids = page.evaluate(BUILD, [BATCH, M, seed, CFG])
    assert page.evaluate("() => __nsp.missing()") == []
    for nid in (ids["inject"], ids["preview"]):
        assert page.evaluate(TEXT, [nid]) is None  # nothing before a run
    with page.expect_response(lambda r: r.url.endswith("/prompt") and r.request.method == "POST") as resp:
        page.locator('[data-testid="queue-button"]').locator("visible=true").first.click()
    assert resp.value.ok, resp.value.text()
    prompt_id = resp.value.json()["prompt_id"]
    deadline = time.time() + 240
    while not (done := target.server.get_json(f"/history/{prompt_id}")) and time.time() < deadline:
        time.sleep(0.5)
    assert done, f"the run did not finish:\n{target.server.log_tail()}"
    assert done[prompt_id]["status"]["status_str"] == "success", done[prompt_id]["status"]
    try:
        page.wait_for_function(f"() => [{ids['inject']}, {ids['preview']}].every((id) => !!({TEXT})([id]))",
                               timeout=20_000)
    except Exception:
        widgets = page.evaluate("([ids]) => ids.map((id) => app.graph.getNodeById(id)?.widgets?.map((w) => w.name))",
                                [[ids["inject"], ids["preview"]]])
        raise AssertionError(f"no progress text on the nodes after the run; their widgets: {widgets}")
    inject, preview = page.evaluate(TEXT, [ids["inject"]]), page.evaluate(TEXT, [ids["preview"]])
    print(f"\n{target.id}: Inject says:\n{inject}\nPreview says:\n{preview}")

    # Inject: one line per image: kept candidate, scores, strength, extra evaluations (2 branches x M x 1 probe)
    kept = re.findall(r"^image (\d+): kept candidate (\d+) of (\d+) \(conflict ([^)]*)\), strength 0, "
                      r"(\d+) extra evaluations$", inject, re.M)
    assert [int(k[0]) for k in kept] == list(range(1, BATCH + 1)), inject
    assert all(int(k[2]) == M and int(k[4]) == 2 * M for k in kept), inject
    # Preview: the same candidates and scores, before sampling
    marked = re.findall(r"^image (\d+): (.*) -> candidate (\d+)$", preview, re.M)
    assert [(m[0], m[1], m[2]) for m in marked] == [(k[0], k[3], k[1]) for k in kept]
    # and shown on the page, not only held by the widget
    page.evaluate("async () => { await __nsp.redraw(); await __nsp.sleep(200); }")
    shown = page.evaluate("() => [...document.querySelectorAll('textarea, .comfy-multiline-input, div')]"
                          ".some((e) => (e.value ?? e.textContent ?? '').includes('kept candidate'))")
    if target.id == "1.32.9-vue":
        # Known frontend defect, left: 1.32.9's Vue renderer keeps a progress text in the node's widget (checked
        # above) but does not draw it (the node's DOM has no text preview; ComfyUI's own Get Image Size text is
        # in the same widget); 1.49.6 and 1.58.1 show it in both renderers, 1.32.9 on the classic canvas.
        assert not shown, "1.32.9's Vue renderer now shows progress text: drop this exception"
    else:
        assert shown, "Inject's report is not on the page"
    _save_doc_image(target, page.screenshot(), "reports_after_run.png", artifacts)
