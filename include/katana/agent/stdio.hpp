// A process's stdio as the agent serves it: pipes or a pseudo-terminal made by the agent, the
// child's ends handed to the engine, the parent's ends read and written by ReadStdout,
// ReadStderr, WriteStdin and CloseStdin.
//
// Semantics (Kata's): a read returns what is there (at most `len` bytes) or waits for it; an
// empty read means end of stream. After the process exits a read still drains what the pipe
// holds, and waits at most 500 ms for more before reporting the end (a background grandchild
// may keep the pipe open forever).
#pragma once

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <fcntl.h>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>
#include <utility>

#include <boost/asio/posix/stream_descriptor.hpp>

#include <katana/agent/engine.hpp>
#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/core/scope_exit.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/try.hpp>
#include <katana/core/unique_fd.hpp>
#include <katana/ttrpc/asio.hpp>
#include <katana/ttrpc/status.hpp>

namespace katana::inline v0::agent {

using clock = std::chrono::steady_clock;

/// How long reads keep waiting for output after the process exited.
inline constexpr std::chrono::milliseconds drain_after_exit{500};

/// Wakes every coroutine waiting on it. Single-threaded (the agent's io_context).
class event {
 public:
  event() = default;
  event(const event&) = delete;
  event& operator=(const event&) = delete;
  ~event() { notify_all(); }

  /// Returns when notify_all() is called (on this event or on `also`) or `until` passes
  /// (never, when empty).
  task<void> wait(std::optional<clock::time_point> until = std::nullopt, event* also = nullptr) {
    asio::steady_timer timer(co_await asio::this_coro::executor,
                             until ? *until : clock::time_point::max());
    waiters_.push_front(&timer);
    auto it = waiters_.begin();
    std::optional<std::list<asio::steady_timer*>::iterator> also_it;
    if (also != nullptr) {
      also->waiters_.push_front(&timer);
      also_it = also->waiters_.begin();
    }
    const scope_exit remove([&] {
      waiters_.erase(it);
      if (also_it) {
        also->waiters_.erase(*also_it);
      }
    });
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }

  void notify_all() noexcept {
    for (auto* t : waiters_) {
      t->cancel();
    }
  }

  [[nodiscard]] std::size_t waiting() const noexcept { return waiters_.size(); }

 private:
  std::list<asio::steady_timer*> waiters_;
};

/// Whether the caller of a long-running call (WaitProcess, Read*, GetOOMEvent) is still
/// connected; the RPC layer cancels it when the connection closes, and waits end early.
struct cancellation {
  bool cancelled = false;
  event fired;
  void cancel() {
    cancelled = true;
    fired.notify_all();
  }
};

namespace detail {
inline status set_nonblocking(int fd) {
  const int fl = ::fcntl(fd, F_GETFL);
  if (fl < 0 || ::fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) {
    return fail_errno("fcntl O_NONBLOCK");
  }
  return {};
}
inline result<unique_fd> dup_fd(int fd) {
  unique_fd d(::fcntl(fd, F_DUPFD_CLOEXEC, 3));
  if (!d) {
    return fail_errno("dup");
  }
  return d;
}
}  // namespace detail

/// The agent's end of an output stream (stdout, stderr, or a terminal's master).
class output_stream {
 public:
  output_stream(asio::any_io_executor ex, unique_fd fd) : sd_(std::move(ex)) {
    (void)detail::set_nonblocking(fd.get());
    sd_.assign(fd.release());
  }

  /// The process exited at `when`: reads stop waiting 500 ms later.
  void process_exited(clock::time_point when) {
    exited_at_ = when;
    changed_.notify_all();
  }

  /// Up to `max` bytes; empty at the end of the stream. Fails with CANCELLED when `cancel`
  /// fires first (the data stays for the next reader).
  task<result<std::string>> read(std::size_t max, cancellation* cancel = nullptr) {
    if (max == 0) {
      max = default_chunk;
    }
    for (;;) {
      if (cancel != nullptr && cancel->cancelled) {
        co_return fail(make_error_code(ttrpc::code::cancelled), "the caller went away");
      }
      if (!buf_.empty()) {
        const auto n = std::min(max, buf_.size());
        std::string out = buf_.substr(0, n);
        buf_.erase(0, n);
        co_return out;
      }
      if (eof_ || !sd_.is_open()) {
        co_return std::string();
      }
      if (exited_at_ && clock::now() >= *exited_at_ + drain_after_exit) {
        read_now();  // whatever the pipe still holds, without waiting
        if (buf_.empty()) {
          eof_ = true;
        }
        continue;
      }
      if (!waiting_) {
        start_wait();
      }
      co_await changed_.wait(
          exited_at_ ? std::optional(*exited_at_ + drain_after_exit) : std::nullopt,
          cancel != nullptr ? &cancel->fired : nullptr);
    }
  }

  /// Drops the descriptor; readers see the end of the stream.
  void close() {
    boost::system::error_code ignored;
    sd_.close(ignored);
    eof_ = true;
    changed_.notify_all();
  }

  [[nodiscard]] bool at_eof() const noexcept { return eof_ && buf_.empty(); }
  [[nodiscard]] int native_handle() noexcept { return sd_.is_open() ? sd_.native_handle() : -1; }

 private:
  static constexpr std::size_t default_chunk = 32 * 1024;
  static constexpr std::size_t max_buffered = 64 * 1024;

  // One readiness wait at a time, whoever asked first; the data lands in buf_ for any reader.
  void start_wait() {
    waiting_ = true;
    sd_.async_wait(asio::posix::descriptor_base::wait_read,
                   [this, alive = std::weak_ptr<int>(alive_)](boost::system::error_code ec) {
                     if (alive.expired()) {
                       return;
                     }
                     waiting_ = false;
                     if (!ec) {
                       read_now();
                     }
                     changed_.notify_all();
                   });
  }

  void read_now() {
    if (!sd_.is_open()) {
      eof_ = true;
      return;
    }
    while (buf_.size() < max_buffered) {
      char chunk[4096];
      const ssize_t n = ::read(sd_.native_handle(), chunk, sizeof chunk);
      if (n > 0) {
        buf_.append(chunk, static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return;
      }
      eof_ = true;  // 0: writers gone; EIO: the terminal's slave side is closed
      return;
    }
  }

  asio::posix::stream_descriptor sd_;
  std::string buf_;
  bool eof_ = false;
  bool waiting_ = false;
  std::optional<clock::time_point> exited_at_;
  event changed_;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

/// The agent's end of stdin (a pipe, or a terminal's master).
class input_stream {
 public:
  input_stream(asio::any_io_executor ex, unique_fd fd, bool terminal)
      : sd_(std::move(ex)), terminal_(terminal) {
    (void)detail::set_nonblocking(fd.get());
    sd_.assign(fd.release());
  }

  /// Writes all of `data` (in order with other writes); the number of bytes written.
  task<result<std::uint32_t>> write(std::string data) {
    while (busy_) {
      co_await idle_.wait();
    }
    if (!sd_.is_open() || closed_) {
      co_return fail(make_error_code(ttrpc::code::failed_precondition), "stdin is closed");
    }
    busy_ = true;
    boost::system::error_code ec;
    co_await asio::async_write(sd_, asio::buffer(data),
                               asio::redirect_error(asio::use_awaitable, ec));
    busy_ = false;
    idle_.notify_all();
    if (ec) {
      co_return fail(ec, "write stdin");
    }
    co_return static_cast<std::uint32_t>(data.size());
  }

  /// Pipes: the process reads EOF once queued writes are done. Terminals: sends VEOF (^D),
  /// since closing the master would hang up the terminal.
  task<status> close() {
    while (busy_) {
      co_await idle_.wait();
    }
    if (closed_) {
      co_return status{};
    }
    closed_ = true;
    if (terminal_ && sd_.is_open()) {
      const char eot = 0x04;
      (void)::write(sd_.native_handle(), &eot, 1);
      co_return status{};
    }
    boost::system::error_code ignored;
    sd_.close(ignored);
    co_return status{};
  }

  void shutdown() {
    boost::system::error_code ignored;
    sd_.close(ignored);
    closed_ = true;
  }

 private:
  asio::posix::stream_descriptor sd_;
  bool terminal_ = false;
  bool busy_ = false;
  bool closed_ = false;
  event idle_;
};

/// Both ends of a process's stdio before the process exists. Pipes are the agent's; a
/// terminal's master comes from the engine (attach_terminal).
struct stdio_set {
  unique_fd child_in, child_out, child_err;     // handed to the engine, closed afterwards
  unique_fd parent_in, parent_out, parent_err;  // the agent's (terminal: dups of the master)
  unique_fd term_master;                        // for TIOCSWINSZ; empty without a terminal
  bool terminal = false;

  [[nodiscard]] stdio_fds child_fds() const noexcept {
    return {child_in.get(), child_out.get(), child_err.get(), terminal};
  }
  void close_child_ends() noexcept {
    child_in.reset();
    child_out.reset();
    child_err.reset();
  }
  /// Takes the engine's pty master: reads, writes and resizes go to it.
  status attach_terminal(unique_fd master) {
    if (!master) {
      return fail(errc::internal, "the engine returned no terminal for a terminal process");
    }
    parent_in = KATANA_TRY(detail::dup_fd(master.get()));
    parent_out = KATANA_TRY(detail::dup_fd(master.get()));
    term_master = std::move(master);
    return {};
  }
};

namespace detail {
inline result<std::pair<unique_fd, unique_fd>> make_pipe() {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) {
    return fail_errno("pipe2");
  }
  return std::pair{unique_fd(p[0]), unique_fd(p[1])};
}
}  // namespace detail

/// Three pipes, or (terminal) nothing yet: the engine makes the pty.
inline result<stdio_set> make_stdio(bool terminal) {
  stdio_set s;
  s.terminal = terminal;
  if (terminal) {
    return s;
  }
  auto in = KATANA_TRY(detail::make_pipe());
  auto out = KATANA_TRY(detail::make_pipe());
  auto err = KATANA_TRY(detail::make_pipe());
  s.child_in = std::move(in.first);
  s.parent_in = std::move(in.second);
  s.parent_out = std::move(out.first);
  s.child_out = std::move(out.second);
  s.parent_err = std::move(err.first);
  s.child_err = std::move(err.second);
  return s;
}

/// A new pseudo-terminal: the master and the slave (for engines that make it in the agent).
inline result<std::pair<unique_fd, unique_fd>> open_terminal(unsigned rows = 0, unsigned cols = 0) {
  unique_fd master(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!master) {
    return fail_errno("posix_openpt");
  }
  if (::grantpt(master.get()) != 0 || ::unlockpt(master.get()) != 0) {
    return fail_errno("unlockpt");
  }
  char name[128];
  if (::ptsname_r(master.get(), name, sizeof name) != 0) {
    return fail_errno("ptsname");
  }
  unique_fd slave(::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!slave) {
    return fail_errno(str_cat("open ", name));
  }
  if (rows != 0 || cols != 0) {
    winsize ws{};
    ws.ws_row = static_cast<unsigned short>(rows);
    ws.ws_col = static_cast<unsigned short>(cols);
    (void)::ioctl(master.get(), TIOCSWINSZ, &ws);
  }
  return std::pair{std::move(master), std::move(slave)};
}

/// TtyWinResize.
inline status resize_terminal(int master, unsigned rows, unsigned cols) {
  winsize ws{};
  ws.ws_row = static_cast<unsigned short>(rows);
  ws.ws_col = static_cast<unsigned short>(cols);
  if (::ioctl(master, TIOCSWINSZ, &ws) != 0) {
    return fail_errno("TIOCSWINSZ");
  }
  return {};
}

}  // namespace katana::inline v0::agent
