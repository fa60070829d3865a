// Which cgroup driver a container gets inside the guest (SEEDS-INVENTORY §2.4, Kata's
// init_mode fix for #5779).
//
// The host sends linux.cgroupsPath in its own style: "/kubepods/pod1/ctr" (cgroupfs) or
// "kubepods-pod1.slice:cri-containerd:ctr" (systemd). The choice must come from the host's
// intent *and* the guest's ability: when the agent is init (PID 1) there is no systemd, so the
// driver is always cgroupfs, whatever the path looks like, and a systemd path is converted to
// the directory systemd would have used. Outside init mode a systemd path with no systemd
// running is an error value (errc::unsupported), never a crash.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

#include <katana/agent/engine.hpp>
#include <katana/cgroup/path.hpp>
#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/try.hpp>

namespace katana::inline v0::agent {

struct cgroup_choice {
  cgroup_driver driver = cgroup_driver::cgroupfs;
  /// cgroupfs: an absolute path below the hierarchy root ("/kubepods/pod1/ctr").
  /// systemd: the host's "slice:prefix:name", untouched.
  std::string path;
  bool operator==(const cgroup_choice&) const = default;
};

/// Whether systemd is the init of this system (sd_booted(3): /run/systemd/system exists).
inline bool systemd_running(const std::filesystem::path& run = "/run") {
  std::error_code ec;
  return std::filesystem::is_directory(run / "systemd" / "system", ec);
}

/// "slice:prefix:name" (two colons, no slash) is systemd's form; runc and Kata test the same.
inline bool is_systemd_cgroup_path(std::string_view p) noexcept {
  const auto first = p.find(':');
  if (first == std::string_view::npos || p.find('/') != std::string_view::npos) {
    return false;
  }
  const auto second = p.find(':', first + 1);
  return second != std::string_view::npos && p.find(':', second + 1) == std::string_view::npos;
}

namespace detail {

/// runc's ExpandSlice: "a-b-c.slice" -> "/a.slice/a-b.slice/a-b-c.slice"; "" and "-.slice" -> "".
inline result<std::string> expand_slice(std::string_view slice) {
  constexpr std::string_view suffix = ".slice";
  if (slice.empty() || slice == "-.slice") {
    return std::string();
  }
  if (slice.size() <= suffix.size() || slice.substr(slice.size() - suffix.size()) != suffix ||
      slice.find('/') != std::string_view::npos) {
    return fail(errc::invalid_argument, str_cat("invalid systemd slice \"", slice, "\""));
  }
  const auto name = slice.substr(0, slice.size() - suffix.size());
  if (name.front() == '-' || name.back() == '-' || name.find("--") != std::string_view::npos) {
    return fail(errc::invalid_argument, str_cat("invalid systemd slice \"", slice, "\""));
  }
  std::string out;
  std::size_t pos = 0;
  for (;;) {
    const auto dash = name.find('-', pos);
    const auto part = name.substr(0, dash);
    out += "/";
    out += part;
    out += suffix;
    if (dash == std::string_view::npos) {
      break;
    }
    pos = dash + 1;
  }
  return out;
}

inline result<std::string> clean_cgroupfs_path(std::string_view p, std::string_view fallback) {
  const auto clean = KATANA_TRY(cgroup::clean_path(p));
  return str_cat("/", clean.empty() ? fallback : std::string_view(clean));
}

}  // namespace detail

/// The systemd path "slice:prefix:name" as the cgroupfs directory systemd would create:
/// "kubepods-pod1.slice:cri-containerd:abc" -> "/kubepods.slice/kubepods-pod1.slice/
/// cri-containerd-abc.scope" (a name already ending in ".slice" is used as is).
inline result<std::string> systemd_to_cgroupfs(std::string_view p) {
  const auto first = p.find(':');
  const auto second = p.find(':', first + 1);
  const auto slice = p.substr(0, first);
  const auto prefix = p.substr(first + 1, second - first - 1);
  const auto name = p.substr(second + 1);
  if (name.empty()) {
    return fail(errc::invalid_argument, str_cat("systemd cgroupsPath \"", p, "\" has no name"));
  }
  std::string out = KATANA_TRY(detail::expand_slice(slice));
  out += "/";
  if (name.size() > 6 && name.substr(name.size() - 6) == ".slice") {
    out += name;
  } else {
    out += prefix.empty() ? std::string(name) : str_cat(prefix, "-", name);
    out += ".scope";
  }
  return out;
}

/// The driver and path for a container: `init_mode` is "the agent is PID 1".
inline result<cgroup_choice> choose_cgroup(std::string_view cgroups_path,
                                           std::string_view container_id,
                                           bool init_mode,
                                           bool systemd_is_running) {
  if (!is_systemd_cgroup_path(cgroups_path)) {
    return cgroup_choice{cgroup_driver::cgroupfs,
                         KATANA_TRY(detail::clean_cgroupfs_path(cgroups_path, container_id))};
  }
  if (init_mode) {
    // No systemd can exist when the agent is init: cgroupfs, whatever the host asked for.
    return cgroup_choice{cgroup_driver::cgroupfs, KATANA_TRY(systemd_to_cgroupfs(cgroups_path))};
  }
  if (!systemd_is_running) {
    return fail(errc::unsupported,
                str_cat("cgroupsPath \"", cgroups_path,
                        "\" asks for the systemd cgroup driver, but systemd is not running in "
                        "the guest"));
  }
  return cgroup_choice{cgroup_driver::systemd, std::string(cgroups_path)};
}

}  // namespace katana::inline v0::agent
