"""Command line of the GPU check (``python -m benchmarks.gpu_check``): boot ComfyUI, run each family's
rounds, write the results after each family (a run cut short keeps what it measured)."""
from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

from . import __doc__ as DOC
from .comfy_env import ROOT, boot, comfyui_version, free_memory
from .families import SIZES, specs

RESULTS = ROOT / "benchmarks" / "results"


def parse(argv):
    ap = argparse.ArgumentParser(description=DOC, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=SIZES, help="shapes (default: full on CUDA, tiny without)")
    ap.add_argument("--tiny", action="store_true", help="same as --size tiny (what CI runs)")
    ap.add_argument("--families", nargs="+", default=["sdxl", "flux", "wan"], choices=["sdxl", "flux", "wan"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-reserve-check", action="store_true", help="skip the --reserve-vram chunking round")
    ap.add_argument("--no-lowvram", action="store_true", help="skip the --lowvram round")
    ap.add_argument("--lowvram-families", nargs="+", choices=["sdxl", "flux", "wan"],
                    help="families with a --lowvram round (default: all; at full size SDXL and WAN, since FLUX's "
                         "12 B weights take minutes to build on the CPU that round loads them from)")
    ap.add_argument("--compile", action="store_true",
                    help="add the torch.compile round (TorchCompileModel's wrapper): graphs compiled per run")
    ap.add_argument("--compile-backend", help="torch.compile backend (default: inductor on CUDA, eager on a CPU, "
                                              "which compiles nothing but counts the same graphs)")
    ap.add_argument("--repeats", type=int, help="timed rounds per family (default: the family's, 1 to 3)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads without CUDA (default 1: steadier "
                                                           "timings on a shared machine)")
    ap.add_argument("--out", help="output prefix (default benchmarks/results/gpu_check[_tiny|_mid])")
    ap.add_argument("--reserve-vram", type=float, help="passed to ComfyUI (GiB)")
    ap.add_argument("--budget-s", type=float, default=420.0,
                    help="start no further family after this many seconds (default 420: the whole run fits 8 min)")
    ap.add_argument("--child", choices=["reserve", "lowvram"], help=argparse.SUPPRESS)
    ap.add_argument("--noise-file", help=argparse.SUPPRESS)
    ap.add_argument("--comfy-flags", default="", help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse(argv)
    command = "python -m benchmarks.gpu_check " + " ".join(sys.argv[1:] if argv is None else argv)
    import torch
    cuda = torch.cuda.is_available()
    if not cuda:
        torch.set_num_threads(args.threads)
    size = "tiny" if args.tiny else (args.size or ("full" if cuda else "tiny"))
    flags = args.comfy_flags.split() + ([] if args.reserve_vram is None else ["--reserve-vram", f"{args.reserve_vram:.4f}"])
    boot(cuda, flags)
    sp = specs(size)
    for spec in sp.values():
        spec.repeats = args.repeats or spec.repeats
    if args.child:
        from . import child
        child.main(args.child, sp[args.families[0]], args.seed, args.noise_file)
        return 0

    from .rounds import run_family
    args.reserve_check = not args.no_reserve_check
    lowvram = args.lowvram_families or (["sdxl", "wan"] if size == "full" else ["sdxl", "flux", "wan"])
    args.lowvram = set() if args.no_lowvram else set(lowvram)
    args.compile_backend = args.compile_backend or ("inductor" if cuda else "eager")
    out = Path(args.out) if args.out else RESULTS / ("gpu_check" if size == "full" else f"gpu_check_{size}")
    out.parent.mkdir(parents=True, exist_ok=True)
    import comfy.model_management as mm
    from .report import write
    dev = mm.get_torch_device()
    result = {"size": size, "tiny": size == "tiny", "env": {
        "device": torch.cuda.get_device_name(dev) if cuda else f"CPU ({platform.processor() or platform.machine()}, "
                                                               f"{torch.get_num_threads()} thread(s))",
        "torch": torch.__version__, "comfyui": comfyui_version(), "python": platform.python_version(),
        "command": command}, "families": []}
    t0 = time.perf_counter()
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for fam in args.families:
            if time.perf_counter() - t0 > args.budget_s:
                result["families"].append({"family": fam, "error": f"not started: {args.budget_s:.0f} s budget spent"})
                continue
            try:
                result["families"].append(run_family(sp[fam], args.seed, size, cuda, args, Path(tmp)))
            except Exception as e:  # report and go on: one family's failure must not hide the others
                traceback.print_exc()
                result["families"].append({"family": fam, "error": f"{type(e).__name__}: {e}"})
                failed = True
                free_memory()
            write(result, out, t0)
    md = write(result, out, t0)
    print(md)
    print(f"wrote {out.with_suffix('.md')} and .json")
    return 1 if failed else 0
