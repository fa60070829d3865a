#!/usr/bin/env bash
# Installs every Debian package katana needs. Idempotent: when everything is present it only
# asks dpkg and returns; `apt-get update` runs only when a package is missing.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mapfile -t pkgs < <(grep -v '^\s*#' "$here/packages.txt" | tr -s ' \t' '\n' | grep -v '^$')

missing=()
for p in "${pkgs[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ $status == "install ok installed" ]] || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi

sudo=()
if ((EUID != 0)); then
  command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
echo "setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt_install() {
  "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${missing[@]}"
}
if ! apt_install; then
  # A fresh machine may have stale or empty package lists.
  "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=300 update -q
  apt_install
fi
