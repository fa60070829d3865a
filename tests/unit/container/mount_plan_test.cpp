#include <sys/mount.h>
#include <sys/sysmacros.h>

#include <katana/container/mount_plan.hpp>

#include "catch.hpp"
#include "fixture.hpp"

namespace kc = katana::container;
namespace oci = katana::oci;

namespace {
kc::host_facts fake_host(bool cgroup2 = true) {
  kc::host_facts h;
  h.cgroup2 = cgroup2;
  h.is_directory = [](const std::string& p) -> katana::result<bool> {
    if (p.ends_with("missing")) {
      return katana::fail_errno("stat bind source " + p, ENOENT);
    }
    return !p.ends_with(".conf");
  };
  return h;
}
}  // namespace

TEST_CASE("mount plan: destinations are cleaned lexically and never leave the root",
          "[container]") {
  CHECK(kc::clean_destination("/a/./b/../c/") == "a/c");
  CHECK(kc::clean_destination("/../../etc") == "etc");
  CHECK(kc::clean_destination("//dev//pts") == "dev/pts");
  CHECK(kc::clean_destination("/") == "");
}

TEST_CASE("mount plan: the spec's mounts in order, /dev populated", "[container]") {
  oci::spec spec = katana_test::busybox_spec("true");
  spec.mounts.push_back({"/etc/resolv.conf", "bind", "host/resolv.conf", {"rbind", "ro"}, {}, {}});
  spec.mounts.push_back({"/data", "none", "/srv/data", {"bind", "rslave", "rro"}, {}, {}});
  auto plan = kc::build_rootfs_plan(spec, "/b", fake_host(false));
  REQUIRE(plan);
  REQUIRE(plan->mounts.size() == 9);
  CHECK(plan->mounts[0].destination == "proc");
  CHECK(plan->mounts[0].fstype == "proc");
  CHECK(plan->mounts[1].data == "mode=755,size=65536k");
  CHECK(plan->mounts[1].flags == (MS_NOSUID | MS_STRICTATIME));
  CHECK(plan->mounts[5].sysfs_fallback);
  CHECK(plan->mounts[5].flags == (MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_RDONLY));
  // cgroup without a cgroup namespace (or on v1): the host's hierarchy, bound read-only.
  const kc::planned_mount& cg = plan->mounts[6];
  CHECK(cg.kind == kc::mount_kind::bind);
  CHECK(cg.source == "/sys/fs/cgroup");
  CHECK(cg.recursive);
  CHECK(cg.remount);
  CHECK((cg.flags & MS_RDONLY) != 0);
  const kc::planned_mount& conf = plan->mounts[7];
  CHECK(conf.kind == kc::mount_kind::bind);
  CHECK(conf.source == "/b/host/resolv.conf");
  CHECK(conf.file);
  CHECK(conf.recursive);
  CHECK(conf.remount);
  const kc::planned_mount& data = plan->mounts[8];
  CHECK_FALSE(data.file);
  CHECK_FALSE(data.remount);
  CHECK(data.propagation == std::vector<unsigned long>{MS_SLAVE | MS_REC});
  CHECK(data.attr_set == 0x1);
  CHECK(plan->setup_dev);
  CHECK(plan->devices.size() == 6);
  CHECK(plan->symlinks.back().path == "dev/ptmx");
  CHECK(plan->symlinks.back().target == "pts/ptmx");
  CHECK(kc::covered_by_earlier_mount(*plan, 2));  // dev/pts below dev
  CHECK_FALSE(kc::covered_by_earlier_mount(*plan, 1));
  CHECK_FALSE(kc::covered_by_earlier_mount(*plan, 5));
  CHECK(kc::covered_by_earlier_mount(*plan, 6));  // sys/fs/cgroup below sys
}

TEST_CASE("mount plan: cgroup2 with a cgroup namespace mounts cgroup2", "[container]") {
  oci::spec spec = katana_test::busybox_spec("true");
  auto host = fake_host(true);
  host.new_cgroupns = true;
  auto plan = kc::build_rootfs_plan(spec, "/b", host);
  REQUIRE(plan);
  CHECK(plan->mounts[6].kind == kc::mount_kind::filesystem);
  CHECK(plan->mounts[6].fstype == "cgroup2");
}

TEST_CASE("mount plan: linux.devices override defaults, a bound /dev is left alone",
          "[container]") {
  oci::spec spec = katana_test::busybox_spec("true");
  oci::linux_device fuse;
  fuse.path = "/dev/fuse";
  fuse.type = "c";
  fuse.major = 10;
  fuse.minor = 229;
  fuse.file_mode = 0600;
  fuse.uid = 7;
  oci::linux_device null_dev;
  null_dev.path = "/dev/null";
  null_dev.type = "c";
  null_dev.major = 1;
  null_dev.minor = 3;
  null_dev.file_mode = 0640;
  spec.linux_->devices = {fuse, null_dev};
  auto plan = kc::build_rootfs_plan(spec, "/b", fake_host());
  REQUIRE(plan);
  REQUIRE(plan->devices.size() == 7);
  CHECK(plan->devices[5].path == "dev/fuse");
  CHECK(plan->devices[5].mode == (S_IFCHR | 0600));
  CHECK(plan->devices[5].dev == makedev(10, 229));
  CHECK(plan->devices[5].uid == 7);
  CHECK(plan->devices[6].path == "dev/null");
  CHECK(plan->devices[6].mode == (S_IFCHR | 0640));

  spec.mounts[1] = {"/dev", "bind", "/dev", {"rbind"}, {}, {}};
  auto bound = kc::build_rootfs_plan(spec, "/b", fake_host());
  REQUIRE(bound);
  CHECK_FALSE(bound->setup_dev);
  CHECK(bound->symlinks.empty());
}

TEST_CASE("mount plan: errors name the mount", "[container]") {
  oci::spec spec = katana_test::busybox_spec("true");
  spec.mounts = {{"/x", "bind", "/missing", {"bind"}, {}, {}}};
  auto a = kc::build_rootfs_plan(spec, "/b", fake_host());
  REQUIRE_FALSE(a);
  CHECK(a.error().message().find("mount /x") != std::string::npos);
  spec.mounts = {{"/", "tmpfs", "tmpfs", {}, {}, {}}};
  CHECK_FALSE(kc::build_rootfs_plan(spec, "/b", fake_host()));
  spec.mounts = {{"/x", "", "", {}, {}, {}}};
  CHECK_FALSE(kc::build_rootfs_plan(spec, "/b", fake_host()));
  oci::linux_device bad;
  bad.path = "/dev/x";
  bad.type = "q";
  spec.mounts.clear();
  spec.linux_->devices = {bad};
  CHECK_FALSE(kc::build_rootfs_plan(spec, "/b", fake_host()));
}

namespace {
// This host's layout (Debian 12, systemd hybrid), plus a co-mounted cpu,cpuacct and a mount
// outside /sys/fs/cgroup that must be ignored.
constexpr std::string_view hybrid_mountinfo =
    "30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"
    "34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd\n"
    "40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate\n"
    "41 22 0:31 / /mnt/memory rw,relatime - cgroup cgroup rw,memory\n";

kc::host_facts hybrid_host(bool cgroupns) {
  kc::host_facts h = fake_host(false);
  auto mounts = katana::cgroup::parse_mountinfo(hybrid_mountinfo);
  REQUIRE(mounts);
  h.cgroups = kc::cgroup_hierarchies_of(*mounts);
  h.new_cgroupns = cgroupns;
  return h;
}
}  // namespace

TEST_CASE("mount plan: the host's cgroup hierarchies from mountinfo", "[container]") {
  const kc::host_facts h = hybrid_host(false);
  REQUIRE(h.cgroups.size() == 4);
  CHECK(h.cgroups[0] ==
        kc::cgroup_hierarchy{"/sys/fs/cgroup/cpu,cpuacct", "/", false, "cpu,cpuacct"});
  CHECK(h.cgroups[1].controllers == "memory");
  CHECK(h.cgroups[2].controllers == "name=systemd");
  CHECK(h.cgroups[3] == kc::cgroup_hierarchy{"/sys/fs/cgroup/unified", "/", true, ""});

  auto unified = katana::cgroup::parse_mountinfo(
      "25 22 0:27 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n");
  REQUIRE(unified);
  CHECK(kc::cgroup_hierarchies_of(*unified) ==
        std::vector<kc::cgroup_hierarchy>{{"/sys/fs/cgroup", "/", true, ""}});
}

TEST_CASE("mount plan: v1 cgroups with a cgroup namespace: tmpfs, fresh hierarchy mounts",
          "[container]") {
  oci::spec spec = katana_test::busybox_spec("true");
  auto plan = kc::build_rootfs_plan(spec, "/b", hybrid_host(true));
  REQUIRE(plan);
  // proc dev dev/pts dev/shm dev/mqueue sys, then the cgroup mount's steps.
  REQUIRE(plan->mounts.size() == 6 + 1 + 4 + 2 + 1);
  const auto& m = plan->mounts;
  CHECK(m[6].destination == "sys/fs/cgroup");
  CHECK(m[6].fstype == "tmpfs");
  CHECK(m[6].data == "mode=755");
  CHECK(m[6].flags == (MS_NOSUID | MS_NOEXEC | MS_NODEV));
  CHECK(m[7].kind == kc::mount_kind::filesystem);
  CHECK(m[7].destination == "sys/fs/cgroup/cpu,cpuacct");
  CHECK(m[7].fstype == "cgroup");
  CHECK(m[7].data == "cpu,cpuacct");
  CHECK((m[7].flags & MS_RDONLY) != 0);
  CHECK(m[9].data == "name=systemd");
  CHECK(m[10].fstype == "cgroup2");
  CHECK(m[10].destination == "sys/fs/cgroup/unified");
  CHECK(m[10].data.empty());
  CHECK(m[11].kind == kc::mount_kind::symlink);
  CHECK(m[11].source == "cpu,cpuacct");
  CHECK(m[11].destination == "sys/fs/cgroup/cpu");
  CHECK(m[12].destination == "sys/fs/cgroup/cpuacct");
  CHECK(m[13].kind == kc::mount_kind::remount);  // ro: the tmpfs once filled
  CHECK(m[13].destination == "sys/fs/cgroup");
  CHECK((m[13].flags & MS_RDONLY) != 0);
  for (std::size_t i = 7; i < m.size(); ++i) {
    CHECK(kc::covered_by_earlier_mount(*plan, i));  // below the tmpfs: created by the init
  }
}

TEST_CASE("mount plan: v1 cgroups without a cgroup namespace bind the container's own cgroups",
          "[container]") {
  oci::spec spec = katana_test::busybox_spec("true");
  auto plan = kc::build_rootfs_plan(spec, "/b", hybrid_host(false));
  REQUIRE(plan);
  const auto& m = plan->mounts;
  CHECK(m[6].fstype == "tmpfs");
  CHECK(m[8].kind == kc::mount_kind::cgroup_bind);
  CHECK(m[8].source == "/sys/fs/cgroup/memory");
  CHECK(m[8].destination == "sys/fs/cgroup/memory");
  CHECK(m[8].cgroup_controllers == "memory");
  CHECK(m[8].cgroup_root == "/");
  CHECK(m[8].recursive);
  CHECK(m[8].remount);
  CHECK(m[10].cgroup_controllers.empty());  // unified: the "0::" line

  // A unified host: one step at the destination.
  kc::host_facts v2 = fake_host(true);
  v2.cgroups = {{"/sys/fs/cgroup", "/", true, ""}};
  auto bound = kc::build_rootfs_plan(spec, "/b", v2);
  REQUIRE(bound);
  REQUIRE(bound->mounts.size() == 7);
  CHECK(bound->mounts[6].kind == kc::mount_kind::cgroup_bind);
  CHECK(bound->mounts[6].destination == "sys/fs/cgroup");
  v2.new_cgroupns = true;
  auto fresh = kc::build_rootfs_plan(spec, "/b", v2);
  REQUIRE(fresh);
  CHECK(fresh->mounts[6].fstype == "cgroup2");
}
