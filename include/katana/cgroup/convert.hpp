// Pure v1 -> v2 value conversions, as runc and crun do them (libcontainer/cgroups/utils.go).
#pragma once

#include <algorithm>
#include <cstdint>

#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/core/str_cat.hpp>

namespace katana::inline v0::cgroup {

inline constexpr std::uint64_t min_cpu_shares = 2;
inline constexpr std::uint64_t max_cpu_shares = 262144;

/// cpu.shares [2, 262144] -> cpu.weight [1, 10000]: 1 + ((shares - 2) * 9999) / 262142.
/// 0 (unset) stays 0; out-of-range shares are clamped first.
constexpr std::uint64_t cpu_shares_to_weight(std::uint64_t shares) noexcept {
  if (shares == 0) {
    return 0;
  }
  shares = std::clamp(shares, min_cpu_shares, max_cpu_shares);
  return 1 + ((shares - 2) * 9999) / 262142;
}

/// blkio.weight [10, 1000] -> io.weight [1, 10000]: 1 + (weight - 10) * 9999 / 990.
constexpr std::uint64_t blkio_weight_to_io_weight(std::uint64_t weight) noexcept {
  if (weight == 0) {
    return 0;
  }
  weight = std::clamp<std::uint64_t>(weight, 10, 1000);
  return 1 + (weight - 10) * 9999 / 990;
}

/// OCI memory.swap is memory+swap (the v1 memsw limit); v2's memory.swap.max is swap alone.
/// runc's ConvertMemorySwapToCgroupV2Value: -1 is "max", 0 is unset (kept as is), and with
/// memory unlimited and swap unset both become unlimited (-1). Otherwise swap - memory.
inline result<std::int64_t> memory_swap_to_v2(std::int64_t swap, std::int64_t memory) {
  if (memory == -1 && swap == 0) {
    return -1;
  }
  if (swap == -1 || swap == 0) {
    return swap;
  }
  if (memory == 0 || memory == -1) {
    return fail(errc::invalid_spec,
                str_cat("linux.resources.memory.swap (", swap,
                        ") cannot be set without a memory.limit: on cgroup v2 the swap limit is "
                        "swap - limit"));
  }
  if (memory < 0) {
    return fail(errc::invalid_spec,
                str_cat("linux.resources.memory.limit (", memory, ") must be -1 or positive"));
  }
  if (swap < memory) {
    return fail(errc::invalid_spec, str_cat("linux.resources.memory.swap (", swap,
                                            ") must be at least memory.limit (", memory, ")"));
  }
  return swap - memory;
}

}  // namespace katana::inline v0::cgroup
