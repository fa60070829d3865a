#!/usr/bin/env bash
# Fails when a tracked C++ file differs from .clang-format (clang-format 14).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "check_format: clang-format not installed, skipping"; exit 77; }
mapfile -t files < <(git ls-files -co --exclude-standard -- '*.hpp' '*.cpp' '*.ipp' | grep -v '^build/' || true)
((${#files[@]})) || exit 0
existing=()
for f in "${files[@]}"; do [[ -f $f ]] && existing+=("$f"); done
# Compare real output: clang-format 14's --dry-run flags `}  // namespace a::inline v0` even
# though its replacement is the same text.
bad=0
for f in "${existing[@]}"; do
  if ! clang-format --style=file "$f" | cmp -s - "$f"; then
    echo "check_format: $f is not clang-formatted (run: clang-format -i $f)"
    bad=1
  fi
done
((bad == 0)) || exit 1
echo "check_format: ${#existing[@]} files formatted"
