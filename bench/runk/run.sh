#!/bin/sh
# The seeds' runk table: N sequential `run` of /bin/true (busybox-static rootfs) per runtime, in
# one invocation: mean wall ms per container and max RSS of the runtime process (/usr/bin/time
# %M: the largest of the runtime and the processes it waits for, so the container's own
# /bin/true, the same for every runtime, is a floor; it is printed too). Table + JSON.
#   bench/runk/run.sh --katana-runk PATH [-n 100] [--json bench/results/runk.json]
#
# Same cgroup setting for all: every runtime runs the same bundle (no linux.resources, no
# cgroupsPath) twice, with cgroups disabled (katana-runk and crun --cgroup-manager=disabled;
# runc cannot disable them and always uses cgroupfs: its row says so) and with cgroupfs.
# crun 1.8 refuses a hybrid host whose unified hierarchy has controllers ("cgroups in hybrid
# mode not supported, drop all controllers from cgroupv2"; hugetlb here) even with cgroups
# disabled, so on such a host /sys/fs/cgroup/unified is unmounted in the benchmark's private
# mount namespace: all three runtimes see the same legacy v1 layout.
set -u
KRUNK=""
N=100
JSON=""
while [ $# -gt 0 ]; do
  case "$1" in
    --katana-runk) KRUNK=$(realpath "$2"); shift 2 ;;
    -n) N="$2"; shift 2 ;;
    --json) JSON=$(realpath -m "$2"); shift 2 ;;
    *) echo "usage: $0 --katana-runk PATH [-n N] [--json FILE]" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "skip: needs root"; exit 77; }
[ -x /usr/bin/time ] || { echo "skip: /usr/bin/time (package time) missing"; exit 77; }
command -v busybox >/dev/null || { echo "skip: busybox-static missing"; exit 77; }

# Everything runs in a private mount namespace (state roots on a tmpfs, the cgroup view below).
if [ -z "${RUNK_BENCH_INNER:-}" ]; then
  export RUNK_BENCH_INNER=1
  exec unshare -m --propagation private sh "$0" ${KRUNK:+--katana-runk "$KRUNK"} -n "$N" \
    ${JSON:+--json "$JSON"}
fi
LAYOUT="host"
if [ -n "$(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null)" ]; then
  umount -l /sys/fs/cgroup/unified || exit 1
  LAYOUT="legacy v1 (hybrid host; its unified hierarchy, which crun refuses, unmounted here)"
fi

W=$(mktemp -d /tmp/runk-bench.XXXXXX)
# State roots on a tmpfs, as /run is on most hosts (the runtimes' default roots live there).
R="$W/state"
trap 'umount "$R" 2>/dev/null; rm -rf "$W"' EXIT INT TERM
mkdir -p "$R" && mount -t tmpfs -o mode=0700 runk-bench "$R" || exit 1
mkdir -p "$W/b/rootfs/bin" "$W/b/rootfs/dev" "$W/b/rootfs/proc"
cp "$(command -v busybox)" "$W/b/rootfs/bin/busybox"
ln -s busybox "$W/b/rootfs/bin/true"
cat > "$W/b/config.json" <<'J'
{"ociVersion":"1.0.2","process":{"terminal":false,"user":{"uid":0,"gid":0},"args":["/bin/true"],
"env":["PATH=/bin"],"cwd":"/","noNewPrivileges":true},"root":{"path":"rootfs","readonly":true},
"hostname":"bench","mounts":[{"destination":"/proc","type":"proc","source":"proc"}],
"linux":{"namespaces":[{"type":"pid"},{"type":"ipc"},{"type":"uts"},{"type":"mount"},
{"type":"network"}]}}
J

# The same bundle with `sleep 1`, to sample the runtime's own VmHWM while it waits.
cp -a "$W/b" "$W/s"
ln -s busybox "$W/s/rootfs/bin/sleep"
sed -i 's|"args":\["/bin/true"\]|"args":["/bin/sleep","1"]|' "$W/s/config.json"

floor=$(/usr/bin/time -f %M "$W/b/rootfs/bin/true" 2>&1)
: > "$W/samples"
: > "$W/err"
configs=""
add() {  # label cgroups runtime-binary global-args...
  [ -x "$3" ] || { echo "# $1: $3 missing, skipped"; return; }
  configs="$configs$*
"
}
[ -n "$KRUNK" ] && add katana-runk disabled "$KRUNK" --cgroup-manager=disabled
add crun disabled /usr/bin/crun --cgroup-manager=disabled
add runc cgroupfs /usr/sbin/runc  # runc cannot disable cgroups
[ -n "$KRUNK" ] && add katana-runk-cgroupfs cgroupfs "$KRUNK" --cgroup-manager=cgroupfs
add crun-cgroupfs cgroupfs /usr/bin/crun --cgroup-manager=cgroupfs

one() {  # run-id label cgroups runtime-binary global-args...: appends "label cgroups ns rss ok"
  id="$1"; label="$2"; cgroups="$3"; bin="$4"; shift 4
  t0=$(date +%s%N)
  (cd "$W/b" && /usr/bin/time -o "$W/rss1" -f %M "$bin" --root "$R/$label" "$@" \
    run "$id" >/dev/null 2>>"$W/err.$label" </dev/null)
  ok=$?
  t1=$(date +%s%N)
  echo "$label $cgroups $((t1 - t0)) $(grep -E '^[0-9]+$' "$W/rss1" | tail -1) $ok" >> "$W/samples"
}

# The runtime process alone: VmHWM from /proc while its container sleeps (%M above can differ:
# it also covers the container init before exec, and this kernel's exit-time RSS counters are
# approximate).
: > "$W/hwm"
hwm() {  # label cgroups runtime-binary global-args...
  label="$1"; bin="$3"; shift 3
  (cd "$W/s" && exec "$bin" --root "$R/hwm-$label" "$@" run hwm >/dev/null 2>&1 </dev/null) &
  pid=$!
  sleep 0.6
  echo "$label $(awk '/^VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null)" >> "$W/hwm"
  wait "$pid"
}
printf '%s' "$configs" | while read -r line; do
  [ -n "$line" ] || continue
  # shellcheck disable=SC2086  # the configuration's words
  hwm $line
done

# Round robin (one run of each configuration per round), so load from other processes on the
# machine spreads over all runtimes alike; one warm-up round is not counted.
i=0
while [ "$i" -le "$N" ]; do
  printf '%s' "$configs" | while read -r line; do
    [ -n "$line" ] || continue
    # shellcheck disable=SC2086  # the configuration's words
    one "b$i" $line
  done
  [ "$i" = 0 ] && : > "$W/samples"
  i=$((i + 1))
done

echo "# $N x run /bin/true per row (round robin); cgroup layout: $LAYOUT"
echo "# max RSS floor: the container's busybox /bin/true alone is $floor KB"
printf '%-24s %-9s %9s %11s %11s %6s\n' "runtime" "cgroups" "mean ms" "max RSS KB" "VmHWM KB" \
  "fails"
summary=$(awk '{ n[$1]++; ns[$1] += $3; if ($4 > rss[$1]) rss[$1] = $4; if ($5 != 0) f[$1]++;
                 cg[$1] = $2; if (!($1 in order)) { order[$1] = ++k; names[k] = $1 } }
  END { for (j = 1; j <= k; j++) { l = names[j];
          printf "%s %s %.2f %d %d %d\n", l, cg[l], ns[l] / n[l] / 1e6, rss[l], f[l] + 0, n[l] } }' \
  "$W/samples")
rows=""
crun_ms=""
krunk_ms=""
krunk_rss=""
krunk_own=""
while read -r label cgroups mean rss fails runs; do
  own=$(awk -v l="$label" '$1 == l {print $2}' "$W/hwm")
  own=${own:-0}
  printf '%-24s %-9s %9s %11s %11s %6s\n' "$label" "$cgroups" "$mean" "$rss" "$own" "$fails"
  [ -s "$W/err.$label" ] && sort -u "$W/err.$label" | head -3 | sed "s/^/#   $label: /"
  rows="$rows{\"runtime\":\"$label\",\"cgroups\":\"$cgroups\",\"mean_ms\":$mean,\"max_rss_kb\":$rss,\"runtime_vmhwm_kb\":$own,\"failures\":$fails,\"runs\":$runs},"
  case "$label" in
    crun) crun_ms=$mean ;;
    katana-runk) krunk_ms=$mean; krunk_rss=$rss; krunk_own=$own ;;
  esac
done <<EOF2
$summary
EOF2

ratio=""
if [ -n "$crun_ms" ] && [ -n "$krunk_ms" ]; then
  ratio=$(echo "$krunk_ms $crun_ms" | awk '{printf "%.2f", $1 / $2}')
  echo "# katana-runk / crun time (cgroups disabled): $ratio (target <= 0.80);" \
    "katana-runk max RSS $krunk_rss KB, VmHWM $krunk_own KB (target 1.5 MB)"
fi
if [ -n "$JSON" ]; then
  size=$([ -n "$KRUNK" ] && stat -c %s "$KRUNK" || echo 0)
  printf '{"benchmark":"runk","runs":%s,"order":"round robin, one warm-up round","mean_ms":"wall time of each run, including the /usr/bin/time wrapper","max_rss_kb":"/usr/bin/time %%M: the runtime or a process it waited for (the container init), whichever peaked","runtime_vmhwm_kb":"VmHWM of the runtime process alone, from /proc while it waits for a sleep 1 container","cgroup_layout":"%s","kernel":"%s","floor_true_rss_kb":%s,"katana_runk_bytes":%s,"crun":"%s","runc":"%s","katana_runk_vs_crun_time":%s,"results":[%s]}\n' \
    "$N" "$LAYOUT" "$(uname -r)" "$floor" "$size" \
    "$(/usr/bin/crun --version 2>/dev/null | head -1)" "$(/usr/sbin/runc --version 2>/dev/null | head -1)" \
    "${ratio:-null}" "${rows%,}" > "$JSON"
  echo "# JSON written to $JSON"
fi
