"""Retrain the two demo models (demo/models.py) on scikit-learn's 8x8 digits, on the CPU.

    .venv/bin/python demo/train.py                 # both models, the shipped recipe
    .venv/bin/python demo/train.py --kind flow     # one of them
    .venv/bin/python demo/train.py --out /tmp/x    # write somewhere else

The loop is the project's one training loop (benchmarks/small_models/train.py: ComfyUI's own
model_sampling conventions, so the real KSampler samples the result correctly). Class conditioning is a
frozen random embedding per class; 15% of the labels are dropped to the null class (10) so
classifier-free guidance works. Weights are an EMA of the parameters, stored as float16 safetensors
with the embeddings and the pixel standardization.

Deterministic on a given machine for a given thread count (seeded); other CPUs / thread counts
may differ in the last bits, hence slightly different weights.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # benchmarks/small_models


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
    from benchmarks.small_models import train as small_train
    dm = load_demo_models()
    images, labels = dm.load_digits()
    stats = dm.pixel_stats(images)
    x0_all = dm.encode(images, kind, stats)
    emb = dm.make_class_embeddings()
    config, model = dm.build(kind, seed=seed)
    n = len(x0_all)

    def batches(g):
        idx = torch.randint(0, n, (batch,), generator=g)
        cls = labels[idx].clone()
        cls[torch.rand(batch, generator=g) < p_uncond] = dm.NULL_CLASS
        cond = {"c_crossattn": emb["cond.context"][cls]}
        if kind == "flow":
            cond["y"] = emb["cond.pooled"][cls]
        return x0_all[idx], cond

    run = small_train.fit(model, kind, batches, steps, lr, ema, seed, torch.Generator().manual_seed(seed),
                          float32_cosine=True, log_every=log_every)
    info = dict(kind=kind, steps=steps, batch=batch, lr=lr, ema=ema, p_uncond=p_uncond, seed=seed,
                params=dm.count_params(model), comfy_class=type(config).__name__, **run)
    out.mkdir(parents=True, exist_ok=True)
    path = out / dm.WEIGHTS[kind].name
    dm.save(path, kind, model, emb, stats, info)
    print(f"[{kind}] saved {path} ({path.stat().st_size / 1e6:.2f} MB) after {run['train_seconds']:.0f} s; {json.dumps(info)}")
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
