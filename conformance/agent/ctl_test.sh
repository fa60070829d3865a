#!/usr/bin/env bash
# katana-ctl agent against a katana-agent in host mode (--engine process: no root needed):
# calls by name with JSON requests, JSON answers, statuses and exit codes.
#   ctl_test.sh KATANA_CTL KATANA_AGENT
set -uo pipefail
ctl=$1 agent=$2
work=$(mktemp -d /tmp/katana-ctl-agent-test.XXXXXX)
"$agent" --listen "unix://$work/a.sock" --engine process --no-shared-namespaces --no-cgroups \
  --run-dir "$work/run" --cmdline /dev/null --log-file "$work/agent.log" 2>"$work/stderr" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do [[ -S $work/a.sock ]] && break; sleep 0.1; done
if [[ ! -S $work/a.sock ]]; then
  if grep -q 'not built into this agent' "$work/agent.log" "$work/stderr" 2>/dev/null; then
    echo "skip: this katana-agent has no --engine process"; exit 77
  fi
  echo "FAIL: the agent did not start"; cat "$work/agent.log" "$work/stderr"; exit 1
fi
A=(--server-address "unix://$work/a.sock")
failures=0
check() {  # check NAME WANT_RC STDOUT_REGEX STDERR_REGEX -- CMD...
  local name=$1 want=$2 out_re=$3 err_re=$4; shift 5
  "$@" >"$work/out" 2>"$work/err"; local rc=$?
  if [[ $rc != "$want" ]] || { [[ -n $out_re ]] && ! grep -Eq -- "$out_re" "$work/out"; } ||
     { [[ -n $err_re ]] && ! grep -Eq -- "$err_re" "$work/err"; }; then
    echo "FAIL $name: rc=$rc (want $want)"; cat "$work/out" "$work/err"; failures=$((failures + 1))
  else
    echo "ok   $name"
  fi
}
check "Check" 0 '"status":"SERVING"' '' -- "$ctl" agent "${A[@]}" Check
check "Health/Version by full name" 0 '"agent_version":"katana-agent' '' -- \
  "$ctl" agent "${A[@]}" grpc.Health/Version
check "list" 0 'grpc.AgentService/CreateContainer' '' -- "$ctl" agent list
check "CreateSandbox from JSON" 0 '^\{\}$' '' -- \
  "$ctl" agent "${A[@]}" CreateSandbox '{"hostname":"h","sandbox_id":"s1"}'
echo '{"container_id":"c1","OCI":{"Version":"1.0.2","Root":{"Path":"/"},"Process":{"Args":["/bin/sh","-c","echo hi; exit 5"],"Cwd":"/"}}}' >"$work/c1.json"
check "CreateContainer from @file" 0 '^\{\}$' '' -- "$ctl" agent "${A[@]}" CreateContainer "@$work/c1.json"
check "StartContainer" 0 '' '' -- "$ctl" agent "${A[@]}" StartContainer '{"container_id":"c1"}'
check "ReadStdout (bytes as base64)" 0 '"data":"aGkK"' '' -- \
  "$ctl" agent "${A[@]}" ReadStdout '{"container_id":"c1","len":100}'
check "WaitProcess" 0 '"status":5' '' -- "$ctl" agent "${A[@]}" WaitProcess '{"container_id":"c1"}'
check "unknown container: NOT_FOUND" 1 '' 'not_found|NOT_FOUND|not found' -- \
  "$ctl" agent "${A[@]}" StartContainer '{"container_id":"nope"}'
check "unimplemented call: the reason" 1 '' 'not implemented' -- "$ctl" agent "${A[@]}" AddSwap
check "unknown call" 2 '' 'unknown call' -- "$ctl" agent "${A[@]}" NoSuchCall
check "bad JSON" 2 '' 'request for grpc.AgentService.CreateSandbox' -- \
  "$ctl" agent "${A[@]}" CreateSandbox '{"hostname": 5'
check "unknown field" 2 '' 'request for' -- "$ctl" agent "${A[@]}" Check '{"nope":1}'
check "no server address" 2 '' 'server-address' -- "$ctl" agent Check
check "RemoveContainer" 0 '' '' -- "$ctl" agent "${A[@]}" RemoveContainer '{"container_id":"c1"}'
check "DestroySandbox" 0 '' '' -- "$ctl" agent "${A[@]}" DestroySandbox
((failures == 0)) && echo "all katana-ctl agent checks passed"
exit $((failures > 0))
