"""Reproduces every frontier table and plot:

    .venv/bin/python -m benchmarks.frontier.run                 # both tasks, both model kinds
    .venv/bin/python -m benchmarks.frontier.run --quick         # CI smoke run (~2 min)
    .venv/bin/python -m benchmarks.frontier.run --tasks digits --kinds eps
    .venv/bin/python -m benchmarks.frontier.run --steps-frontier   # accuracy against evaluations over steps
    .venv/bin/python -m benchmarks.frontier.run --reanalyse        # tables and plots from the saved JSON

Writes benchmarks/results/frontier_<task>.{md,json,png} (quick: frontier_quick_*), and with
--steps-frontier frontier_steps_<task>.{md,json,png}."""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"


def boot():
    """A real ComfyUI booted in this process (tests/host.py), single-threaded and without progress bars,
    as every sampling run of these benchmarks uses it; returns ComfyUI's ``nodes`` module."""
    sys.path.insert(0, str(ROOT / "tests"))
    import host
    nodes = host.boot()
    import torch
    torch.set_num_threads(1)
    import comfy.utils
    comfy.utils.PROGRESS_BAR_ENABLED = False
    return nodes


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--tasks", nargs="+", default=["digits", "compositional"])
    ap.add_argument("--kinds", nargs="+", default=["eps", "flow"])
    ap.add_argument("--noises", type=int, help="noises per prompt (default per task)")
    ap.add_argument("--heldout", type=int, default=48, help="compositional: held-out prompts")
    ap.add_argument("--seen", type=int, default=24, help="compositional: seen prompts")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--methods-only", nargs="*", help="only method families whose name contains one of these")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--summary", action="store_true",
                    help="write frontier_summary.md (the README's verdict table) from the saved JSONs")
    ap.add_argument("--reanalyse", action="store_true",
                    help="rebuild the tables and plots from the saved JSON (no sampling)")
    ap.add_argument("--steps-frontier", action="store_true",
                    help="the shortened-trajectory frontier: accuracy against evaluations over step counts")
    ap.add_argument("--cfgs", nargs="+", type=float, help="--steps-frontier: only these cfgs (default per task)")
    args = ap.parse_args(argv)
    if args.reanalyse:
        return reanalyse(args)
    if args.steps_frontier:
        return steps_frontier(args, argv)
    if args.summary:
        from . import report
        from . import steps
        outs = [json.loads((args.out / f"frontier_{t}.json").read_text()) for t in args.tasks]
        text = report.summary(outs) + "\n" + report.headroom_summary(outs)
        souts = [json.loads(p.read_text()) for t in args.tasks if (p := args.out / f"frontier_steps_{t}.json").exists()]
        if souts:
            text += "\n" + steps.summary(souts)
        (args.out / "frontier_summary.md").write_text(text)
        print(text)
        return None
    command = "python -m benchmarks.frontier.run " + " ".join(argv if argv is not None else sys.argv[1:])
    nodes = boot()
    import torch
    from . import plan, report
    from .experiment import Config, Runner, to_json
    from .tasks import get_task

    for tname in args.tasks:
        spec = plan.TASKS[tname] | (plan.TASKS[tname]["quick"] if args.quick else {})
        task = get_task(tname)
        if tname == "compositional":
            held = task.prompts("heldout", 8 if args.quick else args.heldout)
            seen = task.prompts("seen", 4 if args.quick else args.seen)
            prompts = held + seen
            splits = {"heldout": list(range(len(held))), "seen": list(range(len(held), len(prompts)))}
        else:
            prompts = task.prompts()
            splits = {"all": list(range(len(prompts)))}
        t0 = time.perf_counter()
        out = {"meta": {"task": tname, "describe": task.describe(), "quick": args.quick, "seed": args.seed,
                        "noises": args.noises or spec["noises"], "steps": spec["steps"], "prompts": len(prompts),
                        "splits": {k: len(v) for k, v in splits.items()}, "torch": torch.__version__,
                        "machine": platform.machine(),
                        "command": command},
               "kinds": {}}
        for kind in args.kinds:
            runner = Runner(nodes, task, kind, args.noises or spec["noises"], spec["steps"], args.seed, prompts, splits)
            runs = []
            for cfg in spec["stock"]:
                runs.append(runner.run(Config(cfg)))
                print(f"[{tname}/{kind}] {runs[-1].config.label()}: {runs[-1].summary()}", flush=True)
            for cfg in spec["methods"]:
                if cfg not in spec["stock"]:
                    runs.append(runner.run(Config(cfg)))
                for c in plan.method_configs(cfg, args.quick, tname):
                    if args.methods_only and not any(s in c.method() for s in args.methods_only):
                        continue
                    runs.append(runner.run(c))
                    print(f"[{tname}/{kind}] {c.label()}: {runs[-1].summary()} ({runs[-1].wall:.1f} s)", flush=True)
            out["kinds"][kind] = {"command": command, "wall_s": round(time.perf_counter() - t0, 1),
                                  "split_rows": {k: (v[0], v[-1] + 1) for k, v in splits.items()},
                                  "runs": [to_json(r, splits) for r in runs],
                                  "analysis": report.analyse(runs, splits)}
            print(f"[{tname}/{kind}] done in {time.perf_counter() - t0:.0f} s", flush=True)
        out["meta"]["wall_s"] = round(time.perf_counter() - t0, 1)
        stem = f"frontier_quick_{tname}" if args.quick else f"frontier_{tname}"
        args.out.mkdir(parents=True, exist_ok=True)
        write(args.out / stem, out, report)


def steps_frontier(args, argv) -> None:
    """Runs every (cfg, model kind) section of plan.STEPS and rewrites the task's steps report after
    each one, so a long run can be read while it goes; a rerun of some cfgs / kinds merges into the
    sections already saved."""
    command = "python -m benchmarks.frontier.run " + " ".join(argv if argv is not None else sys.argv[1:])
    nodes = boot()
    import torch
    from . import plan, steps
    from .experiment import Config, Runner, to_json
    from .tasks import get_task

    for tname in args.tasks:
        spec = plan.STEPS[tname] | (plan.STEPS[tname]["quick"] if args.quick else {})
        task = get_task(tname)
        prompts = task.prompts("heldout", spec["heldout"]) if tname == "compositional" else task.prompts()
        split = "heldout" if tname == "compositional" else "all"
        noises = args.noises or spec["noises"]
        meta = {"task": tname, "quick": args.quick, "seed": args.seed, "noises": noises, "prompts": len(prompts),
                "split": split, "steps": spec["steps"], "method_steps": spec["method_steps"],
                "torch": torch.__version__, "command": command}
        stem = args.out / (f"frontier_quick_steps_{tname}" if args.quick else f"frontier_steps_{tname}")
        runners = {}
        for cfg in args.cfgs or spec["cfgs"]:
            for kind in args.kinds:
                if kind not in runners:
                    runners[kind] = Runner(nodes, task, kind, noises, max(spec["steps"]), args.seed, prompts)
                runner, t0, runs = runners[kind], time.perf_counter(), []
                configs = [Config(cfg, steps=s) for s in spec["steps"]]
                configs += [c for s in spec["method_steps"] for c in plan.steps_method_configs(cfg, s)]
                for c in configs:
                    runs.append(runner.run(c))
                    print(f"[steps {tname}/{kind}] {c.label()}: {runs[-1].summary()} evals {runs[-1].evals:g} "
                          f"({runs[-1].wall:.1f} s)", flush=True)
                section = {"kind": kind, "cfg": cfg, "command": command, "wall_s": round(time.perf_counter() - t0, 1),
                           "runs": [to_json(r, {split: list(range(len(prompts)))}) for r in runs]}
                section["analysis"] = steps.analyse(runs)
                args.out.mkdir(parents=True, exist_ok=True)
                steps.write(stem, meta, section)
                print(f"[steps {tname}/{kind}] cfg {cfg:g} done in {section['wall_s']:.0f} s", flush=True)


def reanalyse(args) -> None:
    from . import report
    from .experiment import from_json
    if args.steps_frontier:
        from . import steps
        for tname in args.tasks:
            stem = args.out / (f"frontier_quick_steps_{tname}" if args.quick else f"frontier_steps_{tname}")
            if stem.with_suffix(".json").exists():
                steps.reanalyse(stem)
        return
    for tname in args.tasks:
        stem = args.out / (f"frontier_quick_{tname}" if args.quick else f"frontier_{tname}")
        out = json.loads(stem.with_suffix(".json").read_text())
        for k in out["kinds"].values():
            splits = {name: list(range(*r)) for name, r in k.get("split_rows", {}).items()} or None
            runs = [from_json(r) for r in k["runs"]]
            if splits is None:
                splits = {"all": list(range(runs[0].ok["all"].shape[0]))}
            k["analysis"] = report.analyse(runs, splits)
        stem.with_suffix(".json").write_text(json.dumps(out, indent=1))
        stem.with_suffix(".md").write_text(report.markdown(out))
        report.plot(out, stem.with_suffix(".png"))
        print(f"re-analysed {stem}.md/.json/.png")


def write(stem: Path, out: dict, report) -> None:
    """Writes the task's .json/.md/.png. A run of some kinds only (e.g. one process per kind, to use
    every core) merges into the file the other kinds wrote, under a lock."""
    import fcntl
    with open(stem.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = stem.with_suffix(".json")
        if path.exists():
            old = json.loads(path.read_text())
            same = ("task", "quick", "seed", "noises", "steps", "prompts", "splits")
            if all(old["meta"].get(k) == out["meta"].get(k) for k in same):
                merged = old["kinds"] | out["kinds"]
                out["kinds"] = {k: merged[k] for k in ("eps", "flow") if k in merged}
        path.write_text(json.dumps(out, indent=1))
        stem.with_suffix(".md").write_text(report.markdown(out))
        report.plot(out, stem.with_suffix(".png"))
    stem.with_suffix(".lock").unlink(missing_ok=True)
    print(f"wrote {stem}.md/.json/.png")


if __name__ == "__main__":
    main()
