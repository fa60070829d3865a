// ttrpc server: a table of services and methods, served on any number of connections.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include <katana/core/error.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/ttrpc/asio.hpp>
#include <katana/ttrpc/connection.hpp>
#include <katana/ttrpc/envelope.hpp>
#include <katana/ttrpc/status.hpp>
#include <katana/ttrpc/stream.hpp>

namespace katana::inline v0::ttrpc {

/// What a handler knows about its call.
struct server_context {
  std::string_view service;
  std::string_view method;
  const ttrpc::metadata* md = nullptr;
  std::optional<std::chrono::steady_clock::time_point> deadline;

  /// First metadata value for a key (keys compare case-insensitively, as Go's MD does).
  [[nodiscard]] std::optional<std::string_view> value(std::string_view key) const {
    if (md != nullptr) {
      for (const auto& kv : *md) {
        if (equal_ci(kv.key, key)) {
          return kv.value;
        }
      }
    }
    return std::nullopt;
  }

 private:
  static bool equal_ci(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) {
      return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
      const auto lower = [](char c) {
        return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
      };
      if (lower(a[i]) != lower(b[i])) {
        return false;
      }
    }
    return true;
  }
};

/// A unary method: request payload in, response payload (or an error whose code becomes the
/// status) out.
using method_handler = std::function<task<result<std::string>>(server_context&, std::string)>;

/// The server's side of one stream (protocol 1.2).
class server_stream {
 public:
  server_stream(std::function<status(std::string_view)> send_data,
                std::shared_ptr<detail::stream_queue> in)
      : send_(std::move(send_data)), in_(std::move(in)) {}
  /// The next client message; nullopt once the client closed its side.
  task<result<std::optional<std::string>>> recv() { return in_->next(); }
  /// Sends one message to the client.
  status send(std::string_view payload) { return send_(payload); }

 private:
  std::function<status(std::string_view)> send_;
  std::shared_ptr<detail::stream_queue> in_;
};

/// A streaming method: its status (and nothing else) ends the stream with a Response.
using stream_handler = std::function<task<status>(server_context&, server_stream&)>;

class service_table {
 public:
  void add(std::string service, std::string method, method_handler h) {
    services_[std::move(service)][std::move(method)] = std::move(h);
  }
  void add_stream(std::string service, std::string method, stream_handler h) {
    streams_[std::move(service)][std::move(method)] = std::move(h);
  }
  [[nodiscard]] const stream_handler* find_stream(std::string_view service,
                                                  std::string_view method) const {
    const auto s = streams_.find(service);
    if (s == streams_.end()) {
      return nullptr;
    }
    const auto m = s->second.find(method);
    return m == s->second.end() ? nullptr : &m->second;
  }

  /// The handler, or the status error ttrpc answers for an unknown service or method.
  [[nodiscard]] result<const method_handler*> find(std::string_view service,
                                                   std::string_view method) const {
    const auto s = services_.find(service);
    if (s == services_.end()) {
      return fail(make_error_code(code::unimplemented), str_cat("service ", service));
    }
    const auto m = s->second.find(method);
    if (m == s->second.end()) {
      return fail(make_error_code(code::unimplemented), str_cat("method ", method));
    }
    return &m->second;
  }

 private:
  std::map<std::string, std::map<std::string, method_handler, std::less<>>, std::less<>> services_;
  std::map<std::string, std::map<std::string, stream_handler, std::less<>>, std::less<>> streams_;
};

/// Serves a service_table. Connections come from serve(acceptor) or serve_connection(stream).
/// Use from one strand or a single-threaded io_context.
template <class Stream>
class basic_server {
  using connection = basic_connection<Stream>;

  struct conn_state {
    std::shared_ptr<connection> conn;
    std::uint32_t last_id = 0;
    std::size_t in_flight = 0;
    std::map<std::uint32_t, std::shared_ptr<detail::stream_queue>> streams;
  };

  struct shared {
    explicit shared(service_table t) : table(std::move(t)) {}
    service_table table;
    std::set<std::shared_ptr<conn_state>> conns;
    bool draining = false;
    std::function<void()> on_idle;  // wakes shutdown()
  };

 public:
  explicit basic_server(service_table table) : sh_(std::make_shared<shared>(std::move(table))) {}

  /// Accepts connections until the acceptor is closed (shutdown() closes it).
  template <class Acceptor>
  task<void> serve(Acceptor& acceptor) {
    auto sh = sh_;
    for (;;) {
      boost::system::error_code ec;
      auto sock = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
      if (ec || sh->draining) {
        co_return;
      }
      asio::co_spawn(acceptor.get_executor(), serve_connection_impl(sh, Stream(std::move(sock))),
                     asio::detached);
    }
  }

  /// Serves one connection until the peer hangs up or the server shuts down.
  task<void> serve_connection(Stream stream) {
    return serve_connection_impl(sh_, std::move(stream));
  }

  /// Graceful stop: no new connections (close your acceptor too, or pass it here), calls in
  /// flight finish and are answered, then every connection closes.
  template <class Acceptor>
  task<void> shutdown(Acceptor& acceptor) {
    boost::system::error_code ignored;
    acceptor.close(ignored);
    co_await shutdown();
  }
  task<void> shutdown() {
    auto sh = sh_;
    sh->draining = true;
    auto ex = co_await asio::this_coro::executor;
    asio::steady_timer wake(ex, asio::steady_timer::time_point::max());
    sh->on_idle = [&wake] {
      wake.cancel();
    };
    for (;;) {
      close_idle(*sh);
      if (sh->conns.empty()) {
        break;
      }
      boost::system::error_code ec;
      co_await wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      wake.expires_at(asio::steady_timer::time_point::max());
    }
    sh->on_idle = nullptr;
  }

  /// Number of open connections (for tests and diagnostics).
  [[nodiscard]] std::size_t connections() const noexcept { return sh_->conns.size(); }

 private:
  static void close_idle(shared& sh) {
    for (auto it = sh.conns.begin(); it != sh.conns.end();) {
      if ((*it)->in_flight == 0) {
        (*it)->conn->close_after_flush();
        it = sh.conns.erase(it);
      } else {
        ++it;
      }
    }
  }

  static void reply(conn_state& c,
                    std::uint32_t id,
                    code status_code,
                    std::string message,
                    std::string payload = {}) {
    response resp;
    resp.status.code = static_cast<std::int32_t>(status_code);
    resp.status.message = std::move(message);
    resp.payload = std::move(payload);
    auto bytes = encode(resp);
    if (bytes.size() > max_message_size) {
      resp = response{};
      resp.status.code = static_cast<std::int32_t>(code::resource_exhausted);
      resp.status.message = str_cat("message length ", bytes.size(),
                                    " exceed maximum message size of ", max_message_size);
      bytes = encode(resp);
    }
    (void)c.conn->send(message_type::response, id, 0, bytes);  // a closed peer is not an error
  }

  static task<void> serve_connection_impl(std::shared_ptr<shared> sh, Stream stream) {
    auto c = std::make_shared<conn_state>();
    c->conn = std::make_shared<connection>(std::move(stream));
    sh->conns.insert(c);
    for (;;) {
      auto f = co_await c->conn->read_frame();
      if (!f) {
        break;  // peer gone, garbage mid-frame, or shutdown closed us
      }
      const auto id = f->header.stream_id;
      if (f->oversized) {
        reply(*c, id, code::resource_exhausted,
              str_cat("message length ", f->header.length, " exceed maximum message size of ",
                      max_message_size));
        continue;
      }
      if (f->header.type == static_cast<std::uint8_t>(message_type::data)) {
        if (auto it = c->streams.find(id); it != c->streams.end()) {
          if ((f->header.flags & flags::no_data) == 0) {
            it->second->push(std::move(f->data));
          }
          if ((f->header.flags & flags::remote_closed) != 0) {
            it->second->close();
          }
        }
        continue;  // data for streams we do not serve is dropped
      }
      if (f->header.type != static_cast<std::uint8_t>(message_type::request)) {
        continue;  // a type from a newer protocol
      }
      if (id % 2 == 0) {
        reply(*c, id, code::invalid_argument, "StreamID must be odd for client initiated streams");
        continue;
      }
      if (id <= c->last_id) {
        reply(*c, id, code::invalid_argument, "StreamID cannot be re-used and must increment");
        continue;
      }
      c->last_id = id;
      auto req = decode_request(f->data);
      if (!req) {
        reply(*c, id, code::invalid_argument, req.error().message());
        continue;
      }
      if (const auto* sh_stream = sh->table.find_stream(req->service, req->method)) {
        auto in = std::make_shared<detail::stream_queue>(c->conn->get_executor());
        if (!req->payload.empty()) {
          in->push(std::move(req->payload));
        }
        // Flags 0 (a unary-style request) or remote_closed: the client sends nothing more.
        if ((f->header.flags & flags::remote_open) == 0) {
          in->close();
        }
        c->streams.emplace(id, in);
        ++c->in_flight;
        asio::co_spawn(c->conn->get_executor(),
                       run_stream(sh, c, id, sh_stream, std::move(*req), std::move(in)),
                       asio::detached);
        continue;
      }
      auto handler = sh->table.find(req->service, req->method);
      if (!handler) {
        reply(*c, id, code::unimplemented, handler.error().context);
        continue;
      }
      ++c->in_flight;
      asio::co_spawn(c->conn->get_executor(), run_call(sh, c, id, *handler, std::move(*req)),
                     asio::detached);
    }
    for (auto& [id, q] : c->streams) {
      q->fail(error(errc::unavailable, "ttrpc: client went away"));
    }
    c->conn->close();
    sh->conns.erase(c);
    if (sh->on_idle) {
      sh->on_idle();
    }
  }

  // Runs one stream handler; its status ends the stream.
  static task<void> run_stream(std::shared_ptr<shared> sh,
                               std::shared_ptr<conn_state> c,
                               std::uint32_t id,
                               const stream_handler* handler,
                               request req,
                               std::shared_ptr<detail::stream_queue> in) {
    server_context ctx{req.service, req.method, &req.metadata, std::nullopt};
    server_stream stream(
        [c, id](std::string_view payload) {
          return c->conn->send(message_type::data, id, 0, payload);
        },
        in);
    status out = fail(make_error_code(code::internal), "handler did not run");
    try {
      out = co_await (*handler)(ctx, stream);
    } catch (const std::exception& e) {
      out = fail(make_error_code(code::internal), str_cat("handler threw: ", e.what()));
    }
    if (out) {
      reply(*c, id, code::ok, {});
    } else {
      reply(*c, id, to_code(out.error().code), status_message(out.error()));
    }
    c->streams.erase(id);
    --c->in_flight;
    if (sh->draining && sh->on_idle) {
      sh->on_idle();
    }
  }

  // Runs one handler; answers DEADLINE_EXCEEDED when the deadline passes first.
  static task<void> run_call(std::shared_ptr<shared> sh,
                             std::shared_ptr<conn_state> c,
                             std::uint32_t id,
                             const method_handler* handler,
                             request req) {
    auto answered = std::make_shared<bool>(false);
    server_context ctx{req.service, req.method, &req.metadata, std::nullopt};
    std::optional<asio::steady_timer> deadline;
    if (req.timeout_nano > 0) {
      ctx.deadline = std::chrono::steady_clock::now() + std::chrono::nanoseconds(req.timeout_nano);
      deadline.emplace(c->conn->get_executor(), *ctx.deadline);
      deadline->async_wait([c, id, answered](boost::system::error_code ec) {
        if (!ec && !*answered) {
          *answered = true;
          reply(*c, id, code::deadline_exceeded, "context deadline exceeded");
        }
      });
    }
    result<std::string> out = fail(make_error_code(code::internal), "handler did not run");
    try {
      out = co_await (*handler)(ctx, std::move(req.payload));
    } catch (const std::exception& e) {
      out = fail(make_error_code(code::internal), str_cat("handler threw: ", e.what()));
    }
    if (deadline) {
      deadline->cancel();
    }
    if (!*answered) {
      *answered = true;
      if (out) {
        reply(*c, id, code::ok, {}, std::move(*out));
      } else {
        reply(*c, id, to_code(out.error().code), status_message(out.error()));
      }
    }
    --c->in_flight;
    if (sh->draining && sh->on_idle) {
      sh->on_idle();
    }
  }

  std::shared_ptr<shared> sh_;
};

}  // namespace katana::inline v0::ttrpc
