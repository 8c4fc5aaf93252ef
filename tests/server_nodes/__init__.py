"""A test-only custom-node folder, for a real ComfyUI server started by the tests (never part of the
pack, never shipped: .comfyignore leaves tests/ out). It serves the stand-ins of tests/stand_ins.py and
the instruments of tests/probes.py as graph nodes, plus two instruments of its own:

* ``NSTestAnyValue``: an output of type ``*`` (as "any" switch nodes of other packs have), which the
  executor's validation lets into any socket: how a wrong object reaches a typed input at run time.
* ``NSTestTag``: LATENT -> the same latent, tagged with a string that changes nothing but the cache
  key, so the sampler and everything after it really run again, on the same loaded model and the same
  patched clones. (On the LATENT wire, not the MODEL wire: a MODEL clone would add a level to every
  clone chain, which changes how ComfyUI's model management tracks them.)
* ``NSTestReportingLoader``: the stand-in checkpoint loader, whose model reports every diffusion-model
  evaluation on the websocket as it starts and ends (``nsp_test.apply_model``: rows in the batch), so
  a test sees the probe calls and the sampling steps live. The APPLY_MODEL wrapper sits on the
  loader's own model, not on a clone: a clone would add a level to every clone chain, which changes
  how ComfyUI's model management tracks them.
* ``NSTestInspectModel``: an output node reporting, in the prompt's /history outputs, what a MODEL
  carries: the keys of its SAMPLER_SAMPLE wrappers and transformer_options keys (patch state, seen from
  outside the process).
"""
import sys
from pathlib import Path

import torch

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.append(str(TESTS))  # appended: nothing of tests/ may shadow a ComfyUI module

import comfy.patcher_extension as pe  # noqa: E402

import probes  # noqa: E402
import stand_ins  # noqa: E402

# The test models are tiny: on a shared CI machine one thread is faster than fighting over cores.
torch.set_num_threads(1)


class NSTestAnyValue:
    CATEGORY = "_for_testing/noise semantics stand-ins"
    RETURN_TYPES = ("*",)
    FUNCTION = "make"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {"default": "not a schedule"})}}

    def make(self, text):
        return (text,)


class NSTestTag:
    CATEGORY = "_for_testing/noise semantics stand-ins"
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "tag"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"samples": ("LATENT",), "tag": ("STRING", {"default": ""})}}

    def tag(self, samples, tag):
        return (samples,)


class NSTestReportingLoader(stand_ins.NSTestCheckpointLoader):
    def load(self, ckpt_name, family, seed):
        model, clip, vae = super().load(ckpt_name, family, seed)
        model.add_wrapper_with_key(pe.WrappersMP.APPLY_MODEL, "nsp_test_report", _report_apply_model)
        return model, clip, vae


def _report_apply_model(executor, x, t, *args, **kwargs):
    from server import PromptServer  # ComfyUI's, in the served process
    srv = PromptServer.instance

    def say(phase):
        srv.send_sync("nsp_test.apply_model", {"prompt_id": srv.last_prompt_id, "rows": int(x.shape[0]),
                                               "phase": phase}, srv.client_id)
    say("start")
    out = executor(x, t, *args, **kwargs)
    say("end")
    return out


class NSTestInspectModel:
    CATEGORY = "_for_testing/noise semantics stand-ins"
    RETURN_TYPES = ()
    FUNCTION = "inspect"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "label": ("STRING", {"default": "inspect"})}}

    def inspect(self, model, label):
        sampler_sample = sorted(model.wrappers.get(pe.WrappersMP.SAMPLER_SAMPLE, {}))
        topts = sorted(model.model_options.get("transformer_options", {}))
        return {"ui": {"sampler_sample_wrappers": sampler_sample, "transformer_options": topts,
                       "model_options": sorted(model.model_options), "label": [label]}}


NODE_CLASS_MAPPINGS = {**stand_ins.NODE_CLASS_MAPPINGS, **probes.TEST_NODES,
                       "NSTestAnyValue": NSTestAnyValue, "NSTestTag": NSTestTag, "NSTestReportingLoader": NSTestReportingLoader,
                       "NSTestInspectModel": NSTestInspectModel}
