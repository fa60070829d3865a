// cgroup::v2 against the host's cgroup2 hierarchy (root): /sys/fs/cgroup on unified hosts, the
// controller-less .../unified mount on hybrid ones like this host. Tests what that hierarchy
// offers: subtree_control enabling, hugetlb if offered, unified keys, freezing through
// cgroup.freeze, cpu.stat usage, and errors naming missing controllers.
#include <chrono>
#include <string>
#include <thread>
#include <unistd.h>

#include <katana/cgroup/v2.hpp>

#include "catch.hpp"
#include "cgroup_test_support.hpp"

using katana::errc;
namespace cgroup = katana::cgroup;
namespace oci = katana::oci;
using katana_test::cg::read_file;
using katana_test::cg::trimmed;
using katana_test::cg::words;

namespace {

#define KATANA_CGROUP_REQUIRE_V2()                                   \
  KATANA_CGROUP_REQUIRE_ROOT();                                      \
  do {                                                               \
    if (katana_test::cg::layout().unified.empty()) {                 \
      WARN("skipped: no cgroup2 hierarchy is mounted on this host"); \
      return;                                                        \
    }                                                                \
  } while (false)

const std::string& root() {
  return katana_test::cg::layout().unified;
}

bool offered(std::string_view ctl) {
  const auto all = words(read_file(root() + "/cgroup.controllers"));
  return std::find(all.begin(), all.end(), ctl) != all.end();
}

bool contains(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

TEST_CASE("v2 enables controllers top-down and writes hugetlb", "[cgroup][v2][root]") {
  KATANA_CGROUP_REQUIRE_V2();
  const katana_test::cg::scratch parent("v2-hugetlb");
  if (!offered("hugetlb") || cgroup::controllers::hugetlb::host_page_sizes().empty()) {
    WARN(
        "skipped: the cgroup2 hierarchy offers no hugetlb controller or there are no huge "
        "pages");
    return;
  }
  const std::string size = cgroup::controllers::hugetlb::host_page_sizes().front();
  cgroup::v2 m({.root = root(), .enable = cgroup::enable_policy::needed});
  oci::linux_resources r;
  r.hugepage_limits.push_back({size, 8 << 20});
  auto st = m.create({parent / "a/b", r});
  INFO((st ? "" : st.error().message()));
  REQUIRE(st);
  // Enabled in every parent, not in the leaf (no internal processes there).
  CHECK(contains(words(read_file(root() + "/cgroup.subtree_control")), "hugetlb"));
  CHECK(contains(words(read_file(root() + "/" + parent.name() + "/cgroup.subtree_control")),
                 "hugetlb"));
  CHECK(contains(words(read_file(root() + "/" + (parent / "a") + "/cgroup.subtree_control")),
                 "hugetlb"));
  CHECK(words(read_file(root() + "/" + (parent / "a/b") + "/cgroup.subtree_control")).empty());
  CHECK(trimmed(read_file(root() + "/" + (parent / "a/b") + "/hugetlb." + size + ".max")) ==
        "8388608");
  CHECK(contains(*m.controllers(), "hugetlb"));

  // unified keys are written verbatim, after the typed resources.
  oci::linux_resources u;
  u.unified["hugetlb." + size + ".max"] = "4194304";
  REQUIRE(m.apply(u));
  CHECK(trimmed(read_file(root() + "/" + (parent / "a/b") + "/hugetlb." + size + ".max")) ==
        "4194304");
  auto s = m.stats();
  REQUIRE(s);
  CHECK(s->hugetlb.contains(size));
  REQUIRE(m.remove());
}

TEST_CASE("v2 all_available enables what the parent offers", "[cgroup][v2][root]") {
  KATANA_CGROUP_REQUIRE_V2();
  const katana_test::cg::scratch parent("v2-all");
  cgroup::v2 m({.root = root()});
  REQUIRE(m.create({parent / "c", std::nullopt}));
  const auto offered_at_parent =
      words(read_file(root() + "/" + parent.name() + "/cgroup.controllers"));
  const auto enabled = words(read_file(root() + "/" + parent.name() + "/cgroup.subtree_control"));
  CHECK(offered_at_parent == enabled);
  CHECK(words(read_file(root() + "/" + (parent / "c") + "/cgroup.controllers")) == enabled);
  REQUIRE(m.remove());
}

TEST_CASE("v2 refuses resources whose controller the hierarchy lacks", "[cgroup][v2][root]") {
  KATANA_CGROUP_REQUIRE_V2();
  const katana_test::cg::scratch parent("v2-missing");
  cgroup::v2 m({.root = root(), .enable = cgroup::enable_policy::needed});
  REQUIRE(m.create({parent / "c", std::nullopt}));
  if (offered("memory")) {
    WARN("the cgroup2 hierarchy has a memory controller: checking that it is applied instead");
    oci::linux_resources r;
    r.memory = oci::linux_memory{};
    r.memory->limit = 64 << 20;
    REQUIRE(m.apply(r));
    CHECK(trimmed(read_file(root() + "/" + (parent / "c") + "/memory.max")) == "67108864");
  } else {
    oci::linux_resources r;
    r.memory = oci::linux_memory{};
    r.memory->limit = 64 << 20;
    auto st = m.apply(r);
    REQUIRE_FALSE(st);
    CHECK(st.error().code == errc::unsupported);
    CHECK(st.error().message().find("linux.resources.memory needs the memory controller: the "
                                    "memory cgroup controller is not available in ") !=
          std::string::npos);
  }
  // Unsafe unified keys never reach the filesystem.
  oci::linux_resources evil;
  evil.unified["../../cgroup.procs"] = "1";
  auto st = m.apply(evil);
  REQUIRE_FALSE(st);
  CHECK(st.error().code == errc::invalid_spec);
  oci::linux_resources net;
  net.network = oci::linux_network{};
  net.network->class_id = 1;
  CHECK(m.apply(net).error().code == errc::unsupported);
  REQUIRE(m.remove());
}

TEST_CASE("v2 freezes a busy child with cgroup.freeze and counts its CPU", "[cgroup][v2][root]") {
  KATANA_CGROUP_REQUIRE_V2();
  const katana_test::cg::scratch parent("v2-freeze");
  cgroup::v2 m({.root = root(), .enable = cgroup::enable_policy::needed});
  REQUIRE(m.create({parent / "c", std::nullopt}));
  const std::string dir = root() + "/" + (parent / "c");
  if (::access((dir + "/cgroup.freeze").c_str(), F_OK) != 0) {
    WARN("skipped: no cgroup.freeze (Linux < 5.2)");
    REQUIRE(m.remove());
    return;
  }
  katana_test::cg::child_guard child{katana_test::cg::spawn_busy()};
  REQUIRE(m.add_task(child.pid));
  CHECK(katana_test::cg::proc_cgroup(child.pid, "") == "/" + (parent / "c"));
  auto s = katana_test::cg::wait_for_cpu(m, 20'000'000);
  REQUIRE(s);
  CHECK(s->cpu.usage.total_ns >= 20'000'000);
  CHECK(s->cpu.usage.total_ns >= s->cpu.usage.user_ns);

  REQUIRE(m.freeze(cgroup::freezer_state::frozen));
  CHECK(*m.state() == cgroup::freezer_state::frozen);
  CHECK(read_file(dir + "/cgroup.events").find("frozen 1") != std::string::npos);
  const auto ticks = katana_test::cg::cpu_ticks(child.pid);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  CHECK(katana_test::cg::cpu_ticks(child.pid) == ticks);
  REQUIRE(m.freeze(cgroup::freezer_state::thawed));
  CHECK(*m.state() == cgroup::freezer_state::thawed);
  CHECK(katana_test::cg::runs_again(child.pid, ticks));

  auto busy = m.remove();
  REQUIRE_FALSE(busy);
  CHECK(busy.error().code == std::errc::device_or_resource_busy);
  CHECK(busy.error().message().find(katana::str_cat("(pid ", child.pid, ")")) != std::string::npos);
  katana::testing::kill_and_reap(child.pid);
  REQUIRE(m.remove());
}
