#!/usr/bin/env bash
# Installs what tests/browser/ needs, from package registries only:
#   * Debian's headless Chromium (/usr/bin/chromium), via apt-get (needs root, or sudo);
#   * Playwright for Python, into each project venv that exists (NSP_VENV, or .venv and .venv-current);
#   * the ComfyUI frontends the tests run against, each in its own folder
#     .host/frontends/<version>/comfyui_frontend_package/static (served with --front-end-root):
#       1.32.9  pinned by ComfyUI 0.3.75 (the floor host)
#       1.49.6  pinned by ComfyUI 0.33.0 (the current host)
#       1.58.1  the newest on the registry when the tests were written (run on the current host)
#     NSP_FRONTENDS="1.49.6 1.58.1" installs another list.
# Playwright's own browser download is never used: the tests launch /usr/bin/chromium.
# Idempotent: a second run only checks.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
playwright_spec=${NSP_PLAYWRIGHT:-playwright>=1.40}
frontends=${NSP_FRONTENDS:-1.32.9 1.49.6 1.58.1}
frontend_dir=${NSP_FRONTEND_DIR:-$root/.host/frontends}

start=$(date +%s)
if [ ! -x /usr/bin/chromium ]; then
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi
/usr/bin/chromium --version 2>/dev/null

if [ -n "${NSP_VENV:-}" ]; then
  venvs=$NSP_VENV
else
  venvs=""
  for v in "$root/.venv" "$root/.venv-current"; do
    if [ -x "$v/bin/python" ]; then venvs="$venvs $v"; fi
  done
fi
if [ -z "${venvs// /}" ]; then
  echo "no venv at $root/.venv: run scripts/setup_host.sh first (or set NSP_VENV)" >&2
  exit 1
fi
py=""
for venv in $venvs; do
  if [ ! -x "$venv/bin/python" ]; then
    echo "no venv at $venv" >&2
    exit 1
  fi
  py=${py:-$venv/bin/python}
  if ! "$venv/bin/python" -c 'import playwright.sync_api' 2>/dev/null; then
    "$venv/bin/python" -m pip --disable-pip-version-check -q install "$playwright_spec"
  fi
  "$venv/bin/python" -c 'import importlib.metadata as m, sys; print(sys.prefix, "playwright", m.version("playwright"))'
done

# A frontend is a wheel of static files (no Python dependencies that matter to serving it):
# --no-deps --target keeps several versions side by side, outside every venv. The folder is
# renamed into place only once complete, so an interrupted install is retried, never half-used.
for version in $frontends; do
  dest=$frontend_dir/$version
  if [ -f "$dest/comfyui_frontend_package/static/index.html" ]; then
    echo "frontend $version: $dest"
    continue
  fi
  rm -rf "$dest.tmp"
  mkdir -p "$frontend_dir"
  "$py" -m pip --disable-pip-version-check -q install --no-deps --no-compile --target "$dest.tmp" \
    "comfyui-frontend-package==$version"
  rm -rf "$dest"
  mv "$dest.tmp" "$dest"
  echo "frontend $version: installed in $dest"
done
echo "browser deps ready in $(( $(date +%s) - start )) s"
