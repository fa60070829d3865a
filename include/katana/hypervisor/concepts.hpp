// What a hypervisor policy provides: a small required core (hypervisor::driver) and optional
// capabilities as separate concepts (device_hotplug), so a sandbox asks for exactly what it
// uses (`requires hypervisor::device_hotplug<H>`).
#pragma once

#include <chrono>
#include <concepts>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <type_traits>

#include <katana/config.hpp>
#include <katana/config/agent.hpp>
#include <katana/config/hypervisor.hpp>
#include <katana/core/error.hpp>

namespace katana::inline v0::hypervisor {

/// A VM that becomes a template (its memory and device state saved) or starts from one.
enum class vm_template_role { none, make, clone };

/// Everything a driver needs to prepare one VM.
struct vm_config {
  std::string id;
  std::filesystem::path dir;         // the sandbox directory (sockets, console.log)
  std::filesystem::path shared_dir;  // shared with the guest (9p/virtio-fs); empty = dir/shared
  config::hypervisor_config hypervisor;
  config::agent_config agent;
  /// VM templating ([factory]): the template's directory (memory, state), and whether this VM
  /// becomes the template or is cloned from it.
  std::filesystem::path template_dir;
  vm_template_role template_role = vm_template_role::none;
  /// Called with the pid of the VMM (QEMU) and of the shared-fs daemon (virtiofsd) after fork,
  /// before they exec (child_process::exec_hook): the sandbox places them in its cgroup there.
  /// Used during start() only.
  std::function<status(pid_t)> place_vmm;
  std::function<status(pid_t)> place_shared_fs_daemon;
};

/// A block device to hot-plug.
struct block_device {
  std::string id;
  std::filesystem::path file;
  bool read_only = true;
};

/// The core every hypervisor policy provides: prepare (validate and build the launch), start
/// (boot; returns when the VM runs), stop (clean shutdown, everything removed), wait (the VM's
/// end within a timeout), agent_address (where the host reaches the agent).
template <class H>
concept driver = std::is_nothrow_move_constructible_v<H> &&
    requires(H& h, const H& ch, const vm_config& cfg, std::chrono::milliseconds t) {
  { H::name } -> std::convertible_to<std::string_view>;
  { h.prepare(cfg) } -> std::same_as<status>;
  { h.start() } -> std::same_as<status>;
  { h.stop() } -> std::same_as<status>;
  { h.wait(t) } -> std::same_as<std::optional<int>>;
  { ch.agent_address() } -> std::convertible_to<std::string>;
};

/// Hot-plugging block devices into a running VM.
template <class H>
concept device_hotplug = driver<H> && requires(H& h, const block_device& d) {
  { h.hotplug_block(d) } -> std::same_as<status>;
};

}  // namespace katana::inline v0::hypervisor
