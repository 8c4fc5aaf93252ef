"""Demo-only ComfyUI nodes for the digits models. NOT part of the pack (not shipped, see
.comfyignore): ComfyUI loads them from a second custom-node folder, ``demo/comfyui_nsp_demo/``,
which ``demo/served_base.py`` links next to the pack in the served base directory (and in the one
``demo/run_demo.py`` boots), so a workflow can load a digits model, write a class prompt and turn a
LATENT into pixels. Sampling itself is ComfyUI's own KSampler; the refinement is the pack's own nodes.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
CATEGORY = "noise semantics demo"


def demo_models():
    name = "noise_semantics_demo_models"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "demo" / "models.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


class DigitsModelLoader:
    """Loads a shipped digits model (demo/*.safetensors) as a MODEL, like a checkpoint loader."""
    CATEGORY = CATEGORY
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"kind": (["eps", "flow"], {"tooltip": "eps: SD1.5-class UNet; flow: FLUX-schnell-class DiT"})}}

    def load(self, kind):
        # A new model on every call, kept by nothing here: like ComfyUI's checkpoint loader, the
        # executor's output cache is what keeps it between runs. A module-level cache handing out
        # clones kept the model alive after the patchers ComfyUI had loaded were gone (an executor's
        # caches are freed by the garbage collector, all clones at once), so ComfyUI's model
        # manager found loaded entries whose patcher was dead but whose model was not, and warned
        # "memory leak with model BaseModel" (and ran a full gc.collect()) on every later load.
        patcher, emb = demo_models().load(kind)
        patcher.model.digits_emb = emb  # the conditioning node reads the frozen "text encoder" here
        patcher.model.digits_kind = kind
        return (patcher,)


class DigitsClassConditioning:
    """A class 'prompt': the digit's fixed embedding as CONDITIONING (10 = empty prompt)."""
    CATEGORY = CATEGORY
    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",),
                             "digit": ("INT", {"default": 0, "min": 0, "max": 10,
                                               "tooltip": "0..9, or 10 for the empty (null) prompt"})}}

    def encode(self, model, digit):
        m = model.model
        return (demo_models().conditioning(m.digits_emb, m.digits_kind, int(digit)),)


class DigitsLatentToImage:
    """The demo's fixed 'VAE decode': LATENT -> 8x8 digit, shown enlarged, dark ink on white."""
    CATEGORY = CATEGORY
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "decode"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "samples": ("LATENT",),
                             "scale": ("INT", {"default": 4, "min": 1, "max": 32,
                                               "tooltip": "each of the 8x8 pixels is shown scale x scale"})},
                "optional": {"columns": ("INT", {"default": 0, "min": 0, "max": 64,
                                                 "tooltip": "0: one image per latent; N: the whole batch "
                                                            "as one sheet, N digits a row"})}}

    def decode(self, model, samples, scale, columns=0):
        dm = demo_models()
        img = dm.to_image(dm.decode(model, samples["samples"]), scale)
        return (tile(img, columns) if columns > 0 else img,)


def tile(img: torch.Tensor, columns: int, gap: int = 2) -> torch.Tensor:
    """IMAGE [N, H, W, 3] -> one sheet [1, rows*(H+gap)+gap, columns*(W+gap)+gap, 3], grey gaps.
    One image, not a batch: the frontend shows a batch as a gallery, one image at a time."""
    n, h, w, c = img.shape
    rows = -(-n // columns)
    sheet = torch.full((rows * (h + gap) + gap, columns * (w + gap) + gap, c), 0.75, dtype=img.dtype)
    for i in range(n):
        y, x = gap + (i // columns) * (h + gap), gap + (i % columns) * (w + gap)
        sheet[y:y + h, x:x + w] = img[i]
    return sheet.unsqueeze(0)


class DigitsCollect:
    """Output node: hands the decoded 8x8 pixels (0..16) back in the prompt's ui outputs."""
    CATEGORY = CATEGORY
    RETURN_TYPES = ()
    FUNCTION = "collect"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE",), "label": ("STRING", {"default": "digits"}),
                             "scale": ("INT", {"default": 4, "min": 1, "max": 32})}}

    def collect(self, images, label, scale):
        # undo to_image: average each scale x scale block, back to 0..16 ink
        px = images[..., 0]
        n, h, w = px.shape
        px = px.reshape(n, h // scale, scale, w // scale, scale).mean(dim=(2, 4))
        pixels = ((1.0 - px) * 16.0).clamp(0, 16)
        return {"ui": {"digits": [{"label": label, "pixels": pixels.tolist()}]}}


NODE_CLASS_MAPPINGS = {
    "DigitsDemoModelLoader": DigitsModelLoader,
    "DigitsDemoClassConditioning": DigitsClassConditioning,
    "DigitsDemoLatentToImage": DigitsLatentToImage,
    "DigitsDemoCollect": DigitsCollect,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "DigitsDemoModelLoader": "Digits Model Loader (demo)",
    "DigitsDemoClassConditioning": "Digit Prompt (demo)",
    "DigitsDemoLatentToImage": "Digits Latent to Image (demo)",
    "DigitsDemoCollect": "Digits Collect (demo)",
}


def pixels_of(history_result: dict) -> dict:
    """{label: tensor [N, 8, 8]} from the DigitsCollect outputs of a finished prompt."""
    out = {}
    for ui in history_result.get("outputs", {}).values():
        for item in ui.get("digits", []):
            out[item["label"]] = torch.tensor(item["pixels"], dtype=torch.float32)
    return out
