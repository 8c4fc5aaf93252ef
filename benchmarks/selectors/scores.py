"""Candidate screening scores for every (prompt, noise) pair of a frontier benchmark, computed with
the real model inside ComfyUI's real sampling call: a SAMPLER_SAMPLE wrapper (the pack's own
extension point) on a clone of the benchmark's model receives the guider, sigmas and the exact noise
KSampler drew (``batch_index`` 0..N-1 of the benchmark's seed), computes the scores, and either
returns without sampling or lets the real sampler run (``verify``: the stored verdicts are then
re-judged from the images, to prove the noises are the benchmark's).

Every score is "lower = predicted right" and is one of:

* ``conflict@tau``: the pack's score today (core.conflict of the cond / uncond predictions) at a probe
  of the noise itself at tau (``sigma_of_tau`` as the pack computes it), 2 evaluations;
* ``conflict@sigma``: the same at an explicit sigma (flow model: the shift-free probe times of issue 18);
* ``conflict_mean``: the mean over taus 0.4..0.8 (10 evaluations);
* ``agree``: 1 - cosine of the guided x0 predictions at tau 0.4 and 0.8 (x0 agreement across probes);
* ``dc@a>b``: diffusion classifier (Li et al. 2023) on the guided x0 predicted at tau a, re-noised at
  tau b with one fixed noise: core.classifier_score of the cond and uncond denoising errors (4 evals);
* ``look{k}_conflict`` / ``look{k}_dc``: k real euler steps of the sampler (same sigmas, same cfg),
  then the conflict at step k's own evaluation / the classifier on step k's x0 (2k + 2 / 2k + 4 evals);
* ``attn_*@...``: cross-attention maps in the spirit of InitNO, read through
  ``transformer_options["optimized_attention_override"]`` (compositional models: token 1 and 3 are the
  digits, 0 and 2 their colours): ``attn_overlap`` the overlap of the two objects' maps,
  ``attn_resp`` minus the weakest digit token's peak, ``attn_bind`` minus the overlap of each colour
  with its digit;
* ``final_dc``: the classifier on the finished stock image (a ceiling for model-judged selection, at
  the cost of sampling every candidate; only with ``verify``)."""
from __future__ import annotations

import math

import torch

import comfy.patcher_extension

from noise_semantics import core

TAUS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
LOOK = 4            # lookahead steps recorded: 0..LOOK
DC_FROM = (0.6, 1.0)  # taus whose guided x0 the classifier re-noises
DC_AT = (0.3, 0.5)    # re-noise taus


class AttentionMaps:
    """optimized_attention_override: records, for the cond rows of each call, the attention of the image
    queries on the ``T`` text tokens (UNet cross-attention: k has T rows; FLUX joint attention: the
    first T keys are text), averaged over heads and summed over layers with the same query count; then
    runs the attention it was given, unchanged."""

    def __init__(self, T: int):
        self.T = T
        self.maps = {}

    def __call__(self, func, *args, **kwargs):
        q, k = args[0], args[1]
        heads = args[3] if len(args) > 3 else kwargs.get("heads")
        topts = kwargs.get("transformer_options") or {}
        with torch.no_grad():
            if kwargs.get("skip_reshape"):
                qh, kh = q, k                               # [B, H, L, D]
            else:
                b, _, dh = q.shape
                qh = q.view(b, -1, heads, dh // heads).transpose(1, 2)
                kh = k.view(b, -1, heads, dh // heads).transpose(1, 2)
            Lk = kh.shape[2]
            if Lk == self.T and qh.shape[2] != self.T:      # cross-attention
                p = torch.softmax(qh.float() @ kh.float().transpose(-1, -2) / math.sqrt(qh.shape[-1]), -1)
                a = p.mean(1)                               # [B, Lq, T]
            elif qh.shape[2] == Lk and Lk > self.T:         # joint attention, text first
                p = torch.softmax(qh.float() @ kh.float().transpose(-1, -2) / math.sqrt(qh.shape[-1]), -1)
                a = p[:, :, self.T:, :self.T].mean(1)
            else:
                a = None
            if a is not None:
                cu = topts.get("cond_or_uncond", [0])
                rows = a.shape[0] // len(cu)
                parts = [a[i * rows:(i + 1) * rows] for i, c in enumerate(cu) if c == 0]
                if parts:
                    a = torch.cat(parts, 0)
                    key = a.shape[1]
                    self.maps[key] = self.maps.get(key, 0) + a
        return func(*args, **kwargs)

    def result(self):
        if not self.maps:
            return None
        key = max(self.maps, key=lambda k: (k, 0))  # the finest grid recorded
        return self.maps[key]


def attention_scores(a: torch.Tensor) -> dict:
    """InitNO-style scores from maps [B, L, 4] (tokens colour_1 digit_1 colour_2 digit_2); lower = better."""
    n = a / a.sum(1, keepdim=True).clamp_min(1e-12)                # each token's map sums to 1
    ov = lambda x, y: torch.minimum(x, y).sum(1)
    o1, o2 = (n[..., 0] + n[..., 1]) / 2, (n[..., 2] + n[..., 3]) / 2
    return {"attn_overlap": ov(o1, o2),
            "attn_resp": -torch.minimum(a[..., 1].amax(1), a[..., 3].amax(1)),
            "attn_bind": -(ov(n[..., 0], n[..., 1]) + ov(n[..., 2], n[..., 3])) / 2,
            "attn_combo": ov(o1, o2) - (ov(n[..., 0], n[..., 1]) + ov(n[..., 2], n[..., 3])) / 2}


def collect(guider, sigmas, extra_args, noise, text_tokens: int | None, extra_sigmas=()) -> dict:
    """Every score for every row of ``noise`` (one sampling call's batch)."""
    model = guider.inner_model
    ms = model.model_sampling
    sigma_max = float(ms.sigma_max)
    seed = extra_args.get("seed")
    seen = {}

    def read(args):
        seen["c"], seen["u"] = args["cond_denoised"], args["uncond_denoised"]
        return args["denoised"]

    mo = dict(extra_args["model_options"])
    mo["sampler_post_cfg_function"] = list(mo.get("sampler_post_cfg_function", [])) + [read]
    mo["disable_cfg1_optimization"] = True
    B = noise.shape[0]
    z = noise.to(torch.float32)

    def call(x, sig: float, attn=False):
        opts = mo
        cap = None
        if attn and text_tokens:
            cap = AttentionMaps(text_tokens)
            opts = dict(mo, transformer_options=dict(mo.get("transformer_options", {}), optimized_attention_override=cap))
        s = torch.full((B,), float(sig), dtype=torch.float32, device=z.device)
        with torch.no_grad():
            d = guider(x, s, model_options=opts, seed=seed)
        out = (d.float(), seen.pop("c").float(), seen.pop("u").float())
        return out + ((cap.result() if cap else None),)

    def sigma_of_tau(tau):
        return min(float(ms.percent_to_sigma(1.0 - tau)), sigma_max)

    def probe_input(sig):
        one = torch.ones((B,) + (1,) * (z.ndim - 1), dtype=torch.float32, device=z.device)
        cin = ms.calculate_input(torch.full((B,), sig, device=z.device), one)
        return z / cin

    fixed = torch.randn(z.shape, generator=torch.Generator().manual_seed(12345), dtype=torch.float32).to(z.device)

    def dc(x0, tau_b):
        sb = sigma_of_tau(tau_b)
        xb = ms.noise_scaling(torch.full((B,), sb, device=z.device), fixed, x0)
        _, c, u, _ = call(xb, sb)
        return core.classifier_score(c, u, x0)

    out, guided = {}, {}
    probes = [(f"conflict@{t:g}", sigma_of_tau(t), t) for t in TAUS]
    probes += [(f"conflict@s{s:g}", float(s), None) for s in extra_sigmas]
    for name, sig, tau in probes:
        d, c, u, a = call(probe_input(sig), sig, attn=tau == 0.6)
        out[name] = core.conflict(c, u)
        if tau is not None:
            guided[tau] = d
        if a is not None:
            for k, v in attention_scores(a).items():
                out[f"{k}@0.6"] = v
    out["conflict_mean"] = torch.stack([out[f"conflict@{t:g}"] for t in (0.4, 0.5, 0.6, 0.7, 0.8)]).mean(0)
    out["agree"] = core.x0_disagreement([guided[0.4], guided[0.8]])
    for a_ in DC_FROM:
        for b_ in DC_AT:
            out[f"dc@{a_:g}>{b_:g}"] = dc(guided[a_], b_)
    # lookahead: the sampler's own first steps (euler, as the benchmarks sample), from its own start
    x = ms.noise_scaling(sigmas[:1].to(z).expand(B), z, torch.zeros_like(z), max_denoise=True)
    for k in range(LOOK + 1):
        sk = float(sigmas[k])
        d, c, u, a = call(x, sk, attn=True)
        out[f"look{k}_conflict"] = core.conflict(c, u)
        if a is not None:
            for kk, v in attention_scores(a).items():
                out[f"look{k}_{kk}"] = v
        if k in (1, 2, 4):
            out[f"look{k}_dc"] = dc(d, 0.5)
        x = x + (x - d) / sk * (float(sigmas[k + 1]) - sk)
    return {k: v.detach().cpu().float() for k, v in out.items()}


def study_wrapper(store: dict, text_tokens, verify: bool, extra_sigmas=()):
    def wrapper(executor, guider, sigmas, extra_args, callback, noise, latent_image, denoise_mask, disable_pbar):
        store.update(collect(guider, sigmas, extra_args, noise, text_tokens, extra_sigmas))
        if not verify:
            return torch.zeros_like(noise)
        out = executor(guider, sigmas, extra_args, callback, noise, latent_image, denoise_mask, disable_pbar)
        # the classifier on the finished image: the ceiling of a model judging its own finished candidates
        ms = guider.inner_model.model_sampling
        B = noise.shape[0]
        seen = {}
        mo = dict(extra_args["model_options"])
        mo["sampler_post_cfg_function"] = list(mo.get("sampler_post_cfg_function", [])) + [
            lambda a: (seen.update(c=a["cond_denoised"], u=a["uncond_denoised"]), a["denoised"])[1]]
        mo["disable_cfg1_optimization"] = True
        sb = min(float(ms.percent_to_sigma(0.5)), float(ms.sigma_max))
        fixed = torch.randn(noise.shape, generator=torch.Generator().manual_seed(12345), dtype=torch.float32).to(noise.device)
        x0 = out.float()
        xb = ms.noise_scaling(torch.full((B,), sb, device=noise.device), fixed, x0)
        with torch.no_grad():
            guider(xb, torch.full((B,), sb, device=noise.device), model_options=mo, seed=extra_args.get("seed"))
        store["final_dc"] = core.classifier_score(seen["c"].float(), seen["u"].float(), x0).cpu()
        return out
    return wrapper


def add_wrapper(model, store, text_tokens, verify, extra_sigmas=()):
    m = model.clone()
    m.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.SAMPLER_SAMPLE, "selector_study",
                           study_wrapper(store, text_tokens, verify, extra_sigmas))
    return m
