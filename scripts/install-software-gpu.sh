#!/usr/bin/env bash
# Gives Dawn (the `webgpu` npm package) a Vulkan adapter on a Linux machine without a GPU:
# Mesa's lavapipe from Debian bookworm-backports. Bookworm's own Mesa 22 lavapipe lacks
# features Dawn requires, so the backports build (Mesa >= 24) is needed.
# Idempotent; does nothing when a usable adapter already exists. Prints what it did.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"

say() { echo "[software-gpu] $*"; }

probe() {
  # Only meaningful once node_modules/webgpu exists; otherwise report "unknown".
  [ -d "$root/node_modules/webgpu" ] || return 2
  node "$here/probe-adapter.mjs" >/dev/null 2>&1
}

if [ "${1:-}" != "--force" ] && probe; then
  say "a WebGPU adapter is already usable: $(node "$here/probe-adapter.mjs" 2>/dev/null | tail -n1). Nothing to do."
  exit 0
fi

if [ "$(uname -s)" != "Linux" ] || [ ! -f /etc/debian_version ]; then
  say "not Debian Linux: install a Vulkan driver for your GPU (or Mesa lavapipe >= 24) yourself."
  exit 0
fi

lvp_version() {
  dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true
}
have="$(lvp_version)"
major="${have%%.*}"; major="${major##*:}"
if [ -n "$have" ] && [ "${major:-0}" -ge 24 ] 2>/dev/null; then
  say "mesa-vulkan-drivers $have (lavapipe) already installed."
else
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { say "need root (or sudo) to install mesa-vulkan-drivers"; exit 1; }
    SUDO="sudo"
  fi
  codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
  if [ "$codename" = "bookworm" ]; then
    src=/etc/apt/sources.list.d/bookworm-backports.sources
    if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
      say "adding the bookworm-backports apt suite ($src)"
      $SUDO tee "$src" >/dev/null <<SRC
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    fi
    say "apt-get update"
    $SUDO apt-get update -qq
    say "installing mesa-vulkan-drivers and libvulkan1 from bookworm-backports"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null
  else
    say "apt-get update; installing mesa-vulkan-drivers libvulkan1 from $codename"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
  fi
  say "installed mesa-vulkan-drivers $(lvp_version)"
fi

if probe; then
  say "adapter: $(node "$here/probe-adapter.mjs" 2>/dev/null | tail -n1)"
elif [ -d "$root/node_modules/webgpu" ]; then
  say "WARNING: Dawn still finds no adapter; run 'node scripts/probe-adapter.mjs' to see why."
  exit 1
else
  say "driver installed; run 'npm ci' to install Dawn, then 'node scripts/probe-adapter.mjs' to check."
fi
