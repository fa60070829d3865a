// Streaming pieces shared by client and server (ttrpc protocol 1.2 Data frames), and
// cancellation of calls.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <katana/core/error.hpp>
#include <katana/ttrpc/asio.hpp>

namespace katana::inline v0::ttrpc {

/// Cancels the calls it was given to (through call_options::cancel). Thread-safe; cancelling
/// twice is harmless; calls that already finished are unaffected.
class cancel_source {
  struct state {
    std::mutex mu;
    bool cancelled = false;
    std::vector<std::function<void()>> callbacks;
  };

 public:
  cancel_source() : s_(std::make_shared<state>()) {}

  void cancel() {
    std::vector<std::function<void()>> run;
    {
      const std::lock_guard lock(s_->mu);
      if (s_->cancelled) {
        return;
      }
      s_->cancelled = true;
      run.swap(s_->callbacks);
    }
    for (auto& f : run) {
      f();
    }
  }
  [[nodiscard]] bool cancelled() const {
    const std::lock_guard lock(s_->mu);
    return s_->cancelled;
  }
  /// Runs f on cancel(), or now if already cancelled.
  void on_cancel(std::function<void()> f) const {
    {
      const std::lock_guard lock(s_->mu);
      if (!s_->cancelled) {
        s_->callbacks.push_back(std::move(f));
        return;
      }
    }
    f();
  }

 private:
  std::shared_ptr<state> s_;
};

namespace detail {

// The inbound messages of one stream, awaited by a single reader on the connection's strand.
class stream_queue {
 public:
  explicit stream_queue(const asio::any_io_executor& ex)
      : wake_(ex, asio::steady_timer::time_point::max()) {}

  void push(std::string m) {
    q_.push_back(std::move(m));
    wake_.cancel();
  }
  void close() {
    closed_ = true;
    wake_.cancel();
  }
  void fail(error e) {
    if (!failure_) {
      failure_ = std::move(e);
    }
    closed_ = true;
    wake_.cancel();
  }
  [[nodiscard]] bool closed() const noexcept { return closed_; }

  /// The next message; nullopt once the peer closed its side; the error if the stream failed.
  task<result<std::optional<std::string>>> next() {
    for (;;) {
      if (!q_.empty()) {
        std::optional<std::string> m(std::move(q_.front()));
        q_.pop_front();
        co_return m;
      }
      if (failure_) {
        co_return unexpected<error>(*failure_);
      }
      if (closed_) {
        co_return std::optional<std::string>{};
      }
      boost::system::error_code ec;
      wake_.expires_at(asio::steady_timer::time_point::max());
      co_await wake_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }

 private:
  std::deque<std::string> q_;
  bool closed_ = false;
  std::optional<error> failure_;
  asio::steady_timer wake_;
};

}  // namespace detail
}  // namespace katana::inline v0::ttrpc
