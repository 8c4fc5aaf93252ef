"""Pure-torch maths of "Beyond Randomness: Understand the Order of the Noise in Diffusion"
(arXiv 2511.07756). No ComfyUI import: the glue in ``noise_semantics/patch.py`` feeds it tensors and a
``predict`` callable, so the same code runs in tests, benchmarks and any host.

Conventions (see docs/method.md, and ../shared/METHOD.md in the project):

* Semantic Erasure, Noise Latent Normalization (NLN): ``z = (1/sqrt(n)) * sum_i z_i``.
  ``z_1`` is the sampler's own noise, so n = 1 is stock behaviour. ``z_2..z_n`` are drawn on
  the CPU generator, like ``comfy.sample.prepare_noise``, from seeds derived from the sampler's
  seed *and* from the sample's own ``z_1``. Keying on ``z_1`` makes every latent in a batch
  independent of its neighbours, so a latent picked out of a batch (``batch_index``) gets the
  same extra draws it had inside the batch.
* Semantic Injection, Temporal Prediction Weighting (TPW), in sampler coordinates
  (x, sigma, denoised D): probe k at normalized time tau_k (1 = pure noise) feeds the network
  ``z`` itself (``x_k = z / c_in(sigma_k)``) and takes the guided prediction ``D_k``. The
  semantic direction is ``s_k = (D_k - x_k) / sigma_k``, minus the Euler derivative: the way a
  denoising step moves the sample (-eps for eps models, -v for rectified flow).
  ``e_agg = sum_k w_k s_k / sqrt(sum_k w_k^2)``, by default decorrelated from z (see
  ``decorrelate``), standardized per sample, then ``z' = (z + delta * e_agg) / sqrt(1 + delta^2)``,
  re-standardized per sample.
* Packed latents (``segments``): a sampler may pack several latents into one noise tensor (ComfyUI
  0.33's ``latent_shapes``: LTX-2's video and audio). Each sub-latent is then its own sample: the
  functions that take ``segments`` (the element count of each sub-latent in a sample's flattened
  vector, in order) standardize, decorrelate, mix and score each sub-latent on its own; ``None``
  is one segment, the code path of an ordinary latent.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

SCHEDULE_TYPE = "NOISE_SEMANTIC_SCHEDULE"


class NoiseSemanticsError(ValueError):
    """A user-facing error: the message names the node, the input and the fix."""


def _fail(node: str, what: str, fix: str) -> NoiseSemanticsError:
    return NoiseSemanticsError(f"[{node}] {what}. Fix: {fix}")


# --------------------------------------------------------------------------- helpers

def _pieces(x: torch.Tensor, segments) -> list:
    """A sample-major tensor as its sub-latents, each [B, n_i] (see the module doc)."""
    flat = x.reshape(x.shape[0], -1)
    if sum(segments) != flat.shape[1]:
        raise ValueError(f"segments {tuple(segments)} add up to {sum(segments)}, but a sample has "
                         f"{flat.shape[1]} elements")
    return list(torch.split(flat, list(segments), dim=1))


def per_segment(fn: Callable, segments, *tensors: torch.Tensor) -> torch.Tensor:
    """``fn`` applied to each sub-latent of ``tensors`` (all of one shape) as if it were a whole
    latent, the results put back in place; ``segments`` None: ``fn(*tensors)`` itself."""
    if segments is None:
        return fn(*tensors)
    parts = zip(*(_pieces(t, segments) for t in tensors))
    return torch.cat([fn(*p) for p in parts], dim=1).reshape(tensors[0].shape)


def standardize(x: torch.Tensor, eps: float = 1e-12, segments=None) -> torch.Tensor:
    """Zero mean, unit variance per sample (dim 0 is the batch), per sub-latent with ``segments``.
    The refined noise must stay a unit Gaussian sample, or the sampler's sigma schedule no longer
    matches it."""
    if segments is not None:
        return per_segment(lambda p: standardize(p, eps), segments, x)
    flat = x.reshape(x.shape[0], -1)
    mean = flat.mean(dim=1, keepdim=True)
    std = flat.std(dim=1, keepdim=True, unbiased=False)
    return ((flat - mean) / std.clamp_min(eps)).reshape(x.shape)


def check_finite(x: torch.Tensor, node: str, what: str, fix: str) -> None:
    if not torch.isfinite(x).all():
        raise _fail(node, f"{what} contains NaN or inf", fix)


def check_samples(samples: int, node: str = "Noise Semantic Erase") -> None:
    if samples < 1:
        raise _fail(node, f"input 'samples' is {samples}", "set samples to 1 or more (1 = the sampler's own noise)")


def check_strength(strength: float, node: str = "Noise Semantic Inject") -> None:
    if not math.isfinite(strength) or strength < 0:
        raise _fail(node, f"input 'strength' is {strength}", "use a strength >= 0 (0 = no change)")


# --------------------------------------------------------------------------- Semantic Erasure

def derive_seed(seed: int, draw: int, sample: torch.Tensor) -> int:
    """Seed of extra draw ``draw`` (2..n) for one sample, from the sampler's seed and the bytes
    of that sample's own noise z_1. Stable across devices and runs: z_1 itself comes from
    ComfyUI's CPU generator, so its bytes are the same everywhere."""
    head = sample.detach().reshape(-1)[:256].to("cpu", torch.float32).contiguous()
    h = hashlib.blake2b(digest_size=8)
    h.update(int(seed).to_bytes(16, "little", signed=True))
    h.update(int(draw).to_bytes(4, "little"))
    h.update(head.numpy().tobytes())
    return int.from_bytes(h.digest(), "little") & 0x7FFF_FFFF_FFFF_FFFF


def extra_noise(z1: torch.Tensor, seed: int, draw: int) -> torch.Tensor:
    """Extra draw z_draw for every sample of z1, on the CPU generator (as prepare_noise draws),
    returned on z1's device and dtype."""
    out = []
    for b in range(z1.shape[0]):
        g = torch.Generator(device="cpu").manual_seed(derive_seed(seed, draw, z1[b]))
        out.append(torch.randn((1,) + tuple(z1.shape[1:]), generator=g, dtype=torch.float32, device="cpu"))
    return torch.cat(out, 0).to(device=z1.device, dtype=z1.dtype)


def erase(z1: torch.Tensor, seed: int, samples: int, restandardize: bool = True,
          node: str = "Noise Semantic Erase") -> torch.Tensor:
    """NLN: z = (1/sqrt(n)) sum_i z_i. Streams the extra draws, so memory does not grow with n.
    The sum of n independent unit Gaussians divided by sqrt(n) is itself unit Gaussian; the
    optional per-sample re-standardization (n > 1 only) removes the small empirical drift of a
    finite latent."""
    check_samples(samples, node)
    check_finite(z1, node, "the sampler's noise", "check the noise source feeding the sampler")
    if samples == 1:
        return z1  # n = 1 is the stock noise, bit for bit: the sampler's seed keeps its meaning
    acc = z1.to(torch.float32).clone()
    for draw in range(2, samples + 1):
        acc += extra_noise(z1, seed, draw).to(torch.float32)
    z = acc / math.sqrt(samples)
    if restandardize:
        z = standardize(z)
    return z.to(z1.dtype)


# --------------------------------------------------------------------------- Temporal schedule

@dataclass(frozen=True)
class TemporalSchedule:
    """K probe times tau_k in (0, 1] (1 = pure noise) and their weights w_k.

    Bump: ``w(tau) = max(1 - |(tau - c)/h|^(2p), 0)``, so h is a real half-width in tau units
    (a port of the paper's ``max(b - |t - t_c|^(2p), 0)`` on t in [0, 1000] with b = 1000 and
    p = 5 has a support of about +-2 timesteps and silently degenerates to uniform weights)."""
    taus: tuple
    weights: tuple
    kind: str = "bump"
    params: dict = field(default_factory=dict, compare=False)

    def __len__(self) -> int:
        return len(self.taus)


def make_schedule(probes: int = 5, tau_min: float = 0.5, tau_max: float = 1.0,
                  center: float = 0.8, half_width: float = 0.5, flatness: float = 1.0,
                  weighting: str = "bump", node: str = "Temporal Weight Schedule") -> TemporalSchedule:
    if not isinstance(probes, int) or probes < 1:
        raise _fail(node, f"input 'probes' is {probes}", "use 1 or more probes")
    for name, v in (("tau_min", tau_min), ("tau_max", tau_max), ("center", center),
                    ("half_width", half_width), ("flatness", flatness)):
        if not math.isfinite(v):
            raise _fail(node, f"input '{name}' is {v}", f"give '{name}' a finite number")
    if not (0.0 < tau_min <= 1.0 and 0.0 < tau_max <= 1.0):
        raise _fail(node, f"time range [{tau_min}, {tau_max}] leaves (0, 1]",
                    "keep tau_min and tau_max in (0, 1]; 1 is pure noise, 0 the clean image")
    if tau_min > tau_max:
        raise _fail(node, f"time range is reversed: tau_min {tau_min} > tau_max {tau_max}",
                    "swap them so that tau_min <= tau_max")
    if probes > 1 and tau_min == tau_max:
        raise _fail(node, f"time range [{tau_min}, {tau_max}] is empty but probes is {probes}",
                    "widen the range, or use probes = 1")
    if weighting not in ("bump", "uniform"):
        raise _fail(node, f"input 'weighting' is {weighting!r}", "choose 'bump' or 'uniform'")
    if probes == 1:
        taus = (float(tau_max),)
    else:
        taus = tuple(float(t) for t in torch.linspace(tau_max, tau_min, probes, dtype=torch.float64))
    if weighting == "uniform":
        weights = tuple(1.0 for _ in taus)
    else:
        if half_width <= 0:
            raise _fail(node, f"input 'half_width' is {half_width}", "use a half-width > 0")
        if flatness <= 0:
            raise _fail(node, f"input 'flatness' is {flatness}", "use a flatness > 0 (1 = parabola, larger = flatter top)")
        weights = tuple(max(1.0 - abs((t - center) / half_width) ** (2.0 * flatness), 0.0) for t in taus)
        if sum(w * w for w in weights) == 0.0:
            raise _fail(node, f"the bump (center {center}, half_width {half_width}) gives every probe in "
                              f"[{tau_min}, {tau_max}] zero weight",
                        "move the center into the time range or widen half_width")
    return TemporalSchedule(taus, weights, weighting, dict(probes=probes, tau_min=tau_min, tau_max=tau_max,
                                                           center=center, half_width=half_width,
                                                           flatness=flatness))


# The Temporal Weight Schedule node's defaults: the paper's TPW, five probes over tau [0.5, 1].
TPW_SCHEDULE = make_schedule()
# Inject's schedule when none is connected: one probe at tau 0.6, where the model already reads the
# noise's own content (the conflict score separates mismatched noises best there, docs/method.md).
# On the frontier benchmarks it did as well as the five probes, at a fifth of the cost.
DEFAULT_SCHEDULE = make_schedule(1, 0.6, 0.6)


# --------------------------------------------------------------------------- Semantic Injection

def semantic_direction(denoised: torch.Tensor, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """s = (D - x) / sigma: minus the Euler derivative, the direction a denoising step moves x.
    Equals -eps for eps models and -v for rectified flow, so one formula serves every family."""
    sigma = sigma.reshape(sigma.shape[:1] + (1,) * (x.ndim - 1)).to(x)
    return (denoised - x) / sigma


def aggregate(directions: Sequence[torch.Tensor], weights: Sequence[float]) -> torch.Tensor:
    """TPW: e_agg = sum_k w_k s_k / sqrt(sum_k w_k^2); probes of zero weight may be omitted
    by the caller (they never need a model call)."""
    norm = math.sqrt(sum(w * w for w in weights))
    acc = None
    for s, w in zip(directions, weights):
        if w == 0.0:
            continue
        term = s.to(torch.float32) * (w / norm)
        acc = term if acc is None else acc + term
    return acc


def decorrelate(e: torch.Tensor, z: torch.Tensor, segments=None) -> torch.Tensor:
    """Per sample, the part of e orthogonal to z. A denoising direction mostly points back at the
    noise itself (s ~ -z + semantics: for eps models s = -eps_hat, and eps_hat ~ z at high noise), so
    the paper's variance-keeping mix (z + delta*e)/sqrt(1 + delta^2), which assumes e uncorrelated
    with z, would shrink z and, at delta ~ 1, replace every seed by the same prediction. Removing
    the z component keeps only what the model adds to the noise, and makes delta an exact
    noise/semantics mix: shares 1/sqrt(1 + delta^2) and delta/sqrt(1 + delta^2). With
    ``segments``, per sub-latent."""
    if segments is not None:
        return per_segment(decorrelate, segments, e, z)
    ef = e.reshape(e.shape[0], -1).to(torch.float32)
    zf = z.reshape(z.shape[0], -1).to(torch.float32)
    coef = (ef * zf).sum(1, keepdim=True) / (zf * zf).sum(1, keepdim=True).clamp_min(1e-12)
    return (ef - coef * zf).reshape(e.shape)


DIRECTIONS = ("guided", "prompt")


def inject(z: torch.Tensor, e_agg: torch.Tensor, strength, decorrelated: bool = True,
           standardized: bool = True, segments=None) -> torch.Tensor:
    """z' = (z + delta * e_agg) / sqrt(1 + delta^2), with e_agg standardized first so delta means
    the same for every model family and resolution; re-standardized so z' is a unit sample.

    ``strength`` is a float or a per-sample tensor [B]. ``standardized=False`` keeps e_agg's own
    magnitude (the "prompt" direction: it is already in the noise's units and shrinks to zero where
    the noise agrees with the prompt, which is the point of it); z + delta * e is then only
    re-standardized. With ``segments``, each sub-latent is mixed as a latent of its own (same
    strength): its own decorrelation, standardization and re-standardization."""
    if segments is not None:
        return per_segment(lambda zp, ep: inject(zp, ep, strength, decorrelated, standardized), segments, z, e_agg)
    e = e_agg.to(torch.float32)
    zf = z.to(torch.float32)
    if decorrelated:
        e = decorrelate(e, zf)
    delta = torch.as_tensor(strength, dtype=torch.float32, device=zf.device)
    if delta.ndim == 1:
        delta = delta.reshape((-1,) + (1,) * (zf.ndim - 1))
    if standardized:
        e = standardize(e)
        out = (zf + delta * e) / torch.sqrt(1.0 + delta * delta)
    else:
        out = zf + delta * e
    return standardize(out).to(z.dtype)


def conflict(cond_denoised: torch.Tensor, uncond_denoised: torch.Tensor, segments=None) -> torch.Tensor:
    """Per sample, how much the prompt has to change what the model makes of this noise: the cosine
    distance (0 = same content, 2 = opposite) between the centred conditional and unconditional
    denoised predictions. Stock sampling misses almost only where the noise's own content (the
    unconditional prediction) disagrees with the prompt; on the digits models this score separates
    those noises with an AUC of about 0.9 at tau 0.5-0.7 (docs/method.md).

    With ``segments``: the mean of the sub-latents' own scores, so each stream (video, audio) counts
    the same whatever its size and scale."""
    if segments is not None:
        parts = zip(_pieces(cond_denoised, segments), _pieces(uncond_denoised, segments))
        return torch.stack([conflict(c, u) for c, u in parts], 0).mean(0)
    b = cond_denoised.shape[0]
    c = cond_denoised.reshape(b, -1).to(torch.float32)
    u = uncond_denoised.reshape(b, -1).to(torch.float32)
    c = c - c.mean(1, keepdim=True)
    u = u - u.mean(1, keepdim=True)
    return 1.0 - torch.nn.functional.cosine_similarity(c, u, dim=1, eps=1e-12)


def classifier_score(cond_denoised: torch.Tensor, uncond_denoised: torch.Tensor, x0: torch.Tensor,
                     segments=None) -> torch.Tensor:
    """Per sample, the diffusion classifier of Li et al. 2023 ("Your Diffusion Model is Secretly a
    Zero-Shot Classifier") for the prompt against the empty (negative) prompt: ``x0`` is an image the
    candidate leads to (e.g. its predicted x0), re-noised and denoised once with each prompt;
    ``(err_c - err_u) / (err_c + err_u)`` with err the squared error of each prediction against x0. In
    [-1, 1], scale-free; lower = the prompt explains x0 better than the empty prompt does. With
    ``segments``: the mean of the sub-latents' scores."""
    if segments is not None:
        parts = zip(_pieces(cond_denoised, segments), _pieces(uncond_denoised, segments), _pieces(x0, segments))
        return torch.stack([classifier_score(c, u, x) for c, u, x in parts], 0).mean(0)
    b = x0.shape[0]
    x = x0.reshape(b, -1).to(torch.float32)
    ec = (cond_denoised.reshape(b, -1).to(torch.float32) - x).pow(2).sum(1)
    eu = (uncond_denoised.reshape(b, -1).to(torch.float32) - x).pow(2).sum(1)
    return (ec - eu) / (ec + eu).clamp_min(1e-12)


def x0_disagreement(predictions: Sequence[torch.Tensor]) -> torch.Tensor:
    """Per sample, 1 - the mean pairwise cosine of centred x0 predictions of one noise (e.g. at several
    probe times): 0 = every probe sees the same image."""
    b = predictions[0].shape[0]
    flat = [p.reshape(b, -1).to(torch.float32) for p in predictions]
    flat = [f - f.mean(1, keepdim=True) for f in flat]
    sims = [torch.nn.functional.cosine_similarity(flat[i], flat[j], dim=1, eps=1e-12)
            for i in range(len(flat)) for j in range(i + 1, len(flat))]
    return 1.0 - torch.stack(sims, 0).mean(0)


PROBE_INPUTS = ("noise", "sampler")


@dataclass
class SamplerStart:
    """What the sampler starts from besides the noise, for input-aware probes (img2img, inpainting).

    ``latent`` is the input latent in model space ([B, ...], as the sampler holds it), ``mask`` the
    sampler's denoise mask ([B, ...], 1 = generate, 0 = keep) or None. The three callables are the
    model's own rules, handed in by the glue so this module stays ComfyUI-free:
    ``noise_scaling(sigma [R], noise, latent)`` puts a latent at noise level sigma (ComfyUI's
    ``model_sampling.noise_scaling``: eps ``latent + sigma * noise``, rectified flow
    ``(1 - sigma) * latent + sigma * noise``); ``kept_scaling(sigma, noise, latent, x, mask)`` what
    the kept region holds at sigma (``scale_latent_inpaint``; default: ``noise_scaling``);
    ``mask_at(sigma, mask)`` a sigma-dependent mask (``denoise_mask_function``, e.g. Differential
    Diffusion; default: the mask as is)."""
    latent: torch.Tensor
    noise_scaling: Callable
    mask: torch.Tensor | None = None
    kept_scaling: Callable | None = None
    mask_at: Callable | None = None

    def rows(self, t: torch.Tensor | None, n: int) -> torch.Tensor | None:
        """``t`` [B, ...] repeated to n rows (n a multiple of B: probes x candidates x B, B fastest)."""
        if t is None:
            return None
        return t.to(torch.float32).repeat((n // t.shape[0],) + (1,) * (t.ndim - 1))

    def view(self, z: torch.Tensor, sigma: torch.Tensor) -> tuple:
        """The sampler's view at one probe (every row at the same ``sigma`` [R]): the model input
        ``x`` in sampler coordinates, as KSamplerX0Inpaint builds it for a sampler that started at
        sigma with noise z, and the mask to blend the prediction with (None without a mask)."""
        n = z.shape[0]
        lat = self.rows(self.latent, n)
        x = self.noise_scaling(sigma, z, lat).to(torch.float32)
        mask = self.rows(self.mask, n)
        if mask is None:
            return x, None
        if self.mask_at is not None:
            mask = self.mask_at(sigma, mask).to(torch.float32)
        kept = (self.kept_scaling or (lambda s, nz, lt, xx, m: self.noise_scaling(s, nz, lt)))(sigma, z, lat, x, mask)
        return mask * x + (1.0 - mask) * kept.to(torch.float32), mask

    def blend(self, d: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """The sampler's denoised prediction: the model's where it generates, the input where it keeps."""
        if mask is None:
            return d
        return d.to(torch.float32) * mask + self.rows(self.latent, d.shape[0]) * (1.0 - mask)


@dataclass
class Probes:
    """What the probes found, per sample (dim 0 = the probed noises), aggregated with the temporal
    weights (TPW): ``guided`` = sum_k w_k s_k / sqrt(sum w_k^2) with s_k the guided denoising
    direction (the paper's e_agg); with both CFG branches read, ``prompt`` = the same sum of
    (D_cond - D_uncond)_k, the prompt-specific part of the prediction, in the latent's own units,
    and ``conflict`` = the weighted mean of ``conflict()`` over the probes. With ``denoised`` asked of
    ``run_probes``: ``denoised`` = the weighted mean (w_k / sum w_k) of the guided prediction D_k, and
    with both branches ``cond`` / ``uncond`` the same of D_cond / D_uncond: what the model makes of
    each noise with the prompt, and with the negative prompt alone (what the noise itself "prefers",
    the paper's Figure 3), in the sampler's model space."""
    guided: torch.Tensor
    prompt: torch.Tensor | None = None
    conflict: torch.Tensor | None = None
    calls: int = 0
    denoised: torch.Tensor | None = None
    cond: torch.Tensor | None = None
    uncond: torch.Tensor | None = None

    def rows(self, rows) -> "Probes":
        """The same findings for the probed noises ``rows`` (an index tensor)."""
        sel = lambda t: None if t is None else t[rows]
        return Probes(sel(self.guided), sel(self.prompt), sel(self.conflict), self.calls, sel(self.denoised),
                      sel(self.cond), sel(self.uncond))


def call_pieces(first: int, last: int, n: int) -> list:
    """Rows [first, last) of the k-major probe batch (row r = probe r // n, noise r % n) as
    (probe, noise_from, noise_to) pieces, in order."""
    out, r = [], first
    while r < last:
        k, j0 = divmod(r, n)
        j1 = min(n, j0 + (last - r))
        out.append((k, j0, j1))
        r += j1 - j0
    return out


def run_probes(z: torch.Tensor, schedule: TemporalSchedule,
               sigma_of_tau: Callable[[float], float], c_in: Callable[[torch.Tensor], torch.Tensor],
               predict: Callable, branches: bool = False, chunk: int | None = None,
               on_chunk: Callable[[int], None] | None = None, node: str = "Noise Semantic Inject",
               segments=None, start: "SamplerStart | None" = None, rows: int | None = None,
               group: int | None = None, denoised: bool = False) -> Probes:
    """Runs every probe of nonzero weight through ``predict(x, sigma)``: the probe batch is K probes x
    N noises rows, k-major (row r = probe r // N, noise r % N), and each call takes the next ``rows``
    of them (default: ``chunk`` whole probes, default all). ``group`` (default N) is the latent batch
    B the sampler's conditioning is laid out for: ``rows`` is rounded down to a multiple of it (at least
    one group) and every call starts on a group boundary, so the per-sample conditioning ComfyUI repeats
    to a call's batch (``repeat_to_batch_size``) lines up with the rows as it does in a sampling step.
    The TPW sums are streamed, each noise's terms added in probe order whatever the split, so a split
    run equals an unsplit one up to the model's own batch rounding; peak extra memory is one call.
    ``predict`` returns the guided denoised prediction D, or with ``branches`` a tuple
    (D, D_cond, D_uncond). ``sigma_of_tau(tau)`` gives the probe's sigma, ``c_in(sigma)`` the network's
    input scaling per sample ([N] -> [N]). ``on_chunk(k)`` is told after each call how many probes it
    finished.

    Probe input: without ``start``, the network sees the noise itself, ``x_k = z / c_in(sigma_k)``
    (the paper's pred(z, t_k, y)). With ``start`` (input-aware probes), it sees what the sampler
    would see had it started at sigma_k from the same noise: ``start.view`` (the input latent noised
    to sigma_k, the known latent where a mask keeps it), and D is blended with the input where the
    mask keeps it, as the sampler's own prediction is. Either way ``s_k = (D_k - x_k) / sigma_k``.

    ``denoised``: also keep the weighted mean predictions themselves (``Probes.denoised``, and with
    ``branches`` ``Probes.cond`` / ``Probes.uncond``), for the Noise Semantic Preview node."""
    live = [(t, w) for t, w in zip(schedule.taus, schedule.weights) if w != 0.0]
    norm = math.sqrt(sum(w * w for _, w in live))
    wsum = sum(w for _, w in live)
    N = z.shape[0]
    group = N if group is None else int(group)
    if group < 1 or N % group:
        raise ValueError(f"group {group} does not divide the {N} probed noises")
    if rows is None:
        rows = (len(live) if chunk is None else max(1, min(int(chunk), len(live)))) * N
    rows = max(group, int(rows) // group * group)
    total = len(live) * N
    sigmas = [sigma_of_tau(t) for t, _ in live]
    out = Probes(torch.zeros(z.shape, dtype=torch.float32, device=z.device))
    if branches:
        out.prompt = torch.zeros_like(out.guided)
        out.conflict = torch.zeros(N, dtype=torch.float32, device=z.device)
    if denoised:
        out.denoised = torch.zeros_like(out.guided)
        if branches:
            out.cond, out.uncond = torch.zeros_like(out.guided), torch.zeros_like(out.guided)
    zf = z.to(torch.float32)
    for first in range(0, total, rows):
        pieces = call_pieces(first, min(first + rows, total), N)
        sig = torch.cat([torch.full((j1 - j0,), sigmas[k], dtype=torch.float32, device=z.device)
                         for k, j0, j1 in pieces])
        mask = None
        if start is None:
            x_in = torch.cat([zf[j0:j1] for _, j0, j1 in pieces], 0)
            x_in = x_in / c_in(sig).reshape((-1,) + (1,) * (z.ndim - 1))
        else:
            # one probe time at a time: the model's noise_scaling takes one max-denoise flag per call;
            # each piece starts on a group boundary, so start's latent and mask repeat in step with it
            views, at = [], 0
            for k, j0, j1 in pieces:
                views.append(start.view(zf[j0:j1], sig[at:at + j1 - j0]))
                at += j1 - j0
            x_in = torch.cat([v[0] for v in views], 0)
            mask = None if views[0][1] is None else torch.cat([v[1] for v in views], 0)
            del views
        pred = predict(x_in.to(z.dtype), sig)
        out.calls += 1
        d, dc, du = pred if branches else (pred, None, None)
        for t in (d, dc, du):
            if t is not None:
                check_finite(t, node, "the model's prediction at a probe",
                             "the model produced NaN/inf from this noise; try another model precision "
                             "(fp32/bf16) or other probe times")
        if mask is not None:
            d, dc, du = (None if t is None else start.blend(t, mask) for t in (d, dc, du))
        s = semantic_direction(d.to(torch.float32), x_in, sig)
        at = 0
        for k, j0, j1 in pieces:
            w = live[k][1]
            part = slice(at, at + j1 - j0)
            out.guided[j0:j1] += s[part] * (w / norm)
            if branches:
                out.prompt[j0:j1] += (dc[part] - du[part]).to(torch.float32) * (w / norm)
                out.conflict[j0:j1] += conflict(dc[part], du[part], segments) * (w / wsum)
            if denoised:
                out.denoised[j0:j1] += d[part].to(torch.float32) * (w / wsum)
                if branches:
                    out.cond[j0:j1] += dc[part].to(torch.float32) * (w / wsum)
                    out.uncond[j0:j1] += du[part].to(torch.float32) * (w / wsum)
            at += j1 - j0
        del d, dc, du, s, x_in, pred
        if on_chunk is not None:
            on_chunk(sum(1 for k, j0, j1 in pieces if j1 == N))
    return out


def candidate_noises(z: torch.Tensor, seed: int, candidates: int) -> list:
    """Noise screening's candidates: the sampler's own noise first, then ``candidates - 1`` more
    per sample, drawn like Erase's extra draws but from a separate stream of derived seeds (so the
    two never share a draw)."""
    return [z] + [extra_noise(z, seed, SCREEN_STREAM + j) for j in range(1, candidates)]


SCREEN_STREAM = 1 << 20  # derived-seed draw indices of screening; Erase uses 2..n


@dataclass
class Screening:
    """What the probes found for every candidate noise: ``noises`` and ``probes`` hold m x B rows,
    candidate-major (row j * B + b is candidate j of sample b); with several candidates, ``scores``
    [m, B] are their conflicts and ``pick`` [B] the candidate each sample keeps (the least conflict)."""
    noises: torch.Tensor
    probes: Probes
    scores: torch.Tensor | None = None
    pick: torch.Tensor | None = None

    def kept(self) -> tuple:
        """The kept noise and its probes, [B] rows (the only candidate, without screening)."""
        if self.pick is None:
            return self.noises, self.probes
        B = self.pick.shape[0]
        rows = self.pick * B + torch.arange(B, device=self.pick.device)
        return self.noises[rows], self.probes.rows(rows)


def screen(z: torch.Tensor, schedule: TemporalSchedule, sigma_of_tau: Callable[[float], float],
           c_in: Callable[[torch.Tensor], torch.Tensor], predict: Callable,
           candidates: Sequence[torch.Tensor] | None = None, branches: bool = False, chunk: int | None = None,
           on_chunk: Callable[[int], None] | None = None, node: str = "Noise Semantic Inject", segments=None,
           start: "SamplerStart | None" = None, denoised: bool = False, rows: int | None = None) -> Screening:
    """Probes ``z`` (or every one of ``candidates``, the first being ``z``, in the same batched calls)
    and, with several candidates, picks per sample the one whose probes show the least conflict
    between prompt and noise. Noise Semantic Inject and Noise Semantic Preview both probe here, so the
    candidate the Preview marks is the one Inject keeps. ``branches`` / ``denoised``: see
    ``run_probes`` (screening always reads the branches); ``rows``: rows of the probe batch
    (probes x candidates x B) per model call, any multiple of B (see ``run_probes``)."""
    screening = candidates is not None and len(candidates) > 1
    zs = torch.cat(list(candidates), 0) if screening else z
    p = run_probes(zs, schedule, sigma_of_tau, c_in, predict, branches or screening, chunk, on_chunk, node,
                   segments, start, rows=rows, group=z.shape[0], denoised=denoised)
    if not screening:
        return Screening(zs, p)
    scores = p.conflict.reshape(len(candidates), z.shape[0])
    return Screening(zs, p, scores, scores.argmin(0))  # pick: [B], candidate index per sample


def refine_inject(z: torch.Tensor, schedule: TemporalSchedule, strength: float,
                  sigma_of_tau: Callable[[float], float], c_in: Callable[[torch.Tensor], torch.Tensor],
                  predict: Callable, chunk: int | None = None,
                  on_chunk: Callable[[int], None] | None = None, decorrelated: bool = True,
                  direction: str = "guided", candidates: Sequence[torch.Tensor] | None = None,
                  node: str = "Noise Semantic Inject", segments=None,
                  start: "SamplerStart | None" = None, rows: int | None = None,
                  report: dict | None = None) -> torch.Tensor:
    """Semantic Injection, with two options beyond the paper:

    * ``direction="prompt"`` injects the probes' prompt-specific part, sum_k w_k (D_cond - D_uncond),
      unstandardized: where the noise already shows what the prompt asks for, the two branches agree
      and the noise is left (nearly) as it was; where they conflict, it moves the most.
    * ``candidates`` (noise screening): alternative noises per sample (the first is ``z``); all are
      probed in the same batched calls, and each sample keeps the candidate whose probes show the
      least conflict between prompt and noise, then injects as usual (strength 0: selection only).

    Both need the two CFG branches: ``predict`` must then return (D, D_cond, D_uncond).

    ``segments`` (packed latents): the probes see the whole packed noise, one model call for all
    sub-latents; each sample keeps one candidate for all of its sub-latents (the joint noise that
    was probed), scored by the mean of the sub-latents' conflicts; the mix is per sub-latent.

    ``start`` makes the probes input-aware (img2img, inpainting; see ``run_probes``). ``rows``: rows of
    the probe batch (probes x candidates x B) per model call, any multiple of B (see ``run_probes``);
    None: ``chunk`` whole probes per call.

    ``report``: a dict that receives ``"screening"``, the ``Screening`` (scores and picks), when the
    model was probed."""
    check_strength(strength, node)
    if direction not in DIRECTIONS:
        raise _fail(node, f"input 'direction' is {direction!r}", f"choose one of {', '.join(DIRECTIONS)}")
    screening = candidates is not None and len(candidates) > 1
    if strength == 0 and not screening:
        return z
    check_finite(z, node, "the noise to refine", "check the sampler's noise source and the Erase node before it")
    found = screen(z, schedule, sigma_of_tau, c_in, predict, candidates, direction != "guided", chunk, on_chunk,
                   node, segments, start, rows=rows)
    if report is not None:
        report["screening"] = found
    zs, p = found.kept()
    if screening and strength == 0:
        return zs.to(z.dtype)
    if direction == "prompt":
        return inject(zs, p.prompt, strength, decorrelated, standardized=False, segments=segments)
    return inject(zs, p.guided, strength, decorrelated, segments=segments)
