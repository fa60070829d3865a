// The shared-fs policies' pure parts: virtiofsd's command line from the configuration.
#include <katana/sandbox/sandbox.hpp>
#include <katana/sandbox/virtio_fs.hpp>

#include "catch.hpp"

namespace sfs = katana::sharedfs;

TEST_CASE("virtio-fs: virtiofsd's argv from the configuration", "[sharedfs]") {
  katana::config::hypervisor_config h;
  h.virtio_fs_daemon = "/usr/lib/qemu/virtiofsd";
  h.virtio_fs_cache = "never";  // Kata's word for virtiofsd's "none"
  h.virtio_fs_extra_args = {"--thread-pool-size=1", "-o", "announce_submounts"};
  const auto argv = sfs::virtiofsd_argv(h, "/run/k/sb/virtiofsd.sock", "/run/k/sb/shared");
  REQUIRE(argv);
  const std::vector<std::string> want{"/usr/lib/qemu/virtiofsd",
                                      "--socket-path=/run/k/sb/virtiofsd.sock",
                                      "-o",
                                      "source=/run/k/sb/shared",
                                      "-o",
                                      "cache=none",
                                      "-o",
                                      "sandbox=chroot",
                                      "--thread-pool-size=1",
                                      "-o",
                                      "announce_submounts"};
  CHECK(*argv == want);

  h.virtio_fs_cache = "always";
  CHECK(sfs::virtiofsd_argv(h, "s", "d")->at(5) == "cache=always");
  h.virtio_fs_cache = "sometimes";
  const auto bad = sfs::virtiofsd_argv(h, "s", "d");
  REQUIRE(!bad);
  CHECK(bad.error().message().find("virtio_fs_cache \"sometimes\"") != std::string::npos);
  h.virtio_fs_daemon.clear();
  CHECK(!sfs::virtiofsd_argv(h, "s", "d"));
}

TEST_CASE("virtio-fs: the guest mounts the share as virtiofs by its tag", "[sharedfs]") {
  const sfs::virtio_fs fs;
  const auto m = fs.guest_storage();
  CHECK(m.driver == "virtio-fs");
  CHECK(m.fstype == "virtiofs");
  CHECK(m.source == katana::hypervisor::qemu::shared_fs_tag);
  CHECK(m.mount_point == sfs::guest_shared_path);
}

TEST_CASE("virtio-9p: Kata's mount options, msize from the configuration", "[sharedfs]") {
  sfs::virtio_9p fs;
  katana::hypervisor::vm_config vc;
  vc.dir = std::filesystem::temp_directory_path() / "katana-9p-test";
  vc.hypervisor.msize_9p = 65536;
  REQUIRE(fs.setup_before_boot(vc));
  const auto m = fs.guest_storage();
  CHECK(m.driver == "9p");
  CHECK(m.fstype == "9p");
  CHECK(m.source == katana::hypervisor::qemu::shared_fs_tag);
  CHECK(m.mount_point == sfs::guest_shared_path);
  // cache=mmap, not none: without a cache mode the guest kernel turns readahead off.
  CHECK(m.options ==
        std::vector<std::string>{"trans=virtio", "version=9p2000.L", "msize=65536", "cache=mmap"});
  std::filesystem::remove_all(vc.dir);
}

TEST_CASE("virtio-fs: a daemon that cannot start is an error naming it, nothing is left",
          "[sharedfs]") {
  const auto dir =
      std::filesystem::temp_directory_path() / ("katana-sharedfs-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  katana::hypervisor::vm_config vc;
  vc.id = "sb";
  vc.dir = dir;
  vc.hypervisor.virtio_fs_daemon = "/bin/false";  // exits at once, makes no socket
  sfs::virtio_fs fs;
  const auto r = fs.setup_before_boot(vc);
  REQUIRE(!r);
  CHECK(r.error().message().find("/bin/false exited with 1") != std::string::npos);
  CHECK(fs.daemon_pid() <= 0);
  CHECK(fs.cleanup());
  std::filesystem::remove_all(dir);
}
