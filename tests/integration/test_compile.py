"""ComfyUI's TorchCompileModel on the wire before the pack's nodes: the probes run on the graphs that
sampling compiled, so a patched run builds none of its own (measured before the pack kept them so: the
first patched run rebuilt 18 to 26 graphs of the tiny models, as long as the first compilation;
benchmarks/gpu_check --compile). The wrapper is the node's own (comfy_api.torch_helpers
.set_torch_compile_wrapper, what TorchCompileModel calls); the backend is torch's "eager", which builds the
same graphs (what is counted, torch._dynamo's unique_graphs) without generating code, so the test runs in
seconds on a CPU. Runs under torch.inference_mode, as ComfyUI's executor runs every node."""
import pytest
import torch

import nodes
import tiny_models

Inject = nodes.NODE_CLASS_MAPPINGS["NoiseSemanticInject"]
Schedule = nodes.NODE_CLASS_MAPPINGS["NoiseSemanticTemporalSchedule"]


@pytest.mark.parametrize("mode", ["inject", "screening"])
@pytest.mark.parametrize("family", ["sdxl"])
def test_a_compiled_model_builds_no_graphs_for_the_probes(family, mode):
    import torch._dynamo
    from comfy_api.torch_helpers import set_torch_compile_wrapper
    pos, neg = tiny_models.make_conditioning(family, 0)
    lat = {"samples": torch.zeros(tiny_models.latent_shape(family))}
    model = tiny_models.make_model(family)
    set_torch_compile_wrapper(model=model, backend="eager")
    graphs = torch._dynamo.utils.counters["stats"]
    torch._dynamo.reset()
    try:
        with torch.inference_mode():
            nodes.KSampler().sample(model, 7, 3, 3.0, "euler", "normal", pos, neg, lat)  # compiles
            compiled = graphs["unique_graphs"]
            # five probes, or four candidates: in one batched call they would be a batch shape of its own;
            # with a compiled model each call holds B rows per branch, the sampler's own shape
            if mode == "inject":
                patched = Inject().patch(model, 0.5, True, Schedule().build(5, 0.5, 1.0, "bump", 0.8, 0.5, 1.0)[0])[0]
            else:
                patched = Inject().patch(model, 0.0, True, candidates=4)[0]
            nodes.KSampler().sample(patched, 7, 3, 3.0, "euler", "normal", pos, neg, lat)
            assert compiled > 0 and graphs["unique_graphs"] == compiled, (compiled, graphs["unique_graphs"])
    finally:
        torch._dynamo.reset()
