"""Test-only stand-ins for the heavy nodes of the shipped workflows (loaders, text encoders), so a
workflow from ``workflows/`` runs end to end on the CPU in seconds.

Only what needs model files is replaced; everything from the pack's nodes through the samplers,
VAE Decode and the image/video savers runs as shipped, in ComfyUI's real executor:

    CheckpointLoaderSimple  -> NSTestCheckpointLoader   tiny real model (tests/tiny_models.py; SD1.5: tests/families.py),
                                                        CLIP stand-in, tiny real VAE
    UNETLoader              -> NSTestUNETLoader         tiny real model
    CLIPLoader, DualCLIPLoader -> NSTestCLIPLoader      a StandInCLIP (only knows its family)
    VAELoader               -> NSTestVAELoader          tiny real VAE
    CLIPTextEncode          -> NSTestTextEncode         tiny conditioning of the family's shapes (make_conditioning below)
    CLIPTextEncodeFlux      -> NSTestTextEncodeFlux     same, with the FLUX guidance value set

The VAEs are real ``comfy.sd.VAE`` objects, built from a state dict the way VAELoader builds them:
TAESD (the tiny decoder VAELoader loads for "taesd"/"taesdxl"/"taef1") for SD1.5 and SDXL (4
channels) and FLUX (16 channels), and the real WAN 2.1 VAE class (causal 3-D, 4x temporal
upsampling) at width 8 instead of 96 for WAN. Their weights are random: images mean nothing, but shapes, value range
and the whole decode path are ComfyUI's own.

``NSTestNoiseCapture`` (MODEL -> MODEL) registers a SAMPLER_SAMPLE wrapper that records the noise
the sampler finally receives (after every wrapper registered upstream, i.e. after the pack's
refinement), for assertions. Records go to ``CAPTURED[label]``.

``register(nodes)`` adds the classes to ``nodes.NODE_CLASS_MAPPINGS``; ``unregister(nodes)``
removes them. Import only after ``host.boot()``.
"""
from __future__ import annotations

import copy
import zlib

import torch

import comfy.ldm.wan.vae
import comfy.patcher_extension as pe
import comfy.sd
import comfy.taesd.taesd

import families
import model_init
import probes
import tiny_models

# tests/tiny_models.py's three families, plus SD1.5 (the img2img workflow) from tests/families.py.
FROM_FAMILIES = ("sd15",)
FAMILIES = tuple(tiny_models.FAMILIES) + FROM_FAMILIES


def make_model(family: str, seed: int = 0):
    if family in FROM_FAMILIES:
        return families.FAMILIES[family].model(seed=seed)
    return tiny_models.make_model(family, seed=seed)


def make_conditioning(family: str, seed: int = 0):
    if family in FROM_FAMILIES:
        return families.FAMILIES[family].conditioning(seed=seed)
    return tiny_models.make_conditioning(family, seed=seed)
CAPTURED = probes.RECORDS  # one recorder for all tests: tests/probes.py
EVALS: dict[str, int] = {}  # label -> network evaluations (latents) through that capture's model


# ---------------------------------------------------------------- tiny objects

class StandInCLIP:
    """What a CLIP/DualCLIP loader hands to the text encoders: here only the model family."""

    def __init__(self, family: str, name: str = ""):
        self.family = family
        self.name = name

    def __repr__(self):
        return f"StandInCLIP({self.family!r}, {self.name!r})"


def text_seed(text: str) -> int:
    return zlib.crc32(text.encode("utf-8")) & 0x7FFFFFFF


def encode(clip: StandInCLIP, text: str, **extra):
    """CONDITIONING of the family's shapes, deterministic from the text (different texts differ)."""
    if not isinstance(clip, StandInCLIP):
        raise TypeError(f"stand-in text encoder got {type(clip).__name__}, expected a StandInCLIP")
    positive, _ = make_conditioning(clip.family, seed=text_seed(text))
    cond = copy.copy(positive)
    cond[0] = [positive[0][0], {**positive[0][1], **extra}]
    return cond


def make_vae(family: str, seed: int = 0) -> comfy.sd.VAE:
    """A real comfy.sd.VAE with a tiny first-stage model of the family's latent format."""
    if family in ("sd15", "sdxl", "flux"):
        channels = 16 if family == "flux" else 4
        model = comfy.taesd.taesd.TAESD(latent_channels=channels)
        model_init.init_weights(model, seed)
        model.vae_scale.data.fill_(1.0)
        model.vae_shift.data.fill_(0.0)
    elif family == "wan":
        # Same config comfy.sd.VAE uses for the WAN 2.1 VAE; only dim (96 there) is small.
        model = comfy.ldm.wan.vae.WanVAE(dim=8, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
                                         temperal_downsample=[False, True, True], dropout=0.0)
        model_init.init_weights(model, seed)
    else:
        raise ValueError(f"unknown family {family!r}, expected one of {FAMILIES}")
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    vae = comfy.sd.VAE(sd=sd)
    vae.throw_exception_if_invalid()
    return vae


# ---------------------------------------------------------------- nodes

_FAMILY = (list(FAMILIES), {"default": FAMILIES[0]})
_SEED = ("INT", {"default": 0, "min": 0, "max": 2 ** 31 - 1})
_NAME = ("STRING", {"default": ""})
_CAT = "_for_testing/noise semantics stand-ins"


class NSTestCheckpointLoader:
    CATEGORY = _CAT
    RETURN_TYPES = ("MODEL", "CLIP", "VAE")
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"ckpt_name": _NAME, "family": _FAMILY, "seed": _SEED}}

    def load(self, ckpt_name, family, seed):
        return make_model(family, seed=seed), StandInCLIP(family, ckpt_name), make_vae(family, seed)


class NSTestUNETLoader:
    CATEGORY = _CAT
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"unet_name": _NAME, "family": _FAMILY, "seed": _SEED}}

    def load(self, unet_name, family, seed):
        return (make_model(family, seed=seed),)


class NSTestCLIPLoader:
    CATEGORY = _CAT
    RETURN_TYPES = ("CLIP",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"clip_name": _NAME, "family": _FAMILY}}

    def load(self, clip_name, family):
        return (StandInCLIP(family, clip_name),)


class NSTestVAELoader:
    CATEGORY = _CAT
    RETURN_TYPES = ("VAE",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"vae_name": _NAME, "family": _FAMILY}}

    def load(self, vae_name, family):
        return (make_vae(family),)


class NSTestTextEncode:
    CATEGORY = _CAT
    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"clip": ("CLIP",), "text": ("STRING", {"multiline": True})}}

    def encode(self, clip, text):
        return (encode(clip, text),)


class NSTestTextEncodeFlux:
    CATEGORY = _CAT
    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"clip": ("CLIP",), "clip_l": ("STRING", {"multiline": True}),
                             "t5xxl": ("STRING", {"multiline": True}),
                             "guidance": ("FLOAT", {"default": 3.5, "min": 0.0, "max": 100.0, "step": 0.1})}}

    def encode(self, clip, clip_l, t5xxl, guidance):
        return (encode(clip, clip_l + "\n" + t5xxl, guidance=guidance),)


class NSTestNoiseCapture:
    CATEGORY = _CAT
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "patch"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "label": ("STRING", {"default": "stage"})}}

    def patch(self, model, label):
        # Registered after (so inside) any wrapper added upstream on the MODEL wire. Also counts the
        # latents through the network (EVALS[label]), the probes' and the sampler's alike.
        m = probes.capture(model, label)

        def count(executor, x, *args, **kwargs):
            EVALS[label] = EVALS.get(label, 0) + int(x.shape[0])
            return executor(x, *args, **kwargs)
        pe.add_wrapper_with_key(pe.WrappersMP.APPLY_MODEL, "nsp_test_evals", count, m.model_options,
                                is_model_options=True)
        return (m,)


NODE_CLASS_MAPPINGS = {
    "NSTestCheckpointLoader": NSTestCheckpointLoader,
    "NSTestUNETLoader": NSTestUNETLoader,
    "NSTestCLIPLoader": NSTestCLIPLoader,
    "NSTestVAELoader": NSTestVAELoader,
    "NSTestTextEncode": NSTestTextEncode,
    "NSTestTextEncodeFlux": NSTestTextEncodeFlux,
    "NSTestNoiseCapture": NSTestNoiseCapture,
}


def register(nodes_module):
    nodes_module.NODE_CLASS_MAPPINGS.update(NODE_CLASS_MAPPINGS)


def unregister(nodes_module):
    for k in NODE_CLASS_MAPPINGS:
        nodes_module.NODE_CLASS_MAPPINGS.pop(k, None)


# ---------------------------------------------------------------- swapping in an API prompt

def _file_input(inputs: dict, *names) -> str:
    return " + ".join(str(inputs[n]) for n in names if n in inputs)


def swap_heavy_nodes(prompt: dict, family: str) -> tuple[dict, dict]:
    """Return (new_prompt, swapped) where the loaders and text encoders of an API prompt are replaced
    by the stand-ins above, keeping every link (output slots are the same). Model loaders get
    distinct seeds, in node-id order (base and refiner are different tiny models)."""
    out = copy.deepcopy(prompt)
    swapped = {}
    model_seed = 0
    for nid in sorted(out, key=lambda k: int(k) if str(k).isdigit() else str(k)):
        node = out[nid]
        ct, inp = node["class_type"], node["inputs"]
        if ct == "CheckpointLoaderSimple":
            new = ("NSTestCheckpointLoader", {"ckpt_name": _file_input(inp, "ckpt_name"), "family": family,
                                              "seed": model_seed})
            model_seed += 1
        elif ct == "UNETLoader":
            new = ("NSTestUNETLoader", {"unet_name": _file_input(inp, "unet_name"), "family": family,
                                        "seed": model_seed})
            model_seed += 1
        elif ct in ("CLIPLoader", "DualCLIPLoader"):
            new = ("NSTestCLIPLoader", {"clip_name": _file_input(inp, "clip_name", "clip_name1", "clip_name2"),
                                        "family": family})
        elif ct == "VAELoader":
            new = ("NSTestVAELoader", {"vae_name": _file_input(inp, "vae_name"), "family": family})
        elif ct == "CLIPTextEncode":
            new = ("NSTestTextEncode", {"clip": inp["clip"], "text": inp["text"]})
        elif ct == "CLIPTextEncodeFlux":
            new = ("NSTestTextEncodeFlux", {k: inp[k] for k in ("clip", "clip_l", "t5xxl", "guidance")})
        else:
            continue
        swapped[nid] = (ct, new[0])
        node["class_type"], node["inputs"] = new
    return out, swapped


def insert_capture(prompt: dict, sampler_id: str, label: str, new_id: str) -> dict:
    """Insert an NSTestNoiseCapture between a sampler and whatever feeds its model input."""
    out = copy.deepcopy(prompt)
    src = out[sampler_id]["inputs"]["model"]
    out[new_id] = {"class_type": "NSTestNoiseCapture", "inputs": {"model": src, "label": label},
                   "_meta": {"title": f"test capture ({label})"}}
    out[sampler_id]["inputs"]["model"] = [new_id, 0]
    return out
