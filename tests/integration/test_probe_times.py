"""Probe times mean the same signal-to-noise ratio on every rectified-flow model, whatever its shift
(issue 18 item 6): with ComfyUI's own shift nodes on tiny FLUX and WAN models, a probe at tau sits at
sigma = tau. (The sampling tests recompute the refined noise with tests/probes.probe_sigma, so they check
that the sampler is fed the probes at those sigmas.)"""
import math

import pytest

import comfy_extras.nodes_model_advanced as adv

import tiny_models
from noise_semantics import patch


def shifted(family, shift):
    m = tiny_models.make_model(family)
    if family == "flux":
        return adv.ModelSamplingFlux().patch(m, math.log(shift), math.log(shift), 64, 64)[0]
    return adv.ModelSamplingSD3().patch(m, shift)[0]


@pytest.mark.parametrize("family", ["flux", "wan"])
@pytest.mark.parametrize("shift", [1.0, 3.0, 8.0])
def test_flow_probe_sigma_ignores_the_shift(family, shift):
    ms = shifted(family, shift).get_model_object("model_sampling")
    for tau in (0.3, 0.6, 1.0):
        assert patch.probe_sigma(ms, tau) == pytest.approx(tau, abs=1e-6)
    # the schedule itself does move with the shift: the old rule would have probed at the shifted sigma
    old = float(ms.percent_to_sigma(0.4))
    assert old == pytest.approx(shift * 0.6 / (1 + (shift - 1) * 0.6), abs=1e-4)


def test_eps_probe_sigma_is_the_fraction_of_its_schedule():
    ms = tiny_models.make_model("sdxl").get_model_object("model_sampling")
    assert patch.probe_sigma(ms, 0.6) == pytest.approx(float(ms.percent_to_sigma(0.4)))
    assert patch.probe_sigma(ms, 1.0) == pytest.approx(float(ms.sigma_max))  # not the 1e9 sentinel
