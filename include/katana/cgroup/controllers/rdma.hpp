// rdma: rdma.max lines "<device> hca_handle=<n> hca_object=<n>", the same on v1 and v2.
#pragma once

#include <string>
#include <string_view>

#include <katana/cgroup/controllers/controller.hpp>

namespace katana::inline v0::cgroup::controllers {

struct rdma {
  static constexpr std::string_view name = "rdma";
  static constexpr std::string_view v2_name = "rdma";
  /// The linux.resources field it serves, for error messages.
  static constexpr std::string_view field = "rdma";

  static bool needed(const oci::linux_resources& r) { return !r.rdma.empty(); }

  static status validate(const oci::linux_resources& r) {
    for (const auto& [device, limits] : r.rdma) {
      if (device.empty() || device.find_first_of(" \n/") != std::string::npos) {
        return detail::invalid("rdma", str_cat("\"", device, "\""), "must be an RDMA device name");
      }
    }
    return {};
  }

  static status apply_v1(const dir& d, const oci::linux_resources& r, const logging::logger&) {
    for (const auto& [device, limits] : r.rdma) {
      std::string line = device;
      if (limits.hca_handles) {
        line += str_cat(" hca_handle=", *limits.hca_handles);
      }
      if (limits.hca_objects) {
        line += str_cat(" hca_object=", *limits.hca_objects);
      }
      if (line.size() != device.size()) {
        KATANA_TRY(d.write("rdma.max", line));
      }
    }
    return {};
  }
  static status apply_v2(const dir& d, const oci::linux_resources& r, const logging::logger& log) {
    return apply_v1(d, r, log);
  }
};

}  // namespace katana::inline v0::cgroup::controllers
