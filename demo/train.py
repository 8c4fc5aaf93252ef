"""Retrain the two demo models (demo/models.py) on scikit-learn's 8x8 digits, on the CPU.

    .venv/bin/python demo/train.py                 # both models, the shipped recipe
    .venv/bin/python demo/train.py --kind flow     # one of them
    .venv/bin/python demo/train.py --out /tmp/x    # write somewhere else

Training follows ComfyUI's own model_sampling conventions, so the real KSampler samples the
result correctly: the network is called through ``model_base.apply_model`` (which applies
``model_sampling.calculate_input`` and ``calculate_denoised``) at sigmas drawn from the model's
own ``model_sampling.sigmas`` table, and the loss is the usual epsilon / velocity MSE written in
denoised form, ``((D - x0) / sigma)^2``:

* eps  (SD 1.5 class, discrete DDPM sigmas 0.029..14.6): ``x = x0 + sigma * eps``
  (``D = x - sigma * eps_pred``, so the loss is ``|eps_pred - eps|^2``);
* flow (FLUX-schnell class, sigma in (0, 1]): ``x = (1 - sigma) * x0 + sigma * eps``
  (``D = x - sigma * v_pred``, so the loss is ``|v_pred - (eps - x0)|^2``).

Class conditioning is a frozen random embedding per class; 15% of the labels are dropped to the
null class (10) so classifier-free guidance works. Weights are an EMA of the parameters, stored
as float16 safetensors with the embeddings and the pixel standardization.

Deterministic on a given machine for a given thread count (seeded); other CPUs / thread counts
may differ in the last bits, hence slightly different weights.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import importlib.util
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def load_demo_models():
    """demo/models.py under a unique module name (ComfyUI's own tree has a 'models' folder)."""
    name = "noise_semantics_demo_models"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "demo" / "models.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


RECIPE = {
    "eps": dict(steps=1500, batch=128, lr=2e-3, ema=0.995, p_uncond=0.15, seed=0),
    "flow": dict(steps=2000, batch=128, lr=2e-3, ema=0.995, p_uncond=0.15, seed=0),
}


def train(kind: str, out: Path, steps: int, batch: int, lr: float, ema: float, p_uncond: float, seed: int,
          log_every: int = 250) -> dict:
    import torch
    dm = load_demo_models()
    torch.manual_seed(seed)
    images, labels = dm.load_digits()
    stats = dm.pixel_stats(images)
    x0_all = dm.encode(images, kind, stats)
    emb = dm.make_class_embeddings()
    config, model = dm.build(kind, seed=seed)
    ms = model.model_sampling
    sigmas = ms.sigmas.float()  # ComfyUI's own table: 1000 discrete sigmas (eps) / (0, 1] (flow)
    net = model.diffusion_model
    net.train()
    model.requires_grad_(True)
    ema_net = copy.deepcopy(net).requires_grad_(False)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: min(1.0, (i + 1) / 100) * (0.1 + 0.9 * 0.5 * (1 + torch.cos(torch.tensor(i / steps * 3.14159265)).item())))
    g = torch.Generator().manual_seed(seed)
    n = len(x0_all)
    t0 = time.perf_counter()
    losses = []
    for step in range(steps):
        idx = torch.randint(0, n, (batch,), generator=g)
        x0 = x0_all[idx]
        cls = labels[idx].clone()
        cls[torch.rand(batch, generator=g) < p_uncond] = dm.NULL_CLASS
        sigma = sigmas[torch.randint(0, len(sigmas), (batch,), generator=g)]
        eps = torch.randn(x0.shape, generator=g)
        s4 = sigma.view(-1, 1, 1, 1)
        x = x0 + s4 * eps if kind == "eps" else (1.0 - s4) * x0 + s4 * eps
        kw = {"y": emb["cond.pooled"][cls]} if kind == "flow" else {}
        # FLUX's blocks add residuals in place (inference code), which autograd refuses on tensors
        # it saved for backward: save copies instead (same gradients; the UNet needs none).
        with (torch.autograd.graph.saved_tensors_hooks(lambda t: t.clone(), lambda t: t) if kind == "flow"
              else contextlib.nullcontext()):
            denoised = model.apply_model(x, sigma, c_crossattn=emb["cond.context"][cls], **kw)
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
                final_loss=round(sum(losses[-200:]) / len(losses[-200:]), 5), train_seconds=round(train_s, 1),
                params=dm.count_params(model), comfy_class=type(config).__name__,
                torch=torch.__version__, threads=torch.get_num_threads(), machine=platform.machine())
    out.mkdir(parents=True, exist_ok=True)
    path = out / dm.WEIGHTS[kind].name
    dm.save(path, kind, model, emb, stats, info)
    print(f"[{kind}] saved {path} ({path.stat().st_size / 1e6:.2f} MB) after {train_s:.0f} s; {json.dumps(info)}")
    return info


def quick_check(kind: str, out: Path, n_per_class: int = 20, steps: int = 12, cfg: float = 3.0) -> None:
    """Sample every class through the real nodes.common_ksampler and score with the judge."""
    import torch
    import nodes
    dm = load_demo_models()
    patcher, emb = dm.load(kind, out / dm.WEIGHTS[kind].name)
    clf, held = dm.train_classifier()
    classes = [c for c in range(10) for _ in range(n_per_class)]
    pos = dm.conditioning(emb, kind, classes)
    neg = dm.conditioning(emb, kind, dm.NULL_CLASS)
    lat = {"samples": dm.empty_latent(kind, len(classes))}
    sampler, scheduler = "euler", ("normal" if kind == "eps" else "simple")
    for c in (cfg, 1.0):
        res = nodes.common_ksampler(patcher, 0, steps, c, sampler, scheduler, pos, neg, lat)[0]["samples"]
        pred, _ = dm.classify(clf, dm.decode(patcher, res))
        acc = float((torch.as_tensor(pred) == torch.as_tensor(classes)).float().mean())
        print(f"[{kind}] cfg {c}: class accuracy {acc:.3f} over {len(classes)} samples "
              f"(judge held-out accuracy on real digits {held:.3f})")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", choices=["eps", "flow", "both"], default="both")
    ap.add_argument("--out", type=Path, default=ROOT / "demo")
    ap.add_argument("--steps", type=int, help="override the recipe's optimizer steps")
    ap.add_argument("--batch", type=int, help="override the recipe's batch size")
    ap.add_argument("--lr", type=float)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads; 1 is much faster than 2 on a busy shared machine")
    ap.add_argument("--no-check", action="store_true", help="skip the sampling check after training")
    args = ap.parse_args(argv)
    import host
    host.boot()
    import torch
    torch.set_num_threads(args.threads)
    kinds = ["eps", "flow"] if args.kind == "both" else [args.kind]
    for kind in kinds:
        r = dict(RECIPE[kind])
        for k in ("steps", "batch", "lr"):
            if getattr(args, k) is not None:
                r[k] = getattr(args, k)
        train(kind, args.out, **r)
        if not args.no_check:
            with torch.inference_mode():
                quick_check(kind, args.out)


if __name__ == "__main__":
    main()
