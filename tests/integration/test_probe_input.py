"""Inject's ``probe_input`` = sampler (input-aware probes, img2img and inpainting) inside real
KSampler runs: the noise the sampler starts from equals a recomputation from scratch, with each
probe's model input written out by hand from the model family's forward process (not through
ComfyUI's noise_scaling), for an eps (SDXL) and a flow (FLUX) model, with and without a mask."""
import importlib

import pytest
import torch

import comfy.sample
import nodes

import probes
import tiny_models

Inject = nodes.NODE_CLASS_MAPPINGS["NoiseSemanticInject"]
PACK = Inject.__module__.rsplit(".", 1)[0]  # the pack as ComfyUI loaded it
core = importlib.import_module(PACK + ".core")
patch = importlib.import_module(PACK + ".patch")
SEED = 77
SCHED = core.make_schedule(2, 0.5, 1.0, weighting="uniform")  # tau 1 (sigma_max) and tau 0.5


def by_hand(family, sigma, z, lat, top=False):
    """The sampler's view of input ``lat`` at ``sigma`` with noise z, written from the maths."""
    if family == "sdxl":  # eps: x = x0 + sigma * eps; a sampler starting at sigma_max uses full variance
        return lat + ((1 + sigma ** 2) ** 0.5 if top else sigma) * z
    return (1 - sigma) * lat + sigma * z  # rectified flow: x = (1 - t) x0 + t eps


def expected(family, rec, z, mask, strength):
    guider, extra = rec["guider"], rec["extra_args"]
    ms = guider.inner_model.model_sampling
    lat = rec["latent_image"]  # already process_latent_in'd by the sampler
    dirs = []
    for tau in SCHED.taus:
        sigma = probes.probe_sigma(ms, tau)
        x = by_hand(family, sigma, z, lat, top=sigma >= float(ms.sigma_max) * (1 - 1e-5))
        if mask is not None:  # the kept part: the input re-noised with the same z, at plain sigma scaling
            x = mask * x + (1 - mask) * by_hand(family, sigma, z, lat)
        sig = torch.full((z.shape[0],), sigma)
        d = guider(x, sig, model_options=extra["model_options"], seed=extra["seed"])
        if mask is not None:
            d = mask * d + (1 - mask) * lat
        dirs.append((d - x) / sigma)
    return core.inject(z, core.aggregate(dirs, SCHED.weights), strength)


def run(family, probe_input, source, mask=None, denoise=1.0, strength=0.7):
    m = Inject().patch(tiny_models.make_model(family), strength, True, SCHED, apply_to="every sampler")[0]
    # probe_input is the pack's setting, not a node input (docs/method.md): set it on the node's output
    m = patch.patched(m, "inject", patch.settings_of(m.model_options)["inject"] | {"probe_input": probe_input})
    lat = {"samples": source} | ({"noise_mask": mask} if mask is not None else {})
    z = comfy.sample.prepare_noise(source, SEED)
    full_mask = None if mask is None else mask.expand_as(source)
    label = f"pi_{family}_{probe_input}"
    m = probes.capture(m, label, inspect=lambda rec: expected(family, rec, z, full_mask, strength))
    pos, neg = tiny_models.make_conditioning(family, 0, 1)
    nodes.KSampler().sample(m, SEED, 3, 3.0, "euler", "normal", pos, neg, lat, denoise)
    return probes.RECORDS[label][0], z


def source(family):
    return torch.randn(tiny_models.latent_shape(family), generator=torch.manual_seed(5))


def half_mask(family):
    mask = torch.zeros((1, 1) + tiny_models.latent_shape(family)[2:])
    mask[..., 8:] = 1.0  # regenerate the right half
    return mask


@pytest.mark.parametrize("family", ["sdxl", "flux"])
@pytest.mark.parametrize("case", ["img2img", "inpaint"])
def test_sampler_probes_see_the_input_as_the_sampler_does(family, case):
    mask = half_mask(family) if case == "inpaint" else None
    denoise = 0.6 if case == "img2img" else 1.0
    rec, z = run(family, "sampler", source(family), mask, denoise)
    assert torch.allclose(rec["noise"], rec["inspect"], atol=2e-4), (rec["noise"] - rec["inspect"]).abs().max()
    # and the input changes the result: the pure-noise probes give another noise
    other, _ = run(family, "noise", source(family), mask, denoise)
    assert not torch.allclose(other["noise"], rec["noise"], atol=1e-3)


@pytest.mark.parametrize("family", ["sdxl", "flux"])
def test_txt2img_is_the_same_under_both_probe_inputs(family):
    empty = torch.zeros(tiny_models.latent_shape(family))
    a, _ = run(family, "sampler", empty)
    b, _ = run(family, "noise", empty)
    assert torch.equal(a["noise"], b["noise"])


def test_bad_probe_input_names_the_fix():
    with pytest.raises(ValueError, match=r"\[Noise Semantic Inject\] setting 'probe_input'.*Fix: use one of noise, sampler"):
        run("sdxl", "latent", source("sdxl"), denoise=0.6)
