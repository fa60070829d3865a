// Byte-stream transports ttrpc runs over: unix sockets (path or abstract), vsock, hybrid vsock
// (a unix socket to the VMM plus "CONNECT <port>\n" / "OK <port>\n"), and a character device
// such as a virtio-serial port inside a guest.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstring>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <sys/stat.h>

#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <katana/core/error.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/try.hpp>
#include <katana/ttrpc/asio.hpp>
#include <katana/ttrpc/client.hpp>
#include <katana/ttrpc/server.hpp>

namespace katana::inline v0::ttrpc {

using unix_socket = asio::local::stream_protocol::socket;
using unix_acceptor = asio::local::stream_protocol::acceptor;
using vsock_socket = asio::generic::stream_protocol::socket;
using vsock_acceptor = asio::basic_socket_acceptor<asio::generic::stream_protocol>;
using char_device = asio::posix::stream_descriptor;

using unix_client = basic_client<unix_socket>;
using unix_server = basic_server<unix_socket>;
using vsock_client = basic_client<vsock_socket>;
using vsock_server = basic_server<vsock_socket>;
using char_device_client = basic_client<char_device>;
using char_device_server = basic_server<char_device>;

/// "unix:///run/x.sock", "/run/x.sock", or "@name" / "unix://@name" for the abstract namespace.
inline result<asio::local::stream_protocol::endpoint> unix_endpoint(std::string_view address) {
  if (address.substr(0, 7) == "unix://") {
    address.remove_prefix(7);
  }
  if (address.empty() || address == "@") {
    return fail(errc::invalid_argument, "unix socket address is empty");
  }
  std::string path(address);
  if (path.front() == '@') {
    path.front() = '\0';
  }
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    return fail(errc::invalid_argument,
                str_cat("unix socket path \"", address, "\" is longer than ",
                        sizeof(sockaddr_un::sun_path) - 1, " bytes"));
  }
  return asio::local::stream_protocol::endpoint(path);
}

namespace detail {
// Coroutines take their strings by value: a string_view parameter would dangle when the caller's
// string is a temporary and the awaitable is awaited after the full-expression that made it.
inline task<result<unix_socket>> connect_unix(std::string addr) {
  auto ep = unix_endpoint(addr);
  if (!ep) {
    co_return unexpected<error>(std::move(ep).error());
  }
  unix_socket sock(co_await asio::this_coro::executor);
  boost::system::error_code ec;
  co_await sock.async_connect(*ep, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    co_return fail(ec, "connect " + addr);
  }
  co_return sock;
}
}  // namespace detail

inline task<result<unix_socket>> connect_unix(std::string_view address) {
  return detail::connect_unix(std::string(address));
}

/// Listens on a unix socket; a path socket is created with mode 0600 semantics left to umask.
template <class Executor>
result<unix_acceptor> listen_unix(const Executor& ex, std::string_view address) {
  auto ep = KATANA_TRY(unix_endpoint(address));
  unix_acceptor acc(ex);
  boost::system::error_code ec;
  acc.open(ep.protocol(), ec);
  if (!ec) {
    acc.bind(ep, ec);
  }
  if (!ec) {
    acc.listen(asio::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    return fail(ec, str_cat("listen ", address));
  }
  return acc;
}

namespace detail {
// A generic endpoint's third argument is the socket's protocol, not its type: AF_VSOCK knows
// only protocol 0 (anything else is EPROTONOSUPPORT).
inline asio::generic::stream_protocol::endpoint vsock_endpoint(std::uint32_t cid,
                                                               std::uint32_t port) {
  sockaddr_vm sa{};
  sa.svm_family = AF_VSOCK;
  sa.svm_cid = cid;
  sa.svm_port = port;
  return {&sa, sizeof sa, 0};
}
}  // namespace detail

inline task<result<vsock_socket>> connect_vsock(std::uint32_t cid, std::uint32_t port) {
  vsock_socket sock(co_await asio::this_coro::executor);
  boost::system::error_code ec;
  co_await sock.async_connect(detail::vsock_endpoint(cid, port),
                              asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    co_return fail(ec, str_cat("connect vsock://", cid, ":", port));
  }
  co_return sock;
}

/// Listens on vsock port `port` for any CID (the agent's vsock://-1:1024).
template <class Executor>
result<vsock_acceptor> listen_vsock(const Executor& ex,
                                    std::uint32_t port,
                                    std::uint32_t cid = VMADDR_CID_ANY) {
  vsock_acceptor acc(ex);
  boost::system::error_code ec;
  const auto ep = detail::vsock_endpoint(cid, port);
  acc.open(ep.protocol(), ec);
  if (!ec) {
    acc.bind(ep, ec);
  }
  if (!ec) {
    acc.listen(asio::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    return fail(ec, str_cat("listen vsock://", static_cast<std::int32_t>(cid), ":", port));
  }
  return acc;
}

namespace detail {
inline task<result<unix_socket>> connect_hybrid_vsock(std::string uds_path,
                                                      std::uint32_t port,
                                                      std::chrono::milliseconds handshake_timeout) {
  const std::string where = str_cat("hvsock://", uds_path, ":", port);
  auto sock = co_await connect_unix(uds_path);
  if (!sock) {
    co_return unexpected<error>(std::move(sock).error().wrap(where));
  }
  const std::string hello = str_cat("CONNECT ", port, "\n");
  asio::steady_timer timer(sock->get_executor(), handshake_timeout);
  bool timed_out = false;
  timer.async_wait([&](boost::system::error_code ec) {
    if (!ec) {
      timed_out = true;
      boost::system::error_code ignored;
      sock->close(ignored);
    }
  });
  boost::system::error_code ec;
  co_await asio::async_write(*sock, asio::buffer(hello),
                             asio::redirect_error(asio::use_awaitable, ec));
  // Read byte by byte: whatever follows the newline is ttrpc and must stay in the socket.
  std::string line;
  while (!ec && line.size() < 64 && (line.empty() || line.back() != '\n')) {
    char ch = 0;
    co_await asio::async_read(*sock, asio::buffer(&ch, 1),
                              asio::redirect_error(asio::use_awaitable, ec));
    if (!ec) {
      line += ch;
    }
  }
  timer.cancel();
  if (timed_out) {
    co_return fail(errc::timeout, str_cat(where, ": no handshake reply within ",
                                          handshake_timeout.count(), " ms"));
  }
  if (ec) {
    co_return fail(ec, where + ": handshake");
  }
  if (line.substr(0, 3) != "OK ") {
    co_return fail(errc::protocol_error,
                   where + ": handshake refused: \"" + line.substr(0, line.find('\n')) + "\"");
  }
  co_return std::move(*sock);
}
}  // namespace detail

/// Hybrid vsock (Firecracker, Cloud Hypervisor): connect to the VMM's unix socket, ask for the
/// guest port, and expect one "OK <host port>" line before ttrpc starts.
inline task<result<unix_socket>> connect_hybrid_vsock(
    std::string_view uds_path,
    std::uint32_t port,
    std::chrono::milliseconds handshake_timeout = std::chrono::seconds(10)) {
  return detail::connect_hybrid_vsock(std::string(uds_path), port, handshake_timeout);
}

/// Opens a character device (e.g. /dev/vport1p1, the virtio-serial port agent.channel.0) as a
/// ttrpc byte stream.
template <class Executor>
result<char_device> open_char_device(const Executor& ex, const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    return fail_errno("open " + path);
  }
  return char_device(ex, fd);
}

}  // namespace katana::inline v0::ttrpc
