#!/usr/bin/env bash
# Fails when a tracked C++ file differs from .clang-format (clang-format 14).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "check_format: clang-format not installed, skipping"; exit 77; }
mapfile -t files < <(git ls-files -co --exclude-standard -- '*.hpp' '*.cpp' '*.ipp' | grep -v '^build/' || true)
((${#files[@]})) || exit 0
existing=()
for f in "${files[@]}"; do [[ -f $f ]] && existing+=("$f"); done
clang-format --dry-run --Werror "${existing[@]}"
echo "check_format: ${#existing[@]} files formatted"
