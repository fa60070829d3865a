#!/usr/bin/env bash
# The whole test suite on a fresh machine: install what is missing, build, run every test.
# 1) dev preset: every test (unit, header, layering, format, packaging, CLI);
# 2) asan-ubsan preset: the unit tests again under AddressSanitizer and UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
# Let ccache hit across clones in different directories.
export CCACHE_BASEDIR=$PWD CCACHE_NOHASHDIR=1

cmake --preset dev
cmake --build --preset dev
ctest --preset dev

cmake --preset asan-ubsan -DKATANA_BUILD_EXAMPLES=OFF -DKATANA_HEADER_CHECKS=OFF
cmake --build --preset asan-ubsan
ctest --preset asan-ubsan -L unit
