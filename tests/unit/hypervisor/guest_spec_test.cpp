// The spec the host sends the agent: what Kata's runtime takes out before CreateContainer.
#include <katana/oci/default_spec.hpp>
#include <katana/sandbox/guest_spec.hpp>

#include "catch.hpp"

namespace sb = katana::sandbox;
namespace oci = katana::oci;

namespace {

oci::spec host_spec() {
  auto s = oci::default_spec();
  s.hooks.emplace().prestart.push_back(oci::hook{.path = "/usr/bin/netns-setup"});
  auto& l = *s.linux_;
  l.seccomp.emplace().default_action = "SCMP_ACT_ERRNO";
  for (auto& ns : l.namespaces) {
    if (ns.type == "network") {
      ns.path = "/var/run/netns/cni-1";
    }
    if (ns.type == "ipc") {
      ns.path = "/proc/42/ns/ipc";
    }
  }
  auto& r = *l.resources;
  r.pids.emplace().limit = 100;
  r.block_io.emplace().weight = 500;
  r.network.emplace().class_id = 7;
  auto& cpu = r.cpu.emplace();
  cpu.quota = 50000;
  cpu.cpus = "2-3";
  cpu.mems = "1";
  r.memory.emplace().limit = 64 << 20;
  l.devices.push_back(oci::linux_device{.path = "/dev/vfio/12", .type = "c", .major = 243});
  l.devices.push_back(oci::linux_device{.path = "/dev/fuse", .type = "c", .major = 10});
  s.process->selinux_label = "system_u:system_r:svirt_lxc_net_t:s0:c1,c2";
  l.mount_label = "system_u:object_r:svirt_sandbox_file_t:s0:c1,c2";
  return s;
}

bool has_namespace(const oci::spec& s, std::string_view type) {
  for (const auto& ns : s.linux_->namespaces) {
    if (ns.type == type) {
      return true;
    }
  }
  return false;
}

}  // namespace

TEST_CASE("guest spec: what only the host handles is taken out", "[guest_spec]") {
  auto s = host_spec();
  sb::constrain_for_guest(s, {});
  CHECK_FALSE(s.hooks);
  CHECK_FALSE(s.linux_->seccomp);
  CHECK(s.process->selinux_label.empty());
  CHECK(s.linux_->mount_label.empty());
  // Containers use the VM's network, where the pod's interfaces are.
  CHECK_FALSE(has_namespace(s, "network"));
  CHECK_FALSE(has_namespace(s, "cgroup"));
  for (const char* kept : {"pid", "ipc", "uts", "mount"}) {
    CHECK(has_namespace(s, kept));
  }
  for (const auto& ns : s.linux_->namespaces) {
    CHECK(ns.path.empty());  // host paths mean nothing in the guest
  }
  const auto& r = *s.linux_->resources;
  CHECK(r.devices.empty());
  CHECK_FALSE(r.pids);
  CHECK_FALSE(r.block_io);
  CHECK_FALSE(r.network);
  REQUIRE(r.cpu);
  CHECK(r.cpu->quota == 50000);  // limits stay
  CHECK(r.cpu->cpus.empty());    // host CPU numbers do not
  CHECK(r.cpu->mems.empty());
  REQUIRE(r.memory);
  CHECK(r.memory->limit == 64 << 20);
  REQUIRE(s.linux_->devices.size() == 1);
  CHECK(s.linux_->devices[0].path == "/dev/fuse");
  // The rest is untouched.
  CHECK(s.mounts == oci::default_spec().mounts);
  CHECK(s.linux_->masked_paths == oci::default_spec().linux_->masked_paths);
}

TEST_CASE("guest spec: seccomp, SELinux and VFIO when the guest takes them", "[guest_spec]") {
  auto s = host_spec();
  sb::constrain_for_guest(
      s, {.pass_seccomp = true, .disable_guest_selinux = false, .strip_vfio = false});
  CHECK(s.linux_->seccomp);
  CHECK(s.process->selinux_label == "system_u:system_r:container_t:s0:c1,c2");
  CHECK(s.linux_->mount_label == "system_u:object_r:svirt_sandbox_file_t:s0:c1,c2");
  CHECK(s.linux_->devices.size() == 2);

  auto t = host_spec();
  sb::constrain_for_guest(
      t, {.disable_guest_selinux = false, .guest_selinux_label = "system_u:system_r:my_t:s0"});
  CHECK(t.process->selinux_label == "system_u:system_r:my_t:s0");
}

TEST_CASE("guest spec: SELinux type replacement keeps odd labels whole", "[guest_spec]") {
  using sb::detail::with_selinux_type;
  CHECK(with_selinux_type("u:r:t", "container_t") == "u:r:container_t");
  CHECK(with_selinux_type("u:r:t:s0", "container_t") == "u:r:container_t:s0");
  CHECK(with_selinux_type("u:r", "container_t") == "u:r");
  CHECK(with_selinux_type("", "container_t").empty());
}

TEST_CASE("guest spec: a spec without linux or process is fine", "[guest_spec]") {
  oci::spec s;
  sb::constrain_for_guest(s, {});
  CHECK_FALSE(s.linux_);
  CHECK_FALSE(s.process);
}
