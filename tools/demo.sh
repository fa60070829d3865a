#!/usr/bin/env bash
# The main job on a fresh machine: install, build (release), build the guest image (Debian's
# kernel + an initrd with the static katana-agent, cached), then run a container inside a VM
# (QEMU, TCG where KVM does not work) and print its output.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
export CCACHE_BASEDIR=$PWD CCACHE_NOHASHDIR=1
cmake --preset release >/dev/null
cmake --build --preset release --target katana-ctl katana-agent

ctl=build/release/bin/katana-ctl
"$ctl" version
"$ctl" image build --agent build/release/bin/katana-agent

# A minimal rootfs from Debian's busybox-static.
rootfs=$(mktemp -d /tmp/katana-demo.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
mkdir -p "$rootfs"/{bin,etc,proc,dev,sys,tmp}
cp /bin/busybox "$rootfs/bin/"
for tool in sh echo true cat uname hostname; do ln -s busybox "$rootfs/bin/$tool"; done

echo "--- katana-ctl vm run --rootfs $rootfs -- /bin/sh -c ..."
"$ctl" vm run --timing --rootfs "$rootfs" -- \
  /bin/sh -c 'echo "hello from a container in a katana VM"; echo "guest kernel: $(uname -r)"'
