#!/usr/bin/env bash
# Fashion-MNIST for the tests (test/fashion-mnist.test.ts): Debian's dataset-fashion-mnist package,
# the four IDX files (gzipped) in /usr/share/datasets/fashion-mnist. A real photo set no one here
# wrote, so a fine-tuning test is not graded on data made to suit the code.
# Idempotent; installs only when a file is missing. Prints what it did.
set -euo pipefail

dir=/usr/share/datasets/fashion-mnist
files=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)

say() { echo "[fashion-mnist] $*"; }

missing() {
  local f
  for f in "${files[@]}"; do
    [ -f "$dir/$f.gz" ] || [ -f "$dir/$f" ] || return 0
  done
  return 1
}

if ! missing; then
  say "already installed in $dir. Nothing to do."
  exit 0
fi

if [ "$(uname -s)" != "Linux" ] || ! command -v apt-get >/dev/null; then
  say "no apt-get here: get the four Fashion-MNIST IDX files (${files[*]}, .gz or not) into $dir yourself."
  exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { say "need root (or sudo) to install dataset-fashion-mnist"; exit 1; }
  SUDO="sudo"
fi

fail() {
  say "ERROR: could not install Debian's dataset-fashion-mnist ($1)."
  say "Run 'apt-get update && apt-get install dataset-fashion-mnist' as root and read its error, then rerun $0."
  exit 1
}

say "installing Debian's dataset-fashion-mnist (about 30 MB)"
# A fresh machine's package lists may be empty or stale: update first, as the other set-up scripts do.
$SUDO apt-get update -qq || fail "apt-get update failed"
# Installed but files deleted: a plain install would do nothing, so reinstall.
reinstall=""
dpkg-query -W -f='${Status}' dataset-fashion-mnist 2>/dev/null | grep -q 'install ok installed' && reinstall="--reinstall"
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $reinstall dataset-fashion-mnist >/dev/null || fail "apt-get install failed"
if missing; then
  fail "the package installed, but the IDX files are not in $dir; see 'dpkg -L dataset-fashion-mnist'"
fi
say "installed in $dir"
