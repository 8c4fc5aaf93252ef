"""Toy reproduction of Figure 2 of "Beyond Randomness: Understand the Order of the Noise in
Diffusion" (arXiv 2511.07756), on the CPU, pure torch, fixed seeds.

A tiny class-conditional model (rectified flow, and an eps-prediction model) maps a 2-D Gaussian
to three targets in three places (0 ring, 1 line segment, 2 two blobs). During training a small
fixed bank of seeds per class (noise vectors plus a small jitter) is always paired with targets
of that class, and half of the time under another class's label ("noise-semantic coupling": the
seeds are overfit to, and prefer, their class even against the prompt). At test time a seed of
bank A with label B is a *mismatched* seed. For matched, mismatched, fresh, Erased (NLN),
Injected (TPW, both signs, plus a random-direction control) and Erase+Inject noises we measure
the sliced Wasserstein distance to the intended target, the share of samples on the target's
support (precision) and the share that lands on another class's support (wrong class).

The erase/inject maths comes from the project's ``noise_semantics/core.py`` (``make_schedule``,
``semantic_direction``, ``aggregate``; a self-check compares the toy's aggregate with the one
``core.refine_inject`` computes). The per-sample standardization inside ``core.erase`` /
``core.inject`` is meaningless for a 2-vector, so the toy applies the formulas without it
(see docs/toy.md). Usage:

    .venv/bin/python -m benchmarks.toy [--quick] [--out DIR] [--no-eps] [--seed N]

Modules: ``data`` (targets, seed banks), ``models`` (the network, the two families, training),
``methods`` (erase / inject on 2-vectors, with core's formulas), ``judge`` (distances to the targets),
``experiment`` (the conditions of one model family, one seed), ``report`` (tables, figure), ``cli``.
"""
