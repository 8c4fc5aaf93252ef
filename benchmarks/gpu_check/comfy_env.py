"""ComfyUI's core as a library (no server, no node packs): boot it with its own command-line flags,
build a family's real architecture with random weights, its conditioning, and the memory helpers."""
from __future__ import annotations

import gc
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GIB = 1024 ** 3


def boot(cuda: bool, flags: list[str]) -> None:
    """What the script needs is the model classes, the sampler and the model management, with ComfyUI's
    own command-line flags (``flags``: e.g. --reserve-vram, --lowvram; --cpu without CUDA)."""
    comfy_dir = os.environ.get("COMFYUI_PATH")
    if not comfy_dir:
        sys.path.insert(0, str(ROOT / "tests"))
        import host
        comfy_dir = str(host.comfyui_path())
    sys.path.insert(0, comfy_dir)
    sys.path.insert(0, str(ROOT))
    sys.argv = [sys.argv[0]] + ([] if cuda else ["--cpu"]) + list(flags)
    import comfy.options
    comfy.options.enable_args_parsing()
    import comfy.cli_args  # noqa: F401  (parses sys.argv above)
    import comfy.model_management  # noqa: F401


def comfyui_version() -> str:
    """ComfyUI's own version module (comfyui_version.py, next to comfy/ on sys.path), imported."""
    try:
        import comfyui_version
        return str(getattr(comfyui_version, "__version__", "?"))
    except ImportError:
        return "?"


def build(spec, seed: int = 0, offload: bool = False):
    """``(ModelPatcher, parameters, dtype)``: ``comfy.supported_models`` config -> ``model_base`` ->
    ModelPatcher, weights initialised by tests/model_init.py. Without ``offload`` the weights are made on
    the device, as after ComfyUI loads a checkpoint there (and the patcher keeps them there); with it they
    are made on the CPU and ComfyUI's model management loads them at sampling time, as it loads a
    checkpoint: all of them, or under --lowvram as much as the memory it sees allows."""
    import torch
    import comfy.model_management as mm
    import comfy.model_patcher
    import comfy.supported_models
    sys.path.insert(0, str(ROOT / "tests"))
    import model_init

    unet = dict(spec.unet)
    if spec.unet.get("image_model") == "flux":
        unet = model_init.flux_config(unet)
    config = getattr(comfy.supported_models, spec.config)(unet)
    dev = mm.get_torch_device()
    if spec.dtype == "bf16" and dev.type != "cpu":
        dtype = torch.bfloat16
    else:
        dtype = mm.unet_dtype(supported_dtypes=config.supported_inference_dtypes)
    manual_cast = mm.unet_manual_cast(dtype, dev, config.supported_inference_dtypes)
    config.set_inference_dtype(dtype, manual_cast)
    home = torch.device("cpu") if offload else dev
    with torch.device(home):
        model = config.get_model({}, "", device=home)
        model_init.init_weights(model.diffusion_model, seed)
    model.requires_grad_(False)
    model.eval()
    params = sum(p.numel() for p in model.diffusion_model.parameters())
    patcher = comfy.model_patcher.ModelPatcher(model, load_device=dev, offload_device=home)
    return patcher, params, dtype


def conditioning(spec, seed: int = 0):
    """Positive and negative CONDITIONING of the family's shapes (random; as the text encoders' outputs)."""
    import torch
    g = torch.Generator().manual_seed(seed)

    def one():
        extra = {}
        for k, v in spec.extra.items():
            if k == "pooled_output":
                extra[k] = torch.randn((1,) + v, generator=g)
            elif k == "size":  # SDXL's size embeddings, as CLIPTextEncodeSDXL sets them
                extra.update(width=v, height=v, crop_w=0, crop_h=0, target_width=v, target_height=v)
            else:
                extra[k] = v
        return [[torch.randn((1,) + spec.context, generator=g), extra]]
    return one(), one()


def rows(spec) -> int:
    """Model rows per latent and step: 2 with CFG (cond and uncond), 1 at cfg 1 (ComfyUI skips uncond)."""
    return 1 if abs(spec.cfg - 1.0) < 1e-9 else 2


def sync() -> None:
    import torch
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def free_memory() -> None:
    """Unload every model and give the allocator's cache back (ComfyUI's own soft_empty_cache)."""
    import comfy.model_management as mm
    mm.unload_all_models()
    gc.collect()
    mm.soft_empty_cache(True)
