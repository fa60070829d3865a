// network (classID, priorities): the v1 net_cls and net_prio controllers. cgroup v2 has
// neither (use eBPF or nftables there); asking for them on v2 is an error.
#pragma once

#include <string_view>

#include <katana/cgroup/controllers/controller.hpp>

namespace katana::inline v0::cgroup::controllers {

namespace detail {
inline unexpected<error> no_v2_network(std::string_view field) {
  return fail(errc::unsupported,
              str_cat("linux.resources.network.", field,
                      " needs the v1 net_cls/net_prio controllers; cgroup v2 has none"));
}
}  // namespace detail

struct net_cls {
  static constexpr std::string_view name = "net_cls";
  static constexpr std::string_view v2_name = "";
  /// The linux.resources field it serves, for error messages.
  static constexpr std::string_view field = "network.classID";

  static bool needed(const oci::linux_resources& r) {
    return r.network && r.network->class_id.has_value();
  }
  static status validate(const oci::linux_resources&) { return {}; }
  static status apply_v1(const dir& d, const oci::linux_resources& r, const logging::logger&) {
    if (!needed(r)) {
      return {};
    }
    return d.write("net_cls.classid", str_cat(*r.network->class_id));
  }
  static status apply_v2(const dir&, const oci::linux_resources& r, const logging::logger&) {
    if (!needed(r)) {
      return {};
    }
    return detail::no_v2_network("classID");
  }
};

struct net_prio {
  static constexpr std::string_view name = "net_prio";
  static constexpr std::string_view v2_name = "";
  /// The linux.resources field it serves, for error messages.
  static constexpr std::string_view field = "network.priorities";

  static bool needed(const oci::linux_resources& r) {
    return r.network && !r.network->priorities.empty();
  }
  static status validate(const oci::linux_resources& r) {
    if (!r.network) {
      return {};
    }
    for (const auto& p : r.network->priorities) {
      if (p.name.empty() || p.name.find_first_of(" \n/") != std::string::npos) {
        return detail::invalid("network.priorities.name", str_cat("\"", p.name, "\""),
                               "must be an interface name");
      }
    }
    return {};
  }
  static status apply_v1(const dir& d, const oci::linux_resources& r, const logging::logger&) {
    if (!needed(r)) {
      return {};
    }
    for (const auto& p : r.network->priorities) {
      KATANA_TRY(d.write("net_prio.ifpriomap", str_cat(p.name, " ", p.priority)));
    }
    return {};
  }
  static status apply_v2(const dir&, const oci::linux_resources& r, const logging::logger&) {
    if (!needed(r)) {
      return {};
    }
    return detail::no_v2_network("priorities");
  }
};

}  // namespace katana::inline v0::cgroup::controllers
