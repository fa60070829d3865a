// The agent's network RPCs on the guest's own network namespace, with Kata's semantics:
// UpdateInterface finds the link by MAC, replaces its addresses and sets name, MTU, ARP and up;
// UpdateRoutes replaces the main table's non-kernel routes (device routes before gateway
// routes); ListInterfaces, ListRoutes; AddARPNeighbors.
#pragma once

#include <algorithm>
#include <arpa/inet.h>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <katana/agent/netlink.hpp>
#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/try.hpp>

namespace katana::inline v0::agent {

struct ip_address {
  bool v6 = false;
  std::string address;
  std::string mask;  // prefix length in decimal, as Kata sends it
};

struct net_interface {
  std::string device;  // the link's current name (ListInterfaces)
  std::string name;    // the name UpdateInterface gives it
  std::vector<ip_address> addresses;
  std::uint64_t mtu = 0;
  std::string hw_addr;
  std::string device_path;  // PCI path; unused: the link is found by MAC
  std::string type;         // link kind (veth, …), informational
  std::uint32_t raw_flags = 0;
};

struct net_route {
  std::string dest;  // "a.b.c.d/n"; empty = default
  std::string gateway;
  std::string device;
  std::string source;
  std::uint32_t scope = 0;
  bool v6 = false;
  std::uint32_t flags = 0;
  std::uint32_t mtu = 0;
};

struct arp_neighbor {
  ip_address to;
  std::string device;
  std::string lladdr;
  std::int32_t state = 0;
  std::int32_t flags = 0;
};

namespace net {

/// An IP address in network byte order.
struct raw_address {
  int family = AF_INET;
  std::uint8_t bytes[16]{};
  [[nodiscard]] std::size_t size() const noexcept { return family == AF_INET6 ? 16 : 4; }
  [[nodiscard]] std::span<const std::uint8_t> span() const noexcept { return {bytes, size()}; }
};

inline result<raw_address> parse_ip(std::string_view text, std::string_view what) {
  const std::string s(text);
  raw_address a;
  if (::inet_pton(AF_INET, s.c_str(), a.bytes) == 1) {
    a.family = AF_INET;
    return a;
  }
  if (::inet_pton(AF_INET6, s.c_str(), a.bytes) == 1) {
    a.family = AF_INET6;
    return a;
  }
  return fail(errc::invalid_argument, str_cat(what, ": \"", text, "\" is not an IP address"));
}

inline std::string format_ip(int family, std::span<const std::uint8_t> b) {
  char out[INET6_ADDRSTRLEN] = {};
  if ((family == AF_INET && b.size() >= 4) || (family == AF_INET6 && b.size() >= 16)) {
    ::inet_ntop(family, b.data(), out, sizeof out);
  }
  return out;
}

inline result<std::uint8_t> parse_prefix(std::string_view text, int family, std::string_view what) {
  unsigned v = 0;
  const auto* end = text.data() + text.size();
  const auto [p, ec] = std::from_chars(text.data(), end, v);
  const unsigned max = family == AF_INET6 ? 128 : 32;
  if (text.empty() || ec != std::errc{} || p != end || v > max) {
    return fail(errc::invalid_argument,
                str_cat(what, ": prefix length \"", text, "\" is not a number from 0 to ", max));
  }
  return static_cast<std::uint8_t>(v);
}

/// "a.b.c.d/n" or a bare address (a host route); empty or "default" = the default route.
struct prefix {
  raw_address addr;
  std::uint8_t length = 0;
  bool is_default = true;
};
inline result<prefix> parse_destination(std::string_view dest, bool v6, std::string_view what) {
  prefix p;
  p.addr.family = v6 ? AF_INET6 : AF_INET;
  if (dest.empty() || dest == "default") {
    return p;
  }
  const auto slash = dest.find('/');
  p.addr = KATANA_TRY(parse_ip(dest.substr(0, slash), what));
  p.length = slash == std::string_view::npos
                 ? static_cast<std::uint8_t>(p.addr.size() * 8)
                 : KATANA_TRY(parse_prefix(dest.substr(slash + 1), p.addr.family, what));
  p.is_default = p.length == 0;
  return p;
}

inline result<std::vector<std::uint8_t>> parse_mac(std::string_view text, std::string_view what) {
  std::vector<std::uint8_t> out;
  std::size_t i = 0;
  while (i < text.size()) {
    unsigned v = 0;
    const auto [p, ec] =
        std::from_chars(text.data() + i, text.data() + std::min(text.size(), i + 2), v, 16);
    if (ec != std::errc{} || p != text.data() + std::min(text.size(), i + 2)) {
      break;
    }
    out.push_back(static_cast<std::uint8_t>(v));
    i += 2;
    if (i == text.size()) {
      if (out.size() == 6 || out.size() == 20) {
        return out;
      }
      break;
    }
    if (text[i] != ':') {
      break;
    }
    ++i;
  }
  return fail(errc::invalid_argument, str_cat(what, ": \"", text, "\" is not a MAC address"));
}

inline std::string format_mac(std::span<const std::uint8_t> b) {
  std::string out;
  char byte[4];
  for (std::size_t i = 0; i < b.size(); ++i) {
    std::snprintf(byte, sizeof byte, i == 0 ? "%02x" : ":%02x", b[i]);
    out += byte;
  }
  return out;
}

struct link_info {
  int index = 0;
  unsigned flags = 0;
  std::string name;
  std::string mac;
  std::uint32_t mtu = 0;
  std::string kind;
};

inline result<std::vector<link_info>> list_links(netlink::socket& s) {
  ifinfomsg h{};
  h.ifi_family = AF_UNSPEC;
  netlink::message m(RTM_GETLINK, NLM_F_DUMP, h);
  std::vector<link_info> out;
  KATANA_TRY(s.dump(m, "list links", [&](const netlink::reply& r) {
    const auto ifi = r.header<ifinfomsg>();
    if (r.type != RTM_NEWLINK || !ifi) {
      return;
    }
    link_info l{ifi->ifi_index, ifi->ifi_flags, {}, {}, 0, {}};
    netlink::for_each_attribute(r.attributes(sizeof(ifinfomsg)), [&](const netlink::attribute& a) {
      if (a.type == IFLA_IFNAME) {
        l.name = a.str();
      } else if (a.type == IFLA_ADDRESS) {
        l.mac = format_mac(a.data);
      } else if (a.type == IFLA_MTU) {
        l.mtu = a.u32().value_or(0);
      } else if (a.type == IFLA_LINKINFO) {
        netlink::for_each_attribute(a.data, [&](const netlink::attribute& i) {
          if (i.type == IFLA_INFO_KIND) {
            l.kind = i.str();
          }
        });
      }
    });
    out.push_back(std::move(l));
  }));
  return out;
}

struct address_info {
  int index = 0;
  ip_address address;
  raw_address raw;
  std::uint8_t prefix_length = 0;
};

inline result<std::vector<address_info>> list_addresses(netlink::socket& s) {
  ifaddrmsg h{};
  h.ifa_family = AF_UNSPEC;
  netlink::message m(RTM_GETADDR, NLM_F_DUMP, h);
  std::vector<address_info> out;
  KATANA_TRY(s.dump(m, "list addresses", [&](const netlink::reply& r) {
    const auto ifa = r.header<ifaddrmsg>();
    if (r.type != RTM_NEWADDR || !ifa ||
        (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6)) {
      return;
    }
    std::optional<netlink::attribute> local;
    std::optional<netlink::attribute> address;
    netlink::for_each_attribute(r.attributes(sizeof(ifaddrmsg)), [&](const netlink::attribute& a) {
      if (a.type == IFA_LOCAL) {
        local = a;
      } else if (a.type == IFA_ADDRESS) {
        address = a;
      }
    });
    // IFA_LOCAL is the interface's own address on point-to-point links.
    const auto& a = local ? local : address;
    if (!a) {
      return;
    }
    address_info i;
    i.index = static_cast<int>(ifa->ifa_index);
    i.prefix_length = ifa->ifa_prefixlen;
    i.raw.family = ifa->ifa_family;
    std::copy_n(a->data.begin(), std::min(a->data.size(), i.raw.size()), i.raw.bytes);
    i.address = {ifa->ifa_family == AF_INET6, format_ip(ifa->ifa_family, a->data),
                 std::to_string(ifa->ifa_prefixlen)};
    out.push_back(std::move(i));
  }));
  return out;
}

inline result<const link_info*> find_link_by_name(const std::vector<link_info>& links,
                                                  std::string_view name,
                                                  std::string_view what) {
  const auto it =
      std::find_if(links.begin(), links.end(), [&](const link_info& l) { return l.name == name; });
  if (it == links.end()) {
    return fail(errc::not_found, str_cat(what, ": no network device \"", name, "\""));
  }
  return &*it;
}

inline status set_link(netlink::socket& s,
                       const link_info& l,
                       std::string_view name,
                       std::uint32_t mtu,
                       bool up,
                       std::optional<bool> noarp) {
  ifinfomsg h{};
  h.ifi_family = AF_UNSPEC;
  h.ifi_index = l.index;
  h.ifi_change = IFF_UP;
  h.ifi_flags = up ? static_cast<unsigned>(IFF_UP) : 0U;
  if (noarp) {
    h.ifi_change |= IFF_NOARP;
    h.ifi_flags |= *noarp ? static_cast<unsigned>(IFF_NOARP) : 0U;
  }
  netlink::message m(RTM_NEWLINK, 0, h);
  if (!name.empty() && name != l.name) {
    if (name.size() >= IFNAMSIZ) {
      return fail(errc::invalid_argument,
                  str_cat("interface name \"", name, "\" is longer than ", IFNAMSIZ - 1));
    }
    m.add_string(IFLA_IFNAME, name);
  }
  if (mtu != 0) {
    m.add_u32(IFLA_MTU, mtu);
  }
  return s.request(m, str_cat("set link ", l.name));
}

inline status change_address(netlink::socket& s,
                             std::uint16_t type,
                             int index,
                             const raw_address& a,
                             std::uint8_t prefix_length,
                             std::string_view what) {
  ifaddrmsg h{};
  h.ifa_family = static_cast<std::uint8_t>(a.family);
  h.ifa_prefixlen = prefix_length;
  h.ifa_index = static_cast<std::uint32_t>(index);
  netlink::message m(type, type == RTM_NEWADDR ? NLM_F_CREATE | NLM_F_REPLACE : 0, h);
  m.add_bytes(IFA_LOCAL, a.span());
  m.add_bytes(IFA_ADDRESS, a.span());
  return s.request(m, what);
}

}  // namespace net

/// The network namespace the agent runs in (the guest's, when it is init).
class network {
 public:
  static result<network> open() { return network(KATANA_TRY(netlink::socket::open())); }

  result<std::vector<net_interface>> list_interfaces() {
    const auto links = KATANA_TRY(net::list_links(sock_));
    const auto addrs = KATANA_TRY(net::list_addresses(sock_));
    std::vector<net_interface> out;
    for (const auto& l : links) {
      net_interface i;
      i.device = l.name;
      i.name = l.name;
      i.mtu = l.mtu;
      i.hw_addr = l.mac;
      i.type = l.kind;
      i.raw_flags = l.flags;
      for (const auto& a : addrs) {
        if (a.index == l.index) {
          i.addresses.push_back(a.address);
        }
      }
      out.push_back(std::move(i));
    }
    return out;
  }

  /// Kata's UpdateInterface: the link whose MAC is hw_addr gets exactly `iface.addresses`,
  /// the name, the MTU and the ARP flag asked for, and is brought up.
  result<net_interface> update_interface(const net_interface& iface) {
    if (iface.hw_addr.empty()) {
      return fail(errc::invalid_argument, "UpdateInterface: hwAddr is empty");
    }
    const auto mac = net::format_mac(KATANA_TRY(net::parse_mac(iface.hw_addr, "UpdateInterface")));
    const auto links = KATANA_TRY(net::list_links(sock_));
    const auto it = std::find_if(links.begin(), links.end(),
                                 [&](const net::link_info& l) { return l.mac == mac; });
    if (it == links.end()) {
      return fail(errc::not_found,
                  str_cat("UpdateInterface: no network device with MAC ", iface.hw_addr));
    }
    const std::string what = str_cat("UpdateInterface ", it->name);
    struct wanted {
      net::raw_address raw;
      std::uint8_t length;
    };
    std::vector<wanted> next;
    for (const auto& a : iface.addresses) {
      auto raw = KATANA_TRY(net::parse_ip(a.address, what));
      if ((raw.family == AF_INET6) != a.v6) {
        return fail(errc::invalid_argument,
                    str_cat(what, ": address ", a.address, " is not of the family given"));
      }
      next.push_back({raw, KATANA_TRY(net::parse_prefix(a.mask, raw.family, what))});
    }
    KATANA_TRY(net::set_link(sock_, *it, {}, 0, false, std::nullopt), what);
    for (const auto& a : KATANA_TRY(net::list_addresses(sock_))) {
      if (a.index == it->index) {
        KATANA_TRY(net::change_address(sock_, RTM_DELADDR, a.index, a.raw, a.prefix_length,
                                       str_cat("delete address ", a.address.address)),
                   what);
      }
    }
    for (const auto& a : next) {
      KATANA_TRY(
          net::change_address(sock_, RTM_NEWADDR, it->index, a.raw, a.length,
                              str_cat("add address ", net::format_ip(a.raw.family, a.raw.span()))),
          what);
    }
    if (iface.mtu > 0xffffffffULL) {
      return fail(errc::invalid_argument, str_cat(what, ": mtu ", iface.mtu, " is too large"));
    }
    KATANA_TRY(net::set_link(sock_, *it, iface.name, static_cast<std::uint32_t>(iface.mtu), true,
                             (iface.raw_flags & IFF_NOARP) != 0),
               what);
    return iface;
  }

  result<std::vector<net_route>> list_routes() {
    const auto links = KATANA_TRY(net::list_links(sock_));
    std::vector<net_route> out;
    KATANA_TRY(for_each_main_route([&](const rtmsg& h, const net_route_attrs& a) {
      if (h.rtm_type != RTN_UNICAST) {
        return;
      }
      net_route r;
      r.v6 = h.rtm_family == AF_INET6;
      if (a.dst) {
        r.dest = str_cat(net::format_ip(h.rtm_family, *a.dst), "/", unsigned{h.rtm_dst_len});
      }
      if (a.gateway) {
        r.gateway = net::format_ip(h.rtm_family, *a.gateway);
      }
      if (a.prefsrc) {
        r.source = net::format_ip(h.rtm_family, *a.prefsrc);
      }
      for (const auto& l : links) {
        if (a.oif && static_cast<int>(*a.oif) == l.index) {
          r.device = l.name;
        }
      }
      r.scope = h.rtm_scope;
      r.flags = h.rtm_flags;
      r.mtu = a.mtu;
      out.push_back(std::move(r));
    }));
    return out;
  }

  /// Kata's UpdateRoutes: the main table's routes not made by the kernel are replaced by
  /// `routes`; routes without a gateway go first so that gateways are reachable.
  result<std::vector<net_route>> update_routes(const std::vector<net_route>& routes) {
    const auto links = KATANA_TRY(net::list_links(sock_));
    // Check the whole request before removing anything.
    struct planned {
      const net_route* r;
      net::prefix dst;
      std::optional<net::raw_address> gateway, source;
      int oif = 0;
    };
    std::vector<planned> plan;
    for (const auto& r : routes) {
      const std::string what =
          str_cat("UpdateRoutes: route \"", r.dest.empty() ? "default" : r.dest, "\"");
      planned p{&r, KATANA_TRY(net::parse_destination(r.dest, r.v6, what)), {}, {}, 0};
      if (!r.gateway.empty()) {
        p.gateway = KATANA_TRY(net::parse_ip(r.gateway, what + ": gateway"));
      }
      if (!r.source.empty()) {
        p.source = KATANA_TRY(net::parse_ip(r.source, what + ": source"));
      }
      if (!r.device.empty()) {
        p.oif = KATANA_TRY(net::find_link_by_name(links, r.device, what))->index;
      } else if (!p.gateway) {
        return fail(errc::invalid_argument, what + ": neither a device nor a gateway");
      }
      plan.push_back(p);
    }
    std::stable_sort(plan.begin(), plan.end(),
                     [](const planned& a, const planned& b) { return !a.gateway && b.gateway; });
    KATANA_TRY(delete_user_routes(), "UpdateRoutes");
    for (const auto& p : plan) {
      rtmsg h{};
      h.rtm_family = static_cast<std::uint8_t>(p.dst.addr.family);
      h.rtm_dst_len = p.dst.length;
      h.rtm_table = RT_TABLE_MAIN;
      h.rtm_protocol = RTPROT_BOOT;
      h.rtm_scope = static_cast<std::uint8_t>(p.r->scope);
      h.rtm_type = RTN_UNICAST;
      h.rtm_flags = p.r->flags;
      netlink::message m(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, h);
      if (!p.dst.is_default) {
        m.add_bytes(RTA_DST, p.dst.addr.span());
      }
      if (p.gateway) {
        m.add_bytes(RTA_GATEWAY, p.gateway->span());
      }
      if (p.source) {
        m.add_bytes(RTA_PREFSRC, p.source->span());
      }
      if (p.oif != 0) {
        m.add_u32(RTA_OIF, static_cast<std::uint32_t>(p.oif));
      }
      if (p.r->mtu != 0) {
        const auto at = m.begin_nested(RTA_METRICS);
        m.add_u32(RTAX_MTU, p.r->mtu);
        m.end_nested(at);
      }
      auto st = sock_.request(m, str_cat("add route ", p.r->dest.empty() ? "default" : p.r->dest));
      // The kernel already made the subnet route of an address: that one is there.
      if (!st && st.error().code != std::error_code(EEXIST, std::system_category())) {
        return unexpected<error>(std::move(st).error().wrap("UpdateRoutes"));
      }
    }
    return list_routes();
  }

  status add_arp_neighbors(const std::vector<arp_neighbor>& neighbors) {
    const auto links = KATANA_TRY(net::list_links(sock_));
    for (const auto& n : neighbors) {
      const std::string what = str_cat("AddARPNeighbors: ", n.to.address);
      const auto ip = KATANA_TRY(net::parse_ip(n.to.address, what));
      const auto* l = KATANA_TRY(net::find_link_by_name(links, n.device, what));
      ndmsg h{};
      h.ndm_family = static_cast<std::uint8_t>(ip.family);
      h.ndm_ifindex = l->index;
      h.ndm_state = static_cast<std::uint16_t>(n.state);
      h.ndm_flags = static_cast<std::uint8_t>(n.flags);
      netlink::message m(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, h);
      m.add_bytes(NDA_DST, ip.span());
      if (!n.lladdr.empty()) {
        m.add_bytes(NDA_LLADDR, KATANA_TRY(net::parse_mac(n.lladdr, what)));
      }
      KATANA_TRY(sock_.request(m, "add neighbour"), what);
    }
    return {};
  }

 private:
  explicit network(netlink::socket s) : sock_(std::move(s)) {}

  struct net_route_attrs {
    std::optional<std::span<const std::uint8_t>> dst, gateway, prefsrc;
    std::optional<std::uint32_t> oif;
    std::uint32_t mtu = 0;
  };

  template <class Fn>
  status for_each_main_route(Fn&& fn) {
    for (const int family : {AF_INET, AF_INET6}) {
      rtmsg h{};
      h.rtm_family = static_cast<std::uint8_t>(family);
      netlink::message m(RTM_GETROUTE, NLM_F_DUMP, h);
      KATANA_TRY(sock_.dump(m, "list routes", [&](const netlink::reply& r) {
        const auto rt = r.header<rtmsg>();
        if (r.type != RTM_NEWROUTE || !rt) {
          return;
        }
        net_route_attrs a;
        std::uint32_t table = rt->rtm_table;
        netlink::for_each_attribute(r.attributes(sizeof(rtmsg)), [&](const netlink::attribute& x) {
          switch (x.type) {
            case RTA_DST:
              a.dst = x.data;
              break;
            case RTA_GATEWAY:
              a.gateway = x.data;
              break;
            case RTA_PREFSRC:
              a.prefsrc = x.data;
              break;
            case RTA_OIF:
              a.oif = x.u32();
              break;
            case RTA_TABLE:
              table = x.u32().value_or(table);
              break;
            case RTA_METRICS:
              netlink::for_each_attribute(x.data, [&](const netlink::attribute& metric) {
                if (metric.type == RTAX_MTU) {
                  a.mtu = metric.u32().value_or(0);
                }
              });
              break;
            default:
              break;
          }
        });
        if (table == RT_TABLE_MAIN) {
          fn(*rt, a);
        }
      }));
    }
    return {};
  }

  status delete_user_routes() {
    // Collect first: deleting while a dump runs would confuse the dump.
    std::vector<netlink::message> doomed;
    KATANA_TRY(for_each_main_route([&](const rtmsg& h, const net_route_attrs& a) {
      if (h.rtm_protocol == RTPROT_KERNEL || h.rtm_type != RTN_UNICAST) {
        return;
      }
      rtmsg d = h;
      netlink::message m(RTM_DELROUTE, 0, d);
      m.add_u32(RTA_TABLE, RT_TABLE_MAIN);
      if (a.dst) {
        m.add_bytes(RTA_DST, *a.dst);
      }
      if (a.gateway) {
        m.add_bytes(RTA_GATEWAY, *a.gateway);
      }
      if (a.oif) {
        m.add_u32(RTA_OIF, *a.oif);
      }
      doomed.push_back(std::move(m));
    }));
    for (auto& m : doomed) {
      auto st = sock_.request(m, "delete route");
      if (!st && st.error().code != std::error_code(ESRCH, std::system_category())) {
        return st;
      }
    }
    return {};
  }

  netlink::socket sock_;
};

}  // namespace katana::inline v0::agent
