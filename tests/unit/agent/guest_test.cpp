// The guest side of the agent on fake trees: kernel command line, the agent channel, kernel
// modules, PID 1's mounts, storages and PCI paths, CopyFile's confinement.
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <linux/nsfs.h>
#include <optional>
#include <sched.h>
#include <string>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <katana/agent/channel.hpp>
#include <katana/agent/config.hpp>
#include <katana/agent/copy_file.hpp>
#include <katana/agent/devices.hpp>
#include <katana/agent/init.hpp>
#include <katana/agent/kmod.hpp>
#include <katana/agent/namespaces.hpp>
#include <katana/agent/storage.hpp>
#include <katana/ttrpc/status.hpp>

#include "catch.hpp"
#include "support.hpp"

namespace ag = katana::agent;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {
void write(const fs::path& p, std::string_view text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}
}  // namespace

TEST_CASE("kernel command line: Kata's agent.* keys and katana's", "[agent][config]") {
  ag::agent_config c;
  REQUIRE(ag::parse_kernel_cmdline(
      "console=ttyS0 quiet agent.log=debug agent.server_addr=vsock://-1:1024 "
      "agent.debug_console agent.hotplug_timeout=5 agent.modules=virtio_console,9p,,9pnet_virtio "
      "agent.channel=virtio-serial agent.newthing=1 agent.container_pipe_size=4096 "
      "foo.agent.log=trace",
      c));
  CHECK(c.log_level == "debug");
  CHECK(c.server_addr == "vsock://-1:1024");
  CHECK(c.debug_console);
  CHECK(c.hotplug_timeout == 5s);
  CHECK(c.modules == std::vector<std::string>{"virtio_console", "9p", "9pnet_virtio"});
  CHECK(c.channel == "virtio-serial");
  CHECK(c.container_pipe_size == 4096);
  CHECK(c.unknown == std::vector<std::string>{"newthing=1"});

  ag::agent_config bad;
  CHECK(!ag::parse_kernel_cmdline("agent.log=loud", bad));
  CHECK(!ag::parse_kernel_cmdline("agent.hotplug_timeout=soon", bad));
  CHECK(!ag::parse_kernel_cmdline("agent.channel=carrier-pigeon", bad));
  CHECK(!ag::parse_kernel_cmdline("agent.modules=../evil", bad));
  ag::agent_config quoted;
  REQUIRE(ag::parse_kernel_cmdline("a=\"b c\" agent.devmode", quoted));
  CHECK(quoted.devmode);
  CHECK(quoted.log_level == "debug");
}

TEST_CASE("listen addresses", "[agent][config]") {
  auto v = ag::parse_listen_address("vsock://-1:1024");
  REQUIRE(v);
  CHECK(v->type == ag::listen_address::kind::vsock);
  CHECK(v->cid == 0xffffffffU);
  CHECK(v->port == 1024);
  CHECK(ag::parse_listen_address("vsock://3:2000")->cid == 3);
  auto u = ag::parse_listen_address("unix:///run/a.sock");
  REQUIRE(u);
  CHECK(u->path == "/run/a.sock");
  auto s = ag::parse_listen_address("serial://agent.channel.0");
  REQUIRE(s);
  CHECK(s->port_name == "agent.channel.0");
  CHECK(ag::parse_listen_address("serial:///dev/vport1p1")->path == "/dev/vport1p1");
  CHECK(!ag::parse_listen_address("tcp://0:1"));
  CHECK(!ag::parse_listen_address("unix://relative"));
  CHECK(!ag::parse_listen_address("vsock://1024"));
}

TEST_CASE("the virtio-serial port is found by name, polled until it appears", "[agent]") {
  katana_test::temp_dir t;
  const auto sys = t.path / "sys";
  const auto dev = t.path / "dev";
  write(sys / "class" / "virtio-ports" / "vport0p0" / "name", "org.qemu.guest_agent.0\n");
  fs::create_directories(dev);
  CHECK(ag::find_virtio_port("agent.channel.0", sys, dev).error().code == katana::errc::not_found);

  katana::asio::io_context io;
  // The port shows up 100 ms later (the control queue's PORT_ADD is asynchronous).
  katana::asio::steady_timer later(io, 100ms);
  later.async_wait([&](boost::system::error_code) {
    write(sys / "class" / "virtio-ports" / "vport1p1" / "name", "agent.channel.0\n");
    write(dev / "vport1p1", "");
  });
  auto found = katana_test::run(io, ag::wait_virtio_port("agent.channel.0", 5s, sys, dev));
  REQUIRE(found);
  CHECK(*found == dev / "vport1p1");

  ag::agent_config cfg;  // channel auto: the port wins
  auto a = katana_test::run(io, ag::resolve_listen_address(cfg, 1s, 100ms, sys, dev));
  REQUIRE(a);
  CHECK(a->type == ag::listen_address::kind::serial);
  fs::remove_all(sys / "class" / "virtio-ports" / "vport1p1");
  write(dev / "vsock", "");
  auto b = katana_test::run(io, ag::resolve_listen_address(cfg, 1s, 50ms, sys, dev));
  REQUIRE(b);
  CHECK(b->type == ag::listen_address::kind::vsock);
  CHECK(b->port == 1024);
  fs::remove(dev / "vsock");
  CHECK(!katana_test::run(io, ag::resolve_listen_address(cfg, 100ms, 50ms, sys, dev)));
}

TEST_CASE("modules.dep: dependencies first, builtins skipped", "[agent][kmod]") {
  const auto idx = ag::module_index::parse_text(
      "kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko kernel/fs/fscache/fscache.ko "
      "kernel/fs/netfs/netfs.ko\n"
      "kernel/net/9p/9pnet.ko:\n"
      "kernel/fs/fscache/fscache.ko: kernel/fs/netfs/netfs.ko\n"
      "kernel/fs/netfs/netfs.ko:\n"
      "kernel/net/9p/9pnet_virtio.ko.xz: kernel/net/9p/9pnet.ko kernel/drivers/virtio/virtio.ko\n"
      "kernel/drivers/virtio/virtio.ko:\n");
  auto order = idx.load_order("9p");
  REQUIRE(order);
  CHECK(*order == std::vector<std::string>{"netfs", "fscache", "9pnet", "9p"});
  CHECK(*idx.load_order("9pnet-virtio") ==
        std::vector<std::string>{"virtio", "9pnet", "9pnet_virtio"});
  CHECK(idx.load_order("nope").error().code == katana::errc::not_found);
  CHECK(ag::module_name("kernel/a/b-c.ko.zst") == "b_c");
  CHECK(ag::is_compressed_module("x.ko.xz"));
  CHECK(!ag::is_compressed_module("x.ko"));
}

TEST_CASE("module loader: finit_module once per module, compressed flag", "[agent][kmod]") {
  katana_test::temp_dir t;
  write(t.path / "modules.dep", "kernel/a.ko: kernel/b.ko.xz\nkernel/b.ko.xz:\nkernel/c.ko:\n");
  write(t.path / "modules.builtin", "kernel/builtin.ko\n");
  write(t.path / "kernel" / "a.ko", "A");
  write(t.path / "kernel" / "b.ko.xz", "B");
  write(t.path / "kernel" / "c.ko", "C");
  auto idx = ag::module_index::load(t.path);
  REQUIRE(idx);
  CHECK(idx->builtin("builtin"));
  std::vector<std::pair<std::string, int>> calls;
  ag::module_loader loader(
      std::move(*idx),
      [&](int fd, const std::string& params, int flags) {
        char c = 0;
        REQUIRE(::pread(fd, &c, 1, 0) == 1);
        calls.emplace_back(std::string(1, c) + params, flags);
        return c == 'C' ? -EEXIST : 0;
      },
      t.path / "no-sys-module");
  REQUIRE(loader.load("a", "x=1"));
  REQUIRE(loader.load("b"));  // already loaded as a dependency
  REQUIRE(loader.load("c"));  // EEXIST: loaded before us
  REQUIRE(loader.load("builtin"));
  REQUIRE(calls.size() == 3);
  CHECK(calls[0] == std::pair<std::string, int>{"B", MODULE_INIT_COMPRESSED_FILE});
  CHECK(calls[1] == std::pair<std::string, int>{"Ax=1", 0});
  CHECK(calls[2].first == "C");
  CHECK(!loader.load("missing"));

  ag::module_loader failing(
      *ag::module_index::load(t.path), [](int, const std::string&, int) { return -EINVAL; },
      t.path / "no-sys-module");
  const auto r = failing.load("b");
  REQUIRE(!r);
  CHECK(r.error().message().find("cannot decompress") != std::string::npos);
}

TEST_CASE("module signatures are stripped, anything else is left alone", "[agent][kmod]") {
  const std::string body = std::string(
                               "\x7f"
                               "ELF") +
                           std::string(60, 'x');
  const std::string pkcs7(300, 's');
  std::string info(12, '\0');
  info[2] = 2;  // PKEY_ID_PKCS7
  info[10] = static_cast<char>(300 >> 8);
  info[11] = static_cast<char>(300 & 0xff);
  const std::string marker = "~Module signature appended~\n";
  CHECK(ag::strip_module_signature(body + pkcs7 + info + marker) == body);
  CHECK(ag::strip_module_signature(body) == body);
  // A length larger than the file: not a signature we understand, kept whole.
  std::string bad = info;
  bad[8] = 0x7f;
  CHECK(ag::strip_module_signature(body + bad + marker) == body + bad + marker);
  CHECK(ag::strip_module_signature(marker) == marker);
  CHECK(ag::strip_module_signature("").empty());
}

TEST_CASE("PID 1's mounts", "[agent][init]") {
  CHECK(ag::choose_cgroup_layout("nodev\tcgroup\nnodev\tcgroup2\n", "") == ag::cgroup_layout::v2);
  CHECK(ag::choose_cgroup_layout("nodev\tcgroup\nnodev\tcgroup2\n",
                                 "systemd.unified_cgroup_hierarchy=0") == ag::cgroup_layout::v1);
  CHECK(ag::choose_cgroup_layout("nodev\tcgroup\n", "") == ag::cgroup_layout::v1);
  CHECK(ag::choose_cgroup_layout("nodev\tproc\n", "") == ag::cgroup_layout::none);
  const auto ctrls = ag::cgroup_v1_controllers(
      "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpuset\t0\t1\t1\ncpu\t0\t1\t1\n"
      "cpuacct\t0\t1\t1\nmemory\t0\t1\t0\npids\t0\t1\t1\n");
  CHECK(ctrls == std::vector<std::string>{"cpuset", "cpu", "cpuacct", "pids"});

  const auto v2 = ag::init_mount_plan(ag::cgroup_layout::v2, {});
  std::vector<std::string> targets;
  for (const auto& m : v2) {
    targets.push_back(m.target);
  }
  CHECK(targets == std::vector<std::string>{"/proc", "/sys", "/dev", "/dev/pts", "/dev/shm", "/run",
                                            "/sys/fs/cgroup"});
  CHECK(v2[2].fstype == "devtmpfs");
  CHECK(v2.back().fstype == "cgroup2");
  CHECK(v2.back().data == "favordynmods");
  CHECK(v2.back().fallback_data == std::optional<std::string>(""));
  const auto v1 = ag::init_mount_plan(ag::cgroup_layout::v1, ctrls);
  REQUIRE(v1.size() == 10);
  CHECK(v1[6].fstype == "tmpfs");
  CHECK(v1[8].target == "/sys/fs/cgroup/cpu,cpuacct");
  CHECK(v1[8].data == "cpu,cpuacct");
  CHECK(v1[9].data == "pids");
}

TEST_CASE("storages: drivers, options, and what they mount", "[agent][storage]") {
  katana_test::temp_dir t;
  katana_test::recording_mounter m;
  ag::device_env env{t.path / "sys", t.path / "dev", 300ms, 10ms};
  katana::asio::io_context io;
  const auto mp = [&](std::string_view n) {
    return (t.path / "m" / n).string();
  };

  REQUIRE(
      katana_test::run(io, ag::mount_storage(m, env,
                                             {.driver = "9p",
                                              .source = "kataShared",
                                              .options = {"trans=virtio", "nodev", "msize=8192"},
                                              .mount_point = mp("9p")})));
  REQUIRE(katana_test::run(io, ag::mount_storage(m, env,
                                                 {.driver = "virtio-fs",
                                                  .source = "kataShared",
                                                  .fstype = "virtiofs",
                                                  .options = {"ro"},
                                                  .mount_point = mp("vfs")})));
  REQUIRE(katana_test::run(io, ag::mount_storage(m, env,
                                                 {.driver = "overlayfs",
                                                  .options = {"lowerdir=/a", "upperdir=" + mp("up"),
                                                              "workdir=" + mp("w")},
                                                  .mount_point = mp("ovl")})));
  REQUIRE(m.mounts->size() == 3);
  CHECK(m.mounts->at(0).fstype == "9p");
  CHECK(m.mounts->at(0).source == "kataShared");
  CHECK(m.mounts->at(0).flags == MS_NODEV);
  CHECK(m.mounts->at(0).data == "trans=virtio,msize=8192");
  CHECK(m.mounts->at(1).fstype == "virtiofs");
  CHECK(m.mounts->at(1).flags == MS_RDONLY);
  CHECK(m.mounts->at(2).fstype == "overlay");
  CHECK(fs::is_directory(mp("up")));
  CHECK(fs::is_directory(mp("w")));

  SECTION("blk by PCI path waits for the device") {
    const auto root_bus = t.path / "sys" / "devices" / "pci0000:00";
    fs::create_directories(root_bus / "0000:00:02.0" / "pci_bus" / "0000:01");
    katana::asio::steady_timer later(io, 50ms);
    later.async_wait([&](boost::system::error_code) {
      fs::create_directories(root_bus / "0000:00:02.0" / "0000:01:03.0" / "virtio4" / "block" /
                             "vdb");
    });
    auto r = katana_test::run(
        io, ag::mount_storage(
                m, env,
                {.driver = "blk", .source = "02/03", .fstype = "ext4", .mount_point = mp("blk")}));
    REQUIRE(r);
    CHECK(m.mounts->back().source == (t.path / "dev" / "vdb").string());
    CHECK(m.mounts->back().fstype == "ext4");
  }
  SECTION("blk that never appears times out with NOT_FOUND") {
    auto r = katana_test::run(
        io,
        ag::mount_storage(
            m, env, {.driver = "blk", .source = "05", .fstype = "ext4", .mount_point = mp("blk")}));
    REQUIRE(!r);
    CHECK(katana::ttrpc::to_code(r.error().code) == katana::ttrpc::code::not_found);
  }
  SECTION("bad input") {
    const auto code = [&](ag::storage s) {
      auto r = katana_test::run(io, ag::mount_storage(m, env, std::move(s)));
      REQUIRE(!r);
      return katana::ttrpc::to_code(r.error().code);
    };
    CHECK(code({.driver = "nfs", .mount_point = mp("x")}) == katana::ttrpc::code::invalid_argument);
    CHECK(code({.driver = "blk", .source = "zz/1", .fstype = "ext4", .mount_point = mp("x")}) ==
          katana::ttrpc::code::invalid_argument);
    CHECK(code({.driver = "ephemeral", .fstype = "ext4", .mount_point = mp("x")}) ==
          katana::ttrpc::code::invalid_argument);
    CHECK(code({.driver = "local", .mount_point = "relative"}) ==
          katana::ttrpc::code::invalid_argument);
    CHECK(code({.driver = "local", .mount_point = "/a/../../b"}) ==
          katana::ttrpc::code::permission_denied);
    CHECK(code({.driver = "mmioblk", .fstype = "ext4", .mount_point = mp("x")}) ==
          katana::ttrpc::code::invalid_argument);
  }
  SECTION("registry: shared mounts are counted, released on the last reference") {
    ag::storage_registry reg;
    ag::storage s{.driver = "ephemeral", .source = "shm", .mount_point = mp("shm")};
    REQUIRE(katana_test::run(io, reg.add(m, env, s)));
    REQUIRE(katana_test::run(io, reg.add(m, env, s)));
    CHECK(reg.size() == 1);
    REQUIRE(reg.release(m, mp("shm")));
    CHECK(m.unmounts->empty());
    REQUIRE(reg.release(m, mp("shm")));
    CHECK(m.unmounts->size() == 1);
  }
}

TEST_CASE("PCI paths", "[agent][devices]") {
  CHECK(ag::check_pci_path("02"));
  CHECK(ag::check_pci_path("02/1f/00"));
  CHECK(!ag::check_pci_path(""));
  CHECK(!ag::check_pci_path("20"));
  CHECK(!ag::check_pci_path("002"));
  CHECK(!ag::check_pci_path("02/"));
  CHECK(!ag::check_pci_path("/02"));
  CHECK(!ag::check_pci_path("0g"));
  katana_test::temp_dir t;
  const auto root_bus = t.path / "devices" / "pci0000:00";
  fs::create_directories(root_bus / "0000:00:02.0" / "pci_bus" / "0000:05");
  fs::create_directories(root_bus / "0000:00:02.0" / "0000:05:1f.0" / "virtio1" / "block" / "vdc");
  auto dir = ag::pci_device_dir(t.path, "02/1f");
  REQUIRE(dir);
  CHECK(*dir == root_bus / "0000:00:02.0" / "0000:05:1f.0");
  CHECK(*ag::pci_block_device(t.path, "02/1f") == "vdc");
  CHECK(ag::pci_device_dir(t.path, "03").error().code == katana::errc::not_found);
}

TEST_CASE("CopyFile stays below its root", "[agent][copy_file]") {
  katana_test::temp_dir t;
  const auto root = t.path / "run";
  fs::create_directories(root);
  const auto uid = static_cast<std::int32_t>(::getuid());
  const auto gid = static_cast<std::int32_t>(::getgid());
  const auto req = [&](std::string path, std::string data, std::int64_t size, std::int64_t off,
                       std::uint32_t mode = S_IFREG | 0640) {
    return ag::copy_file_request{std::move(path), size, mode, 0750, uid, gid, off, std::move(data)};
  };
  // Two chunks; the file appears (renamed from .tmp) with the second.
  REQUIRE(ag::copy_file(root, req((root / "a/b/f").string(), "hello ", 11, 0)));
  CHECK(!fs::exists(root / "a/b/f"));
  REQUIRE(ag::copy_file(root, req((root / "a/b/f").string(), "world", 11, 6)));
  std::ifstream in(root / "a/b/f");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(text == "hello world");
  CHECK((fs::status(root / "a/b/f").permissions() & fs::perms::all) == fs::perms(0640));
  CHECK((fs::status(root / "a/b").permissions() & fs::perms::all) == fs::perms(0750));
  // Directories and symlinks.
  REQUIRE(ag::copy_file(root, req((root / "d").string(), "", 0, 0, S_IFDIR | 0700)));
  CHECK(fs::is_directory(root / "d"));
  REQUIRE(ag::copy_file(root, req((root / "l").string(), "/etc/passwd", 0, 0, S_IFLNK | 0777)));
  CHECK(fs::read_symlink(root / "l") == "/etc/passwd");

  const auto code = [&](const ag::copy_file_request& r) {
    auto s = ag::copy_file(root, r);
    REQUIRE(!s);
    return katana::ttrpc::to_code(s.error().code);
  };
  using katana::ttrpc::code;
  CHECK(code(req("/etc/passwd", "x", 1, 0)) == code::permission_denied);
  CHECK(code(req((root / "../escape").string(), "x", 1, 0)) == code::permission_denied);
  CHECK(code(req(root.string(), "x", 1, 0)) == code::permission_denied);
  CHECK(code(req((root.string() + "x/f"), "x", 1, 0)) == code::permission_denied);
  CHECK(code(req("relative/f", "x", 1, 0)) == code::invalid_argument);
  CHECK(code(req((root / "f").string(), "x", 1, -5)) == code::invalid_argument);
  // A symlink planted in the root cannot redirect the copy outside.
  fs::create_directories(t.path / "outside");
  fs::create_symlink(t.path / "outside", root / "evil");
  REQUIRE(ag::copy_file(root, req((root / "evil/f").string(), "x", 1, 0)));
  CHECK(!fs::exists(t.path / "outside" / "f"));
  // ... and a symlink as the final name is replaced, never written through.
  fs::create_symlink(t.path / "outside" / "target", root / "link");
  REQUIRE(ag::copy_file(root, req((root / "link").string(), "y", 1, 0)));
  CHECK(!fs::exists(t.path / "outside" / "target"));
  CHECK(fs::is_regular_file(fs::symlink_status(root / "link")));
}

namespace {
// Refuses mount options it does not know, as an older kernel does (EINVAL).
struct picky_mounter {
  std::vector<std::string> tried;
  katana::status mount(const std::string&,
                       const std::string&,
                       const std::string&,
                       unsigned long,
                       const std::string& data) {
    tried.push_back(data);
    if (data == "favordynmods") {
      return katana::fail(std::make_error_code(std::errc::invalid_argument), "mount cgroup2");
    }
    return {};
  }
  katana::status umount(const std::string&, int) { return {}; }
};
}  // namespace

TEST_CASE("an init mount option the kernel refuses falls back", "[agent][init]") {
  katana_test::temp_dir t;
  const auto target = (t.path / "cgroup").string();
  const katana::logging::logger log([](std::string_view) {});
  picky_mounter m;
  REQUIRE(ag::apply_init_mounts(m, {{"cgroup2", target, "cgroup2", 0, "favordynmods", false, ""}},
                                log));
  CHECK(m.tried == std::vector<std::string>{"favordynmods", ""});
  // Without a fallback the refusal stands.
  picky_mounter strict;
  const auto r = ag::apply_init_mounts(
      strict, {{"cgroup2", target, "cgroup2", 0, "favordynmods", false, std::nullopt}}, log);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == std::errc::invalid_argument);
  CHECK(strict.tried.size() == 1);
}

TEST_CASE("PID 1 gives its root a parent mount without copying it", "[agent][init]") {
  if (::geteuid() != 0) {
    std::puts("skip: rebind_root needs root (a private mount namespace)");
    return;
  }
  katana_test::temp_dir t;
  // In a child: its own mount namespace, a tmpfs as "/", then rebind_root and a pivot_root
  // away from the result (what a container's init does). Exit code: the step that failed.
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const auto root = t.path.string();
    if (::unshare(CLONE_NEWNS) != 0 ||
        ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      ::_exit(1);
    }
    if (::mount("tmpfs", root.c_str(), "tmpfs", 0, "mode=0755") != 0 ||
        ::chdir(root.c_str()) != 0 || ::chroot(".") != 0 || ::chdir("/") != 0) {
      ::_exit(2);
    }
    if (!ag::root_may_be_initramfs() || ::mkdir("/marker", 0755) != 0) {
      ::_exit(3);
    }
    if (!ag::rebind_root("/newroot")) {
      ::_exit(4);
    }
    struct stat st {};
    if (::stat("/marker", &st) != 0 || ::stat("/newroot", &st) == 0) {
      ::_exit(5);
    }
    if (::mkdir("/next", 0755) != 0 || ::mount("tmpfs", "/next", "tmpfs", 0, "mode=0755") != 0 ||
        ::mkdir("/next/old", 0755) != 0 || ::syscall(SYS_pivot_root, "/next", "/next/old") != 0) {
      ::_exit(6);
    }
    ::_exit(::stat("/old/marker", &st) == 0 ? 0 : 7);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(fs::is_empty(t.path));  // the tmpfs lived in the child's mount namespace only
}

TEST_CASE("the sandbox's IPC and UTS namespaces: one thread, both persisted", "[agent][ns]") {
  if (::geteuid() != 0) {
    WARN("skipped: unsharing and bind-mounting namespaces needs root");
    return;
  }
  using req = ag::persistent_ns::request;
  katana_test::temp_dir t;
  const auto ipc_path = t.path / "ns" / "ipc";
  const auto uts_path = t.path / "ns" / "uts";
  struct stat own_ipc {};
  struct stat own_uts {};
  REQUIRE(::stat("/proc/thread-self/ns/ipc", &own_ipc) == 0);
  REQUIRE(::stat("/proc/thread-self/ns/uts", &own_uts) == 0);
  {
    auto ns = ag::persistent_ns::create_together({req{"ipc", ipc_path}, req{"uts", uts_path}},
                                                 "katana-test-host");
    REQUIRE(ns);
    REQUIRE(ns->size() == 2);
    // The calling thread is back in its own namespaces.
    struct stat now_ipc {};
    struct stat now_uts {};
    REQUIRE(::stat("/proc/thread-self/ns/ipc", &now_ipc) == 0);
    REQUIRE(::stat("/proc/thread-self/ns/uts", &now_uts) == 0);
    CHECK(now_ipc.st_ino == own_ipc.st_ino);
    CHECK(now_uts.st_ino == own_uts.st_ino);
    const katana::unique_fd ipc(::open(ipc_path.c_str(), O_RDONLY | O_CLOEXEC));
    const katana::unique_fd uts(::open(uts_path.c_str(), O_RDONLY | O_CLOEXEC));
    REQUIRE(ipc);
    REQUIRE(uts);
    CHECK(::ioctl(ipc.get(), NS_GET_NSTYPE) == CLONE_NEWIPC);
    CHECK(::ioctl(uts.get(), NS_GET_NSTYPE) == CLONE_NEWUTS);
    struct stat st {};
    REQUIRE(::fstat(ipc.get(), &st) == 0);
    CHECK(st.st_ino != own_ipc.st_ino);  // a new namespace, not the agent's
    // The hostname was set inside the new UTS namespace, not here.
    std::string seen;
    std::thread([&] {
      char name[65] = {};
      if (::setns(uts.get(), CLONE_NEWUTS) == 0 && ::gethostname(name, sizeof name - 1) == 0) {
        seen = name;
      }
    }).join();
    CHECK(seen == "katana-test-host");
    char here[65] = {};
    ::gethostname(here, sizeof here - 1);
    CHECK(std::string(here) != "katana-test-host");
  }
  // Released with the objects: unmounted and gone.
  CHECK(!fs::exists(ipc_path));
  CHECK(!fs::exists(uts_path));

  auto bad =
      ag::persistent_ns::create_together({req{"ipc", ipc_path}, req{"net", t.path / "ns" / "net"}});
  REQUIRE(!bad);
  CHECK_THAT(bad.error().message(), Catch::Contains("cannot persist a net namespace"));
  CHECK(!fs::exists(ipc_path));  // the first target is not left behind
}
