#!/usr/bin/env bash
# Builds a libFuzzer target with clang (ASan + UBSan) and runs it for a bounded time.
# usage: run.sh SOURCE_DIR WORK_DIR TARGET SECONDS
set -euo pipefail
src=$1 work=$(realpath -m "$2") target=$3 seconds=$4
if ! command -v clang++ >/dev/null; then
  echo "fuzz: clang++ is not installed (tools/setup.sh installs it); skipping"
  exit 77
fi
mkdir -p "$work/corpus-$target"
bin=$work/$target
if [[ ! -x $bin || $src/tests/fuzz/$target.cpp -nt $bin ]] ||
   find "$src/include/katana" -newer "$bin" \( -name '*.hpp' -o -name '*.ipp' \) | grep -q .; then
  clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -DBOOST_ASIO_HAS_CO_AWAIT=1 -I "$src/include" "$src/tests/fuzz/$target.cpp" -o "$bin"
fi
# Seeds: a few valid inputs so the fuzzer starts past the trivial rejections.
case $target in
  ttrpc_frame_fuzz)
    printf '\x00\x00\x00\x0b\x00\x00\x00\x01\x01\x00\x0a\x01s\x12\x01m\x1a\x01p\x20\x05' >"$work/corpus-$target/seed1"
    printf '\x00\x00\x00\x04\x00\x00\x00\x01\x02\x00\x0a\x00\x12\x00' >"$work/corpus-$target/seed2" ;;
  config_toml_fuzz)
    # ToruNiina/toml11#199: toml11 3.7.1 alone over-reads the heap on this input.
    printf "[']\\xb1[']\\xb1" >"$work/corpus-$target/toml11-199"
    cp "$src/config/configuration.toml" "$work/corpus-$target/default" ;;
  oci_spec_fuzz)
    printf '{"ociVersion":"1.2.0","process":{"args":["sh"],"cwd":"/","user":{"uid":0,"gid":0}},"root":{"path":"rootfs"},"linux":{"namespaces":[{"type":"pid"}]}}' >"$work/corpus-$target/seed1" ;;
esac
cd "$work"
"$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  "corpus-$target" 2>&1 | tail -15
