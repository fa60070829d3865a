// cgroup paths and drivers: cleaning OCI linux.cgroupsPath, systemd's "slice:prefix:name"
// form and runc's slice expansion ("a-b.slice" -> "a.slice/a-b.slice"), and the choice
// between the cgroupfs and systemd drivers (resolve_driver: the agent as PID 1 has no
// systemd, so it always gets cgroupfs; see SEEDS-INVENTORY §2.4).
#pragma once

#include <climits>
#include <optional>
#include <string>
#include <string_view>
#include <sys/stat.h>

#include <katana/cgroup/concepts.hpp>
#include <katana/cgroup/fs.hpp>
#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/core/log.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/try.hpp>
#include <katana/oci/spec.hpp>

namespace katana::inline v0::cgroup {

enum class driver { cgroupfs, systemd };

inline constexpr std::string_view to_string(driver d) noexcept {
  return d == driver::systemd ? "systemd" : "cgroupfs";
}

/// A cgroup path relative to the hierarchy root: a leading '/' is dropped, empty and "."
/// components vanish. ".." is refused (path_escapes_root), as are NUL bytes and names longer
/// than NAME_MAX. "" is the root itself.
inline result<std::string> clean_path(std::string_view p) {
  if (p.find('\0') != std::string_view::npos) {
    return fail(errc::invalid_argument, "cgroup path contains a NUL byte");
  }
  std::string out;
  const std::string_view whole = p;
  while (!p.empty()) {
    const auto slash = p.find('/');
    const auto part = p.substr(0, slash);
    p = slash == std::string_view::npos ? std::string_view{} : p.substr(slash + 1);
    if (part.empty() || part == ".") {
      continue;
    }
    if (part == "..") {
      return fail(errc::path_escapes_root,
                  str_cat("cgroup path \"", whole, "\" has a \"..\" component"));
    }
    if (part.size() > NAME_MAX) {
      return fail(errc::invalid_argument,
                  str_cat("cgroup path \"", whole, "\" has a component longer than NAME_MAX"));
    }
    out += out.empty() ? "" : "/";
    out += part;
  }
  return out;
}

/// systemd's "slice:prefix:name" cgroupsPath.
struct systemd_path {
  std::string slice;   // "system.slice"; empty means the default (system.slice)
  std::string prefix;  // "katana", "cri-containerd"
  std::string name;    // the container id, or a slice name ending in ".slice"
  bool operator==(const systemd_path&) const = default;
};

/// Whether a cgroupsPath has systemd's form: exactly three ':'-separated fields, no '/'.
inline bool is_systemd_path(std::string_view p) noexcept {
  if (p.find('/') != std::string_view::npos) {
    return false;
  }
  const auto a = p.find(':');
  if (a == std::string_view::npos) {
    return false;
  }
  const auto b = p.find(':', a + 1);
  return b != std::string_view::npos && p.find(':', b + 1) == std::string_view::npos;
}

inline result<systemd_path> parse_systemd_path(std::string_view p) {
  if (!is_systemd_path(p)) {
    return fail(errc::invalid_spec,
                str_cat("linux.cgroupsPath \"", p, "\" is not of the form slice:prefix:name"));
  }
  const auto a = p.find(':');
  const auto b = p.find(':', a + 1);
  systemd_path out{std::string(p.substr(0, a)), std::string(p.substr(a + 1, b - a - 1)),
                   std::string(p.substr(b + 1))};
  if (out.name.empty()) {
    return fail(errc::invalid_spec, str_cat("linux.cgroupsPath \"", p, "\" has an empty name"));
  }
  return out;
}

/// runc's ExpandSlice: "a-b-c.slice" -> "a.slice/a-b.slice/a-b-c.slice", "-.slice" -> "".
inline result<std::string> expand_slice(std::string_view slice) {
  constexpr std::string_view suffix = ".slice";
  const auto invalid = [&] {
    return fail(errc::invalid_spec, str_cat("invalid systemd slice name \"", slice, "\""));
  };
  if (slice.size() <= suffix.size() || !slice.ends_with(suffix) ||
      slice.find('/') != std::string_view::npos) {
    return invalid();
  }
  std::string_view base = slice.substr(0, slice.size() - suffix.size());
  if (base == "-") {
    return std::string();
  }
  std::string path;
  std::string prefix;
  while (true) {
    const auto dash = base.find('-');
    const auto component = base.substr(0, dash);
    if (component.empty()) {
      return invalid();  // "-a.slice", "a--b.slice", "a-.slice"
    }
    path += str_cat(path.empty() ? "" : "/", prefix, component, suffix);
    prefix += str_cat(component, "-");
    if (dash == std::string_view::npos) {
      return path;
    }
    base = base.substr(dash + 1);
  }
}

/// The unit systemd would create: "<prefix>-<name>.scope", or the name itself for a slice.
inline std::string unit_name(const systemd_path& p) {
  if (p.name.ends_with(".slice")) {
    return p.name;
  }
  return p.prefix.empty() ? p.name + ".scope" : str_cat(p.prefix, "-", p.name, ".scope");
}

/// Where that unit lives in a cgroupfs hierarchy:
/// "system.slice:katana:abc" -> "system.slice/katana-abc.scope",
/// "a-b.slice:p:c" -> "a.slice/a-b.slice/p-c.scope".
inline result<std::string> systemd_to_cgroupfs(std::string_view cgroups_path) {
  const systemd_path p = KATANA_TRY(parse_systemd_path(cgroups_path));
  const std::string slice =
      KATANA_TRY(expand_slice(p.slice.empty() ? std::string_view("system.slice") : p.slice));
  const std::string unit = unit_name(p);
  return clean_path(slice.empty() ? unit : slice + "/" + unit);
}

/// The driver a cgroupsPath asks for: systemd's form asks for systemd (the Kata agent's rule).
inline driver driver_for_path(std::string_view cgroups_path) noexcept {
  return is_systemd_path(cgroups_path) ? driver::systemd : driver::cgroupfs;
}

/// sd_booted(3): systemd is PID 1 when /run/systemd/system is a directory.
inline bool systemd_running() {
  struct stat st {};
  return ::lstat("/run/systemd/system", &st) == 0 && S_ISDIR(st.st_mode);
}

/// Where a systemd request came from: asked for explicitly (a --systemd-cgroup flag, a
/// configuration option), or implied by a cgroupsPath in systemd's form (the Kata agent's rule).
enum class driver_origin { requested, path_style };

/// The driver to use. The agent as PID 1 (no systemd in the guest) always gets cgroupfs,
/// whatever the host asked for (Kata's init_mode fix), and says so. Elsewhere, on a host
/// without systemd, a systemd path style falls back to cgroupfs with a log line, while an
/// explicit systemd request is an error naming the cause. Never crashes.
inline result<driver> resolve_driver(driver requested,
                                     bool agent_is_init,
                                     bool systemd_is_running,
                                     const logging::logger& log,
                                     driver_origin origin = driver_origin::requested) {
  if (requested == driver::cgroupfs) {
    return driver::cgroupfs;
  }
  if (agent_is_init) {
    log.info(
        "systemd cgroup driver requested, but the agent runs as init (no systemd): using "
        "cgroupfs");
    return driver::cgroupfs;
  }
  if (!systemd_is_running) {
    if (origin == driver_origin::path_style) {
      log.info(
          "cgroupsPath is in systemd's slice:prefix:name form, but systemd is not running: "
          "using cgroupfs");
      return driver::cgroupfs;
    }
    return fail(errc::unsupported,
                "the systemd cgroup driver was requested, but systemd is not running on this host "
                "(/run/systemd/system is missing); use the cgroupfs driver");
  }
  return driver::systemd;
}

/// resolve_driver for this host (sd_booted) without logging; an explicit request.
inline result<driver> resolve_driver(driver requested, bool agent_is_init) {
  return resolve_driver(requested, agent_is_init, systemd_running(), detail::null_logger());
}

/// The cgroup config for a container: linux.cgroupsPath (absolute or relative, both taken
/// relative to the hierarchy root as runk does; systemd's form mapped to its cgroupfs place
/// when the driver is cgroupfs), or the container id when the path is empty.
inline result<config> make_config(std::string_view cgroups_path,
                                  std::string_view container_id,
                                  std::optional<oci::linux_resources> resources = std::nullopt,
                                  driver d = driver::cgroupfs) {
  config c;
  c.resources = std::move(resources);
  if (cgroups_path.empty()) {
    c.path = KATANA_TRY(clean_path(container_id), "container id as cgroup path");
    if (c.path.empty() || c.path.find('/') != std::string::npos) {
      return fail(errc::invalid_argument,
                  str_cat("container id \"", container_id, "\" is not a valid cgroup name"));
    }
    return c;
  }
  if (is_systemd_path(cgroups_path)) {
    c.path = KATANA_TRY(systemd_to_cgroupfs(cgroups_path));
  } else if (d == driver::systemd) {
    return fail(errc::invalid_spec, str_cat("linux.cgroupsPath \"", cgroups_path,
                                            "\" must be slice:prefix:name for the systemd driver"));
  } else {
    c.path = KATANA_TRY(clean_path(cgroups_path), "linux.cgroupsPath");
  }
  if (c.path.empty()) {
    return fail(errc::invalid_spec,
                str_cat("linux.cgroupsPath \"", cgroups_path, "\" names the hierarchy root"));
  }
  return c;
}

}  // namespace katana::inline v0::cgroup
