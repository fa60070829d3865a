#!/usr/bin/env bash
# Compares the protobuf *schemas* of two directories of .proto files.
#
#   tools/compare_proto.sh DIR_A DIR_B
#
# Each directory is compiled on its own (protoc -I DIR, every *.proto in it,
# imports included) into a FileDescriptorSet, which is dumped as text and
# reduced to one sorted line per fact: file package/syntax/dependencies,
# message (and the file it lives in), field (number, name, label, type,
# type_name, oneof, proto3 optional, map entry), oneof, enum value, service
# method (input/output type, streaming). Comments, layout, declaration order,
# json_name and options (go_package, gogoproto, ...) are ignored.
#
# gogoproto imports and options are stripped from temporary copies first, so
# an unmodified upstream Kata checkout can be compared directly.
#
# Prints a unified diff of the two fact lists; exit 0 when identical, 1 when
# they differ, 2 on usage or compile errors. Needs protoc (3.x, with its
# bundled google/protobuf/*.proto) and python3; no network.
set -euo pipefail

usage() {
    echo "usage: $0 DIR_A DIR_B" >&2
    exit 2
}
(($# == 2)) || usage
[[ -d $1 && -d $2 ]] || usage
command -v protoc >/dev/null || { echo "compare_proto: protoc not found" >&2; exit 2; }
command -v python3 >/dev/null || { echo "compare_proto: python3 not found" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# facts DIR OUT: write the canonical fact list of DIR to OUT.
facts() {
    local src=$1 out=$2 tag
    tag=$(basename "$out" .facts)
    mkdir -p "$work/$tag"
    shopt -s nullglob
    local files=("$src"/*.proto)
    shopt -u nullglob
    ((${#files[@]})) || { echo "compare_proto: no .proto files in $src" >&2; exit 2; }
    cp "${files[@]}" "$work/$tag/"
    # Drop gogoproto: the import line, file options and inline field options.
    sed -i -E \
        -e '/^[[:space:]]*import[[:space:]]+"gogo(proto)?\/.*";/d' \
        -e '/^[[:space:]]*option[[:space:]]+\(gogoproto\.[^)]*\)[^;]*;/d' \
        -e 's/[[:space:]]*\[\(gogoproto\.[^]]*\]//g' \
        "$work/$tag"/*.proto
    (
        cd "$work/$tag"
        protoc -I . --include_imports --descriptor_set_out="$work/$tag.pb" ./*.proto
    ) || { echo "compare_proto: protoc failed for $src" >&2; exit 2; }
    protoc --decode=google.protobuf.FileDescriptorSet google/protobuf/descriptor.proto \
        <"$work/$tag.pb" >"$work/$tag.txt"
    python3 - "$work/$tag.txt" >"$out" <<'PY'
import re
import sys

TOKEN = re.compile(r'\s*(?:(\})|([A-Za-z_][A-Za-z0-9_]*)\s*(?:(\{)|:\s*("(?:[^"\\]|\\.)*"|\S+)))')

def parse(text):
    """Parse protoc's text format into nested dicts of lists."""
    root = {}
    stack = [root]
    pos = 0
    while True:
        m = TOKEN.match(text, pos)
        if not m:
            if text[pos:].strip():
                raise SystemExit("compare_proto: cannot parse near: " + text[pos:pos + 60])
            break
        pos = m.end()
        close, key, opened, value = m.groups()
        if close:
            stack.pop()
        elif opened:
            child = {}
            stack[-1].setdefault(key, []).append(child)
            stack.append(child)
        else:
            if value.startswith('"'):
                value = bytes(value[1:-1], "utf-8").decode("unicode_escape")
            stack[-1].setdefault(key, []).append(value)
    return root

def one(d, key, default=""):
    v = d.get(key)
    return v[0] if v else default

facts = []

def message(m, scope, fname):
    full = scope + "." + one(m, "name")
    map_entry = any(one(o, "map_entry") == "true" for o in m.get("options", []))
    facts.append(f"message {full} file={fname}" + (" map_entry" if map_entry else ""))
    oneofs = [one(o, "name") for o in m.get("oneof_decl", [])]
    for o in oneofs:
        facts.append(f"oneof {full} {o}")
    for f in m.get("field", []):
        line = (f"field {full} #{one(f, 'number')} {one(f, 'name')} "
                f"{one(f, 'label')} {one(f, 'type')}")
        if "type_name" in f:
            line += " type_name=" + one(f, "type_name")
        if "oneof_index" in f:
            line += " oneof=" + oneofs[int(one(f, "oneof_index"))]
        if one(f, "proto3_optional") == "true":
            line += " proto3_optional"
        if "default_value" in f:
            line += " default=" + one(f, "default_value")
        facts.append(line)
    for e in m.get("enum_type", []):
        enum(e, full)
    for n in m.get("nested_type", []):
        message(n, full, fname)

def enum(e, scope):
    full = scope + "." + one(e, "name")
    facts.append(f"enum {full}")
    for v in e.get("value", []):
        facts.append(f"enum {full} value {one(v, 'name')} = {one(v, 'number')}")

tree = parse(open(sys.argv[1]).read())
for f in tree.get("file", []):
    fname = one(f, "name")
    pkg = one(f, "package")
    scope = "." + pkg if pkg else ""
    facts.append(f"file {fname} package={pkg} syntax={one(f, 'syntax', 'proto2')}")
    for dep in f.get("dependency", []):
        facts.append(f"file {fname} import {dep}")
    for m in f.get("message_type", []):
        message(m, scope, fname)
    for e in f.get("enum_type", []):
        enum(e, scope)
    for s in f.get("service", []):
        sfull = scope + "." + one(s, "name")
        facts.append(f"service {sfull} file={fname}")
        for meth in s.get("method", []):
            line = (f"rpc {sfull}/{one(meth, 'name')} in={one(meth, 'input_type')} "
                    f"out={one(meth, 'output_type')}")
            if one(meth, "client_streaming") == "true":
                line += " client_streaming"
            if one(meth, "server_streaming") == "true":
                line += " server_streaming"
            facts.append(line)

for line in sorted(set(facts)):
    print(line)
PY
}

facts "$1" "$work/a.facts"
facts "$2" "$work/b.facts"

summary() {
    printf '%s: %d files, %d services, %d rpcs, %d messages, %d fields, %d enum values\n' "$1" \
        "$(grep -c '^file .* package=' "$2" || true)" "$(grep -c '^service ' "$2" || true)" \
        "$(grep -c '^rpc ' "$2" || true)" "$(grep -c '^message ' "$2" || true)" \
        "$(grep -c '^field ' "$2" || true)" "$(grep -c '^enum .* value ' "$2" || true)"
}
summary "$1" "$work/a.facts"
summary "$2" "$work/b.facts"

if diff -u --label "$1" --label "$2" "$work/a.facts" "$work/b.facts"; then
    echo "compare_proto: schemas are identical"
else
    echo "compare_proto: schemas DIFFER (lines above: - only in $1, + only in $2)"
    exit 1
fi
