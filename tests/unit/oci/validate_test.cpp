#include <string>
#include <vector>

#include <katana/oci/default_spec.hpp>
#include <katana/oci/spec_json.hpp>
#include <katana/oci/validate.hpp>

#include "catch.hpp"
#include "fixtures.hpp"

using katana::errc;
namespace oci = katana::oci;

namespace {

// The first problem validate() reports for a spec that must be refused.
std::string problem(const oci::spec& s, const oci::validate_options& options = {}) {
  auto st = oci::validate(s, options);
  REQUIRE_FALSE(st);
  CHECK(st.error().code == errc::invalid_spec);
  return st.error().message();
}

oci::spec base() {
  return oci::default_spec();
}
oci::process& proc(oci::spec& s) {
  return *s.process;
}
oci::linux_spec& lin(oci::spec& s) {
  return *s.linux_;
}

oci::linux_namespace ns(std::string type) {
  return oci::linux_namespace{std::move(type), {}};
}

oci::linux_seccomp seccomp_allow() {
  oci::linux_seccomp sc;
  sc.default_action = "SCMP_ACT_ALLOW";
  return sc;
}

oci::linux_syscall syscall(std::string name, std::string action) {
  oci::linux_syscall sc;
  sc.names = {std::move(name)};
  sc.action = std::move(action);
  return sc;
}

}  // namespace

TEST_CASE("valid specs pass", "[oci][validate]") {
  CHECK(oci::validate(oci::default_spec()));
  CHECK(oci::validate(oci::default_spec(true)));
  auto full = oci::parse_spec(katana_test::full_config);
  REQUIRE(full);
  INFO((oci::validate_all(*full).empty() ? "" : oci::validate_all(*full).front()));
  CHECK(oci::validate(*full));
  auto runc = oci::parse_spec(katana_test::runc_spec);
  REQUIRE(runc);
  CHECK(oci::validate(*runc));
  auto rootless = oci::parse_spec(katana_test::runc_spec_rootless);
  REQUIRE(rootless);
  CHECK(oci::validate(*rootless));
}

TEST_CASE("ociVersion must be SemVer with major 1", "[oci][validate]") {
  auto s = base();
  s.oci_version = "abc";
  CHECK(problem(s) == R"(ociVersion "abc" is not a valid semantic version)");
  for (const char* bad : {"", "1", "1.2", "1.2.0.", "01.2.0", "1.02.0", "1.2.0-", "1.2.0+",
                          "1.2.0-01", "1.2.0-a..b", "v1.2.0", " 1.2.0", "1.2.0-é"}) {
    s.oci_version = bad;
    INFO(bad);
    CHECK(problem(s).ends_with("is not a valid semantic version"));
  }
  for (const char* good : {"1.0.0", "1.0.2-dev", "1.2.0", "1.1.0-rc.1+build.007", "1.0.0-0.3.7",
                           "1.0.0+20130313144700", "1.10.100"}) {
    s.oci_version = good;
    INFO(good);
    CHECK(oci::validate(s));
  }
  s.oci_version = "2.0.0";
  CHECK(problem(s) == R"(ociVersion "2.0.0" is not supported: the major version must be 1)");
  s.oci_version = "0.5.0";
  CHECK(problem(s).ends_with("the major version must be 1"));
  constexpr auto v = oci::parse_semantic_version("1.1.0-rc.1+b");
  STATIC_REQUIRE(v && v->minor == 1 && v->pre_release == "rc.1" && v->build == "b");
}

TEST_CASE("root and process presence", "[oci][validate]") {
  auto s = base();
  s.root->path.clear();
  CHECK(problem(s) == "root.path must not be empty");
  s.root.reset();
  CHECK(problem(s) == "root is required");
  CHECK(oci::validate(s, {.require_process = true, .require_root = false}));
  s = base();
  s.process.reset();
  CHECK(problem(s) == "process is required");
  CHECK(oci::validate(s, {.require_process = false, .require_root = true}));
}

TEST_CASE("process rules", "[oci][validate]") {
  auto s = base();
  proc(s).args.clear();
  CHECK(problem(s) == "process.args must not be empty");
  proc(s).args = {""};
  CHECK(problem(s) == "process.args[0] must not be empty");

  s = base();
  proc(s).cwd = "srv";
  CHECK(problem(s) == "process.cwd must be an absolute path");
  proc(s).cwd = "";
  CHECK(problem(s) == "process.cwd must be an absolute path");

  s = base();
  proc(s).env.push_back("NOVALUE");
  CHECK(problem(s) == R"(process.env[2] "NOVALUE" must contain '=')");
  proc(s).env.back() = "=x";
  CHECK(problem(s) == R"(process.env[2] "=x" has an empty name)");

  s = base();
  proc(s).terminal = false;
  proc(s).console_size = oci::console_size{24, 80};
  CHECK(problem(s) == "process.consoleSize requires process.terminal");

  s = base();
  proc(s).user.umask = 01000;
  CHECK(problem(s) == "process.user.umask must be at most 0777");

  s = base();
  proc(s).capabilities->bounding = {"CAP_FOO"};
  CHECK(problem(s) == R"(process.capabilities.bounding[0] "CAP_FOO" is not a capability)");
  s = base();
  proc(s).capabilities->ambient = {"CAP_KILL", "cap_kill"};
  CHECK(problem(s) == R"(process.capabilities.ambient[1] "cap_kill" is not a capability)");
  s = base();
  proc(s).capabilities->inheritable = {"CAP_SYS_ADMIN", "CAP_CHECKPOINT_RESTORE", "CAP_X"};
  CHECK(problem(s) == R"(process.capabilities.inheritable[2] "CAP_X" is not a capability)");

  s = base();
  proc(s).rlimits[0].type = "RLIMIT_FOO";
  CHECK(problem(s) == R"(process.rlimits[0].type "RLIMIT_FOO" is unknown)");
  s = base();
  proc(s).rlimits[0].soft = 2048;
  CHECK(problem(s) == "process.rlimits[0] soft limit exceeds hard limit");
  s = base();
  proc(s).rlimits.push_back(oci::posix_rlimit{"RLIMIT_NOFILE", 1, 1});
  CHECK(problem(s) == R"(process.rlimits[1]: duplicate rlimit "RLIMIT_NOFILE")");

  s = base();
  proc(s).oom_score_adj = 1001;
  CHECK(problem(s) == "process.oomScoreAdj must be between -1000 and 1000");
  proc(s).oom_score_adj = -1000;
  CHECK(oci::validate(s));

  s = base();
  proc(s).io_priority = oci::io_priority{"IOPRIO_CLASS_NONE", 0};
  CHECK(problem(s) ==
        R"(process.ioPriority.class "IOPRIO_CLASS_NONE" is not an I/O priority class)");
  proc(s).io_priority = oci::io_priority{"IOPRIO_CLASS_RT", 8};
  CHECK(problem(s) == "process.ioPriority.priority must be between 0 and 7");
  proc(s).io_priority = oci::io_priority{"IOPRIO_CLASS_IDLE", 7};
  CHECK(oci::validate(s));

  s = base();
  proc(s).exec_cpu_affinity = oci::exec_cpu_affinity{"0-3", "3-1"};
  CHECK(problem(s) == R"(process.execCPUAffinity.final "3-1" is not a valid list (like "0-3,7"))");
  proc(s).exec_cpu_affinity = oci::exec_cpu_affinity{"0-3,x", ""};
  CHECK(problem(s).starts_with("process.execCPUAffinity.initial \"0-3,x\""));
  proc(s).exec_cpu_affinity = oci::exec_cpu_affinity{"0,2-5,007,0-15:2/4", ""};
  CHECK(oci::validate(s));
}

TEST_CASE("scheduler rules", "[oci][validate]") {
  auto s = base();
  oci::scheduler sched;
  sched.policy = "SCHED_FAST";
  proc(s).scheduler = sched;
  CHECK(problem(s) == R"(process.scheduler.policy "SCHED_FAST" is not a scheduling policy)");
  sched.policy = "SCHED_OTHER";
  sched.flags = {"SCHED_FLAG_RESET_ON_FORK", "SCHED_FLAG_X"};
  proc(s).scheduler = sched;
  CHECK(problem(s) == R"(process.scheduler.flags[1] "SCHED_FLAG_X" is not a scheduler flag)");
  sched.flags.clear();
  sched.nice = 20;
  proc(s).scheduler = sched;
  CHECK(problem(s) == "process.scheduler.nice must be between -20 and 19");
  sched.nice = 0;
  sched.priority = 5;
  proc(s).scheduler = sched;
  CHECK(problem(s) == "process.scheduler.priority must be 0 for SCHED_OTHER");
  sched.policy = "SCHED_FIFO";
  sched.priority = 0;
  proc(s).scheduler = sched;
  CHECK(problem(s) == "process.scheduler.priority must be between 1 and 99 for SCHED_FIFO");
  sched.priority = 99;
  proc(s).scheduler = sched;
  CHECK(oci::validate(s));
}

TEST_CASE("hostname and domainname need a uts namespace", "[oci][validate]") {
  auto s = base();
  std::erase_if(lin(s).namespaces, [](const auto& n) { return n.type == "uts"; });
  CHECK(problem(s) == "hostname requires a uts namespace");
  s.hostname.clear();
  CHECK(oci::validate(s));
  s.domainname = "example.org";
  CHECK(problem(s) == "domainname requires a uts namespace");
  s.linux_.reset();
  CHECK(problem(s) == "domainname requires a uts namespace");
}

TEST_CASE("mounts and hooks", "[oci][validate]") {
  auto s = base();
  s.mounts[2].destination = "dev/pts";
  CHECK(problem(s) == "mounts[2].destination must be an absolute path");

  s = base();
  s.hooks.emplace().prestart.push_back(oci::hook{"hook.sh", {}, {}, {}});
  CHECK(problem(s) == "hooks.prestart[0].path must be an absolute path");
  s.hooks->prestart[0].path = "/bin/hook.sh";
  CHECK(oci::validate(s));
  s.hooks->poststop.push_back(oci::hook{"/bin/a", {}, {}, 5});
  s.hooks->poststop.push_back(oci::hook{"/bin/b", {}, {}, 0});
  CHECK(problem(s) == "hooks.poststop[1].timeout must be positive");
  s.hooks->poststop[1].timeout = -3;
  CHECK(problem(s) == "hooks.poststop[1].timeout must be positive");
  s.hooks->poststop[1].timeout.reset();
  s.hooks->create_runtime.push_back(oci::hook{"/bin/c", {"c"}, {"A=1", "B"}, {}});
  CHECK(problem(s) == R"(hooks.createRuntime[0].env[1] "B" must contain '=')");
  s.hooks->create_runtime.clear();
  s.hooks->create_container.push_back(oci::hook{"./x", {}, {}, {}});
  CHECK(problem(s) == "hooks.createContainer[0].path must be an absolute path");
  s.hooks->create_container.clear();
  s.hooks->start_container.push_back(oci::hook{"/x", {}, {}, 0});
  CHECK(problem(s) == "hooks.startContainer[0].timeout must be positive");
  s.hooks->start_container.clear();
  s.hooks->poststart.push_back(oci::hook{"", {}, {}, {}});
  CHECK(problem(s) == "hooks.poststart[0].path must be an absolute path");

  s = base();
  s.annotations[""] = "x";
  CHECK(problem(s) == "annotations keys must not be empty");
}

TEST_CASE("namespaces and id mappings", "[oci][validate]") {
  auto s = base();
  lin(s).namespaces[1].type = "foo";
  CHECK(problem(s) == R"(linux.namespaces[1].type "foo" is not a namespace type)");
  s = base();
  lin(s).namespaces.push_back(ns("pid"));
  CHECK(problem(s) == R"(linux.namespaces: duplicate namespace "pid")");
  s = base();
  lin(s).namespaces[0].path = "proc/1/ns/pid";
  CHECK(problem(s) == "linux.namespaces[0].path must be an absolute path");

  s = base();
  lin(s).uid_mappings = {oci::linux_id_mapping{0, 1000, 1}};
  CHECK(problem(s) == "linux.uidMappings require a user namespace");
  s = base();
  lin(s).gid_mappings = {oci::linux_id_mapping{0, 1000, 1}};
  CHECK(problem(s) == "linux.gidMappings require a user namespace");
  s = oci::default_spec(true);
  lin(s).uid_mappings[0].size = 0;
  CHECK(problem(s) == "linux.uidMappings[0].size must be positive");

  s = base();
  lin(s).time_offsets["monotonic"] = oci::linux_time_offset{1, 0};
  CHECK(problem(s) == "linux.timeOffsets require a time namespace");
  lin(s).namespaces.push_back(ns("time"));
  CHECK(oci::validate(s));
  lin(s).time_offsets["realtime"] = oci::linux_time_offset{1, 0};
  CHECK(problem(s) == R"(linux.timeOffsets key "realtime" must be monotonic or boottime)");
  lin(s).time_offsets.erase("realtime");
  lin(s).time_offsets["boottime"].nanosecs = 1000000000;
  CHECK(problem(s) == R"(linux.timeOffsets["boottime"].nanosecs must be less than 1000000000)");
}

TEST_CASE("sysctl rules", "[oci][validate]") {
  auto s = base();
  lin(s).sysctl[""] = "1";
  CHECK(problem(s) == "linux.sysctl keys must not be empty");
  s = base();
  lin(s).sysctl["net..ipv4"] = "1";
  CHECK(problem(s) == R"(linux.sysctl key "net..ipv4" is not a sysctl name)");
  lin(s).sysctl.clear();
  lin(s).sysctl["../../etc/passwd"] = "1";
  CHECK(problem(s) == R"(linux.sysctl key "../../etc/passwd" is not a sysctl name)");

  s = oci::default_spec(true);  // no network namespace
  lin(s).sysctl["net.ipv4.ip_forward"] = "1";
  CHECK(problem(s) == R"(linux.sysctl["net.ipv4.ip_forward"] requires a network namespace)");
  s = base();
  lin(s).sysctl["net.ipv4.conf.eth0.1.rp_filter"] = "1";  // a VLAN interface name
  lin(s).sysctl["net/ipv4/ip_forward"] = "1";
  lin(s).sysctl["vm.swappiness"] = "10";  // not namespaced: the host decides
  CHECK(oci::validate(s));
  std::erase_if(lin(s).namespaces, [](const auto& n) { return n.type == "ipc"; });
  lin(s).sysctl["kernel.shmmax"] = "1";
  CHECK(problem(s) == R"(linux.sysctl["kernel.shmmax"] requires an ipc namespace)");
  lin(s).sysctl.erase("kernel.shmmax");
  lin(s).sysctl["fs.mqueue.queues_max"] = "1";
  CHECK(problem(s) == R"(linux.sysctl["fs.mqueue.queues_max"] requires an ipc namespace)");
  lin(s).sysctl.clear();
  std::erase_if(lin(s).namespaces, [](const auto& n) { return n.type == "uts"; });
  s.hostname.clear();
  lin(s).sysctl["kernel.domainname"] = "x";
  CHECK(problem(s) == R"(linux.sysctl["kernel.domainname"] requires a uts namespace)");
}

TEST_CASE("devices, propagation, paths, personality, intelRdt", "[oci][validate]") {
  auto s = base();
  lin(s).devices.push_back(oci::linux_device{"/dev/x", "x", 1, 1, {}, {}, {}});
  CHECK(problem(s) == "linux.devices[0].type must be one of c, b, u, p");
  lin(s).devices[0].type = "u";
  lin(s).devices[0].path = "dev/x";
  CHECK(problem(s) == "linux.devices[0].path must be an absolute path");

  s = base();
  lin(s).rootfs_propagation = "x";
  CHECK(problem(s) == R"(linux.rootfsPropagation "x" is invalid)");
  for (const char* good : {"private", "rprivate", "slave", "rslave", "shared", "rshared",
                           "unbindable", "runbindable"}) {
    lin(s).rootfs_propagation = good;
    CHECK(oci::validate(s));
  }

  s = base();
  lin(s).masked_paths.push_back("proc/kcore");
  CHECK(problem(s) == "linux.maskedPaths[11] must be an absolute path");
  s = base();
  lin(s).readonly_paths[0] = "";
  CHECK(problem(s) == "linux.readonlyPaths[0] must be an absolute path");

  s = base();
  lin(s).personality = oci::linux_personality{"LINUX64", {}};
  CHECK(problem(s) == R"(linux.personality.domain "LINUX64" must be LINUX or LINUX32)");
  lin(s).personality->domain = "LINUX";
  CHECK(oci::validate(s));

  s = base();
  lin(s).intel_rdt.emplace().clos_id = "../escape";
  CHECK(problem(s) == R"(linux.intelRdt.closID "../escape" must be a plain directory name)");
}

TEST_CASE("resources rules", "[oci][validate]") {
  auto s = base();
  auto& r = *lin(s).resources;
  r.devices[0].type = "x";
  CHECK(problem(s) == "linux.resources.devices[0].type must be one of a, c, b");
  r.devices[0].type = "a";
  r.devices[0].access = "rwx";
  CHECK(problem(s) == R"(linux.resources.devices[0].access "rwx" must contain only r, w and m)");
  r.devices[0].access = "rwm";

  r.memory.emplace().swappiness = 101;
  CHECK(problem(s) == "linux.resources.memory.swappiness must be at most 100");
  r.memory->swappiness = 100;

  r.cpu.emplace().cpus = "0-";
  CHECK(problem(s) == R"(linux.resources.cpu.cpus "0-" is not a valid list (like "0-3,7"))");
  r.cpu->cpus = "0-1";
  r.cpu->mems = "0,";
  CHECK(problem(s) == R"(linux.resources.cpu.mems "0," is not a valid list (like "0-3,7"))");
  r.cpu->mems = "0";
  r.cpu->idle = 2;
  CHECK(problem(s) == "linux.resources.cpu.idle must be 0 or 1");
  r.cpu->idle = 1;

  r.block_io.emplace().weight = 5;
  CHECK(problem(s) == "linux.resources.blockIO.weight must be between 10 and 1000");
  r.block_io->weight = 1000;
  r.block_io->leaf_weight = 1001;
  CHECK(problem(s) == "linux.resources.blockIO.leafWeight must be between 10 and 1000");
  r.block_io->leaf_weight.reset();
  r.block_io->weight_device.push_back(oci::linux_weight_device{8, 0, 9, {}});
  CHECK(problem(s) == "linux.resources.blockIO.weightDevice[0].weight must be between 10 and 1000");
  r.block_io->weight_device.clear();

  r.hugepage_limits.push_back(oci::linux_hugepage_limit{"2M", 1});
  CHECK(problem(s) ==
        R"(linux.resources.hugepageLimits[0].pageSize "2M" must look like 2MB or 1GB)");
  r.hugepage_limits[0].page_size = "1GB";

  r.unified["../cgroup.procs"] = "1";
  CHECK(problem(s) == R"(linux.resources.unified key "../cgroup.procs" is not a cgroup file name)");
  r.unified.clear();
  r.unified["memory.max"] = "max";

  r.rdma[""] = {};
  CHECK(problem(s) == "linux.resources.rdma device names must not be empty");
  r.rdma.clear();
  CHECK(oci::validate(s));
}

TEST_CASE("seccomp rules", "[oci][validate]") {
  auto s = base();
  auto sc = seccomp_allow();
  sc.default_action = "X";
  lin(s).seccomp = sc;
  CHECK(problem(s) == R"(linux.seccomp.defaultAction "X" is not a seccomp action)");
  sc.default_action = "SCMP_ACT_NOTIFY";
  sc.listener_path = "/run/l.sock";
  lin(s).seccomp = sc;
  CHECK(problem(s) == "linux.seccomp.defaultAction must not be SCMP_ACT_NOTIFY");
  sc.default_action = "SCMP_ACT_KILL_PROCESS";
  sc.default_errno_ret = 1;
  lin(s).seccomp = sc;
  CHECK(problem(s) == "linux.seccomp.defaultErrnoRet requires SCMP_ACT_ERRNO or SCMP_ACT_TRACE");
  sc.default_action = "SCMP_ACT_ERRNO";
  sc.architectures = {"SCMP_ARCH_X86_64", "SCMP_ARCH_Z80"};
  lin(s).seccomp = sc;
  CHECK(problem(s) ==
        R"(linux.seccomp.architectures[1] "SCMP_ARCH_Z80" is not a seccomp architecture)");
  sc.architectures.pop_back();
  sc.flags = {"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", "F"};
  lin(s).seccomp = sc;
  CHECK(problem(s) == R"(linux.seccomp.flags[2] "F" is not a seccomp flag)");
  sc.flags.pop_back();
  lin(s).seccomp = sc;
  CHECK(oci::validate(s));

  sc.syscalls = {syscall("read", "SCMP_ACT_ALLOW"), syscall("write", "SCMP_ACT_BOGUS")};
  lin(s).seccomp = sc;
  CHECK(problem(s) ==
        R"(linux.seccomp.syscalls[1].action "SCMP_ACT_BOGUS" is not a seccomp action)");
  sc.syscalls[1].action = "SCMP_ACT_KILL";
  sc.syscalls[1].errno_ret = 1;
  lin(s).seccomp = sc;
  CHECK(problem(s) ==
        "linux.seccomp.syscalls[1].errnoRet requires SCMP_ACT_ERRNO or SCMP_ACT_TRACE");
  sc.syscalls[1].action = "SCMP_ACT_TRACE";
  lin(s).seccomp = sc;
  CHECK(oci::validate(s));
  sc.syscalls[0].names.clear();
  lin(s).seccomp = sc;
  CHECK(problem(s) == "linux.seccomp.syscalls[0].names must not be empty");
  sc.syscalls[0].names = {"read", ""};
  lin(s).seccomp = sc;
  CHECK(problem(s) == "linux.seccomp.syscalls[0].names[1] must not be empty");
  sc.syscalls[0].names = {"read"};
  sc.syscalls[0].args = {oci::linux_seccomp_arg{0, 1, 0, "SCMP_CMP_EQ"},
                         oci::linux_seccomp_arg{6, 1, 0, "SCMP_CMP_EQ"}};
  lin(s).seccomp = sc;
  CHECK(problem(s) == "linux.seccomp.syscalls[0].args[1].index must be less than 6");
  sc.syscalls[0].args[1] = oci::linux_seccomp_arg{5, 1, 0, "SCMP_CMP_LIKE"};
  lin(s).seccomp = sc;
  CHECK(problem(s) ==
        R"(linux.seccomp.syscalls[0].args[1].op "SCMP_CMP_LIKE" is not a seccomp operator)");
  sc.syscalls[0].args[1].op = "SCMP_CMP_MASKED_EQ";
  sc.syscalls.push_back(syscall("mount", "SCMP_ACT_NOTIFY"));
  sc.listener_path.clear();
  lin(s).seccomp = sc;
  CHECK(problem(s) == "linux.seccomp: SCMP_ACT_NOTIFY requires listenerPath");
  sc.listener_path = "/run/agent.sock";
  lin(s).seccomp = sc;
  CHECK(oci::validate(s));
}

TEST_CASE("validate_all lists every problem in document order", "[oci][validate]") {
  auto s = base();
  s.oci_version = "x";
  proc(s).cwd = "rel";
  lin(s).namespaces.push_back(ns("pid"));
  lin(s).rootfs_propagation = "bad";
  const auto all = oci::validate_all(s);
  REQUIRE(all.size() == 4);
  CHECK(all[0] == R"(ociVersion "x" is not a valid semantic version)");
  CHECK(all[1] == "process.cwd must be an absolute path");
  CHECK(all[2] == R"(linux.namespaces: duplicate namespace "pid")");
  CHECK(all[3] == R"(linux.rootfsPropagation "bad" is invalid)");
  CHECK(problem(s) == all[0]);
  CHECK(oci::validate_all(base()).empty());
}

TEST_CASE("values in messages are quoted and escaped", "[oci][validate]") {
  auto s = base();
  proc(s).capabilities->bounding = {"CAP_\"X\"\n\x01"};
  CHECK(problem(s) ==
        R"(process.capabilities.bounding[0] "CAP_\"X\"\x0a\x01" is not a capability)");
}
