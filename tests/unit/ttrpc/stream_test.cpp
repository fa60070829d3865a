// Streaming calls (ttrpc protocol 1.2 Data frames) and call cancellation over a real socketpair.
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/local/connect_pair.hpp>

#include <katana/ttrpc/transport.hpp>

#include "catch.hpp"

using namespace katana::ttrpc;
using katana::result;
using katana::status;
using katana::task;
namespace asio = boost::asio;

namespace {

template <class Pred>
void run_until(asio::io_context& io, Pred pred) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  io.restart();
  while (!pred() && std::chrono::steady_clock::now() < end) {
    io.run_one_for(std::chrono::milliseconds(100));
  }
}

service_table stream_table(bool* handler_saw_end = nullptr) {
  service_table t;
  // Client streaming: sums the numbers it receives, answers once.
  t.add_stream("test.Stream", "Sum", [](server_context&, server_stream& s) -> task<status> {
    long total = 0;
    for (;;) {
      auto m = co_await s.recv();
      if (!m) {
        co_return katana::unexpected<katana::error>(m.error());
      }
      if (!*m) {
        break;
      }
      total += std::stol(**m);
    }
    (void)s.send(std::to_string(total));
    co_return status{};
  });
  // Server streaming: counts to the number in the request.
  t.add_stream("test.Stream", "Count", [](server_context&, server_stream& s) -> task<status> {
    auto first = co_await s.recv();
    const int n = first && *first ? std::stoi(**first) : 0;
    for (int i = 1; i <= n; ++i) {
      (void)s.send(std::to_string(i));
    }
    co_return status{};
  });
  // Bidirectional: echoes each message upper-cased; "fail" ends the stream with NOT_FOUND.
  t.add_stream("test.Stream", "Echo",
               [handler_saw_end](server_context&, server_stream& s) -> task<status> {
                 for (;;) {
                   auto m = co_await s.recv();
                   if (!m || !*m) {
                     if (handler_saw_end != nullptr) {
                       *handler_saw_end = true;
                     }
                     co_return m ? status{} : katana::unexpected<katana::error>(m.error());
                   }
                   if (**m == "fail") {
                     co_return katana::fail(katana::errc::not_found, "no such thing");
                   }
                   std::string up = **m;
                   for (auto& ch : up) {
                     ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
                   }
                   (void)s.send(up);
                 }
               });
  t.add("test.Stream", "Sleep", [](server_context&, std::string ms) -> task<result<std::string>> {
    asio::steady_timer timer(co_await asio::this_coro::executor,
                             std::chrono::milliseconds(std::stoi(ms)));
    co_await timer.async_wait(asio::use_awaitable);
    co_return std::string("slept");
  });
  return t;
}

struct pair_fixture {
  asio::io_context io;
  unix_server server;
  std::optional<unix_client> client;
  unix_socket server_side{io};

  explicit pair_fixture(bool* saw_end = nullptr) : server(stream_table(saw_end)) {
    unix_socket b(io);
    asio::local::connect_pair(server_side, b);
    asio::co_spawn(io, server.serve_connection(std::move(server_side)), asio::detached);
    client.emplace(std::move(b));
  }
};

// Reads every message of a stream until it ends.
task<result<std::vector<std::string>>> drain(unix_client::call_stream& s) {
  std::vector<std::string> out;
  for (;;) {
    auto m = co_await s.recv();
    if (!m) {
      co_return katana::unexpected<katana::error>(m.error());
    }
    if (!*m) {
      co_return out;
    }
    out.push_back(std::move(**m));
  }
}

}  // namespace

TEST_CASE("client streaming: many messages in, one out", "[ttrpc][stream]") {
  pair_fixture f;
  std::optional<result<std::vector<std::string>>> got;
  asio::co_spawn(
      f.io,
      [&]() -> task<void> {
        auto s = co_await f.client->open_stream("test.Stream", "Sum", {}, {.client_streams = true});
        REQUIRE(s);
        for (int i = 1; i <= 100; ++i) {
          REQUIRE(s->send(std::to_string(i)));
        }
        REQUIRE(s->close_send());
        got = co_await drain(*s);
      },
      asio::detached);
  run_until(f.io, [&] { return got.has_value(); });
  REQUIRE(got);
  REQUIRE(*got);
  REQUIRE(**got == std::vector<std::string>{"5050"});
}

TEST_CASE("server streaming: one request, many answers", "[ttrpc][stream]") {
  pair_fixture f;
  std::optional<result<std::vector<std::string>>> got;
  asio::co_spawn(
      f.io,
      [&]() -> task<void> {
        auto s =
            co_await f.client->open_stream("test.Stream", "Count", "5", {.server_streams = true});
        REQUIRE(s);
        REQUIRE_FALSE(s->send("not allowed"));  // this side closed with the request
        got = co_await drain(*s);
      },
      asio::detached);
  run_until(f.io, [&] { return got.has_value(); });
  REQUIRE(**got == std::vector<std::string>{"1", "2", "3", "4", "5"});
}

TEST_CASE("bidirectional streams interleave with unary calls", "[ttrpc][stream]") {
  bool saw_end = false;
  pair_fixture f(&saw_end);
  std::vector<std::string> answers;
  std::optional<result<std::string>> unary;
  bool done = false;
  asio::co_spawn(
      f.io,
      [&]() -> task<void> {
        auto s = co_await f.client->open_stream("test.Stream", "Echo", {},
                                                {.client_streams = true, .server_streams = true});
        REQUIRE(s);
        for (const char* word : {"a", "bc", "def"}) {
          REQUIRE(s->send(word));
          auto m = co_await s->recv();
          REQUIRE(m);
          REQUIRE(*m);
          answers.push_back(**m);
          if (answers.size() == 2) {
            unary = co_await f.client->call("test.Stream", "Sleep", "1");
          }
        }
        REQUIRE(s->close_send());
        auto end = co_await s->recv();
        REQUIRE(end);
        REQUIRE_FALSE(*end);
        done = true;
      },
      asio::detached);
  run_until(f.io, [&] { return done && saw_end; });
  REQUIRE(done);
  REQUIRE(answers == std::vector<std::string>{"A", "BC", "DEF"});
  REQUIRE(*unary == "slept");
  REQUIRE(saw_end);
}

TEST_CASE("a failing stream handler ends the stream with its status", "[ttrpc][stream]") {
  pair_fixture f;
  std::optional<result<std::vector<std::string>>> got;
  asio::co_spawn(
      f.io,
      [&]() -> task<void> {
        auto s = co_await f.client->open_stream("test.Stream", "Echo", {},
                                                {.client_streams = true, .server_streams = true});
        REQUIRE(s->send("x"));
        REQUIRE(s->send("fail"));
        got = co_await drain(*s);
      },
      asio::detached);
  run_until(f.io, [&] { return got.has_value(); });
  REQUIRE_FALSE(*got);
  REQUIRE(to_code(got->error().code) == code::not_found);
  REQUIRE(got->error().context == "no such thing");
}

TEST_CASE("a client that disconnects mid-stream releases the handler", "[ttrpc][stream]") {
  bool saw_end = false;
  pair_fixture f(&saw_end);
  bool opened = false;
  asio::co_spawn(
      f.io,
      [&]() -> task<void> {
        auto s = co_await f.client->open_stream("test.Stream", "Echo", {},
                                                {.client_streams = true, .server_streams = true});
        REQUIRE(s->send("x"));
        (void)co_await s->recv();
        opened = true;
        f.client->close();
      },
      asio::detached);
  run_until(f.io, [&] { return opened && saw_end && f.server.connections() == 0; });
  REQUIRE(saw_end);
  REQUIRE(f.server.connections() == 0);
}

TEST_CASE("cancelling a call fails it with CANCELLED; the connection stays usable",
          "[ttrpc][cancel]") {
  pair_fixture f;
  cancel_source cancel;
  std::optional<result<std::string>> slow;
  std::optional<result<std::string>> after;
  const auto start = std::chrono::steady_clock::now();
  asio::co_spawn(
      f.io,
      [&]() -> task<void> {
        call_options o;
        o.cancel = cancel;
        slow = co_await f.client->call("test.Stream", "Sleep", "3000", std::move(o));
        after = co_await f.client->call("test.Stream", "Sleep", "1");
      },
      asio::detached);
  asio::steady_timer t(f.io, std::chrono::milliseconds(30));
  t.async_wait([&](boost::system::error_code) { cancel.cancel(); });
  run_until(f.io, [&] { return after.has_value(); });
  REQUIRE(slow);
  REQUIRE(to_code(slow->error().code) == code::cancelled);
  REQUIRE(std::chrono::steady_clock::now() - start < std::chrono::milliseconds(2500));
  REQUIRE(*after == "slept");
  REQUIRE(cancel.cancelled());
  // Already cancelled: a new call fails at once.
  std::optional<result<std::string>> late;
  asio::co_spawn(
      f.io,
      [&]() -> task<void> {
        call_options o;
        o.cancel = cancel;
        late = co_await f.client->call("test.Stream", "Sleep", "1000", std::move(o));
      },
      asio::detached);
  run_until(f.io, [&] { return late.has_value(); });
  REQUIRE(to_code(late->error().code) == code::cancelled);
}
