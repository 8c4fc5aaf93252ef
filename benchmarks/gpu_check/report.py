"""benchmarks/results/gpu_check*.{md,json}: per family, the modes' wall times and their parts, the
overheads next to what the extra evaluations predict, the memory rounds and the torch.compile round."""
from __future__ import annotations

import json
import time
from pathlib import Path

PCT = lambda v: f"{100 * v:+.0f} %"


def family_md(fam: dict) -> list:
    st = fam["stock"]
    peak = lambda v: "-" if v is None else f"{v:.2f}"
    lines = [f"## {fam['title']}", "",
             f"{fam['params'] / 1e6:,.0f} M parameters, {fam['dtype']}, latent {tuple(fam['latent'])}, "
             f"{fam['steps']} steps {fam['sampler']}/{fam['scheduler']}, cfg {fam['cfg']:g}.", "",
             "| mode | wall s | x stock | set-up s | probes s | sampling s | finish s | evals/image | extra evals "
             "| probe calls | peak GiB | noise |", "|---|---|---|---|---|---|---|---|---|---|---|---|",
             f"| stock | {st['wall_s']:.3f} | 1.00 | {st['setup_s']:.3f} | - | {st['sampling_s']:.3f} | "
             f"{st['finish_s']:.3f} | {st['evals']:.0f} | 0 | 0 | {peak(st['peak_gib'])} | float32 |"]
    for name, r in fam["runs"].items():
        lines.append(f"| {name} | {r['wall_s']:.3f} | {r['ratio']:.2f} | {r['setup_s']:.3f} | {r['probes_s']:.3f} | "
                     f"{r['sampling_s']:.3f} | {r['finish_s']:.3f} | {r['evals']:.0f} | {r['extra_evals']:.0f} | "
                     f"{r['probe_calls']} | {peak(r['peak_gib'])} | "
                     f"{r['noise_dtype'].replace('torch.', '')}{'' if r['finite'] else ' NOT FINITE'} |")
    lines += ["", "Overheads as shares of stock's wall time: what the extra evaluations predict (at stock's cost per "
                  "evaluation while sampling), what the wall time shows, and part by part. A part that costs more "
                  "than its evaluations is where the time goes.", "",
              "| mode | evals predict | wall shows | probes (wall) | probes (their evals) | set-up | sampling after "
              "the probes | finish | first step vs stock's |", "|---|---|---|---|---|---|---|---|---|"]
    for name, r in fam["runs"].items():
        o = r["overhead"]
        lines.append(f"| {name} | {PCT(o['evals'])} | {PCT(o['wall'])} | {PCT(o['probes_wall'])} | "
                     f"{PCT(o['probes_evals'])} | {PCT(o['setup'])} | {PCT(o['sampling'])} | {PCT(o['finish'])} | "
                     f"{PCT(o['first_step'])} |")
    ch = fam["chunk"]
    lines += ["", "Probe batch estimate (ComfyUI's memory_required x 1.5 is what must fit): "
                  + ", ".join(f"{c} probe(s) {v * 1.5:.2f} GiB" for c, v in ch["need_gib"].items())
                  + f"; free {ch['free_gib']:.2f} GiB, reserved {ch['reserved_gib']:.2f} GiB: "
                    f"5 probes in calls of {ch['chunk_now']}."]
    rc = fam.get("reserve_check")
    if rc and "error" in rc:
        lines.append(f"Chunking under --reserve-vram {rc['reserve_gib']:.2f}: the child run failed (see json).")
    elif rc:
        lines.append(f"Under `--reserve-vram {rc['reserve_gib']:.2f}` (free {rc['free_gib']:.2f} GiB): "
                     f"{rc['probe_calls']} probe call(s) of up to {rc['chunk']} probe(s) for K = 5 "
                     f"({'chunked' if rc['probe_calls'] > 1 else 'not chunked'}; never more than K calls); "
                     f"refined noise equal to the unchunked run: {rc['same_noise']} (max |diff| {rc['max_diff']:.1e}).")
    lv = fam.get("lowvram")
    if lv and "error" in lv:
        lines.append(f"Partially loaded model (`{' '.join(lv['flags'])}`): the child run failed (see json).")
    elif lv:
        how = ("`" + " ".join(lv["flags"]) + "`" if lv["flags"] else
               "a CPU (ComfyUI takes no --lowvram with --cpu and loads whole models there; half of the weights "
               "unloaded by ComfyUI's ModelPatcher.partially_unload at the sampler's start, so the layers left out "
               "are cast in at each call, at no cost on one device)")
        lines.append(f"Partially loaded model, under {how}: {100 * lv['loaded_fraction']:.0f} % of the weights loaded "
                     f"while sampling (lowvram mode: {lv['model_lowvram']}); stock {lv['stock_s']:.3f} s, inject K=5 "
                     f"{lv['inject_s']:.3f} s (x{lv['ratio']:.2f}; probes {lv['probes_s']:.3f} s in {lv['probe_calls']} "
                     f"call(s), sampling {lv['sampling_s']:.3f} s vs stock's {lv['stock_sampling_s']:.3f} s); refined "
                     f"noise equal to the full-load run: {lv['same_noise']} (max |diff| {lv['max_diff']:.1e}).")
    cp = fam.get("compile")
    if cp:
        seq = ", ".join(f"{r['mode']} {r['graphs_compiled']}" for r in cp["runs"])
        lines.append(f"TorchCompileModel's wrapper (backend {cp['backend']}), graphs compiled per run in order: {seq}.")
    return lines + [""]


def markdown(result: dict) -> str:
    env = result["env"]
    lines = [f"# GPU check ({result['size']} shapes)", "",
             f"Device: {env['device']}. torch {env['torch']}, ComfyUI {env['comfyui']}, Python {env['python']}. "
             f"Command: `{env['command']}`. Random weights (cost does not depend on them); one seed; each mode "
             f"timed in rounds after a warm-up (every mode once per round, stock first); times = medians over "
             f"rounds, ratio = median / stock's median. Parts: set-up (the call to the sampler's start: model "
             f"load, conditioning), probes (the pack's refinement), sampling (the steps), finish.", ""]
    for fam in result["families"]:
        if "error" in fam:
            lines += [f"## {fam['family']}: not run", "", f"```\n{fam['error']}\n```", ""]
            continue
        lines += family_md(fam)
    return "\n".join(lines)


def write(result: dict, out: Path, t0: float) -> str:
    result["total_s"] = time.perf_counter() - t0
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    md = markdown(result) + f"\nTotal {result['total_s']:.0f} s.\n"
    out.with_suffix(".md").write_text(md)
    return md
