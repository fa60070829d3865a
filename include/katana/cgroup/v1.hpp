// cgroup::v1: the legacy layout, one hierarchy per controller (cpu, cpuacct, cpuset, memory,
// devices, freezer, blkio, pids, hugetlb, net_cls, net_prio, perf_event, rdma; co-mounted ones
// share a directory). Mount points come from /proc/self/mountinfo; controllers the host lacks
// are skipped (debug log), and resources that need one of them are an error naming it.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

#include <katana/cgroup/concepts.hpp>
#include <katana/cgroup/controllers/all.hpp>
#include <katana/cgroup/fs.hpp>
#include <katana/cgroup/mountinfo.hpp>
#include <katana/cgroup/path.hpp>
#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/core/log.hpp>
#include <katana/core/try.hpp>

namespace katana::inline v0::cgroup {

struct v1_options {
  logging::logger log = detail::null_logger();
};

/// The controllers whose usage v1 stats() reads.
using v1_stats_controllers = controller_list<controllers::cpu,
                                             controllers::cpuacct,
                                             controllers::memory,
                                             controllers::pids,
                                             controllers::blkio,
                                             controllers::hugetlb>;

class v1 {
 public:
  static constexpr std::string_view name = "cgroupfs_v1";
  using options = v1_options;

  /// The v1 controllers of `layout` (legacy or hybrid hosts).
  explicit v1(const host_layout& layout, options o = {}) : log_(std::move(o.log)) {
    for (const auto c : v1_controllers) {
      if (auto it = layout.v1.find(c); it != layout.v1.end()) {
        mounts_.emplace(std::string(c), it->second);
      } else {
        log_.debug("cgroup v1 controller not mounted; skipped", {{"controller", c}});
      }
    }
  }

  /// Probes the host (mountinfo); errc::unsupported when it has no v1 controller.
  static result<v1> make(options o = {}) {
    const host_layout layout = KATANA_TRY(probe_host());
    if (layout.v1.empty()) {
      return fail(errc::unsupported, str_cat("cgroup v1: no v1 controller is mounted (host mode: ",
                                             to_string(layout.mode), ")"));
    }
    return v1(layout, std::move(o));
  }

  status create(const config& cfg) {
    const std::string p = KATANA_TRY(checked_path(cfg.path));
    if (cfg.resources) {
      KATANA_TRY(check(*cfg.resources), str_cat("cgroup ", p));
    }
    for (const auto& mp : hierarchies()) {
      const bool is_cpuset = mount_of("cpuset") == mp;
      KATANA_TRY(make_path(mp, p, [&](const dir& parent, const dir& child, bool) -> status {
        return is_cpuset
                   ? controllers::cpuset::inherit_v1(parent, child).transform_error(in_dir(child))
                   : status{};
      }));
    }
    path_ = p;
    if (cfg.resources) {
      return apply(*cfg.resources);
    }
    return {};
  }

  status open(const config& cfg) {
    const std::string p = KATANA_TRY(checked_path(cfg.path));
    for (const auto& mp : hierarchies()) {
      KATANA_TRY(dir::open(mp + "/" + p));
    }
    path_ = p;
    return {};
  }

  status add_task(pid_t pid) {
    KATANA_TRY(require_path());
    for (const auto& mp : hierarchies()) {
      const dir d = KATANA_TRY(dir::open(mp + "/" + path_));
      KATANA_TRY(d.write("cgroup.procs", str_cat(pid)).transform_error(in_dir(d)));
    }
    return {};
  }

  status apply(const oci::linux_resources& r) {
    KATANA_TRY(require_path());
    KATANA_TRY(check(r), str_cat("cgroup ", path_));
    return resource_controllers::for_each(
        [&](auto* k) { return apply_controller<std::remove_pointer_t<decltype(k)>>(r); });
  }

  /// One controller's part of the resources (hybrid routes controllers one by one).
  template <controller K>
  status apply_controller(const oci::linux_resources& r) {
    if (!K::needed(r)) {
      return {};
    }
    if constexpr (std::is_same_v<K, controllers::unified>) {
      return K::apply_v1(dir(), r, log_);
    } else {
      const auto mp = mount_of(K::name);
      if (!mp) {
        return missing_controller<K>();
      }
      const dir d = KATANA_TRY(dir::open(*mp + "/" + path_));
      return K::apply_v1(d, r, log_).transform_error(in_dir(d));
    }
  }

  status freeze(freezer_state s) {
    KATANA_TRY(require_path());
    const auto mp = mount_of("freezer");
    if (!mp) {
      return fail(errc::unsupported, "freeze: the freezer cgroup controller is not mounted");
    }
    const dir d = KATANA_TRY(dir::open(*mp + "/" + path_));
    return controllers::freezer::freeze_v1(d, s).transform_error(in_dir(d));
  }

  /// thawed when the host has no freezer (nothing can be frozen then).
  result<freezer_state> state() const {
    KATANA_TRY(require_path());
    const auto mp = mount_of("freezer");
    if (!mp) {
      return freezer_state::thawed;
    }
    const dir d = KATANA_TRY(dir::open(*mp + "/" + path_));
    return controllers::freezer::state_v1(d).transform_error(in_dir(d));
  }

  result<std::vector<pid_t>> pids() const {
    KATANA_TRY(require_path());
    for (const std::string_view c : {"pids", "devices", "freezer", "memory", "cpu", "cpuacct",
                                     "cpuset", "blkio", "hugetlb", "perf_event"}) {
      if (const auto mp = mount_of(c)) {
        const dir d = KATANA_TRY(dir::open(*mp + "/" + path_));
        return d.procs().transform_error(in_dir(d));
      }
    }
    return fail(errc::unsupported, "cgroup v1: no controller is mounted");
  }

  /// rmdir in every hierarchy (sub-cgroups first) with runk's retries; a cgroup that is
  /// already gone is fine. Tasks are never killed: while some remain, the error says so.
  status remove() {
    KATANA_TRY(require_path());
    auto st = with_retries([&]() -> status {
      for (const auto& mp : hierarchies()) {
        KATANA_TRY(remove_path(mp, path_));
      }
      return {};
    });
    if (st) {
      return st;
    }
    if (auto left = pids(); left && !left->empty()) {
      return tasks_remain(path_, *left);
    }
    return unexpected<error>(std::move(st).error().wrap("failed to remove cgroups paths"));
  }

  [[nodiscard]] std::string_view path() const noexcept { return path_; }

  result<cgroup::stats> stats() const {
    KATANA_TRY(require_path());
    cgroup::stats s;
    KATANA_TRY(v1_stats_controllers::for_each(
        [&](auto* k) { return stats_controller<std::remove_pointer_t<decltype(k)>>(s); }));
    return s;
  }

  template <class K>
  status stats_controller(cgroup::stats& s) const {
    const auto mp = mount_of(K::name);
    if (!mp) {
      return {};
    }
    const dir d = KATANA_TRY(dir::open(*mp + "/" + path_));
    return K::stats_v1(d, s).transform_error(in_dir(d));
  }

  [[nodiscard]] bool has_controller(std::string_view c) const { return mounts_.contains(c); }
  /// controller -> mount point, for the controllers katana manages on this host.
  [[nodiscard]] const std::map<std::string, std::string, std::less<>>& mounts() const noexcept {
    return mounts_;
  }
  /// The directory of this cgroup in a controller's hierarchy.
  [[nodiscard]] std::optional<std::string> controller_path(std::string_view c) const {
    const auto mp = mount_of(c);
    return mp ? std::optional<std::string>(*mp + "/" + path_) : std::nullopt;
  }

  /// Every controller the resources need is mounted, and they are valid.
  status check(const oci::linux_resources& r) const {
    KATANA_TRY(validate_resources(r));
    return resource_controllers::for_each([&](auto* k) -> status {
      using K = std::remove_pointer_t<decltype(k)>;
      if constexpr (!std::is_same_v<K, controllers::unified>) {
        if (K::needed(r) && !has_controller(K::name)) {
          return missing_controller<K>();
        }
      }
      return {};
    });
  }

 private:
  template <class K>
  static unexpected<error> missing_controller() {
    return fail(errc::unsupported,
                str_cat("linux.resources.", K::field, " needs the ", K::name,
                        " cgroup controller, which is not mounted on this host"));
  }

  [[nodiscard]] std::optional<std::string> mount_of(std::string_view c) const {
    const auto it = mounts_.find(c);
    return it == mounts_.end() ? std::nullopt : std::optional<std::string>(it->second);
  }

  // Distinct mount points (co-mounted controllers share one).
  [[nodiscard]] std::vector<std::string> hierarchies() const {
    std::set<std::string> seen;
    std::vector<std::string> out;
    for (const auto& [c, mp] : mounts_) {
      if (seen.insert(mp).second) {
        out.push_back(mp);
      }
    }
    return out;
  }

  static result<std::string> checked_path(std::string_view p) {
    std::string clean = KATANA_TRY(clean_path(p));
    if (clean.empty()) {
      return fail(errc::invalid_argument,
                  str_cat("cgroup path \"", p, "\" names the hierarchy root"));
    }
    return clean;
  }

  [[nodiscard]] status require_path() const {
    if (path_.empty()) {
      return fail(errc::invalid_argument, "cgroup: create() or open() has not been called");
    }
    return {};
  }

  std::map<std::string, std::string, std::less<>> mounts_;
  std::string path_;
  logging::logger log_;
};

static_assert(manager<v1> && has_stats<v1>);

}  // namespace katana::inline v0::cgroup
