"""Precision and memory as users run the pack, on what a CPU allows.

* Weights in bf16, fp16 and fp8 (e4m3fn): the model is set up the way comfy.sd loads a checkpoint with a
  weight dtype: ComfyUI's own ``unet_manual_cast`` picks the compute dtype for this device (on the CPU:
  bf16 and fp16 weights compute in their own dtype, fp8 weights are cast per layer by comfy.ops'
  manual_cast). The probes must reach the diffusion model exactly like the sampler's steps (same
  input dtype), and the refined noise must stay float32, finite, a unit sample, and equal an
  independent recomputation through the same model path within a tolerance of the compute dtype.
* A probe batch that does not fit: (1) the memory estimate is made large through the config's
  ``memory_usage_factor`` (what each supported_models class sets), so probe_chunk sends one probe per
  guided call: K calls, never more, same noise as unchunked; (2) a model_function_wrapper that raises
  out-of-memory for batches larger than one probe: the pack halves the chunk until it fits.
* Partially loaded / low-VRAM models are not reachable on a CPU: model_management.load_models_gpu
  treats a CPU device as VRAMState.DISABLED and always loads fully, so nothing here can test them.
"""
import logging

import pytest
import torch

import comfy.model_management
import comfy.patcher_extension as pe
import comfy.sample
import nodes

import families
import probes
from noise_semantics import core

SEED = 77
STEPS = 2
STRENGTH = 0.5
NAMES = ["sdxl", "flux", "wan21_t2v"]  # an eps UNet, a flow DiT, a video flow DiT
# Max |refined - recomputed| allowed per compute dtype. The recomputation runs each probe alone, the
# pack all of them in one batch, so only the batch's rounding can differ: measured 0 for every dtype
# and family here (the CPU kernels do not depend on the batch); GPU kernels can, hence the margins.
TOL = {torch.float32: 2e-4, torch.bfloat16: 6e-2, torch.float16: 2e-2}
# label -> (weight dtype, compute dtype). "auto": what ComfyUI's unet_manual_cast picks on this device
# (the CPU computes bf16/fp16/fp8 weights in float32); the others are what it picks on GPUs: bf16 and
# fp16 weights computed natively, fp8 weights cast to bf16 layer by layer.
WEIGHTS = {"bf16": (torch.bfloat16, "auto"), "fp16": (torch.float16, "auto"),
           "fp8_e4m3fn": (torch.float8_e4m3fn, "auto"), "bf16_native": (torch.bfloat16, None),
           "fp16_native": (torch.float16, None), "fp8_e4m3fn_to_bf16": (torch.float8_e4m3fn, torch.bfloat16)}


def node(node_id, **inputs):
    return nodes.NODE_CLASS_MAPPINGS[node_id].execute(**inputs).result[0]


def schedule(k):
    return node("NoiseSemanticTemporalSchedule", probes=k, tau_min=0.4, tau_max=1.0, weighting="uniform",
                center=0.5, half_width=0.5, flatness=1.0)


def inject(model, sched):
    m = node("NoiseSemanticErase", model=model, samples=2, restandardize=True)
    return node("NoiseSemanticInject", model=m, strength=STRENGTH, decorrelate=True, schedule=sched)


def ksample(model, fam, lat, cfg=3.0):
    pos, neg = fam.conditioning()
    return nodes.common_ksampler(model, SEED, STEPS, cfg, "euler", "normal", pos, neg, lat)[0]["samples"]


def expected(rec, lat, sched):
    """stock noise -> core.erase -> one guided call per probe (the same guider, model and options as
    the sampler) -> core.aggregate -> core.inject."""
    guider, extra = rec["guider"], rec["extra_args"]
    ms = guider.inner_model.model_sampling
    z = core.erase(comfy.sample.prepare_noise(lat, SEED), SEED, 2, True)
    dirs = []
    for tau in sched.taus:
        sig = torch.full((z.shape[0],), probes.probe_sigma(ms, tau))
        x = z / ms.calculate_input(sig, torch.ones_like(z))
        d = guider(x, sig, model_options=extra["model_options"], seed=extra["seed"])
        dirs.append(core.semantic_direction(d, x, sig))
    return core.inject(z, core.aggregate(dirs, sched.weights), STRENGTH, True)


class InputDtypes:
    """DIFFUSION_MODEL wrapper: the dtype and batch of what reaches the network, call by call."""
    def __init__(self):
        self.seen = []

    def __call__(self, executor, x, *args, **kwargs):
        self.seen.append((x.dtype, int(x.shape[0])))
        return executor(x, *args, **kwargs)


@pytest.mark.parametrize("weights", list(WEIGHTS))
@pytest.mark.parametrize("name", NAMES)
def test_low_precision_weights_probe_like_the_sampler_and_keep_float32_noise(name, weights):
    fam = families.FAMILIES[name]
    wdt, cast = WEIGHTS[weights]
    if cast == "auto":
        # What comfy.sd.load_diffusion_model_state_dict does with model_options={"dtype": wdt} on this device.
        cast = comfy.model_management.unet_manual_cast(wdt, torch.device("cpu"),
                                                       fam.config().supported_inference_dtypes)
    base = fam.model(dtype=wdt, manual_cast=cast)
    compute = cast or wdt
    assert {p.dtype for p in base.model.diffusion_model.parameters()} <= {wdt, torch.float32}
    assert any(p.dtype == wdt for p in base.model.diffusion_model.parameters())

    lat = fam.latent(2)
    sched = schedule(3)
    m = probes.capture(inject(base, sched), "prec", inspect=lambda rec: expected(rec, lat["samples"], sched))
    dtypes = InputDtypes()
    m.add_wrapper_with_key(pe.WrappersMP.DIFFUSION_MODEL, "nsp_test_dtypes", dtypes)
    out = ksample(m, fam, lat)
    rec = probes.RECORDS["prec"][0]

    assert rec["noise"].dtype == torch.float32 and torch.isfinite(rec["noise"]).all()
    assert abs(float(rec["noise"].std()) - 1) < 1e-3
    diff = float((rec["noise"] - rec["inspect"]).abs().max())
    logging.getLogger("nsp.test").info("precision %s %s (compute %s): max |refined - recomputed| = %.3g",
                                       name, weights, compute, diff)
    assert diff <= TOL[compute], diff
    assert torch.isfinite(out).all()
    # The pack's probe call (first, batch 2 branches x 3 probes x 2 latents), the recomputation's and the
    # sampler's steps all reach the network in the same dtype: the probes take the sampling path.
    assert dtypes.seen[0][1] == 2 * 3 * 2
    assert {d for d, _ in dtypes.seen} == {compute}


def _forced_chunk_model(fam, batch):
    """The family's model with its memory estimate raised through the config's memory_usage_factor so
    that one probe (cond + uncond) needs 1/1.5 of the free memory: probe_chunk then fits exactly one."""
    cfg = fam.config()
    cfg.set_inference_dtype(torch.float32, None)
    probe_shape = (2 * batch,) + tuple(fam.shape)
    unit = cfg.get_model({}, "").memory_required(probe_shape) / cfg.memory_usage_factor
    free = comfy.model_management.get_free_memory(torch.device("cpu"))
    factor = free / (1.5 * 1.5 * unit)
    m = fam.model()
    m.model.memory_usage_factor = factor  # what BaseModel.__init__ copies from model_config
    return m


@pytest.mark.parametrize("name", ["sdxl", "wan21_t2v"])
def test_a_probe_batch_that_does_not_fit_is_split_into_at_most_k_calls(name, caplog):
    fam = families.FAMILIES[name]
    K, B = 4, 2
    sched = schedule(K)
    lat = fam.latent(B)
    ref = probes.capture(inject(fam.model(), sched), "unchunked")
    ksample(ref, fam, lat)
    unchunked = probes.RECORDS["unchunked"][0]["noise"]

    stock, count0 = probes.count_calls(_forced_chunk_model(fam, B))
    ksample(stock, fam, lat)
    per_step = count0.calls // STEPS
    m, count = probes.count_calls(probes.capture(inject(_forced_chunk_model(fam, B), sched), "chunked"))
    with caplog.at_level(logging.INFO):
        ksample(m, fam, lat)
    assert f"in 4 guided call(s) of up to {B} latent(s) per branch" in caplog.text
    extra = count.calls - count0.calls
    assert extra == K * per_step  # K guided calls, one probe each: the bound, never more
    assert count.batches[extra:] == count0.batches
    assert torch.allclose(probes.RECORDS["chunked"][0]["noise"], unchunked, atol=1e-5)


def out_of_memory_above(rows, refused):
    """A model_function_wrapper (ComfyUI's hook around each model call) that fails like a GPU out of
    memory for batches above ``rows``; the sampler's own steps fit. A closure, not an object:
    ModelPatcher.clone deep-copies model_options, and deepcopy keeps functions as they are."""
    def wrapper(apply_model, args):
        x = args["input"]
        if x.shape[0] > rows:
            refused.append(int(x.shape[0]))
            raise torch.OutOfMemoryError(f"test: batch {x.shape[0]} > {rows}")
        return apply_model(x, args["timestep"], **args["c"])
    return wrapper


def test_out_of_memory_halves_the_probe_chunk_until_it_fits(caplog):
    fam = families.FAMILIES["flux"]
    K, B = 4, 1
    sched = schedule(K)
    lat = fam.latent(B)
    ref = probes.capture(inject(fam.model(), sched), "oom_ref")
    ksample(ref, fam, lat)

    refused = []
    m = inject(fam.model(), sched)
    m.set_model_unet_function_wrapper(out_of_memory_above(2 * B, refused))  # cond + uncond of one probe
    m, count = probes.count_calls(probes.capture(m, "oom"))
    with caplog.at_level(logging.INFO):
        ksample(m, fam, lat)
    assert refused == [2 * K * B, 2 * 2 * B]  # 4 probes in one call, then 2, then 1 per call
    assert caplog.text.count("out of memory, retrying") == 2
    assert count.batches[:K] == [2 * B] * K and count.calls == K + STEPS
    assert torch.allclose(probes.RECORDS["oom"][0]["noise"], probes.RECORDS["oom_ref"][0]["noise"], atol=1e-5)
