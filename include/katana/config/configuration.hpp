// The whole configuration: every [hypervisor.<kind>] table, [agent.kata], [runtime] and
// [factory]. Plain data; load.hpp reads it from TOML, annotations.hpp overrides parts of it,
// validate.hpp adjusts it to the host and checks it.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <katana/config/agent.hpp>
#include <katana/config/factory.hpp>
#include <katana/config/hypervisor.hpp>
#include <katana/config/runtime.hpp>
#include <katana/core/error.hpp>
#include <katana/core/str_cat.hpp>

namespace katana::inline v0::config {

/// Non-fatal findings (unknown keys, values that were clamped or rounded), in file order.
using warnings = std::vector<std::string>;

struct configuration {
  std::map<std::string, hypervisor_config, std::less<>> hypervisors;  // by kind: "qemu", ...
  agent_config agent;                                                 // [agent.kata]
  runtime_config runtime;
  factory_config factory;

  /// The hypervisor table in use: runtime.hypervisor_name, else the only table there is.
  [[nodiscard]] result<std::string> selected_hypervisor() const {
    if (!runtime.hypervisor_name.empty()) {
      if (!hypervisors.contains(runtime.hypervisor_name)) {
        return fail(errc::invalid_config,
                    str_cat("runtime.hypervisor_name: there is no [hypervisor.",
                            runtime.hypervisor_name, "] table"));
      }
      return runtime.hypervisor_name;
    }
    if (hypervisors.empty()) {
      return fail(errc::invalid_config, "no [hypervisor.<name>] table");
    }
    if (hypervisors.size() > 1) {
      std::string names;
      for (const auto& [name, h] : hypervisors) {
        names += names.empty() ? name : ", " + name;
      }
      return fail(errc::invalid_config, str_cat("several hypervisor tables (", names,
                                                "): set runtime.hypervisor_name to choose one"));
    }
    return hypervisors.begin()->first;
  }

  /// The selected hypervisor table; null when selected_hypervisor() fails.
  [[nodiscard]] const hypervisor_config* hypervisor() const {
    auto name = selected_hypervisor();
    return name ? &hypervisors.find(*name)->second : nullptr;
  }
  [[nodiscard]] hypervisor_config* hypervisor() {
    auto name = selected_hypervisor();
    return name ? &hypervisors.find(*name)->second : nullptr;
  }

  friend bool operator==(const configuration&, const configuration&) = default;
};

}  // namespace katana::inline v0::config
