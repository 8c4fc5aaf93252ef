#!/usr/bin/env bash
# The pack's test command (README set-up command 2; .ci/run calls it). On a fresh machine it installs
# the ComfyUI host, Chromium and Playwright itself, then runs every test against real ComfyUI.
#   NSP_SKIP_BROWSER=1  leave the browser test out (it is the only one that needs Chromium).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/setup_host.sh
if [ "${NSP_SKIP_BROWSER:-0}" != 1 ]; then
  bash scripts/browser_deps.sh
  export NSP_REQUIRE_BROWSER=1
fi
venv=${NSP_VENV:-$root/.venv}
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@" tests
