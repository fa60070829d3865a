#!/bin/sh
# The seeds' runk table: N sequential `run` of /bin/true (busybox-static rootfs) per runtime:
# mean wall ms per container and max RSS of the runtime process (/usr/bin/time %M, which
# includes the container's own /bin/true, the same for every runtime). Table + JSON.
#   bench/runk/run.sh [--katana-runk PATH] [-n 100] [--json out.json]
# crun refuses this host's hybrid cgroups, so the main comparison runs with cgroups disabled
# (no linux.resources; crun/katana-runk --cgroup-manager=disabled; runc cannot disable them
# and always creates a cgroup, noted in its row). A second section uses cgroupfs for the
# runtimes that support it here.
set -u
KRUNK=""
N=100
JSON=""
while [ $# -gt 0 ]; do
  case "$1" in
    --katana-runk) KRUNK=$(realpath "$2"); shift 2 ;;
    -n) N="$2"; shift 2 ;;
    --json) JSON="$2"; shift 2 ;;
    *) echo "usage: $0 [--katana-runk PATH] [-n N] [--json FILE]" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "skip: needs root"; exit 77; }
[ -x /usr/bin/time ] || { echo "skip: /usr/bin/time (package time) missing"; exit 77; }
W=$(mktemp -d /tmp/runk-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT INT TERM
mkdir -p "$W/b/rootfs/bin"
cp "$(command -v busybox)" "$W/b/rootfs/bin/busybox"
ln -s busybox "$W/b/rootfs/bin/true"
cat > "$W/b/config.json" <<'J'
{"ociVersion":"1.0.2","process":{"terminal":false,"user":{"uid":0,"gid":0},"args":["/bin/true"],
"env":["PATH=/bin"],"cwd":"/","noNewPrivileges":true},"root":{"path":"rootfs","readonly":true},
"hostname":"bench","mounts":[{"destination":"/proc","type":"proc","source":"proc"}],
"linux":{"namespaces":[{"type":"pid"},{"type":"ipc"},{"type":"uts"},{"type":"mount"},
{"type":"network"}]}}
J

rows=""
bench() {  # label runtime-binary global-args...
  label="$1"; bin="$2"; shift 2
  [ -x "$bin" ] || { echo "# $label: $bin missing, skipped"; return; }
  : > "$W/rss"
  start=$(date +%s%N)
  i=0
  fails=0
  while [ "$i" -lt "$N" ]; do
    (cd "$W/b" && /usr/bin/time -a -o "$W/rss" -f %M "$bin" --root "$W/root-$label" "$@" run "b$i" \
      >/dev/null 2>>"$W/err") || fails=$((fails + 1))
    i=$((i + 1))
  done
  end=$(date +%s%N)
  mean=$(echo "$start $end $N" | awk '{printf "%.2f", ($2 - $1) / 1e6 / $3}')
  rss=$(grep -E '^[0-9]+$' "$W/rss" | sort -n | tail -1)
  printf '%-34s %10s %12s %6s\n' "$label" "$mean" "$rss" "$fails"
  rows="$rows{\"runtime\":\"$label\",\"mean_ms\":$mean,\"max_rss_kb\":${rss:-0},\"failures\":$fails,\"runs\":$N},"
}

printf '%-34s %10s %12s %6s\n' "runtime ($N x run /bin/true)" "mean ms" "max RSS KB" "fails"
echo "# cgroups disabled (runc: always cgroupfs)"
[ -n "$KRUNK" ] && bench katana-runk "$KRUNK" --cgroup-manager=disabled
bench crun /usr/bin/crun --cgroup-manager=disabled
bench runc-cgroupfs /usr/sbin/runc
echo "# cgroupfs (this host: hybrid v1 + unified)"
[ -n "$KRUNK" ] && bench katana-runk-cgroupfs "$KRUNK"
bench crun-cgroupfs /usr/bin/crun --cgroup-manager=cgroupfs
if [ -s "$W/err" ]; then echo "# errors (first 5):"; sort -u "$W/err" | head -5 | sed 's/^/#   /'; fi
if [ -n "$JSON" ]; then
  echo "{\"benchmark\":\"runk\",\"runs\":$N,\"results\":[${rows%,}]}" > "$JSON"
  echo "# JSON written to $JSON"
fi
