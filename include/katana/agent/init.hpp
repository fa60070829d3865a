// katana-agent as the guest's init (PID 1): the filesystems an initrd does not have (proc,
// sys, dev, dev/pts, dev/shm, run, the cgroup hierarchy), a debug console, and a clean power
// off. The mounts are a plan (data) applied through a `mounter`, so tests can check it.
#pragma once

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <filesystem>
#include <linux/magic.h>
#include <optional>
#include <string>
#include <string_view>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/types.h>
#include <system_error>
#include <unistd.h>
#include <vector>

#include <katana/agent/guest.hpp>
#include <katana/agent/storage.hpp>
#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/try.hpp>

namespace katana::inline v0::agent {

struct init_mount {
  std::string source;
  std::string target;
  std::string fstype;
  unsigned long flags = 0;
  std::string data;
  bool optional = false;  // failure is logged, not fatal
  // Tried when `data` is refused (EINVAL): options older kernels do not know.
  std::optional<std::string> fallback_data;
  bool operator==(const init_mount&) const = default;
};

enum class cgroup_layout { v2, v1, none };

/// What the kernel offers: v2 when cgroup2 is in /proc/filesystems and the command line does
/// not ask for v1 (systemd.unified_cgroup_hierarchy=0 or agent.cgroup_v1), else v1 if
/// cgroup is there.
inline cgroup_layout choose_cgroup_layout(std::string_view filesystems, std::string_view cmdline) {
  const auto has = [&](std::string_view fs) {
    std::string_view rest = filesystems;
    while (!rest.empty()) {
      const auto nl = rest.find('\n');
      auto line = rest.substr(0, nl);
      rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
      const auto tab = line.rfind('\t');
      if (tab != std::string_view::npos) {
        line = line.substr(tab + 1);
      }
      if (line == fs) {
        return true;
      }
    }
    return false;
  };
  const bool want_v1 =
      cmdline.find("systemd.unified_cgroup_hierarchy=0") != std::string_view::npos ||
      cmdline.find("agent.cgroup_v1") != std::string_view::npos;
  if (has("cgroup2") && !want_v1) {
    return cgroup_layout::v2;
  }
  if (has("cgroup")) {
    return cgroup_layout::v1;
  }
  return has("cgroup2") ? cgroup_layout::v2 : cgroup_layout::none;
}

/// The enabled v1 controllers of /proc/cgroups ("#subsys_name hierarchy num_cgroups enabled").
inline std::vector<std::string> cgroup_v1_controllers(std::string_view proc_cgroups) {
  std::vector<std::string> out;
  std::string_view rest = proc_cgroups;
  while (!rest.empty()) {
    const auto nl = rest.find('\n');
    const auto line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    if (line.empty() || line.front() == '#') {
      continue;
    }
    const auto name = line.substr(0, line.find('\t'));
    if (line.back() == '1' && !name.empty()) {
      out.emplace_back(name);
    }
  }
  return out;
}

/// The mounts PID 1 makes, in order. Kata's agent makes the same set (INIT_ROOTFS_MOUNTS).
inline std::vector<init_mount> init_mount_plan(cgroup_layout layout,
                                               const std::vector<std::string>& v1_controllers) {
  constexpr unsigned long nsx = MS_NOSUID | MS_NODEV | MS_NOEXEC;
  std::vector<init_mount> plan = {
      {"proc", "/proc", "proc", nsx, "", false},
      {"sysfs", "/sys", "sysfs", nsx, "", false},
      {"dev", "/dev", "devtmpfs", MS_NOSUID, "mode=0755", false},
      {"devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "gid=5,mode=0620,ptmxmode=0666",
       false},
      {"shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", false},
      {"tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755", false},
  };
  if (layout == cgroup_layout::v2) {
    // favordynmods (Linux 6.0+): moving a task between cgroups needs no RCU grace period
    // (~6 ms per container under TCG); forks and exits cost a little more instead.
    plan.push_back({"cgroup2", "/sys/fs/cgroup", "cgroup2", nsx, "favordynmods", false, ""});
  } else if (layout == cgroup_layout::v1) {
    plan.push_back({"tmpfs", "/sys/fs/cgroup", "tmpfs", nsx, "mode=0755", false});
    for (const auto& c : v1_controllers) {
      // cpu and cpuacct share a hierarchy, as everywhere else.
      if (c == "cpuacct") {
        continue;
      }
      const bool cpu = c == "cpu";
      plan.push_back({"cgroup", cpu ? "/sys/fs/cgroup/cpu,cpuacct" : "/sys/fs/cgroup/" + c,
                      "cgroup", nsx, cpu ? "cpu,cpuacct" : c, true});
    }
  }
  return plan;
}

/// Creates each target and mounts it; already-mounted targets (EBUSY) are fine.
template <mounter M>
status apply_init_mounts(M& m, const std::vector<init_mount>& plan, const logging::logger& log) {
  for (const auto& p : plan) {
    std::error_code ec;
    std::filesystem::create_directories(p.target, ec);
    auto r = m.mount(p.source, p.target, p.fstype, p.flags, p.data);
    if (!r && p.fallback_data && r.error().code == std::errc::invalid_argument) {
      r = m.mount(p.source, p.target, p.fstype, p.flags, *p.fallback_data);
    }
    if (!r && r.error().code != std::errc::device_or_resource_busy) {
      if (!p.optional) {
        return r;
      }
      log.warn("optional mount failed", {{"target", p.target}, {"error", r.error()}});
    }
  }
  return {};
}

/// The links devtmpfs lacks (/dev/fd, stdin, stdout, stderr, ptmx -> pts/ptmx).
inline void make_dev_links(const std::filesystem::path& dev = "/dev") {
  const std::pair<const char*, const char*> links[] = {{"/proc/self/fd", "fd"},
                                                       {"/proc/self/fd/0", "stdin"},
                                                       {"/proc/self/fd/1", "stdout"},
                                                       {"/proc/self/fd/2", "stderr"}};
  for (const auto& [target, name] : links) {
    (void)::symlink(target, (dev / name).c_str());
  }
}

/// v2: delegates every available controller to child cgroups (cgroup.subtree_control).
inline status enable_cgroup_v2_controllers(const std::filesystem::path& root = "/sys/fs/cgroup") {
  const auto available = KATANA_TRY(detail::read_small_file(root / "cgroup.controllers"));
  std::string request;
  std::string_view rest = detail::trim(available);
  while (!rest.empty()) {
    const auto sp = rest.find(' ');
    request += str_cat(request.empty() ? "" : " ", "+", rest.substr(0, sp));
    rest = sp == std::string_view::npos ? std::string_view{} : rest.substr(sp + 1);
  }
  if (request.empty()) {
    return {};
  }
  return detail::write_small_file(root / "cgroup.subtree_control", request);
}

/// agent.debug_console: a shell on the console (respawned by the caller when it exits).
inline result<pid_t> spawn_debug_console(const std::string& shell = "/bin/sh",
                                         const std::string& tty = "/dev/console") {
  if (::access(shell.c_str(), X_OK) != 0) {
    return fail_errno("debug console: " + shell);
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    return fail_errno("fork");
  }
  if (pid == 0) {
    ::setsid();
    const int fd = ::open(tty.c_str(), O_RDWR);
    if (fd < 0) {
      ::_exit(126);
    }
    ::ioctl(fd, TIOCSCTTY, 1);
    ::dup2(fd, 0);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    sigset_t all;
    ::sigemptyset(&all);
    ::sigprocmask(SIG_SETMASK, &all, nullptr);
    const char* argv[] = {shell.c_str(), nullptr};
    ::execv(shell.c_str(), const_cast<char* const*>(argv));  // NOLINT
    ::_exit(127);
  }
  return pid;
}

/// Whether "/" may be the kernel's initial rootfs: ramfs, or tmpfs when the kernel has it (for
/// PID 1 started from an initramfs, it is). A process whose root is rootfs cannot
/// pivot_root(2) (EINVAL: the root mount has no parent), so containers could not start.
inline bool root_may_be_initramfs() noexcept {
  struct statfs s {};
  return ::statfs("/", &s) == 0 && (s.f_type == static_cast<decltype(s.f_type)>(RAMFS_MAGIC) ||
                                    s.f_type == static_cast<decltype(s.f_type)>(TMPFS_MAGIC));
}

/// Gives "/" a parent mount so that containers can pivot_root(2) away from it: binds "/" on
/// `newroot`, moves that bind onto "/" and chroots into it (switch_root(8)'s last steps,
/// without copying the initramfs into a tmpfs first; that cost ~20 ms under TCG).
inline status rebind_root(const std::string& newroot = "/newroot") {
  (void)::mkdir(newroot.c_str(), 0700);
  if (::mount("/", newroot.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    return fail_errno("bind / on " + newroot);
  }
  if (::chdir(newroot.c_str()) != 0 || ::mount(".", "/", nullptr, MS_MOVE, nullptr) != 0 ||
      ::chroot(".") != 0 || ::chdir("/") != 0) {
    return fail_errno("move the bind of / from " + newroot + " onto /");
  }
  (void)::rmdir(newroot.c_str());  // no longer a mount point
  return {};
}

/// Flushes filesystems and powers the guest off (PID 1 only; returns only on failure).
inline status power_off() {
  ::sync();
  if (::reboot(RB_POWER_OFF) != 0) {
    return fail_errno("reboot(RB_POWER_OFF)");
  }
  return {};
}

}  // namespace katana::inline v0::agent
