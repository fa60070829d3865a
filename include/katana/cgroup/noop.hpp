// cgroup::noop: no cgroups at all (katana-runk --no-cgroups, benchmarks). Everything succeeds
// without touching the host, except what cannot be faked honestly: freezing (errc::unsupported)
// and limits are not enforced. pids() is always empty.
#pragma once

#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

#include <katana/cgroup/concepts.hpp>
#include <katana/config.hpp>
#include <katana/core/error.hpp>

namespace katana::inline v0::cgroup {

class noop {
 public:
  static constexpr std::string_view name = "noop";

  status create(const config& cfg) {
    path_ = cfg.path;
    return {};
  }
  status open(const config& cfg) {
    path_ = cfg.path;
    return {};
  }
  status add_task(pid_t) { return {}; }
  status apply(const oci::linux_resources&) { return {}; }
  status freeze(freezer_state s) {
    if (s == freezer_state::thawed) {
      return {};
    }
    return fail(errc::unsupported, "cgroups are disabled (noop manager): cannot freeze");
  }
  result<freezer_state> state() const { return freezer_state::thawed; }
  result<std::vector<pid_t>> pids() const { return std::vector<pid_t>{}; }
  status remove() { return {}; }
  [[nodiscard]] std::string_view path() const noexcept { return path_; }
  result<cgroup::stats> stats() const { return cgroup::stats{}; }

 private:
  std::string path_;
};

static_assert(manager<noop> && has_stats<noop>);

}  // namespace katana::inline v0::cgroup
