// Client and server over a real unix socketpair, and a raw peer sending hostile frames.
#include <chrono>
#include <future>
#include <optional>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <vector>

#include <boost/asio/local/connect_pair.hpp>

#include <katana/ttrpc/transport.hpp>

#include "catch.hpp"

using namespace katana::ttrpc;
using katana::result;
using katana::task;
namespace asio = boost::asio;

namespace {

// Runs handlers until pred() holds (or 20 s pass): background read loops never run out of work.
template <class Pred>
void run_until(asio::io_context& io, Pred pred) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  io.restart();
  while (!pred() && std::chrono::steady_clock::now() < end) {
    io.run_one_for(std::chrono::milliseconds(100));
  }
}

service_table test_table() {
  service_table t;
  t.add("test.Echo", "Echo",
        [](server_context&, std::string in) -> task<result<std::string>> { co_return in; });
  t.add("test.Echo", "Fail", [](server_context&, std::string in) -> task<result<std::string>> {
    co_return katana::fail(katana::errc::not_found, "container " + in);
  });
  t.add("test.Echo", "Namespace",
        [](server_context& ctx, std::string) -> task<result<std::string>> {
          co_return std::string(ctx.value("Containerd-Namespace-Ttrpc").value_or("<none>"));
        });
  t.add("test.Echo", "Sleep", [](server_context& ctx, std::string ms) -> task<result<std::string>> {
    asio::steady_timer timer(co_await asio::this_coro::executor,
                             std::chrono::milliseconds(std::stoi(ms)));
    co_await timer.async_wait(asio::use_awaitable);
    co_return std::string(ctx.deadline ? "had deadline" : "no deadline");
  });
  t.add("test.Echo", "Big", [](server_context&, std::string n) -> task<result<std::string>> {
    co_return std::string(std::stoul(n), 'x');
  });
  t.add("test.Echo", "Throw", [](server_context&, std::string) -> task<result<std::string>> {
    throw std::runtime_error("boom");
    co_return std::string();
  });
  return t;
}

struct fixture {
  asio::io_context io;
  unix_server server{test_table()};
  std::optional<unix_client> client;

  fixture() {
    unix_socket a(io), b(io);
    asio::local::connect_pair(a, b);
    asio::co_spawn(io, server.serve_connection(std::move(a)), asio::detached);
    client.emplace(std::move(b));
  }

  // Runs a coroutine on the io_context to completion.
  template <class F>
  auto run(F f) {
    using R = typename decltype(f())::value_type;
    std::optional<R> out;
    asio::co_spawn(
        io, [&]() -> task<void> { out.emplace(co_await f()); }, asio::detached);
    run_until(io, [&] { return out.has_value(); });
    REQUIRE(out.has_value());
    return std::move(*out);
  }
};

}  // namespace

TEST_CASE("unary call round trip", "[ttrpc][rpc]") {
  fixture f;
  auto r = f.run([&] { return f.client->call("test.Echo", "Echo", "hello"); });
  REQUIRE(r);
  REQUIRE(*r == "hello");
  auto empty = f.run([&] { return f.client->call("test.Echo", "Echo", ""); });
  REQUIRE(empty);
  REQUIRE(empty->empty());
}

TEST_CASE("handler errors arrive as status code and message", "[ttrpc][rpc]") {
  fixture f;
  auto r = f.run([&] { return f.client->call("test.Echo", "Fail", "abc"); });
  REQUIRE_FALSE(r);
  REQUIRE(to_code(r.error().code) == code::not_found);
  REQUIRE(r.error().context == "container abc");
  auto t = f.run([&] { return f.client->call("test.Echo", "Throw", ""); });
  REQUIRE(to_code(t.error().code) == code::internal);
  REQUIRE(t.error().context == "handler threw: boom");
}

TEST_CASE("unknown service and method are UNIMPLEMENTED", "[ttrpc][rpc]") {
  fixture f;
  auto s = f.run([&] { return f.client->call("no.Such", "Echo", ""); });
  REQUIRE(to_code(s.error().code) == code::unimplemented);
  REQUIRE(s.error().context == "service no.Such");
  auto m = f.run([&] { return f.client->call("test.Echo", "Nope", ""); });
  REQUIRE(to_code(m.error().code) == code::unimplemented);
  REQUIRE(m.error().context == "method Nope");
}

TEST_CASE("metadata reaches the handler", "[ttrpc][rpc]") {
  fixture f;
  call_options o;
  o.metadata = {{"containerd-namespace-ttrpc", "k8s.io"}};
  auto r = f.run([&] { return f.client->call("test.Echo", "Namespace", "", o); });
  REQUIRE(*r == "k8s.io");
}

TEST_CASE("deadlines are enforced on both sides", "[ttrpc][rpc][deadline]") {
  fixture f;
  call_options o;
  o.timeout = std::chrono::milliseconds(50);
  const auto start = std::chrono::steady_clock::now();
  auto r = f.run([&] { return f.client->call("test.Echo", "Sleep", "2000", o); });
  REQUIRE_FALSE(r);
  REQUIRE(to_code(r.error().code) == code::deadline_exceeded);
  REQUIRE(std::chrono::steady_clock::now() - start < std::chrono::milliseconds(1500));
  // The handler saw the deadline; a call within it succeeds.
  o.timeout = std::chrono::seconds(5);
  auto ok = f.run([&] { return f.client->call("test.Echo", "Sleep", "1", o); });
  REQUIRE(*ok == "had deadline");
}

TEST_CASE("many concurrent calls are multiplexed on one connection", "[ttrpc][rpc]") {
  fixture f;
  constexpr int n = 64;
  std::vector<std::string> answers(n);
  int done = 0;
  for (int i = 0; i < n; ++i) {
    asio::co_spawn(
        f.io,
        [&, i]() -> task<void> {
          // Later callers sleep less, so responses come back out of order.
          auto r = co_await f.client->call("test.Echo", "Sleep", std::to_string((n - i) % 7));
          auto e = co_await f.client->call("test.Echo", "Echo", "call " + std::to_string(i));
          answers[static_cast<std::size_t>(i)] = r && e ? *e : "failed";
          ++done;
        },
        asio::detached);
  }
  run_until(f.io, [&] { return done == n; });
  REQUIRE(done == n);
  for (int i = 0; i < n; ++i) {
    REQUIRE(answers[static_cast<std::size_t>(i)] == "call " + std::to_string(i));
  }
}

TEST_CASE("messages up to 4 MiB pass; larger ones are RESOURCE_EXHAUSTED", "[ttrpc][rpc]") {
  fixture f;
  const std::string big(max_message_size - 1024, 'y');
  auto r = f.run([&] { return f.client->call("test.Echo", "Echo", big); });
  REQUIRE(r);
  REQUIRE(r->size() == big.size());
  // Too large to send: refused locally, the connection stays usable.
  auto too_big = f.run(
      [&] { return f.client->call("test.Echo", "Echo", std::string(max_message_size, 'z')); });
  REQUIRE(to_code(too_big.error().code) == code::resource_exhausted);
  // A response that would exceed the limit becomes RESOURCE_EXHAUSTED from the server.
  auto big_resp =
      f.run([&] { return f.client->call("test.Echo", "Big", std::to_string(max_message_size)); });
  REQUIRE(to_code(big_resp.error().code) == code::resource_exhausted);
  auto still = f.run([&] { return f.client->call("test.Echo", "Echo", "after"); });
  REQUIRE(*still == "after");
}

TEST_CASE("a peer that disconnects fails pending calls", "[ttrpc][rpc]") {
  asio::io_context io;
  unix_socket a(io), b(io);
  asio::local::connect_pair(a, b);
  unix_client client(std::move(b));
  std::optional<result<std::string>> out;
  asio::co_spawn(
      io, [&]() -> task<void> { out = co_await client.call("x.Y", "Z", "p"); }, asio::detached);
  io.run_for(std::chrono::milliseconds(50));
  REQUIRE_FALSE(out.has_value());
  a.close();
  run_until(io, [&] { return out.has_value(); });
  REQUIRE(out.has_value());
  REQUIRE_FALSE(*out);
  REQUIRE(out->error().code == katana::errc::unavailable);
  REQUIRE_FALSE(client.is_open());
}

TEST_CASE("graceful shutdown answers calls in flight, then closes", "[ttrpc][rpc]") {
  fixture f;
  std::optional<result<std::string>> slow;
  bool shut = false;
  asio::co_spawn(
      f.io, [&]() -> task<void> { slow = co_await f.client->call("test.Echo", "Sleep", "100"); },
      asio::detached);
  asio::co_spawn(
      f.io,
      [&]() -> task<void> {
        asio::steady_timer t(f.io, std::chrono::milliseconds(20));
        co_await t.async_wait(asio::use_awaitable);
        co_await f.server.shutdown();
        shut = true;
      },
      asio::detached);
  run_until(f.io, [&] { return shut && slow.has_value(); });
  REQUIRE(shut);
  REQUIRE(slow.has_value());
  REQUIRE(*slow);
  REQUIRE(f.server.connections() == 0);
}

TEST_CASE("async_call works with callbacks from another thread", "[ttrpc][rpc]") {
  fixture f;
  auto guard = asio::make_work_guard(f.io);
  std::thread runner([&] { f.io.run(); });
  std::promise<std::string> p;
  f.client->async_call(
      "test.Echo", "Echo", "cb", {},
      [&](std::exception_ptr, result<std::string> r) { p.set_value(r ? *r : "err"); });
  auto fut = p.get_future();
  REQUIRE(fut.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  REQUIRE(fut.get() == "cb");
  guard.reset();
  f.client->close();
  asio::post(f.io, [&] { f.io.stop(); });
  runner.join();
}
