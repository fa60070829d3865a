// Where katana-agent listens (DESIGN.md §2's agent channel): a vsock port (Kata 2.x+: -1:1024),
// a virtio-serial port found by name (Kata 1.x's agent.channel.0; works under TCG without
// /dev/vhost-vsock), or a unix socket (host mode, tests). A virtio-serial port is not a
// listening socket: it is one byte stream that the host connects to and disconnects from,
// so the agent serves it again and again.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include <katana/agent/config.hpp>
#include <katana/agent/guest.hpp>
#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/try.hpp>
#include <katana/ttrpc/asio.hpp>
#include <katana/ttrpc/transport.hpp>

namespace katana::inline v0::agent {

struct listen_address {
  enum class kind { unix_socket, vsock, serial };
  kind type = kind::vsock;
  std::string path;       // unix: socket path ("@name": abstract); serial: /dev/... (may be empty)
  std::string port_name;  // serial: the virtio-serial port's name when path is empty
  std::uint32_t cid = static_cast<std::uint32_t>(-1);
  std::uint32_t port = 1024;
};

/// "vsock://-1:1024", "vsock://:1024", "unix:///run/a.sock", "unix://@abstract",
/// "serial://agent.channel.0", "serial:///dev/vport1p1".
inline result<listen_address> parse_listen_address(std::string_view a) {
  listen_address out;
  const auto bad = [&](std::string_view why) {
    return fail(errc::invalid_argument, str_cat("listen address \"", a, "\": ", why));
  };
  if (a.rfind("unix://", 0) == 0) {
    out.type = listen_address::kind::unix_socket;
    out.path = std::string(a.substr(7));
    if (out.path.empty() || (out.path.front() != '/' && out.path.front() != '@')) {
      return bad("a unix socket needs an absolute path or @name");
    }
    return out;
  }
  if (a.rfind("vsock://", 0) == 0) {
    out.type = listen_address::kind::vsock;
    const auto rest = a.substr(8);
    const auto colon = rest.rfind(':');
    if (colon == std::string_view::npos) {
      return bad("expected vsock://<cid>:<port>");
    }
    const auto cid = rest.substr(0, colon);
    if (!cid.empty() && cid != "-1" && cid != "any") {
      out.cid = KATANA_TRY(detail::parse_u32("server_addr cid", cid));
    }
    out.port = KATANA_TRY(detail::parse_u32("server_addr port", rest.substr(colon + 1)));
    return out;
  }
  if (a.rfind("serial://", 0) == 0) {
    out.type = listen_address::kind::serial;
    const auto rest = a.substr(9);
    if (rest.empty()) {
      return bad("expected serial://<port name> or serial:///dev/<device>");
    }
    if (rest.front() == '/') {
      out.path = std::string(rest);
    } else {
      out.port_name = std::string(rest);
    }
    return out;
  }
  return bad("unknown scheme (unix://, vsock:// or serial://)");
}

inline std::string to_string(const listen_address& a) {
  switch (a.type) {
    case listen_address::kind::unix_socket:
      return "unix://" + a.path;
    case listen_address::kind::vsock:
      return str_cat("vsock://", static_cast<std::int32_t>(a.cid), ":", a.port);
    case listen_address::kind::serial:
      return "serial://" + (a.path.empty() ? a.port_name : a.path);
  }
  return "?";
}

// The agent's vsock listener and katana-ctl's connector are ttrpc's.
using ttrpc::connect_vsock;
using ttrpc::listen_vsock;

/// The /dev node of the virtio-serial port called `name`: the vportNpM whose
/// /sys/class/virtio-ports/vportNpM/name holds it. errc::not_found until it exists.
inline result<std::filesystem::path> find_virtio_port(
    std::string_view name,
    const std::filesystem::path& sys_root = "/sys",
    const std::filesystem::path& dev_root = "/dev") {
  std::error_code ec;
  const auto cls = sys_root / "class" / "virtio-ports";
  for (std::filesystem::directory_iterator it(cls, ec), end; !ec && it != end; it.increment(ec)) {
    auto text = detail::read_small_file(it->path() / "name");
    if (text && detail::trim(*text) == name) {
      return dev_root / it->path().filename();
    }
  }
  return fail(errc::not_found, str_cat("no virtio-serial port named ", name, " in ", cls.string()));
}

/// Polls for the port (it appears a few ms after virtio_console probes, GUEST-VM.md).
inline task<result<std::filesystem::path>> wait_virtio_port(
    std::string name,
    std::chrono::milliseconds timeout,
    std::filesystem::path sys_root = "/sys",
    std::filesystem::path dev_root = "/dev") {
  const auto end = std::chrono::steady_clock::now() + timeout;
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    auto r = find_virtio_port(name, sys_root, dev_root);
    std::error_code ec;
    if (r && std::filesystem::exists(*r, ec)) {
      co_return r;
    }
    if (std::chrono::steady_clock::now() >= end) {
      co_return r ? fail(errc::not_found, r->string() + " has no device node") : r;
    }
    timer.expires_after(std::chrono::milliseconds(10));
    boost::system::error_code ignored;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
}

/// The address to serve from the configuration: server_addr if given; else by channel:
/// virtio-serial (serial://agent.channel.0), vsock (vsock://-1:1024), or auto: the
/// virtio-serial port if one named agent.channel.0 shows up, vsock when /dev/vsock exists and
/// no port appeared within `grace`.
inline task<result<listen_address>> resolve_listen_address(
    agent_config cfg,
    std::chrono::milliseconds timeout,
    std::chrono::milliseconds grace = std::chrono::milliseconds(500),
    std::filesystem::path sys_root = "/sys",
    std::filesystem::path dev_root = "/dev") {
  if (!cfg.server_addr.empty()) {
    co_return parse_listen_address(cfg.server_addr);
  }
  if (cfg.channel == "vsock") {
    co_return parse_listen_address(default_vsock_address);
  }
  if (cfg.channel == "virtio-serial") {
    co_return parse_listen_address(str_cat("serial://", virtio_serial_port_name));
  }
  const auto start = std::chrono::steady_clock::now();
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    if (find_virtio_port(virtio_serial_port_name, sys_root, dev_root)) {
      co_return parse_listen_address(str_cat("serial://", virtio_serial_port_name));
    }
    std::error_code ec;
    const auto waited = std::chrono::steady_clock::now() - start;
    if (waited >= grace && std::filesystem::exists(dev_root / "vsock", ec)) {
      co_return parse_listen_address(default_vsock_address);
    }
    if (waited >= timeout) {
      co_return fail(
          errc::not_found,
          str_cat("no agent channel: neither a virtio-serial port named ", virtio_serial_port_name,
                  " nor /dev/vsock appeared within ", timeout.count(), " ms"));
    }
    timer.expires_after(std::chrono::milliseconds(10));
    boost::system::error_code ignored;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
}

}  // namespace katana::inline v0::agent
