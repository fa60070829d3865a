// ttrpc client: many concurrent unary calls multiplexed on one connection.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include <katana/core/error.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/ttrpc/asio.hpp>
#include <katana/ttrpc/connection.hpp>
#include <katana/ttrpc/envelope.hpp>
#include <katana/ttrpc/status.hpp>

namespace katana::inline v0::ttrpc {

struct call_options {
  /// Sent as timeout_nano and enforced here too; zero means no deadline.
  std::chrono::nanoseconds timeout{0};
  ttrpc::metadata metadata;
};

/// Client side of one ttrpc connection. Copies share the connection. Every member must be used
/// from the connection's executor (a strand or a single-threaded io_context); async_call()
/// takes care of that for callers elsewhere.
template <class Stream>
class basic_client {
  struct pending {
    explicit pending(const typename Stream::executor_type& ex) : timer(ex) {}
    asio::steady_timer timer;
    std::optional<result<std::string>> outcome;
  };

  struct state {
    explicit state(Stream s) : conn(std::make_shared<basic_connection<Stream>>(std::move(s))) {}
    std::shared_ptr<basic_connection<Stream>> conn;
    std::uint32_t next_id = 1;
    std::unordered_map<std::uint32_t, pending*> calls;
    std::optional<error> broken;  // why the connection is unusable
  };

 public:
  using executor_type = typename Stream::executor_type;

  explicit basic_client(Stream stream) : st_(std::make_shared<state>(std::move(stream))) {
    asio::co_spawn(st_->conn->get_executor(), read_loop(st_), asio::detached);
  }

  executor_type get_executor() const { return st_->conn->get_executor(); }

  /// One unary call: the response payload, or the peer's status as an error (grpc category),
  /// or a transport error.
  task<result<std::string>> call(std::string_view service,
                                 std::string_view method,
                                 std::string payload,
                                 call_options opts = {}) {
    auto st = st_;
    if (st->broken) {
      co_return unexpected<error>(st->broken->wrap(str_cat(service, "/", method)));
    }
    if (st->next_id > std::numeric_limits<std::uint32_t>::max() - 2) {
      co_return fail(errc::unavailable, "ttrpc: stream ids exhausted on this connection");
    }
    const std::uint32_t id = st->next_id;
    st->next_id += 2;

    request req{std::string(service), std::string(method), std::move(payload),
                static_cast<std::int64_t>(opts.timeout.count()), std::move(opts.metadata)};
    std::string bytes;
    encode_to(bytes, req);
    if (bytes.size() > max_message_size) {
      co_return fail(make_error_code(code::resource_exhausted),
                     str_cat("ttrpc: ", service, "/", method, ": message length ", bytes.size(),
                             " exceeds maximum message size of ", max_message_size));
    }
    pending p(st->conn->get_executor());
    if (opts.timeout.count() > 0) {
      p.timer.expires_after(opts.timeout);
    } else {
      p.timer.expires_at(asio::steady_timer::time_point::max());
    }
    st->calls.emplace(id, &p);
    if (auto sent = st->conn->send(message_type::request, id, 0, bytes); !sent) {
      st->calls.erase(id);
      co_return unexpected<error>(std::move(sent).error().wrap(str_cat(service, "/", method)));
    }
    boost::system::error_code ec;
    co_await p.timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    st->calls.erase(id);
    if (!p.outcome) {
      co_return fail(
          make_error_code(code::deadline_exceeded),
          str_cat("ttrpc: ", service, "/", method, ": no response within ",
                  std::chrono::duration_cast<std::chrono::milliseconds>(opts.timeout).count(),
                  " ms"));
    }
    co_return std::move(*p.outcome);
  }

  /// call() from any thread or executor. Completion signature:
  /// void(std::exception_ptr, katana::result<std::string>); the handler runs exactly once.
  template <class CompletionToken>
  auto async_call(std::string service,
                  std::string method,
                  std::string payload,
                  call_options opts,
                  CompletionToken&& token) {
    return asio::co_spawn(
        get_executor(),
        [self = *this, service = std::move(service), method = std::move(method),
         payload = std::move(payload),
         opts = std::move(opts)]() mutable -> task<result<std::string>> {
          co_return co_await self.call(service, method, std::move(payload), std::move(opts));
        },
        std::forward<CompletionToken>(token));
  }

  /// Closes the connection: pending calls fail with UNAVAILABLE.
  void close() { st_->conn->close(); }

  [[nodiscard]] bool is_open() const noexcept { return !st_->broken && st_->conn->is_open(); }

 private:
  static void finish(state& st, std::uint32_t id, result<std::string> r) {
    if (auto it = st.calls.find(id); it != st.calls.end()) {
      it->second->outcome = std::move(r);
      it->second->timer.cancel();
    }
  }

  static task<void> read_loop(std::shared_ptr<state> st) {
    for (;;) {
      auto f = co_await st->conn->read_frame();
      if (!f) {
        st->broken = st->conn->is_open() ? std::move(f).error()
                                         : error(errc::unavailable, "ttrpc: connection closed");
        break;
      }
      if (f->oversized) {
        finish(*st, f->header.stream_id,
               fail(make_error_code(code::resource_exhausted),
                    str_cat("ttrpc: response length ", f->header.length,
                            " exceeds maximum message size of ", max_message_size)));
        continue;
      }
      if (f->header.type != static_cast<std::uint8_t>(message_type::response)) {
        continue;  // data frames belong to streams we did not open; unknown types: future use
      }
      auto resp = decode_response(f->data);
      if (!resp) {
        finish(*st, f->header.stream_id,
               unexpected<error>(std::move(resp).error().wrap("ttrpc: bad response envelope")));
        continue;
      }
      if (resp->status.code != 0) {
        finish(*st, f->header.stream_id,
               unexpected<error>(from_status(static_cast<code>(resp->status.code),
                                             std::move(resp->status.message))));
      } else {
        finish(*st, f->header.stream_id, std::move(resp->payload));
      }
    }
    st->conn->close();
    // Fail every call still waiting.
    auto calls = std::move(st->calls);
    st->calls.clear();
    for (auto& [id, p] : calls) {
      p->outcome = unexpected<error>(*st->broken);
      p->timer.cancel();
    }
  }

  std::shared_ptr<state> st_;
};

}  // namespace katana::inline v0::ttrpc
