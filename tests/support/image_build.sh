# Sourced by the scripts that run `katana-ctl image build` (vm.run, vm.tailored,
# conformance.agent.vm): they skip only when what failed is fetching a package from the
# archive; any other failure of the build is a failure.

# image_download_failed LOG: true when katana-ctl's final error in LOG is an apt failure
# (its progress lines name apt-get too, so only the "katana-ctl: ..." line counts).
image_download_failed() {
  grep '^katana-ctl' "$1" |
    grep -Eq '"[^"]*(apt-get download|apt-cache)[^"]*" failed|apt knows no'
}
