// cpuset (linux.resources.cpu.cpus / .mems): cpuset.cpus and cpuset.mems, the same files on v1
// and v2. A new v1 cpuset cgroup starts empty, and a task cannot join an empty cpuset, so v1
// creation copies the parent's values into every level (runc's cpusetEnsureParent).
#pragma once

#include <string_view>

#include <katana/cgroup/controllers/controller.hpp>

namespace katana::inline v0::cgroup::controllers {

struct cpuset {
  static constexpr std::string_view name = "cpuset";
  static constexpr std::string_view v2_name = "cpuset";
  /// The linux.resources field it serves, for error messages.
  static constexpr std::string_view field = "cpu.cpus/cpu.mems";

  static bool needed(const oci::linux_resources& r) {
    return r.cpu && (!r.cpu->cpus.empty() || !r.cpu->mems.empty());
  }

  // "0-3,8,10-11": digits, ',' and '-' only (the kernel checks ranges and online CPUs).
  static status validate(const oci::linux_resources& r) {
    if (!r.cpu) {
      return {};
    }
    const auto check = [](std::string_view what, std::string_view list) -> status {
      for (const char c : list) {
        if (!((c >= '0' && c <= '9') || c == ',' || c == '-' || c == ' ' || c == '\n')) {
          return detail::invalid(what, str_cat("\"", list, "\""),
                                 "must be a list of numbers and ranges such as 0-3,8");
        }
      }
      return {};
    };
    KATANA_TRY(check("cpu.cpus", r.cpu->cpus));
    return check("cpu.mems", r.cpu->mems);
  }

  static status apply_v1(const dir& d, const oci::linux_resources& r, const logging::logger&) {
    if (!r.cpu) {
      return {};
    }
    // mems first: a task's memory must stay allowed when cpus narrows (runc's order).
    if (!r.cpu->mems.empty()) {
      KATANA_TRY(d.write("cpuset.mems", r.cpu->mems));
    }
    if (!r.cpu->cpus.empty()) {
      KATANA_TRY(d.write("cpuset.cpus", r.cpu->cpus));
    }
    return {};
  }

  static status apply_v2(const dir& d, const oci::linux_resources& r, const logging::logger& log) {
    return apply_v1(d, r, log);
  }

  /// v1: fills an empty cpuset.cpus/cpuset.mems of `child` from `parent`.
  static status inherit_v1(const dir& parent, const dir& child) {
    for (const std::string_view file : {"cpuset.cpus", "cpuset.mems"}) {
      const std::string mine = KATANA_TRY(child.read(file));
      if (!cgroup::detail::trim(mine).empty()) {
        continue;
      }
      const std::string theirs = KATANA_TRY(parent.read(file));
      if (!cgroup::detail::trim(theirs).empty()) {
        KATANA_TRY(child.write(file, cgroup::detail::trim(theirs)));
      }
    }
    return {};
  }
};

}  // namespace katana::inline v0::cgroup::controllers
