#!/bin/sh
# katana-runk under a real client: a private containerd 1.6 (own root/state/socket in a temp
# dir) runs a locally built busybox OCI image through io.containerd.runc.v2 with
# BinaryName = katana-runk: `ctr run --rm ... echo hello` and a `ctr task kill` case.
#   containerd_test.sh /path/to/katana-runk
set -u
KRUNK="$1"
[ "$(id -u)" = 0 ] || { echo "skip: needs root"; exit 77; }
for t in containerd ctr python3 busybox; do
  command -v "$t" >/dev/null || { echo "skip: $t not installed"; exit 77; }
done
W=$(mktemp -d /tmp/katana-containerd.XXXXXX)
SOCK="$W/containerd.sock"
CPID=""
cleanup() {
  [ -n "$CPID" ] && { ctr -a "$SOCK" -n katana task kill -s KILL kill-me >/dev/null 2>&1
    ctr -a "$SOCK" -n katana task delete kill-me >/dev/null 2>&1
    ctr -a "$SOCK" -n katana container delete kill-me >/dev/null 2>&1
    kill "$CPID" 2>/dev/null; wait "$CPID" 2>/dev/null; }
  umount -R "$W" 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT INT TERM
fail() { echo "FAIL: $*"; echo "--- containerd log (tail)"; tail -20 "$W/containerd.log"; exit 1; }

cat > "$W/config.toml" <<T
version = 2
root = "$W/root"
state = "$W/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$W/containerd.ttrpc.sock"
[plugins."io.containerd.runtime.v1.linux"]
  shim_debug = true
[plugins."io.containerd.service.v1.diff-service"]
  default = ["walking"]
T
containerd --config "$W/config.toml" > "$W/containerd.log" 2>&1 &
CPID=$!
for _ in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.2; done
[ -S "$SOCK" ] || fail "containerd did not start"
C="ctr -a $SOCK -n katana"

# A one-layer busybox OCI image built here (no registry).
python3 - "$W/image.tar" "$(command -v busybox)" <<'PY'
import hashlib, io, json, sys, tarfile, time
out, busybox = sys.argv[1], sys.argv[2]
layer = io.BytesIO()
with tarfile.open(fileobj=layer, mode="w") as t:
    for d in ["bin", "tmp", "etc", "proc", "sys", "dev"]:
        i = tarfile.TarInfo(d); i.type = tarfile.DIRTYPE; i.mode = 0o755; t.addfile(i)
    t.add(busybox, "bin/busybox")
    for n in ["sh", "echo", "sleep", "true", "cat", "ls"]:
        i = tarfile.TarInfo("bin/" + n); i.type = tarfile.SYMTYPE; i.linkname = "busybox"; t.addfile(i)
layer = layer.getvalue()
def blob(b): return "sha256:" + hashlib.sha256(b).hexdigest()
cfg = json.dumps({"architecture": "amd64", "os": "linux",
    "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
    "rootfs": {"type": "layers", "diff_ids": [blob(layer)]}}).encode()
man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": blob(cfg), "size": len(cfg)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": blob(layer), "size": len(layer)}]}).encode()
idx = json.dumps({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": blob(man), "size": len(man), "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}).encode()
with tarfile.open(out, "w") as t:
    def add(name, data):
        i = tarfile.TarInfo(name); i.size = len(data); i.mtime = int(time.time()); t.addfile(i, io.BytesIO(data))
    add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    add("index.json", idx)
    for b in [layer, cfg, man]:
        add("blobs/sha256/" + hashlib.sha256(b).hexdigest(), b)
PY
$C image import --base-name katana.local/busybox --snapshotter native "$W/image.tar" >/dev/null 2>"$W/import.err" ||
  fail "image import: $(cat "$W/import.err")"
IMG=katana.local/busybox:latest

out=$($C run --rm --snapshotter native --runtime io.containerd.runc.v2 --runc-binary "$KRUNK" \
  "$IMG" hello /bin/echo hello 2>&1)
st=$?
[ "$st" = 0 ] || fail "ctr run exit $st: $out"
[ "$out" = "hello" ] || fail "ctr run output: [$out]"
echo "ok 1 - ctr run --rm echo hello"

out=$($C run --rm --snapshotter native --runtime io.containerd.runc.v2 --runc-binary "$KRUNK" \
  "$IMG" exit7 /bin/sh -c 'exit 7' 2>&1)
st=$?
[ "$st" = 7 ] || fail "exit code $st, expected 7: $out"
echo "ok 2 - exit code propagates"

$C run -d --snapshotter native --runtime io.containerd.runc.v2 --runc-binary "$KRUNK" \
  "$IMG" kill-me /bin/sleep 60 >/dev/null 2>&1 || fail "ctr run -d"
sleep 1
$C task ls | grep -q 'kill-me.*RUNNING' || fail "task not running: $($C task ls)"
$C task kill -s KILL kill-me || fail "task kill"
for _ in $(seq 30); do $C task ls | grep -q 'kill-me.*STOPPED' && break; sleep 0.2; done
$C task ls | grep -q 'kill-me.*STOPPED' || fail "task not stopped after kill: $($C task ls)"
$C task delete kill-me >/dev/null || fail "task delete"
$C container delete kill-me >/dev/null || fail "container delete"
echo "ok 3 - ctr task kill / delete"
echo "1..3"
