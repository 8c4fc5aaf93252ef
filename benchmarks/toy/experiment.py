"""One model family, one seed: train (or reuse) the model, then sample every condition (matched,
mismatched, fresh, erased, injected both signs, controls, erase+inject) and score it."""
from __future__ import annotations

import time
from pathlib import Path

import torch

from noise_semantics import core

from .data import bank_noise, sample_target
from .judge import sliced_w2, support_distance
from .methods import check_against_core, direction, inject_toy, nln
from .models import Eps, Flow, ModelW, Net, train


def run_family(fam, args, banks, refs, proj, log):
    t0 = time.time()
    D = banks.shape[2]
    key = (f"{fam.name}_D{D}_s{args.seed}_t{args.train_steps}_b{args.batch}_m{args.bank}_j{args.jitter}"
           f"_c{args.p_coupled}_l{args.p_leak}_d{args.p_drop}_ct{args.couple_tau}.safetensors")
    cached = Path(args.cache) / key if args.cache else None
    if cached is not None:
        import safetensors.torch  # only for the optional cache: the toy itself is pure torch
    if cached is not None and cached.exists():
        net = Net(dim=banks.shape[2])
        net.load_state_dict(safetensors.torch.load_file(str(cached)))
        net.eval()
        loss = float("nan")
    else:
        net, loss = train(fam, banks, args.jitter, args.train_steps, args.batch, args.p_coupled,
                          args.p_drop, args.p_leak, args.couple_tau, args.seed)
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            safetensors.torch.save_file(net.state_dict(), str(cached))
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

def add_recovery(rows):
    for fam in {r["family"] for r in rows}:
        fr = [r for r in rows if r["family"] == fam]
        m = next(r for r in fr if r["name"].startswith("matched"))
        x = next(r for r in fr if r["name"].startswith("mismatched"))
        for r in fr:
            for k, sgn in (("sw", 1.0), ("prec", -1.0)):
                gap = sgn * (x[k] - m[k])
                r["rec_" + k] = sgn * (x[k] - r[k]) / gap if gap > 0 else float("nan")

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
