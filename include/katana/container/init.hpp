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
// rootfs, the process attributes and execs (the steps themselves: init_steps.hpp).
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
#include <katana/container/init_steps.hpp>
#include <katana/container/init_syscall.hpp>
#include <katana/container/syscalls.hpp>

namespace katana::inline v0::container {

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
    // A source that is another stdio number (stdout from the runtime's 2, stderr from its 1)
    // moves above 2 first, or the dup2 of an earlier one would replace it.
    int stdio[3] = {c_.stdio[0], c_.stdio[1], c_.stdio[2]};
    for (int i = 0; i < 3; ++i) {
      if (stdio[i] >= 0 && stdio[i] < 3 && stdio[i] != i) {
        stdio[i] = ::fcntl(stdio[i], F_DUPFD_CLOEXEC, 3);
      }
    }
    for (int i = 0; i < 3; ++i) {
      const int fd = stdio[i];
      if (c_.stdio[i] >= 0 && (fd < 0 || (fd == i ? ::fcntl(fd, F_SETFD, 0) : ::dup2(fd, i)) < 0)) {
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
    // Nothing the runtime holds reaches the container, not even as execve's path. Before any
    // seccomp filter (which may refuse close_range) and the container's rlimits. Kept, none a
    // directory outside the root: the sync socket (an exec failure goes back on it), the new
    // root, the exec FIFO, the hook and listener state memfds, the seccomp listener.
    init_detail::close_fds_except(3, {c_.sync_fd, steps.root_fd(), c_.exec_fifo, state_fds[0],
                                      state_fds[1], state_fds[2], c_.seccomp_listener, -1});
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
    if (!steps.find_executable(f)) {
      die(f);
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
