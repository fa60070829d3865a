// The host-side sandbox cgroup policy (sandbox::host_cgroup) composed into basic_sandbox with
// the fake hypervisor and the fake cgroup: the cgroup exists before the VM starts, QEMU's pid
// (and the shared-fs daemon's with sandbox_cgroup_only) joins it, stop kills what is left and
// removes it, and a failing start step leaves no cgroup behind; reap_stale cleans up after a
// sandbox whose owner died.
#include <csignal>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include <katana/core/scope_exit.hpp>
#include <katana/sandbox/host_cgroup.hpp>
#include <katana/sandbox/sandbox.hpp>
#include <katana/sandbox/stale.hpp>
#include <katana/testing/fake_cgroup.hpp>
#include <katana/testing/fake_hypervisor.hpp>

#include "catch.hpp"

namespace {

using katana::testing::fake_cgroup;
using katana::testing::fake_cgroup_tree;
namespace sb = katana::sandbox;

static_assert(sb::cgroup_policy<katana::cgroup::noop>);
static_assert(sb::cgroup_policy<sb::host_cgroup<fake_cgroup>>);
static_assert(sb::cgroup_policy<sb::host_cgroup<>>);

/// A child that waits to be killed (the "QEMU" or "virtiofsd" of the fakes).
pid_t spawn_sleeper() {
  const pid_t p = ::fork();
  if (p == 0) {
    for (;;) {
      ::pause();
    }
  }
  return p;
}

/// Reaps `p`; true when SIGKILL ended it.
bool reaped_killed(pid_t p) {
  int st = 0;
  return ::waitpid(p, &st, 0) == p && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
}

/// The fake hypervisor; its vmm_pid ("QEMU") is placed through vm_config::place_vmm.
using pid_hypervisor = katana::testing::fake_hypervisor;

/// A shared-fs policy with a daemon (like virtio_fs) but nothing mounted.
struct daemon_fs {
  static constexpr std::string_view name = "fake-fs";
  pid_t daemon = -1;
  katana::status setup_before_boot(katana::hypervisor::vm_config& vc) {
    // Where virtio_fs spawns virtiofsd (between its fork and exec).
    return vc.place_shared_fs_daemon && daemon > 0 ? vc.place_shared_fs_daemon(daemon)
                                                   : katana::status{};
  }
  katana::result<std::string> share_rootfs(std::string_view, const std::filesystem::path&) {
    return std::string("/guest");
  }
  [[nodiscard]] katana::sharedfs::guest_mount guest_storage() const { return {}; }
  katana::status cleanup() { return {}; }
};
static_assert(katana::sharedfs::driver<daemon_fs>);

using sandbox_t = sb::basic_sandbox<pid_hypervisor, daemon_fs, sb::host_cgroup<fake_cgroup>>;

katana::hypervisor::vm_config test_config(std::string_view id) {
  katana::hypervisor::vm_config vc;
  vc.id = std::string(id);
  vc.dir = std::filesystem::temp_directory_path() /
           ("katana-sbcg-" + std::to_string(::getpid()) + "-" + std::string(id));
  return vc;
}

}  // namespace

TEST_CASE("sandbox cgroup: kata_<id> holds QEMU while it runs, stop kills and removes it",
          "[sandbox][cgroup]") {
  auto tree = std::make_shared<fake_cgroup_tree>();
  pid_hypervisor h;
  h.vmm_pid = spawn_sleeper();
  daemon_fs fs;
  fs.daemon = spawn_sleeper();
  REQUIRE(h.vmm_pid > 0);
  REQUIRE(fs.daemon > 0);
  const auto vc = test_config("sb1");
  sandbox_t s(vc, h, fs, sb::host_cgroup(fake_cgroup(tree)));
  REQUIRE(s.start());
  CHECK(s.cgroup().path() == "kata_sb1");
  REQUIRE(tree->nodes.contains("kata_sb1"));
  // sandbox_cgroup_only = false: QEMU only, the daemon stays out.
  CHECK(tree->nodes["kata_sb1"].tasks == std::vector<pid_t>{h.vmm_pid});
  const auto& calls = s.cgroup().manager().calls;
  REQUIRE(calls.size() >= 2);
  CHECK(calls[0] == "create kata_sb1");
  CHECK(calls[1] == "add_task " + std::to_string(h.vmm_pid));
  CHECK(s.hypervisor().calls == std::vector<std::string>{"prepare", "start"});

  REQUIRE(s.stop());
  CHECK(tree->nodes.empty());
  CHECK(reaped_killed(h.vmm_pid));
  CHECK(s.stop());  // idempotent
  ::kill(fs.daemon, SIGKILL);
  CHECK(reaped_killed(fs.daemon));
  CHECK(!std::filesystem::exists(vc.dir));
}

TEST_CASE("sandbox cgroup: with sandbox_cgroup_only the shared-fs daemon joins it too",
          "[sandbox][cgroup]") {
  auto tree = std::make_shared<fake_cgroup_tree>();
  pid_hypervisor h;
  h.vmm_pid = spawn_sleeper();
  daemon_fs fs;
  fs.daemon = spawn_sleeper();
  sandbox_t s(test_config("sb2"), h, fs,
              sb::host_cgroup(fake_cgroup(tree), {.sandbox_cgroup_only = true}));
  REQUIRE(s.start());
  CHECK(tree->nodes["kata_sb2"].tasks == std::vector<pid_t>{fs.daemon, h.vmm_pid});
  REQUIRE(s.stop());
  CHECK(tree->nodes.empty());
  CHECK(reaped_killed(h.vmm_pid));
  CHECK(reaped_killed(fs.daemon));
}

TEST_CASE("sandbox cgroup: a failing start step leaves no cgroup behind", "[sandbox][cgroup]") {
  auto tree = std::make_shared<fake_cgroup_tree>();
  SECTION("the VM does not start") {
    pid_hypervisor h;
    h.fail_start = katana::error(katana::errc::unavailable, "qemu died");
    sandbox_t s(test_config("sb3"), h, daemon_fs{}, sb::host_cgroup(fake_cgroup(tree)));
    REQUIRE(!s.start());
    CHECK(tree->nodes.contains("kata_sb3"));  // made before the VM
    CHECK(s.stop());
    CHECK(tree->nodes.empty());
  }
  SECTION("QEMU cannot join it") {
    pid_hypervisor h;
    h.vmm_pid = spawn_sleeper();
    fake_cgroup cg(tree);
    cg.fail_next.emplace("add_task", katana::error(katana::errc::unavailable, "EACCES"));
    sandbox_t s(test_config("sb4"), h, daemon_fs{}, sb::host_cgroup(std::move(cg)));
    const auto r = s.start();
    REQUIRE(!r);
    CHECK(r.error().message().find("sandbox cgroup kata_sb4: add pid") != std::string::npos);
    CHECK(s.stop());
    CHECK(tree->nodes.empty());
    ::kill(h.vmm_pid, SIGKILL);
    CHECK(reaped_killed(h.vmm_pid));
  }
  SECTION("the cgroup cannot be created") {
    fake_cgroup cg(tree);
    cg.fail_next.emplace("create", katana::error(katana::errc::unavailable, "EROFS"));
    sandbox_t s(test_config("sb5"), pid_hypervisor{}, daemon_fs{}, sb::host_cgroup(std::move(cg)));
    const auto r = s.start();
    REQUIRE(!r);
    CHECK(r.error().message().find("sandbox cgroup kata_sb5") != std::string::npos);
    CHECK(s.hypervisor().calls.empty());  // nothing started
    CHECK(s.stop());
    CHECK(tree->nodes.empty());
  }
}

TEST_CASE("sandbox cgroup: the noop policy still composes", "[sandbox][cgroup]") {
  sb::basic_sandbox<katana::testing::fake_hypervisor, daemon_fs, katana::cgroup::noop> s(
      test_config("sb6"));
  REQUIRE(s.start());
  CHECK(s.cgroup().path() == "kata_sb6");
  CHECK(s.stop());
}

TEST_CASE("sandbox cgroup: on this host's cgroups, stop kills a task left in it and removes it",
          "[sandbox][cgroup][root]") {
  if (::geteuid() != 0) {
    WARN("skipped: creating cgroups needs root");
    return;
  }
  auto cg = sb::make_host_cgroup({.sandbox_cgroup_only = true});
  if (!cg) {
    WARN("skipped: no cgroup manager here: " << cg.error().message());
    return;
  }
  pid_hypervisor h;
  h.vmm_pid = spawn_sleeper();
  daemon_fs fs;
  fs.daemon = spawn_sleeper();  // "virtiofsd" that outlives the fs policy's cleanup
  const std::string id = "unit-" + std::to_string(::getpid());
  sb::basic_sandbox<pid_hypervisor, daemon_fs, sb::host_cgroup<>> s(test_config(id), h, fs,
                                                                    std::move(*cg));
  REQUIRE(s.start());
  const auto pids = s.cgroup().pids();
  REQUIRE(pids);
  CHECK(pids->size() == 2);
  const std::string line = "/kata_" + id;
  std::ifstream in("/proc/" + std::to_string(h.vmm_pid) + "/cgroup");
  std::string l;
  bool found = false;
  while (std::getline(in, l)) {
    found = found || l.ends_with(":" + line);
  }
  CHECK(found);
  REQUIRE(s.stop());
  CHECK(reaped_killed(h.vmm_pid));
  CHECK(reaped_killed(fs.daemon));
  for (const char* root : {"/sys/fs/cgroup/pids", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/unified",
                           "/sys/fs/cgroup"}) {
    CHECK(!std::filesystem::exists(std::string(root) + line));
  }
}

TEST_CASE("stale sandboxes: a free owner lock means stale; held, kept or live ones stay",
          "[sandbox][cgroup][root]") {
  if (::geteuid() != 0) {
    WARN("skipped: mounts and cgroups need root");
    return;
  }
  const auto root =
      std::filesystem::temp_directory_path() / ("katana-stale-" + std::to_string(::getpid()));
  const katana::scope_exit cleanup([&] { std::filesystem::remove_all(root); });
  const auto make = [&](const std::string& name, bool lock_file) {
    std::filesystem::create_directories(root / name / "shared");
    if (lock_file) {
      std::ofstream(root / name / std::string(sb::owner_lock_name));
    }
    return root / name;
  };
  // Dead: an unheld lock, a mount below it and a task in its cgroup.
  const std::string dead_id = "vm-dead-" + std::to_string(::getpid());
  const auto dead = make(dead_id, true);
  REQUIRE(::mount("tmpfs", (dead / "shared").c_str(), "tmpfs", 0, "size=64k") == 0);
  auto cg = sb::make_host_cgroup();
  if (!cg) {
    WARN("skipped: no cgroup manager here: " << cg.error().message());
    return;
  }
  REQUIRE(cg->create({.path = sb::cgroup_path(dead_id), .resources = {}}));
  const pid_t left = spawn_sleeper();
  REQUIRE(cg->add_task(left));
  // Alive: its owner holds the lock; kept: torn down and left for the user; no lock file and a
  // live pid in its name.
  const auto live = make("vm-live", true);
  auto held = sb::owner_lock::acquire(live);
  REQUIRE(held);
  const auto kept = make("vm-kept", true);
  std::ofstream(kept / std::string(sb::kept_marker_name));
  const auto mine = make("vm-" + std::to_string(::getpid()), false);

  const auto r =
      sb::reap_stale(root, [](const std::string& id) { return sb::remove_stale_host_cgroup(id); });
  CHECK(r.errors.empty());
  CHECK(r.ids == std::vector<std::string>{dead_id});
  CHECK(!std::filesystem::exists(dead));
  CHECK(reaped_killed(left));
  for (const char* cgroot : {"/sys/fs/cgroup/pids", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"}) {
    CHECK(!std::filesystem::exists(std::string(cgroot) + "/kata_" + dead_id));
  }
  std::ifstream mi("/proc/self/mountinfo");
  std::string line;
  while (std::getline(mi, line)) {
    CHECK(line.find(dead.native()) == std::string::npos);
  }
  CHECK(std::filesystem::exists(live));
  CHECK(std::filesystem::exists(kept));
  CHECK(std::filesystem::exists(mine));
  // Once its owner lets go (dies), the live one is stale too.
  held->release();
  CHECK(sb::reap_stale(root, {}).ids == std::vector<std::string>{"vm-live"});
}

TEST_CASE("stale sandboxes: the pid in a name, mounts below a directory", "[sandbox]") {
  CHECK(sb::detail::pid_suffix("vm-1234") == 1234);
  CHECK(sb::detail::pid_suffix("vm-12x") == 0);
  CHECK(sb::detail::pid_suffix("sandbox") == 0);
  const std::string mi =
      "30 1 0:26 / /run rw - tmpfs tmpfs rw\n"
      "40 30 0:27 / /run/katana/vm/vm-1/shared rw - tmpfs tmpfs rw\n"
      "41 40 0:28 / /run/katana/vm/vm-1/shared/c0/rootfs rw - ext4 /dev/sda rw\n"
      "42 30 0:29 / /run/katana/vm/vm-10 rw - tmpfs tmpfs rw\n";
  CHECK(sb::detail::mounts_below(mi, "/run/katana/vm/vm-1") ==
        std::vector<std::string>{"/run/katana/vm/vm-1/shared/c0/rootfs",
                                 "/run/katana/vm/vm-1/shared"});
}
