#!/usr/bin/env bash
# Runs agent-conformance against katana-agent in host mode:
#   run.sh KATANA_AGENT AGENT_CONFORMANCE [suite options...]
# The agent runs with --isolate (its own mount, UTS and IPC namespaces and a tmpfs on
# /run/kata-containers), so nothing it mounts or names reaches the host. Needs root and
# busybox-static; exits 77 (skip) without them.
set -uo pipefail
agent=$1 suite=$2
shift 2
if [[ $(id -u) != 0 ]]; then echo "skip: needs root"; exit 77; fi
if [[ ! -x /bin/busybox ]]; then echo "skip: needs /bin/busybox (busybox-static)"; exit 77; fi
work=$(mktemp -d /tmp/katana-agent-conformance.XXXXXX)
sock=$work/agent.sock
"$agent" --listen "unix://$sock" --isolate --engine "${KATANA_AGENT_ENGINE:-katana}" \
  --log-file "$work/agent.log" --log-level debug &
pid=$!
cleanup() {
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 100); do [[ -S $sock ]] && break; sleep 0.1; done
if [[ ! -S $sock ]]; then
  echo "katana-agent did not start:"; cat "$work/agent.log"; exit 1
fi
"$suite" --server-address "unix://$sock" --strict "$@"
rc=$?
if ((rc != 0)); then
  echo "---- katana-agent log (last 60 lines) ----"
  tail -n 60 "$work/agent.log"
fi
exit $rc
