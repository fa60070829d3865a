// The generated bindings end to end: typed clients against registered implementations over a
// real socket, for the golden test service, every RPC of Kata's agent protocol and every RPC of
// containerd's shim Task API and events service.
#include <chrono>
#include <optional>
#include <string>

#include <boost/asio/local/connect_pair.hpp>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <google/protobuf/reflection.h>

#include <katana/ttrpc/transport.hpp>

#include "agent.ttrpc.hpp"
#include "catch.hpp"
#include "echo.ttrpc.hpp"
#include "github.com/containerd/containerd/api/services/ttrpc/events/v1/events.ttrpc.hpp"
#include "github.com/containerd/containerd/runtime/v2/task/shim.ttrpc.hpp"
#include "health.ttrpc.hpp"

using katana::result;
using katana::task;
namespace asio = boost::asio;
namespace kt = katana::ttrpc;
namespace pb = google::protobuf;

namespace {

template <class Pred>
void run_until(asio::io_context& io, Pred pred) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  io.restart();
  while (!pred() && std::chrono::steady_clock::now() < end) {
    io.run_one_for(std::chrono::milliseconds(100));
  }
}

struct echo_impl {
  task<result<katana::test::v1::EchoResponse>> echo(kt::server_context&,
                                                    const katana::test::v1::EchoRequest& req) {
    katana::test::v1::EchoResponse r;
    r.set_text(req.text() + (req.has_repeat() ? " x" + std::to_string(req.repeat()) : ""));
    co_return r;
  }
  task<result<pb::Empty>> delete_(kt::server_context&, const katana::test::v1::EchoRequest& req) {
    if (req.text().empty()) {
      co_return katana::fail(katana::errc::invalid_argument, "nothing to delete");
    }
    co_return pb::Empty{};
  }
};

// Sets every singular string field to a marker, so a round trip can be checked.
void mark(pb::Message& m, const std::string& marker) {
  const auto* d = m.GetDescriptor();
  for (int i = 0; i < d->field_count(); ++i) {
    const auto* f = d->field(i);
    if (f->type() == pb::FieldDescriptor::TYPE_STRING && !f->is_repeated()) {
      m.GetReflection()->SetString(&m, f, marker);
    }
  }
}

struct raw_pair {
  asio::io_context io;
  std::optional<kt::unix_client> client;
  std::optional<kt::unix_server> server;
  explicit raw_pair(kt::service_table table) {
    kt::unix_socket a(io), b(io);
    asio::local::connect_pair(a, b);
    server.emplace(std::move(table));
    asio::co_spawn(io, server->serve_connection(std::move(a)), asio::detached);
    client.emplace(std::move(b));
  }
};

// For every RPC of a generated service: the server checks the request it parsed and answers a
// marked response; the typed client checks what it got.
template <class Service>
void round_trip_every_rpc() {
  struct impl {};
  kt::service_table table;
  int methods = 0;
  Service::for_each_method([&](auto req_t, auto resp_t, std::string_view name, auto) {
    using Req = typename decltype(req_t)::type;
    using Resp = typename decltype(resp_t)::type;
    const std::string method(name);
    kt::register_method<Req, Resp>(
        table, Service::name, name, std::make_shared<impl>(),
        [method](impl&, kt::server_context& ctx, const Req& req) -> task<result<Resp>> {
          Req expected;
          mark(expected, "req:" + method);
          if (req.SerializeAsString() != expected.SerializeAsString() || ctx.method != method) {
            co_return katana::fail(katana::errc::invalid_argument, "request mismatch in " + method);
          }
          Resp r;
          mark(r, "resp:" + method);
          co_return r;
        });
    ++methods;
  });
  raw_pair p(std::move(table));
  int ok = 0;
  Service::for_each_method([&](auto req_t, auto resp_t, std::string_view name, auto call) {
    using Req = typename decltype(req_t)::type;
    using Resp = typename decltype(resp_t)::type;
    const std::string method(name);
    Req req;
    mark(req, "req:" + method);
    typename Service::template client_type<katana::ttrpc::unix_socket> client(*p.client);
    std::optional<result<Resp>> out;
    asio::co_spawn(
        p.io, [&]() -> task<void> { out = co_await call(client, req, {}); }, asio::detached);
    run_until(p.io, [&] { return out.has_value(); });
    INFO(Service::name << "/" << method);
    REQUIRE(out);
    REQUIRE(*out);
    Resp expected;
    mark(expected, "resp:" + method);
    REQUIRE((*out)->SerializeAsString() == expected.SerializeAsString());
    ++ok;
  });
  REQUIRE(ok == methods);
  REQUIRE(methods > 0);
}

}  // namespace

TEST_CASE("generated client and server: golden Echo service", "[ttrpc][bindings]") {
  kt::service_table table;
  katana::test::v1::register_echo(table, std::make_shared<echo_impl>());
  katana::test::v1::register_health(table, std::make_shared<echo_impl>());
  raw_pair p(std::move(table));
  katana::test::v1::echo_client<kt::unix_socket> client(*p.client);
  katana::test::v1::health_client<kt::unix_socket> health(*p.client);

  std::optional<result<katana::test::v1::EchoResponse>> echoed;
  std::optional<result<pb::Empty>> deleted;
  std::optional<result<katana::test::v1::EchoResponse>> cpu;
  std::optional<result<pb::Empty>> checked;
  asio::co_spawn(
      p.io,
      [&]() -> task<void> {
        katana::test::v1::EchoRequest req;
        req.set_text("hi");
        req.set_repeat(2);
        echoed = co_await client.echo(req);
        deleted = co_await client.delete_(katana::test::v1::EchoRequest{});
        cpu = co_await client.online_cpu_mem(katana::test::v1::EchoRequest_Options{});
        checked = co_await health.check(pb::Empty{});
      },
      asio::detached);
  run_until(p.io, [&] { return checked.has_value(); });
  REQUIRE(echoed);
  REQUIRE((*echoed)->text() == "hi x2");
  REQUIRE(kt::to_code(deleted->error().code) == kt::code::invalid_argument);
  REQUIRE(deleted->error().context == "nothing to delete");
  REQUIRE(kt::to_code(cpu->error().code) == kt::code::unimplemented);
  REQUIRE(cpu->error().context == "katana.test.v1.Echo/OnlineCPUMem is not implemented");
  REQUIRE(kt::to_code(checked->error().code) == kt::code::unimplemented);

  STATIC_REQUIRE(katana::test::v1::echo::name == "katana.test.v1.Echo");
  STATIC_REQUIRE(std::size(katana::test::v1::echo::methods) == 4);
  STATIC_REQUIRE(katana::test::v1::echo::methods[2].request_type ==
                 "katana.test.v1.EchoRequest.Options");
}

TEST_CASE("every RPC of Kata's agent protocol round-trips", "[ttrpc][bindings]") {
  round_trip_every_rpc<grpc::agent_service>();
  round_trip_every_rpc<grpc::health>();
  STATIC_REQUIRE(grpc::agent_service::name == "grpc.AgentService");
  STATIC_REQUIRE(std::size(grpc::agent_service::methods) == 42);
}

TEST_CASE("every RPC of containerd's shim Task API and events service round-trips",
          "[ttrpc][bindings]") {
  round_trip_every_rpc<containerd::task::v2::task>();
  round_trip_every_rpc<containerd::services::events::ttrpc::v1::events>();
  STATIC_REQUIRE(containerd::task::v2::task::name == "containerd.task.v2.Task");
}
