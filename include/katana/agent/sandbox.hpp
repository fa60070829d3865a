// The agent's state: the sandbox, its containers and their processes, in katana types (the
// protobuf messages stay in the agent binary's RPC layer). Plus the requests and answers of
// the sandbox-level RPCs.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

#include <boost/asio/posix/stream_descriptor.hpp>

#include <katana/agent/devices.hpp>
#include <katana/agent/engine.hpp>
#include <katana/agent/namespaces.hpp>
#include <katana/agent/stdio.hpp>
#include <katana/agent/storage.hpp>
#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/core/log.hpp>
#include <katana/core/unique_fd.hpp>
#include <katana/oci/spec.hpp>

namespace katana::inline v0::agent {

struct kernel_module {
  std::string name;
  std::vector<std::string> parameters;
  bool operator==(const kernel_module&) const = default;
};

/// CreateSandboxRequest.
struct sandbox_request {
  std::string hostname;
  std::vector<std::string> dns;
  std::vector<storage> storages;
  bool sandbox_pidns = false;
  std::string sandbox_id;
  std::string guest_hook_path;
  std::vector<kernel_module> kernel_modules;
};

/// CreateContainerRequest.
struct container_request {
  std::string container_id;
  std::string exec_id;
  std::vector<device> devices;
  std::vector<storage> storages;
  std::optional<oci::spec> spec;
  bool sandbox_pidns = false;
};

/// GetGuestDetails' answer.
struct guest_details {
  std::uint64_t mem_block_size_bytes = 0;
  bool support_mem_hotplug_probe = false;
  std::string version;
  bool init_daemon = false;
  std::vector<std::string> device_handlers;
  std::vector<std::string> storage_handlers;
  bool supports_seccomp = false;
};

/// Options the agent binary (or a test) sets.
struct agent_options {
  /// Kata's CONTAINER_BASE: bundles, the sandbox's files, CopyFile's root.
  std::filesystem::path run_dir = "/run/kata-containers";
  device_env env;
  std::filesystem::path proc_root = "/proc";
  /// The agent is the guest's init (PID 1): cgroupfs is forced, the clock may be set.
  bool init_mode = false;
  /// Whether systemd runs in the guest; empty: look (/run/systemd/system).
  std::optional<bool> systemd;
  /// Persistent IPC and UTS namespaces for the sandbox (needs CAP_SYS_ADMIN).
  bool share_namespaces = true;
  /// RPCs that change the whole guest (SetGuestDateTime, OnlineCPUMem, MemHotplugByProbe, the
  /// network updates) are carried out; empty: only in init mode (a host-mode agent must not
  /// touch its host).
  std::optional<bool> allow_guest_changes;
  logging::logger log{logging::fd_writer(2)};
  /// CreateSandbox's kernel_modules; empty: refused (the agent is not init).
  std::function<status(const kernel_module&)> load_module;
  /// Called after DestroySandbox tore everything down (PID 1 powers off).
  std::function<void()> on_destroy;
};

namespace detail {

struct process_entry {
  std::string container_id;
  std::string exec_id;
  pid_t pid = 0;
  bool init = false;
  std::shared_ptr<output_stream> out;
  std::shared_ptr<output_stream> err;  // empty with a terminal
  std::shared_ptr<input_stream> in;
  unique_fd term_master;
  std::optional<int> wait_status;
  bool waited = false;
  event exited;

  [[nodiscard]] bool running() const noexcept { return !wait_status.has_value(); }
  void close_streams() {
    if (out) {
      out->close();
    }
    if (err) {
      err->close();
    }
    if (in) {
      in->shutdown();
    }
  }
};

enum class container_state { created, running, paused, stopped };

inline constexpr std::string_view to_string(container_state s) noexcept {
  switch (s) {
    case container_state::created:
      return "created";
    case container_state::running:
      return "running";
    case container_state::paused:
      return "paused";
    case container_state::stopped:
      return "stopped";
  }
  return "unknown";
}

struct container_entry {
  std::string id;
  container_state state = container_state::created;
  std::shared_ptr<process_entry> init;
  std::map<std::string, std::shared_ptr<process_entry>> execs;
  std::vector<std::string> storages;  // storage_registry keys
  std::filesystem::path bundle;
  std::shared_ptr<asio::posix::stream_descriptor> oom_fd;  // closing it ends the OOM watch
};

struct sandbox_state {
  bool created = false;
  std::string id;
  std::string hostname;
  bool pidns = false;
  std::string guest_hook_path;
  std::vector<std::string> storages;
  persistent_ns ipc;
  persistent_ns uts;
  shared_namespaces shared;
};

}  // namespace detail
}  // namespace katana::inline v0::agent
