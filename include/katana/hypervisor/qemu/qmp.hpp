// A QMP client on Asio: connect to QEMU's monitor socket within a deadline (retrying every
// 50 ms while QEMU creates it), negotiate (qmp_capabilities), run commands and read their
// replies with 250 ms read timeouts, skipping asynchronous events. Calls block the caller; the
// socket lives in a private io_context. Between reads, `alive` says whether QEMU still runs, so
// a dead QEMU fails a call at once instead of at its deadline.
//
//   auto qmp = KATANA_TRY(qmp::client::connect(dir / "qmp.sock", 5s, [&] { return q.running(); }));
//   KATANA_TRY(qmp.execute("query-status"));
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>

#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/core/str_cat.hpp>

namespace katana::inline v0::hypervisor::qemu::qmp {

using namespace std::chrono_literals;

inline constexpr std::chrono::milliseconds connect_retry = 50ms;
inline constexpr std::chrono::milliseconds read_timeout = 250ms;

/// A JSON string literal for a QMP argument.
inline std::string quote(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      static constexpr char hex[] = "0123456789abcdef";
      out += "\\u00";
      out += hex[(c >> 4) & 15];
      out += hex[c & 15];
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

/// The value text of a top-level string member `"key": "value"` in a flat reply (no nesting
/// of the same key); empty when absent. Enough for QMP's status and error replies.
inline std::string string_member(std::string_view json, std::string_view key) {
  const std::string needle = str_cat("\"", key, "\"");
  auto at = json.find(needle);
  if (at == std::string_view::npos) {
    return {};
  }
  at = json.find(':', at + needle.size());
  if (at == std::string_view::npos) {
    return {};
  }
  at = json.find('"', at);
  if (at == std::string_view::npos) {
    return {};
  }
  std::string out;
  for (auto i = at + 1; i < json.size() && json[i] != '"'; ++i) {
    if (json[i] == '\\' && i + 1 < json.size()) {
      ++i;
    }
    out += json[i];
  }
  return out;
}

class client {
 public:
  using alive_fn = std::function<bool()>;

  client(client&&) = delete;  // the socket refers to io_; hold it by unique_ptr or optional

  /// Connects within `deadline`, reads the greeting and negotiates capabilities.
  static result<std::unique_ptr<client>> connect(const std::filesystem::path& socket,
                                                 std::chrono::milliseconds deadline,
                                                 alive_fn alive = {}) {
    auto c = std::unique_ptr<client>(new client(std::move(alive)));
    const auto end = std::chrono::steady_clock::now() + deadline;
    boost::system::error_code ec;
    for (;;) {
      c->sock_.close(ec);
      c->sock_.connect(boost::asio::local::stream_protocol::endpoint(socket.native()), ec);
      if (!ec) {
        break;
      }
      if (c->alive_ && !c->alive_()) {
        return fail(errc::unavailable, "qmp: QEMU exited before its monitor socket appeared");
      }
      if (std::chrono::steady_clock::now() >= end) {
        return fail(errc::timeout, str_cat("qmp: connect ", socket.native(), ": ", ec.message(),
                                           " (after ", deadline.count(), " ms)"));
      }
      std::this_thread::sleep_for(connect_retry);
    }
    const auto greeting = c->read_message(end);
    if (!greeting) {
      return unexpected<error>(greeting.error());
    }
    if (greeting->find("\"QMP\"") == std::string::npos) {
      return fail(errc::protocol_error, str_cat("qmp: unexpected greeting ", *greeting));
    }
    if (auto r = c->execute("qmp_capabilities"); !r) {
      return unexpected<error>(r.error());
    }
    return c;
  }

  /// Runs a command; returns the reply's "return" text (the whole reply line). An "error"
  /// reply becomes an error with QEMU's description.
  result<std::string> execute(std::string_view command,
                              std::string_view arguments = {},
                              std::chrono::milliseconds timeout = 5s) {
    std::string line = str_cat("{\"execute\":", quote(command));
    if (!arguments.empty()) {
      line += str_cat(",\"arguments\":", arguments);
    }
    line += "}\n";
    boost::system::error_code ec;
    boost::asio::write(sock_, boost::asio::buffer(line), ec);
    if (ec) {
      return fail(ec, str_cat("qmp: ", command, ": write"));
    }
    const auto end = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto msg = read_message(end);
      if (!msg) {
        return unexpected<error>(std::move(msg).error().wrap(str_cat("qmp: ", command)));
      }
      if (msg->find("\"event\"") != std::string::npos &&
          msg->find("\"return\"") == std::string::npos) {
        events_.push_back(std::move(*msg));
        continue;
      }
      if (msg->find("\"error\"") != std::string::npos &&
          msg->find("\"return\"") == std::string::npos) {
        return fail(errc::protocol_error,
                    str_cat("qmp: ", command, ": ", string_member(*msg, "desc")));
      }
      return std::move(*msg);
    }
  }

  /// query-status's "status" ("running", "paused", "shutdown", ...).
  result<std::string> status() {
    auto r = execute("query-status");
    if (!r) {
      return unexpected<error>(r.error());
    }
    return string_member(*r, "status");
  }

  /// Asks QEMU to exit. QEMU may close the socket before or after answering.
  katana::status quit() {
    auto r = execute("quit", {}, 2s);
    if (!r && r.error().code != make_error_code(errc::unavailable)) {
      return unexpected<error>(r.error());
    }
    return {};
  }

  /// Events seen while waiting for replies.
  [[nodiscard]] const std::vector<std::string>& events() const noexcept { return events_; }

  /// Once QEMU has ended: adds the events still unread on the socket (its last one, SHUTDOWN,
  /// says why it ended) and returns them all. Stops at end of file or 250 ms without data.
  const std::vector<std::string>& drain_events() {
    for (;;) {
      auto msg = read_message(std::chrono::steady_clock::now());
      if (!msg) {
        return events_;
      }
      if (msg->find("\"event\"") != std::string::npos) {
        events_.push_back(std::move(*msg));
      }
    }
  }

  void close() {
    boost::system::error_code ec;
    sock_.close(ec);
  }

 private:
  explicit client(alive_fn alive) : sock_(io_), alive_(std::move(alive)) {}

  /// One line, reading in 250 ms slices until `end`.
  result<std::string> read_message(std::chrono::steady_clock::time_point end) {
    for (;;) {
      if (const auto nl = buf_.find('\n'); nl != std::string::npos) {
        std::string msg = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return msg;
      }
      boost::system::error_code ec = boost::asio::error::would_block;
      boost::asio::async_read_until(
          sock_, boost::asio::dynamic_buffer(buf_), '\n',
          [&](const boost::system::error_code& e, std::size_t) { ec = e; });
      io_.restart();
      io_.run_for(read_timeout);
      if (!io_.stopped()) {
        sock_.cancel();
        io_.restart();
        io_.run();
      }
      if (ec == boost::asio::error::operation_aborted || ec == boost::asio::error::would_block) {
        if (alive_ && !alive_()) {
          return fail(errc::unavailable, "QEMU exited");
        }
        if (std::chrono::steady_clock::now() >= end) {
          return fail(errc::timeout, "no reply");
        }
        continue;
      }
      if (ec == boost::asio::error::eof) {
        if (buf_.find('\n') != std::string::npos) {
          continue;
        }
        return fail(errc::unavailable, "QEMU closed the monitor");
      }
      if (ec) {
        return fail(ec, "read");
      }
    }
  }

  boost::asio::io_context io_{1};
  boost::asio::local::stream_protocol::socket sock_;
  alive_fn alive_;
  std::string buf_;
  std::vector<std::string> events_;
};

/// Why QEMU stopped the machine, from the last SHUTDOWN event among `events` ("guest-reset",
/// "guest-shutdown", "guest-panic", "host-signal", ...); empty when there is none.
inline std::string shutdown_reason(const std::vector<std::string>& events) {
  for (auto it = events.rbegin(); it != events.rend(); ++it) {
    if (string_member(*it, "event") == "SHUTDOWN") {
      return string_member(*it, "reason");
    }
  }
  return {};
}

}  // namespace katana::inline v0::hypervisor::qemu::qmp
