#!/usr/bin/env bash
# README set-up command 1: install the ComfyUI host, run the pack's main job on the embedded demo
# models in the terminal (real nodes, real KSampler: stock-vs-refined grids and an alignment table in
# demo/output/, about 80 s) the first time, then serve ComfyUI on 127.0.0.1 with the pack loaded, the
# demo's own nodes next to it (a second custom-node folder, demo/comfyui_nsp_demo, not part of the
# pack) and the demo workflow in the user's workflow list (Workflows sidebar:
# noise_semantics_demo_digits; open it, press Run: stock and refined images side by side).
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
bash scripts/setup_host.sh
venv=${NSP_VENV:-$root/.venv}
if [ "$demo" = yes ]; then
  "$venv/bin/python" demo/run_demo.py --out demo/output
else
  echo "terminal demo: skipped (results of the last run in demo/output/; --demo runs it again)"
fi
[ "$serve" = 1 ] || exit 0
base=$root/.host/base
"$venv/bin/python" demo/served_base.py "$base"
comfy=$(cat .host/comfyui_path)
dev=$("$venv/bin/python" -c 'import torch; print("" if torch.cuda.is_available() else "--cpu")')
echo "ComfyUI with the pack: http://127.0.0.1:$port  (Ctrl-C to stop)"
echo "  Workflows sidebar > noise_semantics_demo_digits, then Run: stock and refined side by side"
exec "$venv/bin/python" "$comfy/main.py" $dev --listen 127.0.0.1 --port "$port" --base-directory "$base" \
  --database-url "sqlite:///$base/user/comfyui.db"
