#!/usr/bin/env bash
# Installs what tests/test_browser.py needs, from package registries only:
#   * Debian's headless Chromium (/usr/bin/chromium), via apt-get (needs root, or sudo);
#   * Playwright for Python, into the project's venv (NSP_VENV, default .venv).
# Playwright's own browser download is never used: the test launches /usr/bin/chromium.
# Idempotent: a second run only checks.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${NSP_VENV:-$root/.venv}
playwright_spec=${NSP_PLAYWRIGHT:-playwright>=1.40}

start=$(date +%s)
if [ ! -x /usr/bin/chromium ]; then
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi
/usr/bin/chromium --version

if [ ! -x "$venv/bin/python" ]; then
  echo "no venv at $venv: run scripts/setup_host.sh first (or set NSP_VENV)" >&2
  exit 1
fi
if ! "$venv/bin/python" -c 'import playwright.sync_api' 2>/dev/null; then
  "$venv/bin/python" -m pip --disable-pip-version-check -q install "$playwright_spec"
fi
"$venv/bin/python" -c 'import importlib.metadata as m; print("playwright", m.version("playwright"))'
echo "browser deps ready in $(( $(date +%s) - start )) s"
