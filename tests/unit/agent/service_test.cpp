// basic_agent with the fake engine (containers are host processes): the RPCs' behaviour,
// stdio, reaping, exit statuses, error statuses, and that nothing leaks.
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <katana/agent/service.hpp>
#include <katana/testing/fake_engine.hpp>
#include <katana/ttrpc/status.hpp>

#include "catch.hpp"
#include "support.hpp"

namespace ag = katana::agent;
namespace kt = katana::ttrpc;
using katana::testing::fake_engine;
using katana_test::run;
using katana_test::spin;
using namespace std::chrono_literals;

namespace {

using agent_t = ag::basic_agent<fake_engine, katana_test::recording_mounter>;

std::size_t open_fds() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    ++n;
  }
  return n;
}

struct fixture {
  katana::asio::io_context io;
  katana_test::temp_dir tmp;
  katana_test::recording_mounter mounter;
  std::unique_ptr<agent_t> agent;

  explicit fixture(bool init_mode = false,
                   std::optional<bool> systemd = false,
                   const std::function<void(ag::agent_options&)>& tweak = {}) {
    ag::agent_options o;
    o.run_dir = tmp.path / "run";
    o.env.sys_root = tmp.path / "sys";
    o.env.dev_root = tmp.path / "dev";
    o.env.timeout = 200ms;
    o.proc_root = "/proc";
    o.init_mode = init_mode;
    o.systemd = systemd;
    o.share_namespaces = false;
    o.log = katana::logging::logger([](std::string_view) {}, katana::logging::format::json,
                                    katana::logging::level::off);
    if (tweak) {
      tweak(o);
    }
    agent = std::make_unique<agent_t>(io.get_executor(), fake_engine{}, std::move(o), mounter);
    agent->start();
  }

  fake_engine& engine() { return agent->engine(); }

  static katana::oci::spec spec(std::vector<std::string> args, bool terminal = false) {
    katana::oci::spec s;
    s.oci_version = "1.0.2";
    s.root = katana::oci::root{"/", false};
    katana::oci::process p;
    p.args = std::move(args);
    p.cwd = "/";
    p.env = {"PATH=/usr/bin:/bin"};
    p.terminal = terminal;
    s.process = p;
    return s;
  }

  katana::status create(const std::string& id,
                        katana::oci::spec s,
                        std::vector<ag::device> devices = {},
                        std::vector<ag::storage> storages = {}) {
    ag::container_request r;
    r.container_id = id;
    r.spec = std::move(s);
    r.devices = std::move(devices);
    r.storages = std::move(storages);
    return run(io, agent->create_container(std::move(r)));
  }

  katana::status start(const std::string& id) { return run(io, agent->start_container(id)); }

  std::string read_all(const std::string& cid, const std::string& eid, bool out = true) {
    std::string all;
    for (int i = 0; i < 1000; ++i) {
      auto r = run(io, agent->read_stream(cid, eid, out, 1024));
      REQUIRE(r);
      if (r->empty()) {
        return all;
      }
      all += *r;
    }
    FAIL("stream did not end");
    return all;
  }
};

kt::code code_of(const katana::error& e) {
  return kt::to_code(e.code);
}

}  // namespace

TEST_CASE("agent runs a container: stdout, stderr, stdin, exit status", "[agent]") {
  const auto fds_before = open_fds();
  {
    fixture f;
    REQUIRE(run(f.io, f.agent->create_sandbox({.hostname = "pod", .sandbox_id = "s1"})));
    REQUIRE(f.create("c1", fixture::spec({"/bin/sh", "-c",
                                          "echo hello; echo oops >&2; read x; echo got $x; "
                                          "exit 3"})));
    REQUIRE(f.engine().calls.front() == "create c1");
    REQUIRE(f.start("c1"));
    auto first = run(f.io, f.agent->read_stream("c1", "", true, 6));
    REQUIRE(first);
    CHECK(*first == "hello\n");
    auto err = run(f.io, f.agent->read_stream("c1", "", false, 100));
    REQUIRE(err);
    CHECK(*err == "oops\n");
    // Removing a container whose process still waits on stdin kills it.
    REQUIRE(run(f.io, f.agent->remove_container("c1", 5)));
    CHECK(f.agent->tracked_processes() == 0);
  }
  CHECK(open_fds() == fds_before);
}

TEST_CASE("agent: stdin, stderr and the exit code of the init", "[agent]") {
  fixture f;
  REQUIRE(f.create("c1", fixture::spec({"/bin/sh", "-c",
                                        "echo hello; echo oops >&2; read x; echo got $x; "
                                        "exit 3"})));
  REQUIRE(f.start("c1"));
  auto w = run(f.io, f.agent->write_stdin("c1", "c1", "world\n"));
  REQUIRE(w);
  CHECK(*w == 6);
  CHECK(f.read_all("c1", "c1") == "hello\ngot world\n");
  CHECK(f.read_all("c1", "c1", false) == "oops\n");
  auto st = run(f.io, f.agent->wait_process("c1", ""));
  REQUIRE(st);
  CHECK(*st == 3);
  // Waiting again answers the same status.
  CHECK(*run(f.io, f.agent->wait_process("c1", "c1")) == 3);
  REQUIRE(run(f.io, f.agent->remove_container("c1", 0)));
  CHECK(f.agent->container_count() == 0);
  CHECK(f.agent->tracked_processes() == 0);
  CHECK(code_of(run(f.io, f.agent->wait_process("c1", "")).error()) == kt::code::not_found);
}

TEST_CASE("agent: exec with stdin and stdout, close stdin is EOF", "[agent]") {
  fixture f;
  REQUIRE(f.create("c1", fixture::spec({"/bin/sleep", "100"})));
  REQUIRE(f.start("c1"));
  katana::oci::process p;
  p.args = {"/bin/cat"};
  p.cwd = "/";
  REQUIRE(run(f.io, f.agent->exec_process("c1", "e1", p)));
  REQUIRE(*run(f.io, f.agent->write_stdin("c1", "e1", "abc")) == 3);
  REQUIRE(run(f.io, f.agent->close_stdin("c1", "e1")));
  CHECK(f.read_all("c1", "e1") == "abc");
  CHECK(*run(f.io, f.agent->wait_process("c1", "e1")) == 0);
  CHECK(f.read_all("c1", "e1", false).empty());
  // An exec that was waited for and read to the end is forgotten.
  CHECK(code_of(run(f.io, f.agent->wait_process("c1", "e1")).error()) == kt::code::not_found);

  SECTION("duplicate and unknown ids") {
    REQUIRE(run(f.io, f.agent->exec_process("c1", "e2", p)));
    CHECK(code_of(run(f.io, f.agent->exec_process("c1", "e2", p)).error()) ==
          kt::code::already_exists);
    CHECK(code_of(run(f.io, f.agent->exec_process("nope", "e3", p)).error()) ==
          kt::code::not_found);
    CHECK(code_of(run(f.io, f.agent->read_stream("c1", "zzz", true, 10)).error()) ==
          kt::code::not_found);
    CHECK(code_of(run(f.io, f.agent->exec_process("c1", "../x", p)).error()) ==
          kt::code::invalid_argument);
    katana::oci::process empty;
    CHECK(code_of(run(f.io, f.agent->exec_process("c1", "e4", empty)).error()) ==
          kt::code::invalid_argument);
  }
  REQUIRE(run(f.io, f.agent->remove_container("c1", 5)));
  CHECK(f.agent->tracked_processes() == 0);
}

TEST_CASE("agent: signals, 128 + signal, signals to exited processes", "[agent]") {
  fixture f;
  REQUIRE(f.create("c1", fixture::spec({"/bin/sleep", "100"})));
  REQUIRE(f.start("c1"));
  katana::oci::process p;
  p.args = {"/bin/sleep", "100"};
  p.cwd = "/";
  REQUIRE(run(f.io, f.agent->exec_process("c1", "e1", p)));
  REQUIRE(run(f.io, f.agent->signal_process("c1", "e1", SIGTERM)));
  CHECK(*run(f.io, f.agent->wait_process("c1", "e1")) == 128 + SIGTERM);
  CHECK(code_of(run(f.io, f.agent->signal_process("c1", "e1", SIGTERM)).error()) ==
        kt::code::not_found);
  CHECK(code_of(run(f.io, f.agent->signal_process("c1", "c1", 0)).error()) ==
        kt::code::invalid_argument);
  CHECK(code_of(run(f.io, f.agent->signal_process("c1", "c1", 65)).error()) ==
        kt::code::invalid_argument);
  // exec_id "" signals the init and every process of the container.
  REQUIRE(run(f.io, f.agent->signal_process("c1", "", SIGKILL)));
  CHECK(*run(f.io, f.agent->wait_process("c1", "")) == 128 + SIGKILL);
  CHECK(f.engine().calls.back().rfind("reaped c1", 0) == 0);
  REQUIRE(run(f.io, f.agent->remove_container("c1", 0)));
}

TEST_CASE("agent: output is drained at most 500 ms after exit", "[agent]") {
  fixture f;
  // A background child keeps stdout open long after the init exits.
  REQUIRE(f.create("c1", fixture::spec({"/bin/sh", "-c", "echo hi; sleep 30 & exit 0"})));
  REQUIRE(f.start("c1"));
  CHECK(*run(f.io, f.agent->wait_process("c1", "")) == 0);
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(f.read_all("c1", "") == "hi\n");
  const auto took = std::chrono::steady_clock::now() - t0;
  CHECK(took < 2s);
  REQUIRE(run(f.io, f.agent->remove_container("c1", 0)));
}

TEST_CASE("agent: a terminal process", "[agent]") {
  fixture f;
  REQUIRE(f.create("c1", fixture::spec({"/bin/sh", "-c", "stty size; echo tty:$(tty)"}, true)));
  REQUIRE(f.start("c1"));
  const auto out = f.read_all("c1", "");
  CHECK(out.find("tty:/dev/pts/") != std::string::npos);
  CHECK(run(f.io, f.agent->read_stream("c1", "", false, 10))->empty());  // no separate stderr
  REQUIRE(run(f.io, f.agent->tty_win_resize("c1", "", 40, 120)));
  REQUIRE(run(f.io, f.agent->remove_container("c1", 0)));

  REQUIRE(f.create("c2", fixture::spec({"/bin/true"})));
  CHECK(code_of(run(f.io, f.agent->tty_win_resize("c2", "", 40, 120)).error()) ==
        kt::code::failed_precondition);
  REQUIRE(run(f.io, f.agent->remove_container("c2", 0)));
}

TEST_CASE("agent: bad CreateContainer requests leave nothing behind", "[agent]") {
  fixture f;
  const auto fds = open_fds();
  SECTION("no spec") {
    ag::container_request r;
    r.container_id = "c1";
    CHECK(code_of(run(f.io, f.agent->create_container(r)).error()) == kt::code::invalid_argument);
  }
  SECTION("a spec that fails validation") {
    auto s = fixture::spec({"/bin/true"});
    s.process->cwd = "relative";
    const auto r = f.create("c1", s);
    REQUIRE(!r);
    CHECK(code_of(r.error()) == kt::code::invalid_argument);
    CHECK(r.error().message().find("cwd") != std::string::npos);
  }
  SECTION("an unknown storage driver") {
    ag::storage st;
    st.driver = "floppy";
    st.mount_point = (f.tmp.path / "m").string();
    const auto r = f.create("c1", fixture::spec({"/bin/true"}), {}, {st});
    REQUIRE(!r);
    CHECK(code_of(r.error()) == kt::code::invalid_argument);
    CHECK(r.error().message().find("floppy") != std::string::npos);
  }
  SECTION("a storage mount point that escapes") {
    ag::storage ok;
    ok.driver = "ephemeral";
    ok.mount_point = (f.tmp.path / "shm").string();
    ag::storage bad;
    bad.driver = "local";
    bad.mount_point = "/run/kata-containers/../../etc";
    const auto r = f.create("c1", fixture::spec({"/bin/true"}), {}, {ok, bad});
    REQUIRE(!r);
    CHECK(code_of(r.error()) == kt::code::permission_denied);
    // The first storage was mounted, then released again.
    CHECK(f.mounter.mounts->size() == 1);
    CHECK(f.mounter.unmounts->size() == 1);
  }
  SECTION("an unknown device type") {
    const auto r = f.create("c1", fixture::spec({"/bin/true"}), {{.id = "x", .type = "usb"}});
    REQUIRE(!r);
    CHECK(code_of(r.error()) == kt::code::invalid_argument);
  }
  SECTION("a bad container id") {
    CHECK(code_of(f.create("../c1", fixture::spec({"/bin/true"})).error()) ==
          kt::code::invalid_argument);
    CHECK(code_of(f.create("", fixture::spec({"/bin/true"})).error()) ==
          kt::code::invalid_argument);
  }
  SECTION("the engine fails") {
    f.engine().fail_next.emplace("create", katana::error(katana::errc::internal, "boom"));
    const auto r = f.create("c1", fixture::spec({"/bin/true"}));
    REQUIRE(!r);
    CHECK(r.error().message().find("boom") != std::string::npos);
  }
  CHECK(f.agent->container_count() == 0);
  CHECK(!std::filesystem::exists(f.tmp.path / "run" / "c1"));
  CHECK(open_fds() == fds);
  // And the agent still works.
  REQUIRE(f.create("c1", fixture::spec({"/bin/true"})));
  CHECK(code_of(f.create("c1", fixture::spec({"/bin/true"})).error()) == kt::code::already_exists);
  REQUIRE(run(f.io, f.agent->remove_container("c1", 0)));
}

TEST_CASE("agent: pause, resume, update, stats, list processes", "[agent]") {
  fixture f;
  REQUIRE(f.create("c1", fixture::spec({"/bin/sleep", "100"})));
  CHECK(code_of(run(f.io, f.agent->pause_container("c1")).error()) ==
        kt::code::failed_precondition);
  REQUIRE(f.start("c1"));
  CHECK(code_of(f.start("c1").error()) == kt::code::failed_precondition);
  REQUIRE(run(f.io, f.agent->pause_container("c1")));
  CHECK(code_of(run(f.io, f.agent->pause_container("c1")).error()) ==
        kt::code::failed_precondition);
  REQUIRE(run(f.io, f.agent->resume_container("c1")));
  CHECK(code_of(run(f.io, f.agent->resume_container("c1")).error()) ==
        kt::code::failed_precondition);
  katana::oci::linux_resources r;
  r.pids = katana::oci::linux_pids{10};
  REQUIRE(run(f.io, f.agent->update_container("c1", r)));
  REQUIRE(f.engine().find("c1")->updates.size() == 1);
  auto st = run(f.io, f.agent->stats_container("c1"));
  REQUIRE(st);
  CHECK(st->pids.current == 1);
  auto pids = run(f.io, f.agent->list_processes("c1"));
  REQUIRE(pids);
  CHECK(pids->size() == 1);
  CHECK(code_of(run(f.io, f.agent->stats_container("zz")).error()) == kt::code::not_found);
  // Removing a paused container thaws and kills it.
  REQUIRE(run(f.io, f.agent->pause_container("c1")));
  REQUIRE(run(f.io, f.agent->remove_container("c1", 5)));
  CHECK(f.agent->tracked_processes() == 0);
}

TEST_CASE("agent: GetOOMEvent long-polls", "[agent]") {
  fixture f;
  REQUIRE(f.create("c1", fixture::spec({"/bin/sleep", "100"})));
  REQUIRE(f.start("c1"));
  std::optional<katana::result<std::string>> ev;
  katana::asio::co_spawn(
      f.io, [&]() -> katana::task<void> { ev = co_await f.agent->get_oom_event(); },
      katana::asio::detached);
  spin(f.io, 100ms);
  CHECK(!ev);  // nothing yet
  REQUIRE(f.engine().trigger_oom("c1"));
  spin(f.io, 200ms);
  REQUIRE(ev);
  REQUIRE(*ev);
  CHECK(**ev == "c1");
  // A cancelled poll ends with CANCELLED and takes no event.
  ag::cancellation c;
  std::optional<katana::result<std::string>> ev2;
  katana::asio::co_spawn(
      f.io, [&]() -> katana::task<void> { ev2 = co_await f.agent->get_oom_event(&c); },
      katana::asio::detached);
  spin(f.io, 50ms);
  c.cancel();
  spin(f.io, 50ms);
  REQUIRE(ev2);
  CHECK(code_of(ev2->error()) == kt::code::cancelled);
  REQUIRE(run(f.io, f.agent->remove_container("c1", 0)));
}

TEST_CASE("agent: init mode forces cgroupfs whatever path style the host sent", "[agent][seed]") {
  SECTION("init: a systemd path becomes its cgroupfs directory") {
    fixture f(/*init_mode=*/true, /*systemd=*/false);
    auto s = fixture::spec({"/bin/true"});
    s.linux_.emplace().cgroups_path = "kubepods-besteffort.slice:cri-containerd:abc";
    REQUIRE(f.create("c1", s));
    const auto* c = f.engine().find("c1");
    REQUIRE(c != nullptr);
    CHECK(c->config.cgroups == ag::cgroup_driver::cgroupfs);
    CHECK(c->config.spec.linux_->cgroups_path ==
          "/kubepods.slice/kubepods-besteffort.slice/cri-containerd-abc.scope");
    REQUIRE(run(f.io, f.agent->remove_container("c1", 0)));
  }
  SECTION("not init, no systemd: an error value, and the agent stays up") {
    fixture f(/*init_mode=*/false, /*systemd=*/false);
    auto s = fixture::spec({"/bin/true"});
    s.linux_.emplace().cgroups_path = "system.slice:crio:abc";
    const auto r = f.create("c1", s);
    REQUIRE(!r);
    CHECK(code_of(r.error()) == kt::code::unimplemented);
    CHECK(r.error().message().find("systemd is not running") != std::string::npos);
    CHECK(f.engine().calls.empty());
    REQUIRE(f.create("c2", fixture::spec({"/bin/true"})));
    CHECK(f.engine().find("c2")->config.spec.linux_->cgroups_path == "/c2");
    REQUIRE(run(f.io, f.agent->remove_container("c2", 0)));
  }
}

TEST_CASE("agent: VFIO containers get /dev/infiniband, others do not", "[agent][seed]") {
  fixture f;
  const auto ib = f.tmp.path / "dev" / "infiniband";
  std::filesystem::create_directories(ib);
  if (::mknod((ib / "uverbs0").c_str(), S_IFCHR | 0666, makedev(231, 192)) != 0 ||
      ::mknod((ib / "rdma_cm").c_str(), S_IFCHR | 0666, makedev(10, 58)) != 0) {
    WARN("skipped: mknod needs CAP_MKNOD");
    return;
  }
  std::ofstream(ib / "not-a-device") << "x";
  REQUIRE(f.create("plain", fixture::spec({"/bin/true"})));
  REQUIRE(f.create("vfio", fixture::spec({"/bin/true"}), {{.id = "gpu0", .type = "vfio-pci-gk"}}));
  const auto& plain = *f.engine().find("plain")->config.spec.linux_;
  CHECK(plain.devices.empty());
  const auto& vfio = *f.engine().find("vfio")->config.spec.linux_;
  REQUIRE(vfio.devices.size() == 2);
  CHECK(vfio.devices[0].path == "/dev/infiniband/rdma_cm");
  CHECK(vfio.devices[1].path == "/dev/infiniband/uverbs0");
  CHECK(vfio.devices[1].major == 231);
  CHECK(vfio.devices[1].minor == 192);
  REQUIRE(vfio.resources);
  REQUIRE(vfio.resources->devices.size() == 2);
  CHECK(vfio.resources->devices[1].access == "rwm");
  CHECK(vfio.resources->devices[1].allow);
  REQUIRE(run(f.io, f.agent->remove_container("plain", 0)));
  REQUIRE(run(f.io, f.agent->remove_container("vfio", 0)));
}

TEST_CASE("agent: sandbox storages, guest details, CopyFile, metrics", "[agent]") {
  fixture f;
  ag::sandbox_request req;
  req.sandbox_id = "s1";
  req.storages.push_back({.driver = "ephemeral",
                          .source = "shm",
                          .fstype = "tmpfs",
                          .options = {"noexec", "nosuid", "nodev", "mode=1777", "size=65536"},
                          .mount_point = (f.tmp.path / "sandbox" / "shm").string()});
  req.storages.push_back({.driver = "local",
                          .options = {"mode=0750"},
                          .mount_point = (f.tmp.path / "sandbox" / "local" / "vol").string()});
  REQUIRE(run(f.io, f.agent->create_sandbox(req)));
  CHECK(code_of(run(f.io, f.agent->create_sandbox(req)).error()) == kt::code::already_exists);
  REQUIRE(f.mounter.mounts->size() == 1);
  CHECK(f.mounter.mounts->at(0).fstype == "tmpfs");
  CHECK(f.mounter.mounts->at(0).data == "mode=1777,size=65536");
  CHECK((std::filesystem::status(f.tmp.path / "sandbox" / "local" / "vol").permissions() &
         std::filesystem::perms::all) == std::filesystem::perms(0750));

  std::filesystem::create_directories(f.tmp.path / "sys" / "devices" / "system" / "memory");
  std::ofstream(f.tmp.path / "sys" / "devices" / "system" / "memory" / "block_size_bytes")
      << "8000000\n";
  auto d = run(f.io, f.agent->get_guest_details(true, true));
  REQUIRE(d);
  CHECK(d->mem_block_size_bytes == 0x8000000);
  CHECK(!d->support_mem_hotplug_probe);
  CHECK(d->storage_handlers.size() == 9);

  ag::copy_file_request cf;
  cf.path = (f.tmp.path / "run" / "shared" / "hosts").string();
  cf.data = "127.0.0.1 localhost\n";
  cf.file_size = static_cast<std::int64_t>(cf.data.size());
  cf.file_mode = S_IFREG | 0644;
  cf.uid = static_cast<std::int32_t>(::getuid());
  cf.gid = static_cast<std::int32_t>(::getgid());
  REQUIRE(run(f.io, f.agent->copy_file(cf)));
  CHECK(katana_test::fs::file_size(f.tmp.path / "run" / "shared" / "hosts") == cf.data.size());
  cf.path = (f.tmp.path / "elsewhere").string();
  CHECK(code_of(run(f.io, f.agent->copy_file(cf)).error()) == kt::code::permission_denied);

  auto m = run(f.io, f.agent->get_metrics());
  REQUIRE(m);
  CHECK(m->find("kata_agent_process_resident_memory_bytes") != std::string::npos);
  CHECK(m->find("katana_agent_containers 0") != std::string::npos);

  CHECK(code_of(run(f.io, f.agent->set_guest_date_time(0, 0)).error()) ==
        kt::code::permission_denied);

  REQUIRE(run(f.io, f.agent->destroy_sandbox()));
  CHECK(f.mounter.unmounts->size() == 1);
  REQUIRE(run(f.io, f.agent->create_sandbox(req)));  // a new sandbox after destroy
}

TEST_CASE("agent: a filesystem's module is loaded when a mount first needs it", "[agent][kmod]") {
  katana_test::temp_dir proc;
  std::ofstream(proc.path / "filesystems") << "nodev\tsysfs\nnodev\t9p\n";
  std::vector<std::string> loaded;
  fixture f(false, false, [&](ag::agent_options& o) {
    o.proc_root = proc.path;
    o.load_module = [&](const ag::kernel_module& m) -> katana::status {
      loaded.push_back(m.name);
      if (m.name == "fuse.sshfs") {
        return katana::fail(katana::errc::not_found, "module fuse.sshfs is not in modules.dep");
      }
      if (m.name == "brokenfs") {
        return katana::fail(katana::errc::internal, "finit_module brokenfs.ko: boom");
      }
      return {};
    };
  });
  ag::sandbox_request req;
  req.sandbox_id = "s1";
  req.storages.push_back({.driver = "9p",
                          .source = "kataShared",
                          .options = {"trans=virtio"},
                          .mount_point = (f.tmp.path / "shared").string()});
  req.storages.push_back({.driver = "overlayfs",
                          .options = {"lowerdir=/a:/b"},
                          .mount_point = (f.tmp.path / "ovl").string()});
  req.storages.push_back(
      {.driver = "ephemeral", .source = "shm", .mount_point = (f.tmp.path / "shm").string()});
  REQUIRE(run(f.io, f.agent->create_sandbox(req)));
  // 9p is registered already and tmpfs never comes from a module: only overlay is loaded.
  CHECK(loaded == std::vector<std::string>{"overlay"});
  CHECK(f.mounter.mounts->size() == 3);

  auto s = fixture::spec({"true"});
  s.mounts.push_back({.destination = "/remote", .type = "fuse.sshfs", .source = "h:/"});
  REQUIRE(f.create("c1", s));  // no such module: left to mount(2)
  s.mounts.push_back({.destination = "/broken", .type = "brokenfs", .source = "x"});
  const auto r = f.create("c2", s);
  REQUIRE(!r);
  CHECK(r.error().message().find("filesystem brokenfs") != std::string::npos);
  CHECK(r.error().message().find("boom") != std::string::npos);
}

TEST_CASE("agent: guest-wide changes only as init (or when allowed)", "[agent]") {
  fixture host;
  CHECK(code_of(run(host.io, host.agent->online_cpu_mem(false, 0, true)).error()) ==
        kt::code::permission_denied);
  CHECK(code_of(run(host.io, host.agent->mem_hotplug_by_probe({0x100000000})).error()) ==
        kt::code::permission_denied);

  fixture init(/*init_mode=*/true);
  const auto sys = init.tmp.path / "sys" / "devices" / "system";
  std::filesystem::create_directories(sys / "cpu" / "cpu0");
  std::filesystem::create_directories(sys / "cpu" / "cpu1");
  std::filesystem::create_directories(sys / "memory" / "memory8");
  std::ofstream(sys / "cpu" / "cpu1" / "online") << "0\n";
  std::ofstream(sys / "memory" / "memory8" / "state") << "offline\n";
  std::ofstream(sys / "memory" / "probe") << "";
  REQUIRE(run(init.io, init.agent->online_cpu_mem(false, 0, false)));
  // sysfs attributes are written in place (no O_TRUNC): look at what was written first.
  const auto head = [](const std::filesystem::path& p) {
    std::string s;
    std::getline(std::ifstream(p), s);
    return s;
  };
  CHECK(head(sys / "cpu" / "cpu1" / "online").starts_with("1"));
  CHECK(head(sys / "memory" / "memory8" / "state").starts_with("online"));
  // Waiting for a CPU that never comes: a timeout, not a hang.
  const auto r = run(init.io, init.agent->online_cpu_mem(true, 2, true));
  REQUIRE(!r);
  CHECK(code_of(r.error()) == kt::code::deadline_exceeded);
  REQUIRE(run(init.io, init.agent->mem_hotplug_by_probe({0x100000000})));
  std::ifstream probe(sys / "memory" / "probe");
  std::string p;
  probe >> p;
  CHECK(p == "0x100000000");

  std::filesystem::create_directories(init.tmp.path / "dev");
  std::ofstream(init.tmp.path / "dev" / "random") << "";
  REQUIRE(run(init.io, init.agent->reseed_random_dev("entropy!")));
  CHECK(katana_test::fs::file_size(init.tmp.path / "dev" / "random") == 8);
  CHECK(code_of(run(init.io, init.agent->reseed_random_dev("")).error()) ==
        kt::code::invalid_argument);
}
