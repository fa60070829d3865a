#include <katana/container/capabilities.hpp>
#include <katana/container/init_config.hpp>

#include "catch.hpp"

namespace kc = katana::container;

TEST_CASE("capabilities: names become bit masks per set", "[container]") {
  katana::oci::linux_capabilities caps;
  caps.bounding = {"CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_AUDIT_WRITE"};
  caps.effective = {"CAP_CHOWN"};
  caps.permitted = {"CAP_CHOWN", "CAP_SYS_ADMIN"};
  caps.ambient = {"CAP_CHECKPOINT_RESTORE"};
  auto m = kc::capability_sets(caps);
  REQUIRE(m);
  CHECK(m->bounding == 0x20000420);
  CHECK(m->effective == 0x1);
  CHECK(m->permitted == ((1ULL << 21) | 1ULL));
  CHECK(m->inheritable == 0);
  CHECK(m->ambient == (1ULL << 40));
  CHECK(kc::all_capabilities == (1ULL << 41) - 1);
}

TEST_CASE("capabilities: an unknown name is an error naming the set", "[container]") {
  katana::oci::linux_capabilities caps;
  caps.effective = {"CAP_FLY"};
  auto m = kc::capability_sets(caps);
  REQUIRE_FALSE(m);
  CHECK(m.error().message().find("effective: unknown capability CAP_FLY") != std::string::npos);
}

TEST_CASE("exec candidates follow the process PATH", "[container]") {
  CHECK(kc::exec_candidates("sh", {"PATH=/bin:/usr/bin/"}) ==
        std::vector<std::string>{"/bin/sh", "/usr/bin/sh"});
  CHECK(kc::exec_candidates("/bin/sh", {}) == std::vector<std::string>{"/bin/sh"});
  CHECK(kc::exec_candidates("x", {}).size() == 6);  // runc's default PATH
  CHECK(kc::exec_candidates("x", {"PATH=:/a"}) == std::vector<std::string>{"./x", "/a/x"});
  CHECK(kc::sysctl_path("net.ipv4.ip_forward") == "proc/sys/net/ipv4/ip_forward");
}
