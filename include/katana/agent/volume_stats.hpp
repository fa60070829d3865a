// agent::volume_stats: GetVolumeStats' answer for a guest path (kubelet's volume metrics for a
// direct-assigned volume): byte and inode usage from statfs(2), in Kata's shape (used is
// total minus free, free counting the blocks reserved for root).
#pragma once

#include <cstdint>
#include <fcntl.h>
#include <string>
#include <sys/statfs.h>
#include <vector>

#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/core/unique_fd.hpp>

namespace katana::inline v0::agent {

struct volume_usage {
  enum class unit : std::uint8_t { bytes = 1, inodes = 2 };  // csi.proto's VolumeUsage.Unit
  std::uint64_t available = 0;
  std::uint64_t total = 0;
  std::uint64_t used = 0;
  unit what = unit::bytes;
};

struct volume_stats {
  std::vector<volume_usage> usage;  // bytes, then inodes
};

/// The usage in a statfs result (pure: testable without a filesystem).
inline volume_stats to_volume_stats(const struct statfs& st) {
  const auto bsize = static_cast<std::uint64_t>(st.f_bsize);
  const auto blocks = static_cast<std::uint64_t>(st.f_blocks);
  const auto bfree = static_cast<std::uint64_t>(st.f_bfree);
  const auto files = static_cast<std::uint64_t>(st.f_files);
  const auto ffree = static_cast<std::uint64_t>(st.f_ffree);
  volume_stats out;
  // A filesystem without inode accounting may report more free than total: never wrap.
  out.usage.push_back({bfree * bsize, blocks * bsize, bfree > blocks ? 0 : (blocks - bfree) * bsize,
                       volume_usage::unit::bytes});
  out.usage.push_back(
      {ffree, files, ffree > files ? 0 : files - ffree, volume_usage::unit::inodes});
  return out;
}

/// Opens `path` (the volume must be reachable, as Kata checks) and reads its filesystem's usage.
inline result<volume_stats> read_volume_stats(const std::string& path) {
  if (path.empty() || path.front() != '/') {
    return fail(errc::invalid_argument,
                "volume_guest_path must be an absolute path, not \"" + path + "\"");
  }
  const unique_fd fd(::open(path.c_str(), O_PATH | O_CLOEXEC));
  if (!fd) {
    return fail_errno("volume " + path);
  }
  struct statfs st {};
  if (::fstatfs(fd.get(), &st) != 0) {
    return fail_errno("statfs of volume " + path);
  }
  return to_volume_stats(st);
}

}  // namespace katana::inline v0::agent
