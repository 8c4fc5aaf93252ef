"""The pack on an accelerator: cost of the refinement next to stock sampling, at full size.

    python -m benchmarks.gpu_check                    # full size on CUDA; tiny shapes without a GPU
    python -m benchmarks.gpu_check --tiny             # tiny shapes anywhere (what CI runs, ~2 min on 2 cores)
    python -m benchmarks.gpu_check --size mid         # shapes where a CPU sees what the probes cost
    python -m benchmarks.gpu_check --families sdxl    # a subset
    python -m benchmarks.gpu_check --compile          # add the torch.compile round

For SDXL (1024x1024, 20 euler steps, cfg 8), FLUX.1 dev in bf16 (1024x1024, 20 euler steps, cfg 1 with
distilled guidance 3.5) and WAN 2.1 1.3B (832x480, 33 frames, 30 uni_pc steps, cfg 6), it builds the real
architecture from ComfyUI's own classes (``comfy.supported_models`` config -> ``model_base`` -> ModelPatcher),
with random weights made on the device (no checkpoint can be downloaded here; the cost of a model call does
not depend on its weights), and samples with ComfyUI's own ``comfy.sample.sample`` (what KSampler runs):
stock, then each mode of the pack through the same SAMPLER_SAMPLE wrapper its nodes register
(``noise_semantics.patch.patched``, the call "Noise Semantic Erase" / "Noise Semantic Inject" make; the
node classes themselves are not imported so that the script runs with ComfyUI's core alone). Reported per
family and mode, measured in one process:

* wall time and its ratio to stock (every mode once per round, stock first; medians over rounds), and its
  parts: set-up (the call to the sampler's start), probes (the pack's refinement), sampling, finish;
* the overheads as shares of stock's wall time: what the extra evaluations predict, what the wall time shows,
  part by part (a part that costs more than its evaluations is where the time goes);
* peak GPU memory (torch.cuda.max_memory_allocated over the run);
* network evaluations per image: latents through the network, probes and sampling alike (CFG = 2/step);
* the probe calls and the chunk size (probes per call) the pack chose, and the refined noise's dtype;
* chunking under ``--reserve-vram``: a second process of this script is started with ComfyUI's own
  ``--reserve-vram`` set so that the paper's 5-probe batch no longer fits; it reports the chunk size and
  number of probe calls it used (never more than K = 5) and whether its refined noise equals the unchunked one;
* a partially loaded model under ``--lowvram``: a second process with ComfyUI's --lowvram (and, on a GPU,
  --reserve-vram so that about half of the weights fit), the model built off the device so that ComfyUI's
  model management loads it: share of the weights loaded, stock and inject K=5 wall times, same noise as a
  full load. On a CPU ComfyUI loads a whole model whatever the flags: the round runs there with a full load;
* with ``--compile``, ComfyUI's TorchCompileModel wrapper on the model: the graphs torch.compile builds on
  each run, stock and patched (does the probe batch, a batch size of its own, recompile every run?).

Modules: ``families`` (specs, modes), ``comfy_env`` (ComfyUI set-up, models), ``measure`` (one run, in
parts), ``rounds`` (the questions asked of each family), ``child`` (the second processes), ``report``, ``cli``.
Writes benchmarks/results/gpu_check.{md,json} (tiny: gpu_check_tiny.*, mid: gpu_check_mid.*), or --out PREFIX.
"""
