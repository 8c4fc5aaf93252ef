"""The pack on an accelerator: cost of the refinement next to stock sampling, at full size.

    python -m benchmarks.gpu_check                    # full size on CUDA; tiny shapes without a GPU
    python -m benchmarks.gpu_check --tiny             # tiny shapes anywhere (what CI runs, ~1 min on 2 cores)
    python -m benchmarks.gpu_check --families sdxl    # a subset

For SDXL (1024x1024, 20 euler steps, cfg 8), FLUX.1 dev in bf16 (1024x1024, 20 euler steps, cfg 1 with
distilled guidance 3.5) and WAN 2.1 1.3B (832x480, 33 frames, 30 uni_pc steps, cfg 6), it builds the real
architecture from ComfyUI's own classes (``comfy.supported_models`` config -> ``model_base`` -> ModelPatcher),
with random weights made on the device (no checkpoint can be downloaded here; the cost of a model call does
not depend on its weights), and samples with ComfyUI's own ``comfy.sample.sample`` (what KSampler runs):
stock, then each mode of the pack through the same SAMPLER_SAMPLE wrapper its nodes register
(``noise_semantics.patch.patched``, the call "Noise Semantic Erase" / "Noise Semantic Inject" make; the
node classes themselves are not imported so that the script runs with ComfyUI's core alone). Reported per
family and mode, measured in one process:

* wall time and its ratio to stock (stock is run before and after the modes; the mean is the reference);
* the refinement's own time (from the sampler's start to the first sampling step);
* peak GPU memory (torch.cuda.max_memory_allocated over the run);
* network evaluations per image: latents through the network, probes and sampling alike (CFG = 2/step);
* the probe calls and the chunk size (probes per call) the pack chose, and the refined noise's dtype;
* chunking under ``--reserve-vram``: a second process of this script is started with ComfyUI's own
  ``--reserve-vram`` set so that the paper's 5-probe batch no longer fits; it reports the chunk size and
  number of probe calls it used (never more than K = 5) and whether its refined noise equals the unchunked one.

Writes benchmarks/results/gpu_check.{md,json} (tiny: gpu_check_tiny.*), or --out PREFIX.
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
GIB = 1024 ** 3


# --------------------------------------------------------------------------- families

@dataclass
class Spec:
    family: str
    title: str
    config: str                 # comfy.supported_models class name
    unet: dict
    latent: tuple               # latent shape [B, C, (T,) H, W]
    steps: int
    cfg: float
    sampler: str
    scheduler: str
    context: tuple              # cross-attention conditioning [tokens, width]
    extra: dict = field(default_factory=dict)   # conditioning extras: name -> shape or value
    dtype: str | None = None    # forced weight dtype (FLUX dev: bf16), else what ComfyUI picks
    repeats: int = 3            # timed rounds (every mode once per round); the median is reported


def specs(tiny: bool) -> dict:
    if tiny:
        # The tests' tiny shapes (tests/tiny_models.py): same classes, a few layers, a few steps.
        sdxl_unet = {"use_checkpoint": False, "image_size": 32, "in_channels": 4, "out_channels": 4,
                     "model_channels": 32, "channel_mult": [1, 2], "num_res_blocks": [1, 1],
                     "transformer_depth": [0, 1], "transformer_depth_output": [0, 0, 1, 1],
                     "transformer_depth_middle": 1, "use_spatial_transformer": True, "legacy": False,
                     "use_linear_in_transformer": True, "context_dim": 64, "num_classes": "sequential",
                     "adm_in_channels": 2816, "use_temporal_attention": False, "use_temporal_resblock": False}
        flux_unet = {"image_model": "flux", "guidance_embed": True, "in_channels": 16, "out_channels": 16,
                     "patch_size": 2, "hidden_size": 48, "num_heads": 2, "axes_dim": [8, 8, 8], "mlp_ratio": 2.0,
                     "depth": 1, "depth_single_blocks": 1, "theta": 10000, "qkv_bias": True,
                     "context_in_dim": 64, "vec_in_dim": 32}
        wan_unet = {"image_model": "wan2.1", "model_type": "t2v", "patch_size": (1, 2, 2), "in_dim": 16,
                    "out_dim": 16, "dim": 48, "ffn_dim": 96, "freq_dim": 256, "text_dim": 32, "num_heads": 2,
                    "num_layers": 1}
        return {
            "sdxl": Spec("sdxl", "SDXL (tiny)", "SDXL", sdxl_unet, (1, 4, 16, 16), 4, 8.0, "euler", "normal",
                         (77, 64), {"pooled_output": (1280,), "size": 128}, repeats=1),
            "flux": Spec("flux", "FLUX.1 dev (tiny)", "Flux", flux_unet, (1, 16, 16, 16), 4, 1.0, "euler",
                         "simple", (16, 64), {"pooled_output": (32,), "guidance": 3.5}, "bf16", 1),
            "wan": Spec("wan", "WAN 2.1 (tiny)", "WAN21_T2V", wan_unet, (1, 16, 3, 12, 16), 4, 6.0, "uni_pc",
                        "simple", (16, 32), repeats=1),
        }
    # Full size, as comfy.model_detection reads the released checkpoints.
    sdxl_unet = {"use_checkpoint": False, "image_size": 32, "out_channels": 4, "use_spatial_transformer": True,
                 "legacy": False, "num_classes": "sequential", "adm_in_channels": 2816, "in_channels": 4,
                 "model_channels": 320, "num_res_blocks": [2, 2, 2], "transformer_depth": [0, 0, 2, 2, 10, 10],
                 "channel_mult": [1, 2, 4], "transformer_depth_middle": 10, "use_linear_in_transformer": True,
                 "context_dim": 2048, "num_head_channels": 64,
                 "transformer_depth_output": [0, 0, 0, 2, 2, 2, 10, 10, 10],
                 "use_temporal_attention": False, "use_temporal_resblock": False}
    flux_unet = {"image_model": "flux", "guidance_embed": True, "in_channels": 16, "out_channels": 16,
                 "patch_size": 2, "hidden_size": 3072, "num_heads": 24, "axes_dim": [16, 56, 56], "mlp_ratio": 4.0,
                 "depth": 19, "depth_single_blocks": 38, "theta": 10000, "qkv_bias": True,
                 "context_in_dim": 4096, "vec_in_dim": 768}
    wan_unet = {"image_model": "wan2.1", "model_type": "t2v", "patch_size": (1, 2, 2), "in_dim": 16, "out_dim": 16,
                "dim": 1536, "ffn_dim": 8960, "freq_dim": 256, "text_dim": 4096, "num_heads": 12, "num_layers": 30,
                "window_size": (-1, -1), "qk_norm": True, "cross_attn_norm": True, "eps": 1e-6}
    return {
        # SDXL template: 1024x1024, 20 steps, euler/normal, cfg 8; CLIP-L+G = 2048 wide, pooled 1280.
        "sdxl": Spec("sdxl", "SDXL 1.0", "SDXL", sdxl_unet, (1, 4, 128, 128), 20, 8.0, "euler", "normal",
                     (77, 2048), {"pooled_output": (1280,), "size": 1024}),
        # FLUX.1 dev template: 1024x1024, 20 steps, euler/simple, cfg 1, FluxGuidance 3.5; T5-XXL 4096 wide.
        "flux": Spec("flux", "FLUX.1 dev (bf16)", "Flux", flux_unet, (1, 16, 128, 128), 20, 1.0, "euler", "simple",
                     (256, 4096), {"pooled_output": (768,), "guidance": 3.5}, "bf16"),
        # WAN 2.1 T2V 1.3B template: 832x480, 33 frames (9 latent frames), 30 steps uni_pc/simple, cfg 6.
        "wan": Spec("wan", "WAN 2.1 T2V 1.3B", "WAN21_T2V", wan_unet, (1, 16, 9, 60, 104), 30, 6.0, "uni_pc",
                    "simple", (512, 4096), repeats=2),
    }


# The modes, as the nodes would set them (settings dicts of noise_semantics.patch.patched).
def modes(core) -> dict:
    inject = lambda schedule, strength=0.3, candidates=1: {"inject": {
        "strength": strength, "decorrelate": True, "schedule": schedule, "direction": "guided",
        "candidates": candidates}}
    return {
        "inject K=1": inject(core.DEFAULT_SCHEDULE),
        "inject K=5": inject(core.TPW_SCHEDULE),
        "screen 4, K=1": inject(core.DEFAULT_SCHEDULE, 0.0, 4),
        "paper: erase 4 + inject K=5": {"erase": {"samples": 4, "restandardize": True},
                                        **inject(core.TPW_SCHEDULE)},
    }


# --------------------------------------------------------------------------- ComfyUI set-up

def boot(cuda: bool, reserve_vram: float | None):
    """ComfyUI's core as a library (no server, no node packs): what the script needs is the model
    classes, the sampler and the model management, with ComfyUI's own command-line flags."""
    comfy_dir = os.environ.get("COMFYUI_PATH")
    if not comfy_dir:
        sys.path.insert(0, str(ROOT / "tests"))
        import host
        comfy_dir = str(host.comfyui_path())
    sys.path.insert(0, comfy_dir)
    sys.path.insert(0, str(ROOT))
    argv = [sys.argv[0]] + ([] if cuda else ["--cpu"])
    if reserve_vram is not None:
        argv += ["--reserve-vram", f"{reserve_vram:.4f}"]
    sys.argv = argv
    import comfy.options
    comfy.options.enable_args_parsing()
    import comfy.cli_args  # noqa: F401  (parses sys.argv above)
    import comfy.model_management  # noqa: F401


def build(spec: Spec, seed: int = 0):
    import torch
    import comfy.model_management as mm
    import comfy.model_patcher
    import comfy.supported_models
    sys.path.insert(0, str(ROOT / "tests"))
    import model_init

    unet = dict(spec.unet)
    if spec.unet.get("image_model") == "flux":
        unet = model_init.flux_config(unet)
    config = getattr(comfy.supported_models, spec.config)(unet)
    dev = mm.get_torch_device()
    if spec.dtype == "bf16" and dev.type != "cpu":
        dtype = torch.bfloat16
    else:
        dtype = mm.unet_dtype(supported_dtypes=config.supported_inference_dtypes)
    manual_cast = mm.unet_manual_cast(dtype, dev, config.supported_inference_dtypes)
    config.set_inference_dtype(dtype, manual_cast)
    with torch.device(dev):
        model = config.get_model({}, "", device=dev)
        model_init.init_weights(model.diffusion_model, seed)
    model.requires_grad_(False)
    model.eval()
    params = sum(p.numel() for p in model.diffusion_model.parameters())
    # Weights live on the device already, as after ComfyUI loads a checkpoint there.
    patcher = comfy.model_patcher.ModelPatcher(model, load_device=dev, offload_device=dev)
    return patcher, params, dtype


def conditioning(spec: Spec, seed: int = 0):
    import torch
    g = torch.Generator().manual_seed(seed)

    def one():
        extra = {}
        for k, v in spec.extra.items():
            if k == "pooled_output":
                extra[k] = torch.randn((1,) + v, generator=g)
            elif k == "size":  # SDXL's size embeddings, as CLIPTextEncodeSDXL sets them
                extra.update(width=v, height=v, crop_w=0, crop_h=0, target_width=v, target_height=v)
            else:
                extra[k] = v
        return [[torch.randn((1,) + spec.context, generator=g), extra]]
    return one(), one()


# --------------------------------------------------------------------------- one run

def sample(model, spec: Spec, positive, negative, seed: int, steps: int | None = None, keep_noise=False):
    """One KSampler run (comfy.sample.sample, as nodes.common_ksampler calls it). Returns measurements."""
    import torch
    import comfy.model_management as mm
    import comfy.patcher_extension as pe
    import comfy.sample
    from benchmarks.frontier.experiment import EvalCounter

    counter = EvalCounter()
    m = model.clone()
    m.set_model_unet_function_wrapper(counter)
    seen = {}

    def inner(executor, guider, sigmas, extra_args, callback, noise, latent_image, denoise_mask, disable_pbar):
        # Registered after the pack's wrapper, so it runs inside it: what the sampler really starts from.
        sync()
        seen.update(t=time.perf_counter(), latents=counter.latents, calls=counter.calls, dtype=str(noise.dtype),
                    std=float(noise.float().std()), finite=bool(torch.isfinite(noise).all()))
        if keep_noise:
            seen["noise"] = noise.detach().float().cpu()
        return executor(guider, sigmas, extra_args, callback, noise, latent_image, denoise_mask, disable_pbar)

    m.add_wrapper_with_key(pe.WrappersMP.SAMPLER_SAMPLE, "gpu_check_inner", inner)
    latent = torch.zeros(spec.latent)
    noise = comfy.sample.prepare_noise(latent, seed)
    cuda = mm.get_torch_device().type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    sync()
    t0 = time.perf_counter()
    out = comfy.sample.sample(m, noise, steps or spec.steps, spec.cfg, spec.sampler, spec.scheduler, positive,
                              negative, latent, seed=seed, disable_pbar=True)
    sync()
    t1 = time.perf_counter()
    return {
        "wall_s": t1 - t0,
        "refine_s": seen["t"] - t0,
        "peak_gib": torch.cuda.max_memory_allocated() / GIB if cuda else None,
        "evals": counter.latents / spec.latent[0],
        "probe_evals": seen["latents"] / spec.latent[0],
        "probe_calls": seen["calls"],
        "noise_dtype": seen["dtype"],
        "noise_std": seen["std"],
        "finite": seen["finite"] and bool(torch.isfinite(out).all()),
        "noise": seen.get("noise"),
    }


def gib(v) -> str:
    return "-" if v is None else f"{v:.2f} GiB"


def sync():
    import torch
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def free_gpu():
    import torch
    import comfy.model_management as mm
    mm.unload_all_models()
    gc.collect()
    mm.soft_empty_cache(True)
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# --------------------------------------------------------------------------- per family

def run_family(spec: Spec, seed: int, tiny: bool, reserve_check: bool, out_dir: Path) -> dict:
    import torch
    import comfy.model_management as mm
    from noise_semantics import core, patch

    t_build = time.perf_counter()
    model, params, dtype = build(spec)
    sync()
    t_build = time.perf_counter() - t_build
    pos, neg = conditioning(spec)
    rec = {"family": spec.family, "title": spec.title, "params": params, "dtype": str(dtype).replace("torch.", ""),
           "latent": list(spec.latent), "steps": spec.steps, "cfg": spec.cfg, "sampler": spec.sampler,
           "scheduler": spec.scheduler, "build_s": t_build, "runs": {}}
    print(f"== {spec.title}: {params / 1e6:,.1f} M parameters, {rec['dtype']}, latent {spec.latent}, "
          f"{spec.steps} steps, cfg {spec.cfg} (built in {t_build:.1f} s)", flush=True)
    sample(model, spec, pos, neg, seed, steps=2)  # warm-up: kernels, allocator, cuDNN choices

    def one(name, settings, **kw):
        m = model
        for part in ("erase", "inject"):
            if settings and part in settings:
                m = patch.patched(m, part, settings[part])
        r = sample(m, spec, pos, neg, seed, **kw)
        print(f"   {name:30s} {r['wall_s']:7.2f} s  refine {r['refine_s']:6.2f} s  evals/image {r['evals']:5.0f}  "
              f"probe calls {r['probe_calls']}  peak {gib(r['peak_gib'])}  noise {r['noise_dtype']} "
              f"std {r['noise_std']:.3f}", flush=True)
        return r

    # Rounds of every mode, stock first: a drift of the machine over time hits all modes alike.
    walls = {}
    for rnd in range(spec.repeats):
        for name, settings in [("stock", None)] + list(modes(core).items()):
            r = one(name, settings, keep_noise=(rnd == 0 and name == "inject K=5"))
            walls.setdefault(name, []).append(r["wall_s"])
            if rnd == 0:
                rec["runs"][name] = r
    stock = rec["runs"].pop("stock")
    med = {name: statistics.median(w) for name, w in walls.items()}
    rec["stock"] = {"wall_s": med["stock"], "wall_s_each": walls["stock"], "evals": stock["evals"],
                    "peak_gib": stock["peak_gib"], "finite": stock["finite"]}
    for name, r in rec["runs"].items():
        r["wall_s"], r["wall_s_each"] = med[name], walls[name]
        r["ratio"] = med[name] / med["stock"]
        r["extra_evals"] = r["evals"] - stock["evals"]

    # The chunk the pack picks for the 5-probe batch with the memory as it is now, and the batch's estimate.
    rows = 2 if not math.isclose(spec.cfg, 1.0) else 1
    z = torch.zeros(spec.latent, device=mm.get_torch_device())
    lm = model.model
    need = {c: lm.memory_required((c * spec.latent[0] * rows,) + tuple(spec.latent[1:])) for c in (1, 2, 3, 5)}
    free = mm.get_free_memory(z.device)
    rec["chunk"] = {"free_gib": free / GIB, "reserved_gib": mm.extra_reserved_memory() / GIB,
                    "need_gib": {c: v / GIB for c, v in need.items()},
                    "chunk_now": patch.probe_chunk(lm, z, 5, rows)}
    rec["split"] = split_round(model, spec, pos, neg, seed)
    k5_noise = rec["runs"]["inject K=5"].pop("noise")
    for r in rec["runs"].values():
        r.pop("noise", None)
    del model, lm, z
    free_gpu()

    if reserve_check:
        # Leave the probes room for two probes' batch but not three: --reserve-vram takes the rest.
        # The child loads the same model, so it sees about the free memory this process saw with it loaded.
        target = 1.5 * need[2] * 1.2
        reserve = max(0.0, (free - target) / GIB)
        noise_file = out_dir / f"gpu_check_{spec.family}_k5_noise.pt"
        torch.save(k5_noise, noise_file)
        cmd = [sys.executable, "-m", "benchmarks.gpu_check", "--families", spec.family, "--chunk-child",
               str(noise_file), "--reserve-vram", f"{reserve:.4f}"] + (["--tiny"] if tiny else [])
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        noise_file.unlink(missing_ok=True)
        line = [l for l in p.stdout.splitlines() if l.startswith("CHUNK_CHILD ")]
        if p.returncode != 0 or not line:
            rec["reserve_check"] = {"error": (p.stdout + p.stderr)[-2000:], "reserve_gib": reserve}
            print(f"   chunk check under --reserve-vram {reserve:.2f} FAILED:\n{rec['reserve_check']['error']}")
        else:
            rec["reserve_check"] = json.loads(line[-1][len("CHUNK_CHILD "):])
            rc = rec["reserve_check"]
            print(f"   --reserve-vram {reserve:.2f} GiB: {rc['probe_calls']} probe call(s) of up to {rc['chunk']} "
                  f"probe(s) for K=5, same noise as unchunked: {rc['same_noise']} (max diff {rc['max_diff']:.2e})")
    return rec


def split_round(model, spec: Spec, pos, neg, seed: int) -> dict:
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
    from noise_semantics import core, patch

    settings = modes(core)["screen 4, K=1"]["inject"]
    limit, refused = 2 * spec.latent[0], []

    def stand_in(executor, x, *args, **kwargs):
        if x.shape[0] > limit:
            refused.append(int(x.shape[0]))
            raise torch.OutOfMemoryError(f"gpu_check stand-in: {x.shape[0]} latents > {limit}")
        return executor(x, *args, **kwargs)

    full = sample(patch.patched(model, "inject", settings), spec, pos, neg, seed, steps=1, keep_noise=True)
    limited = patch.patched(model, "inject", settings)
    limited.add_wrapper_with_key(pe.WrappersMP.DIFFUSION_MODEL, "gpu_check_memory_stand_in", stand_in)
    split = sample(limited, spec, pos, neg, seed, steps=1, keep_noise=True)
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


def chunk_child(spec: Spec, seed: int, noise_file: str) -> None:
    """Under --reserve-vram: the paper's 5 probes once more; prints what the pack chose."""
    import torch
    import comfy.model_management as mm
    from noise_semantics import core, patch

    model, _, _ = build(spec)
    pos, neg = conditioning(spec)
    rows = 2 if not math.isclose(spec.cfg, 1.0) else 1
    m = patch.patched(model, "inject", modes(core)["inject K=5"]["inject"])
    r = sample(m, spec, pos, neg, seed, steps=1, keep_noise=True)
    expected = torch.load(noise_file)
    diff = float((r["noise"] - expected).abs().max())
    # Another batch size may pick other kernels: equal up to the model's own rounding (a float32 model:
    # 1e-4; half precision: 2e-2 on a unit-variance noise, a few units of fp16/bf16's last place).
    tol = 1e-4 if model.model.get_dtype() == torch.float32 else 2e-2
    out = {"reserve_gib": mm.extra_reserved_memory() / GIB, "probe_calls": r["probe_calls"],
           "chunk": math.ceil(5 / max(1, r["probe_calls"])), "probe_evals": r["probe_evals"],
           "rows_per_probe": rows, "max_diff": diff, "tol": tol, "same_noise": diff <= tol,
           "free_gib": mm.get_free_memory(mm.get_torch_device()) / GIB}
    print("CHUNK_CHILD " + json.dumps(out), flush=True)


# --------------------------------------------------------------------------- report

def markdown(result: dict) -> str:
    env = result["env"]
    lines = [f"# GPU check ({'tiny shapes' if result['tiny'] else 'full size'})", "",
             f"Device: {env['device']}. torch {env['torch']}, ComfyUI {env['comfyui']}, Python {env['python']}. "
             f"Command: `{env['command']}`. Random weights (cost does not depend on them); one seed; each mode "
             f"timed in rounds after a warm-up (every mode once per round, stock first); wall time = median over "
             f"rounds, ratio = median / stock's median.", ""]
    for fam in result["families"]:
        if "error" in fam:
            lines += [f"## {fam['family']}: not run", "", f"```\n{fam['error']}\n```", ""]
            continue
        st = fam["stock"]
        peak = lambda v: "-" if v is None else f"{v:.2f}"
        lines += [f"## {fam['title']}", "",
                  f"{fam['params'] / 1e6:,.0f} M parameters, {fam['dtype']}, latent {tuple(fam['latent'])}, "
                  f"{fam['steps']} steps {fam['sampler']}/{fam['scheduler']}, cfg {fam['cfg']:g}.", "",
                  "| mode | wall s | x stock | refine s | evals/image | extra evals | probe calls | peak GiB | "
                  "noise |", "|---|---|---|---|---|---|---|---|---|",
                  f"| stock | {st['wall_s']:.2f} | 1.00 | - | {st['evals']:.0f} | 0 | 0 | {peak(st['peak_gib'])} "
                  f"| float32 |"]
        for name, r in fam["runs"].items():
            lines.append(f"| {name} | {r['wall_s']:.2f} | {r['ratio']:.2f} | {r['refine_s']:.2f} | {r['evals']:.0f} | "
                         f"{r['extra_evals']:.0f} | {r['probe_calls']} | {peak(r['peak_gib'])} | "
                         f"{r['noise_dtype'].replace('torch.', '')}{'' if r['finite'] else ' NOT FINITE'} |")
        ch = fam["chunk"]
        lines += ["", "Probe batch estimate (ComfyUI's memory_required x 1.5 is what must fit): "
                      + ", ".join(f"{c} probe(s) {v * 1.5:.2f} GiB" for c, v in ch["need_gib"].items())
                      + f"; free {ch['free_gib']:.2f} GiB, reserved {ch['reserved_gib']:.2f} GiB: "
                        f"5 probes in calls of {ch['chunk_now']}."]
        rc = fam.get("reserve_check")
        if rc and "error" in rc:
            lines.append(f"Chunking under --reserve-vram {rc['reserve_gib']:.2f}: the child run failed (see json).")
        elif rc:
            lines.append(f"Under `--reserve-vram {rc['reserve_gib']:.2f}` (free {rc['free_gib']:.2f} GiB): "
                         f"{rc['probe_calls']} probe call(s) of up to {rc['chunk']} probe(s) for K = 5 "
                         f"({'chunked' if rc['probe_calls'] > 1 else 'not chunked'}; never more than K calls); "
                         f"refined noise equal to the unchunked run: {rc['same_noise']} "
                         f"(max |diff| {rc['max_diff']:.1e}).")
        lines.append("")
    return "\n".join(lines)


def write(result: dict, out: Path, t0: float) -> str:
    result["total_s"] = time.perf_counter() - t0
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    md = markdown(result) + f"\nTotal {result['total_s']:.0f} s.\n"
    out.with_suffix(".md").write_text(md)
    return md


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="tiny shapes (default without CUDA)")
    ap.add_argument("--families", nargs="+", default=["sdxl", "flux", "wan"], choices=["sdxl", "flux", "wan"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-reserve-check", action="store_true", help="skip the --reserve-vram chunking run")
    ap.add_argument("--out", help="output prefix (default benchmarks/results/gpu_check[_tiny])")
    ap.add_argument("--reserve-vram", type=float, help="passed to ComfyUI (GiB); used by the chunking run")
    ap.add_argument("--budget-s", type=float, default=420.0,
                    help="start no further family after this many seconds (default 420: the whole run fits 8 min)")
    ap.add_argument("--chunk-child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    command = "python -m benchmarks.gpu_check " + " ".join(sys.argv[1:] if argv is None else argv)

    import torch
    cuda = torch.cuda.is_available()
    tiny = args.tiny or not cuda
    boot(cuda, args.reserve_vram)
    sp = specs(tiny)
    if args.chunk_child:
        chunk_child(sp[args.families[0]], args.seed, args.chunk_child)
        return 0

    out = Path(args.out) if args.out else RESULTS / ("gpu_check_tiny" if tiny else "gpu_check")
    out.parent.mkdir(parents=True, exist_ok=True)
    import comfy.model_management as mm
    comfy_dir = Path(mm.__file__).resolve().parents[1]
    version = "?"
    try:
        ns = {}
        exec((comfy_dir / "comfyui_version.py").read_text(), ns)
        version = ns.get("__version__", "?")
    except OSError:
        pass
    dev = mm.get_torch_device()
    result = {"tiny": tiny, "env": {
        "device": torch.cuda.get_device_name(dev) if cuda else f"CPU ({platform.processor() or platform.machine()})",
        "torch": torch.__version__, "comfyui": version, "python": platform.python_version(),
        "command": command},
        "families": []}
    t0 = time.perf_counter()
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for fam in args.families:
            if time.perf_counter() - t0 > args.budget_s:
                result["families"].append({"family": fam, "error": f"not started: {args.budget_s:.0f} s budget spent"})
                continue
            try:
                result["families"].append(run_family(sp[fam], args.seed, tiny, not args.no_reserve_check, Path(tmp)))
            except Exception as e:  # report and go on: one family's failure must not hide the others
                import traceback
                traceback.print_exc()
                result["families"].append({"family": fam, "error": f"{type(e).__name__}: {e}"})
                failed = True
                free_gpu()
            write(result, out, t0)  # after each family: a run cut short keeps what it measured
    md = write(result, out, t0)
    print(md)
    print(f"wrote {out.with_suffix('.md')} and .json")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
