"""Which configurations each benchmark runs. Full mode sweeps stock over cfg and every method over
its knobs at a few cfgs; quick mode (CI) keeps a few of each so the whole pipeline runs in ~2 min."""
from __future__ import annotations

from .experiment import Config, sched

# Where each task's stock cfg sweep goes, and the cfgs the methods are tried at: a weak-guidance
# cfg where stock still misses, and the cfg the model is normally run at (its best stock cfg
# region), where the methods must do no harm.
TASKS = {
    "digits": {"stock": [0.5, 0.6, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 4.5, 6.0, 8.0], "methods": [0.5, 1.0, 3.0],
               "noises": 40, "steps": 20, "quick": {"stock": [0.5, 1.0], "methods": [0.5], "noises": 10, "steps": 10}},
    "compositional": {"stock": [1.0, 2.0, 3.0, 4.5, 6.0, 8.0, 12.0], "methods": [2.0, 4.5],
                      "noises": 8, "steps": 20, "quick": {"stock": [3.0, 6.0], "methods": [6.0], "noises": 4, "steps": 10}},
}

LATE = sched(probes=1, tau_min=0.6, tau_max=0.6)  # one probe where the noise's content shows (tau 0.6)


def method_configs(cfg: float, quick: bool, task: str = "digits") -> list:
    if quick:
        return [Config(cfg, erase=4), Config(cfg, inject=0.3), Config(cfg, inject=0.25, direction="prompt"),
                Config(cfg, candidates=4, schedule=LATE)]
    if task == "compositional":
        # Trimmed to the families the digits sweep left open (see frontier_digits.md): the 2-core
        # budget buys one pass over both compositional models. The full set at cfg 4.5 (around
        # stock's best cfg on held-out prompts: where users run a model), a short one at cfg 2.
        if cfg < 4:
            return [Config(cfg, inject=0.3), Config(cfg, inject=0.3, direction="prompt", schedule=LATE),
                    Config(cfg, candidates=4, schedule=LATE), Config(cfg, candidates=8, schedule=LATE)]
        out = [Config(cfg, erase=4)]
        out += [Config(cfg, inject=s) for s in (0.1, 0.3, 0.6, 1.0)]
        out += [Config(cfg, inject=0.3, schedule=sched(probes=1))]
        out += [Config(cfg, inject=s, direction="prompt", schedule=LATE) for s in (0.25, 0.5, 1.0)]
        out += [Config(cfg, candidates=m, schedule=LATE) for m in (2, 4, 8)]
        out += [Config(cfg, candidates=4)]
        out += [Config(cfg, candidates=4, inject=0.3, schedule=LATE),
                Config(cfg, candidates=4, inject=0.25, direction="prompt", schedule=LATE)]
        return out
    out = [Config(cfg, erase=n) for n in (2, 4, 8)]
    out += [Config(cfg, inject=s) for s in (0.1, 0.3, 0.6, 1.0)]
    out += [Config(cfg, inject=s, schedule=sched(probes=1)) for s in (0.3, 0.6)]
    out += [Config(cfg, inject=0.3, schedule=LATE)]
    out += [Config(cfg, inject=s, direction="prompt") for s in (0.1, 0.25, 0.5, 1.0)]
    out += [Config(cfg, inject=s, direction="prompt", schedule=LATE) for s in (0.25, 0.5, 1.0)]
    out += [Config(cfg, candidates=m) for m in (2, 4, 8)]
    out += [Config(cfg, candidates=m, schedule=LATE) for m in (2, 4, 8)]
    out += [Config(cfg, candidates=4, inject=0.3, schedule=LATE),
            Config(cfg, candidates=4, inject=0.25, direction="prompt", schedule=LATE)]
    return out


# The paper's "shortened trajectory" (issue 15 item 3): accuracy against total evaluations over the
# number of sampler steps, stock and the methods at the cfg users run (and a weaker one). Trimmed to
# what two shared cores buy: compositional on its held-out prompts only, and the methods at the short
# step counts only (at 20 steps a method already spends more than stock's 20 steps, so its point lies
# outside stock's range of evaluations; the 20-step points are in frontier_compositional.md); digits
# at its usual cfg 3 and at the weak cfg 0.5 where screening helped, with 20 noises instead of 40.
STEPS = {
    "compositional": {"cfgs": [4.5, 2.0], "steps": [4, 6, 8, 12, 20], "method_steps": [4, 6, 8, 12],
                      "noises": 8, "heldout": 48,
                      "quick": {"cfgs": [4.5], "steps": [4, 8], "method_steps": [4], "noises": 4, "heldout": 6}},
    "digits": {"cfgs": [3.0, 0.5], "steps": [4, 6, 8, 12, 20], "method_steps": [4, 6, 8, 12], "noises": 20,
               "quick": {"cfgs": [1.0], "steps": [4, 8], "method_steps": [4], "noises": 8}},
}


def steps_method_configs(cfg: float, steps: int) -> list:
    """The methods of the steps frontier: Erase at the paper's n = 4 (no extra evaluation), screening
    with 4 candidates and one late probe (+8 evaluations), the paper's Inject 0.3 with its five
    probes (+10)."""
    return [Config(cfg, erase=4, steps=steps), Config(cfg, candidates=4, schedule=LATE, steps=steps),
            Config(cfg, inject=0.3, steps=steps)]
