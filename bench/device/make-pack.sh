#!/usr/bin/env bash
# Assembles what a GPU machine with no network needs to run our benchmarks, into one archive
# (under 64 MiB): this machine's Node binary, the `webgpu` package's linux-x64 dawn.node, the
# benchmarks bundled into single files (esbuild; no node_modules besides webgpu), the WGSL
# shaders, PyTorch's step script, and Debian's Vulkan loader (libvulkan.so.1, for machines that
# have an NVIDIA driver but no loader). Unpack anywhere and run ./run.sh (bench/device/run.sh).
#
#   bash bench/device/make-pack.sh [OUT.tar.xz]      default bench/device/out/webgpu-finetune-device-pack.tar.xz
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:-bench/device/out/webgpu-finetune-device-pack.tar.xz}"
limit=$((64 * 1024 * 1024))
say() { echo "[device-pack] $*"; }

[ "$(uname -sm)" = "Linux x86_64" ] || { say "build the pack on linux-x64 (the GPU machines are)"; exit 1; }
[ -f node_modules/webgpu/dist/linux-x64/dawn.node ] || { say "no node_modules/webgpu: run npm ci first"; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
pack="$work/webgpu-finetune-device-pack"
mkdir -p "$pack/bin" "$pack/lib" "$pack/bench/lib" "$pack/node_modules/webgpu/dist/linux-x64"

say "node $(node --version) from $(command -v node)"
cp "$(command -v node)" "$pack/bin/node"

say "dawn.node ($(du -h node_modules/webgpu/dist/linux-x64/dawn.node | cut -f1)) and the webgpu package's loader"
cp node_modules/webgpu/package.json node_modules/webgpu/index.js "$pack/node_modules/webgpu/"
cp node_modules/webgpu/dist/linux-x64/dawn.node "$pack/node_modules/webgpu/dist/linux-x64/"

# The bundles sit in bench/lib/ so that src/gpu/shaders.ts's ../../shaders/ (relative to the
# bundle) is the pack's shaders/, and torch.ts finds torch_step.py beside itself. TF.js and
# h5wasm are imported dynamically and left out: the pack runs with --no-tfjs.
say "bundling bench/train-step.ts and bench/kernels.ts"
for b in train-step kernels device-info; do
  npx esbuild "bench/${b/device-info/device/info}.ts" --bundle --platform=node --format=esm --target=node20 \
    --external:webgpu --external:h5wasm --external:'@tensorflow/*' --log-level=warning \
    --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" \
    --outfile="$pack/bench/lib/$b.mjs"
done
cp -r shaders "$pack/shaders"
cp bench/lib/torch_step.py "$pack/bench/lib/"
cp bench/device/run.sh "$pack/run.sh"
chmod +x "$pack/run.sh"

say "Debian's Vulkan loader (libvulkan1)"
( cd "$work" && apt-get download libvulkan1 >/dev/null 2>&1 ) || { say "apt-get download libvulkan1 failed (no Debian mirror?)"; exit 1; }
dpkg-deb -x "$work"/libvulkan1_*.deb "$work/deb"
cp -a "$work"/deb/usr/lib/x86_64-linux-gnu/libvulkan.so.1* "$pack/lib/"
cp "$work"/libvulkan1_*.deb "$pack/lib/"

cat > "$pack/PACK.txt" <<TXT
webgpu-finetune device pack, built $(date -u +%Y-%m-%dT%H:%MZ) from commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)
node $(node --version); webgpu $(node -p "require('./node_modules/webgpu/package.json').version"); $(basename "$work"/libvulkan1_*.deb)
Run: ./run.sh   (see bench/device/README.md in the repository)
TXT

mkdir -p "$(dirname "$out")"
say "compressing (xz -9)"
tar -C "$work" -cf - webgpu-finetune-device-pack | xz -9 -T2 > "$out"
size=$(stat -c %s "$out")
say "wrote $out: $((size / 1024 / 1024)) MiB ($size bytes; unpacked $(du -sh "$pack" | cut -f1))"
if [ "$size" -gt "$limit" ]; then say "ERROR: over the 64 MiB limit"; exit 1; fi
