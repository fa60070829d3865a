// The container init: every line of code that runs between clone and exec lives here.
//
// Rules (helpers in init_syscall.hpp): noexcept, no allocation, no locks, no exceptions, no
// libc functions that are not async-signal-safe; it reads the init_config the parent prepared and
// reports failures as fixed-size sync_messages {errno, what, path} that the parent turns into
// katana::error.
//
// Process shape (runc's nsexec): the parent clones stage 1, which joins the namespaces given
// by path (a user namespace first), creates a user namespace (the parent writes its id maps),
// unshares the other new namespaces and clones stage 2 with CLONE_PARENT, so the container
// init (stage 2, PID 1 of a new pid namespace) is the parent's child. Stage 2 sets up the
// rootfs, the process attributes and execs.
#pragma once

#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <termios.h>
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
    return init_detail::fail(f, err, "exec: executable file not found in $PATH", c_.argv[0]);
  }

 private:
  /// Opens the mount point `rel` below the root (creating it, and its parents, as needed)
  /// resolved with RESOLVE_IN_ROOT: a symlink cannot lead outside the rootfs.
  int open_destination(const char* rel, bool file, init_failure& f) noexcept {
    using init_detail::fail;
    int fd = s_.open_in_root(root_fd_, rel, O_PATH, 0);
    if (fd != -ENOENT) {
      if (fd < 0) {
        fail(f, fd, "open mount point", c_.rootfs, "/", rel);
      }
      return fd;
    }
    char buf[400]{};
    init_detail::append(buf, sizeof buf, rel);
    if (std::strlen(buf) != std::strlen(rel)) {
      fail(f, ENAMETOOLONG, "open mount point", c_.rootfs, "/", rel);
      return -ENAMETOOLONG;
    }
    // Create each missing component relative to its parent, which is itself opened in root.
    int parent = -1;
    char* start = buf;
    for (;;) {
      char* slash = std::strchr(start, '/');
      const bool last = slash == nullptr;
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
          fail(f, rc, "create mount point", c_.rootfs, "/", buf);
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
        fail(f, cur, "open mount point", c_.rootfs, "/", buf);
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

  bool mount_one(const mount_step& m, init_failure& f) noexcept {
    using init_detail::fail;
    const bool file = m.kind == mount_kind::bind && m.file;
    const int fd = open_destination(m.destination, file, f);
    if (fd < 0) {
      return false;
    }
    const init_detail::fd_path target(fd);
    int rc = 0;
    if (m.kind == mount_kind::bind) {
      rc = s_.mount(m.source, target.c_str(), nullptr,
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
      return fail(f, rc, m.kind == mount_kind::bind ? "bind mount" : "mount", m.source, " on ",
                  c_.rootfs, "/", m.destination);
    }
    // The new mount: reopened, since the old fd names the directory underneath.
    const int mfd = s_.open_in_root(root_fd_, m.destination, O_PATH, 0);
    if (mfd < 0) {
      return fail(f, mfd, "open mount", c_.rootfs, "/", m.destination);
    }
    const init_detail::fd_path mounted(mfd);
    if (m.kind == mount_kind::bind && m.remount) {
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

/// The whole init. Never returns: it execs or _exits.
template <syscalls S>
class init_process {
 public:
  init_process(S& sys, const init_config& cfg) noexcept : s_(sys), c_(cfg) {}

  /// Stage 1: namespaces; clones stage 2 and exits.
  [[noreturn]] void stage1() noexcept {
    using init_detail::fail;
    init_failure f;
    for (const ns_join& j : c_.joins) {
      if (const int rc = s_.setns(j.fd, j.type); rc < 0) {
        fail(f, rc, "setns", "namespace type ", ns_name(j.type));
        die(f);
      }
    }
    if (c_.new_user) {
      if (const int rc = s_.unshare(CLONE_NEWUSER); rc < 0) {
        fail(f, rc, "unshare", "user namespace");
        die(f);
      }
      sync_message m;
      if (!init_detail::send_type(c_.sync_fd, sync_type::idmap_request) ||
          init_detail::recv_message(c_.sync_fd, m) < 0 || m.type != sync_type::idmap_done) {
        ::_exit(1);
      }
      // Root of the new namespace (mapped by now), with its full capabilities.
      if (const int rc = s_.setresgid(0, 0, 0); rc < 0) {
        fail(f, rc, "setresgid", "0 in the new user namespace");
        die(f);
      }
      if (const int rc = s_.setresuid(0, 0, 0); rc < 0) {
        fail(f, rc, "setresuid", "0 in the new user namespace");
        die(f);
      }
    }
    if (c_.unshare_flags != 0) {
      if (const int rc = s_.unshare(c_.unshare_flags); rc < 0) {
        fail(f, rc, "unshare", "namespaces");
        die(f);
      }
    }
    const pid_t pid = init_detail::clone3(CLONE_PARENT);
    if (pid < 0) {
      fail(f, pid, "clone", "container init");
      die(f);
    }
    if (pid == 0) {
      stage2();
    }
    init_detail::send_type(c_.sync_fd, sync_type::child_pid, pid);
    ::_exit(0);
  }

 private:
  static const char* ns_name(int type) noexcept {
    switch (type) {
      case CLONE_NEWUSER:
        return "user";
      case CLONE_NEWNS:
        return "mount";
      case CLONE_NEWPID:
        return "pid";
      case CLONE_NEWNET:
        return "network";
      case CLONE_NEWUTS:
        return "uts";
      case CLONE_NEWIPC:
        return "ipc";
      case CLONE_NEWCGROUP:
        return "cgroup";
      default:
        return "time";
    }
  }

  /// Reports the failure to the parent (or, when it is gone, to stderr) and exits.
  [[noreturn]] void die(const init_failure& f) noexcept {
    sync_message m;
    m.type = sync_type::error;
    m.value = f.err;
    init_detail::append(m.what, sizeof m.what, f.what);
    init_detail::append(m.path, sizeof m.path, f.path);
    if (!init_detail::send_message(c_.sync_fd, m)) {
      char line[600] = "katana init: ";
      init_detail::append(line, sizeof line, f.what);
      init_detail::append(line, sizeof line, " ");
      init_detail::append(line, sizeof line, f.path);
      init_detail::append(line, sizeof line, ": ");
      init_detail::append(line, sizeof line, ::strerrordesc_np(f.err));
      init_detail::append(line, sizeof line, "\n");
      [[maybe_unused]] const auto n = ::write(2, line, std::strlen(line));
    }
    ::_exit(1);
  }

  bool run_hooks(std::span<const hook_step> hooks, int state_fd, init_failure& f) noexcept {
    for (const hook_step& h : hooks) {
      const hook_outcome r = run_hook(h, state_fd);
      char n[24];
      if (r.err == ETIMEDOUT) {
        return init_detail::fail(f, ETIMEDOUT, "hook", h.path, " timed out after ",
                                 init_detail::format_int(n, h.timeout), "s");
      }
      if (r.err != 0) {
        return init_detail::fail(f, r.err, "hook", h.path);
      }
      if (!r.ok()) {
        const bool exited = WIFEXITED(r.wait_status);
        return init_detail::fail(f, ECANCELED, "hook", h.path,
                                 exited ? " exited with status " : " killed by signal ",
                                 init_detail::format_int(n, exited ? WEXITSTATUS(r.wait_status)
                                                                   : WTERMSIG(r.wait_status)));
      }
    }
    return true;
  }

  /// Console: a pty from the container's devpts, master to the console socket, slave as the
  /// controlling terminal, stdio and /dev/console.
  bool setup_console(init_steps<S>& steps, init_failure& f) noexcept {
    using init_detail::fail;
    const int master = ::open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0) {
      return fail(f, errno, "open", "/dev/ptmx");
    }
    int unlock = 0;
    unsigned int ptn = 0;
    if (::ioctl(master, TIOCSPTLCK, &unlock) < 0 || ::ioctl(master, TIOCGPTN, &ptn) < 0) {
      return fail(f, errno, "unlock pty", "/dev/ptmx");
    }
    const int slave = ::ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0) {
      return fail(f, errno, "open pty peer", "/dev/ptmx");
    }
    if (c_.rows != 0 && c_.cols != 0) {
      winsize ws{};
      ws.ws_row = c_.rows;
      ws.ws_col = c_.cols;
      ::ioctl(master, TIOCSWINSZ, &ws);
    }
    char pts[40] = "/dev/pts/";
    char n[24];
    init_detail::append(pts, sizeof pts, init_detail::format_int(n, ptn));
    if (c_.setup_rootfs) {
      const int console = ::open("/dev/console", O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_WRONLY, 0600);
      if (console >= 0) {
        ::close(console);
      }
      if (const int rc = s_.mount(pts, "/dev/console", nullptr, MS_BIND, nullptr); rc < 0) {
        return fail(f, rc, "bind mount", pts, " on /dev/console");
      }
    }
    (void)steps;
    if (const int rc = init_detail::send_fd(c_.console_socket, "/dev/ptmx", master); rc < 0) {
      return fail(f, rc, "send pty master to the console socket", nullptr);
    }
    ::close(master);
    ::close(c_.console_socket);
    if (::setsid() < 0) {
      return fail(f, errno, "setsid", nullptr);
    }
    if (::ioctl(slave, TIOCSCTTY, 0) < 0) {
      return fail(f, errno, "make the pty the controlling terminal", pts);
    }
    for (int i = 0; i < 3; ++i) {
      if (::dup2(slave, i) < 0) {
        return fail(f, errno, "dup2 pty", pts);
      }
    }
    ::close(slave);
    return true;
  }

  /// Stage 2: the container init.
  [[noreturn]] void stage2() noexcept {
    using init_detail::fail;
    init_failure f;
    // Wait for the parent: cgroups joined, hook state documents attached.
    sync_message m;
    // [createContainer state, startContainer state, seccomp listener state]
    int state_fds[3] = {-1, -1, -1};
    if (init_detail::recv_message(c_.sync_fd, m, state_fds, 3) < 0 || m.type != sync_type::go) {
      ::_exit(1);
    }
    for (int i = 0; i < 3; ++i) {
      const int fd = c_.stdio[i];
      if (fd >= 0 && (fd == i ? ::fcntl(fd, F_SETFD, 0) : ::dup2(fd, i)) < 0) {
        fail(f, errno, "set up stdio", nullptr);
        die(f);
      }
    }
    if (c_.new_cgroup) {
      if (const int rc = s_.unshare(CLONE_NEWCGROUP); rc < 0) {
        fail(f, rc, "unshare", "cgroup namespace");
        die(f);
      }
    }
    s_.umask(0);
    init_steps<S> steps(s_, c_);
    if (c_.setup_rootfs) {
      if (!steps.prepare_rootfs(f)) {
        die(f);
      }
      // prestart and createRuntime hooks run in the runtime's namespaces, now.
      if (!init_detail::send_type(c_.sync_fd, sync_type::hooks_request) ||
          init_detail::recv_message(c_.sync_fd, m) < 0 || m.type != sync_type::hooks_done) {
        ::_exit(1);
      }
      if (!run_hooks(c_.create_container_hooks, state_fds[0], f)) {
        die(f);
      }
      if (!steps.pivot(f)) {
        die(f);
      }
    }
    if (c_.terminal && !setup_console(steps, f)) {
      die(f);
    }
    if (c_.setup_rootfs && !steps.finalize_rootfs(f)) {
      die(f);
    }
    if (!steps.process_attributes(f)) {
      die(f);
    }
    // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: before the capabilities go.
    if (!c_.no_new_privileges && !steps.load_seccomp(f, state_fds[2])) {
      die(f);
    }
    if (!steps.credentials(f)) {
      die(f);
    }
    if (steps.root_fd() >= 0) {
      s_.close(steps.root_fd());
    }
    if (c_.exec_fifo >= 0) {
      init_detail::send_type(c_.sync_fd, sync_type::created);
      // Blocks until `start` opens the FIFO for reading.
      const init_detail::fd_path fifo(c_.exec_fifo);
      int fd = -1;
      do {
        fd = ::open(fifo.c_str(), O_WRONLY | O_CLOEXEC);
      } while (fd < 0 && errno == EINTR);
      if (fd < 0) {
        fail(f, errno, "open exec fifo", nullptr);
        die(f);
      }
      [[maybe_unused]] const auto n = ::write(fd, "0", 1);
      ::close(fd);
      ::close(c_.exec_fifo);
    }
    if (!run_hooks(c_.start_container_hooks, state_fds[1], f)) {
      die(f);
    }
    // Nothing the runtime inherited reaches the container: every fd above stdio is
    // close-on-exec from here (runc's CloseExecFrom(3)).
    if (::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
      for (int fd = 3; fd < 4096; ++fd) {
        ::fcntl(fd, F_SETFD, FD_CLOEXEC);
      }
    }
    // As close to execve as possible.
    if (c_.no_new_privileges && !steps.load_seccomp(f, state_fds[2])) {
      die(f);
    }
    for (const int fd : state_fds) {
      if (fd >= 0) {
        ::close(fd);
      }
    }
    steps.exec(f);
    die(f);
  }

  S& s_;
  const init_config& c_;
};

}  // namespace katana::inline v0::container
