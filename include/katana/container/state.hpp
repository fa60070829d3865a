// What the runtime remembers about a container between invocations (runk's status.json) and
// how its current status is determined (runk's get_current_container_state, after runc):
// paused if frozen, stopped if the init is gone (or its pid was reused, or it is a zombie),
// created while the exec FIFO exists, running otherwise. JSON lives in state_json.hpp.
#pragma once

#include <cerrno>
#include <charconv>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <map>
#include <optional>
#include <poll.h>
#include <signal.h>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <sys/types.h>
#include <system_error>

#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/core/rfc3339.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/oci/detail/read_file.hpp>
#include <katana/oci/spec.hpp>
#include <katana/oci/state.hpp>

namespace katana::inline v0::container {

/// runk's statuses: the OCI four plus paused.
enum class runtime_status { creating, created, running, stopped, paused };

constexpr std::string_view to_string(runtime_status s) {
  switch (s) {
    case runtime_status::creating:
      return "creating";
    case runtime_status::created:
      return "created";
    case runtime_status::running:
      return "running";
    case runtime_status::stopped:
      return "stopped";
    case runtime_status::paused:
      return "paused";
  }
  return "unknown";
}

/// The OCI status of a runtime status (paused is reported as running, as runc does).
constexpr oci::container_status to_oci(runtime_status s) {
  switch (s) {
    case runtime_status::creating:
      return oci::container_status::creating;
    case runtime_status::created:
      return oci::container_status::created;
    case runtime_status::stopped:
      return oci::container_status::stopped;
    case runtime_status::running:
    case runtime_status::paused:
      break;
  }
  return oci::container_status::running;
}

/// state.json in the container's state directory.
struct container_state {
  std::string oci_version;
  std::string id;
  int pid = 0;
  std::uint64_t process_start_time = 0;  // /proc/<pid>/stat field 22, guards against reuse
  std::string bundle;                    // canonical
  std::string rootfs;                    // canonical
  std::string created;                   // RFC 3339, UTC
  std::string cgroup_path;               // linux.cgroupsPath, or the id
  std::map<std::string, std::string> annotations;
  oci::spec config;  // the spec the container was created from (hooks, namespaces for exec)
  bool operator==(const container_state&) const = default;
};

inline constexpr std::string_view state_file_name = "state.json";
inline constexpr std::string_view exec_fifo_name = "exec.fifo";

inline std::filesystem::path state_file(const std::filesystem::path& dir) {
  return dir / state_file_name;
}
inline std::filesystem::path exec_fifo_path(const std::filesystem::path& dir) {
  return dir / exec_fifo_name;
}

using katana::rfc3339_now;

/// The fields of /proc/<pid>/stat after the command name.
struct proc_stat {
  char state = '?';
  std::uint64_t start_time = 0;
};

inline result<proc_stat> read_proc_stat(int pid) {
  const std::string path = str_cat("/proc/", pid, "/stat");
  auto text = oci::detail::read_small_file(path, 4096);
  if (!text) {
    return unexpected<error>(std::move(text).error());
  }
  // "pid (comm) S ppid ..." — comm may hold spaces and parentheses: split at the last ')'.
  const std::size_t close = text->rfind(')');
  if (close == std::string::npos || close + 2 >= text->size()) {
    return fail(errc::parse_error, path + ": unexpected format");
  }
  std::string_view rest = std::string_view(*text).substr(close + 2);
  proc_stat st;
  st.state = rest.front();
  // start_time is field 22; `rest` begins at field 3.
  for (int field = 3; field < 22; ++field) {
    const std::size_t sp = rest.find(' ');
    if (sp == std::string_view::npos) {
      return fail(errc::parse_error, path + ": too few fields");
    }
    rest.remove_prefix(sp + 1);
  }
  const auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), st.start_time);
  if (ec != std::errc{}) {
    return fail(errc::parse_error, path + ": bad starttime");
  }
  return st;
}

/// kill(pid, 0): false on ESRCH, an error for anything but success.
inline result<bool> process_exists(int pid) {
  if (::kill(pid, 0) == 0) {
    return true;
  }
  if (errno == ESRCH) {
    return false;
  }
  if (errno == EPERM) {
    return true;
  }
  return fail_errno(str_cat("failed to kill process ", pid));
}

/// Whether the process behind `pidfd` has exited (a zombie or reaped): its pidfd polls
/// readable then. nullopt when the descriptor is not a usable pidfd.
inline std::optional<bool> pidfd_exited(int pidfd) noexcept {
  if (pidfd < 0) {
    return std::nullopt;
  }
  pollfd p{pidfd, POLLIN, 0};
  const int r = ::poll(&p, 1, 0);
  if (r < 0 || (p.revents & POLLNVAL) != 0) {
    return std::nullopt;
  }
  return r > 0;
}

/// runk's state determination. `frozen` is the cgroup freezer's answer (the cgroup manager
/// plugs in here). With `pidfd` (the init is our child) liveness comes from it, not from
/// /proc/<pid>/stat: reading that costs ~20 ms the first time in a TCG guest.
inline runtime_status current_status(const container_state& s,
                                     const std::filesystem::path& state_dir,
                                     bool frozen = false,
                                     int pidfd = -1) {
  if (frozen) {
    return runtime_status::paused;
  }
  if (s.pid <= 0) {
    return runtime_status::stopped;
  }
  const auto gone_by_proc = [&] {
    auto st = read_proc_stat(s.pid);
    return !st || (s.process_start_time != 0 && st->start_time != s.process_start_time) ||
           st->state == 'Z' || st->state == 'X' || st->state == 'x';
  };
  const auto exited = pidfd_exited(pidfd);
  if (exited ? *exited : gone_by_proc()) {
    return runtime_status::stopped;
  }
  std::error_code ec;
  if (std::filesystem::exists(std::filesystem::symlink_status(exec_fifo_path(state_dir), ec))) {
    return runtime_status::created;
  }
  return runtime_status::running;
}

/// The OCI state document of a container (hooks' stdin, `state` output).
inline oci::state oci_state(const container_state& s, runtime_status status) {
  oci::state o;
  o.oci_version = std::string(oci::spec_version);
  o.id = s.id;
  o.status = to_oci(status);
  o.pid = status == runtime_status::stopped ? 0 : s.pid;
  o.bundle = s.bundle;
  o.annotations = s.annotations;
  return o;
}

}  // namespace katana::inline v0::container
