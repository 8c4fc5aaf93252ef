"""Building a ComfyUI model in code, without a checkpoint: the one place that initialises its
weights, for the tests' tiny models (tests/tiny_models.py), the tests' stand-in VAEs
(tests/stand_ins.py) and the demo's digits models before training (demo/models.py).

ComfyUI's layers (``comfy.ops.disable_weight_init``) skip weight initialisation, because a
checkpoint overwrites every tensor: a model built from a config alone holds whatever
``torch.empty`` gave, often NaN. ``init_weights`` gives it what plain torch layers would have had.

Importing this module imports only torch, so it works before ComfyUI is booted; the functions that
touch ComfyUI import it when called (after ``tests/host.py: boot()``).
"""
from __future__ import annotations

import dataclasses

import torch

# The torch classes whose own reset_parameters() is the initialisation: ComfyUI's layers subclass
# them and override it with a no-op, so it is called through the torch class.
_TORCH_LAYERS = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d,
                 torch.nn.ConvTranspose1d, torch.nn.ConvTranspose2d, torch.nn.ConvTranspose3d,
                 torch.nn.GroupNorm, torch.nn.LayerNorm, torch.nn.Embedding)


@torch.no_grad()
def init_weights(module: torch.nn.Module, seed: int) -> None:
    """Initialise every parameter of ``module`` deterministically from ``seed``:

    * layers of the torch classes above: torch's own default initialisation;
    * norm gains that ComfyUI keeps outside those classes (RMSNorm ``scale`` / ``weight``, the WAN
      VAE's ``gamma``): 1;
    * everything else (free biases, embeddings tables such as WAN's modulation): N(0, 0.02^2).

    The global torch RNG is left as it was (torch's initialisers draw from it, so they run in a
    forked RNG state). The values are those the demo's weights were trained from (demo/train.py);
    change them and a retrained demo model differs from the shipped one.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        done = set()
        for m in module.modules():
            for cls in _TORCH_LAYERS:
                if isinstance(m, cls):
                    cls.reset_parameters(m)
                    done.update(id(p) for p in m.parameters(recurse=False))
                    break
        for name, p in module.named_parameters():
            if id(p) in done:
                continue
            if name.endswith("scale") or name.endswith("gamma") or (name.endswith("weight") and p.ndim == 1):
                p.fill_(1.0)
            else:
                p.normal_(0.0, 0.02)


def flux_config(unet: dict) -> dict:
    """A FLUX.1 ``unet_config`` as this ComfyUI's ``FluxParams`` wants it. ComfyUI 0.33 added the
    required field ``txt_ids_dims`` (which text-token position axes get ids; model_detection sets
    [] for FLUX.1), which 0.3.75's FluxParams does not accept: add it where the field exists."""
    import comfy.ldm.flux.model
    fields = {f.name for f in dataclasses.fields(comfy.ldm.flux.model.FluxParams)}
    out = dict(unet)
    if "txt_ids_dims" in fields:
        out.setdefault("txt_ids_dims", [])
    return out


def build(config, seed: int):
    """A float32 CPU ``model_base`` instance of a ``comfy.supported_models`` config, with its
    diffusion model initialised by ``init_weights``: what comfy.sd.load_diffusion_model_state_dict
    does, minus the checkpoint (get_model reads the model type, e.g. eps, from the empty state dict)."""
    config.set_inference_dtype(torch.float32, None)
    model = config.get_model({}, "")
    init_weights(model.diffusion_model, seed)
    return model


def patcher(model):
    """Inference-only ModelPatcher on the CPU, as comfy.sd wraps a loaded checkpoint. No autograd
    graphs (ComfyUI's own weight patching also stores parameters with requires_grad=False, and the
    server samples under inference_mode)."""
    import comfy.model_patcher
    model.requires_grad_(False)
    model.eval()
    cpu = torch.device("cpu")
    return comfy.model_patcher.ModelPatcher(model, load_device=cpu, offload_device=cpu)
