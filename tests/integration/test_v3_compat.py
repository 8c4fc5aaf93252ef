"""The nodes are V3 (comfy_api.latest) on both hosts, and everything saved with the V1 nodes still
loads and runs: API prompts with today's input names go through ComfyUI's real validation and
executor, and bad values are refused naming the node, the input and the fix.

Saved workflows are checked against the live server's /object_info in test_install.py."""
from __future__ import annotations

import math
import uuid
from pathlib import Path

import pytest
import torch

import host

nodes = host.boot()

from comfy_api.latest import io  # noqa: E402

import folder_paths  # noqa: E402
import safetensors.torch  # noqa: E402

# What saved workflows and API prompts depend on, as the V1 nodes defined it: input names in order,
# their sections and types, bounds, the combo's options, and the outputs. (Defaults are left out:
# a saved workflow stores its values.)
CONTRACT = {
    "NoiseSemanticErase": {
        "required": [("model", "MODEL", {}),
                     ("samples", "INT", {"min": 1, "max": 64}),
                     ("restandardize", "BOOLEAN", {})],
        "optional": [("apply_to", "COMBO", {"options": ["from pure noise only", "every sampler"]})],
        "outputs": [("MODEL", "MODEL")],
    },
    "NoiseSemanticInject": {
        "required": [("model", "MODEL", {}),
                     ("strength", "FLOAT", {"min": 0.0, "max": 4.0, "step": 0.01}),
                     ("decorrelate", "BOOLEAN", {})],
        # direction, candidates and apply_to came after V1: optional, so prompts saved without them still load
        "optional": [("schedule", "NOISE_SEMANTIC_SCHEDULE", {}),
                     ("direction", "COMBO", {"options": ["guided", "prompt"]}),
                     ("candidates", "INT", {"min": 1, "max": 16}),
                     ("apply_to", "COMBO", {"options": ["from pure noise only", "every sampler"]})],
        "outputs": [("MODEL", "MODEL")],
    },
    "NoiseSemanticTemporalSchedule": {
        "required": [("probes", "INT", {"min": 1, "max": 64}),
                     ("tau_min", "FLOAT", {"min": 0.001, "max": 1.0, "step": 0.01}),
                     ("tau_max", "FLOAT", {"min": 0.001, "max": 1.0, "step": 0.01}),
                     ("weighting", "COMBO", {"options": ["bump", "uniform"]}),
                     ("center", "FLOAT", {"min": 0.0, "max": 1.0, "step": 0.01}),
                     ("half_width", "FLOAT", {"min": 0.01, "max": 2.0, "step": 0.01}),
                     ("flatness", "FLOAT", {"min": 0.1, "max": 10.0, "step": 0.1})],
        "optional": [],
        "outputs": [("NOISE_SEMANTIC_SCHEDULE", "schedule")],
    },
    # new in V3 (no V1 contract to keep): its inputs are KSampler's, so a workflow can share them
    "NoiseSemanticPreview": {
        "required": [("model", "MODEL", {}), ("positive", "CONDITIONING", {}), ("negative", "CONDITIONING", {}),
                     ("latent", "LATENT", {}),
                     ("seed", "INT", {"min": 0, "max": 0xffffffffffffffff}),
                     ("cfg", "FLOAT", {"min": 0.0, "max": 100.0}),
                     ("candidates", "INT", {"min": 1, "max": 16})],
        "optional": [("schedule", "NOISE_SEMANTIC_SCHEDULE", {})],
        "outputs": [("LATENT", "prefers"), ("LATENT", "asked"), ("STRING", "scores")],
    },
}


def _inputs(cls, section):
    """(name, type, options) in declared order; a combo is COMBO with its options, whichever way the
    host spells it (V1 and 0.3.75: a list as the type; 0.33: "COMBO" and an options list)."""
    out = []
    for name, (typ, *opts) in cls.INPUT_TYPES().get(section, {}).items():
        opts = dict(opts[0]) if opts else {}
        if isinstance(typ, list):
            typ, opts["options"] = "COMBO", typ
        out.append((name, typ, opts))
    return out


@pytest.mark.parametrize("node_id", list(CONTRACT))
def test_nodes_are_v3_with_the_v1_contract(node_id):
    cls = nodes.NODE_CLASS_MAPPINGS[node_id]
    assert issubclass(cls, io.ComfyNode)
    schema = cls.GET_SCHEMA()
    assert schema.node_id == node_id
    # the title is written once, in the schema, and ComfyUI's display-name map comes from there
    assert nodes.NODE_DISPLAY_NAME_MAPPINGS[node_id] == schema.display_name == host.OUR_NODES[node_id]
    assert cls.CATEGORY == "sampling/noise semantics" and cls.DESCRIPTION
    want = CONTRACT[node_id]
    for section in ("required", "optional"):
        got = _inputs(cls, section)
        assert [(n, t) for n, t, _ in got] == [(n, t) for n, t, _ in want[section]], section
        for (name, _, opts), (_, _, bounds) in zip(got, want[section]):
            assert {k: opts.get(k) for k in bounds} == bounds, name
            tip = opts.get("tooltip")
            assert tip, f"{node_id}.{name} has no tooltip"
            # one sentence each; the detail lives on the node's help page (js/docs)
            assert len(tip) <= 160 and ". " not in tip, f"{node_id}.{name}: {tip!r}"
    assert list(zip(cls.RETURN_TYPES, cls.RETURN_NAMES)) == want["outputs"]
    assert all(cls.OUTPUT_TOOLTIPS)


# ------------------------------------------------------------------ API prompts with today's names

def _prompt(erase=None, inject=None, schedule=None, prefix="nsp_test/v3"):
    """TinyModel -> [Erase] -> [Inject <- Schedule] -> KSampler -> SaveLatent, every input of ours
    spelled as the V1 nodes named it."""
    p = {
        "1": {"class_type": "NSPTestTinyModel", "inputs": {"family": "sdxl", "seed": 0}},
        "2": {"class_type": "NSPTestTinyConditioning", "inputs": {"family": "sdxl", "seed": 0, "batch": 1}},
        "3": {"class_type": "EmptyLatentImage", "inputs": {"width": 128, "height": 128, "batch_size": 1}},
    }
    model = ["1", 0]
    if erase is not None:
        p["10"] = {"class_type": "NoiseSemanticErase", "inputs": {"model": model} | erase}
        model = ["10", 0]
    if schedule is not None:
        p["11"] = {"class_type": "NoiseSemanticTemporalSchedule", "inputs": schedule}
    if inject is not None:
        p["12"] = {"class_type": "NoiseSemanticInject",
                   "inputs": {"model": model} | inject | ({"schedule": ["11", 0]} if schedule else {})}
        model = ["12", 0]
    p["20"] = {"class_type": "KSampler", "inputs": {"model": model, "seed": 7, "steps": 3, "cfg": 3.0,
                                                    "sampler_name": "euler", "scheduler": "normal",
                                                    "positive": ["2", 0], "negative": ["2", 1],
                                                    "latent_image": ["3", 0], "denoise": 1.0}}
    p["21"] = {"class_type": "SaveLatent", "inputs": {"samples": ["20", 0],
                                                      "filename_prefix": f"{prefix}_{uuid.uuid4().hex[:8]}"}}
    return p


def _run(prompt) -> torch.Tensor:
    out = host.run_prompt(prompt)["outputs"]["21"]["latents"][0]
    path = Path(folder_paths.get_output_directory()) / out["subfolder"] / out["filename"]
    return safetensors.torch.load_file(str(path), device="cpu")["latent_tensor"]  # as LoadLatent reads it


SCHEDULE_V1 = {"probes": 3, "tau_min": 0.5, "tau_max": 1.0, "weighting": "bump", "center": 0.8,
               "half_width": 0.5, "flatness": 1.0}


def test_api_prompt_with_v1_input_names_runs_and_refines():
    stock = _run(_prompt())
    identity = _run(_prompt(erase={"samples": 1, "restandardize": True},
                            inject={"strength": 0.0, "decorrelate": True}, schedule=SCHEDULE_V1))
    refined = _run(_prompt(erase={"samples": 3, "restandardize": True},
                           inject={"strength": 0.5, "decorrelate": True}, schedule=SCHEDULE_V1))
    uniform = _run(_prompt(inject={"strength": 0.5, "decorrelate": False},
                           schedule=SCHEDULE_V1 | {"weighting": "uniform"}))
    assert torch.equal(identity, stock)  # n = 1, strength 0: the stock sampler, bit for bit
    assert not torch.allclose(refined, stock)
    assert not torch.allclose(uniform, refined) and not torch.allclose(uniform, stock)
    assert torch.isfinite(refined).all()


# ------------------------------------------------------------------ bad values: node, input, fix

def _failure(prompt) -> str:
    """ComfyUI's own words for a refused prompt: its validation error for the node (with the node's
    class and the input), or the error the node raised while running."""
    with pytest.raises(host.ExecutionFailed) as e:
        host.run_prompt(prompt)
    return str(e.value)


def test_out_of_range_value_is_refused_before_running_naming_node_input_and_bound():
    msg = _failure(_prompt(erase={"samples": 0, "restandardize": True}))
    # validation (the schema's min) stops it before anything runs: ComfyUI names the node's class,
    # the input and the bound the value must reach
    assert msg.startswith("invalid prompt") and "NoiseSemanticErase" in msg and "samples" in msg
    assert "smaller than min of 1" in msg


def test_value_the_schema_cannot_bound_is_refused_by_the_node_with_the_fix():
    msg = _failure(_prompt(inject={"strength": math.nan, "decorrelate": True}))
    assert "[Noise Semantic Inject] input 'strength' is nan" in msg and "Fix:" in msg


def test_unknown_weighting_is_refused_naming_node_input_and_choices():
    msg = _failure(_prompt(inject={"strength": 0.5, "decorrelate": True},
                           schedule=SCHEDULE_V1 | {"weighting": "gaussian"}))
    if msg.startswith("invalid prompt"):  # 0.33 checks a V3 combo's options while validating
        assert "NoiseSemanticTemporalSchedule" in msg and "weighting: 'gaussian' not in ['bump', 'uniform']" in msg
    else:  # 0.3.75 validates only V1 (list) combos; the node refuses it when it runs
        assert "[Temporal Weight Schedule] input 'weighting' is 'gaussian'" in msg and "Fix: choose" in msg
