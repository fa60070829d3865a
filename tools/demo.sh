#!/usr/bin/env bash
# The main job on a fresh machine: install, build (release), then make an OCI bundle and
# validate it with katana-ctl. Later issues turn this into a container run inside a VM.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
export CCACHE_BASEDIR=$PWD CCACHE_NOHASHDIR=1
cmake --preset release >/dev/null
cmake --build --preset release --target katana-ctl

ctl=build/release/bin/katana-ctl
bundle=$(mktemp -d /tmp/katana-demo.XXXXXX)
trap 'rm -rf "$bundle"' EXIT
mkdir "$bundle/rootfs"
"$ctl" version
"$ctl" oci spec --bundle "$bundle"
echo "--- katana-ctl oci validate --bundle $bundle"
"$ctl" oci validate --bundle "$bundle"
