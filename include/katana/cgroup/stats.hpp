// cgroup::stats: what has_stats managers report (runc's cgroups.Stats, youki's Stats), the
// same shape on v1 and v2. Counters a host does not provide stay 0.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include <katana/config.hpp>

namespace katana::inline v0::cgroup {

/// A limit that is not set: v2's "max", v1's page-counter maximum (9223372036854771712).
inline constexpr std::uint64_t unlimited = std::numeric_limits<std::uint64_t>::max();

struct cpu_usage {
  std::uint64_t total_ns = 0;
  std::uint64_t user_ns = 0;
  std::uint64_t system_ns = 0;
  /// One entry per possible CPU (v1 cpuacct.usage_percpu); empty on v2, which has none.
  std::vector<std::uint64_t> per_cpu_ns;
  bool operator==(const cpu_usage&) const = default;
};

struct cpu_throttling {
  std::uint64_t periods = 0;
  std::uint64_t throttled_periods = 0;
  std::uint64_t throttled_time_ns = 0;
  bool operator==(const cpu_throttling&) const = default;
};

struct cpu_stats {
  cpu_usage usage;
  cpu_throttling throttling;
  bool operator==(const cpu_stats&) const = default;
};

struct memory_stats {
  std::uint64_t usage = 0;      // bytes charged now (memory.usage_in_bytes / memory.current)
  std::uint64_t max_usage = 0;  // high-water mark (memory.max_usage_in_bytes / memory.peak)
  std::uint64_t limit = unlimited;
  std::uint64_t failcnt = 0;  // times the limit was hit (v2: memory.events "max")
  std::uint64_t cache = 0;    // page cache (v2: memory.stat "file")
  std::uint64_t rss = 0;      // anonymous memory (v2: memory.stat "anon")
  std::uint64_t swap_usage = 0;
  std::uint64_t swap_limit = unlimited;  // v1: memory+swap limit; v2: memory.swap.max
  /// memory.stat verbatim, for whatever the fields above do not name.
  std::map<std::string, std::uint64_t, std::less<>> stat;
  bool operator==(const memory_stats&) const = default;
};

struct pids_stats {
  std::uint64_t current = 0;
  std::uint64_t limit = unlimited;
  bool operator==(const pids_stats&) const = default;
};

/// One line of blkio.io_service_bytes(_recursive) or one field of io.stat.
struct blkio_entry {
  std::uint64_t major = 0;
  std::uint64_t minor = 0;
  std::string op;  // "Read", "Write", "Sync", "Async", "Discard"
  std::uint64_t value = 0;
  bool operator==(const blkio_entry&) const = default;
};

struct blkio_stats {
  std::vector<blkio_entry> io_service_bytes;
  std::vector<blkio_entry> io_serviced;
  bool operator==(const blkio_stats&) const = default;
};

struct hugetlb_stats {
  std::uint64_t usage = 0;
  std::uint64_t max_usage = 0;  // v1 only
  std::uint64_t failcnt = 0;    // v2: hugetlb.<size>.events "max"
  bool operator==(const hugetlb_stats&) const = default;
};

struct stats {
  cpu_stats cpu;
  memory_stats memory;
  pids_stats pids;
  blkio_stats blkio;
  std::map<std::string, hugetlb_stats, std::less<>> hugetlb;  // by page size: "2MB"
  std::uint64_t oom_kill_count = 0;
  bool operator==(const stats&) const = default;
};

}  // namespace katana::inline v0::cgroup
