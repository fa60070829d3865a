// A hypervisor::driver for tests: records the calls, fails where told, and "runs" the agent
// wherever the test says (agent_address). With a vmm_pid it hands that pid to the config's
// place_vmm hook in start(), where the real policy does between fork and exec.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <utility>
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
  pid_t vmm_pid = -1;

  status prepare(const hypervisor::vm_config& cfg) {
    calls.emplace_back("prepare");
    config = cfg;
    return {};
  }
  status start() {
    calls.emplace_back("start");
    if (const auto place = std::exchange(config.place_vmm, nullptr); place && vmm_pid > 0) {
      if (auto r = place(vmm_pid); !r) {
        return r;
      }
    }
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
  [[nodiscard]] pid_t pid() const noexcept { return vmm_pid; }
  status hotplug_block(const hypervisor::block_device& d) {
    calls.emplace_back("hotplug " + d.id);
    plugged.push_back(d);
    return {};
  }
};

static_assert(hypervisor::driver<fake_hypervisor>);
static_assert(hypervisor::device_hotplug<fake_hypervisor>);

}  // namespace katana::inline v0::testing
