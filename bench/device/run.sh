#!/usr/bin/env bash
# The device pack's one command (bench/device/make-pack.sh builds the pack): on a GPU machine
# with no network, prints the adapter, times our training step of the reference model at
# 224x224 and 240x360 batch 32 beside PyTorch's on the same machine (CUDA when it has it: fp32,
# then TF32 allowed), then the kernel rows. Every step has a time limit; the whole run stays
# under 8 minutes. Results (text and JSON) go to $OUT (default ./results).
#
#   ./run.sh            PYTHON=/path/to/python3 ./run.sh      SKIP_KERNELS=1 ./run.sh
#   SIZES=32x32 BATCH=2 REPEATS=1 KERNELS_ONLY=dropout ./run.sh    (a quick check on a CPU adapter)
set -uo pipefail
cd "$(dirname "$0")"
export LD_LIBRARY_PATH="$PWD/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
out="${OUT:-$PWD/results}"
mkdir -p "$out"
# The kernel tuner measures each conv shape's candidates before the step is timed; its choices
# (kernel-tuning.json) come back with the results.
export WEBGPU_FINETUNE_CACHE="${WEBGPU_FINETUNE_CACHE:-$out/cache}"
export WEBGPU_FINETUNE_TUNE_BUDGET="${WEBGPU_FINETUNE_TUNE_BUDGET:-30}"
node="$PWD/bin/node"
py="${PYTHON:-$(command -v python3 || echo /usr/bin/python3)}"
say() { echo "[device] $*"; }
# the bundles run from bench/lib/ (their shaders are ../../shaders)
run() { local limit=$1; shift; timeout "$limit" "$node" "$@"; local rc=$?; [ $rc -eq 124 ] && say "timed out after ${limit}s: $*"; return $rc; }

say "pack: $(head -1 PACK.txt)"
run 60 bench/lib/device-info.mjs | tee "$out/adapter.txt" || { say "no WebGPU adapter: is a Vulkan driver (ICD) installed? lib/ has the loader"; exit 1; }

torch_device=cpu
if "$py" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  torch_device=cuda
  say "PyTorch $("$py" -c 'import torch; print(torch.__version__, "CUDA", torch.version.cuda, torch.cuda.get_device_name(0))')"
elif "$py" -c 'import torch' 2>/dev/null; then
  say "PyTorch without CUDA here: its column is the CPU"
else
  say "no PyTorch for $py: our figures only (set PYTHON=...)"
fi
step() { run 170 bench/lib/train-step.mjs --sizes "${SIZES:-224x224,240x360}" --batch "${BATCH:-32}" --repeats "${REPEATS:-5}" --no-tfjs --python "$py" --torch-device "$torch_device" "$@"; }
step --json "$out/step-fp32.json" | tee "$out/step-fp32.txt"
[ "$torch_device" = cuda ] && step --torch-tf32 --json "$out/step-tf32.json" | tee "$out/step-tf32.txt"
[ -n "${SKIP_KERNELS:-}" ] || run 120 bench/lib/kernels.mjs --no-tfjs --repeats "${REPEATS:-3}" ${KERNELS_ONLY:+--only "$KERNELS_ONLY"} --json "$out/kernels.json" | tee "$out/kernels.txt"
say "results in $out"
