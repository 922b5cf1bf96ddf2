#!/usr/bin/env bash
# Debian's Chromium for the browser tests (npm run test:browser), from apt: never a browser
# download. Idempotent: does nothing when /usr/bin/chromium exists (or CHROMIUM_PATH points to a
# Chromium or Chrome binary). WebGPU then runs on Chromium's SwiftShader, and in compatibility mode
# on ANGLE over Vulkan (the lavapipe driver that install-software-gpu.sh installs).
set -euo pipefail

say() { echo "[browser] $*"; }

if [ -n "${CHROMIUM_PATH:-}" ] && [ -x "$CHROMIUM_PATH" ]; then
  say "using CHROMIUM_PATH=$CHROMIUM_PATH"
  exit 0
fi
if [ -x /usr/bin/chromium ]; then
  say "chromium is installed: $(/usr/bin/chromium --version 2>/dev/null | tail -n1)"
  exit 0
fi
if [ "$(uname -s)" != "Linux" ] || [ ! -f /etc/debian_version ]; then
  say "not Debian Linux: install Chromium or Chrome and set CHROMIUM_PATH to its binary."
  exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { say "need root (or sudo) to install chromium"; exit 1; }
  SUDO="sudo"
fi
say "installing Debian's chromium (apt-get)"
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y -qq chromium >/dev/null 2>&1; then
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq chromium >/dev/null
fi
say "installed: $(/usr/bin/chromium --version 2>/dev/null | tail -n1)"
