"""Which samplers on the patched MODEL refine their noise (issue 18 item 5): Erase's and Inject's
``apply_to``. A hires-fix graph (KSampler at denoise 1, LatentUpscaleBy, a second KSampler at denoise
0.5 on the same MODEL) and a tiled pass (LatentCrop into two tiles, a KSampler at denoise 0.4 on each,
LatentComposite back), real nodes on the tiny SDXL model.

Default ("from pure noise only"): only the txt2img pass is refined and pays for probes; the second
pass and the tiles get ComfyUI's stock noise and exactly the stock number of model evaluations, and
the log says what was skipped. "every sampler": every pass is refined (and pays)."""
from __future__ import annotations

import logging

import pytest
import torch

import comfy.sample
import nodes

import probes
import tiny_models
from noise_semantics import core
from test_combos import node

SEED, STEPS, CFG, N = 11, 4, 3.0, 2
FAMILY = "sdxl"


def pack(model, erase_to, inject_to, candidates=2):
    m = node("NoiseSemanticErase", model=model, samples=N, restandardize=True, apply_to=erase_to)
    return node("NoiseSemanticInject", model=m, strength=0.5, decorrelate=True, candidates=candidates,
                apply_to=inject_to)


def ksample(model, lat, denoise, seed=SEED):
    pos, neg = tiny_models.make_conditioning(FAMILY)
    return nodes.KSampler().sample(model, seed, STEPS, CFG, "euler", "normal", pos, neg, lat, denoise)[0]


def hires_fix(model):
    """First pass from an empty latent, then the upscaled latent at denoise 0.5, same MODEL."""
    first = ksample(model, {"samples": torch.zeros(tiny_models.latent_shape(FAMILY))}, 1.0)
    up = node("LatentUpscaleBy", samples=first, upscale_method="nearest-exact", scale_by=1.5)
    return ksample(model, up, 0.5, seed=SEED + 1)


def tiled(model):
    """Two 8 x 16 tiles of a 16 x 16 latent, each sampled at denoise 0.4, composited back."""
    src = {"samples": torch.randn(tiny_models.latent_shape(FAMILY), generator=torch.manual_seed(3))}
    out = src
    for i, x in enumerate((0, 64)):
        tile = node("LatentCrop", samples=src, width=64, height=128, x=x, y=0)
        done = ksample(model, tile, 0.4, seed=SEED + i)
        out = node("LatentComposite", samples_to=out, samples_from=done, x=x, y=0, feather=0)
    return out


def run(graph, model, label):
    counted, counter = probes.count_calls(probes.capture(model, label))
    out = graph(counted)
    return out, probes.RECORDS[label], counter.calls


def stock_noise(rec):
    return comfy.sample.prepare_noise(rec["latent_image"].cpu(), int(rec["seed"]))


@pytest.mark.parametrize("graph", [hires_fix, tiled], ids=["hires_fix", "tiled"])
def test_default_refines_only_the_sampler_that_starts_from_pure_noise(graph, caplog):
    base = tiny_models.make_model(FAMILY)
    _, stock_recs, stock_calls = run(graph, base, "stock")
    with caplog.at_level(logging.INFO):
        out, recs, calls = run(graph, pack(base, "from pure noise only", "from pure noise only"), "default")
    partial = [r for r in recs if r["sigmas"][0] < 14.0]  # the denoise < 1 passes
    assert partial and len(recs) == len(stock_recs)
    for rec in partial:  # untouched: the stock noise, no probes
        assert torch.equal(rec["noise"], stock_noise(rec))
    if graph is hires_fix:
        full = [r for r in recs if all(r is not p for p in partial)]
        assert len(full) == 1 and not torch.equal(full[0]["noise"], stock_noise(full[0]))  # txt2img refined
        assert calls == stock_calls + 1  # one probe call (1 probe x 2 candidates, one batch), first pass only
    else:
        assert calls == stock_calls
    assert "left this sampler's noise untouched" in caplog.text and "apply_to" in caplog.text


@pytest.mark.parametrize("graph", [hires_fix, tiled], ids=["hires_fix", "tiled"])
def test_every_sampler_refines_every_pass(graph):
    base = tiny_models.make_model(FAMILY)
    _, stock_recs, stock_calls = run(graph, base, "stock")
    out, recs, calls = run(graph, pack(base, "every sampler", "every sampler"), "every")
    assert all(not torch.allclose(r["noise"], stock_noise(r)) for r in recs)
    assert calls == stock_calls + len(recs)  # each pass pays for its probe call


def test_erase_and_inject_choose_separately():
    """Erase on every sampler, Inject only from pure noise: the second pass gets the erased stock
    noise, not injected."""
    base = tiny_models.make_model(FAMILY)
    _, recs, _ = run(hires_fix, pack(base, "every sampler", "from pure noise only"), "mixed")
    second = recs[-1]
    assert torch.equal(second["noise"], core.erase(stock_noise(second), int(second["seed"]), N, True))


def test_bad_apply_to_names_the_fix():
    with pytest.raises(ValueError, match=r"\[Noise Semantic Inject\] input 'apply_to' is 'tiles'.*Fix: choose"):
        node("NoiseSemanticInject", model=tiny_models.make_model(FAMILY), strength=0.5, decorrelate=True,
             apply_to="tiles")


def test_txt2img_with_a_scheduler_that_starts_below_sigma_max_is_refined():
    """ddim_uniform's first sigma is below sigma_max at denoise 1; an empty latent is still pure noise."""
    base = tiny_models.make_model(FAMILY)
    pos, neg = tiny_models.make_conditioning(FAMILY)
    m = probes.capture(pack(base, "from pure noise only", "from pure noise only"), "ddim")
    nodes.KSampler().sample(m, SEED, STEPS, CFG, "euler", "ddim_uniform", pos, neg,
                            {"samples": torch.zeros(tiny_models.latent_shape(FAMILY))}, 1.0)
    (rec,) = probes.RECORDS["ddim"]
    assert float(rec["sigmas"][0]) < 14.0  # below the tiny SDXL's sigma_max (14.6)
    assert not torch.equal(rec["noise"], stock_noise(rec))
