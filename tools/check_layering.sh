#!/usr/bin/env bash
# DESIGN.md's layering rules, checked on the includes of include/katana.
set -uo pipefail
cd "$(dirname "$0")/.."
fail=0
violation() { echo "layering: $1"; fail=1; }

# core/ uses the standard library and POSIX only.
while IFS= read -r line; do
  violation "core may include only std/POSIX and katana/core: $line"
done < <(grep -HnE '#include <(boost|nlohmann|range|toml|google|catch2)/|#include <toml.hpp>|#include <katana/(oci|config|container|cgroup|ttrpc|agent|shim|hypervisor|sharedfs|sandbox|arch|testing)/' include/katana/core/*.hpp 2>/dev/null)

# nlohmann only in the JSON adapter headers (*_json.hpp).
while IFS= read -r line; do
  violation "nlohmann outside a *_json.hpp adapter: $line"
done < <(grep -rHn '#include <nlohmann/' include/katana | grep -v '_json\.hpp:')

# oci/ and config/ only use core/ (plus their own component).
while IFS= read -r line; do
  violation "oci may include only katana/core and katana/oci: $line"
done < <(grep -rHnE '#include <katana/' include/katana/oci 2>/dev/null | grep -vE '<katana/(core|oci)/|<katana/config\.hpp>')

# toml11 only in the config loader; protobuf only in ttrpc and generated code.
while IFS= read -r line; do
  violation "toml11 outside config/impl/load.ipp: $line"
done < <(grep -rHnE '#include <toml' include/katana | grep -v 'config/impl/load.ipp:')
while IFS= read -r line; do
  violation "protobuf outside ttrpc/: $line"
done < <(grep -rHn '#include <google/protobuf' include/katana | grep -v '/ttrpc/')

# cgroup/ never includes container/ or hypervisor/.
while IFS= read -r line; do
  violation "cgroup must not depend on container/ or hypervisor/: $line"
done < <(grep -rHnE '#include <katana/(container|hypervisor)/' include/katana/cgroup 2>/dev/null)

# Headers stay reviewable.
while IFS= read -r f; do
  n=$(wc -l <"$f")
  ((n <= 900)) || violation "$f has $n lines (keep headers under ~800)"
done < <(find include/katana -name '*.hpp' -o -name '*.ipp')

((fail == 0)) && echo "layering: ok"
exit $fail
