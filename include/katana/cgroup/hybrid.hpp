// cgroup::hybrid: systemd's hybrid layout (this development host): v1 controllers under
// /sys/fs/cgroup/<controller> plus a cgroup2 mount at /sys/fs/cgroup/unified that holds the
// controllers no v1 hierarchy took (often none). Tasks join both, so the unified hierarchy
// tracks them the way systemd does; each resource goes to v1 when its controller is mounted
// there and to the unified hierarchy when only that offers it (hugetlb here); devices fall
// back to eBPF and freezing to cgroup.freeze the same way. unified keys go to the cgroup2 side.
#pragma once

#include <algorithm>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

#include <katana/cgroup/concepts.hpp>
#include <katana/cgroup/controllers/all.hpp>
#include <katana/cgroup/mountinfo.hpp>
#include <katana/cgroup/v1.hpp>
#include <katana/cgroup/v2.hpp>
#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/core/log.hpp>
#include <katana/core/try.hpp>

namespace katana::inline v0::cgroup {

struct hybrid_options {
  logging::logger log = detail::null_logger();
};

/// The controllers whose usage may come from the cgroup2 side.
using hybrid_v2_stats_controllers = controller_list<controllers::memory,
                                                    controllers::pids,
                                                    controllers::blkio,
                                                    controllers::hugetlb>;

class hybrid {
 public:
  static constexpr std::string_view name = "cgroupfs_hybrid";
  using options = hybrid_options;

  /// `layout` must have v1 controllers and a cgroup2 mount (layout.unified).
  explicit hybrid(const host_layout& layout, options o = {})
      : v1_(layout, {.log = o.log}),
        v2_({.root = layout.unified, .enable = enable_policy::needed, .log = o.log}) {
    auto offered = v2_.controllers();
    if (offered) {
      unified_controllers_ = std::move(*offered);
    }
  }

  static result<hybrid> make(options o = {}) {
    const host_layout layout = KATANA_TRY(probe_host());
    if (layout.mode != hierarchy_mode::hybrid) {
      return fail(errc::unsupported,
                  str_cat("cgroup hybrid: the host's mode is ", to_string(layout.mode)));
    }
    return hybrid(layout, std::move(o));
  }

  status create(const config& cfg) {
    if (cfg.resources) {
      KATANA_TRY(check(*cfg.resources), str_cat("cgroup ", cfg.path));
    }
    KATANA_TRY(v1_.create({cfg.path, std::nullopt}));
    KATANA_TRY(v2_.create({cfg.path, std::nullopt}));
    if (cfg.resources) {
      return apply(*cfg.resources);
    }
    return {};
  }

  status open(const config& cfg) {
    KATANA_TRY(v1_.open(cfg));
    return v2_.open(cfg);
  }

  status add_task(pid_t pid) {
    KATANA_TRY(v1_.add_task(pid));
    return v2_.add_task(pid);
  }

  status apply(const oci::linux_resources& r) {
    KATANA_TRY(check(r), str_cat("cgroup ", v1_.path()));
    return resource_controllers::for_each([&](auto* k) -> status {
      using K = std::remove_pointer_t<decltype(k)>;
      return to_v2<K>() ? v2_.apply_controller<K>(r) : v1_.apply_controller<K>(r);
    });
  }

  status freeze(freezer_state s) {
    return v1_.has_controller("freezer") ? v1_.freeze(s) : v2_.freeze(s);
  }
  result<freezer_state> state() const {
    return v1_.has_controller("freezer") ? v1_.state() : v2_.state();
  }

  /// From the unified hierarchy, which every task of this cgroup joined.
  result<std::vector<pid_t>> pids() const { return v2_.pids(); }

  /// Both sides are always attempted; the first error is returned.
  status remove() {
    auto a = v1_.remove();
    auto b = v2_.remove();
    return !a ? a : b;
  }

  [[nodiscard]] std::string_view path() const noexcept { return v1_.path(); }

  result<cgroup::stats> stats() const {
    cgroup::stats s = KATANA_TRY(v1_.stats());
    KATANA_TRY(hybrid_v2_stats_controllers::for_each([&](auto* k) -> status {
      using K = std::remove_pointer_t<decltype(k)>;
      return to_v2<K>() ? v2_.stats_controller<K>(s) : status{};
    }));
    return s;
  }

  /// Whether controller K's resources go to the cgroup2 side.
  template <class K>
  [[nodiscard]] bool to_v2() const {
    if constexpr (std::is_same_v<K, controllers::unified>) {
      return true;
    } else if constexpr (std::is_same_v<K, controllers::devices>) {
      return !v1_.has_controller(K::name);  // eBPF needs no controller
    } else {
      return !v1_.has_controller(K::name) && !K::v2_name.empty() &&
             std::find(unified_controllers_.begin(), unified_controllers_.end(), K::v2_name) !=
                 unified_controllers_.end();
    }
  }

  [[nodiscard]] const cgroup::v1& legacy() const noexcept { return v1_; }
  [[nodiscard]] const cgroup::v2& unified() const noexcept { return v2_; }

 private:
  status check(const oci::linux_resources& r) const {
    KATANA_TRY(validate_resources(r));
    return resource_controllers::for_each([&](auto* k) -> status {
      using K = std::remove_pointer_t<decltype(k)>;
      if constexpr (!std::is_same_v<K, controllers::unified>) {
        if (K::needed(r) && !to_v2<K>() && !v1_.has_controller(K::name)) {
          return fail(errc::unsupported,
                      str_cat("linux.resources.", K::field, " needs the ", K::name,
                              " cgroup controller, which is neither mounted as v1 nor offered by "
                              "the unified hierarchy on this host"));
        }
      }
      return {};
    });
  }

  cgroup::v1 v1_;
  cgroup::v2 v2_;
  std::vector<std::string> unified_controllers_;
};

static_assert(manager<hybrid> && has_stats<hybrid>);

}  // namespace katana::inline v0::cgroup
