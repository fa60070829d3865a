// cgroup::any_manager: the manager chosen at run time (youki's AnyCgroupManager), a
// std::variant of the shipped policies, for the composition root (katana-runk, the agent).
// make_any_manager() resolves the driver (resolve_driver), probes the host (statfs magic of
// /sys/fs/cgroup, mountinfo) and picks v2, hybrid or v1; noop when cgroups are disabled.
#pragma once

#include <string>
#include <string_view>
#include <sys/types.h>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <katana/cgroup/concepts.hpp>
#include <katana/cgroup/hybrid.hpp>
#include <katana/cgroup/mountinfo.hpp>
#include <katana/cgroup/noop.hpp>
#include <katana/cgroup/path.hpp>
#include <katana/cgroup/v1.hpp>
#include <katana/cgroup/v2.hpp>
#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/core/log.hpp>
#include <katana/core/try.hpp>

namespace katana::inline v0::cgroup {

class any_manager {
 public:
  static constexpr std::string_view name = "any";
  using variant_type = std::variant<v1, v2, hybrid, noop>;

  template <class C>
    requires(!std::is_same_v<std::remove_cvref_t<C>, any_manager> &&
             std::is_constructible_v<variant_type, C>)
  explicit any_manager(C&& c) : m_(std::forward<C>(c)) {}

  /// The chosen policy's name: "cgroupfs_v1", "cgroupfs_v2", "cgroupfs_hybrid" or "noop".
  [[nodiscard]] std::string_view active() const {
    return std::visit([](const auto& m) { return std::string_view(m.name); }, m_);
  }

  status create(const config& cfg) {
    return std::visit([&](auto& m) { return m.create(cfg); }, m_);
  }
  status open(const config& cfg) {
    return std::visit([&](auto& m) { return m.open(cfg); }, m_);
  }
  status add_task(pid_t pid) {
    return std::visit([&](auto& m) { return m.add_task(pid); }, m_);
  }
  status apply(const oci::linux_resources& r) {
    return std::visit([&](auto& m) { return m.apply(r); }, m_);
  }
  status freeze(freezer_state s) {
    return std::visit([&](auto& m) { return m.freeze(s); }, m_);
  }
  result<freezer_state> state() const {
    return std::visit([](const auto& m) { return m.state(); }, m_);
  }
  result<std::vector<pid_t>> pids() const {
    return std::visit([](const auto& m) { return m.pids(); }, m_);
  }
  status remove() {
    return std::visit([](auto& m) { return m.remove(); }, m_);
  }
  [[nodiscard]] std::string_view path() const {
    return std::visit([](const auto& m) { return m.path(); }, m_);
  }
  result<cgroup::stats> stats() const {
    return std::visit([](const auto& m) { return m.stats(); }, m_);
  }

  [[nodiscard]] const variant_type& get() const noexcept { return m_; }
  [[nodiscard]] variant_type& get() noexcept { return m_; }

 private:
  variant_type m_;
};

static_assert(manager<any_manager> && has_stats<any_manager>);

struct selection {
  driver requested = driver::cgroupfs;
  /// requested: a flag or option asked for it; path_style: implied by a systemd-style
  /// cgroupsPath (driver_for_path), which falls back to cgroupfs when systemd is not running.
  driver_origin origin = driver_origin::requested;
  /// The guest agent runs as PID 1: no systemd, so always cgroupfs.
  bool agent_is_init = false;
  /// --no-cgroups: the noop manager.
  bool disabled = false;
  std::string cgroup_root = "/sys/fs/cgroup";
  logging::logger log = detail::null_logger();
};

/// The manager for this host. errc::unsupported when the systemd driver is asked for (none
/// ships yet) or the host has no cgroup filesystem at all.
inline result<any_manager> make_any_manager(const selection& s) {
  if (s.disabled) {
    s.log.info("cgroups disabled: using the noop cgroup manager");
    return any_manager(noop{});
  }
  const driver d =
      KATANA_TRY(resolve_driver(s.requested, s.agent_is_init, systemd_running(), s.log, s.origin));
  if (d == driver::systemd) {
    return fail(errc::unsupported,
                "the systemd cgroup driver is not implemented yet; use the cgroupfs driver");
  }
  const host_layout layout = KATANA_TRY(probe_host(s.cgroup_root));
  switch (layout.mode) {
    case hierarchy_mode::unified:
      return any_manager(v2({.root = layout.unified, .log = s.log}));
    case hierarchy_mode::hybrid:
      return any_manager(hybrid(layout, {.log = s.log}));
    case hierarchy_mode::legacy:
      return any_manager(v1(layout, {.log = s.log}));
    case hierarchy_mode::none:
      break;
  }
  return fail(errc::unsupported,
              str_cat("no cgroup filesystem is mounted at ", s.cgroup_root,
                      "; run with cgroups disabled (--no-cgroups) or mount one"));
}

}  // namespace katana::inline v0::cgroup
