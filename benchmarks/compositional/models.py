"""The compositional task's two models, built from ComfyUI's own classes by the project's
small-model builder (``benchmarks/small_models/build.py``: an SD 1.5-class eps UNet and a
FLUX.1-schnell-class flow DiT), and the task's fixed "text encoder" and latent code.

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
from pathlib import Path

import torch

import comfy.model_patcher

from benchmarks.small_models import build as small

from . import data

HERE = Path(__file__).resolve().parent
KINDS = small.KINDS
WEIGHTS = {"eps": HERE / "eps.safetensors", "flow": HERE / "flow.safetensors"}
PLANES = 4  # RGB + a zero plane
UNSHUFFLE = {"eps": 1, "flow": 2}
CONTEXT_DIM = small.CONTEXT_DIM
POOLED_DIM = small.POOLED_DIM
MIX = 1.0  # causal mixing of the text encoder (make_text_encoder)
GAIN = 2.0  # saturation of the text encoder's fixed tanh MLP
TEXT_HIDDEN = 128

# ComfyUI's SD 1.5 UNet on the 8x16 latent: two levels (8x16, 4x8), cross-attention on the lower level
# and in the middle (attention at 8x16 would triple the training cost on this CPU).
EPS_UNET = small.eps_unet(image_size=8)
# ComfyUI's FLUX.1-schnell DiT, 1x1 patches on the 4x8 latent: 32 image tokens + 4 text tokens.
FLOW_DIT = small.FLOW_DIT
ARCH = {"eps": EPS_UNET, "flow": FLOW_DIT}


def model_config(kind: str, arch: dict | None = None):
    return small.model_config(kind, arch or ARCH.get(kind, {}))


def build(kind: str, seed: int = 0, arch: dict | None = None):
    """A freshly initialised float32 CPU model: ``(model_config, model_base instance)``."""
    return small.build(kind, arch or ARCH.get(kind, {}), seed)


count_params = small.count_params


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
    small.save(path, kind, model, enc, stats, info, arch=arch)


def load(kind: str, path: Path | None = None):
    """``(ModelPatcher, text encoder)`` for a trained model, float32 on the CPU (names mapped and
    checked as ComfyUI loads: small_models.build.load)."""
    if kind not in ARCH:
        raise ValueError(f"unknown kind {kind!r}, expected one of {KINDS}")
    model, enc, meta = small.load(kind, Path(path or WEIGHTS[kind]), ARCH[kind],
                                  f".venv/bin/python -m benchmarks.compositional.train --kind {kind}")
    model.comp_stats = (float(meta["pixel_mean"]), float(meta["pixel_std"]))
    model.comp_info = json.loads(meta.get("info", "{}"))
    model.comp_arch = json.loads(meta["arch"])
    cpu = torch.device("cpu")
    return comfy.model_patcher.ModelPatcher(model, load_device=cpu, offload_device=cpu), enc
