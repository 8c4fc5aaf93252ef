"""The selector study's arithmetic (benchmarks/selectors/stats.py) and the pack's new pure-torch
scores (core.classifier_score, core.x0_disagreement), on verdicts and tensors built by hand."""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.selectors import stats  # noqa: E402
from noise_semantics import core  # noqa: E402


def test_auc_counts_pairs_and_ties():
    ok = torch.tensor([True, True, False, False])
    assert stats.auc(torch.tensor([0.0, 1.0, 2.0, 3.0]), ok) == 1.0    # right pairs score lower: perfect
    assert stats.auc(torch.tensor([3.0, 2.0, 1.0, 0.0]), ok) == 0.0
    assert stats.auc(torch.tensor([0.0, 2.0, 1.0, 3.0]), ok) == 0.75   # 3 of 4 pairs ordered
    assert stats.auc(torch.ones(4), ok) == 0.5                          # ties count half
    assert torch.isnan(torch.tensor(stats.auc(torch.ones(2), torch.tensor([True, True]))))


def test_within_prompt_auc_ignores_prompt_difficulty():
    # prompt 0 easy (all scores low), prompt 1 hard (all high): pooled AUC is fooled, within-prompt is not
    ok = torch.tensor([[True, True, True, False], [True, False, False, False]])
    score = torch.tensor([[1.0, 2.0, 3.0, 0.0], [13.0, 10.0, 11.0, 12.0]])
    assert stats.auc_within(score, ok) == 0.0          # inside each prompt the wrong noise scores lower
    assert stats.auc(score, ok) > 0.5


def test_capture_on_hand_made_verdicts():
    # one prompt, 8 noises; noises 1, 3, 5, 7 right. Stock (own noise) = 0.5; oracle best of 2 = 1.
    ok = torch.tensor([[False, True, False, True, False, True, False, True]])
    perfect = (~ok).float()                            # lowest score on every right noise
    pb = stats.per_block(ok, perfect, 2)
    assert float(pb["stock"]) == 0.5 and float(pb["oracle"]) == 1.0 and float(pb["selected"]) == 1.0
    c = stats.capture(pb, boot=50)
    assert c["delta"] == 0.5 and c["capture"] == 1.0
    worst = stats.capture(stats.per_block(ok, ok.float(), 2), boot=50)
    assert worst["delta"] == -0.5 and worst["capture"] == -1.0
    # best of 4 in cyclic groups: every group holds a right noise
    assert float(stats.per_block(ok, perfect, 4)["oracle"]) == 1.0


def test_margin_rule_keeps_the_own_noise_unless_clearly_beaten():
    g = torch.tensor([[1.0, 0.95, 2.0], [1.0, 0.5, 2.0]])
    assert stats.pick(g).tolist() == [1, 1]
    assert stats.pick(g, "rel", 0.1).tolist() == [0, 1]     # 5 % better is within the margin
    assert stats.pick(g, "abs", 0.3).tolist() == [0, 1]


def test_random_reseed_control_is_unbiased():
    g = torch.Generator().manual_seed(1)
    ok = torch.rand(400, 8, generator=g) < 0.6
    pb = stats.per_block(ok, None, 4)
    assert torch.allclose(pb["random"], pb["stock"])   # its expectation over cyclic groups is stock, exactly
    c = stats.capture(pb, "random", boot=50)
    assert c["delta"] == 0.0 and c["capture"] == 0.0


def test_classifier_score_prefers_the_prompt_that_explains_x0():
    x0 = torch.randn(3, 4, 8, 8)
    near, far = x0 + 0.1 * torch.randn_like(x0), x0 + torch.randn_like(x0)
    s = core.classifier_score(near, far, x0)
    assert (s < -0.9).all()                                  # cond explains x0: close to -1
    assert (core.classifier_score(far, near, x0) > 0.9).all()
    seg = core.classifier_score(near, far, x0.reshape(3, 1, -1), segments=[128, 128])
    assert seg.shape == (3,) and (seg < -0.9).all()


def test_x0_disagreement():
    a = torch.randn(2, 16)
    assert torch.allclose(core.x0_disagreement([a, 2 * a + 1]), torch.zeros(2), atol=1e-6)
    assert (core.x0_disagreement([a, -a]) > 1.99).all()
