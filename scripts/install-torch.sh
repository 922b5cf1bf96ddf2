#!/usr/bin/env bash
# PyTorch on the CPU for `npm run bench:step`'s third column (bench/lib/torch_step.py):
# Debian's python3-torch (1.13) for the system python, /usr/bin/python3.
# Bench only: neither the tests nor scripts/setup.sh call it, and the bench runs without torch
# (two columns). Idempotent; does nothing when /usr/bin/python3 can already import torch.
set -euo pipefail

py=/usr/bin/python3
say() { echo "[torch] $*"; }

if [ ! -x "$py" ]; then
  say "no $py: install python3 first (or run the bench with --no-torch)."
  exit 1
fi

if ver="$("$py" -c 'import torch; print(torch.__version__)' 2>/dev/null)"; then
  say "torch $ver already importable by $py. Nothing to do."
  exit 0
fi

if [ "$(uname -s)" != "Linux" ] || ! command -v apt-get >/dev/null; then
  say "no apt-get here: install PyTorch for $py yourself (e.g. '$py -m pip install torch'), or run the bench with --no-torch."
  exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { say "need root (or sudo) to install python3-torch"; exit 1; }
  SUDO="sudo"
fi

fail() {
  say "ERROR: could not install Debian's python3-torch ($1)."
  say "Run 'apt-get update && apt-get install python3-torch' as root and read its error, then rerun $0."
  exit 1
}

say "installing Debian's python3-torch (PyTorch 1.13, CPU build; a few hundred MB with its libraries, a minute or two)"
# A fresh machine's package lists may be empty or stale: update first, as the other set-up scripts do.
$SUDO apt-get update -qq || fail "apt-get update failed"
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-torch >/dev/null || fail "apt-get install failed"
ver="$("$py" -c 'import torch; print(torch.__version__)' 2>&1)" || fail "installed, but '$py -c \"import torch\"' still fails: $ver"
say "torch $ver installed for $py"
