// The agent's view of a container engine: the concept agent::container_engine, the requests it
// takes and the numbers it reports. The agent owns everything around the engine (stdio pipes
// and terminals, reaping, storages, devices, the sandbox's shared namespaces, OOM events); the
// engine creates, starts and controls the containers themselves.
//
// Engines: testing/fake_engine.hpp (host processes, no isolation, for tests) and the adapter to
// katana's container engine (agent/engine_adapter.hpp in the agent binary).
#pragma once

#include <concepts>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/core/unique_fd.hpp>
#include <katana/oci/spec.hpp>

namespace katana::inline v0::agent {

/// The child's ends of a process's stdio; the engine makes them fds 0, 1 and 2 of the process
/// (-1: /dev/null). With `terminal` there are no pipes: the engine gives the process a
/// pseudo-terminal (its controlling terminal and stdio) and returns the master.
struct stdio_fds {
  int in = -1;
  int out = -1;
  int err = -1;
  bool terminal = false;
};

/// What create() and exec() return: the process (a child of the agent) and, for a terminal,
/// the pty master the agent reads and writes.
struct started_process {
  pid_t pid = 0;
  unique_fd term_master;
};

/// Which cgroup driver a container gets (agent/cgroup_driver.hpp decides, from the host's
/// cgroupsPath and what the guest has).
enum class cgroup_driver { cgroupfs, systemd };

/// CreateContainer, after the agent translated the request: storages are mounted, devices are
/// resolved to guest nodes, namespaces point at the sandbox's shared ones, and
/// spec.linux.cgroupsPath is the path for `cgroups`.
struct container_config {
  std::string id;
  oci::spec spec;                // with a process
  std::filesystem::path bundle;  // the container's state directory (config.json is written)
  stdio_fds stdio;               // for the init process
  cgroup_driver cgroups = cgroup_driver::cgroupfs;
};

/// ExecProcess: a new process in a running container's namespaces and cgroup.
struct exec_config {
  std::string container_id;
  std::string exec_id;
  oci::process process;
  stdio_fds stdio;
};

/// Resource usage of a container, in the units of the agent protocol's CgroupStats.
struct container_stats {
  struct cpu_t {
    std::uint64_t total_ns = 0;
    std::uint64_t user_ns = 0;
    std::uint64_t kernel_ns = 0;
    std::vector<std::uint64_t> per_cpu_ns;
    std::uint64_t periods = 0;
    std::uint64_t throttled_periods = 0;
    std::uint64_t throttled_time_ns = 0;
  } cpu;
  struct memory_t {
    std::uint64_t usage = 0;
    std::uint64_t max_usage = 0;
    std::uint64_t failcnt = 0;
    std::uint64_t limit = 0;
    std::uint64_t cache = 0;
    std::uint64_t swap_usage = 0;
    std::uint64_t swap_limit = 0;
    std::map<std::string, std::uint64_t> stat;
  } memory;
  struct pids_t {
    std::uint64_t current = 0;
    std::uint64_t limit = 0;
  } pids;
  struct blkio_entry {
    std::uint64_t major = 0;
    std::uint64_t minor = 0;
    std::string op;
    std::uint64_t value = 0;
  };
  std::vector<blkio_entry> io_service_bytes;
  std::vector<blkio_entry> io_serviced;
  struct hugetlb_t {
    std::uint64_t usage = 0;
    std::uint64_t max_usage = 0;
    std::uint64_t failcnt = 0;
  };
  std::map<std::string, hugetlb_t> hugetlb;  // by page size
};

/// An OOM notification source for one container: `fd` becomes readable when something may have
/// happened (an eventfd of cgroup v1's memory.oom_control, an inotify fd on v2's
/// memory.events); `check()` drains it and says whether an OOM kill really happened since the
/// last call.
struct oom_watch {
  unique_fd fd;
  std::function<result<bool>()> check;
};

// clang-format off
/// The engine the agent drives. One container's calls never overlap; every call is
/// synchronous and runs on the agent's thread (so an engine may waitpid() its own helper
/// processes: the agent's reaper cannot run meanwhile).
///
///   create(cfg)         the container exists, its init process is created and waits for
///                       start (runc create); returns the init (a child of the agent)
///   start(id)           the init execs the user process (runc start)
///   exec(cfg)           a new process in the container (a child of the agent)
///   signal(id, pid, s)  one process (pid > 0) or every process of the container (pid == 0)
///   reaped(id, pid, st) the agent reaped a process of the container (waitpid status `st`)
///   remove(id)          every process is gone: release the cgroup, run poststop hooks
///   pause/resume(id)    freeze/thaw the container's cgroup
///   update(id, res)     apply new resources
///   stats(id), pids(id) usage counters and the container's processes
template <class E>
concept container_engine =
    requires(E& e, const E& ce, const container_config& c, const exec_config& x,
             const std::string& id, pid_t pid, int sig, const oci::linux_resources& r) {
      { e.create(c) } -> std::same_as<result<started_process>>;
      { e.start(id) } -> std::same_as<status>;
      { e.exec(x) } -> std::same_as<result<started_process>>;
      { e.signal(id, pid, sig) } -> std::same_as<status>;
      { e.reaped(id, pid, sig) } -> std::same_as<void>;
      { e.remove(id) } -> std::same_as<status>;
      { e.pause(id) } -> std::same_as<status>;
      { e.resume(id) } -> std::same_as<status>;
      { e.update(id, r) } -> std::same_as<status>;
      { ce.stats(id) } -> std::same_as<result<container_stats>>;
      { ce.pids(id) } -> std::same_as<result<std::vector<pid_t>>>;
    };

/// Capability: the engine can tell the agent about OOM kills in a container (GetOOMEvent).
template <class E>
concept oom_notifier = container_engine<E> && requires(E& e, const std::string& id) {
  { e.watch_oom(id) } -> std::same_as<result<oom_watch>>;
};
// clang-format on

/// The exit status the agent protocol reports for a waitpid status: the exit code, or 128 plus
/// the signal that killed the process (as a shell and Kata report it).
inline constexpr int exit_status(int wait_status) noexcept {
  if ((wait_status & 0x7f) == 0) {  // WIFEXITED
    return (wait_status >> 8) & 0xff;
  }
  return 128 + (wait_status & 0x7f);  // WTERMSIG
}

}  // namespace katana::inline v0::agent
