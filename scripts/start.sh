#!/usr/bin/env bash
# README set-up command 1: install the ComfyUI host, run the pack's main job on the embedded demo
# model (real nodes, real KSampler: a stock-vs-refined grid and an alignment table in demo/output/),
# then serve ComfyUI with the pack loaded on 127.0.0.1.
#   --no-server   stop after the demo        --port N   serve on port N (default 8188)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
serve=1; port=8188
while [ $# -gt 0 ]; do
  case "$1" in
    --no-server) serve=0 ;;
    --port) port=$2; shift ;;
    *) echo "unknown option $1 (use --no-server, --port N)" >&2; exit 2 ;;
  esac
  shift
done
bash scripts/setup_host.sh
venv=${NSP_VENV:-$root/.venv}
"$venv/bin/python" demo/run_demo.py --out demo/output
[ "$serve" = 1 ] || exit 0
comfy=$(cat .host/comfyui_path)
dev=$("$venv/bin/python" -c 'import torch; print("" if torch.cuda.is_available() else "--cpu")')
echo "ComfyUI with the pack: http://127.0.0.1:$port  (Ctrl-C to stop)"
exec "$venv/bin/python" "$comfy/main.py" $dev --listen 127.0.0.1 --port "$port" --base-directory "$root/.host/base" \
  --database-url "sqlite:///$root/.host/base/user/comfyui.db"
