// cpu (shares, CFS quota/period/burst, realtime runtime/period, idle) and cpuacct (usage).
// v1: cpu.shares, cpu.cfs_*_us, cpu.rt_*_us, cpu.idle. v2: cpu.weight (converted from shares),
// cpu.max, cpu.max.burst, cpu.idle; v2 has no realtime knobs.
#pragma once

#include <string>
#include <string_view>

#include <katana/cgroup/controllers/controller.hpp>
#include <katana/cgroup/convert.hpp>

namespace katana::inline v0::cgroup::controllers {

struct cpu {
  static constexpr std::string_view name = "cpu";
  static constexpr std::string_view v2_name = "cpu";
  /// The linux.resources field it serves, for error messages.
  static constexpr std::string_view field = "cpu";

  static bool needed(const oci::linux_resources& r) {
    if (!r.cpu) {
      return false;
    }
    const auto& c = *r.cpu;
    return (c.shares && *c.shares != 0) || (c.quota && *c.quota != 0) ||
           (c.period && *c.period != 0) || c.burst ||
           (c.realtime_runtime && *c.realtime_runtime != 0) ||
           (c.realtime_period && *c.realtime_period != 0) || c.idle;
  }

  static status validate(const oci::linux_resources& r) {
    if (!r.cpu) {
      return {};
    }
    const auto& c = *r.cpu;
    if (c.shares && *c.shares != 0 && (*c.shares < min_cpu_shares || *c.shares > max_cpu_shares)) {
      return detail::invalid("cpu.shares", *c.shares,
                             str_cat("must be between ", min_cpu_shares, " and ", max_cpu_shares));
    }
    if (c.quota && *c.quota < -1) {
      return detail::invalid("cpu.quota", *c.quota, "must be -1 (unlimited) or positive");
    }
    if (c.realtime_runtime && *c.realtime_runtime < -1) {
      return detail::invalid("cpu.realtimeRuntime", *c.realtime_runtime,
                             "must be -1 (unlimited) or positive");
    }
    if (c.idle && *c.idle != 0 && *c.idle != 1) {
      return detail::invalid("cpu.idle", *c.idle, "must be 0 or 1");
    }
    return {};
  }

  static status apply_v1(const dir& d, const oci::linux_resources& r, const logging::logger&) {
    if (!r.cpu) {
      return {};
    }
    const auto& c = *r.cpu;
    if (c.shares && *c.shares != 0) {
      KATANA_TRY(d.write("cpu.shares", str_cat(*c.shares)));
    }
    const bool period = c.period && *c.period != 0;
    const bool quota = c.quota && *c.quota != 0;
    if (period && quota) {
      KATANA_TRY(detail::write_pair(d, "cpu.cfs_period_us", str_cat(*c.period), "cpu.cfs_quota_us",
                                    str_cat(*c.quota)));
    } else if (period) {
      KATANA_TRY(d.write("cpu.cfs_period_us", str_cat(*c.period)));
    } else if (quota) {
      KATANA_TRY(d.write("cpu.cfs_quota_us", str_cat(*c.quota)));
    }
    if (c.burst) {
      if (!d.has("cpu.cfs_burst_us")) {
        return detail::missing_file("cpu.cfs_burst_us", "CFS burst needs Linux 5.14");
      }
      KATANA_TRY(d.write("cpu.cfs_burst_us", str_cat(*c.burst)));
    }
    const bool rt_period = c.realtime_period && *c.realtime_period != 0;
    const bool rt_runtime = c.realtime_runtime && *c.realtime_runtime != 0;
    if ((rt_period || rt_runtime) && !d.has("cpu.rt_runtime_us")) {
      return detail::missing_file("cpu.rt_runtime_us", "the kernel lacks CONFIG_RT_GROUP_SCHED");
    }
    if (rt_period && rt_runtime) {
      KATANA_TRY(detail::write_pair(d, "cpu.rt_period_us", str_cat(*c.realtime_period),
                                    "cpu.rt_runtime_us", str_cat(*c.realtime_runtime)));
    } else if (rt_period) {
      KATANA_TRY(d.write("cpu.rt_period_us", str_cat(*c.realtime_period)));
    } else if (rt_runtime) {
      KATANA_TRY(d.write("cpu.rt_runtime_us", str_cat(*c.realtime_runtime)));
    }
    if (c.idle) {
      if (!d.has("cpu.idle")) {
        return detail::missing_file("cpu.idle", "SCHED_IDLE groups need Linux 5.15");
      }
      KATANA_TRY(d.write("cpu.idle", str_cat(*c.idle)));
    }
    return {};
  }

  static status apply_v2(const dir& d, const oci::linux_resources& r, const logging::logger&) {
    if (!r.cpu) {
      return {};
    }
    const auto& c = *r.cpu;
    if ((c.realtime_runtime && *c.realtime_runtime != 0) ||
        (c.realtime_period && *c.realtime_period != 0)) {
      return fail(errc::unsupported,
                  "linux.resources.cpu.realtimeRuntime/realtimePeriod: cgroup v2 has no realtime "
                  "group scheduling knobs");
    }
    if (c.shares && *c.shares != 0) {
      KATANA_TRY(d.write("cpu.weight", str_cat(cpu_shares_to_weight(*c.shares))));
    }
    const bool period = c.period && *c.period != 0;
    const bool quota = c.quota && *c.quota != 0;
    if (period || quota) {
      // cpu.max is "<quota|max> <period>"; keep whichever half the spec leaves unset.
      const std::string current = KATANA_TRY(d.read("cpu.max"));
      const auto [cur_quota, cur_period] =
          cgroup::detail::split_pair(cgroup::detail::trim(current));
      const std::string q =
          quota ? (*c.quota > 0 ? str_cat(*c.quota) : std::string("max")) : std::string(cur_quota);
      const std::string p = period ? str_cat(*c.period) : std::string(cur_period);
      KATANA_TRY(d.write("cpu.max", p.empty() ? q : str_cat(q, " ", p)));
    }
    if (c.burst) {
      if (!d.has("cpu.max.burst")) {
        return detail::missing_file("cpu.max.burst", "CFS burst needs Linux 5.14");
      }
      KATANA_TRY(d.write("cpu.max.burst", str_cat(*c.burst)));
    }
    if (c.idle) {
      KATANA_TRY(d.write("cpu.idle", str_cat(*c.idle)));
    }
    return {};
  }

  /// v1 cpu.stat: throttling (usage comes from cpuacct).
  static status stats_v1(const dir& d, cgroup::stats& s) {
    const auto text = KATANA_TRY(detail::read_optional(d, "cpu.stat"));
    if (text) {
      s.cpu.throttling.periods = cgroup::detail::find_key(*text, "nr_periods").value_or(0);
      s.cpu.throttling.throttled_periods =
          cgroup::detail::find_key(*text, "nr_throttled").value_or(0);
      s.cpu.throttling.throttled_time_ns =
          cgroup::detail::find_key(*text, "throttled_time").value_or(0);
    }
    return {};
  }

  /// v2 cpu.stat (present even without the cpu controller): usage and throttling, in µs.
  static status stats_v2(const dir& d, cgroup::stats& s) {
    const auto text = KATANA_TRY(detail::read_optional(d, "cpu.stat"));
    if (text) {
      const auto us = [&](std::string_view key) {
        return cgroup::detail::find_key(*text, key).value_or(0) * 1000;
      };
      s.cpu.usage.total_ns = us("usage_usec");
      s.cpu.usage.user_ns = us("user_usec");
      s.cpu.usage.system_ns = us("system_usec");
      s.cpu.throttling.periods = cgroup::detail::find_key(*text, "nr_periods").value_or(0);
      s.cpu.throttling.throttled_periods =
          cgroup::detail::find_key(*text, "nr_throttled").value_or(0);
      s.cpu.throttling.throttled_time_ns = us("throttled_usec");
    }
    return {};
  }
};

/// v1 only: CPU accounting. Nothing to apply.
struct cpuacct {
  static constexpr std::string_view name = "cpuacct";
  static constexpr std::string_view v2_name = "";
  /// The linux.resources field it serves, for error messages.
  static constexpr std::string_view field = "cpu";

  static bool needed(const oci::linux_resources&) { return false; }
  static status validate(const oci::linux_resources&) { return {}; }
  static status apply_v1(const dir&, const oci::linux_resources&, const logging::logger&) {
    return {};
  }
  static status apply_v2(const dir&, const oci::linux_resources&, const logging::logger&) {
    return {};
  }

  static status stats_v1(const dir& d, cgroup::stats& s) {
    KATANA_TRY(detail::read_u64_into(d, "cpuacct.usage", s.cpu.usage.total_ns));
    KATANA_TRY(detail::read_u64_into(d, "cpuacct.usage_user", s.cpu.usage.user_ns));
    KATANA_TRY(detail::read_u64_into(d, "cpuacct.usage_sys", s.cpu.usage.system_ns));
    const auto per_cpu = KATANA_TRY(detail::read_optional(d, "cpuacct.usage_percpu"));
    if (per_cpu) {
      s.cpu.usage.per_cpu_ns.clear();
      std::string_view rest = cgroup::detail::trim(*per_cpu);
      while (!rest.empty()) {
        const auto [v, tail] = cgroup::detail::split_pair(rest);
        s.cpu.usage.per_cpu_ns.push_back(
            KATANA_TRY(cgroup::detail::parse_u64(v), "cpuacct.usage_percpu"));
        rest = tail;
      }
    }
    return {};
  }
  static status stats_v2(const dir&, cgroup::stats&) { return {}; }
};

}  // namespace katana::inline v0::cgroup::controllers
