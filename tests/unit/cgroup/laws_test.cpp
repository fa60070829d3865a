// The cgroup::manager laws (testing/cgroup_laws.hpp) over the fake and every real policy this
// host supports: v1 and hybrid on a hybrid host, v2 on its cgroup2 mount (unified hosts: at
// the root), and any_manager's choice. Real policies need root and are skipped with a warning
// otherwise.
#include <memory>
#include <string>

#include <katana/cgroup/any_manager.hpp>
#include <katana/cgroup/hybrid.hpp>
#include <katana/cgroup/v1.hpp>
#include <katana/cgroup/v2.hpp>
#include <katana/testing/cgroup_laws.hpp>
#include <katana/testing/fake_cgroup.hpp>

#include "catch.hpp"
#include "cgroup_test_support.hpp"

namespace cgroup = katana::cgroup;
using katana::testing::fake_cgroup;

namespace {

// How to make each policy here, and why it cannot be tested when it cannot.
template <class C>
struct env;

template <>
struct env<fake_cgroup> {
  std::shared_ptr<katana::testing::fake_cgroup_tree> tree =
      std::make_shared<katana::testing::fake_cgroup_tree>();
  static std::string unavailable() { return {}; }
  fake_cgroup make() const { return fake_cgroup(tree); }
};

template <>
struct env<cgroup::v1> {
  static std::string unavailable() {
    if (!katana_test::cg::is_root()) {
      return "needs root";
    }
    return katana_test::cg::layout().v1.empty() ? "no v1 controllers on this host" : "";
  }
  static cgroup::v1 make() { return cgroup::v1(katana_test::cg::layout()); }
};

template <>
struct env<cgroup::hybrid> {
  static std::string unavailable() {
    if (!katana_test::cg::is_root()) {
      return "needs root";
    }
    return katana_test::cg::layout().mode == cgroup::hierarchy_mode::hybrid
               ? ""
               : "the host is not hybrid";
  }
  static cgroup::hybrid make() { return cgroup::hybrid(katana_test::cg::layout()); }
};

template <>
struct env<cgroup::v2> {
  static std::string unavailable() {
    if (!katana_test::cg::is_root()) {
      return "needs root";
    }
    return katana_test::cg::layout().unified.empty() ? "no cgroup2 mount on this host" : "";
  }
  static cgroup::v2 make() { return cgroup::v2({.root = katana_test::cg::layout().unified}); }
};

template <>
struct env<cgroup::any_manager> {
  static std::string unavailable() {
    if (!katana_test::cg::is_root()) {
      return "needs root";
    }
    return katana_test::cg::layout().mode == cgroup::hierarchy_mode::none ? "no cgroups" : "";
  }
  static cgroup::any_manager make() { return *cgroup::make_any_manager({}); }
};

}  // namespace

TEMPLATE_TEST_CASE("cgroup manager laws",
                   "[cgroup][laws][root]",
                   fake_cgroup,
                   cgroup::v1,
                   cgroup::hybrid,
                   cgroup::v2,
                   cgroup::any_manager) {
  const env<TestType> e;
  if (const auto why = e.unavailable(); !why.empty()) {
    WARN("skipped " << TestType::name << ": " << why);
    return;
  }
  const katana_test::cg::scratch parent(std::string("laws-") + std::string(TestType::name));
  auto st =
      katana::testing::check_cgroup_manager_laws<TestType>([&] { return e.make(); }, parent / "c");
  INFO(TestType::name);
  INFO((st ? std::string("all laws hold") : st.error().message()));
  CHECK(st);
}
