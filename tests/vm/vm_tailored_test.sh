#!/usr/bin/env bash
# vm.tailored: katana's tailored guest kernel end to end. `katana-ctl image build --kernel
# tailored` builds it from Debian's linux-source package with config/kernel/x86_64.config
# (cached in /var/cache/katana: the first build on a machine takes ~15 min on 2 cores, later
# ones seconds), then `vm run` boots it with no module loads and runs a container on the 9p
# rootfs: its output and exit code come back, the guest is that kernel, nothing is left.
# A fragment with an option whose dependency is off must fail, naming the option. What builds
# of other source versions left in the cache is pruned, except a version being built.
# Exit 77 (skip) with the reason when root, QEMU, busybox or the source package are missing.
#
#   vm_tailored_test.sh KATANA_CTL STATIC_AGENT SOURCE_DIR WORK_DIR
set -uo pipefail
# shellcheck source=/dev/null
. "$(dirname "${BASH_SOURCE[0]}")/../support/image_build.sh"
ctl=$1 agent=$2 src=$3 work=$4

skip() { echo "SKIP vm.tailored: $*"; exit 77; }
((EUID == 0)) || skip "needs root (bind mounts, /run/katana)"
[[ -x /bin/busybox ]] || skip "no /bin/busybox (apt-get install busybox-static)"
[[ -x /usr/bin/qemu-system-x86_64 ]] || skip "no QEMU (apt-get install qemu-system-x86)"
[[ $(uname -m) == x86_64 ]] || skip "the tailored kernel's fragment is for x86_64"

rm -rf "$work"
mkdir -p "$work/rootfs"/{bin,proc,dev,sys,tmp}
img=$work/image
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# What builds of other source versions left is pruned, unless that build runs (holds its lock).
cache=${XDG_CACHE_HOME:+$XDG_CACHE_HOME/katana}
cache=${cache:-/var/cache/katana}
stale=0.0-katana-test-stale busy=0.0-katana-test-busy
trap 'rm -rf "$cache"/*"$stale"* "$cache"/*"$busy"*' EXIT
for v in "$stale" "$busy"; do
  mkdir -p "$cache/kernel-tailored-$v/arch" "$cache/linux-source-$v/kernel"
  touch "$cache/kernel-tailored-$v/lock" "$cache/linux-source-$v/Makefile" \
    "$cache/linux-source-9.9_${v}_all.deb"
done
mkdir -p "$cache/linux-source-$stale.part-XyZ123"
# Not the stale version's: another package of that version, a name that only starts alike.
decoys=("linux-image-x_${stale}_amd64.deb" "linux-source-${stale}x")
mkdir -p "$cache/${decoys[1]}"
touch "$cache/${decoys[0]}"
# This shell holds the busy version's lock (katana-ctl's own open of it conflicts).
exec {busy_lock}<"$cache/kernel-tailored-$busy/lock"
flock -n "$busy_lock" || fail "cannot lock $cache/kernel-tailored-$busy/lock"

start=$(date +%s)
if ! "$ctl" image build --kernel tailored --agent "$agent" --output-dir "$img" \
  >"$work/image.log" 2>&1; then
  if image_download_failed "$work/image.log"; then
    skip "cannot fetch linux-source: $(tail -1 "$work/image.log")"
  fi
  echo "FAIL: katana-ctl image build --kernel tailored"; tail -40 "$work/image.log"; exit 1
fi
echo "image build --kernel tailored: $(($(date +%s) - start)) s"
grep -E '^(kernel|initrd):|cached' "$work/image.log" | sed 's/^/  /'
exec {busy_lock}<&-
problem=$(stale_pruned "$cache" "$stale" "${decoys[@]}") || fail "$problem"
for kept in "kernel-tailored-$busy/lock" "linux-source-$busy/Makefile" "linux-source-9.9_${busy}_all.deb"; do
  [[ -e $cache/$kept ]] || fail "the cache of a running build was pruned: $kept"
done
grep -q "cache: pruned kernel $stale" "$work/image.log" || fail "the pruning is not reported"
grep -q "cache: kernel $busy is being built; not pruned" "$work/image.log" ||
  fail "the skipped version is not reported"
grep -q '^initrd: .*, 0 modules)' "$work/image.log" ||
  fail "the tailored kernel's initrd has modules: $(grep '^initrd:' "$work/image.log")"

# A fragment Kconfig cannot honour: VT_CONSOLE depends on VT, which the fragment turns off.
{ cat "$src/config/kernel/x86_64.config"; echo "CONFIG_VT_CONSOLE=y"; } >"$work/bad.config"
if "$ctl" image build --kernel-config "$work/bad.config" --agent "$agent" \
  --output-dir "$work/bad-image" >"$work/bad.log" 2>&1; then
  fail "a fragment with CONFIG_VT_CONSOLE=y (needs VT) built"
elif ! grep -q 'dropped options of the fragment.*CONFIG_VT_CONSOLE=y' "$work/bad.log"; then
  fail "the unmet option is not named:"; tail -5 "$work/bad.log"
else
  echo "bad fragment: $(grep '^katana-ctl' "$work/bad.log")"
fi

sed -e "s|^kernel = .*|kernel = \"$img/vmlinux\"|" -e "s|^initrd = .*|initrd = \"$img/katana-initrd.img\"|" \
  "$src/config/configuration.toml" >"$work/configuration.toml"
cp /bin/busybox "$work/rootfs/bin/"
for tool in sh echo cat uname; do ln -s busybox "$work/rootfs/bin/$tool"; done

start=$(date +%s%N)
"$ctl" vm run --timing --config "$work/configuration.toml" --rootfs "$work/rootfs" -- \
  /bin/sh -c 'echo "kernel $(uname -r)"; [ -e /proc/modules ] || echo no-modules; exit 4' \
  >"$work/out" 2>"$work/err" &
ctl_pid=$!
wait "$ctl_pid"
rc=$?
echo "vm run: rc=$rc in $((($(date +%s%N) - start) / 1000000)) ms: $(tr '\n' ' ' <"$work/out")"
grep -E '^vm: (agent ready|container exited)' "$work/err" | sed 's/^/  /'
[[ $rc == 4 ]] || { fail "exit code $rc, want 4"; cat "$work/err"; }
grep -q '^kernel ' "$work/out" || { fail "no output from the container:"; cat "$work/out"; }
# Debian's kernel release ends in -amd64 and has module support; the tailored one neither.
grep -q -- '-amd64' "$work/out" && fail "the guest runs Debian's kernel: $(cat "$work/out")"
grep -qx 'no-modules' "$work/out" || fail "the guest kernel has module support (/proc/modules)"
if pgrep -f -- "$img/katana-initrd.img" >/dev/null; then
  fail "a QEMU of this test still runs: $(pgrep -af -- "$img/katana-initrd.img")"
fi
[[ ! -e /run/katana/vm/vm-$ctl_pid ]] || fail "/run/katana/vm/vm-$ctl_pid is left"
grep -q "/run/katana/vm/vm-$ctl_pid" /proc/self/mountinfo && fail "mounts of vm-$ctl_pid are left"

if ((failures)); then echo "$failures failure(s)"; exit 1; fi
rm -rf "$work"
echo "vm.tailored: ok"
