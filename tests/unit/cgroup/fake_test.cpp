// testing::fake_cgroup and fake_systemd_cgroup: recording, shared state, error injection and
// the same validation as the real policies; the noop policy. No root needed.
#include <memory>
#include <string>
#include <vector>

#include <katana/cgroup/noop.hpp>
#include <katana/testing/fake_cgroup.hpp>

#include "catch.hpp"

using katana::errc;
namespace cgroup = katana::cgroup;
namespace oci = katana::oci;
using katana::testing::fake_cgroup;
using katana::testing::fake_cgroup_tree;
using katana::testing::fake_systemd_cgroup;

TEST_CASE("fake_cgroup records calls and keeps state per cgroup", "[cgroup][fake]") {
  auto tree = std::make_shared<fake_cgroup_tree>();
  fake_cgroup a(tree);
  oci::linux_resources r;
  r.pids = oci::linux_pids{10};
  REQUIRE(a.create({"/katana/x", r}));
  CHECK(a.path() == "katana/x");
  REQUIRE(a.add_task(::getpid()));
  REQUIRE(a.freeze(cgroup::freezer_state::frozen));
  CHECK(*a.state() == cgroup::freezer_state::frozen);
  CHECK(a.calls == std::vector<std::string>{"create /katana/x",
                                            "add_task " + std::to_string(::getpid()),
                                            "freeze frozen", "state"});
  CHECK(a.applied() == r);
  CHECK(a.stats()->pids.current == 1);
  CHECK(a.stats()->pids.limit == 10);

  // Another instance on the same tree sees it; a task is in one cgroup only.
  fake_cgroup b(tree);
  REQUIRE(b.open({"katana/x", std::nullopt}));
  CHECK(*b.pids() == std::vector<pid_t>{::getpid()});
  fake_cgroup c(tree);
  REQUIRE(c.create({"katana/y", std::nullopt}));
  REQUIRE(c.add_task(::getpid()));
  CHECK(a.pids()->empty());
  auto busy = c.remove();
  REQUIRE_FALSE(busy);
  CHECK(busy.error().code == std::errc::device_or_resource_busy);
  CHECK(busy.error().message().find("still has 1 task(s)") != std::string::npos);

  CHECK(c.add_task(999999999).error().code == std::errc::no_such_process);
  CHECK_FALSE(fake_cgroup(tree).open({"katana/none", std::nullopt}));
  CHECK(fake_cgroup().create({"/", std::nullopt}).error().code == errc::invalid_argument);
  CHECK(fake_cgroup().add_task(1).error().code == errc::invalid_argument);  // not created
}

TEST_CASE("fake_cgroup validates like the real policies and injects failures", "[cgroup][fake]") {
  fake_cgroup f;
  oci::linux_resources bad;
  bad.memory = oci::linux_memory{};
  bad.memory->limit = 2048;
  bad.memory->swap = 1024;
  auto st = f.create({"x", bad});
  REQUIRE_FALSE(st);
  CHECK(st.error().code == errc::invalid_spec);
  CHECK(st.error().message().starts_with("cgroup x: linux.resources.memory.swap (1024)"));

  REQUIRE(f.create({"x", std::nullopt}));
  f.fail_next.emplace("freeze", katana::error(errc::unavailable, "injected"));
  CHECK(f.freeze(cgroup::freezer_state::frozen).error().message() == "injected");
  CHECK(f.freeze(cgroup::freezer_state::frozen));  // only the next one fails
  CHECK_FALSE(f.freeze(cgroup::freezer_state::freezing));
  REQUIRE(f.remove());
  REQUIRE(f.remove());
  CHECK_FALSE(f.pids());
}

TEST_CASE("fake_systemd_cgroup is systemd_delegated", "[cgroup][fake][systemd]") {
  static_assert(cgroup::systemd_delegated<fake_systemd_cgroup>);
  fake_systemd_cgroup s;
  REQUIRE(s.create({"kubepods-burstable.slice:cri:abc", std::nullopt}));
  CHECK(s.unit_name() == "cri-abc.scope");
  CHECK(s.slice() == "kubepods-burstable.slice");
  CHECK(s.path() == "kubepods.slice/kubepods-burstable.slice/cri-abc.scope");
  CHECK(s.create({"/not/systemd", std::nullopt}).error().code == errc::invalid_spec);
}

TEST_CASE("noop accepts everything but freezing", "[cgroup][noop]") {
  cgroup::noop n;
  REQUIRE(n.create({"x", std::nullopt}));
  REQUIRE(n.add_task(::getpid()));
  oci::linux_resources r;
  r.pids = oci::linux_pids{1};
  REQUIRE(n.apply(r));
  CHECK(n.pids()->empty());
  auto st = n.freeze(cgroup::freezer_state::frozen);
  REQUIRE_FALSE(st);
  CHECK(st.error().code == errc::unsupported);
  CHECK(n.freeze(cgroup::freezer_state::thawed));
  CHECK(*n.state() == cgroup::freezer_state::thawed);
  CHECK(n.remove());
  CHECK(n.stats());
  CHECK(n.path() == "x");
}
