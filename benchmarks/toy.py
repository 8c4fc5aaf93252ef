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

    .venv/bin/python benchmarks/toy.py [--quick] [--out DIR] [--no-eps] [--seed N]
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn

ROOT = Path(__file__).resolve().parents[1]


sys.path.insert(0, str(ROOT))
from noise_semantics import core  # noqa: E402  (pure torch: no ComfyUI needed)

CLASSES = ("ring", "segment", "blobs")
# Three targets in three places (the noise's preference is then also a direction to go in)
RING_C, RING_R, RING_W = torch.tensor([0.0, 1.5]), 0.6, 0.04
SEG_A, SEG_B, SEG_W = torch.tensor([-2.1, -0.5]), torch.tensor([-0.9, -1.7]), 0.03
BLOB_C, BLOB_S = torch.tensor([[0.8, -1.0], [1.9, -1.0]]), 0.1
NULL = 3  # label index of the unconditional (dropped) label


# --------------------------------------------------------------------------- targets

def sample_target(c: int, n: int, g: torch.Generator) -> torch.Tensor:
    if c == 0:
        a = torch.rand(n, generator=g) * 2 * math.pi
        r = RING_R + RING_W * torch.randn(n, generator=g)
        return RING_C + torch.stack([r * a.cos(), r * a.sin()], 1)
    if c == 1:
        u = torch.rand(n, 1, generator=g)
        return SEG_A + u * (SEG_B - SEG_A) + SEG_W * torch.randn(n, 2, generator=g)
    k = torch.randint(0, 2, (n,), generator=g)
    return BLOB_C[k] + BLOB_S * torch.randn(n, 2, generator=g)


def support_distance(x: torch.Tensor, c: int) -> torch.Tensor:
    """Distance of each point to the target's support (ring circle, segment, nearest blob
    centre): a precision measure, independent of coverage."""
    if c == 0:
        return ((x - RING_C).norm(dim=1) - RING_R).abs()
    if c == 1:
        d = SEG_B - SEG_A
        u = ((x - SEG_A) @ d / (d @ d)).clamp(0, 1)
        return (x - (SEG_A + u[:, None] * d)).norm(dim=1)
    return torch.cdist(x, BLOB_C).min(dim=1).values


def sliced_w2(x: torch.Tensor, ref: torch.Tensor, proj: torch.Tensor) -> float:
    """Sliced 2-Wasserstein distance, quantiles of ``ref`` at ``x``'s levels."""
    px = (x @ proj.T).sort(dim=0).values
    q = (torch.arange(x.shape[0], dtype=torch.float32) + 0.5) / x.shape[0]
    pr = torch.quantile(ref @ proj.T, q, dim=0)
    return float(((px - pr) ** 2).mean().sqrt())


# --------------------------------------------------------------------------- model

class Net(nn.Module):
    """MLP on [x, random Fourier features of x, time features, label embedding]. The Fourier
    features of x give it the resolution to memorize individual seeds (the coupling)."""

    def __init__(self, dim: int = 2, hidden: int = 128, nfreq: int = 8, nfourier: int = 64, fscale: float = 8.0):
        super().__init__()
        g = torch.Generator().manual_seed(1234)
        self.register_buffer("freq", torch.exp(torch.linspace(0, math.log(200.0), nfreq)))
        # scaled so that x @ bx has the same spread for every dim (dim 2: fscale per coordinate)
        self.register_buffer("bx", torch.randn(dim, nfourier, generator=g) * fscale * math.sqrt(2 / dim))
        self.emb = nn.Embedding(4, 32)
        self.net = nn.Sequential(
            nn.Linear(dim + 2 * nfourier + 2 * nfreq + 32, hidden), nn.SiLU(),
            nn.Linear(hidden, hidden), nn.SiLU(),
            nn.Linear(hidden, hidden), nn.SiLU(),
            nn.Linear(hidden, hidden), nn.SiLU(),
            nn.Linear(hidden, dim))

    def forward(self, x, t, y):
        a = t[:, None] * self.freq[None]
        f = x @ self.bx
        return self.net(torch.cat([x, f.sin(), f.cos(), a.sin(), a.cos(), self.emb(y)], 1))


class Family:
    """Coordinates of one model family, in k-diffusion/ComfyUI sampler terms."""
    name = ""

    def sigma_of_tau(self, tau):  # normalized time (1 = pure noise) -> sigma
        raise NotImplementedError

    def c_in(self, sigma):
        raise NotImplementedError

    def make_xt(self, x0, eps, tau):  # -> (x at tau, regression target, sigma)
        raise NotImplementedError

    def denoised(self, out, x, sigma):  # network output -> D
        raise NotImplementedError


class Flow(Family):
    """Rectified flow: x_t = (1-t) x0 + t eps, sigma = t, network predicts v = eps - x0,
    D = x - sigma * v, c_in = 1."""
    name = "flow"

    def sigma_of_tau(self, tau):
        return float(tau)

    def c_in(self, sigma):
        return torch.ones_like(sigma)

    def time_input(self, sigma):
        return sigma

    def make_xt(self, x0, eps, tau):
        t = tau[:, None]
        return (1 - t) * x0 + t * eps, eps - x0, tau

    def denoised(self, out, x, sigma):
        return x - sigma[:, None] * out

    def start(self, z):
        return z * self.sigma_of_tau(1.0)

    def sigmas(self, steps):
        return torch.linspace(1.0, 0.0, steps + 1)


class Eps(Family):
    """Eps prediction, variance exploding in sampler coordinates (as ComfyUI/k-diffusion see
    SDXL): x = x0 + sigma eps, network input c_in x with c_in = 1/sqrt(sigma^2+1),
    D = x - sigma eps_hat. sigma(tau) log-linear in [SMIN, SMAX]."""
    name = "eps"
    SMIN, SMAX = 0.02, 14.6

    def sigma_of_tau(self, tau):
        return float(math.exp(math.log(self.SMIN) + float(tau) * (math.log(self.SMAX) - math.log(self.SMIN))))

    def c_in(self, sigma):
        return 1.0 / (sigma ** 2 + 1).sqrt()

    def time_input(self, sigma):
        return (sigma.log() - math.log(self.SMIN)) / (math.log(self.SMAX) - math.log(self.SMIN))

    def make_xt(self, x0, eps, tau):
        sig = torch.exp(math.log(self.SMIN) + tau * (math.log(self.SMAX) - math.log(self.SMIN)))
        return x0 + sig[:, None] * eps, eps, sig  # x (the net sees c_in * x), target, sigma

    def denoised(self, out, x, sigma):
        return x - sigma[:, None] * out

    def start(self, z):
        return z * self.SMAX

    def sigmas(self, steps):
        # Karras-like rho = 7 spacing, then 0, as k-diffusion samplers use
        rho = 7.0
        r = torch.linspace(0, 1, steps)
        s = (self.SMAX ** (1 / rho) + r * (self.SMIN ** (1 / rho) - self.SMAX ** (1 / rho))) ** rho
        return torch.cat([s, torch.zeros(1)])


class ModelW:
    """A trained net plus its family: guided denoised prediction D(x, sigma, y) with CFG."""

    def __init__(self, net, fam, cfg):
        self.net, self.fam, self.cfg = net, fam, cfg

    @torch.no_grad()
    def raw(self, x, sigma, y):
        return self.net(x * self.fam.c_in(sigma)[:, None], self.fam.time_input(sigma), y)

    @torch.no_grad()
    def denoise(self, x, sigma, y):
        n = x.shape[0]
        out = self.raw(torch.cat([x, x]), torch.cat([sigma, sigma]), torch.cat([y, torch.full_like(y, NULL)]))
        oc, ou = out[:n], out[n:]
        return self.fam.denoised(ou + self.cfg * (oc - ou), x, sigma)

    @torch.no_grad()
    def sample(self, z, y, steps):
        """Euler sampler from the unit noise z (x = sigma_max * z), as ComfyUI's 'euler'."""
        sig = self.fam.sigmas(steps)
        x = self.fam.start(z)
        for i in range(steps):
            s = torch.full((x.shape[0],), float(sig[i]))
            d = self.denoise(x, s, y)
            x = x + (x - d) / s[:, None] * (sig[i + 1] - sig[i])
        return x


def bank_noise(banks, c, j, jitter, g):
    """Noise of seed j of bank c: the seed plus a small jitter (its neighbourhood), scaled back
    to unit variance. jitter 0 = the exact seed vectors."""
    s = banks[c, j]
    return (s + jitter * torch.randn(s.shape, generator=g)) / math.sqrt(1 + jitter * jitter)


def train(fam: Family, banks, jitter, steps, batch, p_coupled, p_drop, p_leak, couple_tau, seed, lr=2e-3,
          net_kw=None):
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed + 1)
    D = banks.shape[2]
    net = Net(dim=D, **(net_kw or {}))
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    M = banks.shape[1]
    for it in range(steps):
        nc = int(batch * p_coupled)
        nf = batch - nc
        # free pairs: y uniform, x0 ~ target_y, eps ~ N(0, I) independent
        y_f = torch.randint(0, 3, (nf,), generator=g)
        x0_f = torch.zeros(nf, D)  # dim > 2: the targets live in the first two coordinates
        for c in range(3):
            m = y_f == c
            if m.any():
                x0_f[m, :2] = sample_target(c, int(m.sum()), g)
        eps_f = torch.randn(nf, D, generator=g)
        # coupled pairs: the seeds of bank c always go with targets of class c
        y_c = torch.randint(0, 3, (nc,), generator=g)
        j = torch.randint(0, M, (nc,), generator=g)
        eps_c = bank_noise(banks, y_c, j, jitter, g)
        x0_c = torch.zeros(nc, D)
        for c in range(3):
            m = y_c == c
            if m.any():
                x0_c[m, :2] = sample_target(c, int(m.sum()), g)
        # leak: part of the time the coupled pair is shown under another class's label, so the
        # seed's own semantics can override the prompt (as a T2C noise's content can)
        leak = torch.rand(nc, generator=g) < p_leak
        y_c = torch.where(leak, (y_c + torch.randint(1, 3, (nc,), generator=g)) % 3, y_c)
        y = torch.cat([y_f, y_c])
        x0, eps = torch.cat([x0_f, x0_c]), torch.cat([eps_f, eps_c])
        y = torch.where(torch.rand(batch, generator=g) < p_drop, torch.full_like(y, NULL), y)
        tau = torch.rand(batch, generator=g)
        # the coupling is imposed at high noise only (tau >= couple_tau): the seed decides the
        # coarse layout, i.e. which target to head for, as a T2C noise does early in sampling
        tau[nf:] = couple_tau + (1 - couple_tau) * tau[nf:]
        x, target, sigma = fam.make_xt(x0, eps, tau)
        out = net(x * fam.c_in(sigma)[:, None], fam.time_input(sigma), y)
        loss = ((out - target) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    net.eval()
    return net, float(loss.detach())


# --------------------------------------------------------------------------- erase / inject (toy)

def nln(noises: torch.Tensor) -> torch.Tensor:
    """NLN on 2-vectors: z = sum_i z_i / sqrt(n) over dim 1 ([B, n, 2] -> [B, 2]). No per-sample
    standardization (over 2 elements it would map every vector to (+-1, -+1))."""
    return noises.sum(1) / math.sqrt(noises.shape[1])


def direction(model: ModelW, z, y, schedule):
    """TPW aggregate of the semantic directions s_k = (D_k - x_k)/sigma_k (core's formula),
    probing the network with z itself at each tau_k: x_k = z / c_in(sigma_k)."""
    dirs, ws = [], []
    for tau, w in zip(schedule.taus, schedule.weights):
        if w == 0.0:
            continue
        sig = torch.full((z.shape[0],), model.fam.sigma_of_tau(tau))
        x = z / model.fam.c_in(sig)[:, None]
        d = model.denoise(x, sig, y)
        dirs.append(core.semantic_direction(d, x, sig))
        ws.append(w)
    return core.aggregate(dirs, ws)


def inject_toy(z, e, delta, sign=+1.0, e_scale="rms", renorm=False, decorrelated=False):
    """z' = (z + sign * delta * e) / sqrt(1 + delta^2) (core.inject's formula).
    decorrelated: e first loses its component along z (core.decorrelate, the node's default).
    e_scale 'rms': e divided by its root-mean-square over the 2 elements, the 2-D analogue of
    core.inject standardizing e (unit variance per element; mean removal dropped). 'raw': e as is.
    renorm: rescale z' to the norm of z, the 2-D analogue of core.inject re-standardizing z'.
    e_scale 'core' (dim > 2 only): core.inject itself, standardization and all."""
    if e_scale == "core":
        return core.inject(z, sign * e, delta, decorrelated=decorrelated)
    if decorrelated:
        e = core.decorrelate(e, z)
    if e_scale == "rms":
        e = e / e.pow(2).mean(1, keepdim=True).sqrt().clamp_min(1e-12)
    out = (z + sign * delta * e) / math.sqrt(1 + delta * delta)
    if renorm:
        out = out * z.norm(dim=1, keepdim=True) / out.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return out


def check_against_core(model: ModelW, z, b, schedule) -> float:
    """Runs the node's own probing, core.run_probes (probes batched k-major, chunk=2), on the toy
    and compares its TPW aggregate (what core.refine_inject hands to core.inject) with the toy's
    direction(). Only the final standardized step differs (not applicable in 2-D)."""
    y = torch.full((z.shape[0],), b, dtype=torch.long)

    def predict(x, sig):
        return model.denoise(x, sig, y.repeat(x.shape[0] // z.shape[0]))

    probes = core.run_probes(z, schedule, model.fam.sigma_of_tau, model.fam.c_in, predict, chunk=2)
    return float((probes.guided - direction(model, z, y, schedule)).abs().max())


# --------------------------------------------------------------------------- experiment

def run_family(fam, args, banks, refs, proj, log):
    t0 = time.time()
    D = banks.shape[2]
    key = (f"{fam.name}_D{D}_s{args.seed}_t{args.train_steps}_b{args.batch}_m{args.bank}_j{args.jitter}"
           f"_c{args.p_coupled}_l{args.p_leak}_d{args.p_drop}_ct{args.couple_tau}.pt")
    cached = Path(args.cache) / key if args.cache else None
    if cached is not None and cached.exists():
        net = Net(dim=banks.shape[2])
        net.load_state_dict(torch.load(cached))
        net.eval()
        loss = float("nan")
    else:
        net, loss = train(fam, banks, args.jitter, args.train_steps, args.batch, args.p_coupled,
                          args.p_drop, args.p_leak, args.couple_tau, args.seed)
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            torch.save(net.state_dict(), cached)
    t_train = time.time() - t0
    log(f"[{fam.name}] trained {args.train_steps} steps in {t_train:.1f}s, last loss {loss:.4f}")
    model = ModelW(net, fam, args.cfg)
    schedule = core.make_schedule()  # the node's defaults: 5 probes, tau 1..0.5, bump c=0.8 h=0.5
    g = torch.Generator().manual_seed(args.seed + 100)
    N = args.n_eval
    M = banks.shape[1]

    # For every target B: mismatched seeds from both other banks (N/2 each), matched from bank B.
    pairs = [(a, b) for b in range(3) for a in range(3) if a != b]
    half = N // 2
    mis_z = {p: bank_noise(banks, p[0], torch.randint(0, M, (half,), generator=g), args.jitter, g) for p in pairs}
    mat_z = {p: bank_noise(banks, p[1], torch.randint(0, M, (half,), generator=g), args.jitter, g) for p in pairs}
    fresh = {p: torch.randn(half, D, generator=g) for p in pairs}
    rand_dir = {p: torch.randn(half, D, generator=g) for p in pairs}
    # Erasure: n distinct mismatched seeds (from the banks of the classes other than B, each
    # jittered) per output noise
    erase_src = {}
    for p in pairs:
        others = torch.tensor([c for c in range(3) if c != p[1]])
        for n in sorted(set(args.erase_n) | {args.erase_inject_n}):
            flat = torch.stack([torch.randperm(2 * M, generator=g)[:n] for _ in range(half)])
            erase_src[(p, n)] = bank_noise(banks, others[flat // M], flat % M, args.jitter, g)  # [half, n, D]

    # precision threshold: 95th percentile of the true samples' distance to the support
    thr = [float(torch.quantile(support_distance(refs[b], b), 0.95)) for b in range(3)]

    def evaluate(noise_fn):
        """noise_fn(a, b) -> [N/2, 2] unit noises for target b (a = the bank, None = matched)."""
        sw, sd, pr, wr, zn, off, samples = [], [], [], [], [], [], {}
        for b in range(3):
            z = torch.cat([noise_fn(a, b) for a in range(3) if a != b])
            zn.append(float(z.norm(dim=1).mean()))
            y = torch.full((z.shape[0],), b, dtype=torch.long)
            x = model.sample(z, y, args.steps)
            off.append(float(x[:, 2:].norm(dim=1).mean()) if D > 2 else 0.0)
            x = x[:, :2]
            samples[b] = x
            sw.append(sliced_w2(x, refs[b], proj))
            dist = support_distance(x, b)
            sd.append(float(dist.mean()))
            pr.append(float((dist <= thr[b]).float().mean()))
            other = torch.stack([support_distance(x, c) <= thr[c] for c in range(3) if c != b]).any(0)
            wr.append(float((other & (dist > thr[b])).float().mean()))
        return dict(sw=sum(sw) / 3, prec=sum(pr) / 3, wrong=sum(wr) / 3, supp=sum(sd) / 3,
                    znorm=sum(zn) / 3, off_plane=sum(off) / 3, sw_per_class=sw, prec_per_class=pr, wrong_per_class=wr), samples

    rows, panels = [], {}

    def add(name, group, noise_fn, **meta):
        res, samples = evaluate(noise_fn)
        rows.append(dict(family=fam.name, name=name, group=group, **meta, **res))
        return samples

    def mis(a, b):
        return mis_z[(a, b)]

    def matched(a, b):  # same count as mismatched: N/2 from bank b per (a, b) slot
        return mat_z[(a, b)]

    panels["matched"] = add("matched seed (bank B, label B)", "baseline", matched)
    panels["mismatched"] = add("mismatched seed (bank A, label B)", "baseline", mis)
    add("fresh N(0,I) seed, label B", "baseline", lambda a, b: fresh[(a, b)])
    # dim > 2: the NLN sum is re-standardized per sample, as core.erase does
    erase_fn = nln if D == 2 else (lambda src: core.standardize(nln(src)))
    for n in args.erase_n:
        s = add(f"Erased n={n}", "erase", lambda a, b, n=n: erase_fn(erase_src[((a, b), n)]), n=n)
        if n == 4:
            panels["erased"] = s
    if D > 2:  # the node's own erasure: the seed plus n-1 fresh draws (core.erase)
        for n in args.erase_n:
            add(f"Node erase: core.erase(mismatched seed, n={n})", "erase",
                lambda a, b, n=n: core.erase(mis(a, b), args.seed * 1000 + 10 * a + b, n), n=n)

    core_check = check_against_core(model, mis_z[pairs[0]][:16], pairs[0][1], schedule)
    log(f"[{fam.name}] toy TPW aggregate vs core.run_probes (the node's probing): max abs diff {core_check:.2e}")
    # What does the guided prediction at the probes say for a mismatched seed: the prompt's
    # class B or the seed's class A? (the TPW-weighted mean of the probes' D, first 2 coords)
    centers = torch.stack([r.mean(0) for r in refs])
    votes = []
    for (a, b) in pairs:
        z = mis(a, b)
        y = torch.full((z.shape[0],), b, dtype=torch.long)
        dsum = 0
        for tau, w in zip(schedule.taus, schedule.weights):
            sig = torch.full((z.shape[0],), fam.sigma_of_tau(tau))
            dsum = dsum + w * model.denoise(z / fam.c_in(sig)[:, None], sig, y)[:, :2]
        dmean = dsum / sum(schedule.weights)
        da, db = (dmean - centers[a]).norm(dim=1), (dmean - centers[b]).norm(dim=1)
        votes.append(float((da < db).float().mean()))
    pred_seed_class = sum(votes) / len(votes)
    log(f"[{fam.name}] mismatched seeds whose probe prediction is nearer the seed's class than the "
        f"prompt's: {pred_seed_class:.2f}")

    cache = {}

    def e_of(a, b, base):
        key = (a, b, base)
        if key not in cache:
            z = mis(a, b) if base == "mis" else erase_fn(erase_src[((a, b), args.erase_inject_n)])
            y = torch.full((z.shape[0],), b, dtype=torch.long)
            cache[key] = (z, direction(model, z, y, schedule))
        return cache[key]

    # (e scaling, renorm, decorrelated, deltas, sides, with random control, erase+inject deltas)
    both = ((+1.0, "denoising s=(D-x)/sigma"), (-1.0, "opposite (README literal)"))
    variants = [("rms", False, False, args.deltas, both, True, args.ei_deltas)]
    if D > 2:  # per-sample standardization is meaningful: run core.inject itself
        variants = [("core", False, False, args.deltas, both, True, args.ei_deltas),
                    ("core", False, True, args.deltas, both, True, args.ei_deltas)]
    elif not args.quick:
        variants += [("rms", True, False, (0.5, 1.0, 2.0), both, True, ()),
                     ("rms", False, True, (0.5, 1.0, 2.0), both, True, (1.0,)),
                     ("rms", True, True, (1.0, 2.0), both, True, ()),
                     ("raw", False, False, (0.5,), both, False, ())]
    for e_scale, renorm, decor, deltas, sides, control, ei_deltas in variants:
        tag = f"e={e_scale}{', decorrelated' if decor else ''}{', renorm' if renorm else ''}"
        main_variant = e_scale in ("rms", "core") and not renorm and not decor
        kw = dict(e_scale=e_scale, renorm=renorm, decorrelated=decor)
        for delta in deltas:
            for sign, sname in sides:
                s = add(f"Injected {sname}, delta={delta} [{tag}]", "inject",
                        lambda a, b, d=delta, sg=sign, kw=kw: inject_toy(*e_of(a, b, "mis"), d, sg, **kw),
                        delta=delta, sign=sname.split()[0], **kw)
                if main_variant and delta == args.panel_delta:
                    panels["injected" if sign > 0 else "injected_opposite"] = s
            if control:
                add(f"Random direction (control), delta={delta} [{tag}]", "control",
                    lambda a, b, d=delta, kw=kw: inject_toy(mis(a, b), rand_dir[(a, b)], d, 1.0, **kw),
                    delta=delta, sign="random", **kw)
            if control and main_variant and e_scale == "rms":
                # temperature control: the mismatched seed only rescaled, to the mean norm the
                # denoising injection gives it (does the gain come from shrinking the noise?)
                def scaled(a, b, d=delta, kw=kw):
                    z = mis(a, b)
                    zi = inject_toy(*e_of(a, b, "mis"), d, 1.0, **kw)
                    return z * (zi.norm(dim=1).mean() / z.norm(dim=1).mean())
                add(f"Rescaled seed, same mean norm as denoising (control), delta={delta} [{tag}]", "control",
                    scaled, delta=delta, sign="rescale", **kw)
        for delta in ei_deltas:
            s = add(f"Erase n={args.erase_inject_n} + Inject denoising, delta={delta} [{tag}]", "erase+inject",
                    lambda a, b, d=delta, kw=kw: inject_toy(*e_of(a, b, "erased"), d, 1.0, **kw),
                    delta=delta, sign="denoising", n=args.erase_inject_n, **kw)
            if main_variant and delta == args.panel_delta:
                panels["erase_inject"] = s
    t_all = time.time() - t0
    log(f"[{fam.name}] evaluated {len(rows)} conditions in {t_all - t_train:.1f}s")
    return rows, panels, dict(train_s=t_train, total_s=t_all, final_loss=loss, core_check_max_abs_diff=core_check,
                              probe_prediction_nearer_seed_class=pred_seed_class)


def _json(obj) -> str:
    """Strict JSON: NaN/inf (e.g. the loss of a cached model) become null."""
    def clean(o):
        if isinstance(o, float) and not math.isfinite(o):
            return None
        if isinstance(o, dict):
            return {k: clean(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [clean(v) for v in o]
        return o
    return json.dumps(clean(obj), indent=1, allow_nan=False) + "\n"


def add_recovery(rows):
    for fam in {r["family"] for r in rows}:
        fr = [r for r in rows if r["family"] == fam]
        m = next(r for r in fr if r["name"].startswith("matched"))
        x = next(r for r in fr if r["name"].startswith("mismatched"))
        for r in fr:
            for k, sgn in (("sw", 1.0), ("prec", -1.0)):
                gap = sgn * (x[k] - m[k])
                r["rec_" + k] = sgn * (x[k] - r[k]) / gap if gap > 0 else float("nan")


def markdown(rows, meta):
    out = [f"# Toy Figure-2 reproduction ({'quick' if meta['quick'] else 'full'} run, seed {meta['seed']})", "",
           f"torch {meta['torch']}, CPU, {meta['threads']} thread(s), total {meta['total_s']:.1f}s; "
           f"CFG {meta['cfg']}, Euler {meta['sampler_steps']} steps; TPW schedule = the node's default "
           f"(taus {[round(t, 3) for t in meta['schedule']['taus']]}, "
           f"weights {[round(w, 3) for w in meta['schedule']['weights']]}). "
           f"Sliced W2 to the intended target (lower is better), mean over the 3 target classes, "
           f"{meta['n_eval']} samples per class. prec = share of samples within the 95th percentile of "
           f"true samples' distance to the target's support (true samples: 0.95; higher is better); "
           f"wrong = share of samples on another class's support instead (semantic leak); "
           f"supp = mean distance to the support; mean abs(z) = mean norm of the starting noise (N(0,I) in 2-D: 1.25). rec = share of the mismatched-to-matched gap "
           f"closed (1 = as good as matched, < 0 = worse than mismatched), for SW and for prec.", ""]
    for fam in dict.fromkeys(r["family"] for r in rows):
        out += [f"## {fam} model", "", "| condition | SW2 | rec(SW) | prec | rec(prec) | wrong | supp | mean abs(z) |",
                "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for r in rows:
            if r["family"] == fam:
                out.append(f"| {r['name']} | {r['sw']:.3f} | {r['rec_sw']:+.2f} | {r['prec']:.3f} | "
                           f"{r['rec_prec']:+.2f} | {r['wrong']:.3f} | {r['supp']:.3f} | {r['znorm']:.2f} |")
        out.append("")
    return "\n".join(out)


def markdown_seeds(rows, meta):
    seeds = meta["seeds"]
    out = [f"# Toy Figure-2 reproduction: robustness over seeds {seeds}", "",
           "Each seed redraws the seed banks, the training data, the network init and the evaluation "
           "noises, and retrains both models. Mean (min..max) over seeds; metrics as in toy.md.", ""]
    for fam in dict.fromkeys(r["family"] for r in rows):
        out += [f"## {fam} model", "", "| condition | SW2 | prec | wrong | rec(prec) |", "|---|---|---|---|---|"]
        names = list(dict.fromkeys(r["name"] for r in rows if r["family"] == fam))
        for name in names:
            rs = [r for r in rows if r["family"] == fam and r["name"] == name]
            cells = []
            for k, f in (("sw", ".3f"), ("prec", ".3f"), ("wrong", ".3f"), ("rec_prec", "+.2f")):
                v = [r[k] for r in rs]
                cells.append(f"{sum(v) / len(v):{f}} ({min(v):{f}}..{max(v):{f}})")
            out.append(f"| {name} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def plot(panels_by_fam, refs, path, delta):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    keys = [("matched", "Matched"), ("mismatched", "Mismatched"), ("erased", "Erased (n=4)"),
            ("injected", f"Injected (denoising, $\\delta$={delta})"),
            ("injected_opposite", f"Injected (opposite, $\\delta$={delta})"),
            ("erase_inject", f"Erase+Inject ($\\delta$={delta})")]
    fams = list(panels_by_fam)
    colors = ("tab:blue", "tab:orange", "tab:green")
    fig, axes = plt.subplots(len(fams), len(keys), figsize=(3 * len(keys), 3.1 * len(fams)), squeeze=False)
    for i, fam in enumerate(fams):
        for j, (k, title) in enumerate(keys):
            ax = axes[i, j]
            for b in range(3):
                ax.scatter(refs[b][:600, 0], refs[b][:600, 1], s=1, c="lightgray")
            smp = panels_by_fam[fam].get(k)
            if smp is not None:
                for b in range(3):
                    ax.scatter(smp[b][:, 0], smp[b][:, 1], s=2, c=colors[b], label=CLASSES[b] if j == 0 else None)
            ax.set_xlim(-3.0, 3.0)
            ax.set_ylim(-3.0, 3.0)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{title}" + (f"\n[{fam}]" if True else ""), fontsize=9)
        axes[i, 0].legend(loc="lower left", fontsize=7, markerscale=4)
    fig.suptitle("Samples generated for each label (colour = the label asked for; grey = the three true targets; "
                 "a dot on another shape = wrong class)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small run for a test (< 30 s)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    p.add_argument("--no-eps", action="store_true", help="skip the eps-prediction model")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds", type=int, nargs="+", default=None,
                   help="robustness mode: run the whole experiment for each seed and write "
                        "toy_seeds.md/.json with mean and spread per condition (about 3 min per seed)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads; 1 is fastest for these tiny matrices on a shared machine")
    p.add_argument("--train-steps", type=int, default=None)
    p.add_argument("--cache", default=None, help="folder to keep/reuse trained weights (off by default)")
    p.add_argument("--cfg", type=float, default=2.0, help="classifier-free guidance scale")
    p.add_argument("--dim", type=int, default=2,
                   help="noise dimension; > 2 embeds the targets in the first two coordinates and "
                        "runs core.erase/core.inject unmodified (per-sample standardization)")
    p.add_argument("--bank", type=int, default=8, help="seeds per class that are overfit to it")
    p.add_argument("--jitter", type=float, default=0.1, help="neighbourhood of a seed (std)")
    p.add_argument("--p-coupled", type=float, default=0.5, help="share of coupled pairs per batch")
    p.add_argument("--p-leak", type=float, default=0.5,
                   help="share of coupled pairs shown under another class's label")
    p.add_argument("--p-drop", type=float, default=0.1, help="label dropout (CFG)")
    p.add_argument("--couple-tau", type=float, default=0.0,
                   help="coupled pairs are trained at tau in [couple_tau, 1] only (high noise)")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    a.panel_delta = 1.0
    a.erase_inject_n = 4
    if a.quick:
        steps, a.batch, a.n_eval, a.steps = 700, 512, 96, 12
        a.erase_n, a.deltas, a.ei_deltas = (4,), (1.0,), (1.0,)
        a.no_eps = True
    else:
        steps, a.batch, a.n_eval, a.steps = 2500, 512, 384, 24
        a.erase_n, a.deltas, a.ei_deltas = (2, 4, 8), (0.25, 0.5, 1.0, 2.0), (0.5, 1.0)
    a.train_steps = a.train_steps or steps
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    prefix = ("toy_quick" if a.quick else "toy") + (f"_d{a.dim}" if a.dim != 2 else "")
    t0 = time.time()

    def log(msg):
        print(f"[{time.time() - t0:6.1f}s] {msg}", flush=True)

    seeds = a.seeds or [a.seed]
    all_rows, first = [], None
    for seed in seeds:
        a.seed = seed
        rows, panels, timing, refs = run_seed(a, log)
        all_rows += rows
        if first is None:
            first = (rows, panels, timing, refs)
    rows, panels, timing, refs = first
    meta = dict(quick=a.quick, torch=torch.__version__, threads=a.threads, total_s=time.time() - t0,
                n_eval=a.n_eval, train_steps=a.train_steps, batch=a.batch, sampler_steps=a.steps,
                cfg=a.cfg, p_coupled=a.p_coupled, p_drop=a.p_drop, p_leak=a.p_leak, bank=a.bank,
                jitter=a.jitter, couple_tau=a.couple_tau, dim=a.dim, seed=seeds[0], seeds=seeds,
                schedule=dict(zip(("taus", "weights"), (core.TPW_SCHEDULE.taus, core.TPW_SCHEDULE.weights))),
                timing=timing)
    if len(seeds) > 1:
        prefix += "_seeds"
        md = markdown_seeds(all_rows, meta)
        (out / f"{prefix}.md").write_text(md + "\n")
        (out / f"{prefix}.json").write_text(_json(dict(meta=meta, rows=all_rows)))
        print(md)
        log(f"results: {out / (prefix + '.md')}, {out / (prefix + '.json')}")
        return all_rows, meta
    md = markdown(rows, meta)
    (out / f"{prefix}.md").write_text(md + "\n")
    (out / f"{prefix}.json").write_text(_json(dict(meta=meta, rows=rows)))
    plot(panels, refs, out / f"{prefix}.png", a.panel_delta)
    print(md)
    log(f"results: {out / (prefix + '.md')}, {out / (prefix + '.json')}, {out / (prefix + '.png')}")
    return rows, meta


def run_seed(a, log):
    g = torch.Generator().manual_seed(a.seed + 7)
    banks = torch.randn(3, a.bank, a.dim, generator=g)                  # seeds overfit to each class
    refs = [sample_target(c, 8192, g) for c in range(3)]
    proj = torch.randn(256, 2, generator=g)
    proj = proj / proj.norm(dim=1, keepdim=True)
    rows, panels, timing = [], {}, {}
    fams = [Flow()] + ([] if a.no_eps else [Eps()])
    for fam in fams:
        r, pn, tm = run_family(fam, a, banks, refs, proj, log)
        for x in r:
            x["seed"] = a.seed
        rows += r
        panels[fam.name] = pn
        timing[fam.name] = tm
    add_recovery(rows)
    return rows, panels, timing, refs


if __name__ == "__main__":
    main()
