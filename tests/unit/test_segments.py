"""Packed latents in the pure-torch core: ``segments`` make each sub-latent of a packed sample a
sample of its own (tests/integration/test_packed_i2v.py runs it in ComfyUI 0.33 on LTX-2)."""
import pytest
import torch

from noise_semantics import core

SEG = [24, 8]  # a "video" and an "audio" sub-latent of one packed [B, 1, 32] sample


def packed(seed, scales=(1.0, 1.0)):
    g = torch.Generator().manual_seed(seed)
    parts = [torch.randn(3, 1, n, generator=g) * s for n, s in zip(SEG, scales)]
    return torch.cat(parts, dim=2)


def test_standardize_per_sub_latent():
    x = packed(0, scales=(3.0, 0.2)) + 1.5
    out = core.standardize(x, segments=SEG)
    for piece in torch.split(out.reshape(3, -1), SEG, dim=1):
        assert torch.allclose(piece.mean(1), torch.zeros(3), atol=1e-6)
        assert torch.allclose(piece.std(1, unbiased=False), torch.ones(3), atol=1e-5)
    whole = core.standardize(x)
    assert not torch.allclose(whole, out, atol=1e-2)


@pytest.mark.parametrize("standardized", [True, False])
def test_inject_mixes_each_sub_latent_on_its_own(standardized):
    z, e = core.standardize(packed(1), segments=SEG), packed(2, scales=(5.0, 0.1))
    strength = torch.tensor([0.3, 0.7, 1.2])
    out = core.inject(z, e, strength, standardized=standardized, segments=SEG)
    zs, es = (torch.split(t.reshape(3, -1), SEG, dim=1) for t in (z, e))
    expected = torch.cat([core.inject(a, b, strength, standardized=standardized) for a, b in zip(zs, es)], 1)
    assert torch.equal(out, expected.reshape(z.shape))
    assert not torch.allclose(out, core.inject(z, e, strength, standardized=standardized), atol=1e-2)


def test_decorrelate_and_conflict_per_sub_latent():
    z, e = packed(3), packed(4)
    d = core.decorrelate(e, z, segments=SEG)
    for a, b in zip(*(torch.split(t.reshape(3, -1), SEG, dim=1) for t in (d, z))):
        assert torch.allclose((a * b).sum(1), torch.zeros(3), atol=1e-4)
    c, u = packed(5, scales=(10.0, 1.0)), packed(6)
    parts = zip(*(torch.split(t.reshape(3, -1), SEG, dim=1) for t in (c, u)))
    expected = torch.stack([core.conflict(a, b) for a, b in parts]).mean(0)
    assert torch.allclose(core.conflict(c, u, segments=SEG), expected, atol=1e-6)


def test_no_segments_is_the_one_latent_path_and_bad_segments_fail():
    z, e = packed(7), packed(8)
    assert torch.equal(core.inject(z, e, 0.5, segments=None), core.inject(z, e, 0.5))
    with pytest.raises(ValueError, match="add up to"):
        core.standardize(z, segments=[10, 10])
