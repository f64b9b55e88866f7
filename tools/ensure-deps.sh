#!/usr/bin/env bash
# Installs the Debian packages a make target needs, or stops with the exact command.
# Usage: tools/ensure-deps.sh PACKAGE...   (each PACKAGE is checked with dpkg-query)
set -euo pipefail
missing=()
for pkg in "$@"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "ccc: installing missing packages: ${missing[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo"; else
  echo "ccc: cannot install without root. Run: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >&2 || true
if ! $SUDO apt-get install -y -qq "${missing[@]}" >&2; then
  echo "ccc: apt-get failed. Run: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
