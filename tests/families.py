"""One tiny real model per ComfyUI model family, for tests/integration/test_families.py and
tests/integration/test_precision.py.

Each family is the real architecture of a ``comfy.supported_models`` class (config -> ``model_base``
class -> ``ModelPatcher``), shrunk to one block (60 k to 1.8 M parameters: the big ones are the
widths ComfyUI fixes, SDXL's 2816-wide size embedding and WAN I2V's 1280-wide CLIP-vision projection),
with conditioning of the shapes and extra keys its ``extra_conds`` reads, and a latent
of the shape its loader node makes. As in tests/tiny_models.py (which stays the three-family
harness of the other tests): random weights, CPU, milliseconds per step, every ComfyUI code path real.

Import after ComfyUI is booted (tests/host.py) with ``--cpu``.

Public API
    FAMILIES: dict name -> Family, in a fixed order
    Family.present()       the config class exists on this ComfyUI (which hosts have which: README,
                           "Model families")
    Family.model(seed=0, dtype=torch.float32, manual_cast=None) -> ModelPatcher
    Family.conditioning(seed=0, batch=1) -> (positive, negative) CONDITIONING
    Family.latent(batch=1) -> {"samples": zeros of the family's latent shape}
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

import torch

import comfy.supported_models

import model_init

T = 8      # text tokens of the tiny conditionings
TXT = 32   # text-encoder width of the tiny models (the real ones are 768-4096)


def _ctx(gen, b, tokens=T, dim=TXT):
    return torch.randn(b, tokens, dim, generator=gen)


@dataclass(frozen=True)
class Family:
    name: str                 # short id, used in test ids
    title: str                # what the README calls it
    kind: str                 # image / video / 3d / audio
    config_class: str         # attribute of comfy.supported_models
    unet: dict                # the unet_config model_detection would have read from a checkpoint
    shape: tuple              # latent shape without the batch dimension
    cond: Callable            # (generator, batch) -> [[cross_attn, extras]]
    # State-dict entries get_model reads besides the diffusion model (StableAudio's number embedders).
    extra_sd: Callable | None = None
    # Where the structure of the config differs by host (FluxParams grew a required field in 0.33).
    fix_config: Callable | None = None
    # False: the pack's Inject refuses this model (noise_semantics.patch.partial_latent); Erase only.
    inject: bool = True
    # Buffers a checkpoint fills and ComfyUI leaves as torch.empty (init_weights sees parameters only).
    fill_buffers: Callable | None = None

    def config_cls(self):
        return getattr(comfy.supported_models, self.config_class, None)

    def present(self) -> bool:
        return self.config_cls() is not None

    def config(self):
        unet = dict(self.unet)
        if self.fix_config is not None:
            unet = self.fix_config(unet)
        return self.config_cls()(unet)

    def model(self, seed: int = 0, dtype=torch.float32, manual_cast=None):
        """A tiny CPU model; ``dtype`` is the weights' dtype, ``manual_cast`` the compute dtype
        (comfy.ops.manual_cast), as comfy.sd.load_diffusion_model_state_dict sets them up."""
        config = self.config()
        config.set_inference_dtype(dtype, manual_cast)
        sd = self.extra_sd() if self.extra_sd is not None else {}
        model = config.get_model(sd, "")
        net = model.diffusion_model
        # Initialise in float32 (fp8 tensors cannot be initialised in place), then give every tensor back
        # the dtype ComfyUI created it in: some layers are float32 whatever the model's dtype (WAN's
        # patch embedding), as with a real checkpoint.
        made = {k: t.dtype for k, t in list(net.named_parameters()) + list(net.named_buffers())}
        with torch.no_grad():
            net.to(torch.float32)
            model_init.init_weights(net, seed)
            if self.fill_buffers is not None:
                self.fill_buffers(net)
            for k, t in list(net.named_parameters()) + list(net.named_buffers()):
                t.data = t.data.to(made[k])
        return model_init.patcher(model)

    def conditioning(self, seed: int = 0, batch: int = 1):
        positive = self.cond(torch.Generator().manual_seed(2 * seed), batch)
        negative = self.cond(torch.Generator().manual_seed(2 * seed + 1), batch)
        return positive, negative

    def latent(self, batch: int = 1):
        return {"samples": torch.zeros((batch,) + tuple(self.shape))}


def _plain(gen, b):
    return [[_ctx(gen, b), {}]]


def _pooled(dim, **extra):
    def cond(gen, b):
        return [[_ctx(gen, b), {"pooled_output": torch.randn(b, dim, generator=gen)} | extra]]
    return cond


def _sdxl_cond(gen, b):
    extra = {"pooled_output": torch.randn(b, 1280, generator=gen), "width": 128, "height": 128,
             "crop_w": 0, "crop_h": 0, "target_width": 128, "target_height": 128}
    return [[_ctx(gen, b), extra]]


def _pooled_none(gen, b):
    # Chroma, HunyuanImage 2.1 and HunyuanVideo 1.5 have no CLIP: their text encoders return
    # pooled_output None, which encode_adm reads.
    return [[_ctx(gen, b), {"pooled_output": None}]]


def _ltxv_cond(gen, b):
    # LTXV's T5 encoder returns the token mask with the tokens; the model requires it.
    return [[_ctx(gen, b), {"attention_mask": torch.ones(b, T, dtype=torch.long)}]]


def _hidream_cond(gen, b):
    # HiDream reads T5 (c_crossattn) and the hidden states of several Llama layers
    # (conditioning_llama3: [B, layers, tokens, width]), plus the pooled CLIP vector.
    return [[_ctx(gen, b), {"pooled_output": torch.randn(b, TXT, generator=gen),
                            "conditioning_llama3": torch.randn(b, 2, T, TXT, generator=gen)}]]


def _wan_i2v_cond(frames, size):
    def cond(gen, b):
        # What WanImageToVideo adds: the encoded start image (the rest of the video zeros) and a mask.
        img = torch.zeros(b, 16, frames, size, size)
        img[:, :, :1] = torch.randn(b, 16, 1, size, size, generator=gen)
        mask = torch.ones(b, 1, frames, size, size)
        mask[:, :, :1] = 0.0
        return [[_ctx(gen, b), {"concat_latent_image": img, "concat_mask": mask}]]
    return cond


def _stable_audio_sd():
    import comfy.ldm.audio.embedders as emb
    sd = {}
    for name in ("seconds_start", "seconds_total"):
        m = emb.NumberConditioner(768, min_val=0, max_val=512)
        model_init.init_weights(m, 1 if name == "seconds_start" else 2)
        for k, v in m.state_dict().items():
            sd[f"conditioner.conditioners.{name}.{k}"] = v
    return sd


def _stable_audio_rope(net):
    """0.33's audio DiT creates its RoPE inv_freq with torch.empty (the checkpoint holds it): left so,
    it is whatever memory held, sometimes NaN. The formula its comment gives, base 10000."""
    for m in net.modules():
        f = getattr(m, "inv_freq", None)
        if isinstance(f, torch.Tensor) and type(m).__name__ == "RotaryEmbedding":
            d = 2 * f.numel()
            f.copy_(1.0 / (10000 ** (torch.arange(0, d, 2, dtype=torch.float32) / d)))


def _normal_buffers(*names):
    """Checkpoint-held buffers that ComfyUI creates with torch.empty (SD3's pos_embed, PixArt's
    y_embedding): N(0, 0.02^2) from a fixed seed, like the other random weights."""
    def fill(net):
        g = torch.Generator().manual_seed(0)
        for name in names:
            t = net.get_buffer(name)
            t.copy_(torch.randn(t.shape, generator=g, dtype=torch.float32) * 0.02)
    return fill


def _fields_fix(module: str, params: str, **defaults):
    """Adds the config fields a newer ComfyUI's Params dataclass requires (model_detection sets them
    from the checkpoint; 0.33 added e.g. HunyuanVideo's meanflow_sum), where this host has them."""
    def fix(unet):
        import importlib
        cls = getattr(importlib.import_module(module), params)
        have = {f.name for f in dataclasses.fields(cls)}
        out = model_init.flux_config(unet) if module == "comfy.ldm.flux.model" else dict(unet)
        for k, v in defaults.items():
            if k in have:
                out.setdefault(k, v)
        return out
    return fix


_flux_fix = _fields_fix("comfy.ldm.flux.model", "FluxParams")


_UNET_SD = dict(use_checkpoint=False, image_size=32, in_channels=4, out_channels=4, model_channels=32,
                channel_mult=[1, 2], num_res_blocks=[1, 1], transformer_depth=[0, 1],
                transformer_depth_output=[0, 0, 1, 1], transformer_depth_middle=1, use_spatial_transformer=True,
                legacy=False, use_temporal_attention=False, use_temporal_resblock=False)

_FLUX_LIKE = dict(in_channels=16, out_channels=16, patch_size=2, hidden_size=48, num_heads=2, axes_dim=[8, 8, 8],
                  mlp_ratio=2.0, depth=1, depth_single_blocks=1, theta=10000, qkv_bias=True, context_in_dim=TXT)

_F = [
    # ------------------------------------------------------------------ images
    Family("sd15", "SD 1.5", "image", "SD15",
           _UNET_SD | dict(context_dim=TXT, use_linear_in_transformer=False, adm_in_channels=None),
           (4, 16, 16), _plain),
    Family("sdxl", "SDXL", "image", "SDXL",
           _UNET_SD | dict(context_dim=TXT, use_linear_in_transformer=True, num_classes="sequential",
                           adm_in_channels=2816),
           (4, 16, 16), _sdxl_cond),
    Family("sd3", "SD3.5 (MMDiT)", "image", "SD3",
           dict(in_channels=16, out_channels=16, patch_size=2, depth=1, input_size=None, adm_in_channels=TXT,
                context_embedder_config={"target": "torch.nn.Linear",
                                         "params": {"in_features": TXT, "out_features": 64}},
                num_patches=256, pos_embed_max_size=16, pos_embed_scaling_factor=None, qk_norm="rms",
                x_block_self_attn_layers=[]),
           (16, 16, 16), _pooled(TXT), fill_buffers=_normal_buffers("pos_embed")),
    Family("flux", "FLUX.1 dev", "image", "Flux",
           _FLUX_LIKE | dict(image_model="flux", guidance_embed=True, vec_in_dim=TXT),
           (16, 16, 16), _pooled(TXT, guidance=3.5), fix_config=_flux_fix),
    Family("flux2", "FLUX.2", "image", "Flux2",
           dict(image_model="flux2", in_channels=128, out_channels=128, patch_size=1, hidden_size=48, num_heads=2,
                axes_dim=[6, 6, 6, 6], mlp_ratio=3.0, theta=2000, global_modulation=True, vec_in_dim=None,
                mlp_silu_act=True, qkv_bias=False, ops_bias=False, default_ref_method="index",
                ref_index_scale=10.0, context_in_dim=TXT, depth=1, depth_single_blocks=1, guidance_embed=True),
           (128, 4, 4), _pooled(TXT, guidance=4.0), fix_config=_flux_fix),
    Family("pixart_sigma", "PixArt-Sigma", "image", "PixArtSigma",
           dict(image_model="pixart_sigma", num_heads=2, patch_size=2, hidden_size=48, in_channels=4, depth=1,
                model_max_length=T, input_size=32, pe_interpolation=1, micro_condition=False, caption_channels=TXT,
                mlp_ratio=2.0),
           # PixArt's position embedding divides by round(side / 64): the latent side must be >= 48
           (4, 48, 48), _plain, fill_buffers=_normal_buffers("y_embedder.y_embedding")),
    Family("hunyuan_image21", "HunyuanImage 2.1", "image", "HunyuanImage21",
           dict(image_model="hunyuan_video", in_channels=64, out_channels=64, patch_size=[1, 1], vec_in_dim=None,
                axes_dim=[12, 12], meanflow=False, context_in_dim=TXT, hidden_size=48, mlp_ratio=2.0, num_heads=2,
                depth=1, depth_single_blocks=1, theta=256, qkv_bias=True, byt5=False, guidance_embed=False,
                use_cond_type_embedding=False, vision_in_dim=None),
           (64, 8, 8), _pooled_none,
           fix_config=_fields_fix("comfy.ldm.hunyuan_video.model", "HunyuanVideoParams", meanflow_sum=False)),
    Family("chroma", "Chroma", "image", "Chroma",
           dict(image_model="chroma", in_channels=64, out_channels=64, patch_size=2, hidden_size=48, num_heads=2,
                axes_dim=[8, 8, 8], mlp_ratio=2.0, theta=10000, qkv_bias=True, context_in_dim=TXT, depth=1,
                depth_single_blocks=1, in_dim=64, out_dim=48, hidden_dim=64, n_layers=1),
           (16, 16, 16), _pooled_none,
           fix_config=_fields_fix("comfy.ldm.chroma.model", "ChromaParams", vec_in_dim=None, txt_ids_dims=[])),
    Family("qwen_image", "Qwen-Image", "image", "QwenImage",
           dict(image_model="qwen_image", in_channels=64, out_channels=16, patch_size=2, num_layers=1,
                attention_head_dim=24, num_attention_heads=2, joint_attention_dim=TXT, axes_dims_rope=(8, 8, 8)),
           # 5-D: EmptySD3LatentImage's 4-D latent is made one-frame video by fix_empty_latent_channels
           (16, 1, 16, 16), _plain),
    Family("lumina2", "Lumina 2", "image", "Lumina2",
           dict(image_model="lumina2", patch_size=2, in_channels=16, dim=48, n_layers=1, n_refiner_layers=1,
                n_heads=2, n_kv_heads=2, multiple_of=16, ffn_dim_multiplier=2.0, qk_norm=True, cap_feat_dim=TXT,
                axes_dims=[8, 8, 8], axes_lens=[300, 64, 64], rope_theta=10000.0),
           (16, 16, 16), _plain),
    Family("zimage", "Z-Image", "image", "ZImage",
           dict(image_model="lumina2", patch_size=2, in_channels=16, dim=256, n_layers=1, n_refiner_layers=0,
                n_heads=2, n_kv_heads=2, multiple_of=16, ffn_dim_multiplier=0.25, qk_norm=True,
                cap_feat_dim=TXT, axes_dims=[32, 48, 48], axes_lens=[64, 64, 64], rope_theta=256.0,
                z_image_modulation=True, time_scale=1000.0),
           (16, 16, 16), _plain),
    Family("hidream", "HiDream-I1", "image", "HiDream",
           dict(image_model="hidream", patch_size=2, in_channels=16, out_channels=16, num_layers=1,
                num_single_layers=1, attention_head_dim=24, num_attention_heads=2, caption_channels=[TXT, TXT],
                text_emb_dim=TXT, num_routed_experts=2, num_activated_experts=1, axes_dims_rope=[8, 8, 8],
                max_resolution=[128, 128], llama_layers=[0, 1]),
           (16, 16, 16), _hidream_cond),
    Family("kandinsky5_image", "Kandinsky 5 Lite (image)", "image", "Kandinsky5Image",
           dict(image_model="kandinsky5", in_visual_dim=16, out_visual_dim=16, in_text_dim=TXT, in_text_dim2=TXT,
                time_dim=32, model_dim=48, ff_dim=96, visual_embed_dim=64, patch_size=(1, 2, 2), num_text_blocks=1,
                num_visual_blocks=1, axes_dims=(8, 8, 8), rope_scale_factor=(1.0, 1.0, 1.0)),
           (16, 16, 16), _pooled(TXT)),
    Family("ernie_image", "ERNIE-Image", "image", "ErnieImage",
           dict(image_model="ernie", hidden_size=48, num_attention_heads=2, num_layers=1, ffn_hidden_size=96,
                in_channels=128, out_channels=128, patch_size=1, text_in_dim=TXT, rope_axes_dim=(8, 8, 8)),
           (128, 4, 4), _plain),
    # ------------------------------------------------------------------ video
    Family("wan21_t2v", "WAN 2.1 T2V", "video", "WAN21_T2V",
           dict(image_model="wan2.1", model_type="t2v", patch_size=(1, 2, 2), in_dim=16, out_dim=16, dim=48,
                ffn_dim=96, freq_dim=256, text_dim=TXT, num_heads=2, num_layers=1),
           (16, 2, 8, 8), _plain),
    Family("wan21_i2v", "WAN 2.1 I2V", "video", "WAN21_I2V",
           dict(image_model="wan2.1", model_type="i2v", patch_size=(1, 2, 2), in_dim=36, out_dim=16, dim=48,
                ffn_dim=96, freq_dim=256, text_dim=TXT, num_heads=2, num_layers=1),
           (16, 2, 8, 8), _wan_i2v_cond(2, 8)),
    Family("wan22_5b", "WAN 2.2 5B TI2V", "video", "WAN22_T2V",
           dict(image_model="wan2.1", model_type="t2v", patch_size=(1, 2, 2), in_dim=48, out_dim=48, dim=48,
                ffn_dim=96, freq_dim=256, text_dim=TXT, num_heads=2, num_layers=1),
           (48, 2, 8, 8), _plain),
    Family("hunyuan_video", "HunyuanVideo 1.0", "video", "HunyuanVideo",
           dict(image_model="hunyuan_video", in_channels=16, out_channels=16, patch_size=[1, 2, 2], vec_in_dim=TXT,
                axes_dim=[8, 8, 8], meanflow=False, context_in_dim=TXT, hidden_size=48, mlp_ratio=2.0, num_heads=2,
                depth=1, depth_single_blocks=1, theta=256, qkv_bias=True, byt5=False, guidance_embed=True,
                use_cond_type_embedding=False, vision_in_dim=None),
           (16, 2, 8, 8), _pooled(TXT, guidance=6.0),
           fix_config=_fields_fix("comfy.ldm.hunyuan_video.model", "HunyuanVideoParams", meanflow_sum=False)),
    Family("hunyuan_video15", "HunyuanVideo 1.5", "video", "HunyuanVideo15",
           # 32-channel latent; the input adds the (here empty) start-image latent and its mask: 32 + 32 + 1.
           # No vision projection (vision_in_dim None): it only reads an optional CLIP-vision output.
           dict(image_model="hunyuan_video", in_channels=65, out_channels=32, patch_size=[1, 1, 1], vec_in_dim=None,
                axes_dim=[8, 8, 8], meanflow=False, context_in_dim=TXT, hidden_size=48, mlp_ratio=2.0, num_heads=2,
                depth=1, depth_single_blocks=1, theta=256, qkv_bias=True, byt5=False, guidance_embed=False,
                use_cond_type_embedding=True, vision_in_dim=None),
           (32, 2, 8, 8), _pooled_none,
           fix_config=_fields_fix("comfy.ldm.hunyuan_video.model", "HunyuanVideoParams", meanflow_sum=False)),
    Family("ltxv", "LTX-Video", "video", "LTXV",
           dict(image_model="ltxv", in_channels=128, cross_attention_dim=48, attention_head_dim=24,
                num_attention_heads=2, caption_channels=TXT, num_layers=1),
           (128, 2, 4, 4), _ltxv_cond),
    # Cosmos samples images as one-frame videos (5-D latent)
    Family("cosmos_predict2", "Cosmos-Predict2 T2I", "image", "CosmosT2IPredict2",
           dict(image_model="cosmos_predict2", max_img_h=240, max_img_w=240, max_frames=128, in_channels=16,
                out_channels=16, patch_spatial=2, patch_temporal=1, model_channels=48, num_blocks=1, num_heads=2,
                concat_padding_mask=True, crossattn_emb_channels=TXT, pos_emb_cls="rope3d",
                pos_emb_learnable=True, pos_emb_interpolation="crop", min_fps=1, max_fps=30, use_adaln_lora=True,
                adaln_lora_dim=16, extra_per_block_abs_pos_emb=False, rope_h_extrapolation_ratio=4.0,
                rope_w_extrapolation_ratio=4.0, rope_t_extrapolation_ratio=1.0, extra_h_extrapolation_ratio=1.0,
                extra_w_extrapolation_ratio=1.0, extra_t_extrapolation_ratio=1.0,
                rope_enable_fps_modulation=False),
           (16, 1, 8, 8), _plain),
    # ------------------------------------------------------------------ 3D
    Family("hunyuan3d2", "Hunyuan3D 2.0", "3d", "Hunyuan3Dv2",
           dict(image_model="hunyuan3d2", in_channels=64, context_in_dim=TXT, hidden_size=48, mlp_ratio=2.0,
                num_heads=2, depth=1, depth_single_blocks=1, qkv_bias=True, guidance_embed=False),
           (64, 32), _plain),
    Family("hunyuan3d21", "Hunyuan3D 2.1", "3d", "Hunyuan3Dv2_1",
           dict(image_model="hunyuan3d2_1", in_channels=64, context_dim=TXT, hidden_size=48, mlp_ratio=2.0,
                num_heads=2, depth=1, qkv_bias=False, guidance_cond_proj_dim=None, num_moe_layers=0),
           (64, 32), _plain),
    Family("trellis2", "TRELLIS.2 (structure stage)", "3d", "Trellis2",
           # num_heads is forced to 12 by the config class (unet_extra_config). The dense sparse-structure
           # stage: EmptyTrellis2LatentStructure's [B, 32, 16, 16, 16], of which the model reads 8 channels.
           dict(image_model="trellis2", resolution=16, in_channels=32, out_channels=32, model_channels=48,
                cond_channels=TXT, num_blocks=1, mlp_ratio=2.0),
           (32, 16, 16, 16), lambda gen, b: [[_ctx(gen, b), {"embeds": _ctx(gen, b)}]], inject=False),
    # ------------------------------------------------------------------ audio
    Family("stable_audio", "Stable Audio Open", "audio", "StableAudio",
           dict(audio_model="dit1.0", io_channels=64, embed_dim=64, depth=1, num_heads=1,
                # The real model keeps the 768-wide text tokens; projecting them to the model's width is the
                # same class's other setting, and keeps it tiny (0.33's attention needs heads divisible by
                # the 768-wide context's heads otherwise, i.e. a 768-wide model). cond_token_dim=768,
                global_cond_dim=1536, project_cond_tokens=True, project_global_cond=True),
           (64, 16), lambda gen, b: [[_ctx(gen, b, dim=768), {}]], extra_sd=_stable_audio_sd,
           fill_buffers=_stable_audio_rope),
]

FAMILIES = {f.name: f for f in _F}
