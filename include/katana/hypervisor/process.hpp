// A child process of the hypervisor policies (QEMU, virtiofsd): spawned from an argv with its
// standard error in a file (read back into errors when it dies), killed with the parent
// (PR_SET_PDEATHSIG), stopped with SIGTERM then SIGKILL after a timeout, always reaped. A
// `before_exec` hook sees the child's pid while it waits before exec (the sandbox puts it in
// its cgroup there, so nothing the child runs is charged elsewhere).
#pragma once

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <utility>
#include <vector>

#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/core/str_cat.hpp>

namespace katana::inline v0::hypervisor {

/// How a child ended: exit code, or 128 + signal.
inline int exit_code_of(int wait_status) noexcept {
  if (WIFEXITED(wait_status)) {
    return WEXITSTATUS(wait_status);
  }
  if (WIFSIGNALED(wait_status)) {
    return 128 + WTERMSIG(wait_status);
  }
  return -1;
}

/// "exited with 3", "was killed by signal 9 (Killed)": an exit code above 128 is not a signal.
inline std::string describe_wait_status(int wait_status) {
  if (WIFSIGNALED(wait_status)) {
    const char* name = ::strsignal(WTERMSIG(wait_status));
    return str_cat("was killed by signal ", WTERMSIG(wait_status), " (",
                   name != nullptr ? name : "unknown", ")");
  }
  if (WIFEXITED(wait_status)) {
    return str_cat("exited with ", WEXITSTATUS(wait_status));
  }
  return str_cat("ended (wait status ", wait_status, ")");
}

class child_process {
 public:
  child_process() = default;
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;
  child_process(child_process&& o) noexcept
      : pid_(std::exchange(o.pid_, -1)),
        status_(std::move(o.status_)),
        wait_status_(std::move(o.wait_status_)),
        stderr_path_(std::move(o.stderr_path_)) {}
  child_process& operator=(child_process&& o) noexcept {
    if (this != &o) {
      kill();
      pid_ = std::exchange(o.pid_, -1);
      status_ = std::move(o.status_);
      wait_status_ = std::move(o.wait_status_);
      stderr_path_ = std::move(o.stderr_path_);
    }
    return *this;
  }
  ~child_process() { kill(); }

  /// Runs in the parent with the child's pid, before the child execs; an error kills the child.
  using exec_hook = std::function<status(pid_t)>;

  /// fork + execv(argv[0]); stdin and stdout go to /dev/null, stderr to `stderr_file`. With
  /// `before_exec`, the child waits for it to succeed before it execs.
  static result<child_process> spawn(const std::vector<std::string>& argv,
                                     const std::filesystem::path& stderr_file,
                                     const exec_hook& before_exec = {}) {
    if (argv.empty()) {
      return fail(errc::invalid_argument, "spawn: empty argv");
    }
    std::vector<char*> args;
    args.reserve(argv.size() + 1);
    for (const auto& a : argv) {
      args.push_back(const_cast<char*>(a.c_str()));
    }
    args.push_back(nullptr);
    const int err = ::open(stderr_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (err < 0) {
      return fail_errno(str_cat("spawn: open ", stderr_file.native()));
    }
    const int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    int gate[2] = {-1, -1};
    // A socket, not a pipe: send(MSG_NOSIGNAL) to a child that died is EPIPE, not SIGPIPE.
    if (before_exec && ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, gate) != 0) {
      const int e = errno;
      ::close(err);
      ::close(null);
      return fail_errno("spawn: socketpair", e);
    }
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) {
      const int e = errno;
      for (const int fd : {err, null, gate[0], gate[1]}) {
        if (fd >= 0) {
          ::close(fd);
        }
      }
      return fail_errno("spawn: fork", e);
    }
    if (pid == 0) {
      // Only async-signal-safe calls from here on.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) {
        ::_exit(127);
      }
      ::dup2(null, 0);
      ::dup2(null, 1);
      ::dup2(err, 2);
      ::setpgid(0, 0);
      ::signal(SIGPIPE, SIG_DFL);  // an ignored SIGPIPE would outlive exec
      if (gate[0] >= 0) {
        // One byte: go. EOF: the hook failed (or the parent died).
        ::close(gate[1]);
        char go = 0;
        ssize_t n = 0;
        while ((n = ::read(gate[0], &go, 1)) < 0 && errno == EINTR) {
        }
        if (n != 1) {
          ::_exit(127);
        }
      }
      ::execv(args[0], args.data());
      static constexpr char msg[] = "exec failed\n";
      (void)!::write(2, msg, sizeof msg - 1);
      ::_exit(127);
    }
    ::close(err);
    ::close(null);
    child_process c;
    c.pid_ = pid;
    c.stderr_path_ = stderr_file;
    if (before_exec) {
      ::close(gate[0]);
      auto r = before_exec(pid);
      if (r && ::send(gate[1], "1", 1, MSG_NOSIGNAL) != 1) {
        r = fail_errno(str_cat("spawn: release pid ", pid));
      }
      ::close(gate[1]);
      if (!r) {
        c.kill();
        return unexpected<error>(std::move(r).error().wrap(str_cat("spawn ", argv[0])));
      }
    }
    return c;
  }

  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  [[nodiscard]] const std::filesystem::path& stderr_path() const noexcept { return stderr_path_; }

  /// The exit code if the child has ended (reaps it), nullopt while it runs.
  std::optional<int> poll() {
    if (status_) {
      return status_;
    }
    if (pid_ <= 0) {
      return std::nullopt;
    }
    int st = 0;
    const pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      status_ = exit_code_of(st);
      wait_status_ = st;
      pid_ = -1;
    }
    return status_;
  }

  /// The raw wait status once the child has been reaped (tells a signal from an exit code).
  [[nodiscard]] std::optional<int> wait_status() {
    (void)poll();
    return wait_status_;
  }
  [[nodiscard]] bool running() { return pid_ > 0 && !poll(); }

  /// Whether child `pid` has not ended yet, without reaping it: for callbacks that must not
  /// hold on to a child_process, which may move.
  [[nodiscard]] static bool alive(pid_t pid) noexcept {
    if (pid <= 0) {
      return false;
    }
    siginfo_t si{};
    return ::waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
           si.si_pid == 0;
  }

  /// Waits up to `timeout` for the child to end.
  std::optional<int> wait_for(std::chrono::milliseconds timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (auto s = poll()) {
        return s;
      }
      if (pid_ <= 0 || std::chrono::steady_clock::now() >= end) {
        return std::nullopt;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  /// SIGTERM, then SIGKILL when it has not ended after `grace`; always reaps.
  int terminate(std::chrono::milliseconds grace) {
    if (pid_ > 0 && !poll()) {
      ::kill(pid_, SIGTERM);
      if (!wait_for(grace)) {
        kill();
      }
    }
    return status_.value_or(-1);
  }

  /// SIGKILL and reap.
  void kill() noexcept {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int st = 0;
      while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
      }
      status_ = exit_code_of(st);
      wait_status_ = st;
      pid_ = -1;
    }
  }

  /// The last `max` bytes of what the child wrote to standard error.
  [[nodiscard]] std::string stderr_tail(std::size_t max = 4096) const {
    return read_tail(stderr_path_, max);
  }

  static std::string read_tail(const std::filesystem::path& p, std::size_t max) {
    std::ifstream f(p, std::ios::binary);
    if (!f) {
      return {};
    }
    std::stringstream s;
    s << f.rdbuf();
    std::string text = s.str();
    if (text.size() > max) {
      text.erase(0, text.size() - max);
    }
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) {
      text.pop_back();
    }
    return text;
  }

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
  std::optional<int> wait_status_;
  std::filesystem::path stderr_path_;
};

}  // namespace katana::inline v0::hypervisor
