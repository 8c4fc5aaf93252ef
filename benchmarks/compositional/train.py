"""Train the compositional task's two models on the CPU (deterministic, seeded, 1 thread).

    .venv/bin/python -m benchmarks.compositional.train               # both, the shipped recipe
    .venv/bin/python -m benchmarks.compositional.train --kind flow   # one
    .venv/bin/python -m benchmarks.compositional.train --out /tmp/x --steps 500   # a sizing run

The loop is the project's one training loop, shared with the digits demo
(benchmarks/small_models/train.py: ComfyUI's own model_sampling conventions, so ComfyUI's KSampler
samples the result correctly). Prompts are dropped
to the empty prompt with probability ``p_uncond`` so classifier-free guidance works. Scenes come
from ``data.TrainingScenes`` (seen combinations only, colour-sharing pairs over-represented,
first object on the left). Weights are
an EMA, stored as float16 with the text encoder, the standardization, the architecture and this
recipe (``info``).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

RECIPE = {
    "eps": dict(steps=1500, batch=64, lr=2e-3, ema=0.995, p_uncond=0.1, seed=0),
    "flow": dict(steps=2500, batch=64, lr=2e-3, ema=0.995, p_uncond=0.1, seed=0),
}


def scene_stats(n: int = 4096, seed: int = 99) -> tuple:
    """Mean and std of the RGB values of training scenes (the latent standardization)."""
    from . import data
    x, _ = data.TrainingScenes(seed).batch(n)
    return float(x.mean()), float(x.std())


def train(kind: str, out: Path, steps: int, batch: int, lr: float, ema: float, p_uncond: float, seed: int,
          arch: dict | None = None, mix: float | None = None, p_same: float | None = None,
          p_first_left: float | None = None, gain: float | None = None, log_every: int = 250) -> dict:
    import torch
    from benchmarks.small_models import train as small_train
    from . import data, models
    arch = dict(arch or models.ARCH[kind])
    stats = scene_stats()
    mix = models.MIX if mix is None else mix
    gain = models.GAIN if gain is None else gain
    enc = models.make_text_encoder(mix=mix, gain=gain)
    config, model = models.build(kind, seed=seed, arch=arch)
    scenes = data.TrainingScenes(seed, p_same, p_first_left)

    def batches(g):
        images, ps = scenes.batch(batch)
        drop = (torch.rand(batch, generator=g) < p_uncond).tolist()
        context, pooled = models.encode_text(enc, [None if d else p for p, d in zip(ps, drop)])
        cond = {"c_crossattn": context}
        if kind == "flow":
            cond["y"] = pooled
        return models.encode(images, kind, stats), cond

    run = small_train.fit(model, kind, batches, steps, lr, ema, seed, torch.Generator().manual_seed(seed + 1),
                          log_every=log_every)
    info = dict(kind=kind, steps=steps, batch=batch, lr=lr, ema=ema, p_uncond=p_uncond, seed=seed,
                p_same_colour=scenes.p_same, p_first_left=scenes.p_first_left, text_mix=mix, text_gain=gain,
                seen_combinations=len(scenes.seen), params=models.count_params(model),
                comfy_class=type(config).__name__, **run)
    out.mkdir(parents=True, exist_ok=True)
    path = out / models.WEIGHTS[kind].name
    models.save(path, kind, model, enc, stats, arch, info)
    print(f"[{kind}] saved {path} ({path.stat().st_size / 1e6:.2f} MB) after {run['train_seconds']:.0f} s; {json.dumps(info)}")
    return info


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", choices=["eps", "flow", "both"], default="both")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    ap.add_argument("--steps", type=int)
    ap.add_argument("--batch", type=int)
    ap.add_argument("--lr", type=float)
    ap.add_argument("--arch", type=json.loads, default={}, help="JSON overrides of the architecture (sizing runs)")
    ap.add_argument("--mix", type=float, help="text encoder causal mixing (sizing runs; default models.MIX)")
    ap.add_argument("--p-same", type=float, help="share of same-colour training scenes (sizing; default data.P_SAME)")
    ap.add_argument("--gain", type=float, help="text encoder MLP saturation (sizing; default models.GAIN)")
    ap.add_argument("--p-left", type=float, help="share of scenes with the first object left (sizing; default data.P_FIRST_LEFT)")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT / "tests"))
    import host
    host.boot()
    import torch
    torch.set_num_threads(1)  # 2 shared cores: one thread is faster than two
    from . import models
    for kind in (["eps", "flow"] if args.kind == "both" else [args.kind]):
        r = dict(RECIPE[kind])
        for k in ("steps", "batch", "lr"):
            if getattr(args, k) is not None:
                r[k] = getattr(args, k)
        arch = dict(models.ARCH[kind]) | args.arch
        train(kind, args.out, arch=arch, mix=args.mix, p_same=args.p_same, p_first_left=args.p_left, gain=args.gain, **r)


if __name__ == "__main__":
    main()
