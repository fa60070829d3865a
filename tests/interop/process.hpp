// Child processes and temporary directories for the interop tests and the benchmark: a child is
// always killed and reaped (destructor, or PR_SET_PDEATHSIG if this process dies first), a
// temporary directory always removed.
#pragma once

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <system_error>
#include <thread>
#include <unistd.h>
#include <utility>
#include <vector>

#include <katana/core/error.hpp>
#include <katana/core/str_cat.hpp>

namespace katana::test {

/// mkdtemp under $TMPDIR (or /tmp), removed with everything in it on destruction. Paths stay
/// short: unix socket paths must fit in 108 bytes.
class temp_dir {
 public:
  explicit temp_dir(std::string_view prefix = "katana-interop") {
    const char* base = std::getenv("TMPDIR");
    std::string pattern =
        str_cat(base != nullptr && *base != 0 ? base : "/tmp", "/", prefix, ".XXXXXX");
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
    }
    path_ = pattern;
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
  [[nodiscard]] std::string file(std::string_view name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

/// A child process with stdin from /dev/null and stdout+stderr into a file.
class child_process {
 public:
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;
  child_process(child_process&& o) noexcept
      : pid_(std::exchange(o.pid_, -1)), status_(o.status_), output_(std::move(o.output_)) {}
  child_process& operator=(child_process&&) = delete;
  ~child_process() { kill_and_reap(); }

  static result<child_process> spawn(const std::vector<std::string>& argv,
                                     const std::string& output_path) {
    if (argv.empty()) {
      return fail(errc::invalid_argument, "spawn: empty argv");
    }
    // Everything the child needs is prepared before fork: after it only async-signal-safe calls.
    std::vector<char*> args;
    for (const auto& a : argv) {
      args.push_back(const_cast<char*>(a.c_str()));
    }
    args.push_back(nullptr);
    const int out = ::open(output_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) {
      return fail_errno("open " + output_path);
    }
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) {
      const int err = errno;
      ::close(out);
      return fail_errno("fork", err);
    }
    if (pid == 0) {
      // Dies with us, even if we are killed before our destructors run.
      if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() != parent) {
        ::_exit(126);
      }
      const int in = ::open("/dev/null", O_RDONLY);
      if (in < 0 || ::dup2(in, 0) < 0 || ::dup2(out, 1) < 0 || ::dup2(out, 2) < 0) {
        ::_exit(126);
      }
      ::close_range(3, ~0U, 0);  // nothing else of ours (sockets, pipes) leaks into the child
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    ::close(out);
    return child_process(pid, output_path);
  }

  [[nodiscard]] pid_t pid() const noexcept { return pid_; }

  /// Whether the child has not exited yet (reaps it if it has).
  [[nodiscard]] bool running() { return pid_ > 0 && !poll(); }

  /// The exit code (128 + signal for a signal), or nullopt if it is still running after
  /// `timeout`.
  std::optional<int> wait_for(std::chrono::milliseconds timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (pid_ <= 0 || poll()) {
        return exit_code();
      }
      if (std::chrono::steady_clock::now() >= end) {
        return std::nullopt;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  /// SIGTERM, then SIGKILL after `grace`; always reaps. Returns the exit code.
  int terminate(std::chrono::milliseconds grace = std::chrono::seconds(2)) {
    if (pid_ > 0 && !poll()) {
      ::kill(pid_, SIGTERM);
      if (!wait_for(grace)) {
        kill_and_reap();
      }
    }
    return exit_code();
  }

  /// Everything the child wrote so far.
  [[nodiscard]] std::string output() const {
    std::ifstream in(output_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

 private:
  child_process(pid_t pid, std::string output) : pid_(pid), output_(std::move(output)) {}

  // True once the child has exited and been reaped.
  bool poll() {
    if (pid_ <= 0) {
      return true;
    }
    int st = 0;
    const pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_ || (r < 0 && errno == ECHILD)) {
      status_ = r == pid_ ? st : 0;
      pid_ = -1;
      return true;
    }
    return false;
  }

  void kill_and_reap() noexcept {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int st = 0;
      while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
      }
      status_ = st;
      pid_ = -1;
    }
  }

  [[nodiscard]] int exit_code() const noexcept {
    if (WIFEXITED(status_)) {
      return WEXITSTATUS(status_);
    }
    return WIFSIGNALED(status_) ? 128 + WTERMSIG(status_) : -1;
  }

  pid_t pid_ = -1;
  int status_ = 0;
  std::string output_;
};

/// Waits until something accepts connections on the unix socket `path`, or the server exits,
/// or `timeout` passes.
inline status wait_for_socket(const std::string& path,
                              child_process& server,
                              std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof sa.sun_path) {
    return fail(errc::invalid_argument, "socket path too long: " + path);
  }
  path.copy(sa.sun_path, path.size());
  while (std::chrono::steady_clock::now() < end) {
    if (!server.running()) {
      return fail(errc::unavailable, str_cat("server exited before listening on ", path,
                                             "; its output:\n", server.output()));
    }
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      return fail_errno("socket");
    }
    const int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa);
    ::close(fd);
    if (rc == 0) {
      return {};
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return fail(errc::timeout, str_cat("nothing listens on ", path, " after ", timeout.count(),
                                     " ms; server output:\n", server.output()));
}

}  // namespace katana::test
