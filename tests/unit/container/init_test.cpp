// The init's planning logic against recording_syscalls: no root, nothing really happens.
#include <algorithm>
#include <fcntl.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <katana/container/init.hpp>
#include <katana/container/init_config.hpp>
#include <katana/container/launch.hpp>
#include <katana/container/recording_syscalls.hpp>

#include "catch.hpp"
#include "fixture.hpp"

namespace kc = katana::container;
namespace oci = katana::oci;

namespace {

std::unique_ptr<kc::prepared_init> prepare(const oci::spec& spec) {
  kc::prepare_options o;
  o.mode = kc::launch_mode::run;
  o.bundle = "/b";
  o.rootfs = "/b/rootfs";
  o.host.cgroup2 = false;
  o.host.is_directory = [](const std::string&) -> katana::result<bool> {
    return true;
  };
  auto p = kc::prepare_init(spec, o);
  if (!p) {
    FAIL(p.error().message());
  }
  return std::move(*p);
}

std::ptrdiff_t index_of(const std::vector<std::string>& calls, std::string_view prefix) {
  const auto it = std::find_if(calls.begin(), calls.end(),
                               [&](const std::string& c) { return c.starts_with(prefix); });
  return it == calls.end() ? -1 : it - calls.begin();
}

}  // namespace

TEST_CASE("init config: namespaces, user, rlimits and process come from the spec", "[container]") {
  oci::spec spec = katana_test::busybox_spec("true");
  spec.process->rlimits = {{"RLIMIT_NOFILE", 2048, 1024}};
  spec.process->oom_score_adj = -500;
  spec.process->user = {1000, 1001, 027, {10, 11}, ""};
  spec.linux_->sysctl = {{"net.ipv4.ip_forward", "1"}};
  auto p = prepare(spec);
  const kc::init_config& c = p->config;
  CHECK(c.unshare_flags ==
        (CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNS));
  CHECK_FALSE(c.new_user);
  CHECK(c.joins.empty());
  CHECK(c.setup_rootfs);
  CHECK(c.mounts.size() == 7);
  CHECK(std::string(c.mounts[2].destination) == "dev/pts");
  CHECK(c.rlimits.size() == 1);
  CHECK(c.rlimits[0].resource == RLIMIT_NOFILE);
  CHECK(c.rlimits[0].soft == 1024);
  CHECK(std::string(c.oom_score_adj) == "-500");
  CHECK(c.uid == 1000);
  CHECK(c.gid == 1001);
  CHECK(c.umask == 027);
  CHECK(c.groups.size() == 2);
  CHECK(std::string(c.hostname) == "katana-test");
  CHECK(std::string(c.sysctls[0].path) == "proc/sys/net/ipv4/ip_forward");
  CHECK(std::string(c.argv[0]) == "sh");
  CHECK(c.argv[3] == nullptr);
  CHECK(std::string(c.exec_candidates[0]) == "/bin/sh");
}

TEST_CASE("init config: user namespace maps, terminal and hostname rules", "[container]") {
  oci::spec spec = katana_test::busybox_spec("true");
  spec.linux_->namespaces.push_back({"user", ""});
  spec.linux_->uid_mappings = {{0, 100000, 65536}};
  spec.linux_->gid_mappings = {{0, 100000, 65536}};
  auto p = prepare(spec);
  CHECK(p->config.new_user);
  CHECK(p->config.bind_devices);
  CHECK(p->uid_map == "0 100000 65536\n");

  spec.linux_->uid_mappings.clear();
  kc::prepare_options o;
  o.rootfs = "/b/rootfs";
  CHECK_FALSE(kc::prepare_init(spec, o));

  oci::spec t = katana_test::busybox_spec("true");
  t.process->terminal = true;
  auto no_socket = kc::prepare_init(t, o);
  REQUIRE_FALSE(no_socket);
  CHECK(no_socket.error().message() ==
        "cannot allocate a pseudo-TTY without setting a console socket");

  oci::spec h = katana_test::busybox_spec("true");
  h.linux_->namespaces = {{"mount", ""}, {"pid", ""}};
  CHECK_FALSE(kc::prepare_init(h, o));  // hostname without a uts namespace
}

TEST_CASE("init steps: rootfs setup order, fd-pinned targets, pivot_root trick", "[container]") {
  oci::spec spec = katana_test::busybox_spec("true");
  spec.root->readonly = true;
  auto p = prepare(spec);
  kc::recording_syscalls sys;
  kc::init_steps<kc::recording_syscalls> steps(sys, p->config);
  kc::init_failure f;
  REQUIRE(steps.prepare_rootfs(f));
  const auto& calls = sys.calls;
  REQUIRE(calls.size() > 10);
  CHECK(calls[0] == "mount(NULL, \"/\", NULL, 0x84000, NULL)");  // MS_SLAVE|MS_REC
  CHECK(calls[1] == "mount(\"/b/rootfs\", \"/b/rootfs\", NULL, 0x5000, NULL)");
  CHECK(calls[2].starts_with("openat(-100, \"/b/rootfs\""));
  // Every mount targets /proc/self/fd/N of a descriptor opened in the root, never a path.
  const auto mounts = sys.with_prefix("mount(\"proc\"");
  REQUIRE(mounts.size() == 1);
  CHECK(mounts[0] == "mount(\"proc\", \"/proc/self/fd/1001\", \"proc\", 0x0, NULL)");
  CHECK(index_of(calls, "open_in_root(1000, \"proc\") = 1001") >= 0);
  CHECK(index_of(calls, "mount(\"tmpfs\", \"/proc/self/fd/") >= 0);
  CHECK(index_of(calls, "mount(\"/sys/fs/cgroup\"") >= 0);
  CHECK(index_of(calls, "mount(NULL, \"/proc/self/fd/") >= 0);  // the ro remount of the bind
  // /dev: symlinks then device nodes.
  CHECK(index_of(calls, "symlinkat(\"pts/ptmx\"") > index_of(calls, "mount(\"mqueue\""));
  CHECK(index_of(calls, "mknodat(") > index_of(calls, "symlinkat(\"pts/ptmx\""));
  CHECK(sys.with_prefix("mknodat(").size() == 6);
  CHECK(sys.with_prefix("fchown(").size() == 6);

  sys.calls.clear();
  REQUIRE(steps.pivot(f));
  CHECK(index_of(sys.calls, "pivot_root(\".\", \".\")") >= 0);
  CHECK(index_of(sys.calls, "umount2(\".\", 2)") > index_of(sys.calls, "pivot_root("));
  CHECK(index_of(sys.calls, "mount(NULL, \".\", NULL, 0x84000, NULL)") <
        index_of(sys.calls, "umount2("));

  sys.calls.clear();
  REQUIRE(steps.finalize_rootfs(f));
  CHECK(sys.calls[0] == "mount(NULL, \"/\", NULL, 0x1021, NULL)");  // MS_BIND|MS_REMOUNT|MS_RDONLY
  CHECK(index_of(sys.calls, "sethostname(katana-test)") >= 0);
  CHECK(sys.with_prefix("mount(\"/dev/null\"").size() == 5);  // masked (fake fds: not dirs)
  CHECK(index_of(sys.calls, "open_in_root(") >= 0);
}

TEST_CASE("init steps: a missing mount point is created below pinned parents", "[container]") {
  oci::spec spec = katana_test::busybox_spec("true");
  spec.mounts = {{"/a/b/c", "tmpfs", "tmpfs", {}, {}, {}}};
  auto p = prepare(spec);
  kc::recording_syscalls sys;
  sys.missing = {"a/b/c", "a/b"};
  kc::init_steps<kc::recording_syscalls> steps(sys, p->config);
  kc::init_failure f;
  // "missing" stays missing for every lookup: creation is attempted, then reported.
  CHECK_FALSE(steps.prepare_rootfs(f));
  CHECK(index_of(sys.calls, "mkdirat(1001, \"b\", 0755)") >= 0);
  CHECK(f.err == ENOENT);
  CHECK(std::string(f.path) == "/b/rootfs/a/b");
}

TEST_CASE("init steps: a missing cwd is made in the new root before it turns read-only",
          "[container]") {
  oci::spec spec = katana_test::busybox_spec("true");
  spec.root->readonly = true;
  spec.process->cwd = "//w//x";
  auto p = prepare(spec);
  kc::recording_syscalls sys;
  kc::init_steps<kc::recording_syscalls> steps(sys, p->config);
  kc::init_failure f;
  REQUIRE(steps.finalize_rootfs(f));  // present: looked up, nothing made
  CHECK(index_of(sys.calls, "open_in_root(-1, \"w//x\")") == 0);
  CHECK(sys.with_prefix("mkdirat(").empty());

  sys.calls.clear();
  sys.missing = {"w//x", "w"};
  // "missing" stays missing for every lookup: the parent is made, then its lookup reported.
  CHECK_FALSE(steps.finalize_rootfs(f));
  CHECK(sys.with_prefix("mkdirat(") == std::vector<std::string>{"mkdirat(-1, \"w\", 0755)"});
  CHECK(std::string(f.what) == "open cwd");
  CHECK(std::string(f.path) == "/b/rootfs/w");
  CHECK(f.err == ENOENT);
  CHECK(sys.with_prefix("mount(NULL, \"/\"").empty());  // the read-only remount comes after

  sys.calls.clear();
  sys.missing = {"w//x"};
  sys.fail_on("mkdirat", EROFS);
  CHECK_FALSE(steps.finalize_rootfs(f));
  CHECK(std::string(f.what) == "create cwd");
  CHECK(std::string(f.path) == "/b/rootfs/w//x");
  CHECK(f.err == EROFS);
}

TEST_CASE("init steps: failures carry errno, step and path", "[container]") {
  oci::spec spec = katana_test::busybox_spec("true");
  auto p = prepare(spec);
  kc::recording_syscalls sys;
  sys.fail_on("mount(\"proc\"", EPERM);
  kc::init_steps<kc::recording_syscalls> steps(sys, p->config);
  kc::init_failure f;
  REQUIRE_FALSE(steps.prepare_rootfs(f));
  CHECK(f.err == EPERM);
  kc::sync_message m;
  m.type = kc::sync_type::error;
  m.value = f.err;
  std::copy_n(f.what, sizeof m.what, m.what);
  std::copy_n(f.path, sizeof m.path, m.path);
  CHECK(kc::detail::init_error(m).message() ==
        "mount proc on /b/rootfs/proc: Operation not permitted");
}

TEST_CASE("init steps: credentials keep capabilities across setuid, in order", "[container]") {
  oci::spec spec = katana_test::busybox_spec("true");
  spec.process->user = {1000, 1000, std::nullopt, {10}, ""};
  oci::linux_capabilities caps;
  caps.bounding = {"CAP_KILL"};
  caps.effective = caps.bounding;
  caps.permitted = caps.bounding;
  caps.ambient = caps.bounding;
  caps.inheritable = caps.bounding;
  spec.process->capabilities = caps;
  spec.process->no_new_privileges = true;
  spec.process->cwd = "/tmp";
  auto p = prepare(spec);
  kc::recording_syscalls sys;
  kc::init_steps<kc::recording_syscalls> steps(sys, p->config);
  kc::init_failure f;
  REQUIRE(steps.process_attributes(f));
  CHECK(index_of(sys.calls, "prctl(38, 1, 0)") >= 0);  // PR_SET_NO_NEW_PRIVS
  sys.calls.clear();
  REQUIRE(steps.credentials(f));
  CHECK(sys.calls == std::vector<std::string>{"bounding(0x20)", "prctl(8, 1, 0)", "setgroups(10)",
                                              "setresgid(1000, 1000, 1000)",
                                              "setresuid(1000, 1000, 1000)", "prctl(8, 0, 0)",
                                              "capset(eff=0x20, perm=0x20, inh=0x20, amb=0x20)",
                                              "chdir(\"/tmp\")", "getcwd()"});
  sys.fail_on("execve", ENOENT);
  CHECK_FALSE(steps.exec(f));
  CHECK(std::string(f.what) == "exec: executable file not found in $PATH");
  CHECK(std::string(f.path) == "sh");
  // Before create returns: the command must exist (runc's check; podman's 127).
  CHECK(steps.find_executable(f));
  sys.fail_on("openat(-100, \"/", ENOENT);
  CHECK_FALSE(steps.find_executable(f));
  CHECK(std::string(f.what) == "exec: executable file not found in $PATH");
  CHECK(f.err == ENOENT);
}

TEST_CASE("init steps: a cwd outside the root (through a leaked fd) is refused", "[container]") {
  oci::spec spec = katana_test::busybox_spec("true");
  spec.process->cwd = "/proc/self/fd/7";
  auto p = prepare(spec);
  kc::recording_syscalls sys;
  kc::init_steps<kc::recording_syscalls> steps(sys, p->config);
  kc::init_failure f;
  REQUIRE(steps.credentials(f));  // getcwd answers the path chdir was given
  sys.getcwd_answer = "(unreachable)/run/kata-containers/shared/containers/c0/rootfs";
  CHECK_FALSE(steps.credentials(f));
  CHECK(std::string(f.what) == "cwd is outside the container's root (possible breakout)");
  CHECK(std::string(f.path) == "/proc/self/fd/7");
  CHECK(f.err == EPERM);
  sys.fail_on("getcwd", ENOENT);
  CHECK_FALSE(steps.credentials(f));
  CHECK(std::string(f.what) == "getcwd after chdir to cwd");
  CHECK(f.err == ENOENT);
}

TEST_CASE("init steps: an initramfs root falls back to MS_MOVE + chroot", "[container]") {
  oci::spec spec = katana_test::busybox_spec("true");
  auto p = prepare(spec);
  kc::recording_syscalls sys;
  sys.fail_on("pivot_root(", EINVAL);  // what the kernel answers when / is the initramfs
  kc::init_steps<kc::recording_syscalls> steps(sys, p->config);
  kc::init_failure f;
  REQUIRE(steps.prepare_rootfs(f));
  sys.calls.clear();
  REQUIRE(steps.pivot(f));
  const auto move = index_of(sys.calls, "mount(\".\", \"/\", NULL, 0x2000, NULL)");  // MS_MOVE
  CHECK(move > index_of(sys.calls, "pivot_root("));
  CHECK(index_of(sys.calls, "chroot(\".\")") > move);
  CHECK(index_of(sys.calls, "umount2(") < 0);  // nothing to detach: the old root is gone

  // Any other pivot_root failure is still an error naming the step.
  kc::recording_syscalls other;
  other.fail_on("pivot_root(", EPERM);
  kc::init_steps<kc::recording_syscalls> steps2(other, p->config);
  kc::init_failure f2;
  REQUIRE(steps2.prepare_rootfs(f2));
  CHECK_FALSE(steps2.pivot(f2));
}

TEST_CASE("init steps: /proc/self/cgroup lines by hierarchy", "[container]") {
  char text[] = "9:name=systemd:/\n4:cpu,cpuacct:/a\n3:memory:/ctr/x\n0::/ctr/x\n";
  CHECK(kc::init_detail::find_cgroup_path(text, "cpu") == nullptr);
  CHECK(kc::init_detail::find_cgroup_path(text, "mem") == nullptr);
  char t1[sizeof text];
  std::copy_n(text, sizeof text, t1);
  CHECK(std::string(kc::init_detail::find_cgroup_path(t1, "cpu,cpuacct")) == "/a");
  std::copy_n(text, sizeof text, t1);
  CHECK(std::string(kc::init_detail::find_cgroup_path(t1, "memory")) == "/ctr/x");
  std::copy_n(text, sizeof text, t1);
  CHECK(std::string(kc::init_detail::find_cgroup_path(t1, "")) == "/ctr/x");
  std::copy_n(text, sizeof text, t1);
  CHECK(std::string(kc::init_detail::find_cgroup_path(t1, "name=systemd")) == "/");
}

TEST_CASE("init steps: cgroup mounts bind the init's own cgroups, ro tmpfs last", "[container]") {
  oci::spec spec = katana_test::busybox_spec("true");
  kc::prepare_options o;
  o.mode = kc::launch_mode::run;
  o.bundle = "/b";
  o.rootfs = "/b/rootfs";
  o.host.cgroup2 = false;
  o.host.cgroups = {{"/sys/fs/cgroup/cpu,cpuacct", "/", false, "cpu,cpuacct"},
                    {"/sys/fs/cgroup/memory", "/", false, "memory"},
                    {"/sys/fs/cgroup/unified", "/", true, ""}};
  o.host.is_directory = [](const std::string&) -> katana::result<bool> {
    return true;
  };
  auto p = kc::prepare_init(spec, o);
  REQUIRE(p);
  kc::recording_syscalls sys;
  sys.files = {{"/proc/self/cgroup", "4:cpu,cpuacct:/\n3:memory:/k/ctr\n0::/k/ctr\n"}};
  kc::init_steps<kc::recording_syscalls> steps(sys, (*p)->config);
  kc::init_failure f;
  REQUIRE(steps.prepare_rootfs(f));
  const auto& calls = sys.calls;
  const auto tmpfs = index_of(calls, "mount(\"tmpfs\", \"/proc/self/fd/");
  const auto cpu = index_of(calls, "mount(\"/sys/fs/cgroup/cpu,cpuacct\", ");
  const auto mem = index_of(calls, "mount(\"/sys/fs/cgroup/memory/k/ctr\", ");
  const auto uni = index_of(calls, "mount(\"/sys/fs/cgroup/unified/k/ctr\", ");
  const auto link = index_of(calls, "symlinkat(\"cpu,cpuacct\", ");
  const auto ro = index_of(calls, "mount(NULL, \"/proc/self/fd/");
  CHECK(tmpfs >= 0);
  CHECK(cpu > tmpfs);
  CHECK(mem > cpu);
  CHECK(uni > mem);
  CHECK(link > uni);
  CHECK(ro > cpu);
  CHECK(index_of(calls, "mount(NULL, \"/proc/self/fd/") >= 0);
  // The last mount call: the tmpfs bind-remounted MS_RDONLY|MS_NOSUID|MS_NODEV|MS_NOEXEC.
  std::string last;
  for (const auto& c : calls) {
    if (c.starts_with("mount(")) {
      last = c;
    }
  }
  CHECK(last.ends_with("NULL, 0x102f, NULL)"));

  // A hierarchy missing from /proc/self/cgroup is an error naming it.
  kc::recording_syscalls none;
  none.files = {{"/proc/self/cgroup", "0::/\n"}};
  kc::init_steps<kc::recording_syscalls> steps2(none, (*p)->config);
  kc::init_failure f2;
  CHECK_FALSE(steps2.prepare_rootfs(f2));
  CHECK(f2.err == ENOENT);
  CHECK(std::string(f2.path).starts_with("/sys/fs/cgroup/cpu,cpuacct"));
}

TEST_CASE("init steps: a shared rootfsPropagation makes the rootfs' mount private first",
          "[container]") {
  oci::spec spec = katana_test::busybox_spec("true");
  spec.linux_->rootfs_propagation = "rshared";
  kc::prepare_options o;
  o.mode = kc::launch_mode::run;
  o.bundle = "/b";
  o.rootfs = "/b/rootfs";
  o.rootfs_mount = "/b";
  o.host.is_directory = [](const std::string&) -> katana::result<bool> {
    return true;
  };
  auto p = kc::prepare_init(spec, o);
  REQUIRE(p);
  kc::recording_syscalls sys;
  kc::init_steps<kc::recording_syscalls> steps(sys, (*p)->config);
  kc::init_failure f;
  REQUIRE(steps.prepare_rootfs(f));
  CHECK(sys.calls[0] == "mount(NULL, \"/\", NULL, 0x104000, NULL)");  // MS_SHARED|MS_REC
  CHECK(sys.calls[1] == "mount(NULL, \"/b\", NULL, 0x40000, NULL)");  // MS_PRIVATE
  CHECK(sys.calls[2] == "mount(\"/b/rootfs\", \"/b/rootfs\", NULL, 0x5000, NULL)");

  spec.linux_->rootfs_propagation = "slave";  // left alone: "/" stays a slave of the host's
  auto s = kc::prepare_init(spec, o);
  REQUIRE(s);
  CHECK((*s)->config.rootfs_parent_mount == nullptr);
}

namespace {

/// In a child: fds 3..9 and a high one (4000) open (4 and the high one kept), close_fds_except,
/// then which are left as a bitmask exit code; with `refuse_close_range`, close_range fails with
/// ENOSYS first (a kernel before 5.9), so the /proc/self/fd walk does the work.
int fds_left_after_close(bool refuse_close_range) {
  return katana_test::in_child([refuse_close_range] {
    for (int fd = 3; fd <= 9; ++fd) {
      if (::dup2(0, fd) < 0) {
        return 255;
      }
    }
    rlimit lim{};
    ::getrlimit(RLIMIT_NOFILE, &lim);
    lim.rlim_cur = lim.rlim_max;  // above the usual soft limit of 1024
    ::setrlimit(RLIMIT_NOFILE, &lim);
    const int high = static_cast<int>(std::min<rlim_t>(4000, lim.rlim_max - 1));
    if (::dup2(0, high) < 0) {
      return 255;
    }
    if (refuse_close_range) {
      scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
      if (ctx == nullptr ||
          seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(close_range), 0) != 0 ||
          seccomp_load(ctx) != 0) {
        return 254;
      }
    }
    katana::container::init_detail::close_fds_except(3, {4, -1, high, 4, 2, -1, -1, -1});
    int left = 0;
    for (int fd = 3; fd <= 9; ++fd) {
      if (::fcntl(fd, F_GETFD) >= 0) {
        left |= 1 << (fd - 3);
      }
    }
    if (::fcntl(high, F_GETFD) >= 0) {
      left |= 1 << 7;
    }
    return left;
  });
}

}  // namespace

TEST_CASE(
    "init: runtime fds are closed before exec but the kept ones, with or without "
    "close_range",
    "[container]") {
  constexpr int kept = (1 << (4 - 3)) | (1 << 7);  // fd 4 and the high one
  CHECK(fds_left_after_close(false) == kept);
  CHECK(fds_left_after_close(true) == kept);
}
