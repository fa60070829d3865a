// The agent's network RPCs: netlink encoding on bytes, then UpdateInterface, UpdateRoutes,
// List* and AddARPNeighbors for real in a private network namespace (a veth pair made with
// iproute2, results cross-checked with `ip -j`).
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <sched.h>
#include <string>
#include <sys/wait.h>
#include <thread>

#include <katana/agent/network.hpp>

#include "catch.hpp"

namespace ag = katana::agent;
namespace nl = katana::agent::netlink;

namespace {

/// Runs fn on a thread of its own inside a new network namespace (unshare affects only the
/// calling thread). Exits 77 when this host cannot give us one.
template <class Fn>
void in_private_netns(Fn fn) {
  int unshare_errno = 0;
  std::exception_ptr failure;
  std::thread t([&] {
    if (::unshare(CLONE_NEWNET) != 0) {
      unshare_errno = errno;
      return;
    }
    try {
      fn();
    } catch (...) {
      failure = std::current_exception();
    }
  });
  t.join();
  if (unshare_errno != 0) {
    std::cerr << "skipped: unshare(CLONE_NEWNET): " << std::strerror(unshare_errno)
              << " (needs root)\n";
    std::exit(77);
  }
  if (failure) {
    std::rethrow_exception(failure);
  }
}

/// A shell command in the calling thread's namespaces (fork copies them); its stdout.
std::string sh(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) {
    out.append(buf, n);
  }
  const int st = ::pclose(p);
  INFO(cmd << " -> " << out);
  REQUIRE(WIFEXITED(st));
  REQUIRE(WEXITSTATUS(st) == 0);
  return out;
}

bool have_ip() {
  return std::system("command -v ip >/dev/null 2>&1") == 0;
}

}  // namespace

TEST_CASE("netlink: messages are encoded as the kernel reads them", "[net]") {
  ifaddrmsg h{};
  h.ifa_family = AF_INET;
  h.ifa_prefixlen = 24;
  h.ifa_index = 7;
  nl::message m(RTM_NEWADDR, NLM_F_CREATE, h);
  const std::uint8_t addr[4] = {10, 0, 0, 2};
  m.add(IFA_LOCAL, addr, sizeof addr);
  const auto at = m.begin_nested(IFA_CACHEINFO);
  m.add_string(1, "ab");
  m.end_nested(at);
  m.set_sequence(42);
  const auto b = m.bytes();
  // header 16 + ifaddrmsg 8 + IFA_LOCAL (4+4) + nested (4 + (4+3 padded to 8))
  REQUIRE(b.size() == 16 + 8 + 8 + 12);
  nlmsghdr n{};
  std::memcpy(&n, b.data(), sizeof n);
  CHECK(n.nlmsg_len == b.size());
  CHECK(n.nlmsg_type == RTM_NEWADDR);
  CHECK(n.nlmsg_flags == (NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE));
  CHECK(n.nlmsg_seq == 42);

  // Read back through the parser.
  int seen = 0;
  CHECK(nl::for_each_message(b, [&](const nlmsghdr&, const nl::reply& r) {
    nl::for_each_attribute(r.attributes(sizeof(ifaddrmsg)), [&](const nl::attribute& a) {
      ++seen;
      if (a.type == IFA_LOCAL) {
        CHECK(a.u32().has_value());
        CHECK(a.data[0] == 10);
      } else {
        CHECK(a.type == IFA_CACHEINFO);
        nl::for_each_attribute(a.data, [&](const nl::attribute& i) { CHECK(i.str() == "ab"); });
      }
    });
    return true;
  }));
  CHECK(seen == 2);

  // Dumps carry no ACK flag.
  ifinfomsg li{};
  nl::message d(RTM_GETLINK, NLM_F_DUMP, li);
  std::memcpy(&n, d.bytes().data(), sizeof n);
  CHECK(n.nlmsg_flags == (NLM_F_REQUEST | NLM_F_DUMP));
}

TEST_CASE("netlink: truncated or lying lengths are not read past", "[net]") {
  std::vector<std::uint8_t> bytes(20, 0);
  nlmsghdr n{};
  n.nlmsg_len = 4096;  // more than there is
  std::memcpy(bytes.data(), &n, sizeof n);
  CHECK_FALSE(nl::for_each_message(bytes, [](const nlmsghdr&, const nl::reply&) { return true; }));
  const std::uint8_t attr[] = {200, 0, 1, 0, 1, 2, 3, 4};  // rta_len 200 > 8
  int calls = 0;
  nl::for_each_attribute(attr, [&](const nl::attribute&) { ++calls; });
  CHECK(calls == 0);
}

TEST_CASE("net: address, prefix and MAC parsing name what is wrong", "[net]") {
  CHECK(ag::net::parse_ip("10.1.2.3", "x")->family == AF_INET);
  CHECK(ag::net::parse_ip("fd00::1", "x")->family == AF_INET6);
  const auto bad = ag::net::parse_ip("10.1.2", "UpdateInterface eth0");
  REQUIRE(!bad);
  CHECK(bad.error().message().find("UpdateInterface eth0: \"10.1.2\" is not an IP address") !=
        std::string::npos);
  CHECK(ag::net::parse_prefix("24", AF_INET, "x").value() == 24);
  CHECK(!ag::net::parse_prefix("33", AF_INET, "x"));
  CHECK(ag::net::parse_prefix("64", AF_INET6, "x").value() == 64);
  CHECK(!ag::net::parse_prefix("", AF_INET, "x"));
  CHECK(!ag::net::parse_prefix("2x", AF_INET, "x"));
  const auto d = ag::net::parse_destination("192.168.0.0/16", false, "x").value();
  CHECK(d.length == 16);
  CHECK_FALSE(d.is_default);
  CHECK(ag::net::parse_destination("", false, "x")->is_default);
  CHECK(ag::net::parse_destination("default", true, "x")->addr.family == AF_INET6);
  CHECK(ag::net::parse_destination("10.0.0.1", false, "x")->length == 32);
  CHECK(ag::net::format_mac(ag::net::parse_mac("02:AB:00:00:00:01", "x").value()) ==
        "02:ab:00:00:00:01");
  CHECK(!ag::net::parse_mac("02:ab:00:00:00", "x"));
  CHECK(!ag::net::parse_mac("02-ab-00-00-00-01", "x"));
  CHECK(!ag::net::parse_mac("", "x"));
}

TEST_CASE("network: interfaces, routes and neighbours in a private namespace", "[net][root]") {
  if (!have_ip()) {
    std::cerr << "skipped: iproute2's ip is not installed (tools/setup.sh installs it)\n";
    std::exit(77);
  }
  in_private_netns([] {
    sh("ip link add v0 type veth peer name v1 && ip link set v0 address 02:00:00:00:00:0a");
    auto net = ag::network::open();
    REQUIRE(net);

    auto before = net->list_interfaces();
    REQUIRE(before);
    CHECK(before->size() == 3);  // lo, v0, v1

    ag::net_interface want;
    want.name = "eth0";
    want.hw_addr = "02:00:00:00:00:0A";
    want.mtu = 1400;
    want.addresses = {{false, "10.1.0.2", "24"}, {true, "fd00::2", "64"}};
    const auto done = net->update_interface(want);
    REQUIRE(done);
    CHECK(done->name == "eth0");
    const auto link = sh("ip -o link show eth0");
    CHECK(link.find("mtu 1400") != std::string::npos);
    CHECK(link.find("02:00:00:00:00:0a") != std::string::npos);
    CHECK(link.find(",UP") != std::string::npos);
    auto addrs = sh("ip -o addr show dev eth0");
    CHECK(addrs.find("inet 10.1.0.2/24") != std::string::npos);
    CHECK(addrs.find("inet6 fd00::2/64") != std::string::npos);

    // A second update replaces the addresses, it does not add to them.
    want.addresses = {{false, "10.2.0.5", "16"}};
    REQUIRE(net->update_interface(want));
    addrs = sh("ip -o addr show dev eth0");
    CHECK(addrs.find("10.1.0.2") == std::string::npos);
    CHECK(addrs.find("inet 10.2.0.5/16") != std::string::npos);

    const auto listed = net->list_interfaces();
    REQUIRE(listed);
    bool found = false;
    for (const auto& i : *listed) {
      if (i.name == "eth0") {
        found = true;
        CHECK(i.hw_addr == "02:00:00:00:00:0a");
        CHECK(i.mtu == 1400);
        CHECK(i.type == "veth");
        REQUIRE(i.addresses.size() >= 1);
        CHECK(i.addresses[0].address == "10.2.0.5");
        CHECK(i.addresses[0].mask == "16");
      }
    }
    CHECK(found);

    // Errors name the thing and the cause; nothing is changed by a refused request.
    ag::net_interface unknown = want;
    unknown.hw_addr = "02:00:00:00:00:99";
    const auto nf = net->update_interface(unknown);
    REQUIRE(!nf);
    CHECK(nf.error().message().find("no network device with MAC 02:00:00:00:00:99") !=
          std::string::npos);
    ag::net_interface bad_mask = want;
    bad_mask.addresses = {{false, "10.3.0.1", "40"}};
    REQUIRE(!net->update_interface(bad_mask));
    CHECK(sh("ip -o addr show dev eth0").find("10.2.0.5") != std::string::npos);

    // Routes: the device route first whatever the order, then the default through it.
    std::vector<ag::net_route> routes(3);
    routes[0].gateway = "10.2.0.1";
    routes[0].device = "eth0";
    routes[1].dest = "192.168.7.0/24";
    routes[1].device = "eth0";
    routes[1].scope = RT_SCOPE_LINK;
    routes[1].mtu = 1300;
    routes[2].dest = "10.2.0.0/16";  // the kernel's subnet route: already there
    routes[2].device = "eth0";
    routes[2].scope = RT_SCOPE_LINK;
    const auto rs = net->update_routes(routes);
    REQUIRE(rs);
    auto table = sh("ip -o route show");
    CHECK(table.find("default via 10.2.0.1 dev eth0") != std::string::npos);
    CHECK(table.find("192.168.7.0/24 dev eth0") != std::string::npos);
    CHECK(table.find("mtu 1300") != std::string::npos);
    bool has_default = false;
    for (const auto& r : *rs) {
      if (r.dest.empty() && !r.v6) {
        has_default = true;
        CHECK(r.gateway == "10.2.0.1");
        CHECK(r.device == "eth0");
      }
    }
    CHECK(has_default);

    // A new list replaces the old one; the kernel's own routes stay.
    std::vector<ag::net_route> next(1);
    next[0].dest = "172.16.0.0/12";
    next[0].gateway = "10.2.0.254";
    REQUIRE(net->update_routes(next));
    table = sh("ip -o route show");
    CHECK(table.find("default") == std::string::npos);
    CHECK(table.find("192.168.7.0/24") == std::string::npos);
    CHECK(table.find("172.16.0.0/12 via 10.2.0.254") != std::string::npos);
    CHECK(table.find("10.2.0.0/16 dev eth0") != std::string::npos);

    std::vector<ag::net_route> broken(1);
    broken[0].dest = "10.9.0.0/16";
    broken[0].device = "nope0";
    const auto br = net->update_routes(broken);
    REQUIRE(!br);
    CHECK(br.error().message().find("no network device \"nope0\"") != std::string::npos);
    // Checked before anything was removed.
    CHECK(sh("ip -o route show").find("172.16.0.0/12") != std::string::npos);

    // ARP neighbours.
    ag::arp_neighbor n;
    n.to = {false, "10.2.0.9", ""};
    n.device = "eth0";
    n.lladdr = "02:00:00:00:00:09";
    n.state = NUD_PERMANENT;
    REQUIRE(net->add_arp_neighbors({n}));
    const auto neigh = sh("ip neigh show dev eth0");
    CHECK(neigh.find("10.2.0.9 lladdr 02:00:00:00:00:09 PERMANENT") != std::string::npos);
    n.device = "nope0";
    CHECK(!net->add_arp_neighbors({n}));
  });
}
