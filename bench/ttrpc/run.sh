#!/usr/bin/env bash
# Builds what the ttrpc benchmark needs (Release) and runs it: katana's ttrpc against the
# reference Go ttrpc, 1 and 64 concurrent callers on one unix-socket connection.
#   bench/ttrpc/run.sh [ttrpc-bench options: --duration S --warmup S --payload BYTES
#                       --callers 1,64 --rounds N --json PATH]
# Defaults: 3 s per row after 0.5 s warm-up, 64-byte payload, best of 3 rounds; writes
# bench/results/ttrpc.json. Later options override these. KATANA_BENCH_BUILD_DIR picks the build
# directory (default build/bench-release).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${KATANA_BENCH_BUILD_DIR:-$root/build/bench-release}

"$root/tools/setup.sh"
args=(-S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DKATANA_BUILD_BENCH=ON
  -DKATANA_BUILD_TESTS=OFF -DKATANA_BUILD_EXAMPLES=OFF -DKATANA_HEADER_CHECKS=OFF)
if grep -Eq '^[^#]*add_subdirectory\(bench\)' "$root/CMakeLists.txt"; then
  args+=(-UCMAKE_PROJECT_katana_INCLUDE)
else
  # The top level does not add bench/ (yet): add it from a hook.
  args+=(-DCMAKE_PROJECT_katana_INCLUDE="$root/bench/add_bench.cmake")
fi
cmake "${args[@]}" >/dev/null
cmake --build "$build" -j2 --target katana_ttrpc_bench
exec "$build/bin/ttrpc-bench" --rounds 3 --json "$root/bench/results/ttrpc.json" "$@"
