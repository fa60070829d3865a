// rtnetlink for the agent's network RPCs: a message builder and an attribute reader that are
// pure (tested on bytes), and a NETLINK_ROUTE socket that sends one request and reads its
// acknowledgement or dump. Requests to the kernel are synchronous: they do not wait on a peer.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <utility>
#include <vector>

#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/unique_fd.hpp>

namespace katana::inline v0::agent::netlink {

inline constexpr std::size_t align(std::size_t n) noexcept {
  return (n + 3U) & ~std::size_t{3};
}

/// One netlink request: header, a family header (ifinfomsg, ifaddrmsg, rtmsg, ndmsg) and
/// attributes, nested ones included.
class message {
 public:
  template <class FamilyHeader>
  message(std::uint16_t type, std::uint16_t flags, const FamilyHeader& h) {
    nlmsghdr n{};
    n.nlmsg_type = type;
    // Requests are acknowledged so a failure is never silent; dumps end with NLMSG_DONE.
    const int ack = (flags & NLM_F_DUMP) == NLM_F_DUMP ? 0 : NLM_F_ACK;
    n.nlmsg_flags = static_cast<std::uint16_t>(flags | NLM_F_REQUEST | ack);
    append(&n, sizeof n);
    append(&h, sizeof h);
    pad();
    sync_length();
  }

  message& add(std::uint16_t type, const void* data, std::size_t size) {
    rtattr a{};
    a.rta_len = static_cast<std::uint16_t>(RTA_LENGTH(size));
    a.rta_type = type;
    append(&a, sizeof a);
    append(data, size);
    pad();
    sync_length();
    return *this;
  }
  message& add_u32(std::uint16_t type, std::uint32_t v) { return add(type, &v, sizeof v); }
  /// A NUL-terminated string attribute (IFLA_IFNAME, IFLA_INFO_KIND).
  message& add_string(std::uint16_t type, std::string_view s) {
    std::string z(s);
    return add(type, z.c_str(), z.size() + 1);
  }
  message& add_bytes(std::uint16_t type, std::span<const std::uint8_t> b) {
    return add(type, b.data(), b.size());
  }

  /// Opens a nested attribute; close it with end_nested(the returned offset).
  std::size_t begin_nested(std::uint16_t type) {
    const auto at = bytes_.size();
    add(type, nullptr, 0);
    return at;
  }
  void end_nested(std::size_t at) {
    const auto len = static_cast<std::uint16_t>(bytes_.size() - at);
    std::memcpy(bytes_.data() + at, &len, sizeof len);
  }

  void set_sequence(std::uint32_t seq) noexcept {
    std::memcpy(bytes_.data() + offsetof(nlmsghdr, nlmsg_seq), &seq, sizeof seq);
  }
  [[nodiscard]] std::span<const std::uint8_t> bytes() const noexcept { return bytes_; }

 private:
  void append(const void* p, std::size_t n) {
    const auto* b = static_cast<const std::uint8_t*>(p);
    bytes_.insert(bytes_.end(), b, b + n);
  }
  void pad() { bytes_.resize(align(bytes_.size())); }
  void sync_length() noexcept {
    const auto len = static_cast<std::uint32_t>(bytes_.size());
    std::memcpy(bytes_.data(), &len, sizeof len);
  }

  std::vector<std::uint8_t> bytes_;
};

/// One attribute as read from a message.
struct attribute {
  std::uint16_t type = 0;
  std::span<const std::uint8_t> data;

  [[nodiscard]] std::optional<std::uint32_t> u32() const noexcept {
    if (data.size() < sizeof(std::uint32_t)) {
      return std::nullopt;
    }
    std::uint32_t v = 0;
    std::memcpy(&v, data.data(), sizeof v);
    return v;
  }
  /// A string attribute without its terminating NUL.
  [[nodiscard]] std::string str() const {
    std::string s(data.begin(), data.end());
    while (!s.empty() && s.back() == '\0') {
      s.pop_back();
    }
    return s;
  }
};

/// Calls fn(attribute) for each well-formed attribute in `region`; stops at the first that
/// claims more bytes than there are (a truncated message never reads past its end).
template <class Fn>
void for_each_attribute(std::span<const std::uint8_t> region, Fn&& fn) {
  while (region.size() >= sizeof(rtattr)) {
    rtattr a{};
    std::memcpy(&a, region.data(), sizeof a);
    if (a.rta_len < sizeof(rtattr) || a.rta_len > region.size()) {
      return;
    }
    fn(attribute{a.rta_type, region.subspan(sizeof(rtattr), a.rta_len - sizeof(rtattr))});
    region = region.subspan(std::min(region.size(), align(a.rta_len)));
  }
}

/// A received message: its type and the bytes after the netlink header.
struct reply {
  std::uint16_t type = 0;
  std::span<const std::uint8_t> payload;

  /// The family header (ifinfomsg, …) when the payload holds one.
  template <class FamilyHeader>
  [[nodiscard]] std::optional<FamilyHeader> header() const noexcept {
    if (payload.size() < sizeof(FamilyHeader)) {
      return std::nullopt;
    }
    FamilyHeader h{};
    std::memcpy(&h, payload.data(), sizeof h);
    return h;
  }
  /// The attributes after a family header of `header_size` bytes.
  [[nodiscard]] std::span<const std::uint8_t> attributes(std::size_t header_size) const noexcept {
    const auto skip = align(header_size);
    return skip <= payload.size() ? payload.subspan(skip) : std::span<const std::uint8_t>{};
  }
};

/// Splits a datagram into messages; false when one is malformed.
template <class Fn>
bool for_each_message(std::span<const std::uint8_t> datagram, Fn&& fn) {
  while (datagram.size() >= sizeof(nlmsghdr)) {
    nlmsghdr h{};
    std::memcpy(&h, datagram.data(), sizeof h);
    if (h.nlmsg_len < sizeof(nlmsghdr) || h.nlmsg_len > datagram.size()) {
      return false;
    }
    if (!fn(h, reply{h.nlmsg_type,
                     datagram.subspan(sizeof(nlmsghdr), h.nlmsg_len - sizeof(nlmsghdr))})) {
      return true;
    }
    datagram = datagram.subspan(std::min(datagram.size(), align(h.nlmsg_len)));
  }
  return datagram.empty();
}

/// The error an NLMSG_ERROR carries (0 = an acknowledgement), with the kernel's extended-ack
/// text when it sent one.
struct kernel_error {
  int code = 0;
  std::string text;
};
inline std::optional<kernel_error> parse_error(const reply& r) {
  const auto e = r.header<nlmsgerr>();
  if (!e) {
    return std::nullopt;
  }
  kernel_error out{-e->error, {}};
  // With NETLINK_CAP_ACK the echoed request is only its header; TLVs follow when flagged.
  std::size_t skip = sizeof(nlmsgerr);
  if (out.code != 0 && r.payload.size() >= skip) {
    for_each_attribute(r.payload.subspan(skip), [&](const attribute& a) {
      if (a.type == NLMSGERR_ATTR_MSG) {
        out.text = a.str();
      }
    });
  }
  return out;
}

/// A NETLINK_ROUTE socket in the calling thread's network namespace.
class socket {
 public:
  static result<socket> open() {
    unique_fd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
    if (!fd) {
      return fail_errno("netlink: socket(NETLINK_ROUTE)");
    }
    const int one = 1;
    // Best effort: older kernels lack them; errors then carry only errno.
    (void)::setsockopt(fd.get(), SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
    (void)::setsockopt(fd.get(), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
    // A kernel that never answers must not hang an RPC.
    timeval tv{5, 0};
    (void)::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return socket(std::move(fd));
  }

  /// Sends `m` and waits for the kernel's acknowledgement.
  status request(message& m, std::string_view what) {
    return exchange(m, what, [](const reply&) { return true; });
  }

  /// Sends a dump request (NLM_F_DUMP must be set) and calls fn(reply) for each answer.
  status dump(message& m, std::string_view what, const std::function<void(const reply&)>& fn) {
    return exchange(m, what, [&](const reply& r) {
      fn(r);
      return true;
    });
  }

 private:
  explicit socket(unique_fd fd) : fd_(std::move(fd)) {}

  template <class Fn>
  status exchange(message& m, std::string_view what, Fn&& on_reply) {
    const auto seq = ++seq_;
    m.set_sequence(seq);
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    const auto b = m.bytes();
    if (::sendto(fd_.get(), b.data(), b.size(), 0, reinterpret_cast<const sockaddr*>(&kernel),
                 sizeof kernel) < 0) {
      return fail_errno(str_cat("netlink: ", what, ": send"));
    }
    std::vector<std::uint8_t> buf(64 * 1024);
    for (;;) {
      const ssize_t n = ::recv(fd_.get(), buf.data(), buf.size(), 0);
      if (n < 0) {
        if (errno == EINTR) {
          continue;
        }
        return fail_errno(str_cat("netlink: ", what, ": receive"));
      }
      bool finished = false;
      std::optional<kernel_error> err;
      const bool ok =
          for_each_message(std::span<const std::uint8_t>(buf.data(), static_cast<std::size_t>(n)),
                           [&](const nlmsghdr& h, const reply& r) {
                             if (h.nlmsg_seq != seq) {
                               return true;  // a stale answer to an earlier, abandoned request
                             }
                             if (h.nlmsg_type == NLMSG_DONE) {
                               finished = true;
                               return false;
                             }
                             if (h.nlmsg_type == NLMSG_ERROR) {
                               err = parse_error(r);
                               finished = true;
                               return false;
                             }
                             return on_reply(r);
                           });
      if (!ok) {
        return fail(errc::protocol_error, str_cat("netlink: ", what, ": malformed reply"));
      }
      if (err && err->code != 0) {
        return fail(std::error_code(err->code, std::system_category()),
                    err->text.empty() ? str_cat("netlink: ", what)
                                      : str_cat("netlink: ", what, ": ", err->text));
      }
      if (finished) {
        return {};
      }
    }
  }

  unique_fd fd_;
  std::uint32_t seq_ = 0;
};

}  // namespace katana::inline v0::agent::netlink
