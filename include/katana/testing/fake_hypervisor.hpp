// A hypervisor::driver for tests: records the calls, fails where told, and "runs" the agent
// wherever the test says (agent_address).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/hypervisor/concepts.hpp>

namespace katana::inline v0::testing {

struct fake_hypervisor {
  static constexpr std::string_view name = "fake";

  std::vector<std::string> calls;
  std::string address = "unix:///nonexistent";
  std::optional<error> fail_start;
  std::optional<int> exit_code;
  std::vector<hypervisor::block_device> plugged;
  hypervisor::vm_config config;

  status prepare(const hypervisor::vm_config& cfg) {
    calls.emplace_back("prepare");
    config = cfg;
    return {};
  }
  status start() {
    calls.emplace_back("start");
    if (fail_start) {
      return unexpected<error>(*fail_start);
    }
    return {};
  }
  status stop() {
    calls.emplace_back("stop");
    exit_code = 0;
    return {};
  }
  std::optional<int> wait(std::chrono::milliseconds) { return exit_code; }
  [[nodiscard]] std::string agent_address() const { return address; }
  status hotplug_block(const hypervisor::block_device& d) {
    calls.emplace_back("hotplug " + d.id);
    plugged.push_back(d);
    return {};
  }
};

static_assert(hypervisor::driver<fake_hypervisor>);
static_assert(hypervisor::device_hotplug<fake_hypervisor>);

}  // namespace katana::inline v0::testing
