#!/usr/bin/env bash
# README set-up command 1: install the ComfyUI host, run the pack's main job on the embedded demo
# models in the terminal (real nodes, real KSampler: stock-vs-refined grids and an alignment table in
# demo/output/; 3.5 min on a fresh clone, README) the first time, then serve ComfyUI on 127.0.0.1 with the pack loaded, the
# demo's own nodes next to it (a second custom-node folder, demo/comfyui_nsp_demo, not part of the
# pack) and the demo workflow in the user's workflow list. The link it prints opens the demo workflow
# on the first page (ComfyUI's ?template= link to the demo folder's example workflow; press Run:
# stock and refined images side by side). It prints a few lines; each step's full output is in a log
# it names (the host install: .host/floor/setup.log; ComfyUI: demo/output/comfyui.log and
# .host/base/comfyui.log), shown in part when a step fails.
#
#   --demo        run the terminal demo again (it runs by itself only when demo/output/ has none)
#   --no-demo     do not run the terminal demo, not even the first time
#   --no-server   stop after the terminal demo (which then always runs, unless --no-demo)
#   --port N      serve on port N (default 8188)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
serve=1; port=8188; demo=auto
while [ $# -gt 0 ]; do
  case "$1" in
    --demo) demo=yes ;;
    --no-demo) demo=no ;;
    --no-server) serve=0 ;;
    --port) port=${2:?--port needs a number}; shift ;;
    *) echo "unknown option $1 (use --demo, --no-demo, --no-server, --port N)" >&2; exit 2 ;;
  esac
  shift
done
if [ "$demo" = auto ]; then
  if [ "$serve" = 0 ] || [ ! -f demo/output/alignment.md ]; then demo=yes; else demo=no; fi
fi
t0=$(date +%s)
echo "Noise Semantics: set-up (ComfyUI $( [ -n "${COMFYUI_PATH:-}" ] && echo "at $COMFYUI_PATH" || echo 0.3.75 ) host, log .host/floor/setup.log)"
bash scripts/setup_host.sh
venv=${NSP_VENV:-$root/.venv}
if [ "$demo" = yes ]; then
  echo "terminal demo on the embedded models, through ComfyUI's real KSampler (ComfyUI's log: demo/output/comfyui.log)"
  if ! "$venv/bin/python" demo/run_demo.py --out demo/output; then
    echo "terminal demo FAILED; ComfyUI's log: demo/output/comfyui.log, its last lines:" >&2
    tail -n 25 demo/output/comfyui.log 2>/dev/null | sed 's/^/  | /' >&2
    exit 1
  fi
else
  echo "terminal demo: skipped (results of the last run in demo/output/; --demo runs it again)"
fi
echo "set-up done in $(( $(date +%s) - t0 )) s"
[ "$serve" = 1 ] || exit 0
base=$root/.host/base
"$venv/bin/python" demo/served_base.py "$base" > /dev/null
first_page=$("$venv/bin/python" demo/served_base.py --first-page)
comfy=$(cat .host/comfyui_path)
dev=$("$venv/bin/python" -c 'import torch; print("" if torch.cuda.is_available() else "--cpu")')
server_log=$base/comfyui.log
echo "starting ComfyUI with the pack (its log: $server_log) ..."
"$venv/bin/python" "$comfy/main.py" $dev --listen 127.0.0.1 --port "$port" --base-directory "$base" \
  --database-url "sqlite:///$base/user/comfyui.db" --disable-auto-launch > "$server_log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' INT TERM EXIT
for _ in $(seq 1 240); do
  if ! kill -0 $pid 2>/dev/null; then
    echo "ComfyUI stopped at start-up; the last lines of $server_log:" >&2
    tail -n 25 "$server_log" | sed 's/^/  | /' >&2
    exit 1
  fi
  if "$venv/bin/python" -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/system_stats', timeout=2)" 2>/dev/null; then
    break
  fi
  sleep 1
done
echo "ComfyUI with the pack: http://127.0.0.1:$port$first_page"
echo "  that link opens the demo workflow: press Run, stock and refined appear side by side (Ctrl-C stops ComfyUI)"
wait $pid
