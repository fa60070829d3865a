// ttrpc-echo-server: katana.test.Echo over katana's ttrpc, the C++ twin of the Go peer's server
// (tests/interop/go/ttrpc-peer). Messages are protobuf's well-known wrappers:
//
//   Echo     BytesValue  -> BytesValue   the same bytes
//   Fail     StringValue -> (error)      NOT_FOUND "container <value>"
//   Metadata Empty       -> StringValue  value of metadata key containerd-namespace-ttrpc
//   Sleep    UInt32Value -> StringValue  sleeps N ms; "deadline"/"no deadline"; DEADLINE_EXCEEDED
//   Big      UInt32Value -> BytesValue   N bytes of 'x'
//
// Usage: ttrpc-echo-server --socket PATH. Serves until SIGTERM or SIGINT, then shuts down
// gracefully and removes the socket.
#include <chrono>
#include <csignal>
#include <cstdio>
#include <string>
#include <string_view>
#include <unistd.h>

#include <boost/asio/signal_set.hpp>
#include <google/protobuf/empty.pb.h>
#include <google/protobuf/wrappers.pb.h>

#include <katana/ttrpc/transport.hpp>

namespace {

using katana::result;
using katana::task;
using katana::ttrpc::code;
using katana::ttrpc::server_context;
namespace asio = boost::asio;
namespace pb = google::protobuf;

constexpr std::string_view service = "katana.test.Echo";

template <class Message>
result<Message> parse(const std::string& payload) {
  Message m;
  if (!m.ParseFromString(payload)) {
    return katana::fail(make_error_code(code::internal),
                        "ttrpc: error unmarshalling payload: " + m.GetTypeName());
  }
  return m;
}

katana::ttrpc::service_table echo_service() {
  katana::ttrpc::service_table t;
  const std::string s(service);
  t.add(s, "Echo", [](server_context&, std::string in) -> task<result<std::string>> {
    // BytesValue in, the same BytesValue out: parsed anyway, as a generated handler would.
    auto m = parse<pb::BytesValue>(in);
    if (!m) {
      co_return katana::unexpected<katana::error>(std::move(m).error());
    }
    co_return m->SerializeAsString();
  });
  t.add(s, "Fail", [](server_context&, std::string in) -> task<result<std::string>> {
    auto m = parse<pb::StringValue>(in);
    if (!m) {
      co_return katana::unexpected<katana::error>(std::move(m).error());
    }
    co_return katana::fail(make_error_code(code::not_found), "container " + m->value());
  });
  t.add(s, "Metadata", [](server_context& ctx, std::string in) -> task<result<std::string>> {
    auto m = parse<pb::Empty>(in);
    if (!m) {
      co_return katana::unexpected<katana::error>(std::move(m).error());
    }
    pb::StringValue out;
    out.set_value(std::string(ctx.value("containerd-namespace-ttrpc").value_or("<none>")));
    co_return out.SerializeAsString();
  });
  t.add(s, "Sleep", [](server_context& ctx, std::string in) -> task<result<std::string>> {
    auto m = parse<pb::UInt32Value>(in);
    if (!m) {
      co_return katana::unexpected<katana::error>(std::move(m).error());
    }
    const auto wake = std::chrono::steady_clock::now() + std::chrono::milliseconds(m->value());
    const bool cut = ctx.deadline && *ctx.deadline < wake;
    asio::steady_timer timer(co_await asio::this_coro::executor, cut ? *ctx.deadline : wake);
    co_await timer.async_wait(asio::use_awaitable);
    if (cut) {
      co_return katana::fail(make_error_code(code::deadline_exceeded), "context deadline exceeded");
    }
    pb::StringValue out;
    out.set_value(ctx.deadline ? "deadline" : "no deadline");
    co_return out.SerializeAsString();
  });
  t.add(s, "Big", [](server_context&, std::string in) -> task<result<std::string>> {
    auto m = parse<pb::UInt32Value>(in);
    if (!m) {
      co_return katana::unexpected<katana::error>(std::move(m).error());
    }
    if (m->value() > 4 * katana::ttrpc::max_message_size) {
      co_return katana::fail(make_error_code(code::resource_exhausted), "too big");
    }
    pb::BytesValue out;
    out.set_value(std::string(m->value(), 'x'));
    co_return out.SerializeAsString();
  });
  return t;
}

}  // namespace

int main(int argc, char* argv[]) {
  std::string socket;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--socket" && i + 1 < argc) {
      socket = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s --socket PATH\n", argv[0]);
      return 2;
    }
  }
  if (socket.empty()) {
    std::fprintf(stderr, "usage: %s --socket PATH\n", argv[0]);
    return 2;
  }

  asio::io_context io(1);
  auto acceptor = katana::ttrpc::listen_unix(io.get_executor(), socket);
  if (!acceptor) {
    std::fprintf(stderr, "ttrpc-echo-server: %s\n", acceptor.error().message().c_str());
    return 1;
  }
  katana::ttrpc::unix_server server(echo_service());
  asio::co_spawn(io, server.serve(*acceptor), asio::detached);

  asio::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&](boost::system::error_code ec, int) {
    if (!ec) {
      asio::co_spawn(
          io,
          [&]() -> task<void> {
            co_await server.shutdown(*acceptor);
            io.stop();
          },
          asio::detached);
    }
  });

  std::printf("listening on %s\n", socket.c_str());
  std::fflush(stdout);
  io.run();
  ::unlink(socket.c_str());
  return 0;
}
