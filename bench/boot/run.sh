#!/usr/bin/env bash
# Boot benchmark: `katana-ctl vm run ... /bin/true` (launch -> QEMU up -> agent ready ->
# container exit -> torn down) next to a bare boot of the same QEMU command line, kernel and
# initrd to its first userspace message, N rounds interleaved in one run; medians, QEMU's and
# katana-ctl's max RSS, and our overhead over the bare boot (target: at most 15 %). A third
# series runs the same with [factory] enable_template (QEMU starts from a saved VM).
#
#   bench/boot/run.sh [-n 5] [--settle S] [--kernel debian|tailored] [--json FILE]
#   (default FILE: bench/results/boot.json, boot-tailored.json with --kernel tailored)
#
# --kernel picks the guest kernel `katana-ctl image build --kernel` makes: Debian's (default)
# or katana's tailored one (built from linux-source once, ~15 min, then cached).
#
# Each measured launch waits S seconds (default 3) after the previous VM exits. A VM started
# at once reuses host memory the last one just freed and was measured up to 0.45 s faster,
# alternating from run to run on this host (a nested guest whose own host reclaims freed
# memory after a few seconds); after the pause every boot starts from the same state.
#
# The bare boot: `katana-ctl vm cmdline` gives the argv katana would run (same machine, memory,
# accelerator, kernel parameters, devices); its initrd is katana's with a second cpio appended
# that adds busybox and /bare-init (echo a line, poweroff -f), booted with rdinit=/bare-init.
# Its "first userspace" time is when that line comes out of the console (a FIFO in place of the
# console log file); QEMU's elapsed time and max RSS come from GNU time. katana's phases come from `vm run --timing` (measured from
# the bench's launch of katana-ctl, passed in KATANA_TIMING_START_NS, so its exec and start-up
# count; "wall" is the bench's clock around the whole process).
#
# Builds katana-ctl and the static katana-agent in Release (KATANA_BENCH_BUILD_DIR, default
# build/boot-release) unless KATANA_CTL and KATANA_AGENT name them. Needs root, QEMU,
# busybox-static and GNU time (exit 77 otherwise). Not a ctest: timings depend on the machine.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${KATANA_BENCH_BUILD_DIR:-$root/build/boot-release}
n=5
settle=3
kernel=debian
json=
while (($#)); do
  case $1 in
    -n) n=$2; shift 2 ;;
    --settle) settle=$2; shift 2 ;;
    --kernel) kernel=$2; shift 2 ;;
    --json) json=$2; shift 2 ;;
    *) echo "usage: $0 [-n N] [--settle S] [--kernel debian|tailored] [--json FILE]" >&2; exit 2 ;;
  esac
done
case $kernel in
  debian) json=${json:-$root/bench/results/boot.json} ;;
  tailored) json=${json:-$root/bench/results/boot-tailored.json} ;;
  *) echo "--kernel: debian or tailored, not $kernel" >&2; exit 2 ;;
esac
[[ $(id -u) == 0 ]] || { echo "skip: needs root"; exit 77; }
[[ -x /bin/busybox ]] || { echo "skip: needs /bin/busybox (busybox-static)"; exit 77; }
[[ -x /usr/bin/time ]] || { echo "skip: needs GNU time (apt-get install time)"; exit 77; }
command -v qemu-system-x86_64 >/dev/null || { echo "skip: needs qemu-system-x86"; exit 77; }

ctl=${KATANA_CTL:-}
agent=${KATANA_AGENT:-}
if [[ -z $ctl || -z $agent ]]; then
  export CCACHE_BASEDIR=$root CCACHE_NOHASHDIR=1
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DKATANA_WERROR=ON \
    -DKATANA_BUILD_TESTS=OFF -DKATANA_HEADER_CHECKS=OFF >/dev/null
  cmake --build "$build" -j2 --target katana-ctl katana-agent
  ctl=${ctl:-$build/bin/katana-ctl}
  agent=${agent:-$build/bin/katana-agent}
fi

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
work=$(mktemp -d /tmp/katana-boot-bench.XXXXXX)
qpid=""  # the bare boot's GNU time (QEMU is its child), while one runs
trap 'rm -rf "$work" "${tpl:-}"' EXIT

echo "boot bench: guest image from $agent" >&2
"$ctl" image build --kernel "$kernel" --agent "$agent" --output-dir "$work/img" \
  >"$work/image.log" 2>&1 ||
  { cat "$work/image.log"; exit 1; }
kernel_version=$(sed -n 's/^kernel: .*(\([0-9]* bytes\), \(.*\))$/\2/p' "$work/image.log")
sed -e "s|^kernel = .*|kernel = \"$work/img/vmlinux\"|" \
  -e "s|^initrd = .*|initrd = \"$work/img/katana-initrd.img\"|" \
  "$root/config/configuration.toml" >"$work/configuration.toml"

# The same with [factory] enable_template: a VM template (on tmpfs) made in the warm-up, then
# each run starts QEMU from it instead of booting.
tpl=/run/katana-boot-bench-template-$$
sed -e 's/^enable_template = .*/enable_template = true/' \
  -e "s|^template_path = .*|template_path = \"$tpl\"|" "$work/configuration.toml" \
  >"$work/configuration-tpl.toml"

# The bare initrd: katana's initrd + busybox + /bare-init.
mkdir -p "$work/overlay/bin"
cp /bin/busybox "$work/overlay/bin/busybox"
cat >"$work/overlay/bare-init" <<'EOF'
#!/bin/busybox sh
echo "katana-bare-boot: first userspace message"
/bin/busybox poweroff -f
EOF
chmod 755 "$work/overlay/bare-init"
(cd "$work/overlay" && printf '%s\n' bin bin/busybox bare-init |
  /bin/busybox cpio -o -H newc 2>/dev/null) >"$work/overlay.cpio"
cat "$work/img/katana-initrd.img" "$work/overlay.cpio" >"$work/bare-initrd.img"

# The argv katana runs, for a sandbox directory of the bench's.
bare_dir=$work/bare
mkdir -p "$bare_dir/shared"
mapfile -t bare_argv < <("$ctl" vm cmdline --dir "$bare_dir" --config "$work/configuration.toml")
for i in "${!bare_argv[@]}"; do
  case ${bare_argv[$i]} in
    "$work/img/katana-initrd.img") bare_argv[$i]=$work/bare-initrd.img ;;
  esac
  if ((i > 0)) && [[ ${bare_argv[$((i - 1))]} == -append ]]; then
    bare_argv[$i]="${bare_argv[$i]} rdinit=/bare-init"
  fi
done
accel=$(printf '%s\n' "${bare_argv[@]}" | sed -n 's/.*accel=\([a-z]*\).*/\1/p' | head -1)

rootfs=$work/rootfs
mkdir -p "$rootfs"/{bin,proc,dev,sys,tmp,etc}
cp /bin/busybox "$rootfs/bin/"
ln -s busybox "$rootfs/bin/true"

now_ns() { date +%s%N; }
ms() { echo $((($2 - $1) / 1000000)); }

kill_bare_qemu() {  # QEMU is GNU time's child: kill it by its pid, time then reports
  local q
  [[ -n $qpid ]] || return 0
  q=$(cat "/proc/$qpid/task/$qpid/children" 2>/dev/null || true)
  [[ -n $q ]] && kill -TERM $q 2>/dev/null
  wait "$qpid" || true
}

bare_round() (  # a subshell, prints: first_userspace_ms qemu_exit_ms qemu_max_rss_kib
  trap kill_bare_qemu EXIT
  rm -f "$bare_dir"/*.sock "$bare_dir/console.log"
  # The console "file" is a FIFO: the message is seen when QEMU writes it, without polling
  # (a polling loop competes with QEMU for the CPU). O_RDWR: opening it does not block.
  mkfifo "$bare_dir/console.log"
  local t0 t1="" cfd line deadline
  exec {cfd}<>"$bare_dir/console.log"
  t0=$(now_ns)
  /usr/bin/time -f '%e %M' -o "$work/bare.time" "${bare_argv[@]}" >"$work/bare.out" 2>&1 &
  qpid=$!
  deadline=$((t0 + 60000000000))
  # The UART delivers a line in pieces: a read that times out keeps its partial input, which
  # is collected in acc until the newline.
  local acc="" got
  while :; do
    line=""
    got=0
    IFS= read -r -t 0.2 -u "$cfd" line && got=1
    acc+=$line
    if [[ -z $t1 && $acc == *katana-bare-boot:* ]]; then
      t1=$(now_ns)
      deadline=$((t1 + 10000000000))  # poweroff -f follows
    fi
    if ((got)); then
      acc=""
      continue
    fi
    [[ -z $line ]] || continue
    kill -0 "$qpid" 2>/dev/null || break
    if (($(now_ns) > deadline)); then
      echo "bare boot: ${t1:+no power-off after the message}${t1:-no userspace message}; killed" >&2
      kill_bare_qemu
      break
    fi
  done
  exec {cfd}<&-
  wait "$qpid" || true
  qpid=""
  [[ -n $t1 ]] || { cat "$work/bare.out" >&2; exit 1; }
  [[ -s $work/bare.time ]] || { echo "bare boot: no GNU time report" >&2; exit 1; }
  # GNU time: QEMU's elapsed seconds (10 ms resolution) and max RSS.
  tail -1 "$work/bare.time" | awk -v first="$(ms "$t0" "$t1")" '{ printf "%d %d %d\n", first, $1 * 1000, $2 }'
)

# ISO time of the agent's log line with message $2 in console log $1, in ns.
agent_log_ns() {
  local t
  t=$(grep -F "\"msg\":\"$2\"" "$1" | head -1 | sed -n 's/^{"time":"\([^"]*\)".*/\1/p')
  [[ -n $t ]] && date -d "$t" +%s%N || echo 0
}

katana_round() {  # katana_round [CONFIG]; prints: qemu_up agent_ready container_exit torn_down
  #   wall ctl_rss qemu_rss guest_modules guest_create_container guest_start_to_exit
  local t0 t1 rc pid dir modules create run config=${1:-$work/configuration.toml}
  t0=$(now_ns)
  rc=0
  # --keep: the console log stays, for the guest side of the timeline (the agent's log).
  # Phases count from t0, as the bare boot's do: katana-ctl's exec and start-up included.
  KATANA_TIMING_START_NS=$t0 "$ctl" vm run --timing --keep --config "$config" --rootfs "$rootfs" -- \
    /bin/true >"$work/vm.out" 2>"$work/vm.err" &
  pid=$!
  wait "$pid" || rc=$?
  t1=$(now_ns)
  dir=/run/katana/vm/vm-$pid
  [[ $rc == 0 ]] || { echo "vm run failed ($rc)" >&2; cat "$work/vm.err" >&2; rm -rf "$dir"; exit 1; }
  cp "$dir/console.log" "$work/vm-console.log"
  rm -rf "$dir"
  # (none from a template: its modules were loaded before it was saved)
  modules=$(grep -o '"msg":"modules loaded".*"ms":[0-9]*' "$work/vm-console.log" |
    sed 's/.*"ms"://' || true)
  create=$(ms "$(agent_log_ns "$work/vm-console.log" "sandbox created")" \
    "$(agent_log_ns "$work/vm-console.log" "container created")")
  run=$(ms "$(agent_log_ns "$work/vm-console.log" "container started")" \
    "$(agent_log_ns "$work/vm-console.log" "process exited")")
  awk -v wall="$(ms "$t0" "$t1")" -v modules="${modules:-0}" -v create="$create" -v run="$run" '
    /QEMU up/ { up = $(NF - 3) * 1000 }
    /agent ready/ { ready = $(NF - 1) * 1000 }
    /container exited/ { exited = $(NF - 1) * 1000 }
    /torn down/ { down = $(NF - 1) * 1000 }
    /max RSS/ { ctl = $(NF - 4); qemu = $(NF - 1) }
    END { printf "%d %d %d %d %d %d %d %d %d %d\n", up, ready, exited, down, wall, ctl, qemu,
                 modules, create, run }' "$work/vm.err"
}

# A warm-up of each (page cache, QEMU's first start), not counted.
echo "boot bench: warm-up, then $n rounds (bare boot, then katana), accel $accel" >&2
bare_round >/dev/null
katana_round >/dev/null
katana_round "$work/configuration-tpl.toml" >/dev/null  # makes the template
: >"$work/bare.txt"
: >"$work/katana.txt"
: >"$work/template.txt"
for ((r = 1; r <= n; r++)); do
  sleep "$settle"
  b=$(bare_round)
  sleep "$settle"
  k=$(katana_round)
  sleep "$settle"
  t=$(katana_round "$work/configuration-tpl.toml")
  echo "$b" >>"$work/bare.txt"
  echo "$k" >>"$work/katana.txt"
  echo "$t" >>"$work/template.txt"
  echo "round $r: bare (first userspace, qemu exit, rss) $b | katana (up, ready, exit, down, wall, ctl rss, qemu rss) $k | from template $t" >&2
done

# column FILE N -> {"median", "min", "max", "samples"} (sorted with sort: mawk has no asort)
median() { awk -v c="$2" '{ print $c }' "$1" | sort -n | awk '{ v[NR] = $1 } END {
  print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
stats() {
  local sorted samples
  sorted=$(awk -v c="$2" '{ print $c }' "$1" | sort -n)
  samples=$(awk -v c="$2" '{ printf "%s%s", (NR > 1 ? ", " : ""), $c }' "$1")
  printf '{"median": %s, "min": %s, "max": %s, "samples": [%s]}' "$(median "$1" "$2")" \
    "$(head -1 <<<"$sorted")" "$(tail -1 <<<"$sorted")" "$samples"
}
bare_first=$(median "$work/bare.txt" 1)
k_exit=$(median "$work/katana.txt" 3)
k_wall=$(median "$work/katana.txt" 5)
k_ready=$(median "$work/katana.txt" 2)
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (a / b - 1) * 100 }'; }
over_exit=$(pct "$k_exit" "$bare_first")
over_wall=$(pct "$k_wall" "$bare_first")
# The host's speed drifts between minutes: also compare each round's pair (adjacent in time)
# and the fastest of each; the target counts as met only when the medians and the pairs agree.
over_paired=$(paste -d' ' <(awk '{ print $1 }' "$work/bare.txt") <(awk '{ print $3 }' "$work/katana.txt") |
  awk '{ print ($2 / $1 - 1) * 100 }' | sort -g |
  awk '{ v[NR] = $1 } END { printf "%.1f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
over_min=$(pct "$(awk '{ print $3 }' "$work/katana.txt" | sort -n | head -1)" \
  "$(awk '{ print $1 }' "$work/bare.txt" | sort -n | head -1)")
met=$(awk -v p="$over_exit" -v q="$over_paired" 'BEGIN { print (p <= 15 && q <= 15 ? "true" : "false") }')
t_exit=$(median "$work/template.txt" 3)
over_tpl=$(pct "$t_exit" "$bare_first")

mkdir -p "$(dirname "$json")"
cat >"$json" <<EOF
{
  "bench": "boot",
  "what": "katana-ctl vm run /bin/true vs a bare boot of the same QEMU argv, kernel and initrd (rdinit=/bare-init: echo, poweroff -f); times in ms from launch, RSS in KiB",
  "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "host": {"cpus": $(nproc), "kernel": "$(uname -r)", "loadavg_start": "$load_start", "loadavg_end": "$(cut -d' ' -f1-3 /proc/loadavg)",
           "qemu": "$(qemu-system-x86_64 --version | head -1)", "accelerator": "$accel"},
  "guest": {"kernel": "$kernel_version", "initrd_bytes": $(stat -c %s "$work/img/katana-initrd.img"),
            "agent_bytes": $(stat -c %s "$agent"), "memory": "$(printf '%s\n' "${bare_argv[@]}" | grep -A1 '^-m$' | tail -1)"},
  "rounds": $n,
  "settle_s": $settle,
  "bare": {
    "first_userspace_ms": $(stats "$work/bare.txt" 1),
    "qemu_exit_ms": $(stats "$work/bare.txt" 2),
    "qemu_max_rss_kib": $(stats "$work/bare.txt" 3)
  },
  "katana": {
    "qemu_up_ms": $(stats "$work/katana.txt" 1),
    "agent_ready_ms": $(stats "$work/katana.txt" 2),
    "container_exit_ms": $(stats "$work/katana.txt" 3),
    "torn_down_ms": $(stats "$work/katana.txt" 4),
    "wall_ms": $(stats "$work/katana.txt" 5),
    "ctl_max_rss_kib": $(stats "$work/katana.txt" 6),
    "qemu_max_rss_kib": $(stats "$work/katana.txt" 7),
    "guest": {
      "what": "from the agent's log in the console: loading its modules (finit_module), CreateSandbox done to CreateContainer done, StartContainer done to the process's exit",
      "modules_ms": $(stats "$work/katana.txt" 8),
      "create_container_ms": $(stats "$work/katana.txt" 9),
      "start_to_exit_ms": $(stats "$work/katana.txt" 10)
    }
  },
  "katana_from_template": {
    "what": "the same vm run with [factory] enable_template: QEMU starts from a saved VM (made once, in the warm-up) instead of booting; any modules were loaded in the template",
    "qemu_up_ms": $(stats "$work/template.txt" 1),
    "agent_ready_ms": $(stats "$work/template.txt" 2),
    "container_exit_ms": $(stats "$work/template.txt" 3),
    "torn_down_ms": $(stats "$work/template.txt" 4),
    "wall_ms": $(stats "$work/template.txt" 5),
    "qemu_max_rss_kib": $(stats "$work/template.txt" 7)
  },
  "overhead": {
    "from_template_container_exit_vs_bare_first_userspace_pct": $over_tpl,
    "container_exit_vs_bare_first_userspace_pct": $over_exit,
    "container_exit_vs_bare_first_userspace_paired_median_pct": $over_paired,
    "container_exit_vs_bare_first_userspace_fastest_pct": $over_min,
    "wall_vs_bare_first_userspace_pct": $over_wall,
    "agent_ready_minus_bare_first_userspace_ms": $(awk -v a="$k_ready" -v b="$bare_first" 'BEGIN { print a - b }'),
    "target_pct": 15,
    "target_met": $met
  }
}
EOF
printf '%-50s %8s\n' "median of $n rounds ($accel)" "ms" >&2
printf '%-50s %8s\n' "bare boot: first userspace message" "$bare_first" \
  "bare boot: QEMU exited (poweroff -f)" "$(median "$work/bare.txt" 2)" \
  "katana: QEMU up (QMP answered)" "$(median "$work/katana.txt" 1)" \
  "katana: agent ready (CreateSandbox done)" "$k_ready" \
  "katana: container exited" "$k_exit" \
  "katana: torn down" "$(median "$work/katana.txt" 4)" \
  "katana: wall (process start to exit)" "$k_wall" \
  "guest: agent loads its modules" "$(median "$work/katana.txt" 8)" \
  "guest: CreateSandbox done -> CreateContainer done" "$(median "$work/katana.txt" 9)" \
  "guest: StartContainer done -> process exit" "$(median "$work/katana.txt" 10)" >&2
printf '%-50s %8s\n' "from a template: agent ready" "$(median "$work/template.txt" 2)" \
  "from a template: container exited" "$t_exit" >&2
printf 'overhead: container exit %s %% (per-round pairs %s %%, fastest of each %s %%), wall %s %% over the bare boot (target <= 15 %%); from a template %s %%\n' \
  "$over_exit" "$over_paired" "$over_min" "$over_wall" "$over_tpl" >&2
printf 'max RSS KiB: QEMU bare %s, QEMU katana %s, katana-ctl %s\n' \
  "$(median "$work/bare.txt" 3)" "$(median "$work/katana.txt" 7)" "$(median "$work/katana.txt" 6)" >&2
echo "wrote $json" >&2
