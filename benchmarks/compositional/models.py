"""The compositional task's two models, built from ComfyUI's own classes, and its fixed
"text encoder" and latent code.

* ``eps``  -- ComfyUI's SD 1.5 class (``comfy.supported_models.SD15`` -> ``model_base.BaseModel``,
  eps prediction, 1000 discrete sigmas), a small UNet with cross-attention on the prompt.
* ``flow`` -- ComfyUI's FLUX.1-schnell class (``comfy.supported_models.FluxSchnell`` ->
  ``model_base.Flux``, rectified flow, shift 1), a small DiT reading the prompt as its "T5"
  context and a pooled "CLIP" vector.

Latent: the 8x16 RGB scene plus a constant zero 4th plane (like an opaque alpha; a lossless code
of RGB needs 3 planes and the families have 4 / 16 latent channels, 3 r^2 never equals either),
standardized with the training scenes' mean and std, then pixel-unshuffled into the family's
channels: eps 4 x 8x16 (EmptyLatentImage 128x64), flow 16 x 4x8 (2x2 blocks; EmptySD3LatentImage
64x32). The initial noise is therefore a unit Gaussian "image". No VAE: decode is the fixed
inverse (undo the latent format, pixel-shuffle, drop the 4th plane, unstandardize, clip to 0..1).

Text encoder (frozen, random, stored in the weights file): see ``encode_text``.

Import only after ComfyUI is booted (``tests/host.py: boot()``).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

import comfy.model_patcher
import comfy.supported_models

from . import data

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
KINDS = ("eps", "flow")
WEIGHTS = {"eps": HERE / "eps.safetensors", "flow": HERE / "flow.safetensors"}
PLANES = 4  # RGB + a zero plane
UNSHUFFLE = {"eps": 1, "flow": 2}
CONTEXT_DIM = 32
POOLED_DIM = 32
MIX = 1.0  # causal mixing of the text encoder (make_text_encoder)
GAIN = 2.0  # saturation of the text encoder's fixed tanh MLP
TEXT_HIDDEN = 128

EPS_UNET = {
    # ComfyUI's SD 1.5 UNet (openaimodel.UNetModel) on the 8x16 latent: two levels (8x16, 4x8),
    # cross-attention on the lower level and in the middle (attention at 8x16 would triple the
    # training cost on this CPU). 64 channels, not 32: every ResBlock adds the
    # timestep as a per-channel bias before GroupNorm(32, ch), which at 32 channels (one channel
    # per group) removes it, and the network cannot see the timestep (see demo/models.py).
    "use_checkpoint": False, "image_size": 8, "in_channels": 4, "out_channels": 4,
    "model_channels": 64, "channel_mult": [1, 1], "num_res_blocks": [1, 1],
    "transformer_depth": [0, 1], "transformer_depth_output": [0, 0, 1, 1],
    "transformer_depth_middle": 1, "use_spatial_transformer": True, "legacy": False,
    "use_linear_in_transformer": False, "context_dim": CONTEXT_DIM, "num_classes": None,
    "adm_in_channels": None, "use_temporal_attention": False, "use_temporal_resblock": False,
}

FLOW_DIT = {
    # ComfyUI's FLUX.1 DiT (ldm/flux/model.Flux), schnell variant, 1x1 patches on the 4x8 latent:
    # 32 image tokens + 4 text tokens. axes_dim sums to hidden/heads, each even (RoPE).
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


def model_config(kind: str, arch: dict | None = None):
    if kind == "eps":
        return comfy.supported_models.SD15(dict(arch or EPS_UNET))
    if kind == "flow":
        return comfy.supported_models.FluxSchnell(model_init().flux_config(arch or FLOW_DIT))
    raise ValueError(f"unknown kind {kind!r}, expected one of {KINDS}")


def build(kind: str, seed: int = 0, arch: dict | None = None):
    """A freshly initialised float32 CPU model: ``(model_config, model_base instance)``."""
    config = model_config(kind, arch)
    return config, model_init().build(config, seed)


def count_params(model) -> int:
    return sum(p.numel() for p in model.diffusion_model.parameters())


# --------------------------------------------------------------------------- text encoder

def make_text_encoder(seed: int = 4321, mix: float = MIX, gain: float = GAIN) -> dict:
    """Random token and position embeddings, a causal mixing matrix, a random one-hidden-layer
    tanh MLP (``gain`` = how far into saturation; 0 = none), a pooling map."""
    g = torch.Generator().manual_seed(seed)
    t = data.PROMPT_LEN
    m = torch.eye(t) + mix * torch.tril(torch.ones(t, t), -1)
    m = m / m.norm(dim=1, keepdim=True)  # unit gain per position
    enc = {"text.token": torch.randn(data.N_TOKENS, CONTEXT_DIM, generator=g),
           "text.position": torch.randn(t, CONTEXT_DIM, generator=g),
           "text.mix": m,
           "text.pool": torch.randn(CONTEXT_DIM, POOLED_DIM, generator=g) / CONTEXT_DIM ** 0.5}
    w1 = torch.randn(CONTEXT_DIM, TEXT_HIDDEN, generator=g) * gain / CONTEXT_DIM ** 0.5
    w2 = torch.randn(TEXT_HIDDEN, CONTEXT_DIM, generator=g) / TEXT_HIDDEN ** 0.5
    if gain > 0:
        enc |= {"text.w1": w1, "text.w2": w2}
    return enc


def encode_text(enc: dict, prompts) -> tuple:
    """Prompts (tuples, or None for the empty prompt) -> (context [B, 4, C], pooled [B, P]).

    context_t = MLP(sum_s mix[t, s] token_s) + position_t: each token is a fixed nonlinear
    function of itself and the tokens before it, as in a causal text encoder (CLIP). A later
    object's tokens are entangled with the earlier object's attributes, and an unusual
    combination gives an embedding the model never saw (the usual source of attribute leakage
    and of failures on unusual prompts). pooled = the last token's state through a fixed linear
    map, as CLIP's pooled output is its last (EOS) token: a summary of the whole prompt, as
    entangled as the rest."""
    ids = data.tokens(prompts)
    tok = enc["text.token"][ids]
    h = torch.einsum("ts,bsc->btc", enc["text.mix"], tok)
    if "text.w1" in enc:
        h = torch.tanh(h @ enc["text.w1"]) @ enc["text.w2"] * 2.0  # about unit variance again
    context = h + enc["text.position"].unsqueeze(0)
    pooled = h[:, -1] @ enc["text.pool"]
    return context, pooled


def conditioning(enc: dict, kind: str, prompts) -> list:
    """ComfyUI CONDITIONING, one row per prompt (None = the empty prompt)."""
    context, pooled = encode_text(enc, prompts)
    extra = {"pooled_output": pooled} if kind == "flow" else {}
    return [[context, extra]]


# --------------------------------------------------------------------------- images <-> latents

def encode(images: torch.Tensor, kind: str, stats: tuple) -> torch.Tensor:
    """Scenes [N, 3, 8, 16] in 0..1 -> model-space latents [N, C, 8/r, 16/r]."""
    mean, std = stats
    x = (images - mean) / std
    x = torch.cat([x, torch.zeros_like(x[:, :1])], 1)
    return torch.nn.functional.pixel_unshuffle(x, UNSHUFFLE[kind])


def decode_model_space(x: torch.Tensor, kind: str, stats: tuple) -> torch.Tensor:
    mean, std = stats
    px = torch.nn.functional.pixel_shuffle(x.float(), UNSHUFFLE[kind])[:, :3]
    return (px * std + mean).clamp(0.0, 1.0)


def decode(patcher, latent: torch.Tensor, kind: str) -> torch.Tensor:
    """A LATENT as it leaves KSampler ("VAE space") -> images [N, 3, 8, 16] in 0..1."""
    base = patcher.model
    return decode_model_space(base.process_latent_in(latent.float()), kind, base.comp_stats)


def latent_shape(kind: str) -> tuple:
    r = UNSHUFFLE[kind]
    return PLANES * r * r, data.HEIGHT // r, data.WIDTH // r


def empty_latent(kind: str, batch: int) -> torch.Tensor:
    """What EmptyLatentImage 128x64 (eps) / EmptySD3LatentImage 64x32 (flow) give."""
    return torch.zeros(batch, *latent_shape(kind))


# --------------------------------------------------------------------------- save / load

def save(path: Path, kind: str, model, enc: dict, stats: tuple, arch: dict, info: dict) -> None:
    from safetensors.torch import save_file
    sd = {"diffusion_model." + k: v.detach().to(torch.float16).contiguous()
          for k, v in model.diffusion_model.state_dict().items()}
    sd.update({k: v.contiguous() for k, v in enc.items()})
    meta = {"kind": kind, "pixel_mean": repr(stats[0]), "pixel_std": repr(stats[1]),
            "arch": json.dumps(arch, sort_keys=True), "info": json.dumps(info, sort_keys=True)}
    save_file(sd, str(path), metadata=meta)


def load(kind: str, path: Path | None = None):
    """``(ModelPatcher, text encoder)`` for a trained model, float32 on the CPU. The weights go
    through the model config's ``process_unet_state_dict`` as in ComfyUI's own loader (it renames
    keys between ComfyUI versions, e.g. FLUX's norm ``.scale`` -> ``.weight`` in 0.33), then are
    checked complete."""
    from safetensors import safe_open
    path = Path(path or WEIGHTS[kind])
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `.venv/bin/python -m benchmarks.compositional.train --kind {kind}`")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        sd = {k: f.get_tensor(k) for k in f.keys()}
    if meta.get("kind") != kind:
        raise ValueError(f"{path} holds a {meta.get('kind')!r} model, not {kind!r}")
    arch = json.loads(meta["arch"])
    config, model = build(kind, arch=arch)
    prefix = "diffusion_model."
    unet = config.process_unet_state_dict({k[len(prefix):]: v.float() for k, v in sd.items() if k.startswith(prefix)})
    missing, unexpected = model.diffusion_model.load_state_dict(unet, strict=False)
    if missing or unexpected:
        raise RuntimeError(f"{path} does not fit this ComfyUI's {type(config).__name__}: "
                           f"missing {missing}, unexpected {unexpected}")
    model.comp_stats = (float(meta["pixel_mean"]), float(meta["pixel_std"]))
    model.comp_info = json.loads(meta.get("info", "{}"))
    model.comp_arch = arch
    model.requires_grad_(False)
    model.eval()
    enc = {k: v.float() for k, v in sd.items() if k.startswith("text.")}
    cpu = torch.device("cpu")
    return comfy.model_patcher.ModelPatcher(model, load_device=cpu, offload_device=cpu), enc
