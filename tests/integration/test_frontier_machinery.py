"""The frontier benchmark's numbers come from the pack's real nodes and ComfyUI's real KSampler
(benchmarks/frontier/experiment.py), on the shipped digits models. Checks machinery only: what the
methods achieve is reported by the benchmark, never asserted."""
import sys
from pathlib import Path

import torch

import host

nodes = host.boot()
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.frontier.experiment import Config, Runner  # noqa: E402
from benchmarks.frontier.tasks import DigitsTask  # noqa: E402

TASK = DigitsTask()
STEPS, N, SEED = 4, 3, 5


def runner(keep=False):
    return Runner(nodes, TASK, "eps", N, STEPS, SEED, TASK.prompts()[:2], keep_images=keep)


def test_stock_run_is_the_ksampler_nodes_output():
    r = runner(keep=True)
    got = r.run(Config(3.0)).extra["images"]
    lat = {"samples": TASK.empty_latent("eps", 2 * N), "batch_index": list(range(N)) * 2}
    out = nodes.KSampler().sample(TASK.load("eps"), SEED, STEPS, 3.0, *TASK.sampler["eps"], r.pos, r.neg, lat)[0]
    want = TASK.decode("eps", out["samples"]).reshape(got.shape)
    assert torch.allclose(got, want, atol=1e-5)


def test_evaluations_per_image_are_counted_from_the_model_calls():
    r = runner()
    assert r.run(Config(3.0)).evals == 2 * STEPS
    assert r.run(Config(1.0)).evals == STEPS
    live = sum(1 for w in r.model_for(Config(3.0, inject=0.3)).model_options["noise_semantics"]
               ["inject"]["schedule"].weights if w)
    assert r.run(Config(3.0, inject=0.3)).evals == 2 * STEPS + 2 * live
    one = (("probes", 1), ("tau_max", 0.6), ("tau_min", 0.6))
    assert r.run(Config(3.0, candidates=4, schedule=one)).evals == 2 * STEPS + 2 * 4


def test_refined_runs_go_through_the_packs_nodes_and_are_deterministic():
    a, b = runner(), runner()
    c = Config(1.0, inject=0.6)
    ra, rb = a.run(c), b.run(c)
    assert torch.equal(ra.ok["all"], rb.ok["all"]) and torch.equal(ra.div, rb.div)
    m = a.model_for(c)
    assert m.model_options["noise_semantics"]["inject"]["strength"] == 0.6
    assert not torch.equal(a.run(Config(1.0)).div, ra.div)  # the refinement changed the images
