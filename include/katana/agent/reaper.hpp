// The agent reaps every child: its container processes and, as PID 1 or a child subreaper,
// every orphan of the guest. SIGCHLD wakes an asio::signal_set; waitpid(-1, WNOHANG) then
// collects all exited children, and each is reported to a callback.
#pragma once

#include <cerrno>
#include <csignal>
#include <functional>
#include <memory>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <boost/asio/signal_set.hpp>

#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/ttrpc/asio.hpp>

namespace katana::inline v0::agent {

/// Makes this process the reaper of its orphaned descendants (PID 1 already is).
inline status become_subreaper() {
  if (::getpid() == 1) {
    return {};
  }
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) {
    return fail_errno("prctl PR_SET_CHILD_SUBREAPER");
  }
  return {};
}

class reaper {
 public:
  /// Called once per reaped child with its waitpid status.
  using callback = std::function<void(pid_t pid, int wait_status)>;

  reaper(asio::any_io_executor ex, callback on_exit)
      : state_(std::make_shared<state>(std::move(ex), std::move(on_exit))) {}
  reaper(const reaper&) = delete;
  reaper& operator=(const reaper&) = delete;
  ~reaper() { stop(); }

  /// Starts listening for SIGCHLD (and reaps what already exited).
  void start() {
    arm(state_);
    reap_now();
  }

  void stop() {
    boost::system::error_code ignored;
    state_->signals.cancel(ignored);
    state_->stopped = true;
  }

  /// Collects every exited child now.
  void reap_now() { reap(*state_); }

 private:
  struct state {
    state(asio::any_io_executor ex, callback cb) : signals(ex, SIGCHLD), on_exit(std::move(cb)) {}
    asio::signal_set signals;
    callback on_exit;
    bool stopped = false;
  };

  static void reap(state& s) {
    for (;;) {
      int st = 0;
      const pid_t pid = ::waitpid(-1, &st, WNOHANG);
      if (pid > 0) {
        if (s.on_exit) {
          s.on_exit(pid, st);
        }
        continue;
      }
      if (pid < 0 && errno == EINTR) {
        continue;
      }
      return;  // 0: children left but none exited; ECHILD: no children
    }
  }

  static void arm(const std::shared_ptr<state>& s) {
    s->signals.async_wait([weak = std::weak_ptr<state>(s)](boost::system::error_code ec, int) {
      auto st = weak.lock();
      if (!st || ec || st->stopped) {
        return;
      }
      reap(*st);
      arm(st);
    });
  }

  std::shared_ptr<state> state_;
};

}  // namespace katana::inline v0::agent
