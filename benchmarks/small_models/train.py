"""The training loop of the project's small models (the digits demo, the compositional task), on the CPU.

It follows ComfyUI's own model_sampling conventions, so the real KSampler samples the result correctly:
the network is called through ``model_base.apply_model`` (which applies ``model_sampling.calculate_input``
and ``calculate_denoised``) at sigmas drawn from the model's own ``model_sampling.sigmas`` table, and the
loss is the usual epsilon / velocity MSE written in denoised form, ``((D - x0) / sigma)^2``:

* eps  (SD 1.5 class, discrete DDPM sigmas 0.029..14.6): ``x = x0 + sigma * eps``
  (``D = x - sigma * eps_pred``, so the loss is ``|eps_pred - eps|^2``);
* flow (FLUX-schnell class, sigma in (0, 1]): ``x = (1 - sigma) * x0 + sigma * eps``
  (``D = x - sigma * v_pred``, so the loss is ``|v_pred - (eps - x0)|^2``).

AdamW, gradients clipped to norm 1, a 100-step linear warm-up then a cosine down to 10 % of the rate;
the weights kept are an EMA of the parameters. Deterministic on a given machine for a given thread
count (seeded); other CPUs / thread counts may differ in the last bits.
"""
from __future__ import annotations

import contextlib
import copy
import math
import platform
import time
from typing import Callable

import torch


def warmup_cosine(steps: int, float32_cosine: bool = False) -> Callable[[int], float]:
    """The learning-rate factor at optimizer step i: 100-step warm-up, then cosine from 1 to 0.1.
    ``float32_cosine``: the cosine evaluated in float32 with pi as 3.14159265, as the digits demo's
    shipped weights were trained; kept so that a retrain reproduces them bit for bit."""
    if float32_cosine:
        return lambda i: min(1.0, (i + 1) / 100) * (
            0.1 + 0.9 * 0.5 * (1 + torch.cos(torch.tensor(i / steps * 3.14159265)).item()))
    return lambda i: min(1.0, (i + 1) / 100) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * i / steps)))


def fit(model, kind: str, batches: Callable, steps: int, lr: float, ema: float, seed: int, g: torch.Generator,
        float32_cosine: bool = False, log_every: int = 250) -> dict:
    """Train ``model`` (a model_base instance) in place; on return its diffusion model is the EMA.

    ``batches(g)`` -> ``(x0, cond)``: model-space latents [B, ...] and the keyword arguments of
    ``apply_model`` that condition them (``c_crossattn``, and ``y`` for FLUX's pooled vector), with the
    task's prompt dropout already applied. It may draw from ``g``; then the loop draws the sigmas and the
    noise from ``g``, in that order. Returns the run's facts for the weights' metadata."""
    torch.manual_seed(seed)
    sigmas = model.model_sampling.sigmas.float()  # ComfyUI's own table: 1000 discrete sigmas (eps) / (0, 1] (flow)
    net = model.diffusion_model
    net.train()
    model.requires_grad_(True)
    ema_net = copy.deepcopy(net).requires_grad_(False)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(steps, float32_cosine))
    t0 = time.perf_counter()
    losses = []
    for step in range(steps):
        x0, cond = batches(g)
        batch = x0.shape[0]
        sigma = sigmas[torch.randint(0, len(sigmas), (batch,), generator=g)]
        eps = torch.randn(x0.shape, generator=g)
        s4 = sigma.view(-1, 1, 1, 1)
        x = x0 + s4 * eps if kind == "eps" else (1.0 - s4) * x0 + s4 * eps
        # FLUX's blocks add residuals in place (inference code), which autograd refuses on tensors
        # it saved for backward: save copies instead (same gradients; the UNet needs none).
        with (torch.autograd.graph.saved_tensors_hooks(lambda t: t.clone(), lambda t: t) if kind == "flow"
              else contextlib.nullcontext()):
            denoised = model.apply_model(x, sigma, **cond)
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
    return dict(final_loss=round(sum(losses[-200:]) / len(losses[-200:]), 5), train_seconds=round(train_s, 1),
                torch=torch.__version__, threads=torch.get_num_threads(), machine=platform.machine())
