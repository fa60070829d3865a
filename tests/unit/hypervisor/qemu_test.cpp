// The QEMU policy against the real QEMU (skipped with a warning when it is not installed): the
// bounded KVM probe, QMP on a paused VM (status, virtio-blk hot-plug, quit), vm::hotplug_block
// on a running q35 VM, QEMU's stderr in the error of a failed start, and nothing left behind.
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <unistd.h>

#include <katana/config/load.hpp>
#include <katana/hypervisor/kvm_probe.hpp>
#include <katana/hypervisor/process.hpp>
#include <katana/hypervisor/qemu/qemu.hpp>
#include <katana/hypervisor/qemu/qmp.hpp>
#include <katana/testing/fake_hypervisor.hpp>

#include "../temp_dir.hpp"
#include "catch.hpp"

namespace fs = std::filesystem;
namespace hv = katana::hypervisor;
using namespace std::chrono_literals;

namespace {

constexpr const char* qemu_binary = "/usr/bin/qemu-system-x86_64";

struct temp_dir : katana_test::temp_dir {
  temp_dir() : katana_test::temp_dir("katana-qemu") {}
};

/// A multiboot (v1) kernel that halts: a header with load addresses, then cli; hlt; jmp back.
/// Enough for a q35 VM that runs (SeaBIOS, then this) without a Linux kernel in the tree.
void write_halting_kernel(const fs::path& p) {
  constexpr std::uint32_t magic = 0x1BADB002, flags = 1U << 16, load = 0x100000;
  const std::uint32_t header[8] = {magic, flags, 0U - (magic + flags), load, load, 0, 0, load + 32};
  std::ofstream f(p, std::ios::binary);
  f.write(reinterpret_cast<const char*>(header), sizeof header);
  constexpr unsigned char code[] = {0xFA, 0xF4, 0xEB, 0xFD};
  f.write(reinterpret_cast<const char*>(code), sizeof code);
}

bool have_qemu() {
  return ::access(qemu_binary, X_OK) == 0;
}

}  // namespace

TEST_CASE("the KVM probe answers within its bound", "[qemu]") {
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = hv::probe_kvm(1500ms);
  CHECK(std::chrono::steady_clock::now() - t0 < 3s);
  CHECK(!r.reason.empty());
}

TEST_CASE("accelerator = tcg skips the probe; kvm fails when KVM is unusable", "[qemu]") {
  katana::config::hypervisor_config h;
  h.accelerator = "tcg";
  REQUIRE(hv::qemu::resolve_accelerator(h) == hv::qemu::accelerator::tcg);
  h.accelerator = "kvm";
  h.kvm_probe_timeout_ms = 1000;
  const auto r = hv::qemu::resolve_accelerator(h);
  if (!hv::probe_kvm(1000ms).usable) {
    REQUIRE(!r);
    CHECK(r.error().context.find("KVM is not usable") != std::string::npos);
  }
}

TEST_CASE("QMP: status, virtio-blk hot-plug and quit on a paused q35 VM", "[qemu]") {
  if (!have_qemu()) {
    WARN("skipped: no " << qemu_binary);
    return;
  }
  temp_dir dir;
  const auto qmp_path = dir.path / "qmp.sock";
  const auto disk = dir.path / "disk.img";
  { std::ofstream(disk) << std::string(1 << 20, '\0'); }
  auto proc = hv::child_process::spawn(
      {qemu_binary, "-M", "q35", "-accel", "tcg", "-nodefaults", "-display", "none", "-S",
       "-device", "pci-bridge,bus=pcie.0,id=pci-bridge-0,chassis_nr=1,shpc=off,addr=2", "-qmp",
       "unix:" + qmp_path.string() + ",server=on,wait=off"},
      dir.path / "stderr");
  REQUIRE(proc);
  auto qmp = hv::qemu::qmp::client::connect(qmp_path, 5s, [&] { return proc->running(); });
  REQUIRE(qmp);
  auto st = (*qmp)->status();
  REQUIRE(st);
  CHECK(*st == "prelaunch");
  REQUIRE((*qmp)->execute("blockdev-add",
                          "{\"node-name\":\"drive-blk0\",\"driver\":\"raw\",\"read-only\":true,"
                          "\"file\":{\"driver\":\"file\",\"filename\":" +
                              hv::qemu::qmp::quote(disk.string()) + "}}"));
  REQUIRE((*qmp)->execute(
      "device_add",
      R"({"driver":"virtio-blk-pci","id":"blk0","drive":"drive-blk0","bus":"pci-bridge-0"})"));
  auto bad = (*qmp)->execute("device_add", R"({"driver":"no-such-device","id":"x"})");
  REQUIRE(!bad);
  CHECK(bad.error().context.find("no-such-device") != std::string::npos);
  REQUIRE((*qmp)->quit());
  CHECK(proc->wait_for(5s).has_value());
  // What the socket still holds after QEMU's exit says why it stopped the machine.
  CHECK(hv::qemu::qmp::shutdown_reason((*qmp)->drain_events()) == "host-qmp-quit");
}

TEST_CASE("a child's end: an exit code above 128 is not a signal", "[qemu][spawn]") {
  temp_dir dir;
  auto exited = hv::child_process::spawn({"/bin/sh", "-c", "exit 137"}, dir.path / "e1");
  REQUIRE(exited);
  CHECK(exited->wait_for(10s) == 137);
  REQUIRE(exited->wait_status());
  CHECK(hv::describe_wait_status(*exited->wait_status()) == "exited with 137");
  auto killed = hv::child_process::spawn({"/bin/sh", "-c", "read x"}, dir.path / "e2");
  REQUIRE(killed);
  CHECK_FALSE(killed->wait_status());  // still running
  killed->kill();
  REQUIRE(killed->wait_status());
  CHECK(hv::describe_wait_status(*killed->wait_status()) == "was killed by signal 9 (Killed)");
}

TEST_CASE("exit report parts: QMP's shutdown reason and the guest's panic message", "[qemu]") {
  namespace qmp = hv::qemu::qmp;
  CHECK(qmp::shutdown_reason({}).empty());
  CHECK(qmp::shutdown_reason({R"({"event": "STOP", "timestamp": {"seconds": 1}})",
                              R"({"timestamp": {"seconds": 2, "microseconds": 5}, "event": )"
                              R"("SHUTDOWN", "data": {"guest": true, "reason": "guest-reset"}})",
                              R"({"event": "RESUME"})"}) == "guest-reset");
  CHECK(hv::qemu::detail::describe_shutdown("guest-reset").find("rebooted") != std::string::npos);
  CHECK(hv::qemu::detail::describe_shutdown("guest-shutdown") == "the guest powered off");
  CHECK(hv::qemu::detail::describe_shutdown("snapshot-load") ==
        "shutdown reason \"snapshot-load\"");
  CHECK(hv::qemu::detail::describe_shutdown("").empty());

  CHECK(hv::qemu::detail::guest_panic_message("[    1.0] booted\n").empty());
  const std::string console =
      "{\"msg\":\"container started\"}\r\n"
      "[    3.37] Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b\r\n"
      "[    3.38] CPU: 0 PID: 1 Comm: katana-agent\r\n"
      "[    3.39] Rebooting in 1 seconds..";
  CHECK(hv::qemu::detail::guest_panic_message(console) ==
        "Attempted to kill init! exitcode=0x0000000b");
  // The line may be the last one, without its newline yet.
  CHECK(hv::qemu::detail::guest_panic_message("Kernel panic - not syncing: VFS: Unable") ==
        "VFS: Unable");
}

TEST_CASE("spawn: the before_exec hook sees the child before it execs", "[qemu][spawn]") {
  temp_dir dir;
  std::string seen_exe;
  auto proc = hv::child_process::spawn(
      {"/bin/sh", "-c", "exit 3"}, dir.path / "stderr", [&](pid_t pid) -> katana::status {
        std::error_code ec;
        seen_exe = fs::read_symlink("/proc/" + std::to_string(pid) + "/exe", ec).string();
        return {};
      });
  REQUIRE(proc);
  // Still this test binary, not /bin/sh (which may be a link to dash or bash).
  CHECK(seen_exe == fs::read_symlink("/proc/self/exe").string());
  CHECK(proc->wait_for(10s) == 3);  // released: it ran
}

TEST_CASE("child_process::alive tells a running child from an ended one without reaping it",
          "[qemu][spawn]") {
  temp_dir dir;
  auto proc = hv::child_process::spawn({"/bin/sh", "-c", "read x"}, dir.path / "stderr");
  REQUIRE(proc);
  const pid_t pid = proc->pid();
  CHECK(hv::child_process::alive(pid));
  ::kill(pid, SIGKILL);
  for (int i = 0; i < 500 && hv::child_process::alive(pid); ++i) {
    std::this_thread::sleep_for(10ms);
  }
  CHECK_FALSE(hv::child_process::alive(pid));
  CHECK(proc->poll() == 128 + SIGKILL);  // not reaped by alive(): the status is still there
  CHECK_FALSE(hv::child_process::alive(pid));
  CHECK_FALSE(hv::child_process::alive(-1));
}

TEST_CASE("spawn: a failing before_exec hook kills the child, which never execs", "[qemu][spawn]") {
  temp_dir dir;
  const auto marker = dir.path / "ran";
  pid_t child = -1;
  auto proc = hv::child_process::spawn({"/bin/sh", "-c", "touch " + marker.string()},
                                       dir.path / "stderr", [&](pid_t pid) -> katana::status {
                                         child = pid;
                                         return katana::fail(katana::errc::unavailable,
                                                             "no cgroup for you");
                                       });
  REQUIRE(!proc);
  CHECK(proc.error().message().find("spawn /bin/sh") != std::string::npos);
  CHECK(proc.error().message().find("no cgroup for you") != std::string::npos);
  REQUIRE(child > 0);
  CHECK(::kill(child, 0) == -1);  // killed and reaped: not even a zombie
  CHECK(errno == ESRCH);
  CHECK(!fs::exists(marker));
}

TEST_CASE("QMP connect gives up at once when QEMU exits", "[qemu]") {
  if (!have_qemu()) {
    WARN("skipped: no " << qemu_binary);
    return;
  }
  temp_dir dir;
  auto proc = hv::child_process::spawn({qemu_binary, "-no-such-option"}, dir.path / "stderr");
  REQUIRE(proc);
  const auto t0 = std::chrono::steady_clock::now();
  auto qmp =
      hv::qemu::qmp::client::connect(dir.path / "qmp.sock", 5s, [&] { return proc->running(); });
  REQUIRE(!qmp);
  CHECK(std::chrono::steady_clock::now() - t0 < 4s);
  CHECK(proc->stderr_tail().find("no-such-option") != std::string::npos);
}

TEST_CASE("a failed start carries QEMU's stderr and leaves nothing behind", "[qemu]") {
  if (!have_qemu()) {
    WARN("skipped: no " << qemu_binary);
    return;
  }
  temp_dir dir;
  auto cfg = katana::config::embedded_defaults();
  REQUIRE(cfg);
  hv::vm_config vc;
  vc.id = "t1";
  vc.dir = dir.path / "sb";
  vc.hypervisor = *cfg->hypervisor();
  vc.hypervisor.accelerator = "tcg";
  vc.hypervisor.kernel = (dir.path / "no-such-kernel").string();
  vc.agent = cfg->agent;
  hv::qemu::vm q;
  REQUIRE(q.prepare(vc));
  auto r = q.start();
  REQUIRE(!r);
  CHECK(r.error().context.find("no-such-kernel") != std::string::npos);
  CHECK(!fs::exists(vc.dir / "qmp.sock"));
  CHECK(!fs::exists(vc.dir / "agent.sock"));
  CHECK(!fs::exists(vc.dir / "qemu.stderr"));

  // A vsock agent channel is refused by name rather than quietly served over virtio-serial.
  vc.agent.channel = "vsock";
  hv::qemu::vm v;
  auto refused = v.prepare(vc);
  REQUIRE(!refused);
  CHECK(refused.error().message().find("agent.kata.channel = \"vsock\"") != std::string::npos);
}

TEST_CASE("vm::hotplug_block adds a virtio-blk device to a running q35 VM", "[qemu]") {
  if (!have_qemu()) {
    WARN("skipped: no " << qemu_binary);
    return;
  }
  temp_dir dir;
  const auto disk = dir.path / "disk.img";
  { std::ofstream(disk) << std::string(1 << 20, '\0'); }
  write_halting_kernel(dir.path / "kernel");
  auto cfg = katana::config::embedded_defaults();
  REQUIRE(cfg);
  hv::vm_config vc;
  vc.id = "hp";
  vc.dir = dir.path / "sb";
  vc.shared_dir = dir.path / "shared";
  fs::create_directories(vc.shared_dir);
  vc.hypervisor = *cfg->hypervisor();
  vc.hypervisor.accelerator = "tcg";
  vc.hypervisor.machine_type = "q35";
  vc.hypervisor.default_bridges = 1;
  vc.hypervisor.kernel = (dir.path / "kernel").string();
  vc.hypervisor.initrd = disk.string();  // a multiboot module; anything readable
  vc.agent = cfg->agent;
  {
    hv::qemu::vm first;
    REQUIRE(first.prepare(vc));
    auto started = first.start();
    REQUIRE(started);
    hv::qemu::vm q = std::move(first);  // the QMP client must not depend on where the vm lives
    REQUIRE(q.qmp() != nullptr);
    CHECK(q.qmp()->status() == "running");
    REQUIRE(q.hotplug_block({.id = "blk0", .file = disk, .read_only = true}));
    // On the bridge (which the halting guest never enumerated, so query-pci cannot see it).
    const auto type =
        q.qmp()->execute("qom-get", R"({"path":"/machine/peripheral/blk0","property":"type"})");
    REQUIRE(type);
    CHECK(type->find("virtio-blk-pci") != std::string::npos);
    const auto bus = q.qmp()->execute(
        "qom-get", R"({"path":"/machine/peripheral/blk0","property":"parent_bus"})");
    REQUIRE(bus);
    CHECK(bus->find("pci-bridge-0") != std::string::npos);
    // The same id again: QEMU refuses, and the error says which device.
    auto again = q.hotplug_block({.id = "blk0", .file = disk, .read_only = true});
    REQUIRE(!again);
    CHECK(again.error().message().find("hotplug blk0") != std::string::npos);
    REQUIRE(q.stop());
    CHECK(!q.running());
  }
  CHECK(!fs::exists(vc.dir / "qmp.sock"));
  CHECK(!fs::exists(vc.dir / "qemu.stderr"));

  // Without a bridge there is no bus to hot-plug onto: said before QEMU is asked.
  vc.hypervisor.default_bridges = 0;
  hv::qemu::vm q;
  REQUIRE(q.prepare(vc));
  REQUIRE(q.start());
  auto no_bridge = q.hotplug_block({.id = "blk1", .file = disk, .read_only = true});
  REQUIRE(!no_bridge);
  CHECK(no_bridge.error().message().find("default_bridges is 0") != std::string::npos);
  REQUIRE(q.stop());
}

TEST_CASE("the fake hypervisor satisfies the driver and hot-plug concepts", "[qemu]") {
  katana::testing::fake_hypervisor f;
  REQUIRE(f.prepare({}));
  REQUIRE(f.start());
  REQUIRE(f.hotplug_block({.id = "b0", .file = "/x", .read_only = true}));
  REQUIRE(f.stop());
  CHECK(f.calls == std::vector<std::string>{"prepare", "start", "hotplug b0", "stop"});
  CHECK(f.wait(0ms) == 0);
}
