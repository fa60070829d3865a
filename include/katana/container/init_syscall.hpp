// The noexcept, allocation-free helpers of the post-fork code (init.hpp): string building in
// fixed buffers, clone3, the sync socket's fixed-size messages, SCM_RIGHTS, and the hook
// runner shared by the init and the runtime. Nothing here allocates or throws.
#pragma once

#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <katana/config.hpp>
#include <katana/container/init_config.hpp>

namespace katana::inline v0::container {

/// Where a step of the init failed.
struct init_failure {
  int err = 0;
  char what[96]{};
  char path[400]{};
};

namespace init_detail {

/// strlcat-like: appends `s` to the NUL-terminated `dst` of capacity `cap`, truncating.
inline void append(char* dst, std::size_t cap, const char* s) noexcept {
  if (s == nullptr) {
    return;
  }
  std::size_t n = 0;
  while (n < cap && dst[n] != '\0') {
    ++n;
  }
  while (*s != '\0' && n + 1 < cap) {
    dst[n++] = *s++;
  }
  if (n < cap) {
    dst[n] = '\0';
  }
}

/// Decimal text of `v` into `buf` (at least 24 bytes); returns buf.
inline char* format_int(char* buf, long long v) noexcept {
  char tmp[24];
  int n = 0;
  const bool neg = v < 0;
  unsigned long long u =
      neg ? 0ULL - static_cast<unsigned long long>(v) : static_cast<unsigned long long>(v);
  do {
    tmp[n++] = static_cast<char>('0' + u % 10);
    u /= 10;
  } while (u != 0);
  int i = 0;
  if (neg) {
    buf[i++] = '-';
  }
  while (n > 0) {
    buf[i++] = tmp[--n];
  }
  buf[i] = '\0';
  return buf;
}

/// "/proc/self/fd/N": how mount(2) and friends are pointed at an fd-pinned object.
struct fd_path {
  char buf[40] = "/proc/self/fd/";
  explicit fd_path(int fd) noexcept {
    char n[24];
    append(buf, sizeof buf, format_int(n, fd));
  }
  const char* c_str() const noexcept { return buf; }
};

/// Closes every descriptor from `first` up, except those in `keep` (-1: unused). The
/// execve path is resolved before close-on-exec applies, so a runtime's directory fd could
/// otherwise still serve as /proc/self/fd/N/... (runc's CVE-2024-21626): closed, not marked.
inline void close_fds_except(int first, std::array<int, 8> keep) noexcept {
  std::sort(keep.begin(), keep.end());
  const auto kept = [&keep](long fd) noexcept {
    return std::binary_search(keep.begin(), keep.end(), static_cast<int>(fd));
  };
  bool ranges_closed = true;
  int lo = first;
  for (const int k : keep) {
    if (k < lo) {
      continue;
    }
    if (k > lo) {
      ranges_closed = ranges_closed && ::syscall(SYS_close_range, static_cast<unsigned>(lo),
                                                 static_cast<unsigned>(k - 1), 0U) == 0;
    }
    lo = k + 1;
  }
  if (ranges_closed && ::syscall(SYS_close_range, static_cast<unsigned>(lo), ~0U, 0U) == 0) {
    return;
  }
  // Before Linux 5.9: what /proc/self/fd lists (read again after each batch of closes, as
  // the listing changes), else every number below the descriptor limit.
  const int dir = ::open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    alignas(8) char buf[4096];
    for (;;) {
      const long n = ::syscall(SYS_getdents64, dir, buf, sizeof buf);
      if (n <= 0) {
        break;
      }
      bool closed = false;
      for (long off = 0; off < n;) {
        const char* name = buf + off + 19;  // struct linux_dirent64: ino 8, off 8, reclen 2, type 1
        unsigned short reclen = 0;
        std::memcpy(&reclen, buf + off + 16, sizeof reclen);
        off += reclen;
        long fd = 0;
        bool number = *name != '\0';
        for (const char* c = name; *c != '\0'; ++c) {
          number = number && *c >= '0' && *c <= '9';
          fd = fd * 10 + (*c - '0');
        }
        if (number && fd >= first && fd != dir && !kept(fd)) {
          ::close(static_cast<int>(fd));
          closed = true;
        }
      }
      if (closed && ::lseek(dir, 0, SEEK_SET) < 0) {
        break;
      }
    }
    ::close(dir);
    return;
  }
  rlimit lim{};
  const long top = ::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_max != RLIM_INFINITY
                       ? static_cast<long>(std::min<rlim_t>(lim.rlim_max, 1U << 20))
                       : 1L << 20;
  for (long fd = first; fd < top; ++fd) {
    if (!kept(fd)) {
      ::close(static_cast<int>(fd));
    }
  }
}

/// Records a failure; returns false so callers can `return fail(...)`.
inline bool fail(init_failure& f,
                 int err,
                 const char* what,
                 const char* a = nullptr,
                 const char* b = nullptr,
                 const char* c = nullptr,
                 const char* d = nullptr,
                 const char* e = nullptr) noexcept {
  f.err = err < 0 ? -err : err;
  f.what[0] = '\0';
  f.path[0] = '\0';
  append(f.what, sizeof f.what, what);
  for (const char* part : {a, b, c, d, e}) {
    append(f.path, sizeof f.path, part);
  }
  return false;
}

/// clone3 without a new stack: fork semantics, with optional flags (CLONE_PARENT, CLONE_PIDFD).
struct clone_args_v0 {
  std::uint64_t flags;
  std::uint64_t pidfd;
  std::uint64_t child_tid;
  std::uint64_t parent_tid;
  std::uint64_t exit_signal;
  std::uint64_t stack;
  std::uint64_t stack_size;
  std::uint64_t tls;
};
inline constexpr std::uint64_t clone_pidfd = 0x1000;

inline pid_t clone3(std::uint64_t flags, int* pidfd = nullptr) noexcept {
  clone_args_v0 args{};
  args.flags = flags | (pidfd != nullptr ? clone_pidfd : 0);
  args.pidfd = reinterpret_cast<std::uintptr_t>(pidfd);
  args.exit_signal = (flags & CLONE_PARENT) != 0 ? 0 : SIGCHLD;
  const long r = ::syscall(SYS_clone3, &args, sizeof args);
  return r < 0 ? -errno : static_cast<pid_t>(r);
}

inline bool send_message(int fd, const sync_message& m) noexcept {
  for (;;) {
    const ssize_t n = ::send(fd, &m, sizeof m, MSG_NOSIGNAL);
    if (n >= 0) {
      return true;
    }
    if (errno != EINTR) {
      return false;
    }
  }
}

inline bool send_type(int fd, sync_type t, int value = 0) noexcept {
  sync_message m;
  m.type = t;
  m.value = value;
  return send_message(fd, m);
}

/// Receives one message, and up to `max_fds` descriptors passed with it (MSG_CMSG_CLOEXEC).
inline int recv_message(int fd, sync_message& m, int* fds = nullptr, int max_fds = 0) noexcept {
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)]{};
  iovec iov{&m, sizeof m};
  msghdr h{};
  h.msg_iov = &iov;
  h.msg_iovlen = 1;
  h.msg_control = control;
  h.msg_controllen = sizeof control;
  ssize_t n = 0;
  do {
    n = ::recvmsg(fd, &h, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    return -errno;
  }
  if (n == 0) {
    return -EPIPE;  // the peer closed (or exec'd: the socket is close-on-exec)
  }
  if (n != static_cast<ssize_t>(sizeof m)) {
    return -EPROTO;
  }
  int got = 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr; c = CMSG_NXTHDR(&h, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
      continue;
    }
    const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < count; ++i) {
      int received = -1;
      std::memcpy(&received, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      if (got < max_fds) {
        fds[got++] = received;
      } else {
        ::close(received);
      }
    }
  }
  return got;
}

/// Sends one descriptor over a unix socket with SCM_RIGHTS, `name` as the message data
/// (runc's utils.SendFd: the console socket receives the pty master named "/dev/ptmx").
inline int send_fd(int sock, const char* name, int fd) noexcept {
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))]{};
  iovec iov{const_cast<char*>(name), std::strlen(name)};
  msghdr h{};
  h.msg_iov = &iov;
  h.msg_iovlen = 1;
  h.msg_control = control;
  h.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&h);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
  ssize_t n = 0;
  do {
    n = ::sendmsg(sock, &h, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  return n < 0 ? -errno : 0;
}

/// ST_* (statvfs) -> the MS_* flags a bind remount must keep when they are locked (user ns).
inline unsigned long locked_flags(int fd) noexcept {
  struct statvfs st {};
  if (::fstatvfs(fd, &st) != 0) {
    return 0;
  }
  unsigned long f = 0;
  const auto map = [&](unsigned long st_flag, unsigned long ms_flag) {
    if ((st.f_flag & st_flag) != 0) {
      f |= ms_flag;
    }
  };
  map(ST_NOSUID, MS_NOSUID);
  map(ST_NODEV, MS_NODEV);
  map(ST_NOEXEC, MS_NOEXEC);
  map(ST_NOATIME, MS_NOATIME);
  map(ST_NODIRATIME, MS_NODIRATIME);
  map(ST_RELATIME, MS_RELATIME);
  return f;
}

/// The cgroup path of the hierarchy `controllers` ("memory", "cpu,cpuacct", "name=systemd"; ""
/// for cgroup2's "0::") in /proc/self/cgroup `text`, which is modified: the path's line is
/// NUL-terminated in place. nullptr when no line matches.
inline const char* find_cgroup_path(char* text, const char* controllers) noexcept {
  const std::size_t want = std::strlen(controllers);
  char* line = text;
  while (*line != '\0') {
    char* end = std::strchr(line, '\n');
    char* first = std::strchr(line, ':');
    char* second = first == nullptr ? nullptr : std::strchr(first + 1, ':');
    if (second != nullptr && (end == nullptr || second < end) &&
        static_cast<std::size_t>(second - first - 1) == want &&
        std::strncmp(first + 1, controllers, want) == 0) {
      if (end != nullptr) {
        *end = '\0';
      }
      return second + 1;
    }
    if (end == nullptr) {
      break;
    }
    line = end + 1;
  }
  return nullptr;
}

}  // namespace init_detail

/// Result of one hook run.
struct hook_outcome {
  int err = 0;          // errno of a failure to start/wait, ETIMEDOUT after the timeout
  int wait_status = 0;  // waitpid status when it ran
  bool ok() const noexcept {
    return err == 0 && WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0;
  }
};

/// Runs one OCI hook: state_fd (rewound) as stdin, the hook's args/env, killed with SIGKILL
/// after `timeout` seconds. Used by the init (createContainer, startContainer) and the runtime
/// (prestart, createRuntime, poststart, poststop) alike.
inline hook_outcome run_hook(const hook_step& h, int state_fd) noexcept {
  hook_outcome out;
  int pidfd = -1;
  const pid_t pid = init_detail::clone3(0, &pidfd);
  if (pid < 0) {
    out.err = -pid;
    return out;
  }
  if (pid == 0) {
    // The hook child: stdin = the state document.
    ::signal(SIGPIPE, SIG_DFL);
    if (state_fd >= 0) {
      ::lseek(state_fd, 0, SEEK_SET);
      if (state_fd == 0) {
        ::fcntl(0, F_SETFD, 0);
      } else {
        ::dup2(state_fd, 0);
      }
    }
    ::execve(h.path, const_cast<char* const*>(h.argv), const_cast<char* const*>(h.envp));
    ::_exit(127);
  }
  int status = 0;
  if (h.timeout > 0) {
    pollfd p{pidfd, POLLIN, 0};
    int r = 0;
    do {
      r = ::poll(&p, 1, h.timeout * 1000);
    } while (r < 0 && errno == EINTR);
    if (r == 0) {
      ::kill(pid, SIGKILL);
      out.err = ETIMEDOUT;
    }
  }
  ::close(pidfd);
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      out.err = out.err != 0 ? out.err : errno;
      return out;
    }
  }
  out.wait_status = status;
  return out;
}

/// The init's steps, over a syscalls policy so the planning logic can be recorded.
}  // namespace katana::inline v0::container
