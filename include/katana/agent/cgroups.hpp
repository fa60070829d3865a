// katana's cgroup managers (cgroup::any_manager: v1, v2, hybrid) as the engine adapter's
// cgroup_ops: one manager per container, chosen for this host by cgroup::make_any_manager.
// The agent decided the driver and path already (cgroup_driver.hpp: cgroupfs as PID 1,
// whatever style the host sent), so every manager here is a cgroupfs one.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <katana/agent/engine.hpp>
#include <katana/agent/katana_engine.hpp>
#include <katana/cgroup/any_manager.hpp>
#include <katana/cgroup/default_devices.hpp>
#include <katana/cgroup/stats.hpp>
#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/core/log.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/try.hpp>

namespace katana::inline v0::agent {

/// cgroup::stats in the agent protocol's shape. Limits cgroups report as "max" become 0.
inline container_stats to_container_stats(const cgroup::stats& s) {
  const auto limit = [](std::uint64_t v) {
    return v == cgroup::unlimited ? 0 : v;
  };
  container_stats out;
  out.cpu.total_ns = s.cpu.usage.total_ns;
  out.cpu.user_ns = s.cpu.usage.user_ns;
  out.cpu.kernel_ns = s.cpu.usage.system_ns;
  out.cpu.per_cpu_ns = s.cpu.usage.per_cpu_ns;
  out.cpu.periods = s.cpu.throttling.periods;
  out.cpu.throttled_periods = s.cpu.throttling.throttled_periods;
  out.cpu.throttled_time_ns = s.cpu.throttling.throttled_time_ns;
  out.memory.usage = s.memory.usage;
  out.memory.max_usage = s.memory.max_usage;
  out.memory.failcnt = s.memory.failcnt;
  out.memory.limit = limit(s.memory.limit);
  out.memory.cache = s.memory.cache;
  out.memory.swap_usage = s.memory.swap_usage;
  out.memory.swap_limit = limit(s.memory.swap_limit);
  out.memory.stat.insert(s.memory.stat.begin(), s.memory.stat.end());
  out.pids.current = s.pids.current;
  out.pids.limit = limit(s.pids.limit);
  for (const auto& e : s.blkio.io_service_bytes) {
    out.io_service_bytes.push_back({e.major, e.minor, e.op, e.value});
  }
  for (const auto& e : s.blkio.io_serviced) {
    out.io_serviced.push_back({e.major, e.minor, e.op, e.value});
  }
  for (const auto& [size, h] : s.hugetlb) {
    out.hugetlb[size] = {h.usage, h.max_usage, h.failcnt};
  }
  return out;
}

/// The memory controller's directory of a manager's cgroup (for OOM notifications).
inline std::optional<std::filesystem::path> memory_dir(const cgroup::any_manager& m) {
  return std::visit(
      [](const auto& x) -> std::optional<std::filesystem::path> {
        using M = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<M, cgroup::v2>) {
          return std::filesystem::path(x.root()) / std::string(x.path());
        } else if constexpr (std::is_same_v<M, cgroup::v1>) {
          if (auto p = x.controller_path("memory")) {
            return std::filesystem::path(*p);
          }
          return std::nullopt;
        } else if constexpr (std::is_same_v<M, cgroup::hybrid>) {
          if (auto p = x.legacy().controller_path("memory")) {
            return std::filesystem::path(*p);
          }
          return std::filesystem::path(x.unified().root()) / std::string(x.unified().path());
        } else {
          return std::nullopt;
        }
      },
      m.get());
}

/// cgroup_ops over katana's managers. `sel` chooses them (its `requested` and `agent_is_init`
/// are forced to cgroupfs: the agent already applied the seeds' rule).
inline cgroup_ops make_cgroup_ops(cgroup::selection sel) {
  sel.requested = cgroup::driver::cgroupfs;
  sel.origin = cgroup::driver_origin::requested;
  struct state {
    cgroup::selection sel;
    std::map<std::string, cgroup::any_manager> managers;
    std::optional<cgroup::any_manager> blank;  // probed once: every container copies it
  };
  auto st = std::make_shared<state>(state{std::move(sel), {}});
  const auto get = [st](const std::string& id) -> result<cgroup::any_manager*> {
    auto it = st->managers.find(id);
    if (it == st->managers.end()) {
      return fail(errc::not_found, str_cat("no cgroup for container ", id));
    }
    return &it->second;
  };
  cgroup_ops ops;
  ops.create = [st](const std::string& id, const std::string& path,
                    std::optional<oci::linux_resources> resources,
                    const std::vector<oci::linux_device>& devices, pid_t pid) -> status {
    if (resources && !resources->devices.empty()) {
      cgroup::add_default_device_rules(*resources, devices);
    }
    if (!st->blank) {
      st->blank = KATANA_TRY(cgroup::make_any_manager(st->sel), "cgroups");
    }
    auto m = *st->blank;
    const auto cfg = KATANA_TRY(cgroup::make_config(path, id, resources), "cgroups");
    KATANA_TRY(m.create(cfg), "cgroups");
    if (auto r = m.add_task(pid); !r) {
      (void)m.remove();
      return unexpected<error>(std::move(r).error().wrap("cgroups"));
    }
    st->managers.insert_or_assign(id, std::move(m));
    return {};
  };
  ops.add_task = [get](const std::string& id, pid_t pid) -> status {
    return KATANA_TRY(get(id))->add_task(pid);
  };
  ops.apply = [get](const std::string& id, const oci::linux_resources& r) -> status {
    return KATANA_TRY(get(id))->apply(r);
  };
  ops.freeze = [get](const std::string& id, bool frozen) -> status {
    return KATANA_TRY(get(id))->freeze(frozen ? cgroup::freezer_state::frozen
                                              : cgroup::freezer_state::thawed);
  };
  ops.stats = [get](const std::string& id) -> result<container_stats> {
    const auto s = KATANA_TRY(KATANA_TRY(get(id))->stats());
    return to_container_stats(s);
  };
  ops.pids = [get](const std::string& id) -> result<std::vector<pid_t>> {
    return KATANA_TRY(get(id))->pids();
  };
  ops.remove = [st](const std::string& id) -> status {
    auto it = st->managers.find(id);
    if (it == st->managers.end()) {
      return {};
    }
    auto r = it->second.remove();
    st->managers.erase(it);
    return r;
  };
  ops.memory_dir = [get](const std::string& id) -> result<std::filesystem::path> {
    auto* m = KATANA_TRY(get(id));
    if (auto d = memory_dir(*m)) {
      return *d;
    }
    return fail(errc::unsupported, "no memory controller for container " + id);
  };
  return ops;
}

}  // namespace katana::inline v0::agent
