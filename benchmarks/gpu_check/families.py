"""The three families at three sizes (tiny: the tests' shapes; mid: a CPU can see the probes' cost;
full: the released models' shapes and the templates' settings), and the modes of the pack that are timed."""
from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass
class Spec:
    family: str
    title: str
    config: str                 # comfy.supported_models class name
    unet: dict
    latent: tuple               # latent shape [B, C, (T,) H, W]
    steps: int
    cfg: float
    sampler: str
    scheduler: str
    context: tuple              # cross-attention conditioning [tokens, width]
    extra: dict = field(default_factory=dict)   # conditioning extras: name -> shape or value
    dtype: str | None = None    # forced weight dtype (FLUX dev: bf16), else what ComfyUI picks
    repeats: int = 3            # timed rounds (every mode once per round); the median is reported


SIZES = ("tiny", "mid", "full")


def specs(size: str) -> dict:
    if size == "mid":
        return mid_specs()
    if size == "tiny":
        # The tests' tiny shapes (tests/tiny_models.py): same classes, a few layers, a few steps.
        sdxl_unet = {"use_checkpoint": False, "image_size": 32, "in_channels": 4, "out_channels": 4,
                     "model_channels": 32, "channel_mult": [1, 2], "num_res_blocks": [1, 1],
                     "transformer_depth": [0, 1], "transformer_depth_output": [0, 0, 1, 1],
                     "transformer_depth_middle": 1, "use_spatial_transformer": True, "legacy": False,
                     "use_linear_in_transformer": True, "context_dim": 64, "num_classes": "sequential",
                     "adm_in_channels": 2816, "use_temporal_attention": False, "use_temporal_resblock": False}
        flux_unet = {"image_model": "flux", "guidance_embed": True, "in_channels": 16, "out_channels": 16,
                     "patch_size": 2, "hidden_size": 48, "num_heads": 2, "axes_dim": [8, 8, 8], "mlp_ratio": 2.0,
                     "depth": 1, "depth_single_blocks": 1, "theta": 10000, "qkv_bias": True,
                     "context_in_dim": 64, "vec_in_dim": 32}
        wan_unet = {"image_model": "wan2.1", "model_type": "t2v", "patch_size": (1, 2, 2), "in_dim": 16,
                    "out_dim": 16, "dim": 48, "ffn_dim": 96, "freq_dim": 256, "text_dim": 32, "num_heads": 2,
                    "num_layers": 1}
        return {
            "sdxl": Spec("sdxl", "SDXL (tiny)", "SDXL", sdxl_unet, (1, 4, 16, 16), 4, 8.0, "euler", "normal",
                         (77, 64), {"pooled_output": (1280,), "size": 128}, repeats=1),
            "flux": Spec("flux", "FLUX.1 dev (tiny)", "Flux", flux_unet, (1, 16, 16, 16), 4, 1.0, "euler",
                         "simple", (16, 64), {"pooled_output": (32,), "guidance": 3.5}, "bf16", 1),
            "wan": Spec("wan", "WAN 2.1 (tiny)", "WAN21_T2V", wan_unet, (1, 16, 3, 12, 16), 4, 6.0, "uni_pc",
                        "simple", (16, 32), repeats=1),
        }
    # Full size, as comfy.model_detection reads the released checkpoints.
    sdxl_unet = {"use_checkpoint": False, "image_size": 32, "out_channels": 4, "use_spatial_transformer": True,
                 "legacy": False, "num_classes": "sequential", "adm_in_channels": 2816, "in_channels": 4,
                 "model_channels": 320, "num_res_blocks": [2, 2, 2], "transformer_depth": [0, 0, 2, 2, 10, 10],
                 "channel_mult": [1, 2, 4], "transformer_depth_middle": 10, "use_linear_in_transformer": True,
                 "context_dim": 2048, "num_head_channels": 64,
                 "transformer_depth_output": [0, 0, 0, 2, 2, 2, 10, 10, 10],
                 "use_temporal_attention": False, "use_temporal_resblock": False}
    flux_unet = {"image_model": "flux", "guidance_embed": True, "in_channels": 16, "out_channels": 16,
                 "patch_size": 2, "hidden_size": 3072, "num_heads": 24, "axes_dim": [16, 56, 56], "mlp_ratio": 4.0,
                 "depth": 19, "depth_single_blocks": 38, "theta": 10000, "qkv_bias": True,
                 "context_in_dim": 4096, "vec_in_dim": 768}
    wan_unet = {"image_model": "wan2.1", "model_type": "t2v", "patch_size": (1, 2, 2), "in_dim": 16, "out_dim": 16,
                "dim": 1536, "ffn_dim": 8960, "freq_dim": 256, "text_dim": 4096, "num_heads": 12, "num_layers": 30,
                "window_size": (-1, -1), "qk_norm": True, "cross_attn_norm": True, "eps": 1e-6}
    return {
        # SDXL template: 1024x1024, 20 steps, euler/normal, cfg 8; CLIP-L+G = 2048 wide, pooled 1280.
        "sdxl": Spec("sdxl", "SDXL 1.0", "SDXL", sdxl_unet, (1, 4, 128, 128), 20, 8.0, "euler", "normal",
                     (77, 2048), {"pooled_output": (1280,), "size": 1024}),
        # FLUX.1 dev template: 1024x1024, 20 steps, euler/simple, cfg 1, FluxGuidance 3.5; T5-XXL 4096 wide.
        "flux": Spec("flux", "FLUX.1 dev (bf16)", "Flux", flux_unet, (1, 16, 128, 128), 20, 1.0, "euler", "simple",
                     (256, 4096), {"pooled_output": (768,), "guidance": 3.5}, "bf16"),
        # WAN 2.1 T2V 1.3B template: 832x480, 33 frames (9 latent frames), 30 steps uni_pc/simple, cfg 6.
        "wan": Spec("wan", "WAN 2.1 T2V 1.3B", "WAN21_T2V", wan_unet, (1, 16, 9, 60, 104), 30, 6.0, "uni_pc",
                    "simple", (512, 4096), repeats=2),
    }


def mid_specs() -> dict:
    """Between the tests' tiny shapes and full size: the tiny models made wider and deeper, on a larger latent,
    so that a model call costs milliseconds rather than microseconds on a CPU and what the probes cost next to
    sampling can be seen there (``--size mid``, a few minutes on 1 CPU core)."""
    tiny = specs("tiny")
    sdxl = tiny["sdxl"].unet | {"model_channels": 64, "num_res_blocks": [2, 2], "transformer_depth": [0, 0, 2, 2],
                                "transformer_depth_output": [0, 0, 0, 2, 2, 2], "transformer_depth_middle": 2,
                                "context_dim": 256, "num_head_channels": 32}
    flux = tiny["flux"].unet | {"hidden_size": 192, "num_heads": 3, "axes_dim": [16, 24, 24], "depth": 2,
                                "depth_single_blocks": 2, "context_in_dim": 256, "vec_in_dim": 64}
    wan = tiny["wan"].unet | {"dim": 192, "ffn_dim": 384, "text_dim": 256, "num_heads": 3, "num_layers": 2}
    return {
        "sdxl": replace(tiny["sdxl"], title="SDXL (mid)", unet=sdxl, latent=(1, 4, 32, 32), steps=8, context=(77, 256),
                        extra={"pooled_output": (1280,), "size": 256}, repeats=3),
        "flux": replace(tiny["flux"], title="FLUX.1 dev (mid)", unet=flux, latent=(1, 16, 32, 32), steps=8,
                        context=(64, 256), extra={"pooled_output": (64,), "guidance": 3.5}, repeats=3),
        "wan": replace(tiny["wan"], title="WAN 2.1 (mid)", unet=wan, latent=(1, 16, 5, 24, 32), steps=8,
                       context=(64, 256), repeats=3),
    }


# The modes, as the nodes would set them (settings dicts of noise_semantics.patch.patched).
def modes(core) -> dict:
    inject = lambda schedule, strength=0.3, candidates=1: {"inject": {
        "strength": strength, "decorrelate": True, "schedule": schedule, "direction": "guided",
        "candidates": candidates}}
    return {
        "inject K=1": inject(core.DEFAULT_SCHEDULE),
        "inject K=5": inject(core.TPW_SCHEDULE),
        "screen 4, K=1": inject(core.DEFAULT_SCHEDULE, 0.0, 4),
        "paper: erase 4 + inject K=5": {"erase": {"samples": 4, "restandardize": True},
                                        **inject(core.TPW_SCHEDULE)},
    }
