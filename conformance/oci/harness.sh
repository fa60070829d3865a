#!/bin/sh
# OCI runtime conformance harness (youki's contest model): drives ANY runc-compatible runtime
# binary through bundles built from busybox-static, with the static `runtimetest` checker
# asserting from inside the container. TAP-like output; exit 1 if a test failed, 77 to skip.
#   harness.sh --runtime /usr/sbin/runc --runtimetest build/bin/runtimetest [--filter NAME]
set -u
RUNTIME=""
CHECKER=""
FILTER=""
XFAIL=""  # known failures of the runtime under test: reported as "# TODO", not counted
while [ $# -gt 0 ]; do
  case "$1" in
    --runtime) RUNTIME="$2"; shift 2 ;;
    --runtime=*) RUNTIME="${1#*=}"; shift ;;
    --runtimetest) CHECKER="$2"; shift 2 ;;
    --filter) FILTER="$2"; shift 2 ;;
    --xfail) XFAIL="$XFAIL $2"; shift 2 ;;
    *) echo "usage: $0 --runtime PATH --runtimetest PATH [--filter NAME]" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "skip: needs root"; exit 77; }
[ -x "$RUNTIME" ] || { echo "skip: runtime $RUNTIME not found"; exit 77; }
[ -x "$CHECKER" ] || { echo "runtimetest $CHECKER not found" >&2; exit 2; }
BUSYBOX=$(command -v busybox) || { echo "skip: busybox-static not installed"; exit 77; }
command -v python3 >/dev/null || { echo "skip: python3 needed to edit config.json"; exit 77; }

WORK=$(mktemp -d /tmp/oci-conformance.XXXXXX)
ROOT="$WORK/state"
PASS=0
FAIL=0
N=0
cleanup() {
  for d in "$ROOT"/*/; do
    [ -d "$d" ] && "$RUNTIME" --root "$ROOT" delete --force "$(basename "$d")" >/dev/null 2>&1
  done
  umount -l "$WORK/shared" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# A fresh bundle: busybox rootfs + runtimetest + a base config edited by the python snippet $2.
make_bundle() {
  b="$WORK/$1"
  mkdir -p "$b/rootfs/bin" "$b/rootfs/tmp" "$b/rootfs/etc"
  cp "$BUSYBOX" "$b/rootfs/bin/busybox"
  for t in sh true echo sleep cat ls id hostname mkdir touch; do ln -sf busybox "$b/rootfs/bin/$t"; done
  cp "$CHECKER" "$b/rootfs/bin/runtimetest"
  echo "root:x:0:0:root:/root:/bin/sh" > "$b/rootfs/etc/passwd"
  python3 - "$b/config.json" "$2" <<'EOF'
import json, sys
path, edit = sys.argv[1], sys.argv[2]
c = {
  "ociVersion": "1.0.2",
  "process": {"terminal": False, "user": {"uid": 0, "gid": 0}, "args": ["/bin/true"],
              "env": ["PATH=/bin"], "cwd": "/",
              "capabilities": {k: ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
                               for k in ["bounding", "effective", "permitted"]},
              "noNewPrivileges": True},
  "root": {"path": "rootfs", "readonly": False},
  "hostname": "contest",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
     "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
     "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
     "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs",
     "options": ["nosuid", "noexec", "nodev", "ro"]}],
  "linux": {
    "resources": {"devices": [{"allow": False, "access": "rwm"}]},
    "namespaces": [{"type": t} for t in ["pid", "network", "ipc", "uts", "mount"]],
    "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
    "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]}}
p = c["process"]
exec(edit)
json.dump(c, open(path, "w"), indent=1)
EOF
}

rt() { "$RUNTIME" --root "$ROOT" "$@"; }

result() {  # name status detail
  N=$((N + 1))
  case " $XFAIL " in
    *" $1 "*)
      [ "$2" = 0 ] && echo "ok $N - $1 # TODO passes now: drop --xfail $1" ||
        { echo "not ok $N - $1 # TODO known failure"; printf '%s\n' "$3" | sed 's/^/#   /'; }
      return ;;
  esac
  if [ "$2" = 0 ]; then
    PASS=$((PASS + 1)); echo "ok $N - $1"
  else
    FAIL=$((FAIL + 1)); echo "not ok $N - $1"; printf '%s\n' "$3" | sed 's/^/#   /'
  fi
}

selected() { [ -z "$FILTER" ] || [ "$FILTER" = "$1" ]; }

# A test that runs runtimetest with the given checks in a container whose config is edited
# by $2 (python; `c` is the config, `p` its process).
check_test() {
  name="$1"; edit="$2"; shift 2
  selected "$name" || return 0
  args=""
  for a in "$@"; do args="$args, \"$a\""; done
  make_bundle "$name" "$edit
p['args'] = ['/bin/runtimetest'$args]"
  out=$(cd "$WORK/$name" && rt run "ct-$name" 2>&1 </dev/null)
  st=$?
  rt delete --force "ct-$name" >/dev/null 2>&1
  result "$name" "$st" "$out"
}

HOST_NET=$(readlink /proc/self/ns/net | tr -dc 0-9)
HOST_UTS=$(readlink /proc/self/ns/uts | tr -dc 0-9)

check_test process.basics "c['hostname'] = 'contest-host'
p['env'] += ['FOO=bar baz']
p['cwd'] = '/tmp'" hostname=contest-host "env=FOO=bar baz" cwd=/tmp pid=1 uid=0 gid=0

check_test process.user "p['user'] = {'uid': 1000, 'gid': 1000, 'additionalGids': [10, 20]}" \
  uid=1000 gid=1000 groups=10,20

check_test process.no_new_privileges "p['noNewPrivileges'] = True" nnp=1
check_test process.new_privileges_allowed "p['noNewPrivileges'] = False" nnp=0

check_test process.capabilities "p['capabilities'] = {k: ['CAP_KILL', 'CAP_NET_BIND_SERVICE', 'CAP_AUDIT_WRITE'] for k in ['bounding', 'effective', 'permitted', 'inheritable', 'ambient']}" \
  capeff=20000420 capbnd=20000420 capprm=20000420 capamb=20000420 capinh=20000420

check_test process.rlimits "p['rlimits'] = [{'type': 'RLIMIT_NOFILE', 'hard': 1024, 'soft': 512}]" \
  rlimit=NOFILE:1024:512

check_test process.oom_score_adj "p['oomScoreAdj'] = 500" oom=500

check_test linux.sysctl "c['linux']['sysctl'] = {'net.ipv4.ip_forward': '1', 'kernel.domainname': 'contest.test'}" \
  sysctl=net.ipv4.ip_forward=1 sysctl=kernel.domainname=contest.test

check_test linux.masked_paths "" masked=/proc/kcore masked=/proc/keys masked=/sys/firmware
check_test linux.readonly_paths "" readonly=/proc/sys readonly=/proc/bus

check_test root.readonly "c['root']['readonly'] = True
c['mounts'].append({'destination': '/tmp', 'type': 'tmpfs', 'source': 'tmpfs', 'options': ['nosuid', 'nodev', 'mode=1777']})" \
  rootro writable=/tmp mount=/tmp:tmpfs mountopt=/tmp:nosuid mountopt=/tmp:nodev

mkdir -p "$WORK/hostdir" && echo data > "$WORK/hostdir/file"
check_test mounts.bind_readonly "c['mounts'].append({'destination': '/data', 'type': 'bind', 'source': '$WORK/hostdir', 'options': ['rbind', 'ro']})" \
  exists=/data/file readonly=/data

check_test mounts.default_fs "" mount=/proc:proc mount=/dev:tmpfs mount=/dev/pts:devpts \
  mount=/dev/shm:tmpfs mount=/sys:sysfs mountopt=/sys:ro

check_test linux.default_devices "" device=/dev/null:c:1:3 device=/dev/zero:c:1:5 \
  device=/dev/full:c:1:7 device=/dev/random:c:1:8 device=/dev/urandom:c:1:9 device=/dev/tty:c:5:0 \
  exists=/dev/ptmx exists=/dev/fd exists=/dev/stdin

check_test linux.devices "c['linux']['devices'] = [{'path': '/dev/kmsg', 'type': 'c', 'major': 1, 'minor': 11, 'fileMode': 0o644}]
c['linux']['resources']['devices'].append({'allow': True, 'type': 'c', 'major': 1, 'minor': 11, 'access': 'rwm'})" \
  device=/dev/kmsg:c:1:11

check_test linux.seccomp "c['linux']['seccomp'] = {'defaultAction': 'SCMP_ACT_ALLOW', 'architectures': ['SCMP_ARCH_X86_64'], 'syscalls': [{'names': ['mkdir', 'mkdirat'], 'action': 'SCMP_ACT_ERRNO', 'errnoRet': 1}]}
c['mounts'].append({'destination': '/tmp', 'type': 'tmpfs', 'source': 'tmpfs'})" \
  seccomp=2 mkdir-errno=1

check_test linux.namespaces "" pid=1 "ns-differs=net:$HOST_NET" "ns-differs=uts:$HOST_UTS"

check_test process.umask "p['user']['umask'] = 0o027" umask=0027

# cgroup limits visible from inside: the container's own cgroup is what /sys/fs/cgroup shows
# (v1 controllers under a read-only tmpfs on this host's hybrid layout, cgroup2 on unified
# hosts), mounted afresh in a cgroup namespace (cgroup.limits) or bound from the host's
# hierarchy without one (cgroup.limits_no_cgroupns), as runc does.
if [ -d /sys/fs/cgroup/memory ] || [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  if [ -d /sys/fs/cgroup/memory ]; then
    memfile=memory/memory.limit_in_bytes; pidsfile=pids/pids.max
    layout="mount=/sys/fs/cgroup:tmpfs mount=/sys/fs/cgroup/memory:cgroup readonly=/sys/fs/cgroup/memory"
  else
    memfile=memory.max; pidsfile=pids.max
    layout="mount=/sys/fs/cgroup:cgroup2 readonly=/sys/fs/cgroup"
  fi
  limits="c['linux']['resources']['memory'] = {'limit': 67108864}
c['linux']['resources']['pids'] = {'limit': 42}
c['mounts'].append({'destination': '/sys/fs/cgroup', 'type': 'cgroup', 'source': 'cgroup', 'options': ['nosuid', 'noexec', 'nodev', 'relatime', 'ro']})"
  # shellcheck disable=SC2086  # $layout: one check per word
  check_test cgroup.limits "c['linux']['namespaces'].append({'type': 'cgroup'})
$limits" "cgroup-file=$memfile=67108864" "cgroup-file=$pidsfile=42" $layout
  # shellcheck disable=SC2086
  check_test cgroup.limits_no_cgroupns "$limits" \
    "cgroup-file=$memfile=67108864" "cgroup-file=$pidsfile=42" $layout
fi

# linux.rootfsPropagation: the propagation of the container's "/" (mountinfo's shared:/master:),
# with the bundle on a shared mount so that slave and shared differ from private; the host must
# not see the container's mounts (its rootfs bound onto itself) under that shared mount.
case "$FILTER" in "" | root.propagation_*)
  mkdir -p "$WORK/shared"
  mount -t tmpfs propagation "$WORK/shared" && mount --make-shared "$WORK/shared"
  for prop in private slave shared; do
    name="root.propagation_$prop"
    selected "$name" || continue
    make_bundle "shared/$name" "c['linux']['rootfsPropagation'] = '$prop'
p['args'] = ['/bin/runtimetest', 'propagation=/:$prop']"
    out=$(cd "$WORK/shared/$name" && rt run "ct-$name" 2>&1 </dev/null)
    st=$?
    rt delete --force "ct-$name" >/dev/null 2>&1
    leak=$(grep -F " $WORK/shared/$name/" /proc/self/mountinfo)
    [ -z "$leak" ] || { st=1; out="$out | mounts leaked to the host: $leak"; }
    result "$name" "$st" "$out"
  done
  umount -l "$WORK/shared"
  ;;
esac

# Hooks: every hook appends its name and the state's status to a host file.
if selected hooks; then
  log="$WORK/hooks.log"
  : > "$log"
  hk() { echo "{'path': '/bin/sh', 'args': ['sh', '-c', 'read s; echo $1 >> $log']}"; }
  make_bundle hooks "c['hooks'] = {'prestart': [$(hk prestart)], 'createRuntime': [$(hk createRuntime)], 'poststart': [$(hk poststart)], 'poststop': [$(hk poststop)]}
p['args'] = ['/bin/sleep', '10']"
  out=""
  st=0
  (cd "$WORK/hooks" && rt create ct-hooks </dev/null >/dev/null 2>&1) || { st=1; out="create failed"; }
  [ "$st" = 0 ] && { rt start ct-hooks >/dev/null 2>&1 || { st=1; out="start failed"; }; }
  rt kill ct-hooks KILL >/dev/null 2>&1
  sleep 0.3
  rt delete --force ct-hooks >/dev/null 2>&1
  got=$(tr '\n' ' ' < "$log")
  [ "$got" = "prestart createRuntime poststart poststop " ] || { st=1; out="$out hooks ran: [$got]"; }
  result hooks "$st" "$out"
fi

# Lifecycle: create -> created -> start -> running -> kill -> stopped -> delete, plus the
# errors clients rely on.
if selected lifecycle; then
  make_bundle lifecycle "p['args'] = ['/bin/sleep', '30']"
  st=0
  out=""
  state_of() { rt state "$1" 2>/dev/null | tr -d ' \n' | sed -n 's/.*"status":"\([a-z]*\)".*/\1/p'; }
  expect() { s=$(state_of ct-life); [ "$s" = "$1" ] || { st=1; out="$out | $2: state $s, expected $1"; }; }
  (cd "$WORK/lifecycle" && rt create --pid-file "$WORK/life.pid" ct-life </dev/null >/dev/null 2>&1) || { st=1; out="create failed"; }
  expect created "after create"
  [ -s "$WORK/life.pid" ] || { st=1; out="$out | no pid file"; }
  pid=$(cat "$WORK/life.pid" 2>/dev/null)
  [ -n "$pid" ] && [ -d "/proc/$pid" ] || { st=1; out="$out | pid $pid not alive"; }
  rt start ct-life >/dev/null 2>&1 || { st=1; out="$out | start failed"; }
  expect running "after start"
  if rt start ct-life >/dev/null 2>&1; then st=1; out="$out | second start succeeded"; fi
  if (cd "$WORK/lifecycle" && rt create ct-life </dev/null >/dev/null 2>&1); then st=1; out="$out | duplicate id accepted"; fi
  rt kill ct-life KILL >/dev/null 2>&1 || { st=1; out="$out | kill failed"; }
  for _ in 1 2 3 4 5 6 7 8 9 10; do [ "$(state_of ct-life)" = stopped ] && break; sleep 0.1; done
  expect stopped "after kill"
  kerr=$(rt kill ct-life TERM 2>&1) && { st=1; out="$out | kill of a stopped container succeeded"; }
  rt delete ct-life >/dev/null 2>&1 || { st=1; out="$out | delete failed"; }
  if rt state ct-life >/dev/null 2>&1; then st=1; out="$out | state after delete succeeded"; fi
  if rt state no-such-container >/dev/null 2>&1; then st=1; out="$out | unknown id accepted"; fi
  if rt kill no-such-container KILL >/dev/null 2>&1; then st=1; out="$out | kill of unknown id"; fi
  [ -z "$(ls "$ROOT" 2>/dev/null)" ] || { st=1; out="$out | state left behind: $(ls "$ROOT")"; }
  result lifecycle "$st" "$out${kerr:+ (kill error: $kerr)}"
fi

# Exec joins the container's namespaces.
if selected exec; then
  make_bundle exec "c['hostname'] = 'exec-host'
p['args'] = ['/bin/sleep', '30']"
  st=0
  out=""
  (cd "$WORK/exec" && rt run -d ct-exec </dev/null >/dev/null 2>&1) || { st=1; out="run -d failed"; }
  o=$(rt exec ct-exec /bin/runtimetest hostname=exec-host cwd=/ 2>&1) || { st=1; out="$out | $o"; }
  o=$(rt exec --env X=1 --cwd /tmp ct-exec /bin/runtimetest env=X=1 cwd=/tmp 2>&1) || { st=1; out="$out | $o"; }
  rt kill ct-exec KILL >/dev/null 2>&1
  sleep 0.2
  rt delete --force ct-exec >/dev/null 2>&1
  result exec "$st" "$out"
fi

# Bad input (the issue's list): the runtime refuses with exit status 1 and one error line
# (runc's level=warning lines aside) naming the field or object, and leaves nothing behind:
# no state, no cgroup directory named after the id, no mount below the bundle, no process
# rooted in it. A mount destination that escapes the rootfs through symlinks may instead be
# contained (runc resolves it inside the rootfs): the host directory it names stays empty.
leftovers() {  # id bundle-dir: prints what is left
  [ -e "$ROOT/$1" ] && echo "state dir $ROOT/$1"
  find /sys/fs/cgroup -maxdepth 4 -type d -name "$1" 2>/dev/null | sed 's/^/cgroup /'
  grep -F " $2" /proc/self/mountinfo | awk '{print "mount " $5}'
  for p in /proc/[0-9]*; do
    case "$(readlink "$p/root" 2>/dev/null)" in "$2"*) echo "process ${p#/proc/}" ;; esac
  done
}
# refused NAME WANT-REGEX COMMAND...: exit 1, one error line matching WANT-REGEX.
refused() {
  what="$1"; want="$2"; shift 2
  err=$("$@" 2>&1 >/dev/null </dev/null)
  rc=$?
  lines=$(printf '%s\n' "$err" | grep -v -e 'level=warning' -e 'level=info' -e 'level=debug' |
    grep -c .)
  if [ "$rc" != 1 ]; then
    st=1; out="$out | $what: exit status $rc, expected 1 ($err)"
  elif [ "$lines" != 1 ]; then
    st=1; out="$out | $what: $lines error lines: $err"
  elif ! printf '%s\n' "$err" | grep -qiE "$want"; then
    st=1; out="$out | $what: error does not name $want: $err"
  fi
}
bad_create() {  # name want-regex python-edit [config-text]
  make_bundle "bad-$1" "$3"
  [ -n "${4:-}" ] && printf '%s' "$4" > "$WORK/bad-$1/config.json"
  refused "$1" "$2" sh -c "cd '$WORK/bad-$1' && exec \"\$@\"" sh "$RUNTIME" --root "$ROOT" \
    create "ct-bad-$1"
  rt delete --force "ct-bad-$1" >/dev/null 2>&1
  left=$(leftovers "ct-bad-$1" "$WORK/bad-$1")
  [ -z "$left" ] || { st=1; out="$out | $1 left: $left"; }
}
if selected bad_input; then
  st=0
  out=""
  bad_create rootfs "no-such-rootfs|rootfs|root" "c['root']['path'] = 'no-such-rootfs'"
  bad_create json "config|json|parse|invalid|unexpected" "" '{"ociVersion": '
  bad_create resources "cpus|cpuset" "c['linux']['resources']['cpu'] = {'cpus': 'not-a-list'}"
  bad_create namespace "namespace|foo" "c['linux']['namespaces'].append({'type': 'foo'})"
  refused unknown_id.state "does not exist|not found" rt state ct-no-such
  refused unknown_id.kill "does not exist|not found" rt kill ct-no-such KILL
  refused unknown_id.delete "does not exist|not found" rt delete ct-no-such
  # A bad signal: refused, the container keeps running.
  make_bundle bad-signal "p['args'] = ['/bin/sleep', '30']"
  if (cd "$WORK/bad-signal" && rt run -d ct-bad-signal </dev/null >/dev/null 2>&1); then
    refused signal "signal|SIGFOO" rt kill ct-bad-signal SIGFOO
    rt state ct-bad-signal 2>/dev/null | grep -q '"running"' ||
      { st=1; out="$out | signal: the container stopped"; }
  else
    st=1; out="$out | signal: run -d failed"
  fi
  rt kill ct-bad-signal KILL >/dev/null 2>&1
  sleep 0.2
  rt delete --force ct-bad-signal >/dev/null 2>&1
  # Mount destinations through symlinks that point outside the rootfs (absolute and ../..).
  mkdir -p "$WORK/outside"
  make_bundle bad-escape "c['mounts'].append({'destination': '/escape/x', 'type': 'tmpfs', 'source': 'tmpfs'})
c['mounts'].append({'destination': '/escape2/y', 'type': 'tmpfs', 'source': 'tmpfs'})"
  ln -s "$WORK/outside" "$WORK/bad-escape/rootfs/escape"
  ln -s "../../../../../../../../..$WORK/outside" "$WORK/bad-escape/rootfs/escape2"
  if ! err=$(cd "$WORK/bad-escape" && rt run ct-bad-escape 2>&1 </dev/null); then
    refused escape "escape|mount|symlink" sh -c "cd '$WORK/bad-escape' && exec \"\$@\"" sh \
      "$RUNTIME" --root "$ROOT" run ct-bad-escape2
  fi
  rt delete --force ct-bad-escape >/dev/null 2>&1
  rt delete --force ct-bad-escape2 >/dev/null 2>&1
  [ -z "$(ls -A "$WORK/outside")" ] || { st=1; out="$out | escape: created $(ls -A "$WORK/outside") outside the rootfs"; }
  left=$(leftovers ct-bad-escape "$WORK/bad-escape")
  [ -z "$left" ] || { st=1; out="$out | escape left: $left"; }
  result bad_input "$st" "$out"
fi

echo "1..$N"
echo "# $PASS passed, $FAIL failed ($RUNTIME)"
[ "$FAIL" = 0 ]
