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

import math

if __name__ == "__main__":
    # Standalone smoke run only (python tests/tiny_models.py); importers set ComfyUI up themselves.
    import os
    import sys
    _root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path.insert(0, os.environ.get("COMFYUI_PATH")
                    or open(os.path.join(_root, ".host", "comfyui_path")).read().strip())
    sys.argv = sys.argv[:1] + ["--cpu"]
    import comfy.options
    comfy.options.enable_args_parsing()

import torch

import comfy.model_patcher
import comfy.supported_models

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
        return comfy.supported_models.Flux(unet)
    if family == "wan":
        # Head dim 24 gives RoPE axes [8, 8, 8] (d - 4*(d//6), 2*(d//6), 2*(d//6)).
        unet = {
            "image_model": "wan2.1", "model_type": "t2v", "patch_size": (1, 2, 2),
            "in_dim": 16, "out_dim": 16, "dim": 48, "ffn_dim": 96, "freq_dim": 256,
            "text_dim": _WAN_TEXT, "num_heads": 2, "num_layers": 1,
        }
        return comfy.supported_models.WAN21_T2V(unet)
    raise ValueError(f"unknown family {family!r}, expected one of {FAMILIES}")


@torch.no_grad()
def _init_params(module, seed):
    # ComfyUI's ops skip weight init (checkpoints overwrite it), so the tensors hold whatever
    # torch.empty gave. LeCun-normal weights keep activations O(1) through the tiny stacks so the
    # prediction visibly depends on input, timestep and prompt; ComfyUI's zero-initialised
    # output layers are deliberately NOT zeroed here, for the same reason.
    gen = torch.Generator().manual_seed(seed)
    for name, p in module.named_parameters():
        leaf = name.rsplit(".", 1)[-1]
        if p.ndim >= 2 and leaf == "weight":
            fan_in = math.prod(p.shape[1:])
            p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(fan_in))
        elif p.ndim == 1 and leaf in ("weight", "scale"):
            # Norm gains (LayerNorm/GroupNorm/RMSNorm): around 1, not around 0.
            p.copy_(1.0 + 0.02 * torch.randn(p.shape, generator=gen))
        else:
            # Biases and free parameters (e.g. WAN's modulation tables).
            p.copy_(0.02 * torch.randn(p.shape, generator=gen))


def make_model(family, seed=0):
    """A tiny float32 CPU model of the given family, wrapped like comfy.sd loads checkpoints."""
    config = _model_config(family)
    # What comfy.sd.load_diffusion_model_state_dict does, minus the checkpoint: pick dtypes,
    # build from an empty state dict (get_model reads model_type from it: eps for SDXL).
    config.set_inference_dtype(torch.float32, None)
    model = config.get_model({}, "")
    _init_params(model, seed)
    # Inference only: no autograd graphs in tests (ComfyUI's own weight patching also stores
    # parameters with requires_grad=False, and the server samples under inference_mode).
    model.requires_grad_(False)
    model.eval()
    cpu = torch.device("cpu")
    return comfy.model_patcher.ModelPatcher(model, load_device=cpu, offload_device=cpu)


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
