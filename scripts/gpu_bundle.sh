#!/usr/bin/env bash
# Prepares what benchmarks/gpu_check/ needs on a bare GPU machine that has Python 3.12 + CUDA torch but no
# ComfyUI and no network (how the README's GPU table was made): a copy of ComfyUI's core in .gpu/ComfyUI,
# comfy-kitchen without its compiled CUDA/HIP kernels in .gpu/site (ComfyUI 0.33 imports it unconditionally;
# its 230 MB of kernels serve fp8/fp4/int8 paths this check does not use), and the missing pure wheels in
# .whl/. Both folders are git-ignored. Then, on the GPU machine, from the checkout:
#   pip install --no-index --no-deps --target /tmp/site .whl/*.whl
#   PYTHONPATH=/tmp/site:$PWD/.gpu/site COMFYUI_PATH=$PWD/.gpu/ComfyUI python3 -m benchmarks.gpu_check
# On a machine with a normal ComfyUI install none of this is needed: COMFYUI_PATH=<your ComfyUI> is enough.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
comfy=${COMFYUI_PATH:-$(cat .host/current/comfyui_path)}
py=${GPU_PYTHON_VERSION:-3.12}
rm -rf .gpu .whl && mkdir -p .gpu/ComfyUI .gpu/site .whl
(cd "$comfy" && tar --exclude=__pycache__ --exclude=./blueprints --exclude=./comfy_api_nodes --exclude='./tests*' \
  --exclude=./models -cf - .) | tar -xf - -C .gpu/ComfyUI
dl() { python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$py" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$1" "${@:2}"; }
dl .whl comfy-aimdo==0.4.13 torchsde==0.2.6 trampoline==0.1.2
tmp=$(mktemp -d)
dl "$tmp" comfy-kitchen==0.2.31
(cd .gpu/site && unzip -q -o "$tmp"/comfy_kitchen-*.whl -x '*/_C.abi3.so')
rm -rf "$tmp"
du -sh .gpu .whl
