"""Build, save and load the project's small models, from ComfyUI's own classes.

* ``eps``  -- ComfyUI's SD 1.5 class (``comfy.supported_models.SD15`` -> ``model_base.BaseModel``, eps
  prediction, 1000 discrete sigmas 0.029..14.6): a small UNet with cross-attention on the prompt.
* ``flow`` -- ComfyUI's FLUX.1-schnell class (``comfy.supported_models.FluxSchnell`` -> ``model_base.Flux``,
  rectified flow, shift 1): a small DiT reading the prompt as its "T5" context and a pooled "CLIP" vector.

Weights are stored as float16 safetensors with the task's frozen "text encoder" tensors and the latent
standardization in the metadata; loading maps the names through the model config as ComfyUI's own loader
does, and checks them complete.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

KINDS = ("eps", "flow")
ROOT = Path(__file__).resolve().parents[2]
CONTEXT_DIM = 32  # the "text encoder"'s width (cross-attention context)
POOLED_DIM = 32   # FLUX's pooled "CLIP" vector


def eps_unet(image_size: int) -> dict:
    """ComfyUI's SD 1.5 UNet (openaimodel.UNetModel) shrunk to ~1.4 M parameters: two levels,
    cross-attention on the lower level and in the middle block (SD15.unet_extra_config adds
    num_heads=8, num_head_channels=-1: head dim 8). 64 channels, not 32: every ResBlock adds the
    timestep embedding as a per-channel bias right before a GroupNorm(32, channels); at 32 channels
    each group is one channel, the norm removes the bias and the network cannot see the timestep at
    all (measured: output change 2e-7 between t=999 and t=10)."""
    return {
        "use_checkpoint": False, "image_size": image_size, "in_channels": 4, "out_channels": 4,
        "model_channels": 64, "channel_mult": [1, 1], "num_res_blocks": [1, 1],
        "transformer_depth": [0, 1], "transformer_depth_output": [0, 0, 1, 1],
        "transformer_depth_middle": 1, "use_spatial_transformer": True, "legacy": False,
        "use_linear_in_transformer": False, "context_dim": CONTEXT_DIM, "num_classes": None,
        "adm_in_channels": None, "use_temporal_attention": False, "use_temporal_resblock": False,
    }


# ComfyUI's FLUX.1 DiT (ldm/flux/model.Flux), schnell variant (no guidance embedding), 1x1 patches:
# one image token per latent position, plus the prompt's tokens. axes_dim sums to hidden/heads, each even (RoPE).
FLOW_DIT = {
    "image_model": "flux", "guidance_embed": False, "in_channels": 16, "out_channels": 16,
    "patch_size": 1, "hidden_size": 64, "num_heads": 4, "axes_dim": [4, 6, 6],
    "mlp_ratio": 2.0, "depth": 2, "depth_single_blocks": 2, "theta": 10000,
    "qkv_bias": True, "context_in_dim": CONTEXT_DIM, "vec_in_dim": POOLED_DIM,
}


def model_init():
    """tests/model_init.py: the project's one weight initialiser and its host-aware FLUX config."""
    if str(ROOT / "tests") not in sys.path:
        sys.path.insert(0, str(ROOT / "tests"))
    import model_init
    return model_init


def model_config(kind: str, arch: dict):
    import comfy.supported_models
    if kind == "eps":
        return comfy.supported_models.SD15(dict(arch))
    if kind == "flow":
        return comfy.supported_models.FluxSchnell(model_init().flux_config(arch))
    raise ValueError(f"unknown kind {kind!r}, expected one of {KINDS}")


def build(kind: str, arch: dict, seed: int = 0):
    """A freshly initialised float32 CPU model: ``(model_config, model_base instance)``."""
    config = model_config(kind, arch)
    return config, model_init().build(config, seed)


def count_params(model) -> int:
    return sum(p.numel() for p in model.diffusion_model.parameters())


def save(path: Path, kind: str, model, extra: dict, stats: tuple, info: dict, arch: dict | None = None) -> None:
    """The diffusion model in float16, the task's ``extra`` tensors (its text encoder) as they are;
    metadata: kind, the latent standardization (mean, std), the architecture (if given), ``info``."""
    from safetensors.torch import save_file
    sd = {"diffusion_model." + k: v.detach().to(torch.float16).contiguous()
          for k, v in model.diffusion_model.state_dict().items()}
    sd.update({k: v.contiguous() for k, v in extra.items()})
    meta = {"kind": kind, "pixel_mean": repr(stats[0]), "pixel_std": repr(stats[1])}
    if arch is not None:
        meta["arch"] = json.dumps(arch, sort_keys=True)
    meta["info"] = json.dumps(info, sort_keys=True)
    save_file(sd, str(path), metadata=meta)


def load(kind: str, path: Path, default_arch: dict, retrain: str):
    """``(model_base with the file's weights, float32 on the CPU, extra tensors, metadata)``.
    The architecture is the file's own (``arch`` in its metadata) or ``default_arch``. As every ComfyUI
    loader does (model_base.load_model_weights), the model config maps the file's tensor names to this
    ComfyUI's modules: the shipped files have the names of ComfyUI 0.3.75, where they were trained, and
    0.33 renamed FLUX's norm gains ".scale" -> ".weight". Checked complete (load_model_weights only logs
    a mismatch), so a file that does not fit this ComfyUI's model fails loudly instead of sampling from
    random weights. ``retrain``: the command that writes the file, for the error when it is missing."""
    from safetensors import safe_open
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `{retrain}`")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        sd = {k: f.get_tensor(k) for k in f.keys()}
    if meta.get("kind") != kind:
        raise ValueError(f"{path} holds a {meta.get('kind')!r} model, not {kind!r}")
    arch = json.loads(meta["arch"]) if "arch" in meta else default_arch
    config, model = build(kind, arch)
    prefix = "diffusion_model."
    unet = config.process_unet_state_dict({k[len(prefix):]: v.float() for k, v in sd.items() if k.startswith(prefix)})
    missing, unexpected = model.diffusion_model.load_state_dict(unet, strict=False)
    if missing or unexpected:
        raise RuntimeError(f"{path} does not fit this ComfyUI's {type(config).__name__}: "
                           f"missing {missing}, unexpected {unexpected}")
    model.requires_grad_(False)
    model.eval()
    extra = {k: v.float() for k, v in sd.items() if not k.startswith(prefix)}
    return model, extra, meta
