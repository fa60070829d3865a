// A synchronous client of Kata's agent protocol over unix (also a virtio-serial port's host
// socket), vsock or hybrid vsock, for agent-conformance and agent-bench.
#pragma once

#include <chrono>
#include <fcntl.h>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>

#include <google/protobuf/empty.pb.h>

#include <katana/agent/channel.hpp>
#include <katana/core/error.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/ttrpc/status.hpp>
#include <katana/ttrpc/transport.hpp>

// glibc's major()/minor() macros collide with LinuxDevice's accessors.
#undef major
#undef minor
#include "agent.pb.h"

namespace katana_agent_test {

namespace kt = katana::ttrpc;
using katana::result;
using katana::str_cat;
using namespace std::chrono_literals;
using empty = google::protobuf::Empty;

class agent_client {
 public:
  virtual ~agent_client() = default;
  virtual result<std::string> raw(std::string_view service,
                                  std::string_view method,
                                  std::string payload,
                                  std::chrono::milliseconds timeout) = 0;
  virtual void close() = 0;

  template <class Resp = empty, class Req>
  result<Resp> call(std::string_view method,
                    const Req& req,
                    std::chrono::milliseconds timeout = 60s) {
    return typed<Resp>("grpc.AgentService", method, req, timeout);
  }
  template <class Resp, class Req>
  result<Resp> typed(std::string_view service,
                     std::string_view method,
                     const Req& req,
                     std::chrono::milliseconds timeout) {
    std::string payload;
    req.SerializeToString(&payload);
    auto out = raw(service, method, std::move(payload), timeout);
    if (!out) {
      return katana::unexpected<katana::error>(std::move(out).error());
    }
    Resp r;
    if (!r.ParseFromString(*out)) {
      return katana::fail(katana::errc::parse_error, str_cat(method, ": bad response"));
    }
    return r;
  }
};

template <class Stream>
class client_on final : public agent_client {
 public:
  client_on(katana::asio::io_context& io, Stream s) : io_(io), c_(std::move(s)) {}
  result<std::string> raw(std::string_view service,
                          std::string_view method,
                          std::string payload,
                          std::chrono::milliseconds timeout) override {
    std::optional<result<std::string>> out;
    kt::call_options o;
    o.timeout = timeout;
    katana::asio::co_spawn(
        io_,
        [&, svc = std::string(service), m = std::string(method)]() -> katana::task<void> {
          out = co_await c_.call(svc, m, std::move(payload), std::move(o));
        },
        katana::asio::detached);
    io_.restart();
    while (!out) {
      io_.run_one_for(100ms);
    }
    return std::move(*out);
  }
  void close() override {
    c_.close();
    io_.restart();
    io_.poll();
  }

 private:
  katana::asio::io_context& io_;
  kt::basic_client<Stream> c_;
};

template <class Stream, class Connect>
result<std::unique_ptr<agent_client>> open_with(katana::asio::io_context& io, Connect connect) {
  std::optional<result<Stream>> s;
  katana::asio::co_spawn(
      io, [&]() -> katana::task<void> { s.emplace(co_await connect()); }, katana::asio::detached);
  io.restart();
  while (!s) {
    io.run_one_for(100ms);
  }
  if (!*s) {
    return katana::unexpected<katana::error>(std::move(*s).error());
  }
  return std::unique_ptr<agent_client>(new client_on<Stream>(io, std::move(**s)));
}

result<std::unique_ptr<agent_client>> open_client(katana::asio::io_context& io,
                                                  const std::string& address) {
  const auto split = [](std::string_view rest) -> std::pair<std::string, std::uint32_t> {
    const auto colon = rest.rfind(':');
    return {std::string(rest.substr(0, colon)),
            static_cast<std::uint32_t>(std::stoul(std::string(rest.substr(colon + 1))))};
  };
  if (address.rfind("vsock://", 0) == 0) {
    const auto [cid, port] = split(std::string_view(address).substr(8));
    const auto c = static_cast<std::uint32_t>(std::stoul(cid));
    return open_with<kt::vsock_socket>(
        io, [c, p = port] { return katana::agent::connect_vsock(c, p); });
  }
  if (address.rfind("hvsock://", 0) == 0) {
    const auto [uds, port] = split(std::string_view(address).substr(9));
    return open_with<kt::unix_socket>(
        io, [u = uds, p = port] { return kt::connect_hybrid_vsock(u, p); });
  }
  return open_with<kt::unix_socket>(io, [address] { return kt::connect_unix(address); });
}

template <class T>
std::string why_not(const result<T>& r) {
  if (r) {
    return {};
  }
  return str_cat(kt::to_string(kt::to_code(r.error().code)), ": ", kt::status_message(r.error()));
}

constexpr std::string_view base = "/run/kata-containers";

std::string rootfs_of(const std::string& cid) {
  return str_cat(base, "/shared/containers/", cid, "/rootfs");
}

result<std::string> read_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return katana::fail_errno("open " + path);
  }
  std::string out;
  char buf[65536];
  ssize_t n = 0;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) {
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

/// Builds a busybox rootfs for `cid` inside the guest, through CopyFile only.
std::string build_rootfs(agent_client& c, const std::string& cid, const std::string& busybox) {
  const auto bin = read_file(busybox);
  if (!bin) {
    return bin.error().message();
  }
  const auto root = rootfs_of(cid);
  for (const auto* d : {"bin", "proc", "sys", "dev", "tmp", "etc"}) {
    grpc::CopyFileRequest r;
    r.set_path(str_cat(root, "/", d));
    r.set_file_mode(S_IFDIR | 0755);
    r.set_dir_mode(0755);
    if (auto x = c.call("CopyFile", r); !x) {
      return str_cat("mkdir ", d, ": ", why_not(x));
    }
  }
  constexpr std::size_t chunk = 1 << 20;
  for (std::size_t off = 0; off < bin->size(); off += chunk) {
    grpc::CopyFileRequest r;
    r.set_path(root + "/bin/busybox");
    r.set_file_size(static_cast<std::int64_t>(bin->size()));
    r.set_file_mode(S_IFREG | 0755);
    r.set_dir_mode(0755);
    r.set_offset(static_cast<std::int64_t>(off));
    r.set_data(bin->substr(off, chunk));
    if (auto x = c.call("CopyFile", r); !x) {
      return str_cat("busybox chunk at ", off, ": ", why_not(x));
    }
  }
  for (const auto* tool : {"sh", "cat", "echo", "sleep", "hostname", "ls", "ps", "head", "wc",
                           "true", "false", "grep", "id", "tr", "yes", "kill", "stat", "sync"}) {
    grpc::CopyFileRequest r;
    r.set_path(str_cat(root, "/bin/", tool));
    r.set_file_mode(S_IFLNK | 0777);
    r.set_data("busybox");
    if (auto x = c.call("CopyFile", r); !x) {
      return str_cat("link ", tool, ": ", why_not(x));
    }
  }
  return {};
}

}  // namespace katana_agent_test
