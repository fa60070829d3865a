// The controllers' file writing, v1 and v2 spellings, against a plain directory that stands in
// for a cgroup (every interface file pre-created): what would be written where, without root
// and without the controller on the host. Plain files keep the last write only.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <katana/cgroup/controllers/all.hpp>

#include "catch.hpp"

using katana::errc;
namespace cgroup = katana::cgroup;
namespace ctl = katana::cgroup::controllers;
namespace oci = katana::oci;
namespace fs = std::filesystem;

namespace {

using files = std::vector<std::pair<std::string, std::string>>;

class fake_dir {
 public:
  explicit fake_dir(const files& contents) {
    std::string templ = (fs::temp_directory_path() / "katana-cgctl-XXXXXX").native();
    REQUIRE(::mkdtemp(templ.data()) != nullptr);
    path_ = templ;
    for (const auto& [name, content] : contents) {
      std::ofstream(path_ / name) << content;
    }
    auto d = cgroup::dir::open(path_.native());
    REQUIRE(d);
    dir_ = std::move(*d);
  }
  ~fake_dir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  fake_dir(const fake_dir&) = delete;
  fake_dir& operator=(const fake_dir&) = delete;

  const cgroup::dir& dir() const { return dir_; }
  std::string operator[](const std::string& file) const {
    std::ifstream in(path_ / file);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

 private:
  fs::path path_;
  cgroup::dir dir_;
};

const katana::logging::logger& quiet() {
  static const auto l = cgroup::detail::null_logger();
  return l;
}

}  // namespace

TEST_CASE("cpu: v1 files and v2 cpu.weight/cpu.max", "[cgroup][controllers]") {
  oci::linux_resources r;
  r.cpu = oci::linux_cpu{};
  r.cpu->shares = 1024;
  r.cpu->quota = 50000;
  r.cpu->period = 100000;
  r.cpu->burst = 1000;
  r.cpu->idle = 1;
  {
    const fake_dir d({{"cpu.shares", ""},
                      {"cpu.cfs_quota_us", ""},
                      {"cpu.cfs_period_us", ""},
                      {"cpu.cfs_burst_us", ""},
                      {"cpu.idle", ""}});
    REQUIRE(ctl::cpu::apply_v1(d.dir(), r, quiet()));
    CHECK(d["cpu.shares"] == "1024");
    CHECK(d["cpu.cfs_quota_us"] == "50000");
    CHECK(d["cpu.cfs_period_us"] == "100000");
    CHECK(d["cpu.cfs_burst_us"] == "1000");
    CHECK(d["cpu.idle"] == "1");
  }
  {
    const fake_dir d(
        {{"cpu.weight", ""}, {"cpu.max", "max 100000\n"}, {"cpu.max.burst", ""}, {"cpu.idle", ""}});
    REQUIRE(ctl::cpu::apply_v2(d.dir(), r, quiet()));
    CHECK(d["cpu.weight"] == "39");
    CHECK(d["cpu.max"] == "50000 100000");
    CHECK(d["cpu.max.burst"] == "1000");
  }
  {
    // Only the quota: the period stays; -1 is "max".
    const fake_dir d(files{{"cpu.max", "20000 50000\n"}});
    oci::linux_resources q;
    q.cpu = oci::linux_cpu{};
    q.cpu->quota = -1;
    REQUIRE(ctl::cpu::apply_v2(d.dir(), q, quiet()));
    CHECK(d["cpu.max"] == "max 50000");
  }
  {
    const fake_dir d(files{{"cpu.max", "max 100000\n"}});
    oci::linux_resources rt;
    rt.cpu = oci::linux_cpu{};
    rt.cpu->realtime_runtime = 1000;
    auto st = ctl::cpu::apply_v2(d.dir(), rt, quiet());
    REQUIRE_FALSE(st);
    CHECK(st.error().code == errc::unsupported);
    // v1 without CONFIG_RT_GROUP_SCHED names the file.
    auto v1 = ctl::cpu::apply_v1(d.dir(), rt, quiet());
    REQUIRE_FALSE(v1);
    CHECK(v1.error().message().starts_with("cpu.rt_runtime_us: not available on this host"));
  }
}

TEST_CASE("memory: v1 memsw and v2 swap conversion", "[cgroup][controllers]") {
  oci::linux_resources r;
  r.memory = oci::linux_memory{};
  r.memory->limit = 64 << 20;
  r.memory->swap = 96 << 20;
  r.memory->reservation = 32 << 20;
  r.memory->swappiness = 10;
  r.memory->disable_oom_killer = true;
  r.memory->kernel_tcp = 1 << 20;
  {
    const fake_dir d({{"memory.limit_in_bytes", "9223372036854771712\n"},
                      {"memory.memsw.limit_in_bytes", ""},
                      {"memory.soft_limit_in_bytes", ""},
                      {"memory.swappiness", ""},
                      {"memory.oom_control", ""},
                      {"memory.kmem.tcp.limit_in_bytes", ""}});
    REQUIRE(ctl::memory::apply_v1(d.dir(), r, quiet()));
    CHECK(d["memory.limit_in_bytes"] == "67108864");
    CHECK(d["memory.memsw.limit_in_bytes"] == "100663296");  // memory+swap, as given
    CHECK(d["memory.soft_limit_in_bytes"] == "33554432");
    CHECK(d["memory.swappiness"] == "10");
    CHECK(d["memory.oom_control"] == "1");
    CHECK(d["memory.kmem.tcp.limit_in_bytes"] == "1048576");
  }
  {
    std::vector<std::string> warnings;
    const katana::logging::logger log([&](std::string_view l) { warnings.emplace_back(l); },
                                      katana::logging::format::text, katana::logging::level::warn);
    const fake_dir d({{"memory.max", ""}, {"memory.swap.max", ""}, {"memory.low", ""}});
    REQUIRE(ctl::memory::apply_v2(d.dir(), r, log));
    CHECK(d["memory.max"] == "67108864");
    CHECK(d["memory.swap.max"] == "33554432");  // swap - limit
    CHECK(d["memory.low"] == "33554432");
    CHECK(warnings.size() == 3);  // kernelTCP, swappiness, disableOOMKiller have no v2 knob
  }
  {
    // Unlimited memory with swap unset: both unlimited on v2.
    const fake_dir d({{"memory.max", ""}, {"memory.swap.max", ""}});
    oci::linux_resources u;
    u.memory = oci::linux_memory{};
    u.memory->limit = -1;
    REQUIRE(ctl::memory::apply_v2(d.dir(), u, quiet()));
    CHECK(d["memory.max"] == "max");
    CHECK(d["memory.swap.max"] == "max");
  }
  {
    // No swap accounting on v1: a real swap limit is an error naming the file.
    const fake_dir d(files{{"memory.limit_in_bytes", "0"}});
    auto st = ctl::memory::apply_v1(d.dir(), r, quiet());
    REQUIRE_FALSE(st);
    CHECK(st.error().message().starts_with("memory.memsw.limit_in_bytes: not available"));
  }
  {
    // checkBeforeUpdate refuses a limit below the usage.
    const fake_dir d({{"memory.usage_in_bytes", "1048576\n"},
                      {"memory.limit_in_bytes", ""},
                      {"memory.current", "1048576\n"},
                      {"memory.max", ""}});
    oci::linux_resources c;
    c.memory = oci::linux_memory{};
    c.memory->limit = 4096;
    c.memory->check_before_update = true;
    auto st = ctl::memory::apply_v1(d.dir(), c, quiet());
    REQUIRE_FALSE(st);
    CHECK(st.error().code == errc::invalid_spec);
    CHECK(st.error().message() ==
          "linux.resources.memory.limit (4096) is below the current usage (1048576 bytes, "
          "memory.usage_in_bytes) and memory.checkBeforeUpdate is set");
    CHECK(d["memory.limit_in_bytes"].empty());
    CHECK_FALSE(ctl::memory::apply_v2(d.dir(), c, quiet()));
  }
}

TEST_CASE("blkio/io: weights, BFQ, conversion and io.max", "[cgroup][controllers]") {
  oci::linux_resources r;
  r.block_io = oci::linux_block_io{};
  r.block_io->weight = 500;
  r.block_io->throttle_write_iops_device.push_back({8, 0, 300});
  {
    const fake_dir d({{"blkio.bfq.weight", ""}, {"blkio.throttle.write_iops_device", ""}});
    REQUIRE(ctl::blkio::apply_v1(d.dir(), r, quiet()));
    CHECK(d["blkio.bfq.weight"] == "500");
    CHECK(d["blkio.throttle.write_iops_device"] == "8:0 300");
  }
  {
    const fake_dir d({{"io.weight", ""}, {"io.max", ""}});
    REQUIRE(ctl::blkio::apply_v2(d.dir(), r, quiet()));
    CHECK(d["io.weight"] == "4950");
    CHECK(d["io.max"] == "8:0 wiops=300");
  }
  {
    const fake_dir d({{"io.bfq.weight", ""}, {"io.weight", ""}});
    oci::linux_resources w;
    w.block_io = oci::linux_block_io{};
    w.block_io->weight = 500;
    REQUIRE(ctl::blkio::apply_v2(d.dir(), w, quiet()));
    CHECK(d["io.bfq.weight"] == "500");  // BFQ takes the blkio scale as is
    CHECK(d["io.weight"].empty());
  }
  {
    const fake_dir d(files{});
    auto st = ctl::blkio::apply_v1(d.dir(), r, quiet());
    REQUIRE_FALSE(st);
    CHECK(st.error().message().starts_with("blkio.weight: not available on this host"));
  }
}

TEST_CASE("pids, cpuset, hugetlb, devices, network, rdma, unified", "[cgroup][controllers]") {
  oci::linux_resources r;
  r.pids = oci::linux_pids{0};
  r.cpu = oci::linux_cpu{};
  r.cpu->cpus = "0-1";
  r.cpu->mems = "0";
  r.hugepage_limits.push_back({"2MB", 4 << 20});
  r.devices.push_back({false, "", std::nullopt, std::nullopt, "rwm"});
  r.devices.push_back({true, "c", 1, 3, "rw"});
  r.network = oci::linux_network{};
  r.network->class_id = 0x100001;
  r.network->priorities.push_back({"eth0", 5});
  r.rdma["mlx4_0"] = {2, 2000};
  r.unified["hugetlb.2MB.max"] = "8388608";

  const fake_dir d({{"pids.max", ""},
                    {"cpuset.cpus", ""},
                    {"cpuset.mems", ""},
                    {"hugetlb.2MB.limit_in_bytes", ""},
                    {"hugetlb.2MB.max", ""},
                    {"hugetlb.2MB.rsvd.max", ""},
                    {"devices.allow", ""},
                    {"devices.deny", ""},
                    {"net_cls.classid", ""},
                    {"net_prio.ifpriomap", ""},
                    {"rdma.max", ""}});
  const auto& log = quiet();
  REQUIRE(ctl::pids::apply_v1(d.dir(), r, log));
  CHECK(d["pids.max"] == "max");
  REQUIRE(ctl::cpuset::apply_v2(d.dir(), r, log));
  CHECK(d["cpuset.cpus"] == "0-1");
  CHECK(d["cpuset.mems"] == "0");
  REQUIRE(ctl::hugetlb::apply_v1(d.dir(), r, log));
  CHECK(d["hugetlb.2MB.limit_in_bytes"] == "4194304");
  REQUIRE(ctl::hugetlb::apply_v2(d.dir(), r, log));
  CHECK(d["hugetlb.2MB.max"] == "4194304");
  CHECK(d["hugetlb.2MB.rsvd.max"] == "4194304");
  REQUIRE(ctl::devices::apply_v1(d.dir(), r, log));
  CHECK(d["devices.deny"] == "a *:* rwm");
  CHECK(d["devices.allow"] == "c 1:3 rw");
  REQUIRE(ctl::net_cls::apply_v1(d.dir(), r, log));
  CHECK(d["net_cls.classid"] == "1048577");
  REQUIRE(ctl::net_prio::apply_v1(d.dir(), r, log));
  CHECK(d["net_prio.ifpriomap"] == "eth0 5");
  CHECK(ctl::net_cls::apply_v2(d.dir(), r, log).error().code == errc::unsupported);
  REQUIRE(ctl::rdma::apply_v2(d.dir(), r, log));
  CHECK(d["rdma.max"] == "mlx4_0 hca_handle=2 hca_object=2000");
  REQUIRE(ctl::unified::apply_v2(d.dir(), r, log));
  CHECK(d["hugetlb.2MB.max"] == "8388608");
  CHECK(ctl::unified::apply_v1(d.dir(), r, log).error().code == errc::unsupported);

  oci::linux_resources big;
  big.hugepage_limits.push_back({"1GB", 1 << 30});
  auto st = ctl::hugetlb::apply_v2(d.dir(), big, log);
  REQUIRE_FALSE(st);
  CHECK(st.error().message() ==
        "hugetlb.1GB.max: not available on this host (no 1GB huge pages on this host)");

  oci::linux_resources missing;
  missing.unified["memory.high"] = "1";
  auto unknown = ctl::unified::apply_v2(d.dir(), missing, log);
  REQUIRE_FALSE(unknown);
  CHECK(unknown.error().message().find("is the memory controller enabled") != std::string::npos);
}

TEST_CASE("dir writes report <file>: <cause>", "[cgroup][controllers]") {
  const fake_dir d(files{});
  auto st = d.dir().write("memory.limit_in_bytes", "1");
  REQUIRE_FALSE(st);
  CHECK(st.error().message() == "memory.limit_in_bytes: No such file or directory");
  CHECK_FALSE(d.dir().has("memory.limit_in_bytes"));
}
