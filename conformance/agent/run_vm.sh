#!/usr/bin/env bash
# Runs agent-conformance against katana-agent as PID 1 of a QEMU guest (TCG works): builds the
# kernel + initrd with `katana-ctl image build --agent AGENT` (the agent must be static), boots
# it with the agent channel on a virtio-serial port (agent.channel.0 <-> a host unix socket)
# and drives it. DestroySandbox must power the guest off.
#   run_vm.sh KATANA_CTL STATIC_KATANA_AGENT AGENT_CONFORMANCE [suite options...]
# Exit 77 (skip) without root, qemu-system-x86_64, busybox-static or an image.
set -uo pipefail
# shellcheck source=/dev/null
. "$(dirname "${BASH_SOURCE[0]}")/../../tests/support/image_build.sh"
ctl=$1 agent=$2 suite=$3
shift 3
[[ $(id -u) == 0 ]] || { echo "skip: needs root"; exit 77; }
command -v qemu-system-x86_64 >/dev/null || { echo "skip: needs qemu-system-x86"; exit 77; }
[[ -x /bin/busybox ]] || { echo "skip: needs /bin/busybox (busybox-static)"; exit 77; }
file -b "$agent" | grep -q 'statically linked' || { echo "skip: $agent is not static"; exit 77; }
work=$(mktemp -d /tmp/katana-agent-vm.XXXXXX)
qemu_pid=""
cleanup() {
  if [[ -n $qemu_pid ]] && kill -0 "$qemu_pid" 2>/dev/null; then
    kill -TERM "$qemu_pid" 2>/dev/null; sleep 1; kill -KILL "$qemu_pid" 2>/dev/null
  fi
  rm -rf "$work"
}
trap cleanup EXIT
if ! "$ctl" image build --agent "$agent" --output-dir "$work/img" >"$work/image.log" 2>&1; then
  if image_download_failed "$work/image.log"; then
    echo "skip: cannot fetch the guest kernel: $(tail -1 "$work/image.log")"; exit 77
  fi
  echo "FAIL: katana-ctl image build"; cat "$work/image.log"; exit 1
fi
tsc=$(awk '/cpu MHz/ {printf "%d", $4 * 1000; exit}' /proc/cpuinfo)
qemu-system-x86_64 -nodefaults -display none -monitor none -no-reboot -M q35 -accel tcg \
  -cpu max -smp 1 -m 512M -kernel "$work/img/vmlinux" -initrd "$work/img/katana-initrd.img" \
  -append "console=ttyS0 quiet panic=1 tsc_early_khz=$tsc agent.server_addr=serial://agent.channel.0" \
  -serial "file:$work/console.log" -device virtio-serial-pci \
  -chardev "socket,id=ch0,path=$work/agent.sock,server=on,wait=off" \
  -device virtserialport,chardev=ch0,name=agent.channel.0 >"$work/qemu.log" 2>&1 &
qemu_pid=$!
start=$(date +%s.%N)
for _ in $(seq 300); do [[ -S $work/agent.sock ]] && break; sleep 0.1; done
ready=""
for _ in $(seq 120); do
  if "$ctl" agent --server-address "unix://$work/agent.sock" --timeout 2 Check >/dev/null 2>&1; then
    ready=1; break
  fi
  kill -0 "$qemu_pid" 2>/dev/null || break
  sleep 0.5
done
if [[ -z $ready ]]; then
  echo "the guest agent did not answer:"; cat "$work/qemu.log"; tail -30 "$work/console.log"; exit 1
fi
echo "# agent ready $(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN {printf "%.1f", e - s}') s after qemu started"
"$suite" --server-address "unix://$work/agent.sock" --strict "$@"
rc=$?
for _ in $(seq 50); do kill -0 "$qemu_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$qemu_pid" 2>/dev/null; then
  echo "not ok - the guest did not power off after DestroySandbox"; rc=1
else
  echo "ok - the guest powered off after DestroySandbox"
fi
if ((rc != 0)); then echo "---- guest console ----"; tail -40 "$work/console.log"; fi
exit $rc
