#!/usr/bin/env bash
# The ecosystem's own checkers, run on what users download (the archive `comfy node pack` builds,
# the one `comfy node publish` uploads to the Registry), not on the checkout:
#   1. comfy node validate     pyproject.toml as the Registry reads it, plus its ruff security rules
#   2. comfy node pack         the archive; fails if tests/benchmarks/demo ship or node code is missing
#   3. comfy-test lint --strict   SYNTAX (cp1252-safe sources, ComfyUI-native torch) and JAVASCRIPT
#                                 (extension names under the pack's namespace), on the unpacked archive
#   4. comfy-test run          SYNTAX, INSTALL, REGISTRATION, JAVASCRIPT against a real ComfyUI
#                                 server (CPU) that loads the unpacked archive from its custom_nodes/
# comfy-cli and comfy-test go into their own venv, .venv-tools (git-ignored), once.
#
# ComfyUI for step 4: the current host, NSP_CHECK_PYTHON (default .venv-current/bin/python) and
# NSP_CHECK_COMFYUI (default: tests/host.py's comfyui_path() for that Python; COMFYUI_PATH overrides
# it, as for the tests). Not the floor host: its venv has no torchaudio, so ComfyUI's own audio
# nodes log import failures, and comfy-test's REGISTRATION counts every import failure in the log.
#
# comfy-test levels not run, and why:
#   INSTANTIATION   reads only NODE_CLASS_MAPPINGS, which a V3 pack does not define (nothing to
#                   instantiate), and in attach mode runs in comfy-test's own Python, which has no torch.
#   STATIC_CAPTURE  needs comfy-test's browser stack (screenshots); tests/browser covers the frontend.
#   VALIDATION      comfy-test 0.4.15's workflow validator misreads widget values: it takes a "COMBO"
#                   input (how V3 nodes, ours and ComfyUI's, declare choices) for a socket, ignores the
#                   extra value of a seed's control_after_generate, and rejects the frontend-only Note,
#                   MarkdownNote and PrimitiveNode, so every official template fails it. Its stock
#                   INSTALL also clones ComfyUI and a validate endpoint from GitHub, out of reach here.
#                   tests/integration/test_install.py checks the workflows against the live /object_info.
#   EXECUTION       needs the workflows' real model files (SDXL, FLUX, WAN) and a GPU.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export DO_NOT_TRACK=1  # comfy-cli: no telemetry, no consent prompt

tools=$root/.venv-tools
pins="comfy-cli==1.23.0 comfy-test==0.4.15"
if [ "$(cat "$tools/.nsp-tools" 2>/dev/null)" != "$pins" ]; then
  "${PYTHON:-python3}" -m venv "$tools"
  "$tools/bin/python" -m pip install --disable-pip-version-check -q $pins
  echo "$pins" > "$tools/.nsp-tools"
fi
comfy() { "$tools/bin/comfy" --skip-prompt "$@"; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nsp-registry.XXXXXX")
server_pid=
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid"; wait "$server_pid" 2>/dev/null || true
  fi
  rm -f "$root/node.zip"
  rm -rf "$tmp"
}
trap cleanup EXIT

echo "== comfy node validate"
comfy node validate

echo "== comfy node pack"
comfy node pack
mv node.zip "$tmp/node.zip"
"$tools/bin/python" - "$tmp/node.zip" <<'EOF'
import os, sys, zipfile
path = sys.argv[1]
names = sorted(zipfile.ZipFile(path).namelist())
print(f"node.zip: {os.path.getsize(path) / 1e6:.2f} MB, {len(names)} files")
print("\n".join("  " + n for n in names))
leaked = [n for n in names if n.split("/")[0] in {"tests", "benchmarks", "demo", "scripts", ".ci", ".github"}]
need = ["__init__.py", "pyproject.toml", "noise_semantics/core.py", "noise_semantics/patch.py",
        "js/noise_semantics.js", "js/docs/NoiseSemanticErase.md", "LICENSE", "README.md"]
missing = [n for n in need if n not in names] + ([] if any(n.startswith("workflows/") for n in names) else ["workflows/"])
if leaked or missing:
    sys.exit(f"the archive is wrong: shipped {leaked}, missing {missing} (see .comfyignore)")
EOF

base=$tmp/base
pack=$base/custom_nodes/comfyui-noise-semantics
mkdir -p "$pack" "$base/models" "$base/input" "$base/output" "$base/temp" "$base/user" "$tmp/logs" "$tmp/work"
"$tools/bin/python" -m zipfile -e "$tmp/node.zip" "$pack"

echo "== comfy-test lint --strict (the unpacked archive)"
"$tools/bin/comfy-test" lint --strict "$pack"

echo "== comfy-test run (attached to a real ComfyUI server)"
py=${NSP_CHECK_PYTHON:-$root/.venv-current/bin/python}
if [ ! -x "$py" ]; then
  echo "no Python for the current ComfyUI host at $py: install that host first, or set NSP_CHECK_PYTHON" >&2
  exit 1
fi
comfyui=${NSP_CHECK_COMFYUI:-$("$py" -c 'import sys; sys.path.insert(0, "tests"); import host; print(host.comfyui_path())')}
if [ ! -f "$comfyui/main.py" ]; then
  echo "no ComfyUI at $comfyui (run scripts/setup_host.sh, or set NSP_CHECK_COMFYUI)" >&2
  exit 1
fi
cat > "$pack/comfy-test.toml" <<'EOF'
[test]
levels = ["syntax", "registration", "javascript"]

[test.platforms]
platforms = ["linux"]
EOF
port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
PYTHONDONTWRITEBYTECODE=1 "$py" "$comfyui/main.py" --cpu --listen 127.0.0.1 --port "$port" --base-directory "$base" \
  --database-url "sqlite:///$tmp/comfyui.db" --disable-auto-launch > "$tmp/logs/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 240); do
  if ! kill -0 "$server_pid" 2>/dev/null; then tail -40 "$tmp/logs/server.log" >&2; echo "ComfyUI exited" >&2; exit 1; fi
  "$py" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/system_stats', timeout=2)" \
    2>/dev/null && break
  sleep 1
done
echo "ComfyUI $("$py" -c "import json, urllib.request; print(json.load(urllib.request.urlopen('http://127.0.0.1:$port/system_stats'))['system']['comfyui_version'])") at $comfyui"
# comfy-test's REGISTRATION only looks for import errors; a V3 entrypoint that fails logs another
# line, so check that the archive's nodes are there.
"$py" - "$port" <<'EOF'
import json, sys, urllib.request
info = json.load(urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/object_info"))
missing = [n for n in ("NoiseSemanticErase", "NoiseSemanticInject", "NoiseSemanticTemporalSchedule") if n not in info]
if missing:
    sys.exit(f"the server did not register {missing} from the archive")
EOF
# comfy-test reads the server's start-up log for import errors from $COMFY_TEST_LOGS_DIR/server.log.
(cd "$pack" && TMPDIR=$tmp COMFY_TEST_LOGS_DIR=$tmp/logs COMFY_TEST_WORKSPACE_DIR=$tmp/work \
  "$tools/bin/comfy-test" run --server-url "http://127.0.0.1:$port")
echo "registry checks passed"
