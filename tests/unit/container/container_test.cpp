// End-to-end container tests: real namespaces, mounts, seccomp, hooks. They need root and
// /bin/busybox (busybox-static) and warn + return otherwise.
#include <atomic>
#include <chrono>
#include <fstream>
#include <linux/seccomp.h>
#include <poll.h>
#include <string>
#include <sys/ioctl.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <katana/container/container.hpp>

#include "catch.hpp"
#include "fixture.hpp"

namespace kc = katana::container;
namespace oci = katana::oci;
using katana_test::bundle;
using katana_test::busybox_spec;
using katana_test::in_child;

namespace {

kc::create_options options(const bundle& b, std::string id = "ct") {
  kc::create_options o;
  o.id = std::move(id);
  o.bundle = b.path;
  o.state_dir = b.state;
  o.stdio[0] = b.null_fd;
  o.stdio[1] = b.out_fd;
  o.stdio[2] = b.out_fd;
  return o;
}

/// Runs `spec` to completion: the exit code, or fails the test with the error.
int run_to_exit(const oci::spec& spec, const kc::create_options& opt) {
  auto c = kc::container::run(spec, opt);
  if (!c) {
    FAIL("run: " << c.error().message());
  }
  auto code = c->wait();
  REQUIRE(code);
  REQUIRE(c->destroy());
  return *code;
}

[[maybe_unused]] oci::hook make_hook(std::string path,
                                     std::vector<std::string> args,
                                     int timeout = 0) {
  oci::hook h;
  h.path = std::move(path);
  h.args = std::move(args);
  if (timeout > 0) {
    h.timeout = timeout;
  }
  return h;
}

}  // namespace

TEST_CASE("container: a busybox container runs with the spec's process settings", "[root]") {
  KATANA_REQUIRE_ROOT();
  bundle b;
  oci::spec spec = busybox_spec(
      "id; echo host=$(hostname); cd /tmp && echo cwd=$(pwd); echo env=$FOO; "
      "grep -E '^(CapEff|CapBnd|CapPrm|NoNewPrivs|Seccomp):' /proc/self/status; "
      "echo masked=[$(cat /proc/keys)$(ls -A /masked)]; "
      "touch /ro/x 2>&1 | grep -q 'Read-only' && echo ro=yes; "
      "grep -q ' /tmp tmpfs' /proc/mounts && echo tmpfs=yes; "
      "echo nofile=$(ulimit -n); "
      "mkdir /tmp/d 2>&1 | grep -q 'Operation not permitted' && echo seccomp=yes; "
      "test -c /dev/null && test -L /dev/ptmx && test -e /dev/pts/ptmx && echo dev=yes; "
      "echo fwd=$(cat /proc/sys/net/ipv4/ip_forward) oom=$(cat /proc/self/oom_score_adj); "
      "echo umask=$(umask) domain=$(cat /proc/sys/kernel/domainname) arch=$(uname -m); "
      "test -c /dev/fuse && echo fuse=yes; "
      "touch /data/x 2>&1 | grep -q 'Read-only' && echo rro=yes; "
      "echo fds=$(ls /proc/self/fd | tr '\\n' ' '); "
      "echo pid=$$; exit 3");
  spec.process->cwd = "/tmp";
  spec.process->user.uid = 1000;
  spec.process->user.gid = 1000;
  spec.process->user.additional_gids = {10};
  spec.process->no_new_privileges = true;
  spec.process->rlimits = {{"RLIMIT_NOFILE", 1024, 512}};
  spec.process->oom_score_adj = 100;
  spec.process->user.umask = 027;
  spec.domainname = "example.org";
  spec.linux_->sysctl = {{"net.ipv4.ip_forward", "1"}};
  spec.linux_->personality = oci::linux_personality{"LINUX32", {}};
  oci::linux_device fuse;
  fuse.path = "/dev/fuse";
  fuse.type = "c";
  fuse.major = 10;
  fuse.minor = 229;
  fuse.file_mode = 0666;
  spec.linux_->devices = {fuse};
  oci::linux_capabilities caps;
  caps.bounding = {"CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_AUDIT_WRITE"};
  caps.effective = caps.bounding;
  caps.permitted = caps.bounding;
  caps.inheritable = caps.bounding;
  caps.ambient = caps.bounding;
  spec.process->capabilities = caps;
  spec.mounts.push_back({"/tmp", "tmpfs", "tmpfs", {"nosuid", "nodev", "mode=1777"}, {}, {}});
  std::filesystem::create_directories(b.dir / "data");
  spec.mounts.push_back({"/data", "bind", (b.dir / "data").native(), {"rbind", "rro"}, {}, {}});
  oci::linux_seccomp sc;
  sc.default_action = "SCMP_ACT_ALLOW";
  oci::linux_syscall deny;
  deny.names = {"mkdir", "mkdirat"};
  deny.action = "SCMP_ACT_ERRNO";
  deny.errno_ret = EPERM;
  sc.syscalls = {deny};
  spec.linux_->seccomp = sc;

  const int code = run_to_exit(spec, options(b));
  const std::string out = b.output();
  INFO(out);
  CHECK(code == 3);
  CHECK(out.find("uid=1000 gid=1000") != std::string::npos);
  CHECK(out.find("host=katana-test") != std::string::npos);
  CHECK(out.find("cwd=/tmp") != std::string::npos);
  CHECK(out.find("env=bar") != std::string::npos);
  CHECK(out.find("CapEff:\t0000000020000420") != std::string::npos);
  CHECK(out.find("CapBnd:\t0000000020000420") != std::string::npos);
  CHECK(out.find("NoNewPrivs:\t1") != std::string::npos);
  CHECK(out.find("Seccomp:\t2") != std::string::npos);
  CHECK(out.find("masked=[]") != std::string::npos);
  CHECK(out.find("ro=yes") != std::string::npos);
  CHECK(out.find("tmpfs=yes") != std::string::npos);
  CHECK(out.find("nofile=512") != std::string::npos);
  CHECK(out.find("seccomp=yes") != std::string::npos);
  CHECK(out.find("dev=yes") != std::string::npos);
  CHECK(out.find("fwd=1 oom=100") != std::string::npos);
  CHECK(out.find("umask=0027 domain=example.org arch=i686") != std::string::npos);
  CHECK(out.find("fuse=yes") != std::string::npos);
  CHECK(out.find("rro=yes") != std::string::npos);
  CHECK(out.find("fds=0 1 2 3\n") != std::string::npos);  // nothing leaked (3: ls's own)
  CHECK(out.find("pid=1") != std::string::npos);
}

TEST_CASE("container: create waits on the exec FIFO, start releases it", "[root]") {
  KATANA_REQUIRE_ROOT();
  bundle b;
  oci::spec spec = busybox_spec("echo started; exit 0");
  auto opt = options(b);
  opt.pid_file = b.dir / "pid";
  auto c = kc::container::create(spec, opt);
  if (!c) {
    FAIL(c.error().message());
  }
  CHECK(c->status() == kc::runtime_status::created);
  CHECK(std::filesystem::exists(b.state / "exec.fifo"));
  CHECK(katana_test::read_text(b.dir / "pid") == std::to_string(c->pid()));
  auto loaded = kc::container::load(b.state);
  REQUIRE(loaded);
  CHECK(loaded->pid() == c->pid());
  CHECK(loaded->state().id == "ct");
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK(b.output().empty());  // still blocked before exec
  REQUIRE(loaded->start());   // as katana-runk start would, from the state directory alone
  CHECK_FALSE(std::filesystem::exists(b.state / "exec.fifo"));
  auto code = c->wait();
  REQUIRE(code);
  CHECK(*code == 0);
  CHECK(b.output() == "started\n");
  CHECK(c->status() == kc::runtime_status::stopped);
  auto again = c->start();
  REQUIRE_FALSE(again);
  CHECK(again.error().message() == "cannot start a container in the stopped state");
  REQUIRE(c->destroy());
  CHECK_FALSE(std::filesystem::exists(b.state));
}

TEST_CASE("container: a mount destination symlink cannot escape the rootfs", "[root]") {
  KATANA_REQUIRE_ROOT();
  bundle b;
  const auto outside = b.dir / "outside";
  std::filesystem::create_symlink("/../../../.." + outside.native(), b.rootfs / "etc/evil");
  oci::spec spec = busybox_spec("grep -q ' " + outside.native() +
                                " tmpfs' /proc/mounts && echo inside=yes; "
                                "touch /x 2>&1 | grep -q Read-only && echo ro-root=yes; exit 0");
  spec.mounts.push_back({"/etc/evil", "tmpfs", "tmpfs", {"size=1m"}, {}, {}});
  spec.root->readonly = true;
  CHECK(run_to_exit(spec, options(b)) == 0);
  CHECK(b.output() == "inside=yes\nro-root=yes\n");
  CHECK_FALSE(std::filesystem::exists(outside));  // the host path was never touched
  CHECK(std::filesystem::is_directory(b.rootfs / outside.relative_path()));
}

TEST_CASE("container: init errors reach the caller with step, path and errno", "[root]") {
  KATANA_REQUIRE_ROOT();
  bundle b;
  oci::spec spec = busybox_spec("exit 0");
  spec.process->args = {"no-such-binary"};
  auto c = kc::container::run(spec, options(b));
  REQUIRE_FALSE(c);
  CHECK(c.error().message() ==
        "exec: executable file not found in $PATH no-such-binary: No such file or directory");
  CHECK_FALSE(std::filesystem::exists(b.state));

  spec = busybox_spec("exit 0");
  spec.process->cwd = "/bin/busybox/dir";
  auto d = kc::container::run(spec, options(b));
  REQUIRE_FALSE(d);
  CHECK(d.error().message() == "chdir to cwd /bin/busybox/dir: Not a directory");

  spec = busybox_spec("exit 0");
  spec.mounts.push_back({"/x", "nosuchfs", "none", {}, {}, {}});
  auto e = kc::container::run(spec, options(b));
  REQUIRE_FALSE(e);
  CHECK(e.error().message() ==
        "mount none on " + std::filesystem::canonical(b.rootfs).native() + "/x: No such device");
}

TEST_CASE("container: a missing cwd is made inside the root, as runc does", "[root]") {
  KATANA_REQUIRE_ROOT();
  bundle b;
  oci::spec spec = busybox_spec("echo cwd=$(pwd); exit 0");
  spec.process->cwd = "/no/such/../such/dir";
  spec.process->user.uid = 1000;
  spec.process->user.gid = 1000;
  spec.root->readonly = true;
  CHECK(run_to_exit(spec, options(b)) == 0);
  CHECK(b.output() == "cwd=/no/such/dir\n");
  const auto made = std::filesystem::status(b.rootfs / "no/such/dir");
  CHECK(made.type() == std::filesystem::file_type::directory);
  CHECK(made.permissions() ==
        (std::filesystem::perms::owner_all | std::filesystem::perms::group_read |
         std::filesystem::perms::group_exec | std::filesystem::perms::others_read |
         std::filesystem::perms::others_exec));

  // Through a symlink to an absolute path: followed in the container's root (the host's / is
  // out of reach after pivot_root anyway), so the directory is made in the rootfs.
  bundle c;
  const auto outside = c.dir / "outside";
  std::filesystem::create_directory(outside);
  std::filesystem::create_directories(c.rootfs / outside.relative_path());
  std::filesystem::create_symlink(outside, c.rootfs / "link");
  spec.process->cwd = "/link/work";
  CHECK(run_to_exit(spec, options(c)) == 0);
  CHECK(c.output() == "cwd=" + outside.native() + "/work\n");
  CHECK_FALSE(std::filesystem::exists(outside / "work"));
  CHECK(std::filesystem::is_directory(c.rootfs / outside.relative_path() / "work"));
}

TEST_CASE("container: no runtime fd reaches the container, not even execve's path", "[root]") {
  KATANA_REQUIRE_ROOT();
  bundle b;
  // A runtime directory fd (close-on-exec, as every katana fd): a process path through
  // /proc/self/fd/N would start a host binary in the container (runc's CVE-2024-21626).
  const katana::unique_fd host_bin(::open("/bin", O_PATH | O_DIRECTORY | O_CLOEXEC));
  REQUIRE(host_bin);
  const std::string through = "/proc/self/fd/" + std::to_string(host_bin.get()) + "/busybox";
  oci::spec spec = busybox_spec("exit 0");
  spec.process->args = {through, "echo", "escaped"};
  auto c = kc::container::run(spec, options(b));
  if (c) {  // the old init: the host's busybox ran in the container
    (void)c->wait();
    (void)c->destroy();
    FAIL("a runtime fd served as the process's path: " << b.output());
  }
  // Refused before create returns, as a missing executable is.
  CHECK(c.error().message() == "exec: stat " + through + ": No such file or directory");
  CHECK(b.output().empty());
}

namespace {

int run_in_child(const oci::spec& spec, const kc::create_options& opt) {
  auto c = kc::container::run(spec, opt);
  if (!c) {
    return 2;
  }
  const auto code = c->wait();
  (void)c->destroy();
  return code && *code == 0 ? 0 : 3;
}

}  // namespace

TEST_CASE("container: a runtime with stdin closed or stdout and stderr swapped", "[root]") {
  KATANA_REQUIRE_ROOT();
  bundle b;
  // No stdin in the runtime, none given: /dev/null, not an fd the runtime made for the init.
  CHECK(in_child([&] {
          ::close(0);
          auto o = options(b);
          o.stdio[0] = -1;
          return run_in_child(busybox_spec("readlink /proc/self/fd/0"), o);
        }) == 0);
  CHECK(b.output() == "/dev/null\n");

  // The container's stdout from the runtime's fd 2 and its stderr from fd 1.
  bundle c;
  CHECK(in_child([&] {
          if (::dup2(b.out_fd, 1) < 0 || ::dup2(c.out_fd, 2) < 0) {
            return 4;
          }
          auto o = options(c);
          o.stdio[1] = 2;
          o.stdio[2] = 1;
          return run_in_child(busybox_spec("echo out; echo err >&2"), o);
        }) == 0);
  CHECK(c.output() == "out\n");
  CHECK(b.output() == "/dev/null\nerr\n");
}

TEST_CASE("container: hooks get the state on stdin and are killed after their timeout", "[root]") {
  KATANA_REQUIRE_ROOT();
  bundle b;
  const auto state_out = b.dir / "hook-state.json";
  oci::spec spec = busybox_spec("exit 0");
  oci::hooks hooks;
  hooks.prestart = {make_hook("/bin/sh", {"sh", "-c", "cat > " + state_out.native()})};
  hooks.create_container = {make_hook("/bin/true", {"true"})};
  // startContainer runs inside the container, after pivot_root: its stdin is the state.
  hooks.start_container = {
      make_hook("/bin/sh", {"sh", "-c", "grep -q created && echo start-hook=ok"})};
  hooks.poststart = {make_hook("/bin/true", {"true"})};
  spec.hooks = hooks;
  CHECK(run_to_exit(spec, options(b)) == 0);
  const std::string st = katana_test::read_text(state_out);
  INFO(st);
  CHECK(st.find("\"status\":\"creating\"") != std::string::npos);
  CHECK(st.find("\"id\":\"ct\"") != std::string::npos);
  CHECK(st.find("\"pid\":") != std::string::npos);
  CHECK(b.output() == "start-hook=ok\n");

  hooks.create_runtime = {make_hook("/bin/sleep", {"sleep", "10"}, 1)};
  spec.hooks = hooks;
  const auto t0 = std::chrono::steady_clock::now();
  auto c = kc::container::run(spec, options(b));
  REQUIRE_FALSE(c);
  CHECK(c.error().message() == "createRuntime hook /bin/sleep timed out after 1s");
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));

  // Inside the container (createContainer runs in its mount namespace, before pivot_root).
  hooks.create_runtime.clear();
  hooks.create_container = {make_hook("/bin/sleep", {"sleep", "10"}, 1)};
  spec.hooks = hooks;
  auto d = kc::container::run(spec, options(b));
  REQUIRE_FALSE(d);
  CHECK(d.error().message() == "hook /bin/sleep timed out after 1s: Connection timed out");
}

TEST_CASE("container: exec joins a running container's namespaces", "[root]") {
  KATANA_REQUIRE_ROOT();
  bundle b;
  oci::spec spec = busybox_spec("sleep 100");
  auto c = kc::container::run(spec, options(b));
  if (!c) {
    FAIL(c.error().message());
  }
  oci::process p;
  p.args = {"sh", "-c",
            "echo exec-host=$(hostname); echo init=$(cat /proc/1/cmdline | tr '\\0' ' ')"};
  p.env = {"PATH=/bin"};
  p.cwd = "/";
  kc::exec_options eo;
  eo.stdio[0] = b.null_fd;
  eo.stdio[1] = b.out_fd;
  eo.stdio[2] = b.out_fd;
  auto h = c->exec(p, eo);
  if (!h) {
    FAIL(h.error().message());
  }
  auto st = kc::wait_child(h->pid);
  REQUIRE(st);
  CHECK(kc::exit_code(*st) == 0);
  const std::string out = b.output();
  INFO(out);
  CHECK(out.find("exec-host=katana-test") != std::string::npos);
  CHECK(out.find("init=sleep 100") != std::string::npos);  // sh execs a lone command
  REQUIRE(c->kill(SIGKILL));
  auto code = c->wait();
  REQUIRE(code);
  CHECK(*code == 128 + SIGKILL);
  auto again = c->kill(SIGTERM);
  REQUIRE_FALSE(again);
  CHECK(again.error().message().find("can't be killed because it is stopped") != std::string::npos);
  REQUIRE(c->destroy());
}

TEST_CASE("container: terminal via --console-socket", "[root]") {
  KATANA_REQUIRE_ROOT();
  bundle b;
  const auto sock = b.dir / "console.sock";
  auto listener = kc::listen_console_socket(sock);
  REQUIRE(listener);
  oci::spec spec = busybox_spec("tty; echo hello-tty");
  spec.process->terminal = true;
  auto opt = options(b);
  opt.stdio[0] = opt.stdio[1] = opt.stdio[2] = -1;
  opt.console_socket = sock;
  auto c = kc::container::create(spec, opt);
  if (!c) {
    FAIL(c.error().message());
  }
  auto master = kc::accept_console(listener->get());
  REQUIRE(master);
  CHECK(master->name == "/dev/ptmx");
  REQUIRE(c->start());
  std::string out;
  for (int i = 0; i < 50 && out.find("hello-tty") == std::string::npos; ++i) {
    pollfd p{master->fd.get(), POLLIN, 0};
    if (::poll(&p, 1, 100) > 0) {
      char buf[256];
      const ssize_t n = ::read(master->fd.get(), buf, sizeof buf);
      if (n <= 0) {
        break;
      }
      out.append(buf, static_cast<std::size_t>(n));
    }
  }
  INFO(out);
  CHECK(out.find("/dev/pts/0") != std::string::npos);
  CHECK(out.find("hello-tty") != std::string::npos);
  auto code = c->wait();
  REQUIRE(code);
  CHECK(*code == 0);
  REQUIRE(c->destroy());
}

TEST_CASE("container: a user namespace maps root to 100000", "[root]") {
  KATANA_REQUIRE_ROOT();
  bundle b;
  oci::spec spec = busybox_spec(
      "id; cat /proc/self/uid_map; grep -q ' /proc proc' /proc/mounts && echo proc=yes; "
      "test -c /dev/null && echo null=yes");
  spec.linux_->namespaces.push_back({"user", ""});
  spec.linux_->uid_mappings = {{0, 100000, 65536}};
  spec.linux_->gid_mappings = {{0, 100000, 65536}};
  // The mapped root (host uid 100000) must be able to reach the rootfs.
  std::filesystem::permissions(
      b.dir, std::filesystem::perms::owner_all | std::filesystem::perms::group_read |
                 std::filesystem::perms::group_exec | std::filesystem::perms::others_read |
                 std::filesystem::perms::others_exec);
  auto c = kc::container::run(spec, options(b));
  if (!c && c.error().code == std::errc::operation_not_permitted) {
    WARN("skipped: the kernel refuses user namespaces here: " << c.error().message());
    return;
  }
  if (!c) {
    FAIL(c.error().message());
  }
  auto code = c->wait();
  REQUIRE(code);
  const std::string out = b.output();
  INFO(out);
  CHECK(*code == 0);
  CHECK(out.find("uid=0(root) gid=0") != std::string::npos);
  CHECK(out.find("100000") != std::string::npos);
  CHECK(out.find("proc=yes") != std::string::npos);
  CHECK(out.find("null=yes") != std::string::npos);
  REQUIRE(c->destroy());
}

TEST_CASE("container: destroy kills a created container and runs poststop hooks", "[root]") {
  KATANA_REQUIRE_ROOT();
  bundle b;
  const auto marker = b.dir / "poststop.json";
  oci::spec spec = busybox_spec("exit 0");
  oci::hooks hooks;
  hooks.poststop = {make_hook("/bin/sh", {"sh", "-c", "cat > " + marker.native()})};
  spec.hooks = hooks;
  auto c = kc::container::create(spec, options(b));
  if (!c) {
    FAIL(c.error().message());
  }
  const int pid = c->pid();
  CHECK(c->status() == kc::runtime_status::created);
  REQUIRE(c->destroy());
  CHECK(::kill(pid, 0) == -1);
  CHECK_FALSE(std::filesystem::exists(b.state));
  const std::string st = katana_test::read_text(marker);
  CHECK(st.find("\"status\":\"stopped\"") != std::string::npos);
  CHECK(b.output().empty());  // never exec'd
}

TEST_CASE("container: launching from a busy multithreaded process does not deadlock", "[root]") {
  KATANA_REQUIRE_ROOT();
  bundle b;
  std::atomic<bool> stop{false};
  // Threads hammering malloc: a post-fork allocation would hang on their arena locks.
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&stop] {
      while (!stop.load(std::memory_order_relaxed)) {
        std::vector<std::string> v(64, std::string(100, 'x'));
        v.clear();
      }
    });
  }
  auto join = katana::scope_exit([&] {
    stop = true;
    for (auto& t : threads) {
      t.join();
    }
  });
  for (int i = 0; i < 5; ++i) {
    CHECK(run_to_exit(busybox_spec("exit 7"), options(b, "ct" + std::to_string(i))) == 7);
  }
}

TEST_CASE("container: SCMP_ACT_NOTIFY sends the notify fd to the listener", "[root]") {
  KATANA_REQUIRE_ROOT();
  bundle b;
  const auto sock = b.dir / "seccomp.sock";
  auto listener = kc::listen_console_socket(sock);
  REQUIRE(listener);
  oci::spec spec = busybox_spec("mkdir /tmp/notified 2>&1; echo done");
  spec.process->no_new_privileges = true;
  oci::linux_seccomp sc;
  sc.default_action = "SCMP_ACT_ALLOW";
  sc.listener_path = sock.native();
  sc.listener_metadata = "meta \"data\"";
  oci::linux_syscall notify;
  notify.names = {"mkdir", "mkdirat"};
  notify.action = "SCMP_ACT_NOTIFY";
  sc.syscalls = {notify};
  spec.linux_->seccomp = sc;
  auto c = kc::container::run(spec, options(b));
  if (!c) {
    FAIL(c.error().message());
  }
  auto got = kc::accept_console(listener->get());
  REQUIRE(got);
  INFO(got->name);
  CHECK(got->name.find("\"fds\":[\"seccompFd\"]") != std::string::npos);
  CHECK(got->name.find("\"metadata\":\"meta \\\"data\\\"\"") != std::string::npos);
  CHECK(got->name.find("\"pid\":" + std::to_string(c->pid())) != std::string::npos);
  // Answer the one notification: EROFS.
  seccomp_notif req{};
  REQUIRE(::ioctl(got->fd.get(), SECCOMP_IOCTL_NOTIF_RECV, &req) == 0);
  seccomp_notif_resp resp{};
  resp.id = req.id;
  resp.error = -EROFS;
  REQUIRE(::ioctl(got->fd.get(), SECCOMP_IOCTL_NOTIF_SEND, &resp) == 0);
  auto code = c->wait();
  REQUIRE(code);
  const std::string out = b.output();
  INFO(out);
  CHECK(out.find("Read-only file system") != std::string::npos);
  CHECK(out.find("done") != std::string::npos);
  REQUIRE(c->destroy());
}
