"""The compare workflows (workflows/*_compare.json, scripts/make_workflows.py): for each model workflow, the
stock sampler and the refined one side by side with the same seed and settings, a Noise Semantic Preview
sheet of the noise's own content, labelled outputs and a Note on how to read them.

The static checks of test_workflows.py (bookkeeping, node types, links, widget values, model files, API
validation) run on these files too. Here, per file:
- the graph: two first-stage samplers that add noise, the refined one behind Erase -> Inject, the stock one
  with none of the pack's nodes and otherwise the same MODEL chain, the same prompt, latent and widget values
  (seed fixed); the Preview fed what the refined sampler gets (the model before Inject, its prompt, latent,
  seed, cfg, Inject's candidates and schedule), both its LATENTs decoded and shown; savers labelled stock /
  refined downstream of their own sampler; the Note tells how to count fixed / broken against a reseed;
- end to end in ComfyUI's executor with the stand-ins (tests/stand_ins.py, as test_workflows.py runs the
  model workflows): the stock sampler starts from ComfyUI's stock noise, the refined one from the candidate
  the Preview marks (bit for bit; img2img: an injected noise that is none of the candidates), every output
  written under its label, the Preview's sheets hold every candidate.
"""
from __future__ import annotations

import re

import pytest

import host
from noise_semantics import core
from test_workflows import (OURS, PLAIN, SAMPLERS, WORKFLOW_DIR, _prepare, _run, _saved_files, _upstream_models,
                            adds_noise, family_of, live, load)  # noqa: F401  (live: the fixture)

COMPARES = sorted(WORKFLOW_DIR.glob("*_compare.json"))
SAVERS = {"SaveImage", "SaveVideo", "SaveAnimatedWEBP"}


def test_every_model_workflow_has_a_compare_file():
    assert {p.stem.removesuffix("_noise_semantics") + "_compare" for p in PLAIN} == {p.stem for p in COMPARES}


def _downstream(prompt, start):
    seen, todo = set(), [start]
    while todo:
        cur = todo.pop()
        for nid, node in prompt.items():
            if nid not in seen and any(isinstance(v, list) and v and v[0] == cur for v in node["inputs"].values()):
                seen.add(nid)
                todo.append(nid)
    return seen


def roles(prompt):
    """{"stock": id, "refined": id} of the two first-stage samplers, told apart by their MODEL chain."""
    first = [k for k, v in prompt.items() if v["class_type"] in SAMPLERS and adds_noise(v)]
    assert len(first) == 2, f"expected a stock and a refined sampler adding noise, got {first}"
    out = {}
    for sid in first:
        chain = [c for _, c in _upstream_models(prompt, sid)]
        out["refined" if "NoiseSemanticInject" in chain else "stock"] = sid
    assert set(out) == {"stock", "refined"}, out
    return out


@pytest.mark.parametrize("path", COMPARES, ids=lambda p: p.stem)
def test_compare_graph(live, path):
    wa = live["wa"]
    wf = load(path)
    prompt = wa.to_api(wf)
    r = roles(prompt)
    stock, refined = prompt[r["stock"]], prompt[r["refined"]]
    chain = {k: [c for _, c in _upstream_models(prompt, r[k])] for k in r}
    assert chain["refined"][:2] == ["NoiseSemanticInject", "NoiseSemanticErase"], chain
    assert chain["stock"] == chain["refined"][2:], chain  # the same MODEL chain without the pack
    assert not OURS & set(chain["stock"])
    same = lambda node: {k: v for k, v in node["inputs"].items() if k != "model"}
    assert same(stock) == same(refined)
    # the seed is fixed in the UI on both (a randomized one would drift apart after the first run)
    for n in wf["nodes"]:
        if str(n["id"]) in r.values():
            values = wa.widget_values(n)
            assert [v for k, v in values.items() if k.endswith("control_after_generate")] == ["fixed"], n["id"]

    ups = dict((c, i) for i, c in _upstream_models(prompt, r["refined"]))
    inject = prompt[ups["NoiseSemanticInject"]]["inputs"]
    (pid,) = [k for k, v in prompt.items() if v["class_type"] == "NoiseSemanticPreview"]
    prev = prompt[pid]["inputs"]
    assert prev["model"] == [ups["NoiseSemanticErase"], 0]
    assert [prev[k] for k in ("positive", "negative", "latent")] == \
        [refined["inputs"][k] for k in ("positive", "negative", "latent_image")]
    seed = refined["inputs"].get("seed", refined["inputs"].get("noise_seed"))
    assert (prev["seed"], prev["cfg"]) == (seed, refined["inputs"]["cfg"])
    assert prev["candidates"] == inject.get("candidates", 1) and prev["schedule"] == inject["schedule"]
    for slot in (0, 1):  # prefers, asked: decoded and shown
        decodes = [k for k, v in prompt.items() if v["class_type"] == "VAEDecode" and v["inputs"]["samples"] == [pid, slot]]
        assert len(decodes) == 1
        assert any(v["class_type"] == "PreviewImage" and v["inputs"]["images"] == [decodes[0], 0]
                   for v in prompt.values())

    for side in ("stock", "refined"):
        savers = [k for k in _downstream(prompt, r[side]) if prompt[k]["class_type"] in SAVERS]
        assert savers and all(prompt[k]["inputs"]["filename_prefix"].endswith(f"_{side}") for k in savers), side
    (note,) = [n["widgets_values"][0] for n in wf["nodes"] if n["type"] == "Note"
               and n.get("title", "").startswith("How to read")]
    for words in ("16", "fixed", "broken", "reseed control", "Noise Semantic Preview", "benchmark"):
        assert words in note, words


def _preview_picks(text: str) -> list:
    return [int(k) - 1 for k in re.findall(r"-> candidate (\d+)$", text, re.M)]


@pytest.mark.parametrize("path", COMPARES, ids=lambda p: p.stem)
def test_compare_runs_end_to_end(live, path):
    import comfy.sample
    import torch

    wf = load(path)
    prompt, samplers = _prepare(live, wf, family_of(path))
    (pid,) = [k for k, v in prompt.items() if v["class_type"] == "NoiseSemanticPreview"]
    shown = str(max(int(k) for k in prompt) + 1)
    prompt[shown] = {"class_type": "PreviewAny", "inputs": {"source": [pid, 2]}}  # the scores, for the test
    r = roles(prompt)
    history, captured = _run(live, prompt)

    text = history["outputs"][shown]["text"][0]
    picks = _preview_picks(text)
    rec = {k: captured[f"sampler-{r[k]}"][0] for k in r}
    seed = int(rec["stock"]["seed"])
    assert int(rec["refined"]["seed"]) == seed
    stock = comfy.sample.prepare_noise(torch.zeros_like(rec["stock"]["latent_image"]), seed)
    assert torch.equal(rec["stock"]["noise"], stock), "the stock sampler did not start from the stock noise"
    assert len(picks) == stock.shape[0]
    ups = dict((c, i) for i, c in _upstream_models(prompt, r["refined"]))
    inject = prompt[ups["NoiseSemanticInject"]]["inputs"]
    m = inject.get("candidates", 1)
    cands = core.candidate_noises(stock, seed, m)
    got = rec["refined"]["noise"]
    for b, k in enumerate(picks):
        if inject["strength"] == 0:
            assert torch.equal(got[b], cands[k][b]), f"image {b + 1}: not the candidate the Preview marks ({k + 1})"
        else:
            assert not any(torch.allclose(got[b], c[b], atol=1e-5) for c in cands)

    files = _saved_files(history)
    for side in ("stock", "refined"):
        assert any(f"_{side}" in f.name and f.stat().st_size > 0 for f in files), (side, files)
    # the Preview's sheets: every candidate decoded, prefers and asked alike
    sheets = {}
    for nid, node in prompt.items():
        if node["class_type"] == "PreviewImage":
            dec = prompt[node["inputs"]["images"][0]]
            if dec["class_type"] == "VAEDecode" and dec["inputs"]["samples"][0] == pid:
                sheets[dec["inputs"]["samples"][1]] = len(history["outputs"][nid]["images"])
    assert set(sheets) == {0, 1} and sheets[0] == sheets[1] and sheets[0] % m == 0 and sheets[0] >= m, sheets
    print(f"\n{path.stem}: Preview kept {[k + 1 for k in picks]} of {m}")
