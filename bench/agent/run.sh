#!/usr/bin/env bash
# katana-agent in host mode: RSS idle, after CreateSandbox and with N running containers;
# CreateContainer + StartContainer latency. Builds the Release, statically linked agent (what
# goes into the initrd) and agent-bench, runs the agent with --isolate, prints a table and
# writes bench/results/agent.json.
#   bench/agent/run.sh [-n 10] [--json FILE] [--agent PATH] [--engine katana|process]
# KATANA_BENCH_BUILD_DIR picks the build directory (default build/agent-release). Needs root
# and busybox-static (exit 77 otherwise).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${KATANA_BENCH_BUILD_DIR:-$root/build/agent-release}
n=10
json=$root/bench/results/agent.json
agent=""
engine=katana
while (($#)); do
  case $1 in
    -n) n=$2; shift 2 ;;
    --json) json=$2; shift 2 ;;
    --agent) agent=$2; shift 2 ;;
    --engine) engine=$2; shift 2 ;;
    *) echo "usage: $0 [-n N] [--json FILE] [--agent PATH] [--engine katana|process]" >&2; exit 2 ;;
  esac
done
[[ $(id -u) == 0 ]] || { echo "skip: needs root"; exit 77; }
[[ -x /bin/busybox ]] || { echo "skip: needs /bin/busybox (busybox-static)"; exit 77; }
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DKATANA_BUILD_BENCH=ON \
  -DKATANA_BUILD_TESTS=OFF -DKATANA_HEADER_CHECKS=OFF >/dev/null
cmake --build "$build" -j2 --target katana-agent agent-bench
agent=${agent:-$build/bin/katana-agent}
work=$(mktemp -d /tmp/katana-agent-bench.XXXXXX)
"$agent" --listen "unix://$work/agent.sock" --isolate --engine "$engine" \
  --log-file "$work/agent.log" --log-level warn &
pid=$!
cleanup() {
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 100); do [[ -S $work/agent.sock ]] && break; sleep 0.1; done
mkdir -p "$(dirname "$json")"
label="katana-agent $(file -b "$agent" | grep -q 'statically linked' && echo static || echo dynamic)"
label="$label, $(stat -c %s "$agent") bytes, engine $engine"
"$build/bin/agent-bench" --server-address "unix://$work/agent.sock" --agent-pid "$pid" -n "$n" \
  --json "$json" --label "$label"
echo "JSON: $json"
