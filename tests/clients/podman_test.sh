#!/bin/sh
# katana-runk under podman (`--runtime`): private storage (vfs driver, own --root/--runroot in a
# temp dir), a busybox image imported from a local tarball, cgroupfs manager, no network.
# Cases: run with output and exit code, run -d + ps + exec + logs + stop + rm, a failing
# command's exit code (127), and nothing left (no container process, no katana-runk state).
# This host's hard RLIMIT_NOFILE/NPROC are below podman's defaults (runc fails the same way),
# so the containers ask for modest limits.
#   podman_test.sh /path/to/katana-runk
set -u
KRUNK="$1"
[ "$(id -u)" = 0 ] || { echo "skip: needs root"; exit 77; }
for t in podman busybox tar; do
  command -v "$t" >/dev/null || { echo "skip: $t not installed"; exit 77; }
done
W=$(mktemp -d /tmp/katana-podman.XXXXXX)
# katana-runk's default --root: podman's cleanup process does not pass --runtime-flag on.
STATE=/run/katana-runk
P="podman --root $W/root --runroot $W/runroot --storage-driver vfs --cgroup-manager cgroupfs
  --events-backend none --runtime $KRUNK"
cleanup() {
  $P rm -af -t 0 >/dev/null 2>&1
  $P rmi -af >/dev/null 2>&1
  umount -R "$W" 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT INT TERM
fail() { echo "FAIL: $*"; exit 1; }
# Modest values any host allows (runc fails on podman's defaults here just the same).
hard() { awk -v k="$1" -v cap="$2" 'index($0, k) == 1 {
  n = $(NF - 1); print (n == "unlimited" || n + 0 > cap) ? cap : n }' /proc/self/limits; }
n=$(hard "Max open files" 1024); p=$(hard "Max processes" 4096)
LIMITS="--ulimit nofile=$n:$n --ulimit nproc=$p:$p"
RUN="run $LIMITS --network none"

mkdir -p "$W/rootfs/bin" "$W/rootfs/etc" "$W/rootfs/proc" "$W/rootfs/dev" "$W/rootfs/sys" \
  "$W/rootfs/tmp"
cp "$(command -v busybox)" "$W/rootfs/bin/busybox"
for t in sh echo cat sleep true; do ln -s busybox "$W/rootfs/bin/$t"; done
tar -C "$W/rootfs" -cf "$W/bb.tar" . || fail "tar"
$P import "$W/bb.tar" localhost/katana-bb:1 >"$W/import.log" 2>&1 ||
  { cat "$W/import.log"; fail "podman import"; }

# 1. Output and exit code.
out=$($P $RUN --rm --cidfile "$W/cid1" localhost/katana-bb:1 /bin/sh -c 'echo hello-podman; exit 3' \
  2>"$W/err")
rc=$?
[ "$out" = hello-podman ] || { cat "$W/err"; fail "stdout '$out'"; }
[ $rc = 3 ] || { cat "$W/err"; fail "exit code $rc, want 3"; }
echo "run: ok (stdout, exit 3)"

# 2. Detached: ps, exec, logs, stop, rm.
$P $RUN -d --name k1 --cidfile "$W/cid2" localhost/katana-bb:1 /bin/sh -c 'echo started; exec sleep 100' \
  >/dev/null 2>"$W/err" || { cat "$W/err"; fail "run -d"; }
$P ps --format '{{.Names}} {{.Status}}' | grep -q '^k1 Up' || fail "ps: $($P ps -a)"
[ "$($P exec k1 /bin/cat /proc/1/cmdline | tr '\0' ' ')" = "sleep 100 " ] ||
  fail "exec: pid 1 is not the container's sleep"
$P exec k1 /bin/sh -c 'exit 5'
[ $? = 5 ] || fail "exec exit code"
for _ in 1 2 3 4 5 6 7 8 9 10; do
  [ "$($P logs k1 2>/dev/null)" = started ] && break; sleep 0.2
done
[ "$($P logs k1)" = started ] || fail "logs: '$($P logs k1)'"
pid=$($P inspect --format '{{.State.Pid}}' k1)
$P stop -t 2 k1 >/dev/null || fail "stop"
[ "$($P inspect --format '{{.State.Status}}' k1)" = exited ] || fail "not exited after stop"
kill -0 "$pid" 2>/dev/null && fail "the container's process $pid still runs after stop"
$P rm k1 >/dev/null || fail "rm"
echo "run -d / ps / exec / logs / stop / rm: ok"

# 3. A command that does not exist: podman reports the runtime's error, exit 127.
$P $RUN --rm --cidfile "$W/cid3" localhost/katana-bb:1 /no/such/cmd >/dev/null 2>"$W/err"
rc=$?
[ $rc = 127 ] || { cat "$W/err"; fail "missing command: exit $rc, want 127"; }
grep -q 'no/such/cmd' "$W/err" || { cat "$W/err"; fail "the error does not name the command"; }
echo "missing command: ok ($(grep -m1 no/such/cmd "$W/err"))"

# Nothing left: no container, no katana-runk state.
[ -z "$($P ps -aq)" ] || fail "containers left: $($P ps -a)"
for f in "$W"/cid*; do
  id=$(cat "$f")
  # --rm cleans up asynchronously: give podman's cleanup process a moment.
  for _ in 1 2 3 4 5 6 7 8 9 10; do [ -e "$STATE/$id" ] || break; sleep 0.3; done
  [ ! -e "$STATE/$id" ] || fail "katana-runk state left: $STATE/$id"
  pgrep -f -- "$id" >/dev/null && fail "a process of container $id is left: $(pgrep -af -- "$id")"
done
echo "podman: ok"
