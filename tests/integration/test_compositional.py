"""The compositional benchmark task (benchmarks/compositional/): its judge, its split, and its two
shipped models sampling through ComfyUI's real KSampler (nodes.common_ksampler), stock and
patched by the pack's real Inject node. Runs on whichever ComfyUI tests/host.py boots
(COMFYUI_PATH): the floor 0.3.75 and the current 0.33 host load the same weights files."""
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import host  # noqa: E402

nodes = host.boot()

from benchmarks.compositional import data, judge  # noqa: E402
from benchmarks.compositional.task import CompositionalTask  # noqa: E402


@pytest.fixture(scope="module")
def task():
    return CompositionalTask()


def sample(task, kind, model, prompts, cfg, seed=7):
    latent = {"samples": task.empty_latent(kind, len(prompts)), "batch_index": list(range(len(prompts)))}
    out = nodes.common_ksampler(model, seed, 20, cfg, *task.sampler[kind], task.conditioning(kind, prompts),
                                task.null_conditioning(kind, len(prompts)), latent)[0]["samples"]
    return task.decode(kind, out)


def test_judge_reads_real_scenes_of_unseen_glyphs():
    acc = judge.accuracy(n=1000)
    for k in data.ATTRIBUTES:
        assert acc[k] > 0.97, acc


def test_judge_finds_objects_wherever_drawn_and_names_the_failures():
    g = torch.Generator().manual_seed(0)
    p = (3, 0, 7, 2)  # a red 3 and a blue 7
    scenes = [(p, False), (p, True), ((3, 0, 7, 0), False), ((3, 2, 7, 0), True), ((3, 0, 3, 0), False)]
    img = data.render([s for s, _ in scenes], g, pool="judge_test", swapped=[w for _, w in scenes])
    res = judge.judge(img, [p] * len(scenes))
    assert res["all"].tolist() == [True, True, False, False, False]
    assert res["first_on_right"].tolist()[:2] == [False, True]
    assert res["colour_leak"].tolist() == [False, False, True, False, True]
    assert res["binding_swap"].tolist() == [False, False, False, True, False]
    assert res["missing_object"].tolist() == [False, False, False, False, True]


def test_split_is_disjoint_complete_and_training_sees_only_seen():
    seen, held = set(data.prompts("seen")), set(data.prompts("heldout"))
    assert not seen & held
    assert len(seen | held) == (10 * len(data.COLOURS)) ** 2
    assert 0.25 <= len(held) / len(seen | held) <= 0.5
    for i, name in enumerate(data.ATTRIBUTES):
        values = range(10) if name.startswith("digit") else range(len(data.COLOURS))
        assert {p[i] for p in seen} == set(values), f"{name}: every value must be trained on"
    _, ps = data.TrainingScenes(3).batch(512)
    assert set(ps) <= seen
    assert data.prompts("heldout", 50) == data.prompts("heldout", 50)


@pytest.mark.parametrize("kind", ["eps", "flow"])
def test_empty_latent_is_what_the_stock_node_gives(task, kind):
    if kind == "eps":
        ref = nodes.EmptyLatentImage().generate(128, 64, 3)[0]["samples"]
    else:
        ref = nodes.NODE_CLASS_MAPPINGS["EmptySD3LatentImage"].execute(64, 32, 3)[0]["samples"]
    assert torch.equal(task.empty_latent(kind, 3), ref)


@pytest.mark.parametrize("kind", ["eps", "flow"])
def test_shipped_model_samples_prompts_through_ksampler(task, kind):
    with torch.inference_mode():
        model = task.load(kind)
        ps = task.prompts("seen", 24)
        a = sample(task, kind, model, ps, cfg=4.5)
        b = sample(task, kind, task.load(kind), ps, cfg=4.5)
        assert torch.equal(a, b), "same seed, same prompts -> same images"
        assert a.shape == (24, 3, 8, 16) and 0 <= float(a.min()) and float(a.max()) <= 1
        res = task.judge(a, ps)
        # The trained model follows seen prompts far above chance (chance = 1/3600 for "all").
        assert float(res["all"].float().mean()) > 0.4, {k: float(v.float().mean()) for k, v in res.items()}
        c = sample(task, kind, model, ps, cfg=4.5, seed=8)
        assert not torch.equal(a, c)


def test_pack_inject_patches_the_task_model(task):
    inject = nodes.NODE_CLASS_MAPPINGS["NoiseSemanticInject"]
    with torch.inference_mode():
        stock = task.load("flow")
        patched = getattr(inject(), inject.FUNCTION)(model=stock, strength=1.0)[0]
        ps = task.prompts("heldout", 8)
        a = sample(task, "flow", stock, ps, cfg=3.0)
        b = sample(task, "flow", patched, ps, cfg=3.0)
    assert not torch.equal(a, b), "Inject must change what the sampler starts from"
    assert set(task.judge(b, ps)) >= {"all", "binding_swap", *data.ATTRIBUTES}
