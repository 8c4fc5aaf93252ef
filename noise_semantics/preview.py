import inspect

import torch

import comfy.model_management
import comfy.sample
import comfy.samplers
from comfy_api.latest import io

from . import core, patch
from .schema import CATEGORY, Schedule

TITLE = patch.PREVIEW


def _fix_empty_latent_channels(model, latent: dict) -> torch.Tensor:
    """comfy.sample.fix_empty_latent_channels as nodes.common_ksampler calls it on this host (0.33 also
    passes the latent's downscale ratios; 0.3.75 takes the model and the samples only)."""
    fix = comfy.sample.fix_empty_latent_channels
    if len(inspect.signature(fix).parameters) > 2:
        return fix(model, latent["samples"], latent.get("downscale_ratio_spacial"),
                   latent.get("downscale_ratio_temporal"))
    return fix(model, latent["samples"])


def scores_text(found: core.Screening, batch: int, seed: int, cfg: float, probes: int) -> str:
    m = found.noises.shape[0] // batch
    scores = found.scores if found.scores is not None else found.probes.conflict.reshape(1, batch)
    lines = [f"seed {seed}, cfg {cfg:g}, {m} candidate(s), {probes} probe(s). Conflict between the prompt and "
             f"what the noise shows by itself (0 = they agree); screening keeps the lowest [ ]:"]
    for b in range(batch):
        k = 0 if found.pick is None else int(found.pick[b])
        row = " ".join(f"[{float(v):.3f}]" if j == k else f"{float(v):.3f}" for j, v in enumerate(scores[:, b]))
        lines.append(f"image {b + 1}: {row} -> candidate {k + 1}")
    lines.append(f"prefers / asked: {m} x {batch} latents, candidate by candidate (candidate 1 = the sampler's "
                 f"own noise, for every image of the batch, then candidate 2, ...)")
    return "\n".join(lines)


class NoiseSemanticPreview(io.ComfyNode):
    """What the starting noise wants to show, next to what the prompt asks (the paper's Figure 3)."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="NoiseSemanticPreview",
            display_name=TITLE,
            category=CATEGORY,
            description=("Shows what the noise a KSampler would draw from this seed and latent wants to become: "
                         "per candidate, the model's prediction of the finished image with the negative prompt "
                         "alone (prefers) and with the prompt (asked), at the probe time, and the screening "
                         "scores. It probes exactly as Noise Semantic Inject does, so the candidate it marks is "
                         "the one Inject keeps with the same seed, cfg, candidates and schedule. Decode the "
                         "outputs with VAE Decode to see them."),
            inputs=[
                io.Model.Input("model", tooltip="The model the sampler gets (after Noise Semantic Erase if you "
                                                "use it; Inject's own settings are not used here)."),
                io.Conditioning.Input("positive", tooltip="The sampler's positive prompt."),
                io.Conditioning.Input("negative", tooltip="The sampler's negative prompt (an empty prompt or "
                                                          "ConditioningZeroOut is fine)."),
                io.Latent.Input("latent", tooltip="The sampler's latent (its size, batch and batch_index pick "
                                                  "the noise)."),
                io.Int.Input("seed", default=0, min=0, max=0xffffffffffffffff, control_after_generate=True,
                             tooltip="The sampler's seed."),
                io.Float.Input("cfg", default=8.0, min=0.0, max=100.0, step=0.1, round=0.01,
                               tooltip="The sampler's cfg."),
                io.Int.Input("candidates", default=4, min=1, max=16,
                             tooltip="Noises to probe per image, the sampler's own first: Inject's candidates."),
                Schedule.Input("schedule", optional=True,
                               tooltip="Inject's schedule; unconnected: Inject's default, one probe at tau 0.6."),
            ],
            outputs=[
                io.Latent.Output("prefers", display_name="prefers",
                                 tooltip="Per candidate, what the model makes of the noise with the negative prompt: "
                                         "what the noise itself wants to show."),
                io.Latent.Output("asked", display_name="asked",
                                 tooltip="The same with the prompt (the CFG-guided prediction)."),
                io.String.Output("scores", display_name="scores",
                                 tooltip="Each candidate's conflict score and the one screening keeps."),
            ],
            hidden=[io.Hidden.unique_id],
            not_idempotent=True,  # its id in the cache key, as Inject's (inject.py)
        )

    @classmethod
    def execute(cls, model, positive, negative, latent, seed, cfg, candidates, schedule=None) -> io.NodeOutput:
        if int(candidates) < 1:
            raise core.NoiseSemanticsError(f"[{TITLE}] input 'candidates' is {candidates}. Fix: use 1 (the "
                                           f"sampler's own noise only) or more")
        if schedule is None:
            schedule = core.DEFAULT_SCHEDULE
        if not isinstance(schedule, core.TemporalSchedule):
            raise core.NoiseSemanticsError(
                f"[{TITLE}] input 'schedule' is a {type(schedule).__name__}, not a schedule. Fix: connect a "
                f"Temporal Weight Schedule node, or leave the input unconnected for Inject's default")
        for name, cond in (("positive", positive), ("negative", negative)):
            if not cond:
                raise core.NoiseSemanticsError(
                    f"[{TITLE}] input '{name}' holds no conditioning: the preview compares what the model makes "
                    f"of the noise with the prompt and with the negative prompt. Fix: connect a text encode node "
                    f"(for the negative, an empty prompt or ConditioningZeroOut of the positive)")
        if not isinstance(latent, dict) or "samples" not in latent:
            raise core.NoiseSemanticsError(f"[{TITLE}] input 'latent' is not a LATENT. Fix: connect the latent "
                                           f"the sampler gets")
        if getattr(latent["samples"], "is_nested", False):
            raise core.NoiseSemanticsError(
                f"[{TITLE}] input 'latent' holds several latents (e.g. video + audio); a sheet of them cannot be "
                f"decoded as one picture. Fix: preview with the video (or image) latent alone")
        # The noise KSampler draws (nodes.common_ksampler): empty-latent channels fixed, batch_index honoured.
        latent_image = _fix_empty_latent_channels(model, latent)
        noise = comfy.sample.prepare_noise(latent_image, seed, latent.get("batch_index"))
        sink = patch.PreviewSink()
        probed = patch.patched(model, "preview", {"candidates": int(candidates), "schedule": schedule, "sink": sink})
        # ComfyUI's own CFG guider, as KSampler builds it (comfy.samplers.sample): it loads the model and
        # prepares the conditioning; the pack's sampler wrapper then probes and returns before sampling.
        guider = comfy.samplers.CFGGuider(probed)
        guider.set_conds(positive, negative)
        guider.set_cfg(cfg)
        sigma_max = float(probed.get_model_object("model_sampling").sigma_max)
        guider.sample(noise, latent_image, comfy.samplers.sampler_object("euler"), torch.tensor([sigma_max, 0.0]),
                      denoise_mask=latent.get("noise_mask"), disable_pbar=True, seed=seed)
        if sink.screening is None:
            raise core.NoiseSemanticsError(
                f"[{TITLE}] input 'model': another sampler patch on this model ended sampling before the noise "
                f"could be probed. Fix: connect the model before that patch")
        live = sum(1 for w in schedule.weights if w != 0.0)
        text = scores_text(sink.screening, noise.shape[0], seed, cfg, live)
        patch.show_on_node(getattr(getattr(cls, "hidden", None), "unique_id", None), text)
        device = comfy.model_management.intermediate_device()
        return io.NodeOutput({"samples": sink.prefers.to(device)}, {"samples": sink.asked.to(device)}, text)
