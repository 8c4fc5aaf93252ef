"""Tiny but real SDXL / FLUX / WAN 2.1 models built from ComfyUI's own classes, for tests.

Import this only after ComfyUI is on sys.path and ``comfy.options.enable_args_parsing()`` ran
with ``--cpu`` in sys.argv (so comfy.model_management never looks for a GPU).

Each model is the real architecture (``comfy.supported_models`` config -> ``model_base`` class ->
``ModelPatcher``) shrunk to 0.07-1.4 M parameters, so everything a node does with a
real checkpoint (model_sampling, extra_conds, CFG, wrappers, patches) runs the real code path,
on the CPU, in milliseconds per step. The weights are random: outputs mean nothing, but they
are finite, deterministic from a seed and depend on the input, the timestep and the prompt.

Public API
    FAMILIES                                   ("sdxl", "flux", "wan")
    make_model(family, seed=0)             ->  comfy.model_patcher.ModelPatcher (float32, CPU)
    make_conditioning(family, seed=0, batch=1, size=16)
                                           ->  (positive, negative), ComfyUI CONDITIONING lists
    latent_shape(family, batch=1, size=16, frames=2)
                                           ->  sdxl [B,4,size,size], flux [B,16,size,size],
                                               wan [B,16,frames,size,size]
"""

if __name__ == "__main__":
    # Standalone smoke run only (python tests/tiny_models.py); importers set ComfyUI up themselves.
    import host
    host.boot()

import torch

import comfy.supported_models

import model_init

FAMILIES = ("sdxl", "flux", "wan")

# Text-encoder widths of the tiny models. The real ones are 2048 (SDXL CLIP-L+G), 4096 (T5-XXL)
# and 4096 (umT5-XXL); only the width of the conditioning tensors has to match the model.
_SDXL_CONTEXT = 64
_SDXL_POOLED = 1280  # fixed: SDXL's adm vector is pooled(1280) + 6 size embeddings(256) = 2816
_FLUX_CONTEXT = 64
_FLUX_VEC = 32  # FLUX's pooled CLIP-L vector (768 in the real model)
_WAN_TEXT = 32
_TOKENS = {"sdxl": 77, "flux": 16, "wan": 16}


def _model_config(family):
    if family == "sdxl":
        # Two levels, attention only on the second (like SDXL's first level). GroupNorm(32)
        # needs channels divisible by 32; num_head_channels stays at SDXL's 64 (set by
        # unet_extra_config), so the attention level needs >= 64 channels.
        unet = {
            "use_checkpoint": False, "image_size": 32, "in_channels": 4, "out_channels": 4,
            "model_channels": 32, "channel_mult": [1, 2], "num_res_blocks": [1, 1],
            "transformer_depth": [0, 1], "transformer_depth_output": [0, 0, 1, 1],
            "transformer_depth_middle": 1, "use_spatial_transformer": True, "legacy": False,
            "use_linear_in_transformer": True, "context_dim": _SDXL_CONTEXT,
            "num_classes": "sequential", "adm_in_channels": 2816,
            "use_temporal_attention": False, "use_temporal_resblock": False,
        }
        return comfy.supported_models.SDXL(unet)
    if family == "flux":
        # guidance_embed=True is what makes this FLUX.1-dev (Schnell has none).
        # axes_dim must sum to hidden_size / num_heads, and each axis must be even (RoPE).
        unet = {
            "image_model": "flux", "guidance_embed": True, "in_channels": 16, "out_channels": 16,
            "patch_size": 2, "hidden_size": 48, "num_heads": 2, "axes_dim": [8, 8, 8],
            "mlp_ratio": 2.0, "depth": 1, "depth_single_blocks": 1, "theta": 10000,
            "qkv_bias": True, "context_in_dim": _FLUX_CONTEXT, "vec_in_dim": _FLUX_VEC,
        }
        return comfy.supported_models.Flux(model_init.flux_config(unet))
    if family == "wan":
        # Head dim 24 gives RoPE axes [8, 8, 8] (d - 4*(d//6), 2*(d//6), 2*(d//6)).
        unet = {
            "image_model": "wan2.1", "model_type": "t2v", "patch_size": (1, 2, 2),
            "in_dim": 16, "out_dim": 16, "dim": 48, "ffn_dim": 96, "freq_dim": 256,
            "text_dim": _WAN_TEXT, "num_heads": 2, "num_layers": 1,
        }
        return comfy.supported_models.WAN21_T2V(unet)
    raise ValueError(f"unknown family {family!r}, expected one of {FAMILIES}")


def make_model(family, seed=0):
    """A tiny float32 CPU model of the given family, wrapped like comfy.sd loads checkpoints."""
    # Weights: tests/model_init.py (ComfyUI's layers skip initialisation; a checkpoint would fill them).
    return model_init.patcher(model_init.build(_model_config(family), seed))


def _cond(family, gen, batch, size):
    tokens = _TOKENS[family]
    if family == "sdxl":
        extra = {"pooled_output": torch.randn(batch, _SDXL_POOLED, generator=gen),
                 # What CLIPTextEncodeSDXL adds; model_base.SDXL defaults them to 768 otherwise.
                 "width": size * 8, "height": size * 8, "crop_w": 0, "crop_h": 0,
                 "target_width": size * 8, "target_height": size * 8}
        return [[torch.randn(batch, tokens, _SDXL_CONTEXT, generator=gen), extra]]
    if family == "flux":
        # pooled_output is required (model_base.Flux.encode_adm indexes it); guidance defaults
        # to 3.5 in extra_conds, FluxGuidance would set it explicitly.
        extra = {"pooled_output": torch.randn(batch, _FLUX_VEC, generator=gen), "guidance": 3.5}
        return [[torch.randn(batch, tokens, _FLUX_CONTEXT, generator=gen), extra]]
    if family == "wan":
        return [[torch.randn(batch, tokens, _WAN_TEXT, generator=gen), {}]]
    raise ValueError(f"unknown family {family!r}, expected one of {FAMILIES}")


def make_conditioning(family, seed=0, batch=1, size=16):
    """(positive, negative) CONDITIONING, deterministic from seed; the two always differ.

    size is the latent side, used only for SDXL's width/height size embedding.
    """
    positive = _cond(family, torch.Generator().manual_seed(2 * seed), batch, size)
    negative = _cond(family, torch.Generator().manual_seed(2 * seed + 1), batch, size)
    return positive, negative


def latent_shape(family, batch=1, size=16, frames=2):
    """Empty-latent shape the tiny model accepts. size: latent side (even is safe: SDXL has one
    2x downsample; FLUX/WAN pad to their 2x2 patches). frames: WAN latent frames, any >= 1
    (t-patch is 1; the real VAE gives 1 + (video_frames - 1) // 4)."""
    if family == "sdxl":
        return (batch, 4, size, size)
    if family == "flux":
        return (batch, 16, size, size)
    if family == "wan":
        return (batch, 16, frames, size, size)
    raise ValueError(f"unknown family {family!r}, expected one of {FAMILIES}")


if __name__ == "__main__":
    import time

    import nodes

    for fam in FAMILIES:
        m = make_model(fam)
        n = sum(p.numel() for p in m.model.parameters())
        ms = type(m.model.model_sampling).__bases__  # (schedule, prediction type)
        pos, neg = make_conditioning(fam)
        shape = latent_shape(fam)
        for _ in range(2):  # the first call pays for one-off setup
            t0 = time.perf_counter()
            out = nodes.common_ksampler(m, 0, 4, 3.0, "euler", "normal", pos, neg,
                                        {"samples": torch.zeros(shape)})[0]["samples"]
            dt = time.perf_counter() - t0
        print(f"{fam}: {type(m.model).__name__}, {n:,} parameters, sampling "
              f"{ms[0].__name__}+{ms[1].__name__}, latent {shape}, 4 euler steps {dt * 1000:.0f} ms, "
              f"finite {bool(torch.isfinite(out).all())}")
