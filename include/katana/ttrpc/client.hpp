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
#include <katana/ttrpc/stream.hpp>

namespace katana::inline v0::ttrpc {

struct call_options {
  /// Sent as timeout_nano and enforced here too; zero means no deadline.
  std::chrono::nanoseconds timeout{0};
  /// Keys are sent lower-cased (ttrpc's and gRPC's metadata keys are).
  ttrpc::metadata metadata;
  /// Fails the call with CANCELLED when cancelled (the peer's late answer is dropped).
  std::optional<cancel_source> cancel;
};

/// Which sides of a stream carry messages (the RPC's `stream` keywords).
struct stream_options {
  bool client_streams = false;
  bool server_streams = false;
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
    std::unordered_map<std::uint32_t, std::shared_ptr<detail::stream_queue>> streams;
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

    // Keys go out lower-cased, as Go's MD stores them: its server looks them up verbatim.
    for (auto& kv : opts.metadata) {
      for (auto& ch : kv.key) {
        if (ch >= 'A' && ch <= 'Z') {
          ch = static_cast<char>(ch - 'A' + 'a');
        }
      }
    }
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
    if (opts.cancel) {
      opts.cancel->on_cancel([st, id, where = str_cat(service, "/", method)] {
        asio::post(st->conn->get_executor(), [st, id, where] {
          finish(*st, id,
                 fail(make_error_code(code::cancelled), "ttrpc: " + where + ": cancelled"));
        });
      });
    }
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

  /// One open stream (protocol 1.2). Use from the connection's executor.
  class call_stream {
   public:
    /// Sends one message (a Data frame).
    status send(std::string_view payload) {
      if (local_closed_) {
        return fail(errc::invalid_argument, "ttrpc: send on a stream already closed for sending");
      }
      return st_->conn->send(message_type::data, id_, 0, payload);
    }
    /// Tells the server no more messages come from this side.
    status close_send() {
      if (local_closed_) {
        return {};
      }
      local_closed_ = true;
      return st_->conn->send(message_type::data, id_, flags::remote_closed | flags::no_data, {});
    }
    /// The next message from the server; nullopt when it ended the stream with OK; the status
    /// as an error otherwise.
    task<result<std::optional<std::string>>> recv() { return in_->next(); }
    [[nodiscard]] std::uint32_t id() const noexcept { return id_; }

   private:
    friend class basic_client;
    call_stream(std::shared_ptr<state> st,
                std::shared_ptr<detail::stream_queue> in,
                std::uint32_t id,
                bool local_closed)
        : st_(std::move(st)), in_(std::move(in)), id_(id), local_closed_(local_closed) {}
    std::shared_ptr<state> st_;
    std::shared_ptr<detail::stream_queue> in_;
    std::uint32_t id_;
    bool local_closed_;
  };

  /// Opens a stream. Without client streaming, `first` is the request message and this side is
  /// closed at once; with it, messages follow through stream::send().
  task<result<call_stream>> open_stream(std::string service,
                                        std::string method,
                                        std::string first,
                                        stream_options opts) {
    auto st = st_;
    if (st->broken) {
      co_return unexpected<error>(st->broken->wrap(str_cat(service, "/", method)));
    }
    if (st->next_id > std::numeric_limits<std::uint32_t>::max() - 2) {
      co_return fail(errc::unavailable, "ttrpc: stream ids exhausted on this connection");
    }
    const std::uint32_t id = st->next_id;
    st->next_id += 2;
    request req{std::move(service), std::move(method),
                opts.client_streams ? std::string() : std::move(first), 0,
                std::move(opts.metadata)};
    auto in = std::make_shared<detail::stream_queue>(st->conn->get_executor());
    st->streams.emplace(id, in);
    const std::uint8_t f = opts.client_streams ? flags::remote_open : flags::remote_closed;
    if (auto sent = st->conn->send(message_type::request, id, f, encode(req)); !sent) {
      st->streams.erase(id);
      co_return unexpected<error>(std::move(sent).error());
    }
    co_return call_stream(st, std::move(in), id, !opts.client_streams);
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
      const auto sid = f->header.stream_id;
      if (f->header.type == static_cast<std::uint8_t>(message_type::data)) {
        if (auto it = st->streams.find(sid); it != st->streams.end()) {
          if ((f->header.flags & flags::no_data) == 0) {
            it->second->push(std::move(f->data));
          }
          if ((f->header.flags & flags::remote_closed) != 0) {
            it->second->close();
            st->streams.erase(it);
          }
        }
        continue;
      }
      if (f->header.type != static_cast<std::uint8_t>(message_type::response)) {
        continue;  // a type from a newer protocol
      }
      auto resp = decode_response(f->data);
      if (auto it = st->streams.find(sid); it != st->streams.end()) {
        // A Response ends a stream: it may carry the last message (client streaming) or a
        // failure status.
        auto q = it->second;
        st->streams.erase(it);
        if (!resp) {
          q->fail(std::move(resp).error().wrap("ttrpc: bad response envelope"));
        } else if (resp->status.code != 0) {
          q->fail(
              from_status(static_cast<code>(resp->status.code), std::move(resp->status.message)));
        } else {
          if (!resp->payload.empty()) {
            q->push(std::move(resp->payload));
          }
          q->close();
        }
        continue;
      }
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
    // Fail every call and stream still waiting.
    for (auto& [id, q] : st->streams) {
      q->fail(*st->broken);
    }
    st->streams.clear();
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
