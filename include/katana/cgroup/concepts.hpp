// The cgroup manager concept family (DESIGN.md §2): a required core, cgroup::manager, plus the
// capability concepts has_stats and systemd_delegated. Policies: cgroup::v1, cgroup::v2,
// cgroup::hybrid, cgroup::noop, chosen at run time by any_manager. Fake and laws:
// testing/fake_cgroup.hpp, testing/cgroup_laws.hpp.
#pragma once

#include <concepts>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

#include <katana/cgroup/stats.hpp>
#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/oci/spec.hpp>

namespace katana::inline v0::cgroup {

/// What create() makes: a cgroup at `path`, relative to the hierarchy root (OCI
/// linux.cgroupsPath, cleaned by cgroup::make_config, or the container id), optionally with
/// resources applied right away.
struct config {
  std::string path;
  std::optional<oci::linux_resources> resources;
  bool operator==(const config&) const = default;
};

/// A freezer request (thawed, frozen) or reported state (also freezing: a freeze that has not
/// completed within runk's polling window of 10 polls 10 ms apart).
enum class freezer_state { thawed, frozen, freezing };

inline constexpr std::string_view to_string(freezer_state s) noexcept {
  switch (s) {
    case freezer_state::thawed:
      return "thawed";
    case freezer_state::frozen:
      return "frozen";
    case freezer_state::freezing:
      return "freezing";
  }
  return "unknown";
}

// clang-format off
/// The required core. Laws (testing/cgroup_laws.hpp): create → add_task(child) → pids()
/// contains it → freeze(frozen) → state() == frozen → freeze(thawed) → remove() fails with
/// EBUSY while a task remains (nothing is killed) → once the task is gone remove() succeeds,
/// and again (idempotent). open() binds to an existing cgroup without creating it (runk's
/// pause/ps/delete run in a later process than create).
template <class C>
concept manager =
    requires(C& c, const C& cc, const config& cfg, pid_t pid, const oci::linux_resources& r,
             freezer_state s) {
      { C::name } -> std::convertible_to<std::string_view>;
      { c.create(cfg) } -> std::same_as<status>;
      { c.open(cfg) } -> std::same_as<status>;
      { c.add_task(pid) } -> std::same_as<status>;
      { c.apply(r) } -> std::same_as<status>;
      { c.freeze(s) } -> std::same_as<status>;
      { cc.state() } -> std::same_as<result<freezer_state>>;
      { cc.pids() } -> std::same_as<result<std::vector<pid_t>>>;
      { c.remove() } -> std::same_as<status>;
      { cc.path() } -> std::convertible_to<std::string_view>;
    };

/// Capability: usage counters (cpu, memory, pids, blkio, hugetlb, OOM kills).
template <class C>
concept has_stats = manager<C> && requires(const C& c) {
  { c.stats() } -> std::same_as<result<cgroup::stats>>;
};

/// Capability: the cgroup is a systemd unit (a transient scope in a slice) with delegation;
/// no shipped policy has it yet (the host and the guest here run without systemd).
template <class C>
concept systemd_delegated = manager<C> && requires(const C& c) {
  { c.unit_name() } -> std::convertible_to<std::string_view>;
  { c.slice() } -> std::convertible_to<std::string_view>;
};
// clang-format on

}  // namespace katana::inline v0::cgroup
