#include <string>
#include <unistd.h>
#include <vector>

#include <katana/oci/default_spec.hpp>
#include <katana/oci/names.hpp>
#include <katana/oci/spec_json.hpp>
#include <katana/oci/validate.hpp>

#include "catch.hpp"
#include "fixtures.hpp"

namespace oci = katana::oci;

TEST_CASE("default_spec is runc's with katana's version, hostname and namespaces", "[oci]") {
  auto runc = oci::parse_spec(katana_test::runc_spec);
  REQUIRE(runc);
  // The deliberate differences from runc 1.1's `runc spec`.
  runc->oci_version = "1.2.0";
  runc->hostname = "katana";
  runc->process->capabilities->ambient.clear();  // as runc 1.2: no ambient capabilities
  runc->linux_->namespaces.push_back(oci::linux_namespace{"cgroup", {}});
  runc->linux_->masked_paths.push_back("/sys/devices/virtual/powercap");
  const auto ours = oci::default_spec();
  CHECK(ours == *runc);
  CHECK(oci::to_json(ours, 2) == oci::to_json(*runc, 2));
  CHECK(ours.oci_version == oci::spec_version);
  CHECK(oci::validate(ours));
}

TEST_CASE("make_rootless is runc's ToRootless", "[oci]") {
  auto runc = oci::parse_spec(katana_test::runc_spec);
  auto runc_rootless = oci::parse_spec(katana_test::runc_spec_rootless);
  REQUIRE(runc);
  REQUIRE(runc_rootless);
  oci::make_rootless(*runc, 0, 0);  // the fixture was generated as root
  CHECK(*runc == *runc_rootless);

  const auto s = oci::default_spec(true);
  const auto& l = *s.linux_;
  CHECK(l.uid_mappings == std::vector{oci::linux_id_mapping{0, ::geteuid(), 1}});
  CHECK(l.gid_mappings == std::vector{oci::linux_id_mapping{0, ::getegid(), 1}});
  std::vector<std::string> types;
  for (const auto& n : l.namespaces) {
    types.push_back(n.type);
  }
  CHECK(types == std::vector<std::string>{"pid", "ipc", "uts", "mount", "cgroup", "user"});
  CHECK_FALSE(l.resources);
  CHECK(s.mounts.at(5).type == "none");
  CHECK(s.mounts.at(2).options.back() == "mode=0620");
  CHECK(oci::validate(s));
  // Idempotent: a second call leaves one user namespace.
  auto twice = s;
  oci::make_rootless(twice, ::geteuid(), ::getegid());
  CHECK(twice == s);
}

TEST_CASE("name tables are sorted and map to kernel values", "[oci][names]") {
  STATIC_REQUIRE(oci::capability_number("CAP_CHOWN") == 0);
  STATIC_REQUIRE(oci::capability_number("CAP_SYS_ADMIN") == 21);
  STATIC_REQUIRE(oci::capability_number("CAP_CHECKPOINT_RESTORE") == oci::last_capability);
  STATIC_REQUIRE(!oci::capability_number("CAP_FOO"));
  STATIC_REQUIRE(oci::capability_name(38) == "CAP_PERFMON");
  STATIC_REQUIRE(oci::capability_name(41).empty());
  for (int i = 0; i <= oci::last_capability; ++i) {
    CHECK(oci::capability_number(oci::capability_name(i)) == i);
  }
  STATIC_REQUIRE(oci::rlimit_resource("RLIMIT_NOFILE") == 7);
  STATIC_REQUIRE(oci::rlimit_resource("RLIMIT_RTTIME") == 15);
  STATIC_REQUIRE(oci::parse_namespace_type("network") == oci::namespace_type::network);
  STATIC_REQUIRE(!oci::parse_namespace_type("net"));
  STATIC_REQUIRE(oci::proc_ns_name(oci::namespace_type::network) == "net");
  STATIC_REQUIRE(oci::proc_ns_name(oci::namespace_type::mount) == "mnt");
  STATIC_REQUIRE(oci::proc_ns_name(oci::namespace_type::time) == "time");
  STATIC_REQUIRE(oci::clone_flag(oci::namespace_type::user) == 0x10000000);
  STATIC_REQUIRE(oci::parse_seccomp_action("SCMP_ACT_ERRNO") == oci::seccomp_action::errno_);
  STATIC_REQUIRE(oci::parse_seccomp_operator("SCMP_CMP_MASKED_EQ") ==
                 oci::seccomp_operator::masked_eq);
  STATIC_REQUIRE(oci::libseccomp_arch_name("SCMP_ARCH_X86_64") == "x86_64");
  STATIC_REQUIRE(oci::seccomp_flag("SECCOMP_FILTER_FLAG_SPEC_ALLOW") == 4u);
  STATIC_REQUIRE(oci::propagation_flags("rslave") == (0x80000u | 0x4000u));
  STATIC_REQUIRE(oci::io_priority_class("IOPRIO_CLASS_IDLE") == 3);
  STATIC_REQUIRE(oci::scheduler_policy("SCHED_DEADLINE") == 6);
  STATIC_REQUIRE(oci::scheduler_flag("SCHED_FLAG_UTIL_CLAMP_MAX") == 0x40u);
  STATIC_REQUIRE(oci::personality_domain("LINUX32") == 8u);
  STATIC_REQUIRE(oci::time_offset_clock("boottime") == 7);
}
