// pids: pids.max on v1 and v2; a limit of 0 or -1 means "max".
#pragma once

#include <string_view>

#include <katana/cgroup/controllers/controller.hpp>

namespace katana::inline v0::cgroup::controllers {

struct pids {
  static constexpr std::string_view name = "pids";
  static constexpr std::string_view v2_name = "pids";
  /// The linux.resources field it serves, for error messages.
  static constexpr std::string_view field = "pids";

  static bool needed(const oci::linux_resources& r) { return r.pids.has_value(); }

  static status validate(const oci::linux_resources& r) {
    if (r.pids && r.pids->limit < -1) {
      return detail::invalid("pids.limit", r.pids->limit,
                             "must be -1 or 0 (unlimited) or positive");
    }
    return {};
  }

  static std::string value(const oci::linux_pids& p) {
    return p.limit > 0 ? str_cat(p.limit) : std::string("max");
  }

  static status apply_v1(const dir& d, const oci::linux_resources& r, const logging::logger&) {
    if (!r.pids) {
      return {};
    }
    return d.write("pids.max", value(*r.pids));
  }
  static status apply_v2(const dir& d, const oci::linux_resources& r, const logging::logger& log) {
    return apply_v1(d, r, log);
  }

  static status stats_v1(const dir& d, cgroup::stats& s) {
    KATANA_TRY(detail::read_u64_into(d, "pids.current", s.pids.current));
    return detail::read_u64_into(d, "pids.max", s.pids.limit);
  }
  static status stats_v2(const dir& d, cgroup::stats& s) { return stats_v1(d, s); }
};

}  // namespace katana::inline v0::cgroup::controllers
