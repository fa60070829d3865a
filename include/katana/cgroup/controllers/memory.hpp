// memory: limit, reservation, swap, kernel, kernelTCP, swappiness, disableOOMKiller,
// checkBeforeUpdate.
//  v1: memory.limit_in_bytes, memory.memsw.limit_in_bytes (OCI swap is memory+swap there),
//      memory.soft_limit_in_bytes, memory.kmem(.tcp).limit_in_bytes, memory.swappiness,
//      memory.oom_control.
//  v2: memory.max, memory.low, memory.swap.max (swap - limit, runc's conversion). v2 has no
//      kernel/kernelTCP/swappiness/OOM-killer knobs: those are ignored with a warning.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <katana/cgroup/controllers/controller.hpp>
#include <katana/cgroup/convert.hpp>

namespace katana::inline v0::cgroup::controllers {

struct memory {
  static constexpr std::string_view name = "memory";
  static constexpr std::string_view v2_name = "memory";
  /// The linux.resources field it serves, for error messages.
  static constexpr std::string_view field = "memory";

  static bool needed(const oci::linux_resources& r) {
    if (!r.memory) {
      return false;
    }
    const auto& m = *r.memory;
    const auto set = [](const std::optional<std::int64_t>& v) {
      return v && *v != 0;
    };
    return set(m.limit) || set(m.reservation) || set(m.swap) || set(m.kernel) ||
           set(m.kernel_tcp) || m.swappiness || m.disable_oom_killer;
  }

  static status validate(const oci::linux_resources& r) {
    if (!r.memory) {
      return {};
    }
    const auto& m = *r.memory;
    KATANA_TRY(detail::limit_at_least("memory.limit", m.limit));
    KATANA_TRY(detail::limit_at_least("memory.reservation", m.reservation));
    KATANA_TRY(detail::limit_at_least("memory.swap", m.swap));
    KATANA_TRY(detail::limit_at_least("memory.kernel", m.kernel));
    KATANA_TRY(detail::limit_at_least("memory.kernelTCP", m.kernel_tcp));
    if (m.swappiness && *m.swappiness > 100) {
      return detail::invalid("memory.swappiness", *m.swappiness, "must be between 0 and 100");
    }
    const std::int64_t limit = m.limit.value_or(0);
    const std::int64_t swap = m.swap.value_or(0);
    if (swap > 0 && limit > 0 && swap < limit) {
      return detail::invalid(
          "memory.swap", swap,
          str_cat("must be at least memory.limit (", limit, "): it is the memory+swap limit"));
    }
    return {};
  }

  /// checkBeforeUpdate: refuse a limit below what the cgroup already uses.
  static status check_usage(const dir& d, const oci::linux_memory& m, std::string_view usage_file) {
    if (!m.check_before_update.value_or(false) || !m.limit || *m.limit <= 0) {
      return {};
    }
    const std::uint64_t usage = KATANA_TRY(d.read_u64(usage_file));
    if (static_cast<std::uint64_t>(*m.limit) < usage) {
      return detail::invalid("memory.limit", *m.limit,
                             str_cat("is below the current usage (", usage, " bytes, ", usage_file,
                                     ") and memory.checkBeforeUpdate is set"));
    }
    return {};
  }

  static status apply_v1(const dir& d, const oci::linux_resources& r, const logging::logger& log) {
    if (!r.memory) {
      return {};
    }
    const auto& m = *r.memory;
    KATANA_TRY(check_usage(d, m, "memory.usage_in_bytes"));
    const std::int64_t limit = m.limit.value_or(0);
    std::int64_t swap = m.swap.value_or(0);
    if (limit == -1 && swap == 0) {
      swap = -1;  // unlimited memory and unset swap: both unlimited (runc)
    }
    const bool has_memsw = d.has("memory.memsw.limit_in_bytes");
    if (swap != 0 && !has_memsw) {
      if (swap != -1) {
        return detail::missing_file("memory.memsw.limit_in_bytes",
                                    "swap accounting is off; boot with swapaccount=1");
      }
      swap = 0;  // "unlimited swap" without swap accounting: nothing to do
    }
    if (limit != 0 && swap != 0) {
      // The kernel wants memory <= memsw at every step: raise memsw first when it grows.
      const std::uint64_t current = KATANA_TRY(d.read_u64("memory.limit_in_bytes"));
      if (swap == -1 || current < static_cast<std::uint64_t>(swap)) {
        KATANA_TRY(d.write("memory.memsw.limit_in_bytes", str_cat(swap)));
        KATANA_TRY(d.write("memory.limit_in_bytes", str_cat(limit)));
      } else {
        KATANA_TRY(d.write("memory.limit_in_bytes", str_cat(limit)));
        KATANA_TRY(d.write("memory.memsw.limit_in_bytes", str_cat(swap)));
      }
    } else if (limit != 0) {
      KATANA_TRY(d.write("memory.limit_in_bytes", str_cat(limit)));
    } else if (swap != 0) {
      KATANA_TRY(d.write("memory.memsw.limit_in_bytes", str_cat(swap)));
    }
    if (m.reservation && *m.reservation != 0) {
      KATANA_TRY(d.write("memory.soft_limit_in_bytes", str_cat(*m.reservation)));
    }
    if (m.kernel && *m.kernel != 0) {
      // Deprecated in the spec and a no-op since Linux 5.16 (removed in 6.x kernels).
      if (d.has("memory.kmem.limit_in_bytes")) {
        KATANA_TRY(d.write("memory.kmem.limit_in_bytes", str_cat(*m.kernel)));
      } else {
        log.warn("linux.resources.memory.kernel ignored: this kernel has no kmem limits");
      }
    }
    if (m.kernel_tcp && *m.kernel_tcp != 0) {
      if (!d.has("memory.kmem.tcp.limit_in_bytes")) {
        return detail::missing_file("memory.kmem.tcp.limit_in_bytes",
                                    "this kernel has no kernel TCP memory limits");
      }
      KATANA_TRY(d.write("memory.kmem.tcp.limit_in_bytes", str_cat(*m.kernel_tcp)));
    }
    if (m.swappiness) {
      KATANA_TRY(d.write("memory.swappiness", str_cat(*m.swappiness)));
    }
    if (m.disable_oom_killer) {
      KATANA_TRY(d.write("memory.oom_control", *m.disable_oom_killer ? "1" : "0"));
    }
    return {};
  }

  static status apply_v2(const dir& d, const oci::linux_resources& r, const logging::logger& log) {
    if (!r.memory) {
      return {};
    }
    const auto& m = *r.memory;
    const std::int64_t limit = m.limit.value_or(0);
    const std::int64_t swap_in = m.swap.value_or(0);
    const std::int64_t swap = KATANA_TRY(memory_swap_to_v2(swap_in, limit));
    KATANA_TRY(check_usage(d, m, "memory.current"));
    std::string swap_value;
    if (swap != 0) {
      swap_value = cgroup::detail::v2_limit(swap);
    } else if (swap_in > 0) {
      swap_value = "0";  // memory and memory+swap equal: no swap at all
    }
    if (!swap_value.empty()) {
      if (d.has("memory.swap.max")) {
        KATANA_TRY(d.write("memory.swap.max", swap_value));
      } else if (swap_value != "max" && swap_value != "0") {
        return detail::missing_file("memory.swap.max",
                                    "swap accounting is off; boot with swapaccount=1");
      }
    }
    if (limit != 0) {
      KATANA_TRY(d.write("memory.max", cgroup::detail::v2_limit(limit)));
    }
    if (m.reservation && *m.reservation != 0) {
      KATANA_TRY(d.write("memory.low", cgroup::detail::v2_limit(*m.reservation)));
    }
    if ((m.kernel && *m.kernel != 0) || (m.kernel_tcp && *m.kernel_tcp != 0)) {
      log.warn("linux.resources.memory.kernel/kernelTCP ignored: cgroup v2 has no such limits");
    }
    if (m.swappiness) {
      log.warn(
          "linux.resources.memory.swappiness ignored: cgroup v2 has no per-cgroup "
          "swappiness");
    }
    if (m.disable_oom_killer.value_or(false)) {
      log.warn(
          "linux.resources.memory.disableOOMKiller ignored: cgroup v2 cannot disable the "
          "OOM killer");
    }
    return {};
  }

  static status stats_v1(const dir& d, cgroup::stats& s) {
    auto& ms = s.memory;
    KATANA_TRY(detail::read_u64_into(d, "memory.usage_in_bytes", ms.usage));
    KATANA_TRY(detail::read_u64_into(d, "memory.max_usage_in_bytes", ms.max_usage));
    KATANA_TRY(detail::read_u64_into(d, "memory.limit_in_bytes", ms.limit));
    KATANA_TRY(detail::read_u64_into(d, "memory.failcnt", ms.failcnt));
    KATANA_TRY(detail::read_u64_into(d, "memory.memsw.limit_in_bytes", ms.swap_limit));
    std::uint64_t memsw_usage = 0;
    KATANA_TRY(detail::read_u64_into(d, "memory.memsw.usage_in_bytes", memsw_usage));
    read_stat(d, ms);
    ms.cache = stat_or(ms, "total_cache", "cache");
    ms.rss = stat_or(ms, "total_rss", "rss");
    ms.swap_usage = ms.stat.contains("total_swap") ? ms.stat["total_swap"]
                    : memsw_usage > ms.usage       ? memsw_usage - ms.usage
                                                   : 0;
    const auto oom = KATANA_TRY(detail::read_optional(d, "memory.oom_control"));
    if (oom) {
      s.oom_kill_count = cgroup::detail::find_key(*oom, "oom_kill").value_or(0);
    }
    return {};
  }

  static status stats_v2(const dir& d, cgroup::stats& s) {
    auto& ms = s.memory;
    KATANA_TRY(detail::read_u64_into(d, "memory.current", ms.usage));
    KATANA_TRY(detail::read_u64_into(d, "memory.peak", ms.max_usage));
    KATANA_TRY(detail::read_u64_into(d, "memory.max", ms.limit));
    KATANA_TRY(detail::read_u64_into(d, "memory.swap.current", ms.swap_usage));
    KATANA_TRY(detail::read_u64_into(d, "memory.swap.max", ms.swap_limit));
    read_stat(d, ms);
    ms.cache = stat_or(ms, "file", "file");
    ms.rss = stat_or(ms, "anon", "anon");
    const auto events = KATANA_TRY(detail::read_optional(d, "memory.events"));
    if (events) {
      ms.failcnt = cgroup::detail::find_key(*events, "max").value_or(0);
      s.oom_kill_count = cgroup::detail::find_key(*events, "oom_kill").value_or(0);
    }
    return {};
  }

 private:
  static void read_stat(const dir& d, memory_stats& ms) {
    auto text = d.read("memory.stat");
    if (!text) {
      return;
    }
    cgroup::detail::for_each_line(*text, [&](std::string_view line) {
      const auto [k, v] = cgroup::detail::split_pair(line);
      if (auto n = cgroup::detail::parse_u64(v)) {
        ms.stat.insert_or_assign(std::string(k), *n);
      }
    });
  }
  static std::uint64_t stat_or(const memory_stats& ms, std::string_view a, std::string_view b) {
    if (auto it = ms.stat.find(a); it != ms.stat.end()) {
      return it->second;
    }
    if (auto it = ms.stat.find(b); it != ms.stat.end()) {
      return it->second;
    }
    return 0;
  }
};

}  // namespace katana::inline v0::cgroup::controllers
