#!/usr/bin/env bash
# One-time set-up that `npm test` and the main job run first: dependencies, then a WebGPU
# adapter (installs the software driver only when Dawn finds no adapter). Quick when done.
set -euo pipefail
cd "$(dirname "$0")/.."
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
if [ ! -d node_modules/webgpu ] || [ ! -d node_modules/vitest ] || [ ! -d node_modules/playwright-core ]; then
  echo "[setup] installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund
fi
bash scripts/install-software-gpu.sh
bash scripts/install-fashion-mnist.sh
