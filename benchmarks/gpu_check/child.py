"""The second processes of a family's rounds, started by rounds.spawn_child under ComfyUI's own flags.
Each prints one line ``CHILD {json}``.

* ``reserve`` (under --reserve-vram): the paper's 5 probes once more; the chunk the pack chose, and whether
  the refined noise equals the unchunked one of the parent.
* ``lowvram`` (under --lowvram): the model built off the device, so that ComfyUI's model management loads
  it (partially, when the memory it sees is short); stock and inject K=5 timed in parts, what share of the
  weights was loaded while sampling, and whether the refined noise equals the parent's full-load one.
  On a CPU ComfyUI refuses --lowvram next to --cpu (one group of flags) and always loads a whole model, so
  there the child unloads half of the weights itself at the sampler's start, with ComfyUI's own
  ModelPatcher.partially_unload (what its model management calls when device memory runs short): the
  layers left out are then cast in at each call (comfy.ops' cast path), probes and steps alike. What the
  CPU cannot show is the cost: there a "cast in" is a no-op copy on the same device.
"""
from __future__ import annotations

import json
import math

from .comfy_env import GIB, build, conditioning, rows
from .families import modes
from .measure import sample


def same_noise(model, noise, expected) -> tuple:
    """Another batch size (or a weight cast per call) may pick other kernels: equal up to the model's own
    rounding (a float32 model: 1e-4; half precision: 2e-2 on a unit-variance noise, a few units of
    fp16/bf16's last place)."""
    import torch
    diff = float((noise - expected).abs().max())
    tol = 1e-4 if model.model.get_dtype() == torch.float32 else 2e-2
    return diff, tol


def expected_noise(noise_file: str):
    import comfy.utils
    return comfy.utils.load_torch_file(noise_file)["noise"]


def reserve(spec, seed: int, noise_file: str) -> dict:
    import comfy.model_management as mm
    from noise_semantics import core
    model, _, _ = build(spec)
    pos, neg = conditioning(spec)
    r = sample(model, spec, pos, neg, seed, modes(core)["inject K=5"], steps=1, keep_noise=True)
    diff, tol = same_noise(model, r["noise"], expected_noise(noise_file))
    return {"reserve_gib": mm.extra_reserved_memory() / GIB, "probe_calls": r["probe_calls"],
            "chunk": math.ceil(5 / max(1, r["probe_calls"])), "probe_evals": r["probe_evals"],
            "rows_per_probe": rows(spec), "max_diff": diff, "tol": tol, "same_noise": diff <= tol,
            "free_gib": mm.get_free_memory(mm.get_torch_device()) / GIB}


def lowvram(spec, seed: int, noise_file: str) -> dict:
    import comfy.model_management as mm
    from noise_semantics import core
    model, _, _ = build(spec, offload=True)
    pos, neg = conditioning(spec)

    def loaded(guider):
        p = guider.model_patcher
        return {"loaded": p.loaded_size(), "size": p.model_size(), "lowvram": bool(getattr(p.model, "model_lowvram", False))}

    forced = None
    if mm.get_torch_device().type == "cpu":
        def forced(guider):
            p = guider.model_patcher
            return p.partially_unload(p.offload_device, memory_to_free=p.model_size() // 2)

    sample(model, spec, pos, neg, seed, steps=2, at_sampler_start=forced)  # warm-up
    stock = sample(model, spec, pos, neg, seed, on_start=loaded, at_sampler_start=forced)
    inj = sample(model, spec, pos, neg, seed, modes(core)["inject K=5"], keep_noise=True, on_start=loaded,
                 at_sampler_start=forced)
    diff, tol = same_noise(model, inj["noise"], expected_noise(noise_file))
    st = inj["on_start"]
    return {"vram_state": mm.vram_state.name, "device": str(mm.get_torch_device()),
            "forced_partial_unload": forced is not None,
            "loaded_fraction": st["loaded"] / max(1, st["size"]), "model_lowvram": st["lowvram"],
            "reserve_gib": mm.extra_reserved_memory() / GIB,
            "stock_s": stock["wall_s"], "inject_s": inj["wall_s"], "ratio": inj["wall_s"] / stock["wall_s"],
            "probes_s": inj["probes_s"], "sampling_s": inj["sampling_s"], "stock_sampling_s": stock["sampling_s"],
            "probe_calls": inj["probe_calls"], "extra_evals": inj["evals"] - stock["evals"],
            "max_diff": diff, "tol": tol, "same_noise": diff <= tol}


def main(role: str, spec, seed: int, noise_file: str) -> None:
    out = {"reserve": reserve, "lowvram": lowvram}[role](spec, seed, noise_file)
    print("CHILD " + json.dumps(out), flush=True)
