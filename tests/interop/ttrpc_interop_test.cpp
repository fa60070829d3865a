// Interoperability with the reference Go ttrpc (containerd/ttrpc 1.1.1, Debian's package), in
// both directions over real unix sockets:
//   [go-server]  katana's client drives the Go peer's server (tests/interop/go/ttrpc-peer);
//   [go-client]  the Go peer's client runs its cases against katana's ttrpc-echo-server.
// Every child process is killed and reaped and every temporary directory removed, also when a
// check fails. Without Go (or its ttrpc sources) each test says why and exits 77 (skipped).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/local/stream_protocol.hpp>
#include <google/protobuf/empty.pb.h>
#include <google/protobuf/wrappers.pb.h>

#include <katana/ttrpc/transport.hpp>

#include "catch.hpp"
#include "process.hpp"

using namespace katana::ttrpc;
using katana::result;
using katana::task;
using katana::test::child_process;
using katana::test::temp_dir;
namespace asio = boost::asio;
namespace pb = google::protobuf;

namespace {

constexpr const char* service = "katana.test.Echo";
constexpr auto long_timeout = std::chrono::seconds(60);

// The Go peer binary; without it the test is skipped (exit 77), saying why.
std::string go_peer() {
  const std::string path = KATANA_TTRPC_GO_PEER;
  std::string why = KATANA_TTRPC_GO_PEER_MISSING;
  if (why.empty() && !std::filesystem::exists(path)) {
    why = "the Go peer was not built: " + path + " is missing";
  }
  if (!why.empty()) {
    std::cout << "SKIP: " << why << std::endl;
    std::exit(77);
  }
  return path;
}

std::string bytes_value(const std::string& v) {
  pb::BytesValue m;
  m.set_value(v);
  return m.SerializeAsString();
}
std::string string_value(const std::string& v) {
  pb::StringValue m;
  m.set_value(v);
  return m.SerializeAsString();
}
std::string uint32_value(std::uint32_t v) {
  pb::UInt32Value m;
  m.set_value(v);
  return m.SerializeAsString();
}
template <class Message>
std::string value_of(const result<std::string>& r) {
  REQUIRE(r);
  Message m;
  REQUIRE(m.ParseFromString(*r));
  return std::string(m.value());
}

// Runs handlers until pred() holds or 60 s pass (the client's read loop never runs out of work).
template <class Pred>
void run_until(asio::io_context& io, Pred pred) {
  const auto end = std::chrono::steady_clock::now() + long_timeout;
  io.restart();
  while (!pred() && std::chrono::steady_clock::now() < end) {
    io.run_one_for(std::chrono::milliseconds(100));
  }
}

// A server process on a socket in a fresh temporary directory.
struct server_process {
  temp_dir dir;
  std::string socket = dir.file("ttrpc.sock");
  std::optional<child_process> proc;

  explicit server_process(const std::string& binary, std::vector<std::string> argv) {
    argv.insert(argv.begin(), binary);
    argv.insert(argv.end(), {"--socket", socket});
    auto p = child_process::spawn(argv, dir.file("server.log"));
    REQUIRE(p);
    proc.emplace(std::move(*p));
    auto up = katana::test::wait_for_socket(socket, *proc);
    INFO((up ? std::string() : up.error().message()));
    REQUIRE(up);
  }
  ~server_process() {
    if (proc) {
      const auto output = proc->output();
      const int rc = proc->terminate();
      if (rc != 0) {
        std::cout << "server exited with " << rc << "; its output:\n" << output << std::endl;
      }
    }
  }
};

// katana's client connected to the Go peer's server.
struct go_server {
  server_process server{go_peer(), {"server"}};
  asio::io_context io{1};
  std::optional<unix_client> client;

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

  go_server() {
    auto sock = run([&] { return connect_unix("unix://" + server.socket); });
    REQUIRE(sock);
    client.emplace(std::move(*sock));
  }
  ~go_server() {
    if (client) {
      client->close();
      io.restart();
      io.poll();  // lets the read loop see the close
    }
  }

  result<std::string> call(const std::string& method, std::string payload, call_options opts = {}) {
    if (opts.timeout.count() == 0) {
      opts.timeout = long_timeout;
    }
    return run([&] { return client->call(service, method, std::move(payload), opts); });
  }
};

void require_status(const result<std::string>& r, code c, const std::string& message = {}) {
  REQUIRE_FALSE(r);
  INFO("error: " << r.error().message());
  REQUIRE(to_code(r.error().code) == c);
  if (!message.empty()) {
    REQUIRE(r.error().context == message);
  }
}

// The largest BytesValue payload whose Echo request (with a deadline, as go_server::call sends)
// fills one frame exactly.
std::size_t largest_echo_payload() {
  const auto frame_size = [](std::size_t n) {
    request req{service,
                "Echo",
                bytes_value(std::string(n, 'y')),
                std::chrono::nanoseconds(long_timeout).count(),
                {}};
    return encode(req).size();
  };
  // The overhead only changes where a length prefix gains a byte: two steps settle it.
  std::size_t n = max_message_size - 64;
  n = max_message_size - (frame_size(n) - n);
  while (frame_size(n) > max_message_size) {
    --n;
  }
  REQUIRE(frame_size(n) == max_message_size);
  return n;
}

}  // namespace

// ---- katana client -> Go server -------------------------------------------------------------

TEST_CASE("katana client, Go server: unary echo", "[interop][go-server]") {
  go_server g;
  for (const std::string& in : {std::string("hello"), std::string(), std::string("\0\1\xff\x80", 4),
                                std::string(80000, 'a')}) {
    REQUIRE(value_of<pb::BytesValue>(g.call("Echo", bytes_value(in))) == in);
  }
  // No deadline at all (timeout_nano = 0) works too.
  call_options none;
  auto r = g.run([&] { return g.client->call(service, "Echo", bytes_value("x"), none); });
  REQUIRE(value_of<pb::BytesValue>(r) == "x");
}

TEST_CASE("katana client, Go server: unknown service and method", "[interop][go-server]") {
  go_server g;
  auto s = g.run([&] { return g.client->call("no.Such", "Echo", "", {}); });
  require_status(s, code::unimplemented, "service no.Such");
  auto m = g.run([&] { return g.client->call(service, "Nope", "", {}); });
  require_status(m, code::unimplemented, "method Nope");
}

TEST_CASE("katana client, Go server: status codes and messages", "[interop][go-server]") {
  go_server g;
  require_status(g.call("Fail", string_value("x")), code::not_found, "container x");
  auto r = g.call("Fail", string_value("abc"));
  require_status(r, code::not_found, "container abc");
  REQUIRE(r.error().code == std::errc::no_such_file_or_directory);  // the generic condition
  // A payload Go cannot unmarshal: INTERNAL from the Go runtime.
  require_status(g.call("Echo", "\xff\xff\xff"), code::internal);
  REQUIRE(value_of<pb::BytesValue>(g.call("Echo", bytes_value("still fine"))) == "still fine");
}

TEST_CASE("katana client, Go server: metadata", "[interop][go-server]") {
  go_server g;
  pb::Empty empty;
  REQUIRE(value_of<pb::StringValue>(g.call("Metadata", empty.SerializeAsString())) == "<none>");
  call_options o;
  o.timeout = long_timeout;
  o.metadata = {{"containerd-namespace-ttrpc", "k8s.io"}, {"other", "a"}, {"other", "b"}};
  REQUIRE(value_of<pb::StringValue>(g.call("Metadata", empty.SerializeAsString(), o)) == "k8s.io");
  // Go's MD lower-cases keys.
  o.metadata = {{"Containerd-Namespace-TTRPC", "moby"}};
  REQUIRE(value_of<pb::StringValue>(g.call("Metadata", empty.SerializeAsString(), o)) == "moby");
}

TEST_CASE("katana client, Go server: deadlines", "[interop][go-server][deadline]") {
  go_server g;
  call_options o;
  o.timeout = std::chrono::milliseconds(100);
  const auto start = std::chrono::steady_clock::now();
  require_status(g.call("Sleep", uint32_value(2000), o), code::deadline_exceeded);
  REQUIRE(std::chrono::steady_clock::now() - start < std::chrono::milliseconds(1500));
  // The Go handler saw timeout_nano as a context deadline; without one it sees none.
  o.timeout = std::chrono::seconds(5);
  REQUIRE(value_of<pb::StringValue>(g.call("Sleep", uint32_value(1), o)) == "deadline");
  auto none = g.run([&] { return g.client->call(service, "Sleep", uint32_value(1), {}); });
  REQUIRE(value_of<pb::StringValue>(none) == "no deadline");
  // The late DEADLINE_EXCEEDED from the Go side did not confuse the connection.
  REQUIRE(value_of<pb::BytesValue>(g.call("Echo", bytes_value("after"))) == "after");
}

TEST_CASE("katana client, Go server: 64 concurrent calls on one connection",
          "[interop][go-server]") {
  go_server g;
  constexpr int n = 64;
  std::vector<std::string> answers(n);
  int done = 0;
  for (int i = 0; i < n; ++i) {
    asio::co_spawn(
        g.io,
        [&, i]() -> task<void> {
          call_options o;
          o.timeout = std::chrono::seconds(30);
          // Later callers sleep less, so responses come back out of order.
          auto slept = co_await g.client->call(
              service, "Sleep", uint32_value(static_cast<std::uint32_t>((n - i) % 7)), o);
          auto e =
              co_await g.client->call(service, "Echo", bytes_value("call " + std::to_string(i)), o);
          pb::BytesValue m;
          answers[static_cast<std::size_t>(i)] =
              slept && e && m.ParseFromString(*e) ? m.value() : "failed";
          ++done;
        },
        asio::detached);
  }
  run_until(g.io, [&] { return done == n; });
  REQUIRE(done == n);
  for (int i = 0; i < n; ++i) {
    REQUIRE(answers[static_cast<std::size_t>(i)] == "call " + std::to_string(i));
  }
}

TEST_CASE("katana client, Go server: 4 MiB messages and the limit", "[interop][go-server][big]") {
  go_server g;
  const auto n = largest_echo_payload();
  const std::string big(n, 'y');
  REQUIRE(value_of<pb::BytesValue>(g.call("Echo", bytes_value(big))) == big);
  // One byte more does not fit: refused before sending, RESOURCE_EXHAUSTED.
  require_status(g.call("Echo", bytes_value(big + "y")), code::resource_exhausted);
  // A response over the limit: the Go 1.1.1 server sends it anyway; the client discards it and
  // fails that call only.
  require_status(g.call("Big", uint32_value(max_message_size)), code::resource_exhausted);
  REQUIRE(value_of<pb::BytesValue>(g.call("Big", uint32_value(1U << 20))).size() == 1U << 20);
  REQUIRE(g.client->is_open());
  REQUIRE(value_of<pb::BytesValue>(g.call("Echo", bytes_value("after"))) == "after");
}

TEST_CASE("raw frames, Go server: an oversized request is answered, the connection stays",
          "[interop][go-server][big]") {
  // Bypasses katana's client (which never sends such a frame) to see what the Go server does
  // with one, using katana's own header and envelope codecs on the same connection.
  server_process server(go_peer(), {"server"});
  asio::io_context io;
  unix_socket sock(io);
  sock.connect(asio::local::stream_protocol::endpoint(server.socket));
  const auto send_frame = [&](std::uint32_t id, const std::string& data) {
    const auto h = encode_header({static_cast<std::uint32_t>(data.size()), id,
                                  static_cast<std::uint8_t>(message_type::request), 0});
    asio::write(sock, std::vector<asio::const_buffer>{asio::buffer(h), asio::buffer(data)});
  };
  const auto read_frame = [&] {
    std::array<std::uint8_t, header_size> raw{};
    asio::read(sock, asio::buffer(raw));
    const auto h = decode_header(raw);
    REQUIRE(h.length <= max_message_size);
    std::string data(h.length, '\0');
    asio::read(sock, asio::buffer(data));
    auto resp = decode_response(data);
    REQUIRE(resp);
    return std::pair{h, std::move(*resp)};
  };

  send_frame(1, std::string(max_message_size + 1, 'z'));
  auto [h1, r1] = read_frame();
  REQUIRE(h1.stream_id == 1);
  REQUIRE(h1.type == static_cast<std::uint8_t>(message_type::response));
  REQUIRE(r1.status.code == static_cast<std::int32_t>(code::resource_exhausted));
  // katana's server answers with the very same text.
  REQUIRE(r1.status.message == "message length 4194305 exceed maximum message size of 4194304");

  send_frame(3, encode(request{service, "Echo", bytes_value("after"), 0, {}}));
  auto [h3, r3] = read_frame();
  REQUIRE(h3.stream_id == 3);
  REQUIRE(r3.status.code == 0);
  pb::BytesValue m;
  REQUIRE(m.ParseFromString(r3.payload));
  REQUIRE(m.value() == "after");
}

// ---- Go client -> katana server -------------------------------------------------------------

namespace {

// Runs one of the Go client's cases against katana's echo server; the Go client exits non-zero
// and says why on any mismatch. The server must then shut down gracefully (exit 0).
void go_client_case(const std::string& name) {
  const auto peer = go_peer();
  int server_rc = -1;
  {
    server_process server(KATANA_TTRPC_ECHO_SERVER, {});
    auto client = child_process::spawn({peer, "client", "--socket", server.socket, "--case", name},
                                       server.dir.file("client.log"));
    REQUIRE(client);
    const auto rc = client->wait_for(long_timeout);
    const auto output = client->output();
    std::cout << "Go client, case " << name << ":\n" << output << std::flush;
    INFO("Go client output:\n" << output);
    REQUIRE(rc.has_value());  // else it hung: the destructor kills it
    REQUIRE(*rc == 0);
    server_rc = server.proc->terminate();
    INFO("server output:\n" << server.proc->output());
    REQUIRE(server_rc == 0);
  }
}

}  // namespace

TEST_CASE("Go client, katana server: echo", "[interop][go-client]") {
  go_client_case("echo");
}
TEST_CASE("Go client, katana server: unknown service and method", "[interop][go-client]") {
  go_client_case("unimplemented");
}
TEST_CASE("Go client, katana server: status codes and messages", "[interop][go-client]") {
  go_client_case("errors");
}
TEST_CASE("Go client, katana server: metadata", "[interop][go-client]") {
  go_client_case("metadata");
}
TEST_CASE("Go client, katana server: deadlines", "[interop][go-client][deadline]") {
  go_client_case("deadline");
}
TEST_CASE("Go client, katana server: 64 concurrent calls on one connection",
          "[interop][go-client]") {
  go_client_case("concurrent");
}
TEST_CASE("Go client, katana server: 4 MiB messages and the limit", "[interop][go-client][big]") {
  go_client_case("big");
}
