#!/usr/bin/env bash
# The pack's test command (README set-up command 2; .ci/run calls it). On a fresh machine it installs
# each ComfyUI host (scripts/setup_host.sh), Chromium and Playwright itself, then runs every test
# against real ComfyUI, once per host, and fails if any host fails.
#
#   bash scripts/test.sh [pytest args...]      e.g.  bash scripts/test.sh -x -k workflows
#
#   NSP_HOSTS="floor current"  the hosts to run on, in order (floor: ComfyUI 0.3.75, current: 0.33.0)
#   NSP_SKIP_BROWSER=1         leave out tests/browser (the only tests that need Chromium)
#   COMFYUI_PATH=<dir>         run the current host on that ComfyUI checkout (the floor is always the
#                              vendored 0.3.75)
#
# Per host: tests/unit (pure torch), tests/integration (ComfyUI booted in-process), tests/browser.
# It prints what it does in a few lines per host and pytest's own -q output; what the installers print
# goes to logs (.host/<host>/setup.log, .host/browser_deps.log), whose last lines are shown on failure.
# At the end, one line per host: ComfyUI version, set-up time, pytest's counts, test time.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
hosts=${NSP_HOSTS:-floor current}
current_comfy=${COMFYUI_PATH:-}
unset COMFYUI_PATH

dirs=(tests/unit tests/integration)
if [ "${NSP_SKIP_BROWSER:-0}" != 1 ]; then
  dirs+=(tests/browser)
  export NSP_REQUIRE_BROWSER=1
fi

summary=()
failed=0
for h in $hosts; do
  case "$h" in
    floor) venv=$root/.venv; comfy_env= ;;
    current) venv=$root/.venv-current; comfy_env=$current_comfy ;;
    *) echo "NSP_HOSTS: unknown host '$h' (use floor and/or current)" >&2; exit 2 ;;
  esac
  echo "=== host $h"
  start=$(date +%s)
  if ! COMFYUI_PATH=$comfy_env NSP_VENV=$venv bash scripts/setup_host.sh "$h"; then
    summary+=("host $h: set-up FAILED (log: .host/$h/setup.log)"); failed=1; continue
  fi
  if [ "${NSP_SKIP_BROWSER:-0}" != 1 ]; then
    blog=$root/.host/browser_deps.log
    echo "=== $(date -u '+%F %T') browser_deps.sh for $venv" >> "$blog"
    if NSP_VENV=$venv bash scripts/browser_deps.sh >> "$blog" 2>&1; then
      echo "  $(tail -n 1 "$blog") (log: $blog)"
    else
      echo "browser set-up FAILED; the last lines of $blog:" >&2
      tail -n 25 "$blog" | sed 's/^/  | /' >&2
      summary+=("host $h: browser set-up FAILED (log: $blog)"); failed=1; continue
    fi
  fi
  setup_s=$(( $(date +%s) - start ))
  comfy=$(cat ".host/$h/comfyui_path")
  version=$(sed -nE "s/^__version__ *= *['\"]([^'\"]+).*/\1/p" "$comfy/comfyui_version.py" 2>/dev/null | head -1)
  log=$(mktemp)
  # A ComfyUI outside .host/ (current's shared source tree) is read-only to us: no __pycache__ there.
  case "$comfy" in "$root/.host/"*) nopyc= ;; *) nopyc=1 ;; esac
  start=$(date +%s)
  PYTHONDONTWRITEBYTECODE=${PYTHONDONTWRITEBYTECODE:-$nopyc} COMFYUI_PATH=$comfy \
    "$venv/bin/python" -m pytest -q -p no:cacheprovider "${dirs[@]}" "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  counts=$(grep -E '^=*\s*[0-9]+ (passed|failed|error|skipped|deselected)' "$log" | tail -1 | sed -E 's/^=+ *| *=+$//g; s/ in [0-9.]+s.*$//')
  [ -n "$counts" ] || counts=$(grep -E '^Exit: ' "$log" | tail -1)
  rm -f "$log"
  summary+=("host $h (ComfyUI ${version:-?} at $comfy): set-up ok in $setup_s s; ${counts:-no result} in $(( $(date +%s) - start )) s$( [ "$rc" = 0 ] || echo ", pytest exit $rc")")
  [ "$rc" = 0 ] || failed=1
done

# The Registry's checkers on the archive users download (they attach to the current host's server).
if [ -f scripts/check_registry.sh ]; then
  start=$(date +%s)
  if COMFYUI_PATH=$(cat .host/current/comfyui_path 2>/dev/null || echo "$current_comfy") bash scripts/check_registry.sh; then
    summary+=("registry checks: passed, $(( $(date +%s) - start )) s")
  else
    summary+=("registry checks: FAILED"); failed=1
  fi
fi

echo
echo "=== summary"
printf '%s\n' "${summary[@]}"
[ "$failed" = 0 ] && echo "all passed" || echo "FAILED (see above)"
exit $failed
