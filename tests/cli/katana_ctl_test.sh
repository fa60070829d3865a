#!/usr/bin/env bash
# katana-ctl as a user runs it: exit codes, messages, files it writes.
set -uo pipefail
ctl=$1
dir=$(mktemp -d /tmp/katana-ctl-test.XXXXXX)
trap 'rm -rf "$dir"' EXIT
failures=0
check() {  # check NAME EXPECTED_RC EXPECTED_STDERR_REGEX -- CMD...
  local name=$1 want_rc=$2 want_err=$3; shift 4
  "$@" >"$dir/out" 2>"$dir/err"; local rc=$?
  if [[ $rc != "$want_rc" ]] || { [[ -n $want_err ]] && ! grep -Eq -- "$want_err" "$dir/err"; }; then
    echo "FAIL $name: rc=$rc (want $want_rc), stderr:"; cat "$dir/err"; failures=$((failures + 1))
  else
    echo "ok   $name"
  fi
}

mkdir "$dir/b"
check "spec writes config.json" 0 '' -- "$ctl" oci spec --bundle "$dir/b"
[[ -s $dir/b/config.json ]] || { echo "FAIL: no config.json"; failures=$((failures + 1)); }
check "spec refuses to overwrite" 1 'create .*/b/config.json: File exists' -- "$ctl" oci spec --bundle "$dir/b"
check "validate accepts the default" 0 'bundle is valid' -- "$ctl" oci validate --bundle "$dir/b"
grep -q '"ociVersion": "1.2.0"' "$dir/out" || { echo "FAIL: validate did not print the spec"; failures=$((failures + 1)); }

mkdir "$dir/r"
check "rootless spec" 0 '' -- "$ctl" oci spec --rootless --bundle="$dir/r"
check "rootless validates" 0 '' -- "$ctl" oci validate --bundle "$dir/r"
grep -q '"user"' "$dir/r/config.json" || { echo "FAIL: rootless spec has no user namespace"; failures=$((failures + 1)); }

mkdir "$dir/bad"
sed 's|"cwd": "/"|"cwd": "relative"|' "$dir/b/config.json" >"$dir/bad/config.json"
check "invalid cwd named" 1 'process.cwd must be an absolute path' -- "$ctl" oci validate --bundle "$dir/bad"
printf '{"ociVersion": "1.2.0", "process": {' >"$dir/bad/config.json"
check "truncated JSON" 1 'config.json' -- "$ctl" oci validate --bundle "$dir/bad"
check "missing bundle" 1 'No such file or directory' -- "$ctl" oci validate --bundle "$dir/nope"
check "unknown command" 2 'unknown command "frobnicate"' -- "$ctl" frobnicate
check "no command" 2 'no command given' -- "$ctl"
check "bad log format" 2 '--log-format must be json or text' -- "$ctl" --log-format xml version
check "bad log level" 2 'log level "loud"' -- "$ctl" --log-level loud version
check "option without value" 2 '--bundle needs a value' -- "$ctl" oci validate --bundle
check "image build: unknown kernel" 2 '--kernel foo: debian or tailored' -- "$ctl" image build --kernel foo
check "image build: fragment for debian" 2 '--kernel-config is a fragment for --kernel tailored' -- \
  "$ctl" image build --kernel debian --kernel-config "$dir/frag"
check "image build: version for tailored" 2 '--kernel-version picks Debian' -- \
  "$ctl" image build --kernel tailored --kernel-version 6.1.0-1-amd64
check "image build: version with a slash" 2 'is not a Debian kernel version' -- \
  "$ctl" image build --kernel-version ../../6.1.0-1-amd64
check "json logs" 0 '^\{"time":".*"level":"info","msg":"bundle is valid","component":"ctl"' -- "$ctl" --log-format json oci validate --bundle "$dir/b"

# check: the real host. Whether a VM can run depends on the machine (root, QEMU, the image), so
# the verdict is not asserted; its form and its agreement with the exit code are.
"$ctl" check --verbose >"$dir/out" 2>"$dir/err"; rc=$?
if [[ $rc != 0 && $rc != 1 ]]; then
  echo "FAIL check --verbose: rc=$rc"; cat "$dir/err"; failures=$((failures + 1))
elif ! head -1 "$dir/out" | grep -Eq "^$([[ $rc == 0 ]] && echo 'a VM can run here' || echo 'no VM can run here')"; then
  echo "FAIL check: summary does not match rc=$rc:"; cat "$dir/out"; failures=$((failures + 1))
else
  missing=()
  for name in configuration arch root kvm vhost-vsock qemu virtiofsd kernel initrd cgroup; do
    grep -Eq "^  (ok|note|warning|fail) +$name " "$dir/out" || missing+=("$name")
  done
  if ((${#missing[@]})); then
    echo "FAIL check --verbose lacks: ${missing[*]}"; cat "$dir/out"; failures=$((failures + 1))
  else
    echo "ok   check --verbose ($(head -1 "$dir/out"))"
  fi
fi
check_rc=$rc
"$ctl" check >"$dir/brief" 2>&1; rc=$?
if [[ $rc != "$check_rc" ]] || grep -Eq '^  (ok|note) ' "$dir/brief"; then
  echo "FAIL check (brief): rc=$rc, lists ok/note lines:"; cat "$dir/brief"; failures=$((failures + 1))
else
  echo "ok   check (brief)"
fi
"$ctl" check --json >"$dir/out" 2>"$dir/err"; rc=$?
want_runnable=$([[ $check_rc == 0 ]] && echo true || echo false)
if [[ $rc != "$check_rc" ]] || ! grep -q "\"runnable\": $want_runnable" "$dir/out" ||
   [[ $(grep -c '"status": ' "$dir/out") -lt 10 ]] || [[ $(head -c1 "$dir/out") != "{" ]]; then
  echo "FAIL check --json: rc=$rc"; cat "$dir/out" "$dir/err"; failures=$((failures + 1))
else
  echo "ok   check --json"
fi
check "check: missing config" 1 '' -- "$ctl" check --config "$dir/nope.toml"
grep -Eq '^  fail +configuration .*nope.toml' "$dir/out" || { echo "FAIL: check does not name the missing config"; cat "$dir/out"; failures=$((failures + 1)); }
check "check: bad argument" 2 'check: unexpected argument "--frob"' -- "$ctl" check --frob

# vm cmdline (builds with the agent protocol only): the QEMU argv, nothing started.
if "$ctl" --help 2>/dev/null | grep -q 'vm cmdline'; then
  check "vm cmdline" 0 '' -- "$ctl" vm cmdline --dir "$dir/sb"
  if ! grep -q '^-kernel$' "$dir/out" || ! grep -qx -- "-qmp" "$dir/out" ||
     ! grep -q "^unix:$dir/sb/qmp.sock," "$dir/out" || [[ -e $dir/sb ]]; then
    echo "FAIL: vm cmdline printed:"; cat "$dir/out"; failures=$((failures + 1))
  fi
  check "vm cmdline needs --dir" 2 'vm cmdline needs --dir' -- "$ctl" vm cmdline
fi

if ((failures)); then echo "$failures failure(s)"; exit 1; fi
echo "all katana-ctl checks passed"
