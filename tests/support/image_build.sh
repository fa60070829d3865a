# Sourced by the scripts that run `katana-ctl image build` (vm.run, vm.tailored,
# conformance.agent.vm): they skip only when what failed is fetching a package from the
# archive; any other failure of the build is a failure. vm.run and vm.tailored also check the
# cache's pruning with fake versions.

# image_download_failed LOG: true when katana-ctl's final error in LOG is an apt failure
# (its progress lines name apt-get too, so only the "katana-ctl: ..." line counts).
image_download_failed() {
  grep '^katana-ctl' "$1" |
    grep -Eq '"[^"]*(apt-get download|apt-cache)[^"]*" failed|apt knows no'
}

# stale_pruned CACHE STALE DECOY...: true when nothing in CACHE named after the fake version
# STALE is left but the decoys (names alike that are not that version's), which must all be
# there; else says what is wrong.
stale_pruned() {
  local cache=$1 stale=$2 left d
  shift 2
  for left in "$cache"/*"$stale"*; do
    for d in "$@"; do [[ ${left##*/} == "$d" ]] && continue 2; done
    [[ -e $left ]] && { echo "a stale cache entry is left: $left"; return 1; }
  done
  for d in "$@"; do
    [[ -e $cache/$d ]] || { echo "pruning removed $d, which is not the stale version's"; return 1; }
  done
}
