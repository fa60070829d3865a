// v1 -> v2 conversions (runc's formulas) and the validation of linux.resources, which runs
// before anything is written. No root needed.
#include <string>

#include <katana/cgroup/controllers/all.hpp>
#include <katana/cgroup/convert.hpp>

#include "catch.hpp"

using katana::errc;
namespace cgroup = katana::cgroup;
namespace oci = katana::oci;

TEST_CASE("cpu.shares converts to cpu.weight", "[cgroup][convert]") {
  CHECK(cgroup::cpu_shares_to_weight(0) == 0);  // unset
  CHECK(cgroup::cpu_shares_to_weight(2) == 1);
  CHECK(cgroup::cpu_shares_to_weight(1024) == 39);  // the default share is weight 39 in runc
  CHECK(cgroup::cpu_shares_to_weight(100) == 4);
  CHECK(cgroup::cpu_shares_to_weight(262144) == 10000);
  CHECK(cgroup::cpu_shares_to_weight(1) == 1);             // clamped
  CHECK(cgroup::cpu_shares_to_weight(1000000) == 10000);   // clamped
  static_assert(cgroup::cpu_shares_to_weight(512) == 20);  // constexpr
}

TEST_CASE("blkio weight converts to io.weight", "[cgroup][convert]") {
  CHECK(cgroup::blkio_weight_to_io_weight(0) == 0);
  CHECK(cgroup::blkio_weight_to_io_weight(10) == 1);
  CHECK(cgroup::blkio_weight_to_io_weight(500) == 4950);
  CHECK(cgroup::blkio_weight_to_io_weight(1000) == 10000);
}

TEST_CASE("memory.swap converts to memory.swap.max as runc does", "[cgroup][convert]") {
  // swap, memory -> v2 swap
  CHECK(*cgroup::memory_swap_to_v2(0, 0) == 0);
  CHECK(*cgroup::memory_swap_to_v2(0, -1) == -1);  // unlimited memory, swap unset: both max
  CHECK(*cgroup::memory_swap_to_v2(-1, -1) == -1);
  CHECK(*cgroup::memory_swap_to_v2(-1, 1000) == -1);
  CHECK(*cgroup::memory_swap_to_v2(0, 1000) == 0);
  CHECK(*cgroup::memory_swap_to_v2(1000, 500) == 500);
  CHECK(*cgroup::memory_swap_to_v2(500, 500) == 0);
  auto below = cgroup::memory_swap_to_v2(400, 500);
  REQUIRE_FALSE(below);
  CHECK(below.error().code == errc::invalid_spec);
  CHECK(below.error().message() ==
        "linux.resources.memory.swap (400) must be at least memory.limit (500)");
  CHECK(cgroup::memory_swap_to_v2(1000, 0).error().message().find("without a memory.limit") !=
        std::string::npos);
  CHECK_FALSE(cgroup::memory_swap_to_v2(1000, -1));
  CHECK_FALSE(cgroup::memory_swap_to_v2(1000, -5));
}

namespace {
std::string refused(const oci::linux_resources& r) {
  auto st = cgroup::validate_resources(r);
  REQUIRE_FALSE(st);
  CHECK(st.error().code == errc::invalid_spec);
  return st.error().message();
}
}  // namespace

TEST_CASE("validate_resources names the field and the value", "[cgroup][validate]") {
  CHECK(cgroup::validate_resources({}));

  oci::linux_resources mem;
  mem.memory = oci::linux_memory{};
  mem.memory->limit = 2048;
  mem.memory->swap = 1024;
  CHECK(refused(mem) ==
        "linux.resources.memory.swap (1024) must be at least memory.limit (2048): it is the "
        "memory+swap limit");
  mem.memory->swap = -1;
  CHECK(cgroup::validate_resources(mem));
  mem.memory->limit = -2;
  CHECK(refused(mem) == "linux.resources.memory.limit (-2) must be -1 (unlimited) or at least 0");
  mem.memory->limit = 4096;
  mem.memory->swappiness = 101;
  CHECK(refused(mem).starts_with("linux.resources.memory.swappiness (101)"));
  mem.memory->swappiness = 60;
  mem.memory->reservation = -3;
  CHECK(refused(mem).starts_with("linux.resources.memory.reservation (-3)"));

  oci::linux_resources cpu;
  cpu.cpu = oci::linux_cpu{};
  cpu.cpu->shares = 1;
  CHECK(refused(cpu) == "linux.resources.cpu.shares (1) must be between 2 and 262144");
  cpu.cpu->shares = 1024;
  cpu.cpu->quota = -5;
  CHECK(refused(cpu).starts_with("linux.resources.cpu.quota (-5)"));
  cpu.cpu->quota = -1;
  cpu.cpu->idle = 2;
  CHECK(refused(cpu).starts_with("linux.resources.cpu.idle (2)"));
  cpu.cpu->idle = 1;
  cpu.cpu->cpus = "0-1;rm";
  CHECK(refused(cpu).starts_with("linux.resources.cpu.cpus (\"0-1;rm\")"));
  cpu.cpu->cpus = "0-1,3";
  CHECK(cgroup::validate_resources(cpu));

  oci::linux_resources pids;
  pids.pids = oci::linux_pids{-2};
  CHECK(refused(pids).starts_with("linux.resources.pids.limit (-2)"));

  oci::linux_resources blk;
  blk.block_io = oci::linux_block_io{};
  blk.block_io->weight = 5;
  CHECK(refused(blk) == "linux.resources.blockIO.weight (5) must be between 10 and 1000");
  blk.block_io->weight = 500;
  blk.block_io->throttle_read_bps_device.push_back({-1, 0, 100});
  CHECK(refused(blk).find("needs a device number") != std::string::npos);

  oci::linux_resources huge;
  huge.hugepage_limits.push_back({"2M", 1});
  CHECK(refused(huge).starts_with("linux.resources.hugepageLimits.pageSize (\"2M\")"));

  oci::linux_resources dev;
  dev.devices.push_back({true, "x", 1, 3, "rwm"});
  CHECK(refused(dev) == "linux.resources.devices[0].type \"x\" is not a, b or c");
  dev.devices[0] = {true, "c", 1, 3, "rwx"};
  CHECK(refused(dev) == "linux.resources.devices[0].access \"rwx\" is not a subset of \"rwm\"");
  dev.devices[0] = {true, "c", 1LL << 40, 3, "rw"};
  CHECK(refused(dev).find("major") != std::string::npos);
}

TEST_CASE("unified keys must be plain cgroup file names", "[cgroup][validate][unified]") {
  for (const char* bad : {"../memory.max", "memory.max/../x", "/etc/passwd", "a/b", "..", ".", "",
                          "nodot", "cgroup.procs", "cgroup.subtree_control", "x..y"}) {
    INFO(bad);
    oci::linux_resources r;
    r.unified[bad] = "1";
    auto st = cgroup::validate_resources(r);
    REQUIRE_FALSE(st);
    CHECK(st.error().code == errc::invalid_spec);
    CHECK(st.error().message().starts_with("linux.resources.unified key"));
  }
  oci::linux_resources ok;
  ok.unified["memory.high"] = "max";
  ok.unified["io.weight"] = "default 100";
  CHECK(cgroup::validate_resources(ok));
}

TEST_CASE("controller helpers", "[cgroup][controllers]") {
  using cgroup::controllers::devices;
  CHECK(devices::rule_line({false, "", std::nullopt, std::nullopt, "rwm"}) == "a *:* rwm");
  CHECK(devices::rule_line({true, "c", 1, 3, "rwm"}) == "c 1:3 rwm");
  CHECK(devices::rule_line({true, "b", 8, -1, "r"}) == "b 8:* r");
  CHECK(devices::rule_line({true, "c", 136, std::nullopt, ""}) == "c 136:* rwm");
  using cgroup::controllers::pids;
  CHECK(pids::value({0}) == "max");
  CHECK(pids::value({-1}) == "max");
  CHECK(pids::value({42}) == "42");
  using cgroup::controllers::hugetlb;
  CHECK(hugetlb::valid_page_size("2MB"));
  CHECK(hugetlb::valid_page_size("1GB"));
  CHECK(hugetlb::valid_page_size("64KB"));
  CHECK_FALSE(hugetlb::valid_page_size("2M"));
  CHECK_FALSE(hugetlb::valid_page_size("MB"));
  CHECK_FALSE(hugetlb::valid_page_size("../MB"));
  CHECK(hugetlb::page_size_name(2048) == "2MB");
  CHECK(hugetlb::page_size_name(1048576) == "1GB");
  CHECK(hugetlb::page_size_name(64) == "64KB");
  CHECK(cgroup::detail::parse_u64("max").value() == cgroup::unlimited);
  CHECK(cgroup::detail::parse_u64("9223372036854771712\n").value() == cgroup::unlimited);
  CHECK(cgroup::detail::parse_u64("4096\n").value() == 4096);
  CHECK_FALSE(cgroup::detail::parse_u64("12x"));
  CHECK(cgroup::detail::find_key("usage_usec 10\nuser_usec 7\n", "user_usec") == 7);
}
