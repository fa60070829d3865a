// The JSON member names of every spec/state aggregate, listed once and used by both the reader
// and the writer (spec_json.hpp). for_each_field(s, f) calls f(name, member, presence) in the
// spec's order; s may be const.
#pragma once

#include <string_view>
#include <type_traits>

#include <katana/oci/spec.hpp>
#include <katana/oci/state.hpp>

namespace katana::inline v0::oci::detail {

enum class presence {
  optional,  // may be missing; written only when set / non-empty / non-zero
  required,  // missing is an error; always written
  always,    // may be missing (zero value); always written, as the Go bindings do
};

template <class S, class T>
concept view_of = std::is_same_v<std::remove_const_t<S>, T>;

constexpr auto opt = presence::optional;
constexpr auto req = presence::required;
constexpr auto always = presence::always;

template <view_of<console_size> S, class F>
void for_each_field(S& s, F&& f) {
  f("height", s.height, req);
  f("width", s.width, req);
}

template <view_of<user> S, class F>
void for_each_field(S& s, F&& f) {
  f("uid", s.uid, always);
  f("gid", s.gid, always);
  f("umask", s.umask, opt);
  f("additionalGids", s.additional_gids, opt);
  f("username", s.username, opt);
}

template <view_of<linux_capabilities> S, class F>
void for_each_field(S& s, F&& f) {
  f("bounding", s.bounding, opt);
  f("effective", s.effective, opt);
  f("inheritable", s.inheritable, opt);
  f("permitted", s.permitted, opt);
  f("ambient", s.ambient, opt);
}

template <view_of<posix_rlimit> S, class F>
void for_each_field(S& s, F&& f) {
  f("type", s.type, req);
  f("hard", s.hard, req);
  f("soft", s.soft, req);
}

template <view_of<scheduler> S, class F>
void for_each_field(S& s, F&& f) {
  f("policy", s.policy, req);
  f("nice", s.nice, opt);
  f("priority", s.priority, opt);
  f("flags", s.flags, opt);
  f("runtime", s.runtime, opt);
  f("deadline", s.deadline, opt);
  f("period", s.period, opt);
}

template <view_of<io_priority> S, class F>
void for_each_field(S& s, F&& f) {
  f("class", s.class_, req);
  f("priority", s.priority, req);
}

template <view_of<exec_cpu_affinity> S, class F>
void for_each_field(S& s, F&& f) {
  f("initial", s.initial, opt);
  f("final", s.final, opt);
}

template <view_of<process> S, class F>
void for_each_field(S& s, F&& f) {
  f("terminal", s.terminal, opt);
  f("consoleSize", s.console_size, opt);
  f("user", s.user, always);
  f("args", s.args, opt);
  f("commandLine", s.command_line, opt);
  f("env", s.env, opt);
  f("cwd", s.cwd, req);
  f("capabilities", s.capabilities, opt);
  f("rlimits", s.rlimits, opt);
  f("noNewPrivileges", s.no_new_privileges, opt);
  f("apparmorProfile", s.apparmor_profile, opt);
  f("oomScoreAdj", s.oom_score_adj, opt);
  f("scheduler", s.scheduler, opt);
  f("selinuxLabel", s.selinux_label, opt);
  f("ioPriority", s.io_priority, opt);
  f("execCPUAffinity", s.exec_cpu_affinity, opt);
}

template <view_of<root> S, class F>
void for_each_field(S& s, F&& f) {
  f("path", s.path, req);
  f("readonly", s.readonly, opt);
}

template <view_of<linux_id_mapping> S, class F>
void for_each_field(S& s, F&& f) {
  f("containerID", s.container_id, req);
  f("hostID", s.host_id, req);
  f("size", s.size, req);
}

template <view_of<mount> S, class F>
void for_each_field(S& s, F&& f) {
  f("destination", s.destination, req);
  f("type", s.type, opt);
  f("source", s.source, opt);
  f("options", s.options, opt);
  f("uidMappings", s.uid_mappings, opt);
  f("gidMappings", s.gid_mappings, opt);
}

template <view_of<hook> S, class F>
void for_each_field(S& s, F&& f) {
  f("path", s.path, req);
  f("args", s.args, opt);
  f("env", s.env, opt);
  f("timeout", s.timeout, opt);
}

template <view_of<hooks> S, class F>
void for_each_field(S& s, F&& f) {
  f("prestart", s.prestart, opt);
  f("createRuntime", s.create_runtime, opt);
  f("createContainer", s.create_container, opt);
  f("startContainer", s.start_container, opt);
  f("poststart", s.poststart, opt);
  f("poststop", s.poststop, opt);
}

template <view_of<linux_namespace> S, class F>
void for_each_field(S& s, F&& f) {
  f("type", s.type, req);
  f("path", s.path, opt);
}

template <view_of<linux_device> S, class F>
void for_each_field(S& s, F&& f) {
  f("path", s.path, req);
  f("type", s.type, req);
  f("major", s.major, always);
  f("minor", s.minor, always);
  f("fileMode", s.file_mode, opt);
  f("uid", s.uid, opt);
  f("gid", s.gid, opt);
}

template <view_of<linux_seccomp_arg> S, class F>
void for_each_field(S& s, F&& f) {
  f("index", s.index, req);
  f("value", s.value, req);
  f("valueTwo", s.value_two, opt);
  f("op", s.op, req);
}

template <view_of<linux_syscall> S, class F>
void for_each_field(S& s, F&& f) {
  f("names", s.names, req);
  f("action", s.action, req);
  f("errnoRet", s.errno_ret, opt);
  f("args", s.args, opt);
}

template <view_of<linux_seccomp> S, class F>
void for_each_field(S& s, F&& f) {
  f("defaultAction", s.default_action, req);
  f("defaultErrnoRet", s.default_errno_ret, opt);
  f("architectures", s.architectures, opt);
  f("flags", s.flags, opt);
  f("listenerPath", s.listener_path, opt);
  f("listenerMetadata", s.listener_metadata, opt);
  f("syscalls", s.syscalls, opt);
}

template <view_of<linux_intel_rdt> S, class F>
void for_each_field(S& s, F&& f) {
  f("closID", s.clos_id, opt);
  f("schemata", s.schemata, opt);
  f("l3CacheSchema", s.l3_cache_schema, opt);
  f("memBwSchema", s.mem_bw_schema, opt);
  f("enableCMT", s.enable_cmt, opt);
  f("enableMBM", s.enable_mbm, opt);
}

template <view_of<linux_personality> S, class F>
void for_each_field(S& s, F&& f) {
  f("domain", s.domain, req);
  f("flags", s.flags, opt);
}

template <view_of<linux_time_offset> S, class F>
void for_each_field(S& s, F&& f) {
  f("secs", s.secs, opt);
  f("nanosecs", s.nanosecs, opt);
}

template <view_of<linux_device_cgroup> S, class F>
void for_each_field(S& s, F&& f) {
  f("allow", s.allow, req);
  f("type", s.type, opt);
  f("major", s.major, opt);
  f("minor", s.minor, opt);
  f("access", s.access, opt);
}

template <view_of<linux_memory> S, class F>
void for_each_field(S& s, F&& f) {
  f("limit", s.limit, opt);
  f("reservation", s.reservation, opt);
  f("swap", s.swap, opt);
  f("kernel", s.kernel, opt);
  f("kernelTCP", s.kernel_tcp, opt);
  f("swappiness", s.swappiness, opt);
  f("disableOOMKiller", s.disable_oom_killer, opt);
  f("useHierarchy", s.use_hierarchy, opt);
  f("checkBeforeUpdate", s.check_before_update, opt);
}

template <view_of<linux_cpu> S, class F>
void for_each_field(S& s, F&& f) {
  f("shares", s.shares, opt);
  f("quota", s.quota, opt);
  f("burst", s.burst, opt);
  f("period", s.period, opt);
  f("realtimeRuntime", s.realtime_runtime, opt);
  f("realtimePeriod", s.realtime_period, opt);
  f("cpus", s.cpus, opt);
  f("mems", s.mems, opt);
  f("idle", s.idle, opt);
}

template <view_of<linux_pids> S, class F>
void for_each_field(S& s, F&& f) {
  f("limit", s.limit, req);
}

template <view_of<linux_weight_device> S, class F>
void for_each_field(S& s, F&& f) {
  f("major", s.major, req);
  f("minor", s.minor, req);
  f("weight", s.weight, opt);
  f("leafWeight", s.leaf_weight, opt);
}

template <view_of<linux_throttle_device> S, class F>
void for_each_field(S& s, F&& f) {
  f("major", s.major, req);
  f("minor", s.minor, req);
  f("rate", s.rate, req);
}

template <view_of<linux_block_io> S, class F>
void for_each_field(S& s, F&& f) {
  f("weight", s.weight, opt);
  f("leafWeight", s.leaf_weight, opt);
  f("weightDevice", s.weight_device, opt);
  f("throttleReadBpsDevice", s.throttle_read_bps_device, opt);
  f("throttleWriteBpsDevice", s.throttle_write_bps_device, opt);
  f("throttleReadIOPSDevice", s.throttle_read_iops_device, opt);
  f("throttleWriteIOPSDevice", s.throttle_write_iops_device, opt);
}

template <view_of<linux_hugepage_limit> S, class F>
void for_each_field(S& s, F&& f) {
  f("pageSize", s.page_size, req);
  f("limit", s.limit, req);
}

template <view_of<linux_interface_priority> S, class F>
void for_each_field(S& s, F&& f) {
  f("name", s.name, req);
  f("priority", s.priority, req);
}

template <view_of<linux_network> S, class F>
void for_each_field(S& s, F&& f) {
  f("classID", s.class_id, opt);
  f("priorities", s.priorities, opt);
}

template <view_of<linux_rdma> S, class F>
void for_each_field(S& s, F&& f) {
  f("hcaHandles", s.hca_handles, opt);
  f("hcaObjects", s.hca_objects, opt);
}

template <view_of<linux_resources> S, class F>
void for_each_field(S& s, F&& f) {
  f("devices", s.devices, opt);
  f("memory", s.memory, opt);
  f("cpu", s.cpu, opt);
  f("pids", s.pids, opt);
  f("blockIO", s.block_io, opt);
  f("hugepageLimits", s.hugepage_limits, opt);
  f("network", s.network, opt);
  f("rdma", s.rdma, opt);
  f("unified", s.unified, opt);
}

template <view_of<linux_spec> S, class F>
void for_each_field(S& s, F&& f) {
  f("uidMappings", s.uid_mappings, opt);
  f("gidMappings", s.gid_mappings, opt);
  f("sysctl", s.sysctl, opt);
  f("resources", s.resources, opt);
  f("cgroupsPath", s.cgroups_path, opt);
  f("namespaces", s.namespaces, opt);
  f("devices", s.devices, opt);
  f("seccomp", s.seccomp, opt);
  f("rootfsPropagation", s.rootfs_propagation, opt);
  f("maskedPaths", s.masked_paths, opt);
  f("readonlyPaths", s.readonly_paths, opt);
  f("mountLabel", s.mount_label, opt);
  f("intelRdt", s.intel_rdt, opt);
  f("personality", s.personality, opt);
  f("timeOffsets", s.time_offsets, opt);
}

template <view_of<spec> S, class F>
void for_each_field(S& s, F&& f) {
  f("ociVersion", s.oci_version, req);
  f("process", s.process, opt);
  f("root", s.root, opt);
  f("hostname", s.hostname, opt);
  f("domainname", s.domainname, opt);
  f("mounts", s.mounts, opt);
  f("hooks", s.hooks, opt);
  f("annotations", s.annotations, opt);
  f("linux", s.linux_, opt);
}

template <view_of<state> S, class F>
void for_each_field(S& s, F&& f) {
  f("ociVersion", s.oci_version, req);
  f("id", s.id, req);
  f("status", s.status, req);
  f("pid", s.pid, opt);
  f("bundle", s.bundle, req);
  f("annotations", s.annotations, opt);
}

}  // namespace katana::inline v0::oci::detail
