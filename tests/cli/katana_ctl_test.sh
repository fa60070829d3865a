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
check "json logs" 0 '^\{"time":".*"level":"info","msg":"bundle is valid","component":"ctl"' -- "$ctl" --log-format json oci validate --bundle "$dir/b"

if ((failures)); then echo "$failures failure(s)"; exit 1; fi
echo "all katana-ctl checks passed"
