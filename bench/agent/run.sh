#!/usr/bin/env bash
# katana-agent's memory (RSS idle, after CreateSandbox, with N running containers) and
# CreateContainer + StartContainer latency. Builds the Release, statically linked agent (what
# goes into the initrd) and agent-bench; then either runs the agent in host mode (--isolate;
# bench/results/agent.json) or, with --vm, as PID 1 of a QEMU TCG guest booted from
# `katana-ctl image build` (the agent reports its memory in GetMetrics;
# bench/results/agent-vm.json). Prints a table.
#   bench/agent/run.sh [--vm] [-n 10] [--json FILE] [--agent PATH]
# KATANA_BENCH_BUILD_DIR picks the build directory (default build/agent-release); KATANA_CTL
# a katana-ctl for --vm (default: built there). Needs root
# and busybox-static (exit 77 otherwise).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${KATANA_BENCH_BUILD_DIR:-$root/build/agent-release}
n=10
json=""
agent=""
vm=""
while (($#)); do
  case $1 in
    -n) n=$2; shift 2 ;;
    --json) json=$2; shift 2 ;;
    --agent) agent=$2; shift 2 ;;
    --vm) vm=1; shift ;;
    *) echo "usage: $0 [--vm] [-n N] [--json FILE] [--agent PATH]" >&2; exit 2 ;;
  esac
done
json=${json:-$root/bench/results/agent${vm:+-vm}.json}
[[ $(id -u) == 0 ]] || { echo "skip: needs root"; exit 77; }
[[ -x /bin/busybox ]] || { echo "skip: needs /bin/busybox (busybox-static)"; exit 77; }
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DKATANA_BUILD_BENCH=ON \
  -DKATANA_BUILD_TESTS=OFF -DKATANA_HEADER_CHECKS=OFF >/dev/null
ctl=${KATANA_CTL:-}  # a katana-ctl to use instead of building one (--vm)
targets=(katana-agent agent-bench)
if [[ -n $vm && -z $ctl ]]; then targets+=(katana-ctl); fi
cmake --build "$build" -j2 --target "${targets[@]}"
ctl=${ctl:-$build/bin/katana-ctl}
agent=${agent:-$build/bin/katana-agent}
work=$(mktemp -d /tmp/katana-agent-bench.XXXXXX)
mkdir -p "$(dirname "$json")"
size="$(file -b "$agent" | grep -q 'statically linked' && echo static || echo dynamic), $(stat -c %s "$agent") bytes"
if [[ -n $vm ]]; then
  command -v qemu-system-x86_64 >/dev/null || { echo "skip: needs qemu-system-x86"; exit 77; }
  "$ctl" image build --agent "$agent" --output-dir "$work/img" >/dev/null
  tsc=$(awk '/cpu MHz/ {printf "%d", $4 * 1000; exit}' /proc/cpuinfo)
  qemu-system-x86_64 -nodefaults -display none -monitor none -no-reboot -M q35 -accel tcg \
    -cpu max -smp 1 -m 512M -kernel "$work/img/vmlinux" -initrd "$work/img/katana-initrd.img" \
    -append "console=ttyS0 quiet panic=1 tsc_early_khz=$tsc agent.server_addr=serial://agent.channel.0" \
    -serial "file:$work/console.log" -device virtio-serial-pci \
    -chardev "socket,id=ch0,path=$work/agent.sock,server=on,wait=off" \
    -device virtserialport,chardev=ch0,name=agent.channel.0 >"$work/qemu.log" 2>&1 &
  qpid=$!
  trap 'kill -TERM "$qpid" 2>/dev/null || true; wait "$qpid" 2>/dev/null || true; rm -rf "$work"' EXIT
  for _ in $(seq 300); do [[ -S $work/agent.sock ]] && break; sleep 0.1; done
  for _ in $(seq 120); do
    "$ctl" agent --server-address "unix://$work/agent.sock" --timeout 2 Check \
      >/dev/null 2>&1 && break
    sleep 0.5
  done
  "$build/bin/agent-bench" --server-address "unix://$work/agent.sock" -n "$n" --json "$json" \
    --label "katana-agent ($size) as PID 1, QEMU TCG guest"
  echo "JSON: $json"
  exit 0
fi
"$agent" --listen "unix://$work/agent.sock" --isolate --log-file "$work/agent.log" \
  --log-level warn &
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
"$build/bin/agent-bench" --server-address "unix://$work/agent.sock" --agent-pid "$pid" -n "$n" \
  --json "$json" --label "katana-agent ($size) in host mode"
echo "JSON: $json"
