// cgroup::v1 on the real host (root): every resource the host's v1 controllers support, read
// back from the cgroup files; a forked child moved in; stats; freezing a busy child; error
// texts; controllers the host lacks. Skipped with a warning without root or v1 controllers.
#include <chrono>
#include <cstdint>
#include <fcntl.h>
#include <string>
#include <sys/mman.h>
#include <thread>
#include <unistd.h>

#include <katana/cgroup/v1.hpp>

#include "catch.hpp"
#include "cgroup_test_support.hpp"

using katana::errc;
namespace cgroup = katana::cgroup;
namespace oci = katana::oci;
using katana_test::cg::read_file;
using katana_test::cg::trimmed;

namespace {

#define KATANA_CGROUP_REQUIRE_V1()                             \
  KATANA_CGROUP_REQUIRE_ROOT();                                \
  do {                                                         \
    if (katana_test::cg::layout().v1.empty()) {                \
      WARN("skipped: this host has no cgroup v1 controllers"); \
      return;                                                  \
    }                                                          \
  } while (false)

std::string file(const cgroup::v1& m, std::string_view ctl, std::string_view name) {
  const auto dir = m.controller_path(ctl);
  REQUIRE(dir);
  return trimmed(read_file(*dir + "/" + std::string(name)));
}

}  // namespace

TEST_CASE("v1 applies every resource the host supports and reads it back", "[cgroup][v1][root]") {
  KATANA_CGROUP_REQUIRE_V1();
  const katana_test::cg::scratch parent("v1-apply");
  cgroup::v1 m(katana_test::cg::layout());

  oci::linux_resources r;
  if (m.has_controller("cpu")) {
    r.cpu = oci::linux_cpu{};
    r.cpu->shares = 512;
    r.cpu->quota = 50000;
    r.cpu->period = 100000;
    if (::access("/sys/fs/cgroup/cpu/cpu.cfs_burst_us", F_OK) == 0) {
      r.cpu->burst = 10000;
    }
  }
  if (m.has_controller("cpuset")) {
    if (!r.cpu) {
      r.cpu = oci::linux_cpu{};
    }
    r.cpu->cpus = "0";
    r.cpu->mems = "0";
  }
  if (m.has_controller("memory")) {
    r.memory = oci::linux_memory{};
    r.memory->limit = 64 << 20;
    r.memory->reservation = 32 << 20;
    r.memory->swappiness = 30;
    r.memory->disable_oom_killer = true;
    r.memory->kernel_tcp = 16 << 20;
  }
  if (m.has_controller("pids")) {
    r.pids = oci::linux_pids{42};
  }
  const auto disk = katana_test::cg::some_disk();
  if (m.has_controller("blkio")) {
    r.block_io = oci::linux_block_io{};
    r.block_io->weight = 200;
    if (disk) {
      r.block_io->throttle_read_bps_device.push_back({disk->first, disk->second, 1 << 20});
      r.block_io->throttle_write_iops_device.push_back({disk->first, disk->second, 500});
    }
  }
  if (m.has_controller("devices")) {
    r.devices = {{false, "", std::nullopt, std::nullopt, "rwm"},
                 {true, "c", 1, 3, "rwm"},
                 {true, "c", 1, 5, "rw"}};
  }
  const bool memsw = m.has_controller("memory") &&
                     ::access("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes", F_OK) == 0;
  if (memsw) {
    r.memory->swap = 128 << 20;
  }

  auto st = m.create({parent / "c1", r});
  INFO((st ? "" : st.error().message()));
  REQUIRE(st);
  CHECK(m.path() == parent / "c1");

  if (m.has_controller("cpu")) {
    CHECK(file(m, "cpu", "cpu.shares") == "512");
    CHECK(file(m, "cpu", "cpu.cfs_quota_us") == "50000");
    CHECK(file(m, "cpu", "cpu.cfs_period_us") == "100000");
    if (r.cpu->burst) {
      CHECK(file(m, "cpu", "cpu.cfs_burst_us") == "10000");
    }
  }
  if (m.has_controller("cpuset")) {
    CHECK(file(m, "cpuset", "cpuset.cpus") == "0");
    CHECK(file(m, "cpuset", "cpuset.mems") == "0");
  }
  if (m.has_controller("memory")) {
    CHECK(file(m, "memory", "memory.limit_in_bytes") == "67108864");
    CHECK(file(m, "memory", "memory.soft_limit_in_bytes") == "33554432");
    CHECK(file(m, "memory", "memory.swappiness") == "30");
    CHECK(file(m, "memory", "memory.oom_control").starts_with("oom_kill_disable 1"));
    CHECK(file(m, "memory", "memory.kmem.tcp.limit_in_bytes") == "16777216");
    if (memsw) {
      CHECK(file(m, "memory", "memory.memsw.limit_in_bytes") == "134217728");
    }
  }
  if (m.has_controller("pids")) {
    CHECK(file(m, "pids", "pids.max") == "42");
  }
  if (m.has_controller("blkio")) {
    const auto dir = *m.controller_path("blkio");
    const std::string weight_file =
        ::access((dir + "/blkio.weight").c_str(), F_OK) == 0 ? "blkio.weight" : "blkio.bfq.weight";
    // blkio.bfq.weight reads "default 200" on some kernels, "200" on others.
    CHECK(file(m, "blkio", weight_file).ends_with("200"));
    if (disk) {
      const auto dev = katana::str_cat(disk->first, ":", disk->second);
      CHECK(file(m, "blkio", "blkio.throttle.read_bps_device") == dev + " 1048576");
      CHECK(file(m, "blkio", "blkio.throttle.write_iops_device") == dev + " 500");
    } else {
      WARN("no whole disk found: blkio throttles not checked");
    }
  }
  if (m.has_controller("devices")) {
    CHECK(file(m, "devices", "devices.list") == "c 1:3 rwm\nc 1:5 rw");
  }

  // Updates: raising the limit above memsw needs memsw raised first (the write order).
  if (memsw) {
    oci::linux_resources up;
    up.memory = oci::linux_memory{};
    up.memory->limit = 256 << 20;
    up.memory->swap = 512 << 20;
    REQUIRE(m.apply(up));
    CHECK(file(m, "memory", "memory.limit_in_bytes") == "268435456");
    CHECK(file(m, "memory", "memory.memsw.limit_in_bytes") == "536870912");
    up.memory->limit = 32 << 20;
    up.memory->swap = 48 << 20;
    REQUIRE(m.apply(up));
    CHECK(file(m, "memory", "memory.memsw.limit_in_bytes") == "50331648");
  }
  if (m.has_controller("pids")) {
    oci::linux_resources unlimited;
    unlimited.pids = oci::linux_pids{-1};
    REQUIRE(m.apply(unlimited));
    CHECK(file(m, "pids", "pids.max") == "max");
  }
  REQUIRE(m.remove());
  for (const auto& [ctl, mp] : m.mounts()) {
    CHECK(::access((mp + "/" + (parent / "c1")).c_str(), F_OK) != 0);
  }
}

TEST_CASE("v1 realtime and idle CPU scheduling", "[cgroup][v1][root]") {
  KATANA_CGROUP_REQUIRE_V1();
  const katana_test::cg::scratch parent("v1-rt");
  cgroup::v1 m(katana_test::cg::layout());
  if (!m.has_controller("cpu")) {
    WARN("skipped: no cpu controller");
    return;
  }
  const auto cpu_dir = katana_test::cg::layout().v1.at("cpu");
  oci::linux_resources rt;
  rt.cpu = oci::linux_cpu{};
  rt.cpu->realtime_period = 1000000;
  rt.cpu->realtime_runtime = 1000;
  // Directly below the root: a new cgroup's parent must grant realtime runtime itself.
  auto st = m.create({parent.name(), rt});
  if (!st && ::access((cpu_dir + "/cpu.rt_runtime_us").c_str(), F_OK) != 0) {
    CHECK(st.error().message().find("cpu.rt_runtime_us: not available") != std::string::npos);
    WARN("no realtime group scheduling on this kernel: " << st.error().message());
  } else {
    INFO((st ? "" : st.error().message()));
    REQUIRE(st);
    CHECK(file(m, "cpu", "cpu.rt_runtime_us") == "1000");
    CHECK(file(m, "cpu", "cpu.rt_period_us") == "1000000");
  }
  if (::access((cpu_dir + "/cpu.idle").c_str(), F_OK) == 0) {
    cgroup::v1 idle(katana_test::cg::layout());
    oci::linux_resources r;
    r.cpu = oci::linux_cpu{};
    r.cpu->idle = 1;
    REQUIRE(idle.create({parent / "idle", r}));
    CHECK(file(idle, "cpu", "cpu.idle") == "1");
  }
}

TEST_CASE("v1 moves a child in and reports sane stats", "[cgroup][v1][root]") {
  KATANA_CGROUP_REQUIRE_V1();
  const katana_test::cg::scratch parent("v1-stats");
  cgroup::v1 m(katana_test::cg::layout());
  oci::linux_resources r;
  if (m.has_controller("pids")) {
    r.pids = oci::linux_pids{100};
  }
  REQUIRE(m.create({parent / "c", r}));
  katana_test::cg::child_guard child{katana_test::cg::spawn_busy()};
  REQUIRE(child.pid > 0);
  REQUIRE(m.add_task(child.pid));
  CHECK(*m.pids() == std::vector<pid_t>{child.pid});
  for (const auto& [ctl, mp] : m.mounts()) {
    INFO(ctl);
    CHECK(katana_test::cg::proc_cgroup(child.pid, ctl) == "/" + (parent / "c"));
  }
  auto s = m.has_controller("cpuacct") ? katana_test::cg::wait_for_cpu(m, 20'000'000) : m.stats();
  REQUIRE(s);
  if (m.has_controller("cpuacct")) {
    CHECK(s->cpu.usage.total_ns >= 20'000'000);
    // cpuacct.usage_user/_sys are tick-based and may round past the precise total.
    CHECK(s->cpu.usage.user_ns + s->cpu.usage.system_ns > 0);
    CHECK(s->cpu.usage.per_cpu_ns.size() >=
          static_cast<std::size_t>(::sysconf(_SC_NPROCESSORS_ONLN)));
  }
  if (m.has_controller("memory")) {
    // Charges stay where pages were faulted in (no move_charge_at_immigrate): usage may be 0.
    CHECK(s->memory.limit == cgroup::unlimited);
    CHECK_FALSE(s->memory.stat.empty());
    CHECK(s->memory.max_usage >= s->memory.usage);
    CHECK(s->oom_kill_count == 0);
  }
  if (m.has_controller("pids")) {
    CHECK(s->pids.current == 1);
    CHECK(s->pids.limit == 100);
  }
  if (m.has_controller("cpu")) {
    CHECK(s->cpu.throttling.throttled_periods == 0);
  }
  katana::testing::kill_and_reap(child.pid);
  REQUIRE(m.remove());
}

TEST_CASE("v1 freezes and thaws a busy child", "[cgroup][v1][root]") {
  KATANA_CGROUP_REQUIRE_V1();
  cgroup::v1 m(katana_test::cg::layout());
  if (!m.has_controller("freezer")) {
    WARN("skipped: no freezer controller");
    return;
  }
  const katana_test::cg::scratch parent("v1-freeze");
  REQUIRE(m.create({parent / "c", std::nullopt}));
  katana_test::cg::child_guard child{katana_test::cg::spawn_busy()};
  REQUIRE(m.add_task(child.pid));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  REQUIRE(m.freeze(cgroup::freezer_state::frozen));
  CHECK(*m.state() == cgroup::freezer_state::frozen);
  CHECK(file(m, "freezer", "freezer.state") == "FROZEN");
  const auto frozen_at = katana_test::cg::cpu_ticks(child.pid);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  CHECK(katana_test::cg::cpu_ticks(child.pid) == frozen_at);  // not a tick while frozen
  CHECK(katana_test::cg::proc_state(child.pid).find("running") == std::string::npos);

  REQUIRE(m.freeze(cgroup::freezer_state::thawed));
  CHECK(*m.state() == cgroup::freezer_state::thawed);
  CHECK(file(m, "freezer", "freezer.state") == "THAWED");
  CHECK(katana_test::cg::runs_again(child.pid, frozen_at));
  katana::testing::kill_and_reap(child.pid);
  REQUIRE(m.remove());
}

TEST_CASE("v1 errors name the file and the cause", "[cgroup][v1][root]") {
  KATANA_CGROUP_REQUIRE_V1();
  const katana_test::cg::scratch parent("v1-errors");
  cgroup::v1 m(katana_test::cg::layout());
  REQUIRE(m.create({parent / "c", std::nullopt}));
  if (m.has_controller("cpu")) {
    oci::linux_resources r;
    r.cpu = oci::linux_cpu{};
    r.cpu->quota = 500;  // below the kernel's 1 ms minimum
    auto st = m.apply(r);
    REQUIRE_FALSE(st);
    CHECK(st.error().code == std::errc::invalid_argument);
    CHECK(st.error().message() ==
          *m.controller_path("cpu") + ": cpu.cfs_quota_us: Invalid argument");
  }
  if (m.has_controller("memory")) {
    // A limit below memory that cannot be reclaimed (mlocked) is refused with EBUSY.
    int go[2];
    int done[2];
    REQUIRE(::pipe2(go, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(done, O_CLOEXEC) == 0);
    katana_test::cg::child_guard child{::fork()};
    if (child.pid == 0) {
      // Faults in and locks 8 MiB once it is in the cgroup, so they are charged there.
      constexpr std::size_t size = 8 << 20;
      char c = 0;
      if (::read(go[0], &c, 1) == 1 && ::mlockall(MCL_CURRENT) == 0) {
        void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED | MAP_POPULATE, -1, 0);
        if (p != MAP_FAILED) {
          (void)::write(done[1], "k", 1);
        }
      }
      for (;;) {
        ::pause();
      }
    }
    ::close(go[0]);
    ::close(done[1]);
    REQUIRE(m.add_task(child.pid));
    REQUIRE(::write(go[1], "g", 1) == 1);
    char c = 0;
    REQUIRE(::read(done[0], &c, 1) == 1);
    ::close(go[1]);
    ::close(done[0]);
    oci::linux_resources r;
    r.memory = oci::linux_memory{};
    r.memory->limit = 1 << 20;
    auto st = m.apply(r);
    REQUIRE_FALSE(st);
    CHECK(st.error().message() ==
          *m.controller_path("memory") + ": memory.limit_in_bytes: Device or resource busy");
    r.memory->limit = 4096;
    r.memory->check_before_update = true;
    auto checked = m.apply(r);
    REQUIRE_FALSE(checked);
    CHECK(checked.error().code == errc::invalid_spec);
    CHECK(checked.error().message().find("is below the current usage") != std::string::npos);
    katana::testing::kill_and_reap(child.pid);
  }
  REQUIRE(m.remove());
}

TEST_CASE("v1 refuses resources for controllers the host lacks", "[cgroup][v1][root]") {
  KATANA_CGROUP_REQUIRE_V1();
  const katana_test::cg::scratch parent("v1-missing");
  cgroup::v1 m(katana_test::cg::layout());
  oci::linux_resources r;
  r.network = oci::linux_network{};
  r.network->class_id = 0x100001;
  auto st = m.create({parent / "c", r});
  if (m.has_controller("net_cls")) {
    REQUIRE(st);
    CHECK(file(m, "net_cls", "net_cls.classid") == "1048577");
  } else {
    REQUIRE_FALSE(st);
    CHECK(st.error().code == errc::unsupported);
    CHECK(st.error().message().ends_with(
        "linux.resources.network.classID needs the net_cls cgroup controller, which is not "
        "mounted on this host"));
  }
  oci::linux_resources huge;
  huge.hugepage_limits.push_back({"2MB", 2 << 20});
  REQUIRE(m.create({parent / "c", std::nullopt}));
  auto h = m.apply(huge);
  CHECK(h.has_value() == m.has_controller("hugetlb"));
  oci::linux_resources uni;
  uni.unified["memory.high"] = "max";
  auto u = m.apply(uni);
  REQUIRE_FALSE(u);
  CHECK(u.error().message().find("needs cgroup v2") != std::string::npos);
  REQUIRE(m.remove());
}

TEST_CASE("v1 remove takes sub-cgroups with it and is idempotent", "[cgroup][v1][root]") {
  KATANA_CGROUP_REQUIRE_V1();
  const katana_test::cg::scratch parent("v1-remove");
  cgroup::v1 m(katana_test::cg::layout());
  REQUIRE(m.create({parent / "c", std::nullopt}));
  cgroup::v1 inner(katana_test::cg::layout());
  REQUIRE(inner.create({parent / "c/nested/deeper", std::nullopt}));
  REQUIRE(m.remove());
  for (const auto& [ctl, mp] : m.mounts()) {
    CHECK(::access((mp + "/" + (parent / "c")).c_str(), F_OK) != 0);
  }
  REQUIRE(m.remove());
  CHECK_FALSE(cgroup::v1(katana_test::cg::layout()).open({parent / "c", std::nullopt}));
  CHECK(cgroup::v1(katana_test::cg::layout()).create({"/", std::nullopt}).error().code ==
        errc::invalid_argument);
  CHECK(cgroup::v1(katana_test::cg::layout()).create({"../x", std::nullopt}).error().code ==
        errc::path_escapes_root);
}
