"""The rounds of one family: each one a question about the pack on this model.

* ``timed_rounds``: stock and each mode, in rounds (every mode once per round, stock first, so a drift of
  the machine over time hits all alike); per mode the median wall time and its parts (measure.py), and the
  overheads that the model evaluations predict.
* ``chunk_estimate``: the chunk (probes per call) the pack picks with the memory as it is now.
* ``reserve_round``: a second process under ComfyUI's ``--reserve-vram`` so that the paper's 5-probe batch
  no longer fits: the chunk it used, and whether its noise equals the unchunked one (child.py).
* ``lowvram_round``: a second process under ComfyUI's ``--lowvram`` with the model loaded partially (child.py).
* ``compile_round``: ComfyUI's TorchCompileModel on the wire: graphs compiled per run, stock and patched.
* ``split_round``: screening 4 under a memory stand-in that holds only a sampling step's latents: the pack
  splits the probe batch by rows and gives the noise of the unsplit run.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from .comfy_env import GIB, ROOT, rows
from .families import modes
from .measure import gib, sample

PARTS = ("setup_s", "probes_s", "sampling_s", "finish_s")


def timed_rounds(spec, model, pos, neg, seed: int, rec: dict):
    """Fills rec["stock"] and rec["runs"]; returns the refined noise of "inject K=5" (first round)."""
    from noise_semantics import core

    sample(model, spec, pos, neg, seed, steps=2)  # warm-up: kernels, allocator, cuDNN choices
    runs, samples = {}, {}
    for rnd in range(spec.repeats):
        for name, settings in [("stock", None)] + list(modes(core).items()):
            r = sample(model, spec, pos, neg, seed, settings, keep_noise=(rnd == 0 and name == "inject K=5"))
            print(f"   {name:30s} {r['wall_s']:7.3f} s = set-up {r['setup_s']:.3f} + probes {r['probes_s']:.3f} + "
                  f"sampling {r['sampling_s']:.3f} + finish {r['finish_s']:.3f}; evals/image {r['evals']:4.0f}, "
                  f"probe calls {r['probe_calls']}, peak {gib(r['peak_gib'])}, noise {r['noise_dtype']} "
                  f"std {r['noise_std']:.3f}", flush=True)
            samples.setdefault(name, []).append(r)
            if rnd == 0:
                runs[name] = r
    med = lambda name, key: statistics.median(r[key] for r in samples[name])
    for name, r in runs.items():
        r["wall_s_each"] = [x["wall_s"] for x in samples[name]]
        for key in ("wall_s",) + PARTS + ("refine_s",):
            r[key] = med(name, key)
        # per step: the median over rounds of each step's time (the first step after the probes apart)
        r["step_s"] = [statistics.median(x["step_s"][i] for x in samples[name]) for i in range(len(r["step_s"]))]
    stock = runs.pop("stock")
    k5_noise = runs["inject K=5"].pop("noise")
    stock.pop("noise", None)
    rec["stock"] = stock
    per_eval = stock["sampling_s"] / stock["evals"]  # what one latent through the network costs, sampling
    for name, r in runs.items():
        r.pop("noise", None)
        r["ratio"] = r["wall_s"] / stock["wall_s"]
        r["extra_evals"] = r["evals"] - stock["evals"]
        # The overheads, as shares of stock's wall time: what the extra evaluations predict, what the wall
        # time shows, and per part (a part that costs more than its evaluations is where to look).
        r["overhead"] = {
            "evals": r["extra_evals"] / stock["evals"],
            "wall": r["wall_s"] / stock["wall_s"] - 1,
            "probes_wall": r["probes_s"] / stock["wall_s"],
            "probes_evals": r["probe_evals"] * per_eval / stock["wall_s"],
            "setup": (r["setup_s"] - stock["setup_s"]) / stock["wall_s"],
            "sampling": (r["sampling_s"] - stock["sampling_s"]) / stock["wall_s"],
            "finish": (r["finish_s"] - stock["finish_s"]) / stock["wall_s"],
            "first_step": r["step_s"][0] / stock["step_s"][0] - 1 if stock["step_s"] else 0.0,
        }
    rec["runs"] = runs
    return k5_noise


def chunk_estimate(spec, model) -> dict:
    """The chunk the pack picks for the 5-probe batch with the memory as it is now, and the batch's estimate."""
    import torch
    import comfy.model_management as mm
    from noise_semantics import patch
    z = torch.zeros(spec.latent, device=mm.get_torch_device())
    lm = model.model
    r = rows(spec)
    need = {c: lm.memory_required((c * spec.latent[0] * r,) + tuple(spec.latent[1:])) for c in (1, 2, 3, 5)}
    free = mm.get_free_memory(z.device)
    return {"free_gib": free / GIB, "reserved_gib": mm.extra_reserved_memory() / GIB,
            "need_gib": {c: v / GIB for c, v in need.items()}, "chunk_now": patch.probe_chunk(lm, z, 5, r)}


def spawn_child(role: str, spec, size: str, noise_file: Path, flags: list[str]) -> dict:
    """``python -m benchmarks.gpu_check --child ROLE`` for this family under ComfyUI's ``flags``; the
    child prints one line ``CHILD {json}`` (child.py)."""
    cmd = [sys.executable, "-m", "benchmarks.gpu_check", "--families", spec.family, "--size", size,
           "--child", role, "--noise-file", str(noise_file), "--comfy-flags=" + " ".join(flags)]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    line = [x for x in p.stdout.splitlines() if x.startswith("CHILD ")]
    if p.returncode != 0 or not line:
        return {"error": (p.stdout + p.stderr)[-2000:], "flags": flags}
    return json.loads(line[-1][len("CHILD "):]) | {"flags": flags}


def reserve_round(spec, size: str, chunk: dict, noise_file: Path) -> dict:
    # Leave the probes room for two probes' batch but not three: --reserve-vram takes the rest.
    # The child loads the same model, so it sees about the free memory this process saw with it loaded.
    target = 1.5 * chunk["need_gib"][2] * GIB * 1.2
    reserve = max(0.0, (chunk["free_gib"] * GIB - target) / GIB)
    rc = spawn_child("reserve", spec, size, noise_file, ["--reserve-vram", f"{reserve:.4f}"])
    rc["reserve_gib"] = reserve
    if "error" in rc:
        print(f"   chunk check under --reserve-vram {reserve:.2f} FAILED:\n{rc['error']}")
    else:
        print(f"   --reserve-vram {reserve:.2f} GiB: {rc['probe_calls']} probe call(s) of up to {rc['chunk']} "
              f"probe(s) for K=5, same noise as unchunked: {rc['same_noise']} (max diff {rc['max_diff']:.2e})")
    return rc


def lowvram_round(spec, size: str, chunk: dict, params: int, dtype, noise_file: Path, cuda: bool) -> dict:
    """ComfyUI's --lowvram, with --reserve-vram set (on a GPU) so that about half of the weights fit: ComfyUI
    then loads the model partially and casts the other layers' weights in at each call. On a CPU ComfyUI
    takes no --lowvram and always loads a whole model: there the child unloads half itself (child.py)."""
    import torch
    flags = []
    if cuda:
        flags = ["--lowvram"]
        weights = params * torch.empty((), dtype=dtype).element_size()
        free_without_model = chunk["free_gib"] * GIB + weights
        reserve = max(0.0, free_without_model - chunk["need_gib"][1] * GIB - 0.5 * weights) / GIB
        flags += ["--reserve-vram", f"{reserve:.4f}"]
    lv = spawn_child("lowvram", spec, size, noise_file, flags)
    if "error" in lv:
        print(f"   --lowvram round FAILED:\n{lv['error']}")
    else:
        print(f"   {' '.join(flags) or 'CPU, half unloaded by ModelPatcher.partially_unload'}: "
              f"{lv['loaded_fraction']:.2f} of the weights loaded; stock {lv['stock_s']:.3f} s, "
              f"inject K=5 {lv['inject_s']:.3f} s (x{lv['ratio']:.2f}, probes {lv['probes_s']:.3f} s), "
              f"{lv['probe_calls']} probe call(s); same noise as a full load: {lv['same_noise']}")
    return lv


def compile_round(spec, model, pos, neg, seed: int, backend: str) -> dict:
    """TorchCompileModel's own wrapper (comfy_api.torch_helpers.set_torch_compile_wrapper, what the node
    calls) on the model; then stock, inject K=5 (x2), stock, inject K=5, screen 4 (x2): the graphs torch.compile
    built during each run (torch._dynamo's counters). A probe batch has a batch size of its own (probes x
    CFG rows): the question is whether it costs a compilation on every run or once."""
    import torch
    import torch._dynamo
    from comfy_api.torch_helpers import set_torch_compile_wrapper
    from noise_semantics import core
    torch._dynamo.reset()
    m = model.clone()
    set_torch_compile_wrapper(model=m, backend=backend)
    k5 = {"inject": modes(core)["inject K=5"]["inject"]}
    screen = modes(core)["screen 4, K=1"]
    seq = [("stock", None), ("inject K=5", k5), ("inject K=5", k5), ("stock", None), ("inject K=5", k5),
           ("screen 4, K=1", screen), ("screen 4, K=1", screen)]
    counters = torch._dynamo.utils.counters
    out = {"backend": backend, "runs": []}
    for name, settings in seq:
        before = counters["stats"]["unique_graphs"]
        t = time.perf_counter()
        r = sample(m, spec, pos, neg, seed, settings)
        graphs = counters["stats"]["unique_graphs"] - before
        out["runs"].append({"mode": name, "graphs_compiled": graphs, "wall_s": time.perf_counter() - t,
                            "probe_calls": r["probe_calls"]})
        print(f"   torch.compile ({backend}) {name:13s}: {graphs} graph(s) compiled, {r['wall_s']:.2f} s, "
              f"probe calls {r['probe_calls']}", flush=True)
    torch._dynamo.reset()
    return out


def split_round(spec, model, pos, neg, seed: int) -> dict:
    """Screening 4 candidates (K = 1) where memory holds only what a sampling step sends: a stand-in, a
    DIFFUSION_MODEL wrapper that raises torch.OutOfMemoryError for any model call above 2 x B latents (the
    prompt and negative of the batch). The pack must split the probe batch by rows down to B per branch,
    retrying on the out-of-memory, and give the refined noise of the run without the stand-in. Reports the
    refused and the run calls, the refinement time against that run, max |diff|, and ComfyUI's own estimate
    (memory_required) of one latent here and of WAN 2.2 14B at its template's 640x640x81 (a meta-device
    model: no weights, no memory) on this device's attention path."""
    import torch
    import comfy.patcher_extension as pe
    import comfy.supported_models
    from noise_semantics import core

    settings = {"inject": modes(core)["screen 4, K=1"]["inject"]}
    limit, refused = 2 * spec.latent[0], []

    def stand_in(executor, x, *args, **kwargs):
        if x.shape[0] > limit:
            refused.append(int(x.shape[0]))
            raise torch.OutOfMemoryError(f"gpu_check stand-in: {x.shape[0]} latents > {limit}")
        return executor(x, *args, **kwargs)

    full = sample(model, spec, pos, neg, seed, settings, steps=1, keep_noise=True)
    limited = model.clone()
    limited.add_wrapper_with_key(pe.WrappersMP.DIFFUSION_MODEL, "gpu_check_memory_stand_in", stand_in)
    split = sample(limited, spec, pos, neg, seed, settings, steps=1, keep_noise=True)
    diff = float((split["noise"] - full["noise"]).abs().max())
    tol = 1e-4 if model.model.get_dtype() == torch.float32 else 2e-2
    wan = comfy.supported_models.WAN21_T2V({"image_model": "wan2.1", "model_type": "t2v", "patch_size": (1, 2, 2),
                                             "in_dim": 16, "out_dim": 16, "dim": 5120, "ffn_dim": 13824,
                                             "freq_dim": 256, "text_dim": 4096, "num_heads": 40, "num_layers": 40})
    wan.set_inference_dtype(torch.bfloat16, None)
    with torch.device("meta"):
        wan14 = wan.get_model({}, "", device=torch.device("meta"))
    out = {"limit_latents": limit, "refused": refused, "probe_calls_run": split["probe_calls"] - len(refused),
           "probe_calls_unlimited": full["probe_calls"], "refine_ratio": split["refine_s"] / full["refine_s"],
           "max_diff": diff, "tol": tol, "same_noise": diff <= tol,
           "gib_per_latent": model.model.memory_required((1,) + tuple(spec.latent[1:])) / GIB,
           "wan22_14b_640x640x81_gib_per_latent": wan14.memory_required((1, 16, 21, 80, 80)) / GIB}
    print(f"   split (memory for {limit} latents per call): refused {refused}, then {out['probe_calls_run']} probe "
          f"call(s) (unlimited: {full['probe_calls']}), refine x{out['refine_ratio']:.2f}, same noise "
          f"{out['same_noise']} (max diff {diff:.1e}); ComfyUI's estimate per latent {out['gib_per_latent']:.2f} "
          f"GiB, WAN 2.2 14B 640x640x81 {out['wan22_14b_640x640x81_gib_per_latent']:.2f} GiB", flush=True)
    return out


def run_family(spec, seed: int, size: str, cuda: bool, opts, tmp: Path) -> dict:
    from .comfy_env import build, conditioning, free_memory, sync

    t_build = time.perf_counter()
    model, params, dtype = build(spec)
    sync()
    t_build = time.perf_counter() - t_build
    pos, neg = conditioning(spec)
    rec = {"family": spec.family, "title": spec.title, "params": params, "dtype": str(dtype).replace("torch.", ""),
           "latent": list(spec.latent), "steps": spec.steps, "cfg": spec.cfg, "sampler": spec.sampler,
           "scheduler": spec.scheduler, "build_s": t_build}
    print(f"== {spec.title}: {params / 1e6:,.1f} M parameters, {rec['dtype']}, latent {spec.latent}, "
          f"{spec.steps} steps, cfg {spec.cfg} (built in {t_build:.1f} s)", flush=True)
    k5_noise = timed_rounds(spec, model, pos, neg, seed, rec)
    rec["chunk"] = chunk_estimate(spec, model)
    rec["split"] = split_round(spec, model, pos, neg, seed)
    if opts.compile:
        rec["compile"] = compile_round(spec, model, pos, neg, seed, opts.compile_backend)
    del model
    free_memory()
    noise_file = tmp / f"gpu_check_{spec.family}_k5_noise.safetensors"
    from safetensors.torch import save_file
    save_file({"noise": k5_noise.contiguous()}, str(noise_file))
    if opts.reserve_check:
        rec["reserve_check"] = reserve_round(spec, size, rec["chunk"], noise_file)
    if spec.family in opts.lowvram:
        rec["lowvram"] = lowvram_round(spec, size, rec["chunk"], params, dtype, noise_file, cuda)
    noise_file.unlink(missing_ok=True)
    return rec
