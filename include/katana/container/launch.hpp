// The parent's side of starting a container init (init.hpp): socketpair, clone, the sync
// protocol (id maps, cgroup placement, runtime hooks), and the init's errors as katana::error
// ("mount proc on /run/x/rootfs/proc: Operation not permitted").
#pragma once

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <functional>
#include <string>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <utility>
#include <vector>

#include <katana/config.hpp>
#include <katana/container/init.hpp>
#include <katana/container/init_config.hpp>
#include <katana/container/syscalls.hpp>
#include <katana/core/error.hpp>
#include <katana/core/scope_exit.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/try.hpp>
#include <katana/core/unique_fd.hpp>

namespace katana::inline v0::container {

/// A started process: its pid (in the caller's pid namespace), a pidfd, and for a created
/// container the sync socket that reports an exec failure after `start`.
struct process_handle {
  int pid = 0;
  unique_fd pidfd;
  unique_fd sync;
};

/// What the parent does at each sync point. Every callback may be empty.
struct launch_callbacks {
  /// "Place this pid in the container's cgroups" (the cgroup manager plugs in here).
  std::function<status(int pid)> join_cgroups;
  /// prestart + createRuntime hooks, after the rootfs is mounted and before pivot_root.
  std::function<status(int pid)> create_runtime;
  /// Descriptors the init reads: [createContainer hook state, startContainer hook state,
  /// seccomp listener message].
  std::function<result<std::vector<unique_fd>>(int pid)> hook_states;
};

inline int pidfd_open(int pid) noexcept {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

/// waitpid for a child, retrying EINTR; the raw status.
inline result<int> wait_child(int pid) {
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0) {
    if (errno != EINTR) {
      return fail_errno(str_cat("waitpid ", pid));
    }
  }
  return st;
}

/// A wait status as an exit code: the code, or 128 + signal.
inline int exit_code(int wait_status) {
  if (WIFEXITED(wait_status)) {
    return WEXITSTATUS(wait_status);
  }
  if (WIFSIGNALED(wait_status)) {
    return 128 + WTERMSIG(wait_status);
  }
  return 255;
}

namespace detail {

inline status write_proc_file(int pid, std::string_view name, std::string_view text) {
  const std::string path = str_cat("/proc/", pid, "/", name);
  unique_fd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) {
    return fail_errno("open " + path);
  }
  if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    return fail_errno("write " + path);
  }
  return {};
}

inline status send_sync(int sock, sync_type t, const std::vector<unique_fd>& fds = {}) {
  sync_message m;
  m.type = t;
  iovec iov{&m, sizeof m};
  msghdr h{};
  h.msg_iov = &iov;
  h.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)]{};
  if (!fds.empty()) {
    if (fds.size() > 4) {
      return fail(errc::internal, "sync: too many descriptors");
    }
    h.msg_control = control;
    h.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&h);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    for (std::size_t i = 0; i < fds.size(); ++i) {
      const int fd = fds[i].get();
      std::memcpy(CMSG_DATA(c) + i * sizeof(int), &fd, sizeof fd);
    }
  }
  while (::sendmsg(sock, &h, MSG_NOSIGNAL) < 0) {
    if (errno != EINTR) {
      return fail_errno("sync: send to container init");
    }
  }
  return {};
}

/// The init's failure report -> error.
inline error init_error(const sync_message& m) {
  const std::string what(m.what, ::strnlen(m.what, sizeof m.what));
  const std::string path(m.path, ::strnlen(m.path, sizeof m.path));
  return error(std::error_code(m.value, std::system_category()),
               path.empty() ? what : what + " " + path);
}

inline void kill_and_reap(int pid) {
  if (pid > 0) {
    ::kill(pid, SIGKILL);
    int st = 0;
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
  }
}

}  // namespace detail

/// Starts the init described by `p` and drives it until it execs (run, exec), blocks on the
/// exec FIFO (create), or fails. The returned pid is the caller's child.
template <syscalls S>
result<process_handle> launch(prepared_init& p, S& sys, const launch_callbacks& cb) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    return fail_errno("socketpair");
  }
  unique_fd parent_sock(sv[0]);
  unique_fd child_sock(sv[1]);
  p.config.sync_fd = child_sock.get();

  const pid_t stage1 = init_detail::clone3(0);
  if (stage1 < 0) {
    return fail_errno("clone container init", -stage1);
  }
  if (stage1 == 0) {
    init_process<S>(sys, p.config).stage1();
  }
  child_sock.reset();

  process_handle h;
  bool stage1_reaped = false;
  auto cleanup = scope_exit([&] {
    detail::kill_and_reap(h.pid);
    if (!stage1_reaped) {
      detail::kill_and_reap(stage1);
    }
  });
  int stage1_status = 0;
  const auto reap_stage1 = [&]() -> status {
    stage1_status = KATANA_TRY(wait_child(stage1));
    stage1_reaped = true;
    return {};
  };
  const bool create = p.config.exec_fifo >= 0;
  for (;;) {
    sync_message m;
    const int rc = init_detail::recv_message(parent_sock.get(), m);
    if (rc == -EPIPE) {
      if (h.pid > 0 && !create) {
        break;  // the socket closed on exec: the process runs
      }
      if (!stage1_reaped) {
        KATANA_TRY(reap_stage1());
      }
      return fail(errc::unavailable, h.pid > 0
                                         ? "container init exited during setup"
                                         : str_cat("container init (stage 1) exited with status ",
                                                   exit_code(stage1_status), " before starting"));
    }
    if (rc < 0) {
      return fail_errno("sync: receive from container init", -rc);
    }
    switch (m.type) {
      case sync_type::idmap_request: {
        if (!p.config.set_groups) {
          KATANA_TRY(detail::write_proc_file(stage1, "setgroups", "deny"));
        }
        KATANA_TRY(detail::write_proc_file(stage1, "uid_map", p.uid_map), "user namespace");
        KATANA_TRY(detail::write_proc_file(stage1, "gid_map", p.gid_map), "user namespace");
        KATANA_TRY(detail::send_sync(parent_sock.get(), sync_type::idmap_done));
        break;
      }
      case sync_type::child_pid: {
        h.pid = m.value;
        KATANA_TRY(reap_stage1());
        h.pidfd.reset(pidfd_open(h.pid));
        if (!h.pidfd) {
          return fail_errno(str_cat("pidfd_open ", h.pid));
        }
        if (cb.join_cgroups) {
          KATANA_TRY(cb.join_cgroups(h.pid), "cgroups");
        }
        std::vector<unique_fd> fds;
        if (cb.hook_states) {
          fds = KATANA_TRY(cb.hook_states(h.pid));
        }
        KATANA_TRY(detail::send_sync(parent_sock.get(), sync_type::go, fds));
        break;
      }
      case sync_type::hooks_request: {
        if (cb.create_runtime) {
          KATANA_TRY(cb.create_runtime(h.pid));
        }
        KATANA_TRY(detail::send_sync(parent_sock.get(), sync_type::hooks_done));
        break;
      }
      case sync_type::created:
        if (!create) {
          return fail(errc::protocol_error, "sync: unexpected 'created' from container init");
        }
        h.sync = std::move(parent_sock);
        cleanup.release();
        return h;
      case sync_type::error:
        return unexpected(detail::init_error(m));
      default:
        return fail(errc::protocol_error,
                    str_cat("sync: unexpected message ", static_cast<std::uint32_t>(m.type)));
    }
  }
  cleanup.release();
  return h;
}

/// After `start` released a created init: EOF on its sync socket means it exec'd, a message
/// is its failure.
inline status await_exec(process_handle& h) {
  if (!h.sync) {
    return {};
  }
  sync_message m;
  const int rc = init_detail::recv_message(h.sync.get(), m);
  h.sync.reset();
  if (rc == -EPIPE) {
    return {};
  }
  if (rc < 0) {
    return fail_errno("sync: receive from container init", -rc);
  }
  if (m.type == sync_type::error) {
    return unexpected(detail::init_error(m));
  }
  return fail(errc::protocol_error, "sync: unexpected message after start");
}

}  // namespace katana::inline v0::container
