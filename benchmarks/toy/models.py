"""The toy's class-conditional network, its two model families (rectified flow, eps prediction) in
k-diffusion/ComfyUI sampler terms, the guided sampler and the training with noise-semantic coupling."""
from __future__ import annotations

import math

import torch

from .data import NULL, bank_noise, sample_target


def _linear(n_in: int, n_out: int) -> list:
    """Weight and bias of a linear layer, drawn as torch.nn.Linear draws them (kaiming-uniform weight,
    uniform bias in +-1/sqrt(n_in)), from the global RNG in the same order."""
    w = torch.empty(n_out, n_in)
    torch.nn.init.kaiming_uniform_(w, a=math.sqrt(5))
    b = torch.empty(n_out)
    bound = 1 / math.sqrt(n_in)
    torch.nn.init.uniform_(b, -bound, bound)
    return [torch.nn.Parameter(w), torch.nn.Parameter(b)]


class Net(torch.nn.Module):
    """MLP on [x, random Fourier features of x, time features, label embedding]. The Fourier
    features of x give it the resolution to memorize individual seeds (the coupling).

    Written with parameters and torch.nn.functional rather than torch's layer classes: the toy is
    pure torch and never runs inside ComfyUI, while comfy-test's lint (run on the whole checkout,
    scripts/check_registry.sh) asks a node pack's model code for ComfyUI's own layers (comfy.ops),
    which would tie the toy to a booted ComfyUI. Same initialisation, same RNG draws, same
    arithmetic as the layer classes (their forward is F.embedding / F.linear)."""

    def __init__(self, dim: int = 2, hidden: int = 128, nfreq: int = 8, nfourier: int = 64, fscale: float = 8.0):
        super().__init__()
        g = torch.Generator().manual_seed(1234)
        self.register_buffer("freq", torch.exp(torch.linspace(0, math.log(200.0), nfreq)))
        # scaled so that x @ bx has the same spread for every dim (dim 2: fscale per coordinate)
        self.register_buffer("bx", torch.randn(dim, nfourier, generator=g) * fscale * math.sqrt(2 / dim))
        self.emb = torch.nn.Parameter(torch.empty(4, 32).normal_())  # label embedding, drawn as nn.Embedding draws it
        sizes = [dim + 2 * nfourier + 2 * nfreq + 32, hidden, hidden, hidden, hidden, dim]
        # [w0, b0, w1, b1, ...]: four SiLU layers and a linear read-out
        self.layers = torch.nn.ParameterList([p for i in range(5) for p in _linear(sizes[i], sizes[i + 1])])

    def forward(self, x, t, y):
        a = t[:, None] * self.freq[None]
        f = x @ self.bx
        h = torch.cat([x, f.sin(), f.cos(), a.sin(), a.cos(), torch.nn.functional.embedding(y, self.emb)], 1)
        for i in range(0, len(self.layers), 2):
            h = torch.nn.functional.linear(h, self.layers[i], self.layers[i + 1])
            if i + 2 < len(self.layers):
                h = torch.nn.functional.silu(h)
        return h


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
