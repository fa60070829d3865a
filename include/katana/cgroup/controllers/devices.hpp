// devices: v1 devices.allow / devices.deny, one "<type> <major>:<minor> <access>" line per OCI
// rule in order (so the usual "deny all, then allow these" works as written); v2 has no
// devices files and uses an eBPF program instead (bpf_devices.hpp).
#pragma once

#include <string>
#include <string_view>

#include <katana/cgroup/bpf_devices.hpp>
#include <katana/cgroup/controllers/controller.hpp>

namespace katana::inline v0::cgroup::controllers {

struct devices {
  static constexpr std::string_view name = "devices";
  static constexpr std::string_view v2_name = "";
  /// The linux.resources field it serves, for error messages.
  static constexpr std::string_view field = "devices";

  static bool needed(const oci::linux_resources& r) { return !r.devices.empty(); }

  static status validate(const oci::linux_resources& r) {
    for (std::size_t i = 0; i < r.devices.size(); ++i) {
      KATANA_TRY(bpf::check_rule(r.devices[i], i));
    }
    return {};
  }

  /// The v1 line for a rule: "c 1:3 rwm", "a *:* rwm", "b 8:* r".
  static std::string rule_line(const oci::linux_device_cgroup& r) {
    const auto num = [](const std::optional<std::int64_t>& v) {
      return !v || *v < 0 ? std::string("*") : str_cat(*v);
    };
    const std::string_view type = r.type.empty() ? std::string_view("a") : r.type;
    const std::string_view access = r.access.empty() ? std::string_view("rwm") : r.access;
    return str_cat(type, " ", num(r.major), ":", num(r.minor), " ", access);
  }

  static status apply_v1(const dir& d, const oci::linux_resources& r, const logging::logger&) {
    for (const auto& rule : r.devices) {
      KATANA_TRY(d.write(rule.allow ? "devices.allow" : "devices.deny", rule_line(rule)));
    }
    return {};
  }

  static status apply_v2(const dir& d, const oci::linux_resources& r, const logging::logger&) {
    if (r.devices.empty()) {
      return {};
    }
    return bpf::apply_device_rules(d.fd(), r.devices)
        .transform_error(with_context("linux.resources.devices"));
  }
};

}  // namespace katana::inline v0::cgroup::controllers
