// Hostile frames from a raw peer, and the other transports: abstract unix sockets, hybrid
// vsock handshakes and a character device (a pty in raw mode stands in for virtio-serial).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <pty.h>
#include <string>
#include <termios.h>
#include <unistd.h>

#include <boost/asio/local/connect_pair.hpp>

#include <katana/ttrpc/transport.hpp>

#include "catch.hpp"

using namespace katana::ttrpc;
using katana::result;
using katana::task;
namespace asio = boost::asio;

namespace {

template <class Pred>
void run_until(asio::io_context& io, Pred pred) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  io.restart();
  while (!pred() && std::chrono::steady_clock::now() < end) {
    io.run_one_for(std::chrono::milliseconds(100));
  }
}

service_table echo_table() {
  service_table t;
  t.add("test.Echo", "Echo",
        [](server_context&, std::string in) -> task<result<std::string>> { co_return in; });
  return t;
}

std::string frame_bytes(frame_header h, std::string_view data) {
  const auto a = encode_header(h);
  return std::string(reinterpret_cast<const char*>(a.data()), a.size()) + std::string(data);
}

// A raw peer: writes bytes, reads whole response frames back.
struct raw_peer {
  asio::io_context io;
  unix_server server{echo_table()};
  unix_socket mine{io};

  raw_peer() {
    unix_socket theirs(io);
    asio::local::connect_pair(mine, theirs);
    asio::co_spawn(io, server.serve_connection(std::move(theirs)), asio::detached);
  }
  // Written asynchronously: the server runs on this thread and must drain the socket.
  void send(std::string bytes) {
    bool written = false;
    auto data = std::make_shared<std::string>(std::move(bytes));
    asio::async_write(mine, asio::buffer(*data),
                      [&written, data](boost::system::error_code, std::size_t) { written = true; });
    run_until(io, [&] { return written; });
  }
  std::optional<response> read_response(std::uint32_t* id = nullptr) {
    std::optional<response> out;
    bool done = false;
    asio::co_spawn(
        io,
        [&]() -> task<void> {
          std::array<std::uint8_t, header_size> h{};
          boost::system::error_code ec;
          co_await asio::async_read(mine, asio::buffer(h),
                                    asio::redirect_error(asio::use_awaitable, ec));
          if (ec) {
            done = true;
            co_return;
          }
          const auto hdr = decode_header(h);
          std::string data(hdr.length, '\0');
          co_await asio::async_read(mine, asio::buffer(data),
                                    asio::redirect_error(asio::use_awaitable, ec));
          if (id != nullptr) {
            *id = hdr.stream_id;
          }
          if (auto r = decode_response(data)) {
            out = std::move(*r);
          }
          done = true;
        },
        asio::detached);
    run_until(io, [&] { return done; });
    return out;
  }
  std::string echo_request(std::uint32_t id, std::string_view payload = "hi") {
    return frame_bytes({0, id, 1, 0}, "").substr(0, 0) + [&] {
      const auto body = encode(request{"test.Echo", "Echo", std::string(payload), 0, {}});
      return frame_bytes({static_cast<std::uint32_t>(body.size()), id, 1, 0}, body);
    }();
  }
};

}  // namespace

TEST_CASE("even and reused stream ids are INVALID_ARGUMENT", "[ttrpc][malformed]") {
  raw_peer p;
  p.send(p.echo_request(2));
  auto r = p.read_response();
  REQUIRE(r);
  REQUIRE(r->status.code == static_cast<int>(code::invalid_argument));
  REQUIRE(r->status.message == "StreamID must be odd for client initiated streams");
  p.send(p.echo_request(5));
  REQUIRE(p.read_response()->payload == "hi");
  p.send(p.echo_request(3));
  REQUIRE(p.read_response()->status.message == "StreamID cannot be re-used and must increment");
}

TEST_CASE("garbage envelopes are INVALID_ARGUMENT and the connection survives",
          "[ttrpc][malformed]") {
  raw_peer p;
  p.send(frame_bytes({3, 1, 1, 0}, "\x0a\x05s"));
  auto r = p.read_response();
  REQUIRE(r);
  REQUIRE(r->status.code == static_cast<int>(code::invalid_argument));
  p.send(p.echo_request(3, "still here"));
  REQUIRE(p.read_response()->payload == "still here");
}

TEST_CASE("oversized frames are RESOURCE_EXHAUSTED and skipped", "[ttrpc][malformed]") {
  raw_peer p;
  const std::uint32_t len = max_message_size + 10;
  p.send(frame_bytes({len, 1, 1, 0}, std::string(len, 'g')));
  std::uint32_t id = 0;
  auto r = p.read_response(&id);
  REQUIRE(r);
  REQUIRE(id == 1);
  REQUIRE(r->status.code == static_cast<int>(code::resource_exhausted));
  REQUIRE(r->status.message == "message length 4194314 exceed maximum message size of 4194304");
  p.send(p.echo_request(3, "after"));
  REQUIRE(p.read_response()->payload == "after");
}

TEST_CASE("unknown frame types and stray data frames are ignored", "[ttrpc][malformed]") {
  raw_peer p;
  p.send(frame_bytes({4, 1, 9, 0}, "????") + frame_bytes({2, 1, 3, 1}, "dd") + p.echo_request(3));
  std::uint32_t id = 0;
  REQUIRE(p.read_response(&id)->payload == "hi");
  REQUIRE(id == 3);
}

TEST_CASE("a peer hanging up mid-frame closes the connection cleanly", "[ttrpc][malformed]") {
  raw_peer p;
  p.send(frame_bytes({100, 1, 1, 0}, "partial"));
  p.io.restart();
  p.io.run_for(std::chrono::milliseconds(50));
  REQUIRE(p.server.connections() == 1);
  p.mine.close();
  run_until(p.io, [&] { return p.server.connections() == 0; });
  REQUIRE(p.server.connections() == 0);
}

TEST_CASE("truncated header then EOF closes cleanly", "[ttrpc][malformed]") {
  raw_peer p;
  p.send(std::string("\x00\x00\x00", 3));
  p.mine.shutdown(asio::socket_base::shutdown_send);
  run_until(p.io, [&] { return p.server.connections() == 0; });
  REQUIRE(p.server.connections() == 0);
}

TEST_CASE("unix listener: path and abstract addresses", "[ttrpc][transport]") {
  asio::io_context io;
  char dir[] = "/tmp/katana-ttrpc-XXXXXX";
  REQUIRE(::mkdtemp(dir) != nullptr);
  const std::string path = std::string(dir) + "/s.sock";
  const std::string abstract = "@katana-test-" + std::to_string(::getpid());
  for (const auto& address : {"unix://" + path, abstract}) {
    auto acc = listen_unix(io.get_executor(), address);
    REQUIRE(acc);
    unix_server server(echo_table());
    std::optional<result<std::string>> out;
    asio::co_spawn(io, server.serve(*acc), asio::detached);
    asio::co_spawn(
        io,
        [&]() -> task<void> {
          auto sock = co_await connect_unix(address);
          REQUIRE(sock);
          unix_client c(std::move(*sock));
          out = co_await c.call("test.Echo", "Echo", address);
          c.close();
          co_await server.shutdown(*acc);
        },
        asio::detached);
    run_until(io, [&] { return out.has_value(); });
    REQUIRE(out);
    REQUIRE(**out == address);
  }
  ::unlink(path.c_str());
  ::rmdir(dir);
  REQUIRE_FALSE(unix_endpoint(""));
  REQUIRE(unix_endpoint("/" + std::string(200, 'a')).error().message().find("longer than") !=
          std::string::npos);
}

TEST_CASE("connect errors name the address", "[ttrpc][transport]") {
  asio::io_context io;
  std::optional<result<unix_socket>> out;
  asio::co_spawn(
      io, [&]() -> task<void> { out = co_await connect_unix("/nonexistent/katana.sock"); },
      asio::detached);
  run_until(io, [&] { return out.has_value(); });
  REQUIRE(out);
  REQUIRE(out->error().message() == "connect /nonexistent/katana.sock: No such file or directory");
}

TEST_CASE("hybrid vsock handshake", "[ttrpc][transport]") {
  asio::io_context io;
  const std::string vmm = "@katana-hvsock-" + std::to_string(::getpid());
  auto acc = listen_unix(io.get_executor(), vmm);
  REQUIRE(acc);
  unix_server agent(echo_table());
  // A fake VMM: checks the CONNECT line, answers, then hands the socket to the agent server.
  auto fake_vmm = [&](std::string reply) -> task<void> {
    auto sock = co_await acc->async_accept(asio::use_awaitable);
    std::string line;
    char ch = 0;
    while (line.empty() || line.back() != '\n') {
      co_await asio::async_read(sock, asio::buffer(&ch, 1), asio::use_awaitable);
      line += ch;
    }
    REQUIRE(line == "CONNECT 1024\n");
    if (reply.empty()) {
      co_return;  // closes without answering
    }
    co_await asio::async_write(sock, asio::buffer(reply), asio::use_awaitable);
    co_await agent.serve_connection(std::move(sock));
  };
  std::optional<result<std::string>> out;
  asio::co_spawn(io, fake_vmm("OK 1073741824\n"), asio::detached);
  asio::co_spawn(
      io,
      [&]() -> task<void> {
        auto sock = co_await connect_hybrid_vsock(vmm, 1024);
        REQUIRE(sock);
        unix_client c(std::move(*sock));
        out = co_await c.call("test.Echo", "Echo", "through hvsock");
        c.close();
      },
      asio::detached);
  run_until(io, [&] { return out.has_value(); });
  REQUIRE(out);
  REQUIRE(**out == "through hvsock");

  std::optional<result<unix_socket>> refused;
  asio::co_spawn(io, fake_vmm(""), asio::detached);
  asio::co_spawn(
      io, [&]() -> task<void> { refused = co_await connect_hybrid_vsock(vmm, 1024); },
      asio::detached);
  run_until(io, [&] { return refused.has_value(); });
  REQUIRE(refused);
  REQUIRE_FALSE(*refused);
  REQUIRE(refused->error().message().find("hvsock://" + vmm + ":1024: handshake") == 0);
}

TEST_CASE("ttrpc over a character device (pty in raw mode)", "[ttrpc][transport]") {
  int master = -1;
  int slave = -1;
  REQUIRE(::openpty(&master, &slave, nullptr, nullptr, nullptr) == 0);
  termios raw{};
  REQUIRE(::tcgetattr(slave, &raw) == 0);
  ::cfmakeraw(&raw);
  REQUIRE(::tcsetattr(slave, TCSANOW, &raw) == 0);
  REQUIRE(::tcgetattr(master, &raw) == 0);
  ::cfmakeraw(&raw);
  REQUIRE(::tcsetattr(master, TCSANOW, &raw) == 0);
  char name[64] = {};
  REQUIRE(::ttyname_r(slave, name, sizeof name) == 0);

  asio::io_context io;
  auto dev = open_char_device(io.get_executor(), name);  // the "guest" side opens the device
  REQUIRE(dev);
  ::close(slave);
  char_device_server server(echo_table());
  asio::co_spawn(io, server.serve_connection(std::move(*dev)), asio::detached);
  char_device_client client(char_device(io, master));
  std::optional<result<std::string>> out;
  const std::string payload(100000, 'p');  // larger than a tty buffer: needs flow
  asio::co_spawn(
      io, [&]() -> task<void> { out = co_await client.call("test.Echo", "Echo", payload); },
      asio::detached);
  run_until(io, [&] { return out.has_value(); });
  REQUIRE(out);
  REQUIRE(*out);
  REQUIRE(**out == payload);
  client.close();
  REQUIRE_FALSE(open_char_device(io.get_executor(), "/dev/nonexistent-vport"));
}

TEST_CASE("vsock: the listener opens AF_VSOCK with protocol 0 and binds", "[ttrpc][transport]") {
  asio::io_context io;
  auto acc =
      listen_vsock(io.get_executor(), 0x4b41 + static_cast<std::uint32_t>(::getpid() % 1000));
  if (!acc && acc.error().code == std::errc::address_family_not_supported) {
    std::fprintf(stderr, "skipped: this kernel has no AF_VSOCK\n");
    std::exit(77);
  }
  REQUIRE(acc);  // EPROTONOSUPPORT when the protocol is not 0
  CHECK(acc->is_open());
}
