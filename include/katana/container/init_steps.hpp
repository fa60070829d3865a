// init_steps: the container init's rootfs and process-attribute steps (mounts, pivot_root,
// masked/readonly paths, credentials, seccomp, exec), run by init_process (init.hpp) after
// clone. The same rules hold: noexcept, no allocation, no exceptions, only async-signal-safe
// libc; failures are reported as init_failure {errno, what, path}.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <katana/config.hpp>
#include <katana/container/init_config.hpp>
#include <katana/container/init_syscall.hpp>
#include <katana/container/syscalls.hpp>

namespace katana::inline v0::container {

template <syscalls S>
class init_steps {
 public:
  init_steps(S& sys, const init_config& cfg) noexcept : s_(sys), c_(cfg) {}

  int root_fd() const noexcept { return root_fd_; }

  // ---- rootfs, before pivot_root ----------------------------------------------------------

  /// Propagation of "/", the rootfs bound onto itself, every planned mount, /dev contents.
  bool prepare_rootfs(init_failure& f) noexcept {
    using init_detail::fail;
    if (const int rc = s_.mount(nullptr, "/", nullptr, c_.root_propagation, nullptr); rc < 0) {
      return fail(f, rc, "make / rslave/rprivate", "/");
    }
    if (c_.rootfs_parent_mount != nullptr) {
      const int rc = s_.mount(nullptr, c_.rootfs_parent_mount, nullptr, MS_PRIVATE, nullptr);
      if (rc < 0) {
        return fail(f, rc, "make the rootfs' mount private", c_.rootfs_parent_mount);
      }
    }
    if (const int rc = s_.mount(c_.rootfs, c_.rootfs, nullptr, MS_BIND | MS_REC, nullptr); rc < 0) {
      return fail(f, rc, "bind the rootfs onto itself", c_.rootfs);
    }
    root_fd_ = s_.openat(AT_FDCWD, c_.rootfs, O_PATH | O_DIRECTORY, 0);
    if (root_fd_ < 0) {
      return fail(f, root_fd_, "open rootfs", c_.rootfs);
    }
    for (const mount_step& m : c_.mounts) {
      if (!mount_one(m, f)) {
        return false;
      }
    }
    if (c_.setup_dev) {
      for (const symlink_step& l : c_.symlinks) {
        if (!make_symlink(l, f)) {
          return false;
        }
      }
    }
    for (const device_step& d : c_.devices) {
      if (!make_device(d, f)) {
        return false;
      }
    }
    return true;
  }

  /// runc's pivot_root(".", ".") + umount2(".", MNT_DETACH): no temporary directory needed.
  bool pivot(init_failure& f) noexcept {
    using init_detail::fail;
    const int old_root = s_.openat(AT_FDCWD, "/", O_DIRECTORY | O_RDONLY, 0);
    if (old_root < 0) {
      return fail(f, old_root, "open old root", "/");
    }
    int rc = s_.fchdir(root_fd_);
    if (rc < 0) {
      s_.close(old_root);
      return fail(f, rc, "chdir to rootfs", c_.rootfs);
    }
    rc = s_.pivot_root(".", ".");
    if (rc == -EINVAL) {
      // The current root is an initramfs (katana-agent as PID 1 in a guest), which pivot_root
      // refuses: move the rootfs over "/" and chroot into it, as switch_root does.
      s_.close(old_root);
      if (rc = s_.mount(".", "/", nullptr, MS_MOVE, nullptr); rc < 0) {
        return fail(f, rc, "move rootfs onto / (initramfs root)", c_.rootfs);
      }
      if (rc = s_.chroot("."); rc < 0) {
        return fail(f, rc, "chroot", c_.rootfs);
      }
      if (rc = s_.chdir("/"); rc < 0) {
        return fail(f, rc, "chdir", "/");
      }
      return reopen_root(f);
    }
    if (rc < 0) {
      s_.close(old_root);
      return fail(f, rc, "pivot_root", c_.rootfs);
    }
    rc = s_.fchdir(old_root);
    s_.close(old_root);
    if (rc < 0) {
      return fail(f, rc, "chdir to old root", "/");
    }
    // The old root must not propagate the detach to the host.
    if (rc = s_.mount(nullptr, ".", nullptr, MS_SLAVE | MS_REC, nullptr); rc < 0) {
      return fail(f, rc, "make old root rslave", "/");
    }
    if (rc = s_.umount2(".", MNT_DETACH); rc < 0) {
      return fail(f, rc, "unmount old root", "/");
    }
    if (rc = s_.chdir("/"); rc < 0) {
      return fail(f, rc, "chdir", "/");
    }
    return reopen_root(f);
  }

  // After the root changed: the root descriptor and the rootfs propagation.
  bool reopen_root(init_failure& f) noexcept {
    using init_detail::fail;
    int rc = 0;
    s_.close(root_fd_);
    root_fd_ = s_.openat(AT_FDCWD, "/", O_PATH | O_DIRECTORY, 0);
    if (root_fd_ < 0) {
      return fail(f, root_fd_, "open new root", "/");
    }
    if (c_.rootfs_propagation != 0) {
      if (rc = s_.mount(nullptr, "/", nullptr, c_.rootfs_propagation, nullptr); rc < 0) {
        return fail(f, rc, "set rootfsPropagation on", "/");
      }
    }
    return true;
  }

  // ---- rootfs, after pivot_root -------------------------------------------------------------

  /// Read-only root, hostname, sysctls, readonly and masked paths.
  bool finalize_rootfs(init_failure& f) noexcept {
    using init_detail::fail;
    if (!make_cwd(f)) {
      return false;
    }
    if (c_.readonly_root) {
      const unsigned long flags = MS_BIND | MS_REMOUNT | MS_RDONLY;
      int rc = s_.mount(nullptr, "/", nullptr, flags, nullptr);
      if (rc == -EPERM) {
        rc = s_.mount(nullptr, "/", nullptr, flags | init_detail::locked_flags(root_fd_), nullptr);
      }
      if (rc < 0) {
        return fail(f, rc, "remount / read-only", "/");
      }
    }
    if (c_.hostname != nullptr) {
      if (const int rc = s_.sethostname(c_.hostname, std::strlen(c_.hostname)); rc < 0) {
        return fail(f, rc, "sethostname", c_.hostname);
      }
    }
    if (c_.domainname != nullptr) {
      if (const int rc = s_.setdomainname(c_.domainname, std::strlen(c_.domainname)); rc < 0) {
        return fail(f, rc, "setdomainname", c_.domainname);
      }
    }
    for (const sysctl_step& sc : c_.sysctls) {
      const int fd = s_.open_in_root(root_fd_, sc.path, O_WRONLY | O_TRUNC, 0);
      if (fd < 0) {
        return fail(f, fd, "open sysctl", "/", sc.path);
      }
      const int rc = s_.write(fd, sc.value, std::strlen(sc.value));
      s_.close(fd);
      if (rc < 0) {
        return fail(f, rc, "write sysctl", "/", sc.path);
      }
    }
    for (const char* p : c_.readonly_paths) {
      if (!readonly_path(p, f)) {
        return false;
      }
    }
    for (const char* p : c_.masked_paths) {
      if (!mask_path(p, f)) {
        return false;
      }
    }
    return true;
  }

  // ---- process attributes -------------------------------------------------------------------

  /// A missing process.cwd is made (0755, as root, before the root turns read-only), as
  /// runc's MkdirAll does; resolved in the root, so `..` and symlinks stay inside.
  bool make_cwd(init_failure& f) noexcept {
    const char* rel = c_.cwd;
    if (rel == nullptr) {
      return true;
    }
    while (*rel == '/') {
      ++rel;
    }
    if (*rel == '\0') {
      return true;
    }
    int fd = s_.open_in_root(root_fd_, rel, O_PATH, 0);
    if (fd == -ENOENT) {
      fd = open_destination(rel, false, f, cwd_words);
      if (fd < 0) {
        return false;
      }
    }
    // Any other lookup error is chdir's to report, as the container's user.
    if (fd >= 0) {
      s_.close(fd);
    }
    return true;
  }

  /// rlimits, oom_score_adj, personality, umask and no_new_privs: the steps that need the
  /// capabilities the user switch drops.
  bool process_attributes(init_failure& f) noexcept {
    using init_detail::fail;
    for (const rlimit_step& r : c_.rlimits) {
      if (const int rc = s_.prlimit(r.resource, r.soft, r.hard); rc < 0) {
        char n[24];
        return fail(f, rc, "setrlimit", "resource ", init_detail::format_int(n, r.resource));
      }
    }
    if (c_.oom_score_adj != nullptr) {
      const int fd = s_.openat(AT_FDCWD, "/proc/self/oom_score_adj", O_WRONLY | O_TRUNC, 0);
      int rc = fd;
      if (fd >= 0) {
        rc = s_.write(fd, c_.oom_score_adj, std::strlen(c_.oom_score_adj));
        s_.close(fd);
      }
      if (rc < 0) {
        return fail(f, rc, "write", "/proc/self/oom_score_adj");
      }
    }
    if (c_.personality >= 0) {
      if (const int rc = s_.personality(static_cast<unsigned long>(c_.personality)); rc < 0) {
        return fail(f, rc, "personality", nullptr);
      }
    }
    s_.umask(static_cast<mode_t>(c_.umask >= 0 ? c_.umask : 022));
    if (c_.no_new_privileges) {
      if (const int rc = s_.prctl(PR_SET_NO_NEW_PRIVS, 1, 0); rc < 0) {
        return fail(f, rc, "prctl(PR_SET_NO_NEW_PRIVS)", nullptr);
      }
    }
    return true;
  }

  /// Bounding set, user and groups (keeping capabilities across setuid), the other four
  /// capability sets, then the working directory.
  bool credentials(init_failure& f) noexcept {
    using init_detail::fail;
    if (c_.set_caps) {
      if (const int rc = s_.drop_bounding(c_.caps); rc < 0) {
        return fail(f, rc, "drop capabilities from the bounding set", nullptr);
      }
      if (const int rc = s_.prctl(PR_SET_KEEPCAPS, 1, 0); rc < 0) {
        return fail(f, rc, "prctl(PR_SET_KEEPCAPS)", nullptr);
      }
    }
    if (c_.set_groups) {
      if (const int rc = s_.setgroups(c_.groups.size(), c_.groups.data()); rc < 0) {
        return fail(f, rc, "setgroups", nullptr);
      }
    }
    char n[24];
    if (const int rc = s_.setresgid(c_.gid, c_.gid, c_.gid); rc < 0) {
      return fail(f, rc, "setresgid", "gid ", init_detail::format_int(n, c_.gid));
    }
    if (const int rc = s_.setresuid(c_.uid, c_.uid, c_.uid); rc < 0) {
      return fail(f, rc, "setresuid", "uid ", init_detail::format_int(n, c_.uid));
    }
    if (c_.set_caps) {
      if (const int rc = s_.prctl(PR_SET_KEEPCAPS, 0, 0); rc < 0) {
        return fail(f, rc, "prctl(PR_SET_KEEPCAPS)", nullptr);
      }
      if (const int rc = s_.set_capabilities(c_.caps); rc < 0) {
        return fail(f, rc, "set capabilities", nullptr);
      }
    }
    if (const int rc = s_.chdir(c_.cwd); rc < 0) {
      return fail(f, rc, "chdir to cwd", c_.cwd);
    }
    // A cwd reached through a directory fd of the runtime's (/proc/self/fd/N) lies outside the
    // root, which the kernel's getcwd says as "(unreachable)/..." (runc's CVE-2024-21626 check).
    char cwd[4096];
    if (const int rc = s_.getcwd(cwd, sizeof cwd); rc < 0) {
      return fail(f, rc, "getcwd after chdir to cwd", c_.cwd);
    }
    if (cwd[0] != '/') {
      return fail(f, -EPERM, "cwd is outside the container's root (possible breakout)", c_.cwd);
    }
    return true;
  }

  /// Loads the filter. With SECCOMP_FILTER_FLAG_NEW_LISTENER the kernel returns the notify fd,
  /// which goes to linux.seccomp.listenerPath with the container process state (read from
  /// `listener_state`, a memfd the parent prepared) as the message, as runc does.
  bool load_seccomp(init_failure& f, int listener_state = -1) noexcept {
    if (c_.seccomp == nullptr) {
      return true;
    }
    const int rc = s_.seccomp_load(c_.seccomp, c_.seccomp_flags);
    if (rc < 0) {
      return init_detail::fail(f, rc, "load seccomp filter", nullptr);
    }
    if (rc > 0 && c_.seccomp_listener >= 0) {
      char state[16384]{};
      const ssize_t n =
          listener_state >= 0 ? ::pread(listener_state, state, sizeof state - 1, 0) : -1;
      if (n <= 0) {
        return init_detail::fail(f, n < 0 ? errno : ENODATA, "read seccomp listener state",
                                 nullptr);
      }
      const int sent = init_detail::send_fd(c_.seccomp_listener, state, rc);
      s_.close(c_.seccomp_listener);
      if (sent < 0) {
        return init_detail::fail(f, sent, "send seccomp notify fd to the listener", nullptr);
      }
    }
    if (rc > 0) {
      s_.close(rc);
    }
    return true;
  }

  /// runc's check before `create` returns: the executable exists in the container (as its
  /// user, from its cwd), so a missing command fails create (clients such as podman map
  /// "no such file or directory" to exit status 127) instead of the started container.
  bool find_executable(init_failure& f) noexcept {
    int err = ENOENT;
    for (const char* cand : c_.exec_candidates) {
      const int fd = s_.openat(AT_FDCWD, cand, O_PATH, 0);
      if (fd >= 0) {
        s_.close(fd);
        return true;
      }
      if (fd != -ENOENT && fd != -ENOTDIR) {
        err = -fd;
      }
    }
    if (c_.argv[0] != nullptr && std::strchr(c_.argv[0], '/') != nullptr) {
      return init_detail::fail(f, err, "exec: stat", c_.argv[0]);
    }
    return init_detail::fail(f, err, "exec: executable file not found in $PATH", c_.argv[0]);
  }

  /// execve of each PATH candidate in turn; returns only on failure.
  bool exec(init_failure& f) noexcept {
    int err = ENOENT;
    for (const char* cand : c_.exec_candidates) {
      const int rc = s_.execve(cand, c_.argv, c_.envp);
      if (rc == -EACCES) {
        err = EACCES;
      } else if (rc != -ENOENT && rc != -ENOTDIR) {
        return init_detail::fail(f, rc, "exec", cand);
      }
    }
    if (c_.argv[0] != nullptr && std::strchr(c_.argv[0], '/') != nullptr) {
      return init_detail::fail(f, err, "exec", c_.argv[0]);
    }
    return init_detail::fail(f, err, "exec: executable file not found in $PATH", c_.argv[0]);
  }

 private:
  /// What open_destination's failures say.
  struct destination_words {
    const char* open;
    const char* create;
  };
  static constexpr destination_words mount_point_words{"open mount point", "create mount point"};
  static constexpr destination_words cwd_words{"open cwd", "create cwd"};

  /// Opens the mount point `rel` below the root (creating it, and its parents, as needed)
  /// resolved with RESOLVE_IN_ROOT: a symlink cannot lead outside the rootfs.
  int open_destination(const char* rel,
                       bool file,
                       init_failure& f,
                       destination_words words = mount_point_words) noexcept {
    using init_detail::fail;
    int fd = s_.open_in_root(root_fd_, rel, O_PATH, 0);
    if (fd != -ENOENT) {
      if (fd < 0) {
        fail(f, fd, words.open, c_.rootfs, "/", rel);
      }
      return fd;
    }
    char buf[4096]{};
    init_detail::append(buf, sizeof buf, rel);
    if (std::strlen(buf) != std::strlen(rel)) {
      fail(f, ENAMETOOLONG, words.open, c_.rootfs, "/", rel);
      return -ENAMETOOLONG;
    }
    // Create each missing component relative to its parent, which is itself opened in root.
    int parent = -1;
    char* start = buf;
    for (;;) {
      char* slash = std::strchr(start, '/');
      const bool last = slash == nullptr;
      if (slash == start) {  // "a//b": nothing to make
        start = slash + 1;
        continue;
      }
      if (!last) {
        *slash = '\0';
      }
      int cur = s_.open_in_root(root_fd_, buf, O_PATH, 0);
      if (cur == -ENOENT) {
        const int dir = parent >= 0 ? parent : root_fd_;
        int rc = 0;
        if (last && file) {
          rc = s_.openat(dir, start, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW, 0644);
          if (rc >= 0) {
            s_.close(rc);
          }
        } else {
          rc = s_.mkdirat(dir, start, 0755);
        }
        if (rc < 0 && rc != -EEXIST) {
          if (parent >= 0) {
            s_.close(parent);
          }
          fail(f, rc, words.create, c_.rootfs, "/", buf);
          return rc;
        }
        // EEXIST with ENOENT above: a dangling symlink; resolving it stays in the root, but
        // creating its target is the parent's job (scoped_mkdir_all), so report it.
        cur = s_.open_in_root(root_fd_, buf, O_PATH, 0);
      }
      if (parent >= 0) {
        s_.close(parent);
      }
      if (cur < 0) {
        fail(f, cur, words.open, c_.rootfs, "/", buf);
        return cur;
      }
      if (last) {
        return cur;
      }
      parent = cur;
      *slash = '/';
      start = slash + 1;
    }
  }

  /// The host path of the init's own cgroup in the hierarchy mounted at m.source: its line of
  /// /proc/self/cgroup (read now, after the parent placed the init), below the mount's root.
  bool own_cgroup(const mount_step& m, char* out, std::size_t cap, init_failure& f) noexcept {
    using init_detail::fail;
    char text[8192]{};
    const int fd = s_.openat(AT_FDCWD, "/proc/self/cgroup", O_RDONLY, 0);
    if (fd < 0) {
      return fail(f, fd, "open", "/proc/self/cgroup");
    }
    std::size_t len = 0;
    int n = 0;
    while (len + 1 < sizeof text && (n = s_.read(fd, text + len, sizeof text - 1 - len)) > 0) {
      len += static_cast<std::size_t>(n);
    }
    s_.close(fd);
    if (n < 0) {
      return fail(f, n, "read", "/proc/self/cgroup");
    }
    const char* path = init_detail::find_cgroup_path(text, m.cgroup_controllers);
    if (path == nullptr) {
      return fail(f, ENOENT, "find the cgroup of hierarchy", m.source, " in /proc/self/cgroup");
    }
    const std::size_t root = std::strlen(m.cgroup_root);
    if (std::strcmp(m.cgroup_root, "/") != 0) {
      if (std::strncmp(path, m.cgroup_root, root) != 0 || (path[root] != '/' && path[root] != 0)) {
        return fail(f, EINVAL, "cgroup outside the mount's root", m.source, " ", path);
      }
      path += root;
    }
    out[0] = '\0';
    init_detail::append(out, cap, m.source);
    if (std::strcmp(path, "/") != 0) {
      init_detail::append(out, cap, path);
    }
    if (std::strlen(out) + 1 >= cap) {
      return fail(f, ENAMETOOLONG, "cgroup path", m.source, path);
    }
    return true;
  }

  /// Bind-remounts an earlier mount with m.flags (the cgroup tmpfs, read-only once filled).
  bool remount(const mount_step& m, init_failure& f) noexcept {
    using init_detail::fail;
    const int fd = s_.open_in_root(root_fd_, m.destination, O_PATH, 0);
    if (fd < 0) {
      return fail(f, fd, "open mount", c_.rootfs, "/", m.destination);
    }
    const init_detail::fd_path target(fd);
    const unsigned long flags = MS_BIND | MS_REMOUNT | m.flags;
    int rc = s_.mount(nullptr, target.c_str(), nullptr, flags, nullptr);
    if (rc == -EPERM) {
      rc = s_.mount(nullptr, target.c_str(), nullptr, flags | init_detail::locked_flags(fd),
                    nullptr);
    }
    s_.close(fd);
    return rc < 0 ? fail(f, rc, "remount", c_.rootfs, "/", m.destination) : true;
  }

  bool mount_one(const mount_step& m, init_failure& f) noexcept {
    using init_detail::fail;
    if (m.kind == mount_kind::symlink) {
      return make_symlink({m.source, m.destination}, f);
    }
    if (m.kind == mount_kind::remount) {
      return remount(m, f);
    }
    const char* source = m.source;
    char own[512];
    if (m.kind == mount_kind::cgroup_bind) {
      if (!own_cgroup(m, own, sizeof own, f)) {
        return false;
      }
      source = own;
    }
    const bool bind = m.kind == mount_kind::bind || m.kind == mount_kind::cgroup_bind;
    const bool file = bind && m.file;
    const int fd = open_destination(m.destination, file, f);
    if (fd < 0) {
      return false;
    }
    const init_detail::fd_path target(fd);
    int rc = 0;
    if (bind) {
      rc = s_.mount(source, target.c_str(), nullptr,
                    MS_BIND | (m.recursive ? static_cast<unsigned long>(MS_REC) : 0UL), nullptr);
    } else {
      rc = s_.mount(m.source, target.c_str(), m.fstype, m.flags, m.data);
      if (rc == -EPERM && m.sysfs_fallback) {
        // No sysfs of our own (a user namespace without a network namespace): the host's.
        rc = s_.mount("/sys", target.c_str(), nullptr, MS_BIND | MS_REC, nullptr);
        if (rc >= 0 && (m.flags & MS_RDONLY) != 0) {
          rc = s_.mount(nullptr, target.c_str(), nullptr,
                        MS_BIND | MS_REMOUNT | MS_REC | MS_RDONLY | m.flags, nullptr);
        }
      }
    }
    s_.close(fd);
    if (rc < 0) {
      return fail(f, rc, bind ? "bind mount" : "mount", source, " on ", c_.rootfs, "/",
                  m.destination);
    }
    // The new mount: reopened, since the old fd names the directory underneath.
    const int mfd = s_.open_in_root(root_fd_, m.destination, O_PATH, 0);
    if (mfd < 0) {
      return fail(f, mfd, "open mount", c_.rootfs, "/", m.destination);
    }
    const init_detail::fd_path mounted(mfd);
    if (bind && m.remount) {
      const unsigned long flags =
          MS_BIND | MS_REMOUNT | (m.recursive ? static_cast<unsigned long>(MS_REC) : 0UL) | m.flags;
      rc = s_.mount(nullptr, mounted.c_str(), nullptr, flags, nullptr);
      if (rc == -EPERM) {
        rc = s_.mount(nullptr, mounted.c_str(), nullptr, flags | init_detail::locked_flags(mfd),
                      nullptr);
      }
      if (rc < 0) {
        s_.close(mfd);
        return fail(f, rc, "remount bind mount", c_.rootfs, "/", m.destination);
      }
    }
    for (const unsigned long p : m.propagation) {
      if (rc = s_.mount(nullptr, mounted.c_str(), nullptr, p, nullptr); rc < 0) {
        s_.close(mfd);
        return fail(f, rc, "set mount propagation on", c_.rootfs, "/", m.destination);
      }
    }
    if (m.attr_set != 0 || m.attr_clr != 0) {
      rc = s_.mount_setattr(mfd, "", AT_EMPTY_PATH | AT_RECURSIVE, m.attr_set, m.attr_clr, 0);
      if (rc < 0) {
        s_.close(mfd);
        return fail(f, rc, "mount_setattr", c_.rootfs, "/", m.destination);
      }
    }
    s_.close(mfd);
    return true;
  }

  /// Splits "dev/pts/x" into an fd of "dev/pts" (created) and "x".
  int open_parent(const char* rel, const char*& name, init_failure& f) noexcept {
    const char* slash = std::strrchr(rel, '/');
    if (slash == nullptr) {
      name = rel;
      return s_.openat(root_fd_, ".", O_PATH | O_DIRECTORY, 0);
    }
    char dir[400]{};
    const auto len = static_cast<std::size_t>(slash - rel);
    if (len + 1 > sizeof dir) {
      init_detail::fail(f, ENAMETOOLONG, "open", c_.rootfs, "/", rel);
      return -ENAMETOOLONG;
    }
    std::memcpy(dir, rel, len);
    name = slash + 1;
    return open_destination(dir, false, f);
  }

  bool make_symlink(const symlink_step& l, init_failure& f) noexcept {
    const char* name = nullptr;
    const int dir = open_parent(l.path, name, f);
    if (dir < 0) {
      return false;
    }
    const int rc = s_.symlinkat(l.target, dir, name);
    s_.close(dir);
    if (rc < 0 && rc != -EEXIST) {
      return init_detail::fail(f, rc, "symlink", c_.rootfs, "/", l.path);
    }
    return true;
  }

  bool make_device(const device_step& d, init_failure& f) noexcept {
    using init_detail::fail;
    if (c_.bind_devices) {
      // mknod is not allowed in a user namespace: bind the host's node instead.
      const int fd = open_destination(d.path, true, f);
      if (fd < 0) {
        return false;
      }
      const init_detail::fd_path target(fd);
      const int rc = s_.mount(d.host_path, target.c_str(), nullptr, MS_BIND, nullptr);
      s_.close(fd);
      return rc < 0 ? fail(f, rc, "bind device", d.host_path, " on ", c_.rootfs, "/", d.path)
                    : true;
    }
    const char* name = nullptr;
    const int dir = open_parent(d.path, name, f);
    if (dir < 0) {
      return false;
    }
    int rc = s_.mknodat(dir, name, d.mode, d.dev);
    if (rc == -EEXIST) {
      rc = 0;  // an existing node (rootfs without a /dev tmpfs) is kept, as runc does
    }
    if (rc >= 0) {
      const int node = s_.openat(dir, name, O_PATH | O_NOFOLLOW, 0);
      rc = node < 0 ? node : s_.fchown(node, d.uid, d.gid);
      if (node >= 0) {
        s_.close(node);
      }
    }
    s_.close(dir);
    return rc < 0 ? fail(f, rc, "mknod", c_.rootfs, "/", d.path) : true;
  }

  bool readonly_path(const char* path, init_failure& f) noexcept {
    using init_detail::fail;
    const int fd = s_.open_in_root(root_fd_, path, O_PATH, 0);
    if (fd == -ENOENT) {
      return true;
    }
    if (fd < 0) {
      return fail(f, fd, "open readonly path", path);
    }
    const init_detail::fd_path p(fd);
    int rc = s_.mount(p.c_str(), p.c_str(), nullptr, MS_BIND | MS_REC, nullptr);
    s_.close(fd);
    if (rc < 0) {
      return fail(f, rc, "bind readonly path", path);
    }
    const int mfd = s_.open_in_root(root_fd_, path, O_PATH, 0);
    if (mfd < 0) {
      return fail(f, mfd, "open readonly path", path);
    }
    const init_detail::fd_path m(mfd);
    const unsigned long flags = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC;
    rc = s_.mount(nullptr, m.c_str(), nullptr, flags, nullptr);
    if (rc == -EPERM) {
      rc = s_.mount(nullptr, m.c_str(), nullptr, flags | init_detail::locked_flags(mfd), nullptr);
    }
    s_.close(mfd);
    return rc < 0 ? fail(f, rc, "remount readonly path", path) : true;
  }

  bool mask_path(const char* path, init_failure& f) noexcept {
    using init_detail::fail;
    const int fd = s_.open_in_root(root_fd_, path, O_PATH, 0);
    if (fd == -ENOENT) {
      return true;
    }
    if (fd < 0) {
      return fail(f, fd, "open masked path", path);
    }
    struct stat st {};
    const bool dir = ::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
    const init_detail::fd_path p(fd);
    const int rc = dir ? s_.mount("tmpfs", p.c_str(), "tmpfs", MS_RDONLY, nullptr)
                       : s_.mount("/dev/null", p.c_str(), nullptr, MS_BIND, nullptr);
    s_.close(fd);
    return rc < 0 ? fail(f, rc, "mask path", path) : true;
  }

  S& s_;
  const init_config& c_;
  int root_fd_ = -1;
};

}  // namespace katana::inline v0::container
