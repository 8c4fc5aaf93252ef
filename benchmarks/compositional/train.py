"""Train the compositional task's two models on the CPU (deterministic, seeded, 1 thread).

    .venv/bin/python -m benchmarks.compositional.train               # both, the shipped recipe
    .venv/bin/python -m benchmarks.compositional.train --kind flow   # one
    .venv/bin/python -m benchmarks.compositional.train --out /tmp/x --steps 500   # a sizing run

Same conventions as demo/train.py, so ComfyUI's KSampler samples the result correctly: the
network is called through ``model_base.apply_model`` at sigmas drawn from the model's own
``model_sampling.sigmas`` table, loss ``((D - x0) / sigma)^2`` (= the eps / velocity MSE);
eps: ``x = x0 + sigma * eps``; flow: ``x = (1 - sigma) * x0 + sigma * eps``. Prompts are dropped
to the empty prompt with probability ``p_uncond`` so classifier-free guidance works. Scenes come
from ``data.TrainingScenes`` (seen combinations only, colour-sharing pairs over-represented,
first object on the left). Weights are
an EMA, stored as float16 with the text encoder, the standardization, the architecture and this
recipe (``info``).
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import platform
import sys
import time
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
    from . import data, models
    torch.manual_seed(seed)
    arch = dict(arch or (models.EPS_UNET if kind == "eps" else models.FLOW_DIT))
    stats = scene_stats()
    mix = models.MIX if mix is None else mix
    gain = models.GAIN if gain is None else gain
    enc = models.make_text_encoder(mix=mix, gain=gain)
    config, model = models.build(kind, seed=seed, arch=arch)
    sigmas = model.model_sampling.sigmas.float()
    net = model.diffusion_model
    net.train()
    model.requires_grad_(True)
    ema_net = copy.deepcopy(net).requires_grad_(False)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.0)
    # 100-step warm-up, then cosine down to 10%.
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: min(1.0, (i + 1) / 100) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * i / steps))))
    scenes = data.TrainingScenes(seed, p_same, p_first_left)
    g = torch.Generator().manual_seed(seed + 1)
    t0 = time.perf_counter()
    losses = []
    for step in range(steps):
        images, ps = scenes.batch(batch)
        x0 = models.encode(images, kind, stats)
        drop = (torch.rand(batch, generator=g) < p_uncond).tolist()
        context, pooled = models.encode_text(enc, [None if d else p for p, d in zip(ps, drop)])
        sigma = sigmas[torch.randint(0, len(sigmas), (batch,), generator=g)]
        eps = torch.randn(x0.shape, generator=g)
        s4 = sigma.view(-1, 1, 1, 1)
        x = x0 + s4 * eps if kind == "eps" else (1.0 - s4) * x0 + s4 * eps
        kw = {"y": pooled} if kind == "flow" else {}
        # FLUX's blocks add residuals in place (inference code), which autograd refuses on tensors
        # it saved for backward: save copies instead (same gradients; the UNet needs none).
        with (torch.autograd.graph.saved_tensors_hooks(lambda t: t.clone(), lambda t: t) if kind == "flow"
              else contextlib.nullcontext()):
            denoised = model.apply_model(x, sigma, c_crossattn=context, **kw)
            loss = (((denoised - x0) / s4) ** 2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()
        with torch.no_grad():
            for pe, p in zip(ema_net.parameters(), net.parameters()):
                pe.lerp_(p, 1.0 - ema)
        losses.append(loss.item())
        if (step + 1) % log_every == 0 or step == 0:
            recent = sum(losses[-log_every:]) / len(losses[-log_every:])
            print(f"[{kind}] step {step + 1}/{steps} loss {recent:.4f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    train_s = time.perf_counter() - t0
    model.diffusion_model = ema_net
    info = dict(kind=kind, steps=steps, batch=batch, lr=lr, ema=ema, p_uncond=p_uncond, seed=seed,
                p_same_colour=scenes.p_same, p_first_left=scenes.p_first_left, text_mix=mix, text_gain=gain, seen_combinations=len(scenes.seen),
                final_loss=round(sum(losses[-200:]) / len(losses[-200:]), 5), train_seconds=round(train_s, 1),
                params=models.count_params(model), comfy_class=type(config).__name__,
                torch=torch.__version__, threads=torch.get_num_threads(), machine=platform.machine())
    out.mkdir(parents=True, exist_ok=True)
    path = out / models.WEIGHTS[kind].name
    models.save(path, kind, model, enc, stats, arch, info)
    print(f"[{kind}] saved {path} ({path.stat().st_size / 1e6:.2f} MB) after {train_s:.0f} s; {json.dumps(info)}")
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
        arch = dict(models.EPS_UNET if kind == "eps" else models.FLOW_DIT) | args.arch
        train(kind, args.out, arch=arch, mix=args.mix, p_same=args.p_same, p_first_left=args.p_left, gain=args.gain, **r)


if __name__ == "__main__":
    main()
