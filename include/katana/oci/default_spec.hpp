// The starter config.json of `katana-runk spec`: runc's (`runc spec`, libcontainer/specconv
// Example and ToRootless) with katana's version and hostname.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <unistd.h>
#include <utility>
#include <vector>

#include <katana/oci/spec.hpp>

namespace katana::inline v0::oci {

namespace detail {
inline mount make_mount(std::string destination,
                        std::string type,
                        std::string source,
                        std::vector<std::string> options) {
  mount m;
  m.destination = std::move(destination);
  m.type = std::move(type);
  m.source = std::move(source);
  m.options = std::move(options);
  return m;
}
}  // namespace detail

/// Turns a spec into one an unprivileged user can run, as runc's ToRootless does: a new user
/// namespace mapping `uid`/`gid` to root, no network namespace (it could not be configured),
/// /sys bind-mounted (a fresh sysfs needs a network namespace the user owns), no uid=/gid=
/// mount options (ids outside the mapping) and no cgroup resources (no delegation assumed).
inline void make_rootless(spec& s, std::uint32_t uid, std::uint32_t gid) {
  auto& l = s.linux_ ? *s.linux_ : s.linux_.emplace();
  std::erase_if(l.namespaces, [](const linux_namespace& ns) {
    return ns.type == "network" || ns.type == "user";
  });
  l.namespaces.push_back(linux_namespace{"user", {}});
  l.uid_mappings = {linux_id_mapping{0, uid, 1}};
  l.gid_mappings = {linux_id_mapping{0, gid, 1}};
  for (auto& m : s.mounts) {
    if (m.destination == "/sys" || m.destination == "/sys/") {
      m = detail::make_mount("/sys", "none", "/sys", {"rbind", "nosuid", "noexec", "nodev", "ro"});
      continue;
    }
    std::erase_if(m.options, [](const std::string& o) {
      return o.starts_with("uid=") || o.starts_with("gid=");
    });
  }
  l.resources.reset();
}

/// runc's default spec: `sh` as root in ./rootfs (read-only) with three capabilities, new
/// pid/network/ipc/uts/mount/cgroup namespaces, the standard /proc, /dev, /sys mounts and
/// runc's masked and read-only paths. `rootless` applies make_rootless for the effective
/// uid/gid of the caller.
inline spec default_spec(bool rootless = false) {
  const std::vector<std::string> caps = {"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"};
  spec s;
  s.oci_version = std::string(spec_version);
  s.process.emplace();
  auto& p = *s.process;
  p.terminal = true;
  p.args = {"sh"};
  p.env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"};
  p.cwd = "/";
  auto& c = p.capabilities.emplace();
  c.bounding = c.effective = c.permitted = caps;
  p.rlimits = {posix_rlimit{"RLIMIT_NOFILE", 1024, 1024}};
  p.no_new_privileges = true;
  s.root.emplace().path = "rootfs";
  s.root->readonly = true;
  s.hostname = "katana";
  using detail::make_mount;
  s.mounts = {
      make_mount("/proc", "proc", "proc", {}),
      make_mount("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}),
      make_mount("/dev/pts", "devpts", "devpts",
                 {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}),
      make_mount("/dev/shm", "tmpfs", "shm",
                 {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}),
      make_mount("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}),
      make_mount("/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"}),
      make_mount("/sys/fs/cgroup", "cgroup", "cgroup",
                 {"nosuid", "noexec", "nodev", "relatime", "ro"}),
  };
  auto& l = s.linux_.emplace();
  auto& deny_all = l.resources.emplace().devices.emplace_back();
  deny_all.allow = false;
  deny_all.access = "rwm";
  for (const char* t : {"pid", "network", "ipc", "uts", "mount", "cgroup"}) {
    l.namespaces.push_back(linux_namespace{t, {}});
  }
  l.masked_paths = {"/proc/acpi",
                    "/proc/asound",
                    "/proc/kcore",
                    "/proc/keys",
                    "/proc/latency_stats",
                    "/proc/timer_list",
                    "/proc/timer_stats",
                    "/proc/sched_debug",
                    "/sys/firmware",
                    "/proc/scsi",
                    "/sys/devices/virtual/powercap"};
  l.readonly_paths = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"};
  if (rootless) {
    make_rootless(s, static_cast<std::uint32_t>(::geteuid()),
                  static_cast<std::uint32_t>(::getegid()));
  }
  return s;
}

}  // namespace katana::inline v0::oci
