"""Two tiny class-conditional "digits" diffusion models built from ComfyUI's own classes.

They exist to give the noise-semantics nodes something real to work on without downloading a
checkpoint: both are trained (``demo/train.py``, a few CPU minutes each) on scikit-learn's 8x8
handwritten digits and sample through ComfyUI's real KSampler.

* ``eps``  -- a UNet of ComfyUI's SD 1.5 class (``comfy.supported_models.SD15`` ->
  ``model_base.BaseModel``, eps prediction, ComfyUI's 1000 discrete SD sigmas, 0.029..14.6),
  shrunk to ~1.4 M parameters; class conditioning = the cross-attention context.
* ``flow`` -- a DiT of ComfyUI's FLUX.1-schnell class (``comfy.supported_models.FluxSchnell`` ->
  ``model_base.Flux``, rectified flow, sigma in (0, 1], shift 1.0), shrunk to ~0.4 M
  parameters; class conditioning = the "T5" context plus the pooled "CLIP" vector.

Latent ("model space", what the network sees): the 8x8 digit, pixels/16 standardized with the
dataset's global mean and std (so roughly unit variance), rearranged without loss into the
family's channels by pixel-unshuffle: 4 x 4x4 for SD 1.5 (2x2 pixel blocks), 16 x 2x2 for FLUX
(4x4 pixel blocks). Latent dims == pixels (64), so the initial noise is exactly a unit Gaussian
"image". A LATENT on ComfyUI's wires is in "VAE space" like any other latent of these families
(``latent_format.process_latent_out`` of model space), and the stock empty-latent nodes give
what the models expect: EmptyLatentImage at 32x32 (eps) and EmptySD3LatentImage at 16x16
(flow). There is no VAE: ``decode`` maps a LATENT back to pixels with a fixed map (undo the
latent format, pixel-shuffle, undo the standardization, clip to 0..16).

Conditioning: a frozen "text encoder" -- a fixed random embedding per class, stored in the
weights file -- gives ComfyUI CONDITIONING ``[[context [B, T, ctx], {"pooled_output": ...}]]``.
Class 10 is the null class (trained by label dropout), used as the CFG negative and as the
"empty prompt" that reveals a noise's own class.

Import only after ComfyUI is on sys.path with ``--cpu`` args parsed (``tests/host.py: boot()``).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

DEMO_DIR = Path(__file__).resolve().parent
# The shared harness: tests/model_init.py, tests/host.py; and the project's small-model builder,
# benchmarks/small_models (appended, so that nothing of this checkout shadows ComfyUI's own modules).
if str(DEMO_DIR.parent / "tests") not in sys.path:
    sys.path.insert(0, str(DEMO_DIR.parent / "tests"))
if str(DEMO_DIR.parent) not in sys.path:
    sys.path.append(str(DEMO_DIR.parent))

from benchmarks.small_models import build as small  # noqa: E402

KINDS = small.KINDS
WEIGHTS = {"eps": DEMO_DIR / "digits_eps_unet.safetensors", "flow": DEMO_DIR / "digits_flow_dit.safetensors"}
NUM_CLASSES = 10
NULL_CLASS = 10  # the empty prompt
# Latent = the 8x8 digit rearranged without loss (pixel-unshuffle), so latent dims == pixels:
# eps:  4 channels x 4x4 (2x2 pixel blocks) -> EmptyLatentImage at 32x32 "pixels"
# flow: 16 channels x 2x2 (4x4 pixel blocks) -> EmptySD3LatentImage at 16x16 "pixels"
UNSHUFFLE = {"eps": 2, "flow": 4}
TOKENS = 4
CONTEXT_DIM = small.CONTEXT_DIM
POOLED_DIM = small.POOLED_DIM  # FLUX only

# --------------------------------------------------------------------------- architectures

# ComfyUI's SD 1.5 UNet on the 4x4 latent: levels 4x4 -> 2x2 (see small_models.build.eps_unet).
EPS_UNET = small.eps_unet(image_size=4)
# ComfyUI's FLUX.1-schnell DiT, 1x1 patches on the 2x2 latent: 4 image tokens + 4 text tokens.
FLOW_DIT = small.FLOW_DIT
ARCH = {"eps": EPS_UNET, "flow": FLOW_DIT}


def model_config(kind: str):
    return small.model_config(kind, ARCH.get(kind, {}))


def latent_channels(kind: str) -> int:
    return EPS_UNET["in_channels"] if kind == "eps" else FLOW_DIT["in_channels"]


def latent_size(kind: str) -> int:
    return 8 // UNSHUFFLE[kind]


def empty_latent_node(kind: str) -> tuple:
    """(stock node id, width, height) of the empty latent this model samples from."""
    side = latent_size(kind) * 8
    return ("EmptyLatentImage" if kind == "eps" else "EmptySD3LatentImage"), side, side


def build(kind: str, seed: int = 0):
    """A freshly initialised float32 CPU model: ``(model_config, model_base instance)``."""
    if kind not in ARCH:
        raise ValueError(f"unknown kind {kind!r}, expected one of {KINDS}")
    return small.build(kind, ARCH[kind], seed)


# --------------------------------------------------------------------------- conditioning

def make_class_embeddings(seed: int = 1234) -> dict:
    """The frozen "text encoder": one fixed random context [T, ctx] and pooled vector per class
    (10 digits + null). Stored in the weights file; regenerated only by train.py."""
    g = torch.Generator().manual_seed(seed)
    return {"cond.context": torch.randn(NUM_CLASSES + 1, TOKENS, CONTEXT_DIM, generator=g),
            "cond.pooled": torch.randn(NUM_CLASSES + 1, POOLED_DIM, generator=g)}


def conditioning(emb: dict, kind: str, classes) -> list:
    """ComfyUI CONDITIONING for a class or a list of classes (one per latent in the batch;
    10 = the null class / empty prompt)."""
    if isinstance(classes, int):
        classes = [classes]
    idx = torch.as_tensor(list(classes), dtype=torch.long)
    if int(idx.min()) < 0 or int(idx.max()) > NULL_CLASS:
        raise ValueError(f"class must be 0..9, or 10 for the null class; got {classes}")
    ctx = emb["cond.context"][idx].clone()
    extra = {}
    if kind == "flow":
        extra["pooled_output"] = emb["cond.pooled"][idx].clone()
    return [[ctx, extra]]


# --------------------------------------------------------------------------- data <-> latent

def load_digits():
    """(images [N, 8, 8] float 0..16, labels [N]) from scikit-learn's bundled dataset."""
    from sklearn.datasets import load_digits as _ld
    d = _ld()
    return torch.tensor(d.images, dtype=torch.float32), torch.tensor(d.target, dtype=torch.long)


def pixel_stats(images: torch.Tensor) -> tuple:
    x = images / 16.0
    return float(x.mean()), float(x.std())


def encode(images: torch.Tensor, kind: str, stats: tuple) -> torch.Tensor:
    """Digits [N, 8, 8] (0..16) -> model-space latents (what the network sees): standardized
    pixels, pixel-unshuffled to [N, C, 8/r, 8/r]."""
    mean, std = stats
    x = ((images / 16.0 - mean) / std).unsqueeze(1)
    return torch.nn.functional.pixel_unshuffle(x, UNSHUFFLE[kind])


def decode_model_space(x: torch.Tensor, stats: tuple) -> torch.Tensor:
    """Model-space latents [N, C, s, s] -> pixels [N, 8, 8] in 0..16 (the inverse of encode,
    clipped)."""
    mean, std = stats
    r = 8 // x.shape[-1]
    px = torch.nn.functional.pixel_shuffle(x.float(), r)[:, 0]
    return ((px * std + mean) * 16.0).clamp(0.0, 16.0)


def decode(patcher, latent: torch.Tensor) -> torch.Tensor:
    """A LATENT as it leaves KSampler ("VAE space") -> pixels [N, 8, 8] in 0..16."""
    base = patcher.model
    return decode_model_space(base.process_latent_in(latent.float()), base.digits_stats)


def to_image(pixels: torch.Tensor, scale: int = 4) -> torch.Tensor:
    """Pixels [N, 8, 8] 0..16 -> ComfyUI IMAGE [N, 8*scale, 8*scale, 3] in 0..1, ink dark on white."""
    img = 1.0 - pixels / 16.0
    img = img.repeat_interleave(scale, dim=1).repeat_interleave(scale, dim=2)
    return img.unsqueeze(-1).repeat(1, 1, 1, 3).clamp(0, 1)


# --------------------------------------------------------------------------- save / load

def save(path: Path, kind: str, model, emb: dict, stats: tuple, info: dict) -> None:
    small.save(path, kind, model, emb, stats, info)


def load(kind: str, path: Path | None = None):
    """``(ModelPatcher, embeddings)`` for a shipped (or retrained) demo model, float32 on the CPU,
    wrapped the way comfy.sd wraps a loaded checkpoint (names mapped and checked as ComfyUI loads:
    small_models.build.load)."""
    import model_init
    if kind not in ARCH:
        raise ValueError(f"unknown kind {kind!r}, expected one of {KINDS}")
    model, emb, meta = small.load(kind, Path(path or WEIGHTS[kind]), ARCH[kind],
                                  f".venv/bin/python demo/train.py --kind {kind}")
    model.digits_stats = (float(meta["pixel_mean"]), float(meta["pixel_std"]))
    model.digits_info = json.loads(meta.get("info", "{}"))
    return model_init.patcher(model), emb


def empty_latent(kind: str, batch: int) -> torch.Tensor:
    """What EmptyLatentImage (eps: 4 ch, 32x32) / EmptySD3LatentImage (flow: 16 ch, 16x16) give."""
    return torch.zeros(batch, latent_channels(kind), latent_size(kind), latent_size(kind))


# --------------------------------------------------------------------------- judge

def train_classifier(seed: int = 0):
    """The independent judge: multinomial logistic regression on the real 8x8 digits (pixels
    0..16 / 16), never trained on anything a diffusion model made. Returns (classifier,
    held-out accuracy of the same recipe on a 25% split)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    images, labels = load_digits()
    X = (images.reshape(len(images), -1) / 16.0).numpy()
    y = labels.numpy()
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=seed, stratify=y)
    held = LogisticRegression(C=1.0, max_iter=2000).fit(Xtr, ytr).score(Xte, yte)
    clf = LogisticRegression(C=1.0, max_iter=2000).fit(X, y)
    return clf, float(held)


def classify(clf, pixels: torch.Tensor):
    """pixels [N, 8, 8] 0..16 -> (predicted class [N], probabilities [N, 10]) as numpy."""
    X = (pixels.reshape(len(pixels), -1) / 16.0).cpu().numpy()
    p = clf.predict_proba(X)
    return p.argmax(1), p


count_params = small.count_params
