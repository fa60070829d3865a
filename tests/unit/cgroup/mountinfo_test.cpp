// mountinfo parsing and host-mode detection on canned /proc/self/mountinfo texts (legacy,
// hybrid like this host, unified), plus a probe of the real host. No root needed.
#include <string>

#include <katana/cgroup/mountinfo.hpp>

#include "catch.hpp"

using katana::errc;
namespace cgroup = katana::cgroup;

namespace {

// This development host: systemd-style hybrid, cpu and cpuacct in separate hierarchies, no
// hugetlb/net_cls/perf_event in v1 (the kernel offers hugetlb to the cgroup2 side).
constexpr const char* hybrid_host = R"(22 1 254:1 / / rw,relatime - ext4 /dev/vda1 rw
30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 30 0:29 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
33 30 0:30 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
35 30 0:32 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
36 30 0:33 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
37 30 0:34 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
38 30 0:35 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
)";

// A Debian 10 style legacy host: co-mounted cpu,cpuacct and net_cls,net_prio, optional fields.
constexpr const char* legacy_host =
    R"(25 20 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:4 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:5 - cgroup cgroup rw,xattr,name=systemd
29 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
30 25 0:27 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,net_cls,net_prio
31 25 0:28 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,memory
32 25 0:29 / /sys/fs/cgroup/hugetlb rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,hugetlb
33 25 0:30 / /sys/fs/cgroup/perf_event rw,nosuid,nodev,noexec,relatime shared:13 master:1 - cgroup cgroup rw,perf_event
)";

constexpr const char* unified_host =
    R"(25 20 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
)";

}  // namespace

TEST_CASE("parse_mountinfo reads fields, optional fields and escapes", "[cgroup][mountinfo]") {
  auto m = cgroup::parse_mountinfo(
      "36 35 98:0 /mnt1 /mnt/my\\040dir rw,noatime master:1 shared:2 - ext3 /dev/root "
      "rw,errors=continue\n\n");
  REQUIRE(m);
  REQUIRE(m->size() == 1);
  const auto& e = m->front();
  CHECK(e.root == "/mnt1");
  CHECK(e.mount_point == "/mnt/my dir");
  CHECK(e.fs_type == "ext3");
  CHECK(e.source == "/dev/root");
  CHECK(e.super_options == std::vector<std::string>{"rw", "errors=continue"});

  auto bad = cgroup::parse_mountinfo("1 2 3:4 / /\n22 1 254:1 / / rw - ext4\n");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code == errc::parse_error);
  CHECK(bad.error().message().starts_with("mountinfo line 1:"));
}

TEST_CASE("a hybrid host: v1 controllers plus the unified mount", "[cgroup][mountinfo]") {
  auto m = cgroup::parse_mountinfo(hybrid_host);
  REQUIRE(m);
  const auto l = cgroup::layout_from_mounts(*m, "/sys/fs/cgroup", false);
  CHECK(l.mode == cgroup::hierarchy_mode::hybrid);
  CHECK(l.unified == "/sys/fs/cgroup/unified");
  CHECK(l.v1.size() == 8);
  CHECK(l.v1.at("cpu") == "/sys/fs/cgroup/cpu");
  CHECK(l.v1.at("cpuacct") == "/sys/fs/cgroup/cpuacct");
  CHECK(l.v1.at("freezer") == "/sys/fs/cgroup/freezer");
  CHECK_FALSE(l.v1.contains("hugetlb"));
  CHECK_FALSE(l.v1.contains("systemd"));  // named hierarchies are not controllers
  // Without the statfs answer the mount table alone says the same.
  CHECK(cgroup::layout_from_mounts(*m).mode == cgroup::hierarchy_mode::hybrid);
}

TEST_CASE("a legacy host with co-mounted controllers", "[cgroup][mountinfo]") {
  auto m = cgroup::parse_mountinfo(legacy_host);
  REQUIRE(m);
  const auto l = cgroup::layout_from_mounts(*m, "/sys/fs/cgroup", false);
  CHECK(l.mode == cgroup::hierarchy_mode::legacy);
  CHECK(l.unified.empty());
  CHECK(l.v1.at("cpu") == "/sys/fs/cgroup/cpu,cpuacct");
  CHECK(l.v1.at("cpuacct") == "/sys/fs/cgroup/cpu,cpuacct");
  CHECK(l.v1.at("net_cls") == "/sys/fs/cgroup/net_cls,net_prio");
  CHECK(l.v1.at("net_prio") == "/sys/fs/cgroup/net_cls,net_prio");
  CHECK(l.v1.at("hugetlb") == "/sys/fs/cgroup/hugetlb");
  CHECK(l.v1.at("perf_event") == "/sys/fs/cgroup/perf_event");
  CHECK_FALSE(l.v1.contains("pids"));
}

TEST_CASE("a unified host", "[cgroup][mountinfo]") {
  auto m = cgroup::parse_mountinfo(unified_host);
  REQUIRE(m);
  const auto l = cgroup::layout_from_mounts(*m, "/sys/fs/cgroup", true);
  CHECK(l.mode == cgroup::hierarchy_mode::unified);
  CHECK(l.unified == "/sys/fs/cgroup");
  CHECK(l.v1.empty());
  CHECK(cgroup::layout_from_mounts(*m).mode == cgroup::hierarchy_mode::unified);
  // statfs wins: cgroup2 at the root means unified even if stale v1 mounts linger.
  auto mixed = cgroup::parse_mountinfo(std::string(unified_host) + legacy_host);
  REQUIRE(mixed);
  CHECK(cgroup::layout_from_mounts(*mixed, "/sys/fs/cgroup", true).mode ==
        cgroup::hierarchy_mode::unified);
  CHECK(cgroup::layout_from_mounts({}, "/sys/fs/cgroup", false).mode ==
        cgroup::hierarchy_mode::none);
  CHECK(cgroup::to_string(cgroup::hierarchy_mode::hybrid) == "hybrid");
}

TEST_CASE("probe_host describes this host", "[cgroup][mountinfo]") {
  auto l = cgroup::probe_host();
  REQUIRE(l);
  INFO("mode " << cgroup::to_string(l->mode) << ", unified " << l->unified << ", " << l->v1.size()
               << " v1 controllers");
  if (l->mode == cgroup::hierarchy_mode::none) {
    WARN("no cgroup filesystem on this host");
    return;
  }
  CHECK((l->mode == cgroup::hierarchy_mode::unified) == l->v1.empty());
  if (l->mode == cgroup::hierarchy_mode::hybrid) {
    CHECK_FALSE(l->unified.empty());
  }
}
