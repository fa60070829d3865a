// End-to-end container tests: real namespaces, mounts, seccomp, hooks. They need root and
// /bin/busybox (busybox-static) and warn + return otherwise.
#include <chrono>
#include <fstream>
#include <poll.h>
#include <string>
#include <thread>
#include <unistd.h>

#include <katana/container/container.hpp>

#include "catch.hpp"
#include "fixture.hpp"

namespace kc = katana::container;
namespace oci = katana::oci;
using katana_test::bundle;
using katana_test::busybox_spec;

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
      "echo pid=$$; exit 3");
  spec.process->cwd = "/tmp";
  spec.process->user.uid = 1000;
  spec.process->user.gid = 1000;
  spec.process->user.additional_gids = {10};
  spec.process->no_new_privileges = true;
  spec.process->rlimits = {{"RLIMIT_NOFILE", 1024, 512}};
  oci::linux_capabilities caps;
  caps.bounding = {"CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_AUDIT_WRITE"};
  caps.effective = caps.bounding;
  caps.permitted = caps.bounding;
  caps.inheritable = caps.bounding;
  caps.ambient = caps.bounding;
  spec.process->capabilities = caps;
  spec.mounts.push_back({"/tmp", "tmpfs", "tmpfs", {"nosuid", "nodev", "mode=1777"}, {}, {}});
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
  CHECK(out.find("pid=1") != std::string::npos);
}
