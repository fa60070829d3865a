// The seeds' agent rules as pure functions: init_mode forces cgroupfs (SEEDS-INVENTORY §2.4)
// and VFIO containers get the guest's InfiniBand devices (§2.2), on a fake /dev and /sys.
#include <filesystem>
#include <fstream>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <katana/agent/cgroup_driver.hpp>
#include <katana/agent/devices.hpp>
#include <katana/agent/infiniband.hpp>
#include <katana/ttrpc/status.hpp>

#include "catch.hpp"
#include "support.hpp"

namespace ag = katana::agent;
namespace fs = std::filesystem;

TEST_CASE("cgroup driver: cgroupfs paths stay cgroupfs", "[agent][seed]") {
  for (const bool init : {true, false}) {
    auto c = ag::choose_cgroup("/kubepods/pod1/ctr", "ctr", init, false);
    REQUIRE(c);
    CHECK(c->driver == ag::cgroup_driver::cgroupfs);
    CHECK(c->path == "/kubepods/pod1/ctr");
  }
  CHECK(ag::choose_cgroup("", "abc", false, false)->path == "/abc");
  CHECK(ag::choose_cgroup("kubepods//pod1/./c", "c", false, false)->path == "/kubepods/pod1/c");
  CHECK(ag::choose_cgroup("/a/../../etc", "c", true, false).error().code ==
        katana::errc::path_escapes_root);
}

TEST_CASE("cgroup driver: init mode forces cgroupfs for systemd paths", "[agent][seed]") {
  // Whatever the guest claims about systemd: as PID 1 there is none.
  for (const bool systemd : {true, false}) {
    auto c = ag::choose_cgroup("kubepods-burstable-pod1.slice:cri-containerd:abc", "abc",
                               /*init_mode=*/true, systemd);
    REQUIRE(c);
    CHECK(c->driver == ag::cgroup_driver::cgroupfs);
    CHECK(c->path ==
          "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/"
          "cri-containerd-abc.scope");
  }
  CHECK(ag::choose_cgroup(":crio:abc", "abc", true, false)->path == "/crio-abc.scope");
  CHECK(ag::choose_cgroup("system.slice::abc", "abc", true, false)->path ==
        "/system.slice/abc.scope");
  CHECK(ag::choose_cgroup("a.slice:p:child.slice", "x", true, false)->path ==
        "/a.slice/child.slice");
}

TEST_CASE("cgroup driver: a missing systemd is an error value, never a crash", "[agent][seed]") {
  auto c = ag::choose_cgroup("system.slice:crio:abc", "abc", /*init_mode=*/false,
                             /*systemd=*/false);
  REQUIRE(!c);
  CHECK(c.error().code == katana::errc::unsupported);
  CHECK(c.error().message().find("systemd is not running") != std::string::npos);
  CHECK(katana::ttrpc::to_code(c.error().code) == katana::ttrpc::code::unimplemented);
  auto s = ag::choose_cgroup("system.slice:crio:abc", "abc", false, true);
  REQUIRE(s);
  CHECK(s->driver == ag::cgroup_driver::systemd);
  CHECK(s->path == "system.slice:crio:abc");
  // Malformed systemd paths are bad input, also in init mode.
  CHECK(ag::choose_cgroup("bad-.slice:p:n", "n", true, false).error().code ==
        katana::errc::invalid_argument);
  CHECK(ag::choose_cgroup("a.slice:p:", "n", true, false).error().code ==
        katana::errc::invalid_argument);
  CHECK(!ag::is_systemd_cgroup_path("/a:b:c"));
  CHECK(!ag::is_systemd_cgroup_path("a:b"));
  CHECK(ag::is_systemd_cgroup_path("a:b:c"));
}

TEST_CASE("systemd_running looks for /run/systemd/system", "[agent][seed]") {
  katana_test::temp_dir t;
  CHECK(!ag::systemd_running(t.path));
  fs::create_directories(t.path / "systemd" / "system");
  CHECK(ag::systemd_running(t.path));
}

TEST_CASE("VFIO device types", "[agent][seed]") {
  for (const auto* t : {"vfio", "vfio-pci", "vfio-pci-gk", "vfio-ap", "vfio-ap-cold"}) {
    CHECK(ag::is_vfio_device_type(t));
  }
  for (const auto* t : {"blk", "mmioblk", "scsi", "", "vfio-x"}) {
    CHECK(!ag::is_vfio_device_type(t));
  }
  const std::vector<ag::device> plain = {{.type = "blk"}, {.type = "scsi"}};
  const std::vector<ag::device> vfio = {{.type = "blk"}, {.type = "vfio-pci"}};
  const auto type = [](const ag::device& d) -> std::string_view {
    return d.type;
  };
  CHECK(!ag::container_has_vfio_device(plain, type));
  CHECK(ag::container_has_vfio_device(vfio, type));
}

TEST_CASE("infiniband: absent or empty /dev/infiniband changes nothing", "[agent][seed]") {
  katana_test::temp_dir t;
  katana::oci::spec s;
  CHECK(*ag::expose_guest_infiniband_devices(s, t.path) == 0);
  CHECK(!s.linux_);
  fs::create_directories(t.path / "infiniband");
  CHECK(*ag::expose_guest_infiniband_devices(s, t.path) == 0);
  CHECK(!s.linux_);
  CHECK(ag::snapshot_infiniband(t.path / "sys", t.path) ==
        "/sys/class/infiniband=absent /sys/class/infiniband_verbs=absent /dev/infiniband=[]");
}

TEST_CASE("infiniband: every char device with an rwm rule, once", "[agent][seed]") {
  katana_test::temp_dir t;
  const auto ib = t.path / "infiniband";
  fs::create_directories(ib);
  if (::mknod((ib / "uverbs0").c_str(), S_IFCHR | 0666, makedev(231, 192)) != 0 ||
      ::mknod((ib / "umad0").c_str(), S_IFCHR | 0660, makedev(231, 0)) != 0 ||
      ::mknod((ib / "rdma_cm").c_str(), S_IFCHR | 0666, makedev(10, 58)) != 0) {
    WARN("skipped: mknod needs CAP_MKNOD");
    return;
  }
  std::ofstream(ib / "README") << "not a device";
  fs::create_directories(ib / "subdir");
  fs::create_directories(t.path / "sys" / "class" / "infiniband" / "mlx5_0");
  fs::create_directories(t.path / "sys" / "class" / "infiniband_verbs" / "uverbs0");

  katana::oci::spec s;
  s.linux_.emplace().devices.push_back(
      {.path = "/dev/infiniband/umad0", .type = "c", .major = 231, .minor = 0});
  auto added = ag::expose_guest_infiniband_devices(s, t.path);
  REQUIRE(added);
  CHECK(*added == 2);  // umad0 was already listed
  const auto& devs = s.linux_->devices;
  REQUIRE(devs.size() == 3);
  CHECK(devs[1].path == "/dev/infiniband/rdma_cm");
  CHECK(devs[1].major == 10);
  CHECK(devs[1].minor == 58);
  struct stat st {};
  REQUIRE(::stat((ib / "rdma_cm").c_str(), &st) == 0);
  CHECK(devs[1].file_mode == (st.st_mode & 07777));
  CHECK(devs[2].path == "/dev/infiniband/uverbs0");
  const auto& rules = s.linux_->resources->devices;
  REQUIRE(rules.size() == 3);  // every device gets its rule, the listed one too
  for (const auto& r : rules) {
    CHECK(r.allow);
    CHECK(r.type == "c");
    CHECK(r.access == "rwm");
  }
  // Idempotent.
  CHECK(*ag::expose_guest_infiniband_devices(s, t.path) == 0);
  CHECK(s.linux_->resources->devices.size() == 3);

  const auto snap = ag::snapshot_infiniband(t.path / "sys", t.path);
  CHECK(snap ==
        "/sys/class/infiniband=[mlx5_0] /sys/class/infiniband_verbs=[uverbs0] "
        "/dev/infiniband=[README,rdma_cm,subdir,umad0,uverbs0]");
  CHECK(snap.find('\n') == std::string::npos);
}

TEST_CASE("infiniband: add_devices logs one snapshot line for VFIO containers only",
          "[agent][seed]") {
  katana_test::temp_dir t;
  fs::create_directories(t.path / "dev" / "infiniband");
  std::vector<std::string> lines;
  katana::logging::logger log([&](std::string_view l) { lines.emplace_back(l); });
  ag::device_env env{t.path / "sys", t.path / "dev", std::chrono::milliseconds(50)};
  katana::asio::io_context io;
  katana::oci::spec s;
  REQUIRE(katana_test::run(io, ag::add_devices(env, {}, s, log)));
  CHECK(lines.empty());
  REQUIRE(katana_test::run(io, ag::add_devices(env, {{.id = "x", .type = "vfio-pci-gk"}}, s, log)));
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].find("/dev/infiniband=[]") != std::string::npos);
  CHECK(lines[0].find("/sys/class/infiniband=absent") != std::string::npos);
}
