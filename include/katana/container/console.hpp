// --console-socket: the runtime connects to a unix socket and the container init sends the
// pty master over it with SCM_RIGHTS, the message data being the master's name "/dev/ptmx"
// (runc's utils.SendFd / RecvFd protocol). This header is the runtime's and the receiver's
// side; the sender runs post-fork in init.hpp.
#pragma once

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/core/try.hpp>
#include <katana/core/unique_fd.hpp>

namespace katana::inline v0::container {

namespace detail {
inline result<sockaddr_un> unix_address(const std::filesystem::path& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.native().size() >= sizeof addr.sun_path) {
    return fail_errno("console socket path too long: " + path.native(), ENAMETOOLONG);
  }
  std::memcpy(addr.sun_path, path.c_str(), path.native().size());
  return addr;
}
}  // namespace detail

/// Connects to the --console-socket (a listening SOCK_STREAM unix socket).
inline result<unique_fd> connect_console_socket(const std::filesystem::path& path) {
  const sockaddr_un addr = KATANA_TRY(detail::unix_address(path));
  unique_fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) {
    return fail_errno("socket");
  }
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    return fail_errno("connect to console socket " + path.native());
  }
  return fd;
}

/// Listens on `path` (the receiving end, e.g. for tests or a runk client).
inline result<unique_fd> listen_console_socket(const std::filesystem::path& path) {
  const sockaddr_un addr = KATANA_TRY(detail::unix_address(path));
  unique_fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) {
    return fail_errno("socket");
  }
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(fd.get(), 1) != 0) {
    return fail_errno("listen on console socket " + path.native());
  }
  return fd;
}

struct received_fd {
  std::string name;
  unique_fd fd;
};

/// Receives one descriptor and its name from a connected socket (runc's RecvFd).
inline result<received_fd> receive_fd(int sock) {
  char name[4096];
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))]{};
  iovec iov{name, sizeof name};
  msghdr h{};
  h.msg_iov = &iov;
  h.msg_iovlen = 1;
  h.msg_control = control;
  h.msg_controllen = sizeof control;
  ssize_t n = 0;
  do {
    n = ::recvmsg(sock, &h, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    return fail_errno("recvmsg");
  }
  const cmsghdr* c = CMSG_FIRSTHDR(&h);
  if (c == nullptr || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
      c->cmsg_len != CMSG_LEN(sizeof(int))) {
    return fail(errc::protocol_error, "console socket: expected exactly one descriptor");
  }
  int fd = -1;
  std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
  return received_fd{std::string(name, static_cast<std::size_t>(n)), unique_fd(fd)};
}

/// Accepts one connection on a listening console socket and receives the pty master.
inline result<received_fd> accept_console(int listener) {
  unique_fd conn(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
  if (!conn) {
    return fail_errno("accept on console socket");
  }
  return receive_fd(conn.get());
}

}  // namespace katana::inline v0::container
