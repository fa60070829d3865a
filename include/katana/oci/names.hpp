// The closed vocabularies of runtime-spec 1.2 (capabilities, rlimits, namespaces, seccomp,
// propagation, ...) as constexpr tables sorted by name, with their kernel/libseccomp values.
// The spec stores these as strings; validate.hpp checks them here and the container engine
// maps them to numbers here, so both agree on one list.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include <katana/config.hpp>

namespace katana::inline v0::oci {

/// One entry of a name table: the spec's spelling and what it means to the kernel.
template <class V>
struct named {
  std::string_view name;
  V value;
};

namespace detail {
template <class V, std::size_t N>
constexpr bool sorted_by_name(const std::array<named<V>, N>& table) {
  for (std::size_t i = 1; i < N; ++i) {
    if (!(table[i - 1].name < table[i].name)) {
      return false;
    }
  }
  return true;
}
}  // namespace detail

/// Binary search of a table sorted by name.
template <class V, std::size_t N>
constexpr std::optional<V> lookup(const std::array<named<V>, N>& table, std::string_view name) {
  auto it = std::lower_bound(table.begin(), table.end(), name,
                             [](const named<V>& e, std::string_view n) { return e.name < n; });
  if (it != table.end() && it->name == name) {
    return it->value;
  }
  return std::nullopt;
}

/// Reverse lookup (linear; the tables are small). Empty when the value has no name.
template <class V, std::size_t N>
constexpr std::string_view name_of(const std::array<named<V>, N>& table, V value) {
  for (const auto& e : table) {
    if (e.value == value) {
      return e.name;
    }
  }
  return {};
}

// ---- capabilities (linux/capability.h) -------------------------------------------------------
inline constexpr int last_capability = 40;  // CAP_CHECKPOINT_RESTORE, Linux 5.9

inline constexpr std::array<named<int>, 41> capabilities{{
    {"CAP_AUDIT_CONTROL", 30},  {"CAP_AUDIT_READ", 37},   {"CAP_AUDIT_WRITE", 29},
    {"CAP_BLOCK_SUSPEND", 36},  {"CAP_BPF", 39},          {"CAP_CHECKPOINT_RESTORE", 40},
    {"CAP_CHOWN", 0},           {"CAP_DAC_OVERRIDE", 1},  {"CAP_DAC_READ_SEARCH", 2},
    {"CAP_FOWNER", 3},          {"CAP_FSETID", 4},        {"CAP_IPC_LOCK", 14},
    {"CAP_IPC_OWNER", 15},      {"CAP_KILL", 5},          {"CAP_LEASE", 28},
    {"CAP_LINUX_IMMUTABLE", 9}, {"CAP_MAC_ADMIN", 33},    {"CAP_MAC_OVERRIDE", 32},
    {"CAP_MKNOD", 27},          {"CAP_NET_ADMIN", 12},    {"CAP_NET_BIND_SERVICE", 10},
    {"CAP_NET_BROADCAST", 11},  {"CAP_NET_RAW", 13},      {"CAP_PERFMON", 38},
    {"CAP_SETFCAP", 31},        {"CAP_SETGID", 6},        {"CAP_SETPCAP", 8},
    {"CAP_SETUID", 7},          {"CAP_SYSLOG", 34},       {"CAP_SYS_ADMIN", 21},
    {"CAP_SYS_BOOT", 22},       {"CAP_SYS_CHROOT", 18},   {"CAP_SYS_MODULE", 16},
    {"CAP_SYS_NICE", 23},       {"CAP_SYS_PACCT", 20},    {"CAP_SYS_PTRACE", 19},
    {"CAP_SYS_RAWIO", 17},      {"CAP_SYS_RESOURCE", 24}, {"CAP_SYS_TIME", 25},
    {"CAP_SYS_TTY_CONFIG", 26}, {"CAP_WAKE_ALARM", 35},
}};
static_assert(detail::sorted_by_name(capabilities));

constexpr std::optional<int> capability_number(std::string_view name) {
  return lookup(capabilities, name);
}
constexpr std::string_view capability_name(int number) {
  return name_of(capabilities, number);
}

// ---- rlimits (asm-generic/resource.h) ---------------------------------------------------------
inline constexpr std::array<named<int>, 16> rlimits{{
    {"RLIMIT_AS", 9},
    {"RLIMIT_CORE", 4},
    {"RLIMIT_CPU", 0},
    {"RLIMIT_DATA", 2},
    {"RLIMIT_FSIZE", 1},
    {"RLIMIT_LOCKS", 10},
    {"RLIMIT_MEMLOCK", 8},
    {"RLIMIT_MSGQUEUE", 12},
    {"RLIMIT_NICE", 13},
    {"RLIMIT_NOFILE", 7},
    {"RLIMIT_NPROC", 6},
    {"RLIMIT_RSS", 5},
    {"RLIMIT_RTPRIO", 14},
    {"RLIMIT_RTTIME", 15},
    {"RLIMIT_SIGPENDING", 11},
    {"RLIMIT_STACK", 3},
}};
static_assert(detail::sorted_by_name(rlimits));

constexpr std::optional<int> rlimit_resource(std::string_view name) {
  return lookup(rlimits, name);
}

// ---- namespaces -------------------------------------------------------------------------------
enum class namespace_type { cgroup, ipc, mount, network, pid, time, user, uts };

inline constexpr std::array<named<namespace_type>, 8> namespace_types{{
    {"cgroup", namespace_type::cgroup},
    {"ipc", namespace_type::ipc},
    {"mount", namespace_type::mount},
    {"network", namespace_type::network},
    {"pid", namespace_type::pid},
    {"time", namespace_type::time},
    {"user", namespace_type::user},
    {"uts", namespace_type::uts},
}};
static_assert(detail::sorted_by_name(namespace_types));

constexpr std::optional<namespace_type> parse_namespace_type(std::string_view name) {
  return lookup(namespace_types, name);
}
constexpr std::string_view to_string(namespace_type t) {
  return name_of(namespace_types, t);
}

/// CLONE_NEW* flag of a namespace type (linux/sched.h).
constexpr std::uint64_t clone_flag(namespace_type t) {
  switch (t) {
    case namespace_type::cgroup:
      return 0x02000000;
    case namespace_type::ipc:
      return 0x08000000;
    case namespace_type::mount:
      return 0x00020000;
    case namespace_type::network:
      return 0x40000000;
    case namespace_type::pid:
      return 0x20000000;
    case namespace_type::time:
      return 0x00000080;
    case namespace_type::user:
      return 0x10000000;
    case namespace_type::uts:
      return 0x04000000;
  }
  return 0;
}

/// The entry name under /proc/<pid>/ns/ (which differs from the spec's name for two types).
constexpr std::string_view proc_ns_name(namespace_type t) {
  switch (t) {
    case namespace_type::mount:
      return "mnt";
    case namespace_type::network:
      return "net";
    default:
      return to_string(t);
  }
}

// ---- seccomp ----------------------------------------------------------------------------------
// errno_: `errno` is a macro.
enum class seccomp_action {
  kill,
  kill_process,
  kill_thread,
  trap,
  errno_,
  trace,
  allow,
  log,
  notify
};

inline constexpr std::array<named<seccomp_action>, 9> seccomp_actions{{
    {"SCMP_ACT_ALLOW", seccomp_action::allow},
    {"SCMP_ACT_ERRNO", seccomp_action::errno_},
    {"SCMP_ACT_KILL", seccomp_action::kill},
    {"SCMP_ACT_KILL_PROCESS", seccomp_action::kill_process},
    {"SCMP_ACT_KILL_THREAD", seccomp_action::kill_thread},
    {"SCMP_ACT_LOG", seccomp_action::log},
    {"SCMP_ACT_NOTIFY", seccomp_action::notify},
    {"SCMP_ACT_TRACE", seccomp_action::trace},
    {"SCMP_ACT_TRAP", seccomp_action::trap},
}};
static_assert(detail::sorted_by_name(seccomp_actions));

constexpr std::optional<seccomp_action> parse_seccomp_action(std::string_view name) {
  return lookup(seccomp_actions, name);
}

enum class seccomp_operator { ne, lt, le, eq, ge, gt, masked_eq };

inline constexpr std::array<named<seccomp_operator>, 7> seccomp_operators{{
    {"SCMP_CMP_EQ", seccomp_operator::eq},
    {"SCMP_CMP_GE", seccomp_operator::ge},
    {"SCMP_CMP_GT", seccomp_operator::gt},
    {"SCMP_CMP_LE", seccomp_operator::le},
    {"SCMP_CMP_LT", seccomp_operator::lt},
    {"SCMP_CMP_MASKED_EQ", seccomp_operator::masked_eq},
    {"SCMP_CMP_NE", seccomp_operator::ne},
}};
static_assert(detail::sorted_by_name(seccomp_operators));

constexpr std::optional<seccomp_operator> parse_seccomp_operator(std::string_view name) {
  return lookup(seccomp_operators, name);
}

/// Spec architecture names and libseccomp's (seccomp_arch_resolve_name) spelling of each.
inline constexpr std::array<named<std::string_view>, 23> seccomp_architectures{{
    {"SCMP_ARCH_AARCH64", "aarch64"},
    {"SCMP_ARCH_ARM", "arm"},
    {"SCMP_ARCH_LOONGARCH64", "loongarch64"},
    {"SCMP_ARCH_M68K", "m68k"},
    {"SCMP_ARCH_MIPS", "mips"},
    {"SCMP_ARCH_MIPS64", "mips64"},
    {"SCMP_ARCH_MIPS64N32", "mips64n32"},
    {"SCMP_ARCH_MIPSEL", "mipsel"},
    {"SCMP_ARCH_MIPSEL64", "mipsel64"},
    {"SCMP_ARCH_MIPSEL64N32", "mipsel64n32"},
    {"SCMP_ARCH_PARISC", "parisc"},
    {"SCMP_ARCH_PARISC64", "parisc64"},
    {"SCMP_ARCH_PPC", "ppc"},
    {"SCMP_ARCH_PPC64", "ppc64"},
    {"SCMP_ARCH_PPC64LE", "ppc64le"},
    {"SCMP_ARCH_RISCV64", "riscv64"},
    {"SCMP_ARCH_S390", "s390"},
    {"SCMP_ARCH_S390X", "s390x"},
    {"SCMP_ARCH_SH", "sh"},
    {"SCMP_ARCH_SHEB", "sheb"},
    {"SCMP_ARCH_X32", "x32"},
    {"SCMP_ARCH_X86", "x86"},
    {"SCMP_ARCH_X86_64", "x86_64"},
}};
static_assert(detail::sorted_by_name(seccomp_architectures));

constexpr std::optional<std::string_view> libseccomp_arch_name(std::string_view name) {
  return lookup(seccomp_architectures, name);
}

/// seccomp(2) SECCOMP_FILTER_FLAG_* bits.
inline constexpr std::array<named<std::uint32_t>, 4> seccomp_flags{{
    {"SECCOMP_FILTER_FLAG_LOG", 2},
    {"SECCOMP_FILTER_FLAG_SPEC_ALLOW", 4},
    {"SECCOMP_FILTER_FLAG_TSYNC", 1},
    {"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", 32},
}};
static_assert(detail::sorted_by_name(seccomp_flags));

constexpr std::optional<std::uint32_t> seccomp_flag(std::string_view name) {
  return lookup(seccomp_flags, name);
}

// ---- mounts -----------------------------------------------------------------------------------
/// linux.rootfsPropagation values as mount(2) flags (MS_REC = 0x4000).
inline constexpr std::array<named<std::uint64_t>, 8> propagation_modes{{
    {"private", 0x40000},
    {"rprivate", 0x44000},
    {"rshared", 0x104000},
    {"rslave", 0x84000},
    {"runbindable", 0x24000},
    {"shared", 0x100000},
    {"slave", 0x80000},
    {"unbindable", 0x20000},
}};
static_assert(detail::sorted_by_name(propagation_modes));

constexpr std::optional<std::uint64_t> propagation_flags(std::string_view name) {
  return lookup(propagation_modes, name);
}

// ---- process scheduling -----------------------------------------------------------------------
/// ioprio_set(2) classes.
inline constexpr std::array<named<int>, 3> io_priority_classes{{
    {"IOPRIO_CLASS_BE", 2},
    {"IOPRIO_CLASS_IDLE", 3},
    {"IOPRIO_CLASS_RT", 1},
}};
static_assert(detail::sorted_by_name(io_priority_classes));

constexpr std::optional<int> io_priority_class(std::string_view name) {
  return lookup(io_priority_classes, name);
}

/// sched_setattr(2) policies.
inline constexpr std::array<named<int>, 7> scheduler_policies{{
    {"SCHED_BATCH", 3},
    {"SCHED_DEADLINE", 6},
    {"SCHED_FIFO", 1},
    {"SCHED_IDLE", 5},
    {"SCHED_ISO", 4},
    {"SCHED_OTHER", 0},
    {"SCHED_RR", 2},
}};
static_assert(detail::sorted_by_name(scheduler_policies));

constexpr std::optional<int> scheduler_policy(std::string_view name) {
  return lookup(scheduler_policies, name);
}

/// sched_setattr(2) SCHED_FLAG_* bits.
inline constexpr std::array<named<std::uint64_t>, 7> scheduler_flags{{
    {"SCHED_FLAG_DL_OVERRUN", 0x04},
    {"SCHED_FLAG_KEEP_PARAMS", 0x10},
    {"SCHED_FLAG_KEEP_POLICY", 0x08},
    {"SCHED_FLAG_RECLAIM", 0x02},
    {"SCHED_FLAG_RESET_ON_FORK", 0x01},
    {"SCHED_FLAG_UTIL_CLAMP_MAX", 0x40},
    {"SCHED_FLAG_UTIL_CLAMP_MIN", 0x20},
}};
static_assert(detail::sorted_by_name(scheduler_flags));

constexpr std::optional<std::uint64_t> scheduler_flag(std::string_view name) {
  return lookup(scheduler_flags, name);
}

/// personality(2) domains.
inline constexpr std::array<named<std::uint32_t>, 2> personality_domains{{
    {"LINUX", 0x0000},
    {"LINUX32", 0x0008},
}};
static_assert(detail::sorted_by_name(personality_domains));

constexpr std::optional<std::uint32_t> personality_domain(std::string_view name) {
  return lookup(personality_domains, name);
}

/// linux.timeOffsets keys and the clock each offsets (CLOCK_MONOTONIC, CLOCK_BOOTTIME).
inline constexpr std::array<named<int>, 2> time_offset_clocks{{
    {"boottime", 7},
    {"monotonic", 1},
}};
static_assert(detail::sorted_by_name(time_offset_clocks));

constexpr std::optional<int> time_offset_clock(std::string_view name) {
  return lookup(time_offset_clocks, name);
}

}  // namespace katana::inline v0::oci
