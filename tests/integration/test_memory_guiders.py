"""Memory, guiders and errors: the probe batch inside the rest of ComfyUI (issue 18, items 1, 3, 4).

* Memory: a stand-in for a GPU that holds 2 latents per model call (what stock CFG needs for one
  latent): a model_function_wrapper (ComfyUI's hook around each model call) that fails like an out of
  memory above that. Stock sampling fits; the probe batch (probes x candidates x samples rows per CFG
  branch) is split by rows down to what stock needs and gives the refined noise of the unsplit run.
* Guiders, through SamplerCustomAdvanced and each guider node of the host: which two predictions
  screening and direction 'prompt' compare, or the node's refusal naming the fix; the guider's real
  number of branches in the memory estimate.
* Errors: an out-of-memory that is a plain RuntimeError (Apple MPS) gets the retry; another pack's
  error keeps its type and message.
"""
import importlib
import logging

import pytest
import torch

import comfy.model_management
import comfy.sample
import comfy.samplers
import nodes

import probes
import tiny_models

# The pack's own modules as ComfyUI loaded them (from custom_nodes/), so its error class is the one raised.
_PKG = nodes.NODE_CLASS_MAPPINGS["NoiseSemanticInject"].__module__.rsplit(".", 1)[0]
core = importlib.import_module(_PKG + ".core")
patch = importlib.import_module(_PKG + ".patch")

SEED = 321
STEPS = 2


def node(node_id, **inputs):
    return nodes.NODE_CLASS_MAPPINGS[node_id].execute(**inputs).result[0]


def injected(model, strength=0.0, candidates=1, direction="guided", schedule=None):
    return node("NoiseSemanticInject", model=model, strength=strength, decorrelate=True, schedule=schedule,
                direction=direction, candidates=candidates)


def latent(family, batch=1):
    return {"samples": torch.zeros(tiny_models.latent_shape(family, batch))}


def ksample(model, family, lat, cfg=3.0, cond_batch=1):
    pos, neg = tiny_models.make_conditioning(family, 0, cond_batch)
    return nodes.KSampler().sample(model, SEED, STEPS, cfg, "euler", "normal", pos, neg, lat, 1.0)[0]["samples"]


def oom_above(rows, refused, error=torch.OutOfMemoryError):
    """A model_function_wrapper that fails like a full GPU for model calls above ``rows`` latents. A
    closure: ModelPatcher.clone deep-copies model_options and keeps functions as they are."""
    def wrapper(apply_model, args):
        x = args["input"]
        if x.shape[0] > rows:
            refused.append(int(x.shape[0]))
            raise error(f"test: {x.shape[0]} latents > {rows}")
        return apply_model(x, args["timestep"], **args["c"])
    return wrapper


SETTINGS = {"inject 5 probes": dict(strength=0.5, schedule="tpw"),
            "screening 4": dict(candidates=4), "screening 2": dict(candidates=2),
            "screening 3 + prompt": dict(candidates=3, strength=0.4, direction="prompt")}


def settings(name):
    s = dict(SETTINGS[name])
    if s.pop("schedule", None) == "tpw":
        s["schedule"] = core.TPW_SCHEDULE
    return s


@pytest.mark.parametrize("what", list(SETTINGS))
def test_probe_batch_splits_by_rows_to_what_stock_needs(what, caplog):
    """Tiny WAN, one latent, a memory that holds 2 latents per model call: stock CFG runs (cond +
    uncond = 2); every probe batch halves down to one latent per branch and runs, with the refined noise
    of the unsplit run."""
    fam, B = "wan", 1
    ref = probes.capture(injected(tiny_models.make_model(fam), **settings(what)), "unsplit")
    ksample(ref, fam, latent(fam, B))
    unsplit = probes.RECORDS["unsplit"][0]["noise"]

    stock_refused = []
    stock = tiny_models.make_model(fam)
    stock.set_model_unet_function_wrapper(oom_above(2 * B, stock_refused))
    ksample(stock, fam, latent(fam, B))
    assert stock_refused == []

    refused = []
    m = injected(tiny_models.make_model(fam), **settings(what))
    m.set_model_unet_function_wrapper(oom_above(2 * B, refused))
    m, count = probes.count_calls(probes.capture(m, "split"))
    with caplog.at_level(logging.INFO):
        ksample(m, fam, latent(fam, B))
    rows = (5 if "5" in what else 1) * SETTINGS[what].get("candidates", 1) * B
    assert refused and refused[0] == 2 * rows  # the estimate fits it all here; the stand-in does not
    assert max(count.batches) <= 2 * B and count.calls == rows + STEPS  # one latent per branch per call
    assert f"up to {B} latent(s) per branch" in caplog.text
    assert torch.allclose(probes.RECORDS["split"][0]["noise"], unsplit, atol=1e-5)


def test_split_keeps_each_samples_own_conditioning():
    """Two latents with a prompt each (conditioning batch 2) and 3 candidates: 6 rows per branch, split
    to 2 per call. Each call starts on a sample boundary, so ComfyUI's repeat of the conditioning to the
    call's batch gives every row its own sample's prompt: the same noise as the unsplit run."""
    fam, B = "flux", 2
    ref = probes.capture(injected(tiny_models.make_model(fam), strength=0.3, candidates=3), "cb_ref")
    ksample(ref, fam, latent(fam, B), cond_batch=B)
    refused = []
    m = injected(tiny_models.make_model(fam), strength=0.3, candidates=3)
    m.set_model_unet_function_wrapper(oom_above(2 * B, refused))
    m, count = probes.count_calls(probes.capture(m, "cb_split"))
    ksample(m, fam, latent(fam, B), cond_batch=B)
    assert refused == [2 * 3 * B] and count.batches[:3] == [2 * B] * 3
    assert torch.allclose(probes.RECORDS["cb_split"][0]["noise"], probes.RECORDS["cb_ref"][0]["noise"], atol=1e-5)
    # and the same split where one prompt serves both latents differs: the prompts were really per sample
    one = probes.capture(injected(tiny_models.make_model(fam), strength=0.3, candidates=3), "cb_one")
    ksample(one, fam, latent(fam, B), cond_batch=1)
    assert not torch.allclose(probes.RECORDS["cb_one"][0]["noise"], probes.RECORDS["cb_ref"][0]["noise"], atol=1e-3)


def test_conditioning_that_does_not_tile_gets_one_latent_batch_per_call(caplog):
    """Three latents with a conditioning batch of 2: ComfyUI tiles it [c0, c1, c0] in a sampling step,
    and only a call of exactly 3 rows tiles it the same way, so the probes go 3 rows at a time."""
    fam, B = "flux", 3
    m, count = probes.count_calls(injected(tiny_models.make_model(fam), candidates=2))
    with caplog.at_level(logging.INFO):
        ksample(m, fam, latent(fam, B), cond_batch=2)
    assert "does not tile" in caplog.text
    assert count.batches[:2] == [2 * B, 2 * B]


def test_memory_estimate_counts_reference_latents_and_branches():
    """probe_rows asks ComfyUI's memory_required with the conditioning shapes calc_cond_batch would
    pass (FLUX counts its reference latents, as Kontext does) and the guider's branches."""
    fam, B = "flux", 1
    pos, neg = tiny_models.make_conditioning(fam, 0)
    ref_lat = {"samples": torch.randn(tiny_models.latent_shape(fam, 1), generator=torch.manual_seed(3))}
    pos = node("ReferenceLatent", conditioning=pos, latent=ref_lat)
    neg = node("ReferenceLatent", conditioning=neg, latent=ref_lat)
    got = {}

    def inspect(rec):
        g = rec["guider"]
        z = rec["noise"]
        got["shapes"] = patch.cond_shapes(g, 4, 2)
        got["branches"] = patch.guider_branches(g, True)
        model = g.inner_model
        lat_only = model.memory_required((2 * 4,) + tuple(z.shape[1:]))
        with_refs = model.memory_required((2 * 4,) + tuple(z.shape[1:]), cond_shapes=got["shapes"])
        got["more"] = with_refs > lat_only
        free = with_refs * 1.5 * 1.01  # 4 rows of both branches fit with their reference latents
        got["rows"] = patch.probe_rows(model, z, 8, B, 2, lambda n, k: patch.cond_shapes(g, n, k), free=free)
        got["rows_blind"] = patch.probe_rows(model, z, 8, B, 2, None, free=free)
    m = probes.capture(tiny_models.make_model(fam), "mem", inspect=inspect)
    nodes.KSampler().sample(m, SEED, 1, 3.0, "euler", "normal", pos, neg, latent(fam, B), 1.0)
    assert list(got["shapes"]) == ["ref_latents"] and len(got["shapes"]["ref_latents"]) == 2
    assert got["branches"] == 2 and got["more"]
    assert got["rows"] == 4 and got["rows_blind"] > 4


def test_probe_rows_follows_comfyuis_estimate_in_whole_latent_batches():
    """probe_rows: the most rows (a multiple of B) whose call of every branch fits by memory_required x 1.5;
    where not even B rows of every branch fit, what one branch fits (calc_cond_batch then runs the branches
    one by one); never below B."""
    model = tiny_models.make_model("sdxl").model
    B = 2
    z = torch.zeros(tiny_models.latent_shape("sdxl", B))
    need = lambda rows: model.memory_required((rows,) + tuple(z.shape[1:])) * 1.5
    total = 3 * 4 * B  # 3 probes x 4 candidates x B
    assert patch.probe_rows(model, z, total, B, 2, free=1e15) == total
    assert patch.probe_rows(model, z, total, B, 2, free=need(2 * 3 * B) * 1.001) == 3 * B
    assert patch.probe_rows(model, z, total, B, 3, free=need(3 * 5 * B) * 1.001) == 5 * B
    # three branches (Dual CFG, Perp-Neg) of B rows do not fit, one branch of 2B does: 2B rows per call,
    # which calc_cond_batch runs branch by branch
    assert patch.probe_rows(model, z, total, B, 3, free=need(2 * B) * 1.001) == 2 * B
    assert patch.probe_rows(model, z, total, B, 2, free=need(B) * 1.001) == B
    assert patch.probe_rows(model, z, total, B, 2, free=1.0) == B


# ------------------------------------------------------------------ guiders

def custom_sample(guider, fam, lat):
    noise = node("RandomNoise", noise_seed=SEED)
    sampler = node("KSamplerSelect", sampler_name="euler")
    sigmas = node("BasicScheduler", model=guider.model_patcher, scheduler="simple", steps=STEPS, denoise=1.0)
    return node("SamplerCustomAdvanced", noise=noise, guider=guider, sampler=sampler, sigmas=sigmas,
                latent_image=lat)


def guider_of(kind, model, fam, cfg=3.0):
    pos, neg = tiny_models.make_conditioning(fam, 0)
    other, empty = tiny_models.make_conditioning(fam, 5)
    if kind == "CFGGuider":
        return node("CFGGuider", model=model, positive=pos, negative=neg, cfg=cfg)
    if kind == "BasicGuider":
        return node("BasicGuider", model=model, conditioning=pos)
    if kind.startswith("DualCFGGuider"):
        return node("DualCFGGuider", model=model, cond1=pos, cond2=other, negative=neg, cfg_conds=cfg,
                    cfg_cond2_negative=2.0, style=kind.split("-")[1])
    if kind == "PerpNegGuider":
        return node("PerpNegGuider", model=model, positive=pos, negative=neg, empty_conditioning=empty, cfg=cfg,
                    neg_scale=1.0)
    if kind == "DualModelGuider":
        return node("DualModelGuider", model=model, positive=pos, cfg=cfg, model_negative=model, negative=neg)
    raise KeyError(kind)


def host_has(node_id):
    return node_id in nodes.NODE_CLASS_MAPPINGS


def pair_predict(rec, read):
    """Independent recomputation: the captured guider with a post-CFG hook of the test's own that reads
    ``read(args)`` -> (D_cond, D_uncond), from the call whose args['cond'] is the positive."""
    guider, extra = rec["guider"], rec["extra_args"]
    seen = {}

    def hook(args):
        if args["cond"] is guider.conds["positive"]:
            seen["p"] = read(args)
        return args["denoised"]
    mo = dict(extra["model_options"], disable_cfg1_optimization=True)
    mo["sampler_post_cfg_function"] = list(mo.get("sampler_post_cfg_function", [])) + [hook]

    def predict(x, sig):
        d = guider(x, sig, model_options=mo, seed=extra["seed"])
        return (d,) + seen.pop("p")
    return predict


def model_call_predict(rec):
    """Independent recomputation for the Dual CFG Guider: its guided prediction, and cond1's and the
    negative's predictions from ComfyUI's calc_cond_batch called directly on the guider's own conds."""
    guider, extra = rec["guider"], rec["extra_args"]
    mo = dict(extra["model_options"], disable_cfg1_optimization=True)

    def predict(x, sig):
        d = guider(x, sig, model_options=mo, seed=extra["seed"])
        c, u = comfy.samplers.calc_cond_batch(guider.inner_model, [guider.conds["positive"], guider.conds["negative"]],
                                              x, sig, mo)
        return d, c, u
    return predict


def hook_predict(rec):
    """What the hook's last call shows (the Dual CFG Guider's other pairs): what the pack must not read.
    The project's plain branch reader (probes.branch_predict) keeps exactly that."""
    return probes.branch_predict(rec)


def recompute_prompt(rec, read, strength):
    """direction 'prompt' at one probe (Inject's default schedule) from the stock noise; ``read`` picks
    the pair from the post-CFG hook's args, or is a function of the record giving predict itself."""
    ms = rec["guider"].inner_model.model_sampling
    z = comfy.sample.prepare_noise(rec["latent_image"], SEED)
    sig_of = lambda t: probes.probe_sigma(ms, t)
    c_in = lambda s: ms.calculate_input(s, torch.ones((s.shape[0],) + (1,) * (z.ndim - 1))).reshape(s.shape[0])
    predict = read(rec) if read in (model_call_predict, hook_predict) else pair_predict(rec, read)
    return core.refine_inject(z, core.DEFAULT_SCHEDULE, strength, sig_of, c_in, predict, direction="prompt")


POS_NEG = lambda a: (a["cond_denoised"], a["uncond_denoised"])
POS_EMPTY = lambda a: (a["cond_denoised"], a["empty_cond_denoised"])
# guider -> (the pair screening and direction 'prompt' compare, a pair it must not be)
SUPPORTED = {"CFGGuider": (POS_NEG, None), "PerpNegGuider": (POS_EMPTY, POS_NEG),
             "DualModelGuider": (POS_NEG, None), "DualCFGGuider-regular": (model_call_predict, hook_predict),
             "DualCFGGuider-nested": (model_call_predict, hook_predict)}


@pytest.mark.parametrize("kind", list(SUPPORTED))
def test_guider_compares_its_positive_with_its_unconditional(kind):
    if not host_has(kind.split("-")[0]):
        pytest.skip(f"{kind} is not on this ComfyUI")
    fam = "sdxl"
    model = injected(tiny_models.make_model(fam), strength=0.5, direction="prompt")
    read, wrong = SUPPORTED[kind]
    lat = latent(fam)
    branches = {}

    def inspect(rec):
        branches["n"] = patch.guider_branches(rec["guider"], True)
        return recompute_prompt(rec, read, 0.5), (recompute_prompt(rec, wrong, 0.5) if wrong else None)
    model = probes.capture(model, kind, inspect=inspect)
    custom_sample(guider_of(kind, model, fam), fam, lat)
    rec = probes.RECORDS[kind][0]
    want, other = rec["inspect"]
    assert torch.allclose(rec["noise"], want, atol=1e-5)
    if other is not None:
        assert not torch.allclose(rec["noise"], other, atol=1e-3)
    assert branches["n"] == {"CFGGuider": 2, "PerpNegGuider": 3, "DualModelGuider": 1}.get(kind, 3)


REFUSED = {"BasicGuider": r"guider has none\. Fix: sample with a guider that has a negative",
           "DualModelGuider@cfg1": r"Dual Model CFG Guider runs no negative pass at cfg 1.*Fix: set the guider's cfg above 1"}


@pytest.mark.parametrize("kind", list(REFUSED))
@pytest.mark.parametrize("how", ["candidates", "prompt"])
def test_guider_without_the_pair_is_refused_by_name(kind, how):
    node_id, _, at = kind.partition("@")
    if not host_has(node_id.split("-")[0]):
        pytest.skip(f"{node_id} is not on this ComfyUI")
    fam = "sdxl"
    kw = dict(candidates=2) if how == "candidates" else dict(strength=0.5, direction="prompt")
    model, count = probes.count_calls(injected(tiny_models.make_model(fam), **kw))
    guider = guider_of(node_id, model, fam, cfg=1.0 if at == "cfg1" else 3.0)
    with pytest.raises(core.NoiseSemanticsError, match=r"\[Noise Semantic Inject\] .*" + REFUSED[kind]):
        custom_sample(guider, fam, latent(fam))
    assert count.calls == 0  # refused before any probe call
    # plain injection still works with the same guider
    plain = injected(tiny_models.make_model(fam), strength=0.5)
    out = custom_sample(guider_of(node_id, plain, fam, cfg=1.0 if at == "cfg1" else 3.0), fam, latent(fam))
    assert torch.isfinite(out["samples"]).all()


def test_dual_cfg_branches_counted_for_the_estimate():
    fam = "sdxl"
    got = {}
    m = probes.capture(tiny_models.make_model(fam), "dual",
                       inspect=lambda rec: got.update(n=patch.guider_branches(rec["guider"], True),
                                                      n1=patch.guider_branches(rec["guider"], False)))
    custom_sample(guider_of("DualCFGGuider-regular", m, fam), fam, latent(fam))
    assert got == {"n": 3, "n1": 3}  # DualCFG never set guider.cfg; its three conds are counted


# ------------------------------------------------------------------ errors

def test_out_of_memory_tells_every_backend():
    assert patch.is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory"))
    assert patch.is_out_of_memory(RuntimeError("MPS backend out of memory (MPS allocated: 9 GB)"))
    assert not patch.is_out_of_memory(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    assert not patch.is_out_of_memory(ValueError("other pack: no such LoRA key"))


def test_mps_style_out_of_memory_gets_the_retry(caplog):
    """Apple MPS raises a plain RuntimeError("MPS backend out of memory ..."): the probe batch is split
    as for a CUDA out-of-memory, and the sampler's own steps run."""
    fam, B = "flux", 1
    ref = probes.capture(injected(tiny_models.make_model(fam), candidates=4), "mps_ref")
    ksample(ref, fam, latent(fam, B))
    refused = []
    m = injected(tiny_models.make_model(fam), candidates=4)
    m.set_model_unet_function_wrapper(oom_above(2 * B, refused, lambda msg: RuntimeError("MPS backend out of memory: " + msg)))
    m = probes.capture(m, "mps")
    with caplog.at_level(logging.INFO):
        ksample(m, fam, latent(fam, B))
    assert refused == [8, 4] and caplog.text.count("out of memory, retrying") == 2
    assert torch.allclose(probes.RECORDS["mps"][0]["noise"], probes.RECORDS["mps_ref"][0]["noise"], atol=1e-5)


def test_another_packs_error_keeps_its_type_and_message():
    """An error raised by another pack's patch (here a unet function wrapper) is not an out-of-memory
    and not a latent problem: it reaches the user as raised, with a note that a probe call hit it."""
    fam = "sdxl"

    def other_pack(apply_model, args):
        raise KeyError("other pack: lora key 'lora_unet_x' missing")
    m, count = probes.count_calls(injected(tiny_models.make_model(fam), candidates=2))
    m.set_model_unet_function_wrapper(other_pack)
    with pytest.raises(KeyError, match="other pack: lora key") as info:
        ksample(m, fam, latent(fam))
    assert not isinstance(info.value, core.NoiseSemanticsError)
    assert "latent" not in str(info.value)
    assert any("[Noise Semantic Inject] raised in a probe call" in n for n in getattr(info.value, "__notes__", []))


def test_dual_cfg_under_context_windows_is_refused_by_name():
    """Context windows run the model call per window, where the Dual CFG Guider's cond1 and negative
    would be read one window at a time: refused with the fix."""
    fam = "wan"
    if not host_has("WanContextWindowsManual"):
        pytest.skip("node WanContextWindowsManual does not exist on this ComfyUI")
    m = node("WanContextWindowsManual", **_windows_inputs())
    lat = {"samples": torch.zeros(tiny_models.latent_shape(fam, frames=6))}
    guider = guider_of("DualCFGGuider-regular", m, fam)
    with pytest.raises(core.NoiseSemanticsError, match=r"Dual CFG Guider read cond1 and the negative.*context "
                                                       r"windows.*Fix: sample without context windows"):
        custom_sample(guider, fam, lat)


def _windows_inputs():
    """WAN Context Windows on the tiny WAN (6 latent frames in windows of 3), as tests/integration/test_combos.py."""
    model = injected(tiny_models.make_model("wan"), candidates=2)
    inputs = dict(model=model, context_length=9, context_overlap=4, context_schedule="standard_static",
                  context_stride=1, closed_loop=False, fuse_method="pyramid")
    if "freenoise" in nodes.NODE_CLASS_MAPPINGS["WanContextWindowsManual"].INPUT_TYPES()["required"]:
        inputs["freenoise"] = False
    return inputs


class NoHookGuider(comfy.samplers.CFGGuider):
    """A guider as another pack may write one (or as ComfyUI 0.33's Dual Model CFG Guider at cfg 1 runs):
    positive and negative through the model, combined without ComfyUI's cfg_function, so its post-CFG
    hook is never called."""
    def predict_noise(self, x, timestep, model_options={}, seed=None):
        cond, uncond = comfy.samplers.calc_cond_batch(self.inner_model, [self.conds["positive"], self.conds["negative"]],
                                                      x, timestep, model_options)
        return uncond + self.cfg * (cond - uncond)


def test_a_guider_that_never_reports_its_branches_stops_with_the_nodes_error():
    fam = "sdxl"
    model = injected(tiny_models.make_model(fam), candidates=2)
    pos, neg = tiny_models.make_conditioning(fam, 0)
    guider = NoHookGuider(model)
    guider.set_conds(pos, neg)
    guider.set_cfg(3.0)
    with pytest.raises(core.NoiseSemanticsError, match=r"\[Noise Semantic Inject\] .*guider \(NoHookGuider\) did not "
                                                       r"report them\. Fix: sample with KSampler or the CFG Guider"):
        custom_sample(guider, fam, latent(fam))
