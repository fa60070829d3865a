// [agent.kata] of a Kata-compatible configuration.toml, plus katana's `channel` key.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <katana/config/schema.hpp>

namespace katana::inline v0::config {

struct agent_config {
  bool enable_debug = false;  // agent.log=debug on the kernel command line
  bool enable_tracing = false;
  std::vector<std::string> kernel_modules;  // "name param=v ..."
  bool debug_console_enabled = false;
  std::uint32_t dial_timeout = 45;     // seconds (Go runtime)
  std::uint32_t dial_timeout_ms = 10;  // runtime-rs
  std::uint32_t reconnect_timeout_ms = 3000;
  std::uint32_t cdh_api_timeout = 50;  // seconds
  std::uint32_t container_pipe_size = 0;
  /// katana: the host<->agent channel. "virtio-serial" (port agent.channel.0 on a host unix
  /// socket; works everywhere, also without /dev/vhost-vsock), "vsock" (port 1024; the QEMU
  /// policy refuses it so far), or "auto" (virtio-serial, until vsock is implemented).
  std::string channel = "auto";

  friend bool operator==(const agent_config&, const agent_config&) = default;
};

namespace detail {
inline constexpr std::string_view channel_choices[] = {"auto", "virtio-serial", "vsock"};
}  // namespace detail

// clang-format off
inline constexpr field<agent_config> agent_fields[] = {
  {.key = "enable_debug", .target = &agent_config::enable_debug},
  {.key = "enable_tracing", .target = &agent_config::enable_tracing, .flags = annotatable},
  {.key = "kernel_modules", .target = &agent_config::kernel_modules, .flags = annotatable | list_semicolon},
  {.key = "debug_console_enabled", .target = &agent_config::debug_console_enabled},
  {.key = "dial_timeout", .target = &agent_config::dial_timeout},
  {.key = "dial_timeout_ms", .target = &agent_config::dial_timeout_ms},
  {.key = "reconnect_timeout_ms", .target = &agent_config::reconnect_timeout_ms},
  {.key = "cdh_api_timeout", .target = &agent_config::cdh_api_timeout},
  {.key = "container_pipe_size", .target = &agent_config::container_pipe_size, .flags = annotatable},
  {.key = "channel", .target = &agent_config::channel, .choices = detail::channel_choices},
};
// clang-format on

}  // namespace katana::inline v0::config
