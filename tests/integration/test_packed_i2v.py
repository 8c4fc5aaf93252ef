"""Image-to-video conditioning and packed latents inside real ComfyUI (issue 9, part 2).

* I2V: tiny WAN 2.2 5B (TI2V, 48-channel latent, per-frame timesteps from the denoise mask) and
  LTX-Video models, conditioned by the real Wan22ImageToVideoLatent / LTXVImgToVideo nodes (with a
  stand-in VAE encoder), sampled by KSampler with and without the pack (Erase 2 + Inject 0.5 with 2
  screening candidates): the frame the user gave comes out as stock sampling leaves it, the free
  frames change.
* Packed latents (ComfyUI 0.33 ``latent_shapes``): a tiny LTX-2 audio+video model (LTXAV) samples a
  nested latent, which the sampler packs into one [B, 1, N] noise; each sub-latent of the starting
  noise is refined as its own sample. Skipped on hosts without packing models (0.3.75).

The tiny configs live here (another module builds the general family zoo); weights are random.
"""
import pytest
import torch

import comfy.nested_tensor
import comfy.sample
import comfy.supported_models
import comfy.utils
import nodes

import model_init
import probes
from noise_semantics import core

SEED = 321
ERASE_N, STRENGTH, CANDIDATES = 2, 0.5, 2
_TEXT = 32  # width of the tiny models' text conditioning


# ---------------------------------------------------------------- tiny models and a stand-in VAE

def _config(family):
    if family == "wan22":
        # WAN 2.2 TI2V 5B: the 48-channel Wan22 latent; model_base.WAN22 turns the denoise mask into
        # per-frame timesteps (0 on the given frame).
        return comfy.supported_models.WAN22_T2V({
            "image_model": "wan2.1", "model_type": "t2v", "patch_size": (1, 2, 2), "in_dim": 48,
            "out_dim": 48, "dim": 48, "ffn_dim": 96, "freq_dim": 256, "text_dim": _TEXT, "num_heads": 2,
            "num_layers": 1})
    if family == "ltxv":
        return comfy.supported_models.LTXV({
            "image_model": "ltxv", "in_channels": 128, "cross_attention_dim": _TEXT, "attention_head_dim": 16,
            "num_attention_heads": 2, "caption_channels": _TEXT, "num_layers": 1})
    if family == "ltxav":
        # LTX-2: video (128 channels) and audio (8 channels x 16 frequency bins) streams; the text
        # connectors (two 30-head blocks by default, 700 M parameters) shrunk too.
        return comfy.supported_models.LTXAV({
            "image_model": "ltxav", "in_channels": 128, "audio_in_channels": 128, "cross_attention_dim": _TEXT,
            "audio_cross_attention_dim": _TEXT, "attention_head_dim": 16, "audio_attention_head_dim": 16,
            "num_attention_heads": 2, "audio_num_attention_heads": 2, "caption_channels": _TEXT, "num_layers": 1,
            "connector_attention_head_dim": 8, "connector_num_attention_heads": 2, "connector_num_layers": 1})
    raise ValueError(family)


def make_model(family):
    return model_init.patcher(model_init.build(_config(family), 0))


def conditioning(family, batch=1):
    """(positive, negative): LTXV wants an integer token mask; LTXAV a context already split into its
    video and audio halves (width cross_attention_dim + audio_cross_attention_dim)."""
    width = 2 * _TEXT if family == "ltxav" else _TEXT
    out = []
    for s in (0, 1):
        g = torch.Generator().manual_seed(s)
        extra = {"attention_mask": torch.ones(batch, 8, dtype=torch.long)} if family == "ltxv" else {}
        out.append([[torch.randn(batch, 8, width, generator=g), extra]])
    return out


class StandInVideoVAE:
    """What the I2V nodes call on a VAE: ``encode(pixels)`` -> [B, C, frames, H/s, W/s], here a fixed
    random projection of the average-pooled pixels (a real 48/128-channel video VAE is heavy)."""

    def __init__(self, channels, spatial, temporal):
        self.channels, self.spatial, self.temporal = channels, spatial, temporal
        self.downscale_index_formula = (temporal, spatial, spatial)  # LTXVAddGuide reads it
        self.proj = torch.randn(channels, 3, generator=torch.Generator().manual_seed(5))

    def encode(self, pixels):
        x = pixels[..., :3].movedim(-1, 1)  # [F, 3, H, W]
        x = torch.nn.functional.avg_pool2d(x, self.spatial)
        x = torch.einsum("cd,fdhw->fchw", self.proj, x * 2 - 1)
        frames = 1 + (x.shape[0] - 1) // self.temporal
        return x[::self.temporal][:frames].movedim(0, 1).unsqueeze(0)  # [1, C, frames, h, w]


def i2v_latent(case, positive, negative, batch=2):
    """The real conditioning nodes, 64x64 pixels: WAN 2.2 and LTXV keep the first frame of a
    2-latent-frame video; 'ltxv-guide' is LTXVAddGuide's keyframe (here the video's last frame),
    appended to an empty latent as one more latent frame that the sampler keeps (LTXVCropGuides
    removes it after sampling; the node takes a batch of one: its guide latent is not repeated)."""
    image = torch.rand(1, 64, 64, 3, generator=torch.Generator().manual_seed(11))
    if case == "ltxv-guide":
        vae = StandInVideoVAE(128, 32, 8)
        empty = nodes.NODE_CLASS_MAPPINGS["EmptyLTXVLatentVideo"].execute(width=64, height=64, length=9,
                                                                         batch_size=1).result[0]
        return nodes.NODE_CLASS_MAPPINGS["LTXVAddGuide"].execute(
            positive=positive, negative=negative, vae=vae, latent=empty, image=image, frame_idx=8,
            strength=1.0).result
    if case == "wan22":
        vae = StandInVideoVAE(48, 16, 4)
        out = nodes.NODE_CLASS_MAPPINGS["Wan22ImageToVideoLatent"].execute(
            vae=vae, width=64, height=64, length=5, batch_size=batch, start_image=image)
        return positive, negative, out.result[0]
    vae = StandInVideoVAE(128, 32, 8)
    pos, neg, lat = nodes.NODE_CLASS_MAPPINGS["LTXVImgToVideo"].execute(
        positive=positive, negative=negative, image=image, vae=vae, width=64, height=64, length=9,
        batch_size=batch, strength=1.0).result
    return pos, neg, lat


def the_pack(model, candidates=CANDIDATES):
    m = nodes.NODE_CLASS_MAPPINGS["NoiseSemanticErase"].execute(model=model, samples=ERASE_N,
                                                                restandardize=True).result[0]
    return nodes.NODE_CLASS_MAPPINGS["NoiseSemanticInject"].execute(
        model=m, strength=STRENGTH, decorrelate=True, candidates=candidates).result[0]


def ksample(model, positive, negative, latent, steps=4):
    return nodes.KSampler().sample(model, SEED, steps, 3.0, "euler", "simple", positive, negative, latent,
                                   1.0)[0]["samples"]


# ---------------------------------------------------------------- image to video

def one_latent_path(rec, lat):
    """The refinement of one latent as the pack did it before packed latents were handled: stock
    noise, candidates, erasure, and core.refine_inject on the whole latent (no sub-latents)."""
    ms = rec["guider"].inner_model.model_sampling
    z = comfy.sample.prepare_noise(lat, SEED)
    cands = [core.erase(c, SEED, ERASE_N) for c in core.candidate_noises(z, SEED, CANDIDATES)]
    sigma_of_tau = lambda tau: probes.probe_sigma(ms, tau)
    c_in = lambda sig: ms.calculate_input(sig, torch.ones((sig.shape[0],) + (1,) * (z.ndim - 1))).reshape(-1)
    return core.refine_inject(cands[0], core.DEFAULT_SCHEDULE, STRENGTH, sigma_of_tau, c_in, probes.branch_predict(rec),
                              candidates=cands)


@pytest.mark.parametrize("case", ["wan22", "ltxv", "ltxv-guide"])
def test_i2v_given_frames_come_out_as_stock_keeps_them(case):
    family = case.split("-")[0]
    pos, neg = conditioning(family, 1)
    pos, neg, lat = i2v_latent(case, pos, neg)
    mask = lat["noise_mask"]
    kept = mask[0, 0] == 0  # [frames, 1, 1] or [frames, h, w]
    assert kept.any() and not kept.all()
    base = make_model(family)
    stock = ksample(base, pos, neg, lat)
    patched = probes.capture(the_pack(base), "i2v", inspect=lambda rec: one_latent_path(rec, lat["samples"]))
    out = ksample(patched, pos, neg, lat)
    rec = probes.RECORDS["i2v"][0]
    noise = rec["noise"]
    stock_noise = comfy.sample.prepare_noise(lat["samples"], SEED)
    assert not torch.allclose(noise, stock_noise, atol=1e-2)  # the pack did refine the noise
    # One latent takes the ordinary path (no sub-latents), bit for bit.
    assert torch.equal(noise, rec["inspect"])

    k = kept.expand_as(out[0, 0])  # [frames, h, w]
    kept_diff = (out - stock)[:, :, k].abs().max().item()
    given_diff = (out - lat["samples"])[:, :, k].abs().max().item()
    stock_given = (stock - lat["samples"])[:, :, k].abs().max().item()
    free_diff = (out - stock)[:, :, ~k].abs().max().item()
    print(f"{case}: kept frame |pack - stock| max {kept_diff:.2e}, |pack - given| {given_diff:.2e} "
          f"(stock's own |stock - given| {stock_given:.2e}); free frames |pack - stock| max {free_diff:.3f}")
    # The sampler puts the given latent back on the kept frame at every step (KSamplerX0Inpaint), and
    # WAN 2.2 / LTXV feed the model that latent there; Euler's last step then lands on it. What the
    # noise leaves is float32 rounding of x - (x - latent) (x holds the noise), a few ulps.
    assert kept_diff < 1e-5
    assert given_diff < 1e-5
    assert free_diff > 1e-2


# ---------------------------------------------------------------- packed latents

def _packing_host():
    return hasattr(comfy.supported_models, "LTXAV") and hasattr(comfy.utils, "unpack_latents")


needs_packing = pytest.mark.skipif(
    not _packing_host(), reason="this ComfyUI has no packed-latent (latent_shapes) models such as LTXAV")

AV_SHAPES = ((128, 2, 2, 2), (8, 5, 16))  # video [C, T, H, W], audio [C, T, freq]


def av_latent(batch):
    return comfy.nested_tensor.NestedTensor(tuple(torch.zeros((batch,) + s) for s in AV_SHAPES))


def expected_packed(rec, lat, candidates, strength):
    """Independent recomputation, sub-latent by sub-latent: stock nested noise, each sub-latent's
    candidates and erasure (core, one real latent at a time), the probe (one call on the packed
    tensor, as the model needs both streams), then per sub-latent conflict and mix with the
    ordinary one-latent core functions."""
    ms = rec["guider"].inner_model.model_sampling
    predict = probes.branch_predict(rec)
    subs = comfy.sample.prepare_noise(lat, SEED).unbind()
    shapes = [s.shape for s in subs]
    per_sub = [[core.erase(c, SEED, ERASE_N) for c in core.candidate_noises(s, SEED, candidates)] for s in subs]
    cands = [comfy.utils.pack_latents([p[j] for p in per_sub])[0] for j in range(candidates)]
    tau = core.DEFAULT_SCHEDULE.taus[0]
    results = []
    for c in cands:
        sig = torch.full((c.shape[0],), probes.probe_sigma(ms, tau))
        x = c / ms.calculate_input(sig, torch.ones_like(c))
        d, dc, du = predict(x, sig)
        e = core.semantic_direction(d, x, sig)
        split = lambda t: comfy.utils.unpack_latents(t, shapes)
        conf = torch.stack([core.conflict(a, b) for a, b in zip(split(dc), split(du))]).mean(0)
        results.append((c, e, conf))
    pick = torch.stack([r[2] for r in results]).argmin(0)  # per sample
    z = torch.stack([results[int(j)][0][b] for b, j in enumerate(pick)])
    e = torch.stack([results[int(j)][1][b] for b, j in enumerate(pick)])
    mixed = [core.inject(zs, es, strength) for zs, es in zip(comfy.utils.unpack_latents(z, shapes),
                                                              comfy.utils.unpack_latents(e, shapes))]
    whole = core.inject(z, e, strength)  # what treating the packed vector as one latent would give
    return comfy.utils.pack_latents(mixed)[0], whole, shapes


@needs_packing
@pytest.mark.parametrize("candidates", [1, 2])
def test_packed_sub_latents_are_refined_as_their_own_samples(candidates):
    lat = av_latent(2)
    pos, neg = conditioning("ltxav", 1)
    model = probes.capture(the_pack(make_model("ltxav"), candidates), "av",
                           inspect=lambda rec: expected_packed(rec, lat, candidates, STRENGTH))
    out = ksample(model, pos, neg, {"samples": lat}, steps=2)
    assert out.is_nested and [tuple(t.shape[1:]) for t in out.unbind()] == list(AV_SHAPES)
    rec = probes.RECORDS["av"][0]
    noise = rec["noise"]
    exp, whole, shapes = rec["inspect"]
    assert noise.shape == (2, 1, sum(torch.Size(s).numel() for s in AV_SHAPES))
    for sub in comfy.utils.unpack_latents(noise, shapes):
        flat = sub.reshape(sub.shape[0], -1)
        assert torch.allclose(flat.mean(1), torch.zeros(2), atol=1e-5)
        assert torch.allclose(flat.std(1, unbiased=False), torch.ones(2), atol=1e-5)
    err = (noise - exp).abs().max().item()
    off = (noise - whole).abs().max().item()
    whole_std = [tuple(round(v, 4) for v in sub.reshape(2, -1).std(1, unbiased=False).tolist())
                 for sub in comfy.utils.unpack_latents(whole, shapes)]
    print(f"candidates {candidates}: |noise - per-sub-latent recomputation| max {err:.2e}; "
          f"|noise - whole-vector refinement| max {off:.3f}, whose sub-latent stds would be {whole_std}")
    assert err < 1e-4, err
    # ... which one standardization, decorrelation and mix over the whole packed vector would not give.
    assert off > 1e-2
