#!/usr/bin/env bash
# vm.run: `katana-ctl vm run` end to end in a real VM (QEMU; TCG where KVM does not work), one
# boot: the guest image is built from this build's static agent into the build tree (the kernel
# package is cached in /var/cache/katana, and fake other versions there are pruned unless their
# lock is held; a second build must give the same bytes), a busybox
# rootfs is shared, and the test checks
# stdout and stderr of the container, its exit code (7) coming back as katana-ctl's, that QEMU
# runs in the host-side sandbox cgroup kata_vm-<pid> while the container runs (read from
# /proc/<QEMU pid>/cgroup), and that nothing is left behind: no QEMU, no sandbox directory, no
# mount, no kata_vm-<pid> cgroup in any hierarchy. A katana-ctl SIGKILLed mid-run leaves its
# sandbox directory, mounts and cgroup, which the next run removes. Then a run whose rootfs does
# not exist must fail after the boot and leave nothing behind either (QEMU is started, no agent
# conversation). A run whose katana-ctl gets SIGTERM passes it to the container, and one more
# signal tears it down (exit 130 for SIGINT), again leaving nothing; so does a run whose QEMU
# is killed, which fails saying so, and a guest that panics (what the agent's crash, as PID 1,
# ends in; here the OOM killer with vm.panic_on_oom), which fails with the panic's message.
# Then a run over virtio-fs (virtiofsd) instead of 9p, with [runtime] sandbox_cgroup_only = true
# so virtiofsd must be in the sandbox cgroup too. Then two runs with [factory] enable_template:
# one makes the VM template, the next starts from it; `vm template status|destroy` see it.
# Exit 77 (skip) with the reason when root, QEMU, busybox or the kernel package are not
# available.
#
#   vm_run_test.sh KATANA_CTL STATIC_AGENT SOURCE_DIR WORK_DIR
set -uo pipefail
# shellcheck source=/dev/null
. "$(dirname "${BASH_SOURCE[0]}")/../support/image_build.sh"
ctl=$1 agent=$2 src=$3 work=$4

skip() { echo "SKIP vm.run: $*"; exit 77; }
((EUID == 0)) || skip "needs root (bind mounts, /run/katana)"
[[ -x /bin/busybox ]] || skip "no /bin/busybox (apt-get install busybox-static)"
[[ -x $agent ]] || { echo "FAIL: no agent at $agent"; exit 1; }

rm -rf "$work"
mkdir -p "$work/image" "$work/rootfs"/{bin,etc,proc,dev,sys,tmp}
img=$work/image
ctl_pid=
tpl=/run/katana-vm-run-template-$$  # tmpfs: the template's memory file
# What image build extracted of other kernel versions is pruned, unless a build uses it (holds
# its lock). Fake versions, removed on exit.
cache=${XDG_CACHE_HOME:+$XDG_CACHE_HOME/katana}
cache=${cache:-/var/cache/katana}
stale=0.0.0-katana-vmrun-stale busy=0.0.0-katana-vmrun-busy
cleanup() {
  rm -rf "$tpl" "$cache"/*"$stale"* "$cache"/*"$busy"*
  # Only what this test started: the katana-ctl below and its sandbox.
  if [[ -n $ctl_pid ]] && kill -0 "$ctl_pid" 2>/dev/null; then kill -KILL "$ctl_pid"; fi
  if [[ -n $ctl_pid && -d /run/katana/vm/vm-$ctl_pid ]]; then
    grep -o "/run/katana/vm/vm-$ctl_pid[^ ]*" /proc/self/mountinfo | sort -r |
      while read -r m; do umount -l "$m"; done
    rm -rf "/run/katana/vm/vm-$ctl_pid"
  fi
}
trap cleanup EXIT

mkdir -p "$cache"
for v in "$stale" "$busy"; do
  mkdir -p "$cache/linux-image-$v/boot"
  touch "$cache/linux-image-$v/.katana-extracted" "$cache/linux-image-$v.lock" \
    "$cache/linux-image-${v}_9.9_amd64.deb"
done
mkdir -p "$cache/linux-image-$stale.part-XyZ123"
# A package of another version whose extraction failed (no tree): pruned too.
touch "$cache/linux-image-${stale}-dbg_9.9_amd64.deb"
# Not the stale version's: a directory image build did not make.
decoys=("linux-image-${stale}x")
mkdir -p "$cache/${decoys[0]}"
# Shared, as a build using that version holds it.
exec {busy_lock}<"$cache/linux-image-$busy.lock"
flock -s -n "$busy_lock" || { echo "FAIL: cannot lock $cache/linux-image-$busy.lock"; exit 1; }

# The guest image from this build's agent (kernel from the cache or apt-get download).
if ! "$ctl" image build --agent "$agent" --output-dir "$img" >"$work/image.log" 2>&1; then
  if image_download_failed "$work/image.log"; then
    skip "cannot fetch the guest kernel: $(tail -1 "$work/image.log")"
  fi
  echo "FAIL: katana-ctl image build"; cat "$work/image.log"; exit 1
fi
echo "image: $(grep -E '^(kernel|initrd):' "$work/image.log" | tr '\n' ' ')"
exec {busy_lock}<&-
problem=$(stale_pruned "$cache" "$stale" "${decoys[@]}") || { echo "FAIL: $problem"; exit 1; }
for kept in "linux-image-$busy/.katana-extracted" "linux-image-$busy.lock" "linux-image-${busy}_9.9_amd64.deb"; do
  [[ -e $cache/$kept ]] || { echo "FAIL: the cache of a build in progress was pruned: $kept"; exit 1; }
done
version=$(sed -n 's/^kernel: .*(\([0-9]* bytes\), \(.*\))$/\2/p' "$work/image.log")
[[ -e $cache/linux-image-$version/.katana-extracted ]] ||
  { echo "FAIL: the kernel just used ($version) is not in the cache"; exit 1; }
grep -q "cache: pruned kernel $stale" "$work/image.log" ||
  { echo "FAIL: the pruning is not reported"; cat "$work/image.log"; exit 1; }
grep -q "cache: kernel $busy is in use; not pruned" "$work/image.log" ||
  { echo "FAIL: the kept version is not reported"; cat "$work/image.log"; exit 1; }
# Reproducible: the same inputs give the same bytes (a second build, from the cache).
"$ctl" image build --agent "$agent" --output-dir "$work/image2" >"$work/image2.log" 2>&1 ||
  { echo "FAIL: the second katana-ctl image build"; cat "$work/image2.log"; exit 1; }
for f in katana-initrd.img vmlinux; do
  cmp -s "$img/$f" "$work/image2/$f" || { echo "FAIL: image build is not reproducible: $f differs"; exit 1; }
done
grep -q '(cached)' "$work/image2.log" || { echo "FAIL: the second image build did not use the cache"; cat "$work/image2.log"; exit 1; }
rm -rf "$work/image2"
sed -e "s|^kernel = .*|kernel = \"$img/vmlinux\"|" -e "s|^initrd = .*|initrd = \"$img/katana-initrd.img\"|" \
  "$src/config/configuration.toml" >"$work/configuration.toml"
grep -q "^initrd = \"$img/katana-initrd.img\"" "$work/configuration.toml" ||
  { echo "FAIL: could not point the configuration at $img"; exit 1; }

# The host: skip only when what the test cannot provide is missing (root, QEMU).
"$ctl" check --verbose --config "$work/configuration.toml" >"$work/check.out" 2>&1
sed -n 1p "$work/check.out"
if grep -E '^  fail ' "$work/check.out" | grep -Evq '^  fail +(root|qemu) '; then
  echo "FAIL: katana-ctl check:"; cat "$work/check.out"; exit 1
fi
grep -Eq '^  fail +qemu ' "$work/check.out" && skip "$(grep -E '^  fail +qemu ' "$work/check.out")"

cp /bin/busybox "$work/rootfs/bin/"
for tool in sh echo cat sleep tail; do ln -s busybox "$work/rootfs/bin/$tool"; done
marker="katana-vm-run-$RANDOM$RANDOM"
echo "$marker" >"$work/rootfs/marker"

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
leftovers() {  # leftovers PID WHAT
  local pid=$1 what=$2
  if pgrep -f -- "$img/katana-initrd.img" >/dev/null; then
    fail "$what: a QEMU of this test still runs: $(pgrep -af -- "$img/katana-initrd.img")"
  fi
  [[ ! -e /run/katana/vm/vm-$pid ]] || fail "$what: /run/katana/vm/vm-$pid is left"
  if grep -q "/run/katana/vm/vm-$pid" /proc/self/mountinfo; then
    fail "$what: mounts left: $(grep "/run/katana/vm/vm-$pid" /proc/self/mountinfo)"
  fi
  # The sandbox cgroup, in every cgroup (v1 and v2) hierarchy mounted here.
  local left
  left=$(awk '$3 == "cgroup" || $3 == "cgroup2" { print $2 }' /proc/self/mounts | sort -u |
    while read -r root; do find "$root" -maxdepth 3 -type d -name "kata_vm-$pid" 2>/dev/null; done)
  [[ -z $left ]] || fail "$what: sandbox cgroups left: $left"
}
# in_sandbox_cgroup PID CTL_PID WHAT: PID's /proc/PID/cgroup names kata_vm-CTL_PID.
in_sandbox_cgroup() {
  local pid=$1 ctl=$2 what=$3 lines
  lines=$(cat "/proc/$pid/cgroup" 2>/dev/null)
  if ! grep -q ":/kata_vm-$ctl\$" <<<"$lines"; then
    fail "$what (pid $pid) is not in the sandbox cgroup kata_vm-$ctl: $(tr '\n' ' ' <<<"$lines")"
  elif awk '$3 == "cgroup2"' /proc/self/mounts | grep -q . && ! grep -qx "0::/kata_vm-$ctl" <<<"$lines"; then
    fail "$what (pid $pid) is not in kata_vm-$ctl of the cgroup2 hierarchy: $(grep '^0::' <<<"$lines")"
  else
    echo "  $what (pid $pid) in kata_vm-$ctl of: $(grep ":/kata_vm-$ctl\$" <<<"$lines" |
      awk -F: '{ printf "%s ", ($2 == "" ? "cgroup2" : $2) }')"
  fi
}
# finished WHAT OUT ERR WANT: waits for $ctl_pid, shows its "vm:" lines, checks its exit code
# (WANT) and that the container printed the marker.
finished() {
  local what=$1 out=$2 err=$3 want=$4 rc
  wait "$ctl_pid"
  rc=$?
  echo "$what: rc=$rc"
  grep '^vm: ' "$err" | sed 's/^/  /'
  [[ $rc == "$want" ]] || { fail "$what: exit code $rc, want $want"; cat "$err"; }
  grep -qx "$marker" "$out" || { fail "$what: stdout:"; cat "$out"; }
}
# wait_for FILE REGEX: up to 120 s for a line of FILE to match (the boot takes seconds).
wait_for() {
  local i
  for ((i = 0; i < 1200; i++)); do
    grep -Eq -- "$2" "$1" 2>/dev/null && return 0
    kill -0 "$ctl_pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# 1. A container: stdout, stderr, exit code 7, the shared rootfs; QEMU in the sandbox cgroup
#    while the container runs (it sleeps 2 s after its output).
start=$(date +%s%N)
"$ctl" vm run --timing --config "$work/configuration.toml" --rootfs "$work/rootfs" -- \
  /bin/sh -c 'echo "hello from vm.run"; cat /marker; echo to-stderr >&2; sleep 2; exit 7' \
  >"$work/out" 2>"$work/err" &
ctl_pid=$!
if wait_for "$work/err" '^to-stderr$'; then
  qemu_pid=$(sed -nE 's/^vm: sandbox cgroup .*QEMU pid ([0-9]+)$/\1/p' "$work/err")
  if [[ -n $qemu_pid ]]; then
    in_sandbox_cgroup "$qemu_pid" "$ctl_pid" QEMU
  else
    fail "no 'vm: sandbox cgroup ... QEMU pid' line from --timing"
  fi
else
  fail "the container did not print to stderr"
fi
wait "$ctl_pid"
rc=$?
echo "vm run: rc=$rc in $((($(date +%s%N) - start) / 1000000)) ms"
grep '^vm: ' "$work/err" | sed 's/^/  /'
[[ $rc == 7 ]] || { fail "exit code $rc, want 7 (the container's)"; cat "$work/err"; }
printf 'hello from vm.run\n%s\n' "$marker" | cmp -s - "$work/out" ||
  { fail "stdout is not the container's:"; cat "$work/out"; }
grep -qx 'to-stderr' "$work/err" || fail "the container's stderr is not on stderr"
leftovers "$ctl_pid" "after a run"

# 2. katana-ctl SIGKILLed while its container runs: QEMU dies with it; the directory, mounts
#    and cgroup it leaves are removed by the next vm run (case 3).
"$ctl" vm run --config "$work/configuration.toml" --rootfs "$work/rootfs" -- \
  /bin/sh -c 'echo started >&2; sleep 60' >"$work/out-killed" 2>"$work/err-killed" &
ctl_pid=$!
killed_pid=$ctl_pid
if wait_for "$work/err-killed" '^started$'; then
  kill -KILL "$killed_pid"
  wait "$killed_pid" 2>/dev/null
  [[ -d /run/katana/vm/vm-$killed_pid ]] || fail "a killed katana-ctl: no sandbox directory to reap"
else
  fail "the container to be orphaned did not start"; cat "$work/err-killed"
fi

# 3. A rootfs that does not exist: fails after the boot, tears down all the same.
"$ctl" vm run --config "$work/configuration.toml" --rootfs "$work/no-such-rootfs" -- /bin/true \
  >"$work/out2" 2>"$work/err2" &
ctl_pid=$!
wait "$ctl_pid"
rc=$?
if [[ $rc != 125 ]] || ! grep -q 'no-such-rootfs' "$work/err2"; then
  fail "a missing rootfs: rc=$rc, stderr:"; cat "$work/err2"
else
  echo "missing rootfs: rc=$rc: $(grep -v '^vm: removed' "$work/err2" | head -1)"
fi
leftovers "$ctl_pid" "after a failed run"
grep -qx "vm: removed the stale sandbox vm-$killed_pid" "$work/err2" ||
  { fail "the killed run's sandbox was not reaped:"; cat "$work/err2"; }
leftovers "$killed_pid" "after a killed katana-ctl and the next run"

# 3b. Signals to katana-ctl: the first goes to the container (its trap runs, it keeps going),
#     the second tears the sandbox down: exit 128 + SIGINT, nothing left. The container's own
#     arguments after "--" are its own, even when they look like katana-ctl's options.
"$ctl" vm run --config "$work/configuration.toml" --rootfs "$work/rootfs" -- /bin/sh -c \
  'trap "echo got-TERM >&2" TERM; echo "started $1" >&2; while :; do sleep 1; done' \
  sh --log-level=bogus >"$work/out-sig" 2>"$work/err-sig" &
ctl_pid=$!
if wait_for "$work/err-sig" '^started '; then
  grep -qx 'started --log-level=bogus' "$work/err-sig" ||
    fail "signals: the container's arguments: $(grep '^started' "$work/err-sig")"
  kill -TERM "$ctl_pid"
  wait_for "$work/err-sig" '^got-TERM$' || fail "signals: SIGTERM did not reach the container"
  kill -INT "$ctl_pid"
  wait "$ctl_pid"
  rc=$?
  echo "signals: rc=$rc: $(grep '^vm: ' "$work/err-sig" | tail -1)"
  [[ $rc == 130 ]] || { fail "signals: exit code $rc, want 130"; cat "$work/err-sig"; }
else
  fail "signals: the container did not start"; cat "$work/err-sig"
fi
leftovers "$ctl_pid" "after a run torn down by a signal"

# 3c. QEMU killed while the container runs: katana-ctl fails and says how QEMU ended, and
#     tears down the rest.
"$ctl" vm run --timing --config "$work/configuration.toml" --rootfs "$work/rootfs" -- \
  /bin/sh -c 'echo started >&2; sleep 60' >"$work/out-qk" 2>"$work/err-qk" &
ctl_pid=$!
if wait_for "$work/err-qk" '^started$'; then
  qemu_pid=$(sed -nE 's/^vm: sandbox cgroup .*QEMU pid ([0-9]+)$/\1/p' "$work/err-qk")
  kill -KILL "$qemu_pid"
  wait "$ctl_pid"
  rc=$?
  echo "QEMU killed: rc=$rc: $(grep '^katana-ctl: ' "$work/err-qk")"
  if [[ $rc != 125 ]] || ! grep -q 'QEMU was killed by signal 9' "$work/err-qk"; then
    fail "QEMU killed: rc=$rc, stderr:"; cat "$work/err-qk"
  fi
else
  fail "QEMU killed: the container did not start"; cat "$work/err-qk"
fi
leftovers "$ctl_pid" "after QEMU was killed"

# 3d. The guest crashes while the container runs. The agent is the guest's PID 1, so its
#     crash is a kernel panic ("Attempted to kill init"); a container cannot kill PID 1, so the
#     test panics the guest another way: a memory hog in a 256 MiB guest with vm.panic_on_oom.
#     panic=1 reboots, -no-reboot ends QEMU; katana-ctl must say so and tear down.
sed -e 's/^default_memory = .*/default_memory = 256/' \
  -e 's/^kernel_params = "\(.*\)"/kernel_params = "\1 sysctl.vm.panic_on_oom=1"/' \
  "$work/configuration.toml" >"$work/configuration-panic.toml"
grep -q '^kernel_params = ".* sysctl.vm.panic_on_oom=1"' "$work/configuration-panic.toml" ||
  fail "could not set panic_on_oom in the configuration"
"$ctl" vm run --config "$work/configuration-panic.toml" --rootfs "$work/rootfs" -- \
  /bin/sh -c 'echo started >&2; exec tail /dev/zero' >"$work/out-panic" 2>"$work/err-panic" &
ctl_pid=$!
wait "$ctl_pid"
rc=$?
echo "guest panic: rc=$rc: $(grep '^katana-ctl: ' "$work/err-panic")"
if [[ $rc != 125 ]] || ! grep -q '^started$' "$work/err-panic" ||
  ! grep -q '^katana-ctl: .*after the guest rebooted.*guest kernel panic: Out of memory' \
    "$work/err-panic"; then
  fail "guest panic: rc=$rc, stderr:"; cat "$work/err-panic"
fi
leftovers "$ctl_pid" "after the guest panicked"

# 4. virtio-fs (virtiofsd) instead of 9p: the share both ways, the exit code, and no
#    virtiofsd left behind.
if [[ -x /usr/lib/qemu/virtiofsd ]]; then
  rm -f "$work/rootfs/written"
  sed 's/^sandbox_cgroup_only = .*/sandbox_cgroup_only = true/' "$work/configuration.toml" \
    >"$work/configuration-cgonly.toml"
  grep -q '^sandbox_cgroup_only = true' "$work/configuration-cgonly.toml" ||
    fail "could not set sandbox_cgroup_only in the configuration"
  "$ctl" vm run --timing --shared-fs virtio-fs --config "$work/configuration-cgonly.toml" \
    --rootfs "$work/rootfs" -- \
    /bin/sh -c 'cat /marker; echo from-guest >/written; echo started >&2; sleep 2; exit 3' \
    >"$work/out3" 2>"$work/err3" &
  ctl_pid=$!
  if wait_for "$work/err3" '^started$'; then
    qemu_pid=$(sed -nE 's/^vm: sandbox cgroup .*QEMU pid ([0-9]+)$/\1/p' "$work/err3")
    [[ -n $qemu_pid ]] && in_sandbox_cgroup "$qemu_pid" "$ctl_pid" "virtio-fs: QEMU"
    for vfs_pid in $(pgrep -f -- "virtiofsd.*vm-$ctl_pid/"); do
      in_sandbox_cgroup "$vfs_pid" "$ctl_pid" "virtio-fs: virtiofsd"
    done
  else
    fail "virtio-fs: the container did not print to stderr"
  fi
  finished "vm run --shared-fs virtio-fs" "$work/out3" "$work/err3" 3
  [[ $(cat "$work/rootfs/written" 2>/dev/null) == from-guest ]] ||
    fail "virtio-fs: the container's write did not reach the host's rootfs"
  if pgrep -f -- "virtiofsd.*vm-$ctl_pid/" >/dev/null; then
    fail "virtio-fs: virtiofsd left: $(pgrep -af -- "virtiofsd.*vm-$ctl_pid/")"
  fi
  leftovers "$ctl_pid" "after a virtio-fs run"
else
  echo "virtio-fs case not run: no /usr/lib/qemu/virtiofsd (qemu-system-common)"
fi

# 5. VM templating ([factory] enable_template): the first run makes the template, the next
#    starts from it (no kernel boot) and still runs the container with the shared rootfs.
sed -e 's/^enable_template = .*/enable_template = true/' \
  -e "s|^template_path = .*|template_path = \"$tpl\"|" "$work/configuration.toml" \
  >"$work/configuration-tpl.toml"
grep -q "^template_path = \"$tpl\"" "$work/configuration-tpl.toml" ||
  fail "could not set template_path in the configuration"
for round in make clone; do
  "$ctl" vm run --timing --config "$work/configuration-tpl.toml" --rootfs "$work/rootfs" -- \
    /bin/sh -c 'cat /marker; exit 5' >"$work/out5" 2>"$work/err5" &
  ctl_pid=$!
  finished "vm run from a template ($round)" "$work/out5" "$work/err5" 5
  made=$(grep -c '^vm: made the VM template' "$work/err5")
  [[ $round == make && $made == 1 || $round == clone && $made == 0 ]] ||
    fail "template ($round): 'made the VM template' printed $made time(s)"
  leftovers "$ctl_pid" "after a run from a template ($round)"
done
[[ -s $tpl/state && -e $tpl/memory ]] || fail "no template state or memory in $tpl"
"$ctl" vm template status --config "$work/configuration-tpl.toml" | grep -q ' ready$' ||
  fail "vm template status: not ready after a run made it"
"$ctl" vm template destroy --config "$work/configuration-tpl.toml" >/dev/null
[[ ! -e $tpl ]] || fail "vm template destroy left $tpl: $(ls "$tpl")"
"$ctl" vm template status --config "$work/configuration-tpl.toml" >"$work/tpl-status" &&
  fail "vm template status: exit 0 after destroy: $(cat "$work/tpl-status")"

if ((failures)); then echo "$failures failure(s)"; exit 1; fi
rm -rf "$work"
echo "vm.run: ok"
