// The OCI runtime-spec 1.2 config.json as plain aggregates (Linux parts; the windows, solaris,
// vm and zos sections are not modelled and are ignored when parsing). JSON lives in
// spec_json.hpp, checks in validate.hpp.
//
// Representation, following the Go bindings' zero values (as Kata's `oci` crate does):
//  - objects and scalars whose absence means something (Go pointers) are std::optional;
//  - strings, arrays and maps for which empty and absent are the same are plain and are
//    written only when non-empty; likewise bools that default to false and Go's omitempty
//    numbers (written only when non-zero);
//  - closed vocabularies (capabilities, namespace types, seccomp actions ...) stay strings so
//    that a spec round-trips and validation can name the bad value; names.hpp maps them.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <katana/config.hpp>

namespace katana::inline v0::oci {

/// The runtime-spec version katana implements and writes.
inline constexpr std::string_view spec_version = "1.2.0";

using string_map = std::map<std::string, std::string>;

// ---- process ----------------------------------------------------------------------------------

struct console_size {
  std::uint32_t height = 0;
  std::uint32_t width = 0;
  bool operator==(const console_size&) const = default;
};

struct user {
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::optional<std::uint32_t> umask;
  std::vector<std::uint32_t> additional_gids;
  std::string username;  // Windows only
  bool operator==(const user&) const = default;
};

struct linux_capabilities {
  std::vector<std::string> bounding;
  std::vector<std::string> effective;
  std::vector<std::string> inheritable;
  std::vector<std::string> permitted;
  std::vector<std::string> ambient;
  bool operator==(const linux_capabilities&) const = default;
};

struct posix_rlimit {
  std::string type;  // "RLIMIT_NOFILE"
  std::uint64_t hard = 0;
  std::uint64_t soft = 0;
  bool operator==(const posix_rlimit&) const = default;
};

/// sched_setattr(2) parameters (runtime-spec 1.1).
struct scheduler {
  std::string policy;  // "SCHED_OTHER"
  std::int32_t nice = 0;
  std::int32_t priority = 0;
  std::vector<std::string> flags;
  std::uint64_t runtime = 0;  // SCHED_DEADLINE only, nanoseconds
  std::uint64_t deadline = 0;
  std::uint64_t period = 0;
  bool operator==(const scheduler&) const = default;
};

/// ioprio_set(2) of the container process (runtime-spec 1.2).
struct io_priority {
  std::string class_;  // "IOPRIO_CLASS_BE"; class_: `class` is a keyword
  int priority = 0;
  bool operator==(const io_priority&) const = default;
};

/// CPU affinity while exec'ing the process and after (runtime-spec 1.2), in cpuset list
/// syntax ("0-3,7").
struct exec_cpu_affinity {
  std::string initial;
  std::string final;
  bool operator==(const exec_cpu_affinity&) const = default;
};

struct process {
  bool terminal = false;
  std::optional<oci::console_size> console_size;
  oci::user user;
  std::vector<std::string> args;
  std::string command_line;  // Windows only
  std::vector<std::string> env;
  std::string cwd;
  std::optional<linux_capabilities> capabilities;
  std::vector<posix_rlimit> rlimits;
  bool no_new_privileges = false;
  std::string apparmor_profile;
  std::optional<int> oom_score_adj;
  std::optional<oci::scheduler> scheduler;
  std::string selinux_label;
  std::optional<oci::io_priority> io_priority;
  std::optional<oci::exec_cpu_affinity> exec_cpu_affinity;
  bool operator==(const process&) const = default;
};

// ---- root, mounts, hooks ----------------------------------------------------------------------

struct root {
  std::string path;
  bool readonly = false;
  bool operator==(const root&) const = default;
};

struct linux_id_mapping {
  std::uint32_t container_id = 0;
  std::uint32_t host_id = 0;
  std::uint32_t size = 0;
  bool operator==(const linux_id_mapping&) const = default;
};

struct mount {
  std::string destination;
  std::string type;
  std::string source;
  std::vector<std::string> options;
  std::vector<linux_id_mapping> uid_mappings;  // idmapped mount (runtime-spec 1.1)
  std::vector<linux_id_mapping> gid_mappings;
  bool operator==(const mount&) const = default;
};

struct hook {
  std::string path;
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::optional<int> timeout;  // seconds
  bool operator==(const hook&) const = default;
};

struct hooks {
  std::vector<hook> prestart;  // deprecated by the spec, still run by runtimes
  std::vector<hook> create_runtime;
  std::vector<hook> create_container;
  std::vector<hook> start_container;
  std::vector<hook> poststart;
  std::vector<hook> poststop;
  bool operator==(const hooks&) const = default;
};

// ---- linux: namespaces, devices, seccomp ------------------------------------------------------

struct linux_namespace {
  std::string type;  // "pid", "network", ... (names.hpp)
  std::string path;  // join this namespace instead of creating one
  bool operator==(const linux_namespace&) const = default;
};

/// A device node to create in the container.
struct linux_device {
  std::string path;
  std::string type;  // c, b, u or p
  std::int64_t major = 0;
  std::int64_t minor = 0;
  std::optional<std::uint32_t> file_mode;
  std::optional<std::uint32_t> uid;
  std::optional<std::uint32_t> gid;
  bool operator==(const linux_device&) const = default;
};

struct linux_seccomp_arg {
  std::uint32_t index = 0;
  std::uint64_t value = 0;
  std::uint64_t value_two = 0;
  std::string op;  // "SCMP_CMP_EQ"
  bool operator==(const linux_seccomp_arg&) const = default;
};

struct linux_syscall {
  std::vector<std::string> names;
  std::string action;  // "SCMP_ACT_ERRNO"
  std::optional<std::uint32_t> errno_ret;
  std::vector<linux_seccomp_arg> args;
  bool operator==(const linux_syscall&) const = default;
};

struct linux_seccomp {
  std::string default_action;
  std::optional<std::uint32_t> default_errno_ret;
  std::vector<std::string> architectures;
  std::vector<std::string> flags;
  std::string listener_path;
  std::string listener_metadata;
  std::vector<linux_syscall> syscalls;
  bool operator==(const linux_seccomp&) const = default;
};

struct linux_intel_rdt {
  std::string clos_id;
  std::string schemata;
  std::string l3_cache_schema;
  std::string mem_bw_schema;
  bool enable_cmt = false;
  bool enable_mbm = false;
  bool operator==(const linux_intel_rdt&) const = default;
};

struct linux_personality {
  std::string domain;  // LINUX or LINUX32
  std::vector<std::string> flags;
  bool operator==(const linux_personality&) const = default;
};

/// A time namespace clock offset (runtime-spec 1.1).
struct linux_time_offset {
  std::int64_t secs = 0;
  std::uint32_t nanosecs = 0;
  bool operator==(const linux_time_offset&) const = default;
};

// ---- linux: resources (cgroups) ---------------------------------------------------------------

/// A device cgroup rule.
struct linux_device_cgroup {
  bool allow = false;
  std::string type;  // a, c or b; empty means all
  std::optional<std::int64_t> major;
  std::optional<std::int64_t> minor;
  std::string access;  // subset of "rwm"
  bool operator==(const linux_device_cgroup&) const = default;
};

struct linux_memory {
  std::optional<std::int64_t> limit;
  std::optional<std::int64_t> reservation;
  std::optional<std::int64_t> swap;
  std::optional<std::int64_t> kernel;  // deprecated by the spec
  std::optional<std::int64_t> kernel_tcp;
  std::optional<std::uint64_t> swappiness;
  std::optional<bool> disable_oom_killer;
  std::optional<bool> use_hierarchy;
  std::optional<bool> check_before_update;
  bool operator==(const linux_memory&) const = default;
};

struct linux_cpu {
  std::optional<std::uint64_t> shares;
  std::optional<std::int64_t> quota;
  std::optional<std::uint64_t> burst;
  std::optional<std::uint64_t> period;
  std::optional<std::int64_t> realtime_runtime;
  std::optional<std::uint64_t> realtime_period;
  std::string cpus;
  std::string mems;
  std::optional<std::int64_t> idle;
  bool operator==(const linux_cpu&) const = default;
};

struct linux_pids {
  std::int64_t limit = 0;
  bool operator==(const linux_pids&) const = default;
};

struct linux_weight_device {
  std::int64_t major = 0;
  std::int64_t minor = 0;
  std::optional<std::uint16_t> weight;
  std::optional<std::uint16_t> leaf_weight;
  bool operator==(const linux_weight_device&) const = default;
};

struct linux_throttle_device {
  std::int64_t major = 0;
  std::int64_t minor = 0;
  std::uint64_t rate = 0;
  bool operator==(const linux_throttle_device&) const = default;
};

struct linux_block_io {
  std::optional<std::uint16_t> weight;
  std::optional<std::uint16_t> leaf_weight;
  std::vector<linux_weight_device> weight_device;
  std::vector<linux_throttle_device> throttle_read_bps_device;
  std::vector<linux_throttle_device> throttle_write_bps_device;
  std::vector<linux_throttle_device> throttle_read_iops_device;
  std::vector<linux_throttle_device> throttle_write_iops_device;
  bool operator==(const linux_block_io&) const = default;
};

struct linux_hugepage_limit {
  std::string page_size;  // "2MB"
  std::uint64_t limit = 0;
  bool operator==(const linux_hugepage_limit&) const = default;
};

struct linux_interface_priority {
  std::string name;
  std::uint32_t priority = 0;
  bool operator==(const linux_interface_priority&) const = default;
};

struct linux_network {
  std::optional<std::uint32_t> class_id;
  std::vector<linux_interface_priority> priorities;
  bool operator==(const linux_network&) const = default;
};

struct linux_rdma {
  std::optional<std::uint32_t> hca_handles;
  std::optional<std::uint32_t> hca_objects;
  bool operator==(const linux_rdma&) const = default;
};

struct linux_resources {
  std::vector<linux_device_cgroup> devices;
  std::optional<linux_memory> memory;
  std::optional<linux_cpu> cpu;
  std::optional<linux_pids> pids;
  std::optional<linux_block_io> block_io;
  std::vector<linux_hugepage_limit> hugepage_limits;
  std::optional<linux_network> network;
  std::map<std::string, linux_rdma> rdma;  // by device name
  string_map unified;                      // cgroup v2 file name -> value
  bool operator==(const linux_resources&) const = default;
};

// ---- linux, spec ------------------------------------------------------------------------------

struct linux_spec {
  std::vector<linux_id_mapping> uid_mappings;
  std::vector<linux_id_mapping> gid_mappings;
  string_map sysctl;
  std::optional<linux_resources> resources;
  std::string cgroups_path;
  std::vector<linux_namespace> namespaces;
  std::vector<linux_device> devices;
  std::optional<linux_seccomp> seccomp;
  std::string rootfs_propagation;
  std::vector<std::string> masked_paths;
  std::vector<std::string> readonly_paths;
  std::string mount_label;
  std::optional<linux_intel_rdt> intel_rdt;
  std::optional<linux_personality> personality;
  std::map<std::string, linux_time_offset> time_offsets;  // "monotonic", "boottime"
  bool operator==(const linux_spec&) const = default;
};

/// config.json.
struct spec {
  std::string oci_version;
  std::optional<oci::process> process;
  std::optional<oci::root> root;
  std::string hostname;
  std::string domainname;
  std::vector<mount> mounts;
  std::optional<oci::hooks> hooks;
  string_map annotations;
  // linux_: `linux` is a predefined macro under -std=gnu++XX.
  std::optional<linux_spec> linux_;
  bool operator==(const spec&) const = default;
};

}  // namespace katana::inline v0::oci
