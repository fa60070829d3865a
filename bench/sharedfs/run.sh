#!/usr/bin/env bash
# Shared-fs benchmark: virtio-9p against virtio-fs (virtiofsd) for `katana-ctl vm run`, the
# two interleaved round by round in one run: time to the exit of a /bin/true container as
# katana-ctl reports it, and (in a second VM) a read workload timed inside the guest (/proc/uptime, 10 ms steps): 50 reads of a
# 1 MiB file and `find` + `cat` over a tree of 100 small files on the share. Medians; JSON to
# bench/results/sharedfs.json. Needs root, QEMU, /usr/lib/qemu/virtiofsd and the guest image
# (katana-ctl image build).
#
#   bench/sharedfs/run.sh [-n 5] [--json FILE]    KATANA_CTL=path (default build/release)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
rounds=5
json=$root/bench/results/sharedfs.json
while (($#)); do
  case $1 in
    -n) rounds=$2; shift 2 ;;
    --json) json=$2; shift 2 ;;
    *) echo "usage: $0 [-n N] [--json FILE]" >&2; exit 2 ;;
  esac
done
((EUID == 0)) || { echo "sharedfs bench: needs root" >&2; exit 77; }
[[ -x /usr/lib/qemu/virtiofsd ]] || { echo "sharedfs bench: no virtiofsd" >&2; exit 77; }
ctl=${KATANA_CTL:-$root/build/release/bin/katana-ctl}
[[ -x $ctl ]] || { echo "sharedfs bench: no katana-ctl at $ctl (KATANA_CTL=...)" >&2; exit 2; }

work=$(mktemp -d /tmp/katana-sharedfs.XXXXXX)
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs
mkdir -p "$rootfs"/{bin,etc,proc,dev,sys,tmp,data/tree}
cp /bin/busybox "$rootfs/bin/"
for t in sh cat find seq true; do ln -s busybox "$rootfs/bin/$t"; done
head -c 1048576 /dev/urandom >"$rootfs/data/big"
for i in $(seq 100); do echo "file $i" >"$rootfs/data/tree/f$i"; done
# Times in centiseconds from /proc/uptime, so no date(1) resolution is needed.
script='u() { read -r a _ </proc/uptime; echo "${a%.*}${a#*.}"; }
t0=$(u); for i in $(seq 50); do cat /data/big >/dev/null; done; t1=$(u)
find /data/tree -type f | while read -r f; do cat "$f" >/dev/null; done; t2=$(u)
echo "bench $(((t1 - t0) * 10)) $(((t2 - t1) * 10))"'

declare -A exit_ms read_ms tree_ms
for ((r = 1; r <= rounds; r++)); do
  for fs in virtio-9p virtio-fs; do
    # Boot to the exit of /bin/true, then the read workload in a second VM.
    out=$("$ctl" vm run --timing --shared-fs "$fs" --rootfs "$rootfs" -- /bin/true 2>&1)
    e=$(sed -n 's/^vm: container exited (0) at \([0-9.]*\) s$/\1/p' <<<"$out")
    out=$("$ctl" vm run --shared-fs "$fs" --rootfs "$rootfs" -- /bin/sh -c "$script" 2>&1)
    read -r _ rd tr < <(grep '^bench ' <<<"$out")
    [[ -n $e && -n $rd ]] || { echo "round $r $fs failed:"; echo "$out"; exit 1; }
    exit_ms[$fs]+=" $(awk -v s="$e" 'BEGIN{printf "%d", s*1000}')"
    read_ms[$fs]+=" $rd"
    tree_ms[$fs]+=" $tr"
    echo "round $r $fs: container exit ${e}s, 50 x 1 MiB ${rd} ms, 100 small files ${tr} ms" >&2
  done
done
median() { tr ' ' '\n' | sed '/^$/d' | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
arr() { sed 's/^ //; s/ /,/g' <<<"$1"; }
{
  printf '{"bench":"sharedfs","what":"katana-ctl vm run over virtio-9p vs virtio-fs: /bin/true container exit (ms from launch) and guest-timed reads (ms, 10 ms resolution)",'
  printf '"date":"%s","accel":"%s","loadavg":"%s","rounds":%d,"results":{' \
    "$(date -u +%FT%TZ)" "$(grep -q . /dev/kvm 2>/dev/null && echo kvm || echo tcg)" \
    "$(cut -d' ' -f1-3 /proc/loadavg)" "$rounds"
  sep=
  for fs in virtio-9p virtio-fs; do
    printf '%s"%s":{"container_exit_ms":{"median":%s,"samples":[%s]},"read_50x1MiB_ms":{"median":%s,"samples":[%s]},"read_100_small_files_ms":{"median":%s,"samples":[%s]}}' \
      "$sep" "$fs" "$(median <<<"${exit_ms[$fs]}")" "$(arr "${exit_ms[$fs]}")" \
      "$(median <<<"${read_ms[$fs]}")" "$(arr "${read_ms[$fs]}")" \
      "$(median <<<"${tree_ms[$fs]}")" "$(arr "${tree_ms[$fs]}")"
    sep=,
  done
  printf '}}\n'
} >"$json"
python3 -m json.tool "$json" >/dev/null
for fs in virtio-9p virtio-fs; do
  printf '%-10s container exit %5s ms   50 x 1 MiB %5s ms   100 small files %5s ms\n' "$fs" \
    "$(median <<<"${exit_ms[$fs]}")" "$(median <<<"${read_ms[$fs]}")" "$(median <<<"${tree_ms[$fs]}")"
done
echo "wrote $json"
