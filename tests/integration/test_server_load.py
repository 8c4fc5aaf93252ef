"""The pack in a real ComfyUI server, under load and faults, through its HTTP and websocket API.

One ``main.py --cpu`` server per host (127.0.0.1, a free port, killed in the fixture's ``finally``),
with the pack and a test-only custom-node folder (tests/server_nodes: the tiny models and stand-ins
of tests/stand_ins.py). The server runs with its default cache (0.3.75: classic; 0.33: RAM pressure).

A prompt the pack rejects fails in one of two places, and the tests keep them apart:
* validation (POST /prompt answers 400 with ``node_errors``; the prompt is never queued and never
  reaches /history): values outside a schema's bounds, a wrong link type, and on 0.33 (not on 0.3.75,
  which checks only V1 combos) a combo value not offered;
* execution (queued; /history holds ``execution_error`` with the node's own message): what the
  schemas cannot express (NaN passes every bound check, a reversed or empty time range, a bump with
  no weight, a non-schedule object through an ``*`` output, a guider with no negative prompt, a
  latent the model refuses, a CFG that makes the prediction NaN). Errors the pack raises inside the
  sampler (the SAMPLER_SAMPLE wrapper) are reported by ComfyUI against the sampler node.

Every prompt that should run is first run alone (tag "ref"), then again inside the load with another
tag (tests/server_nodes NSTestTag on the latent wire: its only effect is a new cache key, so the
sampler, where all of the pack's work happens, really runs again): the saved latents and images must
be equal bit for bit.
"""
from __future__ import annotations

import copy
import io
import math
import time

import pytest
import torch

import host
from live_server import LiveServer

ROOT = host.ROOT
TEST_NODES = ROOT / "tests" / "server_nodes"
SIZE = 32  # pixels: 4 x 4 latents
STEPS = 4


# ---------------------------------------------------------------- prompts

def graph(*, family="sdxl", tag="ref", erase=None, inject=None, schedule=None, sampler="KSampler",
          guider="CFGGuider", seed=7, steps=STEPS, cfg=4.0, denoise=1.0, latent=None, size=SIZE,
          save=True, inspect=False, loader="NSTestCheckpointLoader") -> dict:
    """An API prompt: tiny model -> [Erase] -> [Inject (+ Schedule)] -> sampler -> SaveLatent and
    VAE Decode -> SaveImage. ``erase``/``inject``/``schedule``: that node's inputs (None: no node)."""
    p = {
        "1": {"class_type": loader, "inputs": {"ckpt_name": "tiny", "family": family, "seed": 0}},
        "2": {"class_type": "NSTestTextEncode", "inputs": {"clip": ["1", 1], "text": "a red cube on a table"}},
        "3": {"class_type": "NSTestTextEncode", "inputs": {"clip": ["1", 1], "text": "blurry"}},
        "13": {"class_type": "NSTestTag", "inputs": {"samples": ["4", 0], "tag": tag}},
    }
    if latent == "wrong-vae":
        # An img2img latent from another family's VAE (16 channels into SDXL's 4). An empty latent
        # would not do: ComfyUI resizes the channels of an all-zero latent to fit the model.
        p["20"] = {"class_type": "NSTestVAELoader", "inputs": {"vae_name": "taef1", "family": "flux"}}
        p["21"] = {"class_type": "EmptyImage", "inputs": {"width": size, "height": size, "batch_size": 1,
                                                          "color": 0x808080}}
        p["4"] = {"class_type": "VAEEncode", "inputs": {"pixels": ["21", 0], "vae": ["20", 0]}}
    else:
        latent = latent or ("EmptyLatentImage" if family == "sdxl" else "EmptySD3LatentImage")
        p["4"] = {"class_type": latent, "inputs": {"width": size, "height": size, "batch_size": 1}}
    model = ["1", 0]
    if erase is not None:
        p["5"] = {"class_type": "NoiseSemanticErase", "inputs": {"model": model, "samples": 1, "restandardize": True,
                                                                 **erase}}
        model = ["5", 0]
    if inject is not None:
        p["7"] = {"class_type": "NoiseSemanticInject", "inputs": {"model": model, "strength": 0.5,
                                                                  "decorrelate": True, **inject}}
        if schedule is not None:
            p["6"] = {"class_type": "NoiseSemanticTemporalSchedule",
                      "inputs": {"probes": 3, "tau_min": 0.5, "tau_max": 1.0, "weighting": "bump", "center": 0.8,
                                 "half_width": 0.5, "flatness": 1.0, **schedule}}
            p["7"]["inputs"].setdefault("schedule", ["6", 0])
        model = ["7", 0]
    if sampler == "KSampler":
        p["8"] = {"class_type": "KSampler", "inputs": {
            "model": model, "seed": seed, "steps": steps, "cfg": cfg, "sampler_name": "euler", "scheduler": "normal",
            "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["13", 0], "denoise": denoise}}
    elif sampler == "KSamplerAdvanced":
        p["8"] = {"class_type": "KSamplerAdvanced", "inputs": {
            "model": model, "add_noise": "enable", "noise_seed": seed, "steps": steps, "cfg": cfg,
            "sampler_name": "euler", "scheduler": "normal", "positive": ["2", 0], "negative": ["3", 0],
            "latent_image": ["13", 0], "start_at_step": 0, "end_at_step": 10000,
            "return_with_leftover_noise": "disable"}}
    elif sampler == "SamplerCustomAdvanced":
        p["14"] = {"class_type": "RandomNoise", "inputs": {"noise_seed": seed}}
        if guider == "BasicGuider":
            p["15"] = {"class_type": "BasicGuider", "inputs": {"model": model, "conditioning": ["2", 0]}}
        else:
            p["15"] = {"class_type": "CFGGuider", "inputs": {"model": model, "positive": ["2", 0],
                                                             "negative": ["3", 0], "cfg": cfg}}
        p["16"] = {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler"}}
        p["17"] = {"class_type": "BasicScheduler", "inputs": {"model": model, "scheduler": "normal", "steps": steps,
                                                              "denoise": denoise}}
        p["8"] = {"class_type": "SamplerCustomAdvanced", "inputs": {
            "noise": ["14", 0], "guider": ["15", 0], "sampler": ["16", 0], "sigmas": ["17", 0],
            "latent_image": ["13", 0]}}
    else:
        raise ValueError(sampler)
    if save:
        p["9"] = {"class_type": "VAEDecode", "inputs": {"samples": ["8", 0], "vae": ["1", 2]}}
        p["10"] = {"class_type": "SaveImage", "inputs": {"images": ["9", 0], "filename_prefix": f"nsp/{tag}"}}
        p["11"] = {"class_type": "SaveLatent", "inputs": {"samples": ["8", 0], "filename_prefix": f"nsp_latent/{tag}"}}
    if inspect:
        p["18"] = {"class_type": "NSTestInspectModel", "inputs": {"model": ["1", 0], "label": tag}}
    return p


def retag(prompt: dict, tag: str) -> dict:
    p = copy.deepcopy(prompt)
    p["13"]["inputs"]["tag"] = tag
    if "10" in p:
        p["10"]["inputs"]["filename_prefix"] = f"nsp/{tag}"
        p["11"]["inputs"]["filename_prefix"] = f"nsp_latent/{tag}"
    return p


NAN = float("nan")
TPW = {}  # the schedule node at the test's defaults

# Prompts that run: every node of the pack, every sampler kind, both model families (eps, flow).
VALID = {
    "stock": dict(),
    "erase4": dict(erase={"samples": 4}),
    "inject": dict(inject={}),
    "erase+inject+tpw": dict(erase={"samples": 3}, inject={"strength": 1.0}, schedule=TPW),
    "uniform+nodecor": dict(inject={"strength": 4.0, "decorrelate": False}, schedule={"weighting": "uniform",
                                                                                      "probes": 5}),
    "prompt-dir": dict(inject={"direction": "prompt", "strength": 0.7}),
    "screen3": dict(inject={"strength": 0.0, "candidates": 3}),
    "advanced": dict(sampler="KSamplerAdvanced", erase={"samples": 2}, inject={}),
    "custom+screen": dict(sampler="SamplerCustomAdvanced", inject={"candidates": 2, "strength": 0.3}),
    "basicguider": dict(sampler="SamplerCustomAdvanced", guider="BasicGuider", inject={}),
    "img2img": dict(inject={"apply_to": "every sampler"}, denoise=0.6),
    "flux-stock": dict(family="flux"),
    "flux-both": dict(family="flux", erase={"samples": 2}, inject={"strength": 0.8}, schedule=TPW),
}

# Queued, then failing while it runs: (graph kwargs, node id whose error it is, its class, message parts).
S_INJECT, S_SCHED = "[Noise Semantic Inject]", "[Temporal Weight Schedule]"
EXEC_BAD = {
    "strength-nan": (dict(inject={"strength": NAN}), "7", "NoiseSemanticInject",
                     [S_INJECT, "input 'strength' is nan", "Fix:"]),
    "tau-reversed": (dict(inject={}, schedule={"tau_min": 0.9, "tau_max": 0.5}), "6",
                     "NoiseSemanticTemporalSchedule", [S_SCHED, "reversed", "Fix:"]),
    "tau-empty": (dict(inject={}, schedule={"tau_min": 0.7, "tau_max": 0.7}), "6",
                  "NoiseSemanticTemporalSchedule", [S_SCHED, "is empty", "Fix:"]),
    "bump-zero": (dict(inject={}, schedule={"center": 0.0, "half_width": 0.1}), "6",
                  "NoiseSemanticTemporalSchedule", [S_SCHED, "zero weight", "Fix:"]),
    "tau-nan": (dict(inject={}, schedule={"tau_min": NAN}), "6", "NoiseSemanticTemporalSchedule",
                [S_SCHED, "input 'tau_min' is nan", "Fix:"]),
    "center-nan": (dict(inject={}, schedule={"center": NAN}), "6", "NoiseSemanticTemporalSchedule",
                   [S_SCHED, "input 'center' is nan", "Fix:"]),
    "half-width-nan": (dict(inject={}, schedule={"half_width": NAN}), "6", "NoiseSemanticTemporalSchedule",
                       [S_SCHED, "input 'half_width' is nan", "Fix:"]),
    "flatness-nan": (dict(inject={}, schedule={"flatness": NAN}), "6", "NoiseSemanticTemporalSchedule",
                     [S_SCHED, "input 'flatness' is nan", "Fix:"]),
    "not-a-schedule": (dict(inject={"schedule": ["19", 0]}), "7", "NoiseSemanticInject",
                       [S_INJECT, "input 'schedule' is a str, not a schedule", "Fix:"]),
    "basicguider-prompt": (dict(sampler="SamplerCustomAdvanced", guider="BasicGuider",
                                inject={"direction": "prompt"}), "8", "SamplerCustomAdvanced",
                           [S_INJECT, "guider has none", "Fix:"]),
    "basicguider-screen": (dict(sampler="SamplerCustomAdvanced", guider="BasicGuider",
                                inject={"candidates": 2}), "8", "SamplerCustomAdvanced",
                           [S_INJECT, "guider has none", "Fix:"]),
    "latent-mismatch": (dict(inject={}, latent="wrong-vae"), "8", "KSampler",
                        [S_INJECT, "the model failed on a probe batch", "Fix:"]),
    # Bad values for the sampler: a NaN CFG poisons the probes first, so the pack reports it.
    "cfg-nan": (dict(inject={}, cfg=NAN), "8", "KSampler",
                [S_INJECT, "prediction at a probe contains NaN or inf", "Fix:"]),
    # ... and a NaN denoise fails in ComfyUI's own step count before the pack's wrapper runs.
    "denoise-nan": (dict(inject={}, denoise=NAN), "8", "KSampler", ["NaN"]),
}


def _with_any_value(p):
    p["19"] = {"class_type": "NSTestAnyValue", "inputs": {"text": "not a schedule"}}
    return p


# Refused by the executor's validation (400): (graph kwargs, node id, input name, error type).
INVALID = {
    "samples-0": (dict(erase={"samples": 0}), "5", "samples", "value_smaller_than_min"),
    "samples-65": (dict(erase={"samples": 65}), "5", "samples", "value_bigger_than_max"),
    "samples-text": (dict(erase={"samples": "four"}), "5", "samples", "invalid_input_type"),
    "strength-neg": (dict(inject={"strength": -0.1}), "7", "strength", "value_smaller_than_min"),
    "strength-5": (dict(inject={"strength": 5.0}), "7", "strength", "value_bigger_than_max"),
    "strength-inf": (dict(inject={"strength": math.inf}), "7", "strength", "value_bigger_than_max"),
    "candidates-0": (dict(inject={"candidates": 0}), "7", "candidates", "value_smaller_than_min"),
    "candidates-17": (dict(inject={"candidates": 17}), "7", "candidates", "value_bigger_than_max"),
    "schedule-link": (dict(inject={"schedule": ["1", 0]}), "7", "schedule", "return_type_mismatch"),
    "probes-0": (dict(inject={}, schedule={"probes": 0}), "6", "probes", "value_smaller_than_min"),
    "probes-65": (dict(inject={}, schedule={"probes": 65}), "6", "probes", "value_bigger_than_max"),
    "tau-min-0": (dict(inject={}, schedule={"tau_min": 0.0}), "6", "tau_min", "value_smaller_than_min"),
    "tau-max-1.5": (dict(inject={}, schedule={"tau_max": 1.5}), "6", "tau_max", "value_bigger_than_max"),
    "center-neg": (dict(inject={}, schedule={"center": -0.1}), "6", "center", "value_smaller_than_min"),
    "half-width-0": (dict(inject={}, schedule={"half_width": 0.0}), "6", "half_width", "value_smaller_than_min"),
    "flatness-0": (dict(inject={}, schedule={"flatness": 0.0}), "6", "flatness", "value_smaller_than_min"),
    # Bad values for the sampler, patched model upstream.
    "steps-0": (dict(inject={}, steps=0), "8", "steps", "value_smaller_than_min"),
    "seed-neg": (dict(inject={}, seed=-1), "8", "seed", "value_smaller_than_min"),
    "cfg-inf": (dict(inject={}, cfg=math.inf), "8", "cfg", "value_bigger_than_max"),
}


# A combo value not offered: 0.33's validation refuses it for V3 nodes; 0.3.75's validates only V1
# combos (lists), so there it runs and the node's own check must refuse it. Either is accepted; the
# report says which. (graph kwargs, node id, input, node class, the node's own message parts)
COMBO_BAD = {
    "direction": (dict(inject={"direction": "sideways"}), "7", "direction", "NoiseSemanticInject",
                  [S_INJECT, "input 'direction' is 'sideways'", "Fix:"]),
    "weighting": (dict(inject={}, schedule={"weighting": "triangle"}), "6", "weighting",
                  "NoiseSemanticTemporalSchedule", [S_SCHED, "input 'weighting' is 'triangle'", "Fix:"]),
}


def build(kind: str, name: str, tag: str) -> dict:
    kw = dict({"valid": VALID, "exec": {k: v[0] for k, v in EXEC_BAD.items()},
               "invalid": {k: v[0] for k, v in INVALID.items()},
               "combo": {k: v[0] for k, v in COMBO_BAD.items()}}[kind][name])
    p = graph(tag=tag, **copy.deepcopy(kw))
    return _with_any_value(p) if name == "not-a-schedule" else p


# ---------------------------------------------------------------- reading results

def saved(server: LiveServer, entry: dict) -> tuple[torch.Tensor, "object"]:
    """(latent, image array) a prompt wrote, read back through /view and decoded."""
    import numpy as np
    import safetensors.torch
    from PIL import Image
    outs = entry["outputs"]
    lat_refs, img_refs = outs["11"]["latents"], outs["10"]["images"]
    assert len(lat_refs) == 1 and len(img_refs) == 1, outs
    latent = safetensors.torch.load(server.view(lat_refs[0]))["latent_tensor"]
    image = np.asarray(Image.open(io.BytesIO(server.view(img_refs[0]))).convert("RGB"))
    assert image.ndim == 3 and image.shape[2] == 3 and torch.isfinite(latent).all()
    return latent, image


def error_of(entry: dict) -> dict:
    assert entry["status"]["status_str"] == "error", entry["status"]
    errs = [m[1] for m in entry["status"]["messages"] if m[0] == "execution_error"]
    assert len(errs) == 1, entry["status"]["messages"]
    return errs[0]


def ran(server: LiveServer, prompt_id: str) -> set:
    """Node ids the executor ran (not served from its cache) for this prompt."""
    return {d["node"] for _, t, d in server.events(prompt_id) if t == "executing" and d.get("node") is not None}


def cached(server: LiveServer, prompt_id: str) -> set:
    return {n for _, t, d in server.events(prompt_id) if t == "execution_cached" for n in d["nodes"]}


# ---------------------------------------------------------------- the server

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("server_load")
    s = LiveServer(tmp, {host.PACK_DIR_NAME: ROOT, "nsp-test-nodes": TEST_NODES})
    try:
        info = s.get_json("/object_info")
        missing = [n for n in (*host.OUR_NODES, "NSTestCheckpointLoader", "NSTestTag") if n not in info]
        assert not missing, f"{missing} not loaded:\n{s.tail()}"
        s.report = {}
        yield s
    finally:
        try:
            log = s.log_path.read_text(errors="replace")
            s.report["server log"] = (f"{log.count('Potential memory leak')} 'Potential memory leak' and "
                                      f"{log.count('WARNING, memory leak')} 'WARNING, memory leak' lines "
                                      f"(ComfyUI's model management)")
        except OSError:
            pass
        s.stop()
        print("\n[server_load] " + "\n[server_load] ".join(f"{k}: {v}" for k, v in getattr(s, "report", {}).items()))


@pytest.fixture(scope="module")
def references(server):
    """Each valid prompt run alone, one at a time: its latent and image."""
    refs = {}
    t0 = time.monotonic()
    for name in VALID:
        pid, entry = server.run(build("valid", name, "ref"))
        assert entry["status"]["status_str"] == "success", (name, entry["status"], server.tail())
        refs[name] = saved(server, entry)
    server.report["references"] = f"{len(VALID)} prompts run alone in {time.monotonic() - t0:.1f} s"
    return refs


# ---------------------------------------------------------------- load and faults

def test_a_mixed_load_drains_with_each_prompt_as_if_alone(server, references):
    import random
    rng = random.Random(0)
    # Mostly failing prompts (milliseconds each), so 200+ fit the time budget of a 2-core machine.
    queued = [("valid", n) for n in VALID] * 3 + [("exec", n) for n in EXEC_BAD] * 12
    rng.shuffle(queued)
    posts = list(queued)
    for item in [("invalid", n) for n in INVALID] + [("combo", n) for n in COMBO_BAD] * 2:
        posts.insert(rng.randrange(len(posts) + 1), item)  # anywhere in the stream
    assert len(queued) >= 200

    ids, refused = [], []
    history_before = len(server.get_json("/history"))
    t0 = time.monotonic()
    for i, (kind, name) in enumerate(posts):
        status, body = server.queue(build(kind, name, f"b{i}"))
        if kind == "invalid" or (kind == "combo" and status == 400):
            assert status == 400, (name, body)
            refused.append((kind, name, body))
        else:
            assert status == 200 and not body.get("node_errors"), (name, body)
            ids.append((kind, name, body["prompt_id"]))
    t_posted = time.monotonic() - t0
    ends = server.wait_done([pid for *_, pid in ids], timeout=600)
    t_drained = time.monotonic() - t0
    assert server.alive() and server.get("/system_stats")[0] == 200
    # The worker records a prompt in /history just after its last message: the count follows.
    server.wait_for(lambda: server.queue_remaining() == 0, 30, "the queue to be empty")
    # What validation refused never ran: /history gained exactly the queued prompts.
    assert len(server.get_json("/history")) - history_before == len(ids)

    # Refused at validation: the node, the input and ComfyUI's reason; never queued.
    combo_where = {}
    for kind, name, body in refused:
        if kind == "combo":
            _, node, inp, _, _ = COMBO_BAD[name]
            typ = "value_not_in_list"
            combo_where[name] = "refused at validation"
        else:
            _, node, inp, typ = INVALID[name]
        errs = body["node_errors"].get(node, {}).get("errors", [])
        assert any(e["type"] == typ and e["extra_info"].get("input_name") == inp for e in errs), (name, body)

    # Queued: each valid one as alone; each bad one ends with its node's own error in /history.
    seen_errors = {}
    for kind, name, pid in ids:
        entry = server.history(pid)
        assert entry is not None, (name, pid)
        if kind == "valid":
            assert ends[pid] == "execution_success" and entry["status"]["status_str"] == "success", (name, entry)
            assert "8" in ran(server, pid), f"{name}: the sampler was served from the cache, not run"
            latent, image = saved(server, entry)
            ref_latent, ref_image = references[name]
            assert torch.equal(latent, ref_latent), f"{name}: under load the latent differs from its run alone"
            assert (image == ref_image).all(), f"{name}: under load the image differs from its run alone"
        else:
            if kind == "combo":
                _, node, _, node_type, parts = COMBO_BAD[name]
                combo_where[name] = "refused by the node at run time"
            else:
                _, node, node_type, parts = EXEC_BAD[name]
            assert ends[pid] == "execution_error", (name, ends[pid])
            err = error_of(entry)
            assert (err["node_id"], err["node_type"]) == (node, node_type), (name, err)
            for part in parts:
                assert part in err["exception_message"], (name, err["exception_message"])
            if parts[0].startswith("[Noise Semantic") or parts[0].startswith("[Temporal"):
                assert err["exception_type"].endswith("NoiseSemanticsError"), (name, err["exception_type"])
            seen_errors[name] = err["exception_message"].splitlines()[0][:90]

    # Nothing lost, nothing extra: one image and one latent per successful run (references included).
    n_ok = len(VALID) + sum(1 for kind, *_ in ids if kind == "valid")
    assert len(list((server.output_dir / "nsp").glob("*.png"))) == n_ok
    assert len(list((server.output_dir / "nsp_latent").glob("*.latent"))) == n_ok

    n_valid = sum(1 for k, *_ in ids if k == "valid")
    server.report["load"] = (f"{len(posts)} POSTs: {len(ids)} queued ({n_valid} valid, {len(ids) - n_valid} failing "
                             f"at run time, {len(EXEC_BAD)} kinds), {len(refused)} refused at validation "
                             f"({len(INVALID)} kinds + bad combo values); posted in {t_posted:.1f} s, drained in {t_drained:.1f} s "
                             f"({t_drained / len(ids) * 1000:.0f} ms per queued prompt)")
    assert set(combo_where) == set(COMBO_BAD)
    server.report["bad combo values"] = "; ".join(f"{k}: {v}" for k, v in sorted(combo_where.items()))
    server.report["run-time errors"] = "; ".join(f"{k}: {v}" for k, v in sorted(seen_errors.items()))


# ---------------------------------------------------------------- interrupts

def _progress(server, pid, until=None):
    return [(t, d["value"], d["max"]) for t, typ, d in server.events(pid)
            if typ == "progress" and d.get("node") == "8" and (until is None or t < until)]


def _after_interrupt_runs_clean(server, references, label):
    """The next prompts: stock and patched, on the same loaded model, each exactly as when run
    alone; the loaded model carries none of the pack's state."""
    for name in ("stock", "inject"):
        p = build("valid", name, f"{label}-{name}")
        if name == "stock":
            p["18"] = {"class_type": "NSTestInspectModel", "inputs": {"model": ["1", 0], "label": label}}
        pid, entry = server.run(p)
        assert entry["status"]["status_str"] == "success", (label, name, entry["status"])
        latent, _ = saved(server, entry)
        assert torch.equal(latent, references[name][0]), f"after the interrupt {label}, {name} differs from alone"
        if name == "stock":
            seen = entry["outputs"]["18"]
            assert seen["sampler_sample_wrappers"] == [] and "noise_semantics" not in seen["model_options"], seen


def test_interrupt_during_probing_then_the_next_prompts_run_clean(server, references):
    # Screening 16 candidates over 16 probes: up to 16 x 16 x 2 CFG branches = 512 rows per probe call
    # (fewer where probe_rows splits it), against 2 per sampling step. The reporting loader's model
    # announces each call as it starts and ends.
    p = graph(tag="int-probe", inject={"candidates": 16}, schedule={"probes": 16, "weighting": "uniform"},
              size=64, loader="NSTestReportingLoader")
    status, body = server.queue(p)
    assert status == 200, body
    pid = body["prompt_id"]

    def calls(until=None):
        return [(t, d["rows"], d["phase"]) for t, typ, d in server.events(pid)
                if typ == "nsp_test.apply_model" and (until is None or t < until)]

    t_probe = server.wait_for(lambda: next((t for t, rows, ph in calls() if rows > 2 and ph == "start"), None),
                              120, "the first probe call")
    t_int = server.interrupt(pid)
    t_end, end, data = server.wait_for(lambda: server.end_of(pid), 120, "the interrupted prompt to end")
    assert end == "execution_interrupted" and data["node_id"] == "8", (end, data)
    before = calls(until=t_int)
    assert before and before[-1][2] == "start" and before[-1][1] > 2, f"not inside a probe call: {before}"
    after = calls()[len(before):]
    assert all(rows > 2 for _, rows, _ in after), f"a sampling step ran after the interrupt: {after}"
    assert not [e for e in _progress(server, pid) if e[2] == STEPS], "sampling started"
    entry = server.history(pid)
    assert entry["status"]["status_str"] == "error" and not entry["outputs"].get("11"), entry["status"]
    assert any(m[0] == "execution_interrupted" for m in entry["status"]["messages"])
    server.report["interrupt during probing"] = (
        f"sent {(t_int - t_probe) * 1000:.0f} ms into the first probe call ({before[-1][1]} rows), honoured "
        f"{(t_end - t_int) * 1000:.0f} ms later, before any sampling step; call events after it: "
        f"{[(rows, ph) for _, rows, ph in after] or 'none (stopped inside the call: comfy.ops checks per layer)'}")
    _after_interrupt_runs_clean(server, references, "after-probe-interrupt")


def test_interrupt_during_sampling_then_the_next_prompts_run_clean(server, references):
    steps = 300
    p = graph(tag="int-sample", erase={"samples": 2}, inject={}, steps=steps, size=64)
    status, body = server.queue(p)
    assert status == 200, body
    pid = body["prompt_id"]
    server.wait_for(lambda: [e for e in _progress(server, pid) if e[2] == steps and e[1] >= 3], 120,
                    "sampling to be under way")
    t_int = server.interrupt(pid)
    t_end, end, data = server.wait_for(lambda: server.end_of(pid), 120, "the interrupted prompt to end")
    assert end == "execution_interrupted" and data["node_id"] == "8", (end, data)
    done = max(v for _, v, m in _progress(server, pid) if m == steps)
    assert done < steps, "the sampler ran to the end"
    entry = server.history(pid)
    assert entry["status"]["status_str"] == "error" and not entry["outputs"].get("11"), entry["status"]
    server.report["interrupt during sampling"] = (f"at step {done} of {steps}, honoured after "
                                                  f"{(t_end - t_int) * 1000:.0f} ms")
    _after_interrupt_runs_clean(server, references, "after-sampling-interrupt")


# ---------------------------------------------------------------- ComfyUI's cache

def test_the_cache_reruns_what_changed_and_serves_what_did_not(server, references):
    base = build("valid", "inject", "cache")
    pid, first = server.run(base)
    assert "8" in ran(server, pid), "first run"
    latent, _ = saved(server, first)
    assert torch.equal(latent, references["inject"][0])

    # An identical prompt: every node served from the cache, nothing run, the same outputs, no new file.
    files = len(list((server.output_dir / "nsp").glob("*.png")))
    pid, again = server.run(copy.deepcopy(base))
    assert ran(server, pid) == set() and cached(server, pid) == set(base), (ran(server, pid), cached(server, pid))
    assert again["outputs"]["11"] == first["outputs"]["11"] and again["outputs"]["10"] == first["outputs"]["10"]
    assert len(list((server.output_dir / "nsp").glob("*.png"))) == files

    # Only the seed changes: the sampler runs again (the patched model is reused) and the result changes.
    p = copy.deepcopy(base)
    p["8"]["inputs"]["seed"] += 1
    pid, entry = server.run(p)
    assert "8" in ran(server, pid) and "7" in cached(server, pid), (ran(server, pid), cached(server, pid))
    assert not torch.equal(saved(server, entry)[0], latent), "another seed gave the same latent"

    # Only the strength changes: Inject and the sampler run again and the result changes.
    p = copy.deepcopy(base)
    p["7"]["inputs"]["strength"] = 0.9
    pid, entry = server.run(p)
    assert {"7", "8"} <= ran(server, pid) and "1" in cached(server, pid), (ran(server, pid), cached(server, pid))
    assert not torch.equal(saved(server, entry)[0], latent), "another strength gave the same latent"


def test_one_loaded_model_patched_and_not_gives_both_results(server, references):
    """Prompts sharing the loader's output (the same ModelPatcher, served from the cache), one through
    Inject and one straight to the sampler, and one prompt holding both samplers: the patched and the
    stock result, each as when run alone."""
    patched, stock = build("valid", "inject", "shared"), build("valid", "stock", "shared")
    for i, (p, name) in enumerate(((patched, "inject"), (stock, "stock"), (patched, "inject"))):
        pid, entry = server.run(retag(p, f"shared-{i}"))  # a new tag: the sampler runs again
        assert "8" in ran(server, pid) and (i == 0 or "1" in cached(server, pid)), (name, ran(server, pid))
        assert torch.equal(saved(server, entry)[0], references[name][0]), f"{name} on the shared model"

    both = retag(build("valid", "inject", ""), "both")
    both["30"] = copy.deepcopy(both["8"])
    both["30"]["inputs"]["model"] = ["1", 0]
    both["31"] = {"class_type": "SaveLatent", "inputs": {"samples": ["30", 0], "filename_prefix": "nsp_both/stock"}}
    pid, entry = server.run(both)
    assert "1" in cached(server, pid) and {"8", "30"} <= ran(server, pid)
    assert torch.equal(saved(server, entry)[0], references["inject"][0])
    import safetensors.torch
    stock_latent = safetensors.torch.load(server.view(entry["outputs"]["31"]["latents"][0]))["latent_tensor"]
    assert torch.equal(stock_latent, references["stock"][0])


# ---------------------------------------------------------------- memory

def test_memory_settles_over_repeated_prompts(server):
    """RSS of the server process over distinct prompts (another seed each: the sampler, Erase and
    Inject's probes run every time). A machinery check with a generous bound: a leak of the patched
    noise, the probe batches or the patched clones would grow it by megabytes per prompt."""
    warm, measured = 10, 40
    base = build("valid", "erase+inject+tpw", "mem")
    rss = []
    for i in range(warm + measured):
        p = copy.deepcopy(base)
        p["8"]["inputs"]["seed"] = 1000 + i
        pid, entry = server.run(p)
        assert entry["status"]["status_str"] == "success"
        rss.append(server.rss() / 2 ** 20)
    tail = rss[warm:]
    half = len(tail) // 2
    n = len(tail)
    xs = range(n)
    mx, my = (n - 1) / 2, sum(tail) / n
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, tail)) / sum((x - mx) ** 2 for x in xs)
    growth_last_half = tail[-1] - tail[half]
    server.report["memory"] = (f"RSS after warm-up {rss[warm - 1]:.0f} MiB, after {measured} more prompts "
                               f"{rss[-1]:.0f} MiB (min {min(tail):.0f}, max {max(tail):.0f}); slope "
                               f"{slope * 1024:.0f} KiB/prompt; last half {growth_last_half:+.1f} MiB")
    assert growth_last_half < 48, server.report["memory"]
    assert slope < 1.0, server.report["memory"]  # MiB per prompt
