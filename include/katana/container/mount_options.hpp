// OCI mount options -> mount(2) flags, propagation changes, recursive mount_setattr(2)
// attributes and the filesystem data string, following runc's table (libcontainer/specconv).
// Pure: no I/O.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <sys/mount.h>
#include <vector>

#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/oci/names.hpp>

namespace katana::inline v0::container {

/// What a list of OCI mount options means.
struct mount_options {
  unsigned long flags = 0;                 // MS_* to set
  unsigned long clear_flags = 0;           // MS_* explicitly turned off ("rw", "suid", ...)
  std::vector<unsigned long> propagation;  // MS_SHARED/... (with MS_REC), applied in order
  std::uint64_t attr_set = 0;              // MOUNT_ATTR_* applied with AT_RECURSIVE ("rro")
  std::uint64_t attr_clr = 0;
  std::string data;  // the options that are not flags, comma separated ("mode=755,size=64k")
  bool bind() const noexcept { return (flags & MS_BIND) != 0; }
  bool recursive() const noexcept { return (flags & MS_REC) != 0; }
  bool operator==(const mount_options&) const = default;
};

namespace detail {

struct flag_option {
  std::string_view name;
  bool clear;  // the option turns the flag off
  unsigned long flag;
};

// Sorted by name for the binary search below.
inline constexpr std::array<flag_option, 33> mount_flag_options{{
    {"acl", false, MS_POSIXACL},
    {"async", true, MS_SYNCHRONOUS},
    {"atime", true, MS_NOATIME},
    {"bind", false, MS_BIND},
    {"defaults", false, 0},
    {"dev", true, MS_NODEV},
    {"diratime", true, MS_NODIRATIME},
    {"dirsync", false, MS_DIRSYNC},
    {"exec", true, MS_NOEXEC},
    {"iversion", false, MS_I_VERSION},
    {"lazytime", false, MS_LAZYTIME},
    {"loud", true, MS_SILENT},
    {"mand", false, MS_MANDLOCK},
    {"noacl", true, MS_POSIXACL},
    {"noatime", false, MS_NOATIME},
    {"nodev", false, MS_NODEV},
    {"nodiratime", false, MS_NODIRATIME},
    {"noexec", false, MS_NOEXEC},
    {"noiversion", true, MS_I_VERSION},
    {"nolazytime", true, MS_LAZYTIME},
    {"nomand", true, MS_MANDLOCK},
    {"norelatime", true, MS_RELATIME},
    {"nostrictatime", true, MS_STRICTATIME},
    {"nosuid", false, MS_NOSUID},
    {"nosymfollow", false, 256},  // MS_NOSYMFOLLOW (Linux 5.10)
    {"rbind", false, MS_BIND | MS_REC},
    {"relatime", false, MS_RELATIME},
    {"remount", false, MS_REMOUNT},
    {"ro", false, MS_RDONLY},
    {"rw", true, MS_RDONLY},
    {"silent", false, MS_SILENT},
    {"strictatime", false, MS_STRICTATIME},
    {"suid", true, MS_NOSUID},
}};

inline constexpr std::uint64_t attr_rdonly = 0x1;
inline constexpr std::uint64_t attr_nosuid = 0x2;
inline constexpr std::uint64_t attr_nodev = 0x4;
inline constexpr std::uint64_t attr_noexec = 0x8;
inline constexpr std::uint64_t attr_atime_mask = 0x70;
inline constexpr std::uint64_t attr_noatime = 0x10;
inline constexpr std::uint64_t attr_strictatime = 0x20;
inline constexpr std::uint64_t attr_nodiratime = 0x80;
inline constexpr std::uint64_t attr_nosymfollow = 0x200000;

struct attr_option {
  std::string_view name;
  std::uint64_t set;
  std::uint64_t clr;
};

// The recursive ("r"-prefixed) options, applied with mount_setattr(AT_RECURSIVE).
inline constexpr std::array<attr_option, 18> mount_attr_options{{
    {"ratime", 0, attr_atime_mask},
    {"rdev", 0, attr_nodev},
    {"rdiratime", 0, attr_nodiratime},
    {"rexec", 0, attr_noexec},
    {"rnoatime", attr_noatime, attr_atime_mask},
    {"rnodev", attr_nodev, 0},
    {"rnodiratime", attr_nodiratime, 0},
    {"rnoexec", attr_noexec, 0},
    {"rnorelatime", 0, attr_atime_mask},
    {"rnostrictatime", 0, attr_atime_mask},
    {"rnosuid", attr_nosuid, 0},
    {"rnosymfollow", attr_nosymfollow, 0},
    {"rrelatime", 0, attr_atime_mask},
    {"rro", attr_rdonly, 0},
    {"rrw", 0, attr_rdonly},
    {"rstrictatime", attr_strictatime, attr_atime_mask},
    {"rsuid", 0, attr_nosuid},
    {"rsymfollow", 0, attr_nosymfollow},
}};

template <class T, std::size_t N>
constexpr bool sorted_options(const std::array<T, N>& table) {
  for (std::size_t i = 1; i < N; ++i) {
    if (!(table[i - 1].name < table[i].name)) {
      return false;
    }
  }
  return true;
}
static_assert(sorted_options(mount_flag_options));
static_assert(sorted_options(mount_attr_options));

template <class T, std::size_t N>
constexpr const T* find_option(const std::array<T, N>& table, std::string_view name) {
  std::size_t lo = 0;
  std::size_t hi = N;
  while (lo < hi) {
    const std::size_t mid = lo + (hi - lo) / 2;
    if (table[mid].name < name) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo < N && table[lo].name == name ? &table[lo] : nullptr;
}

}  // namespace detail

/// Parses a mount's options. Unknown options become filesystem data, as in runc; options that
/// need features katana does not implement (idmapped mounts) are errors.
inline result<mount_options> parse_mount_options(const std::vector<std::string>& options) {
  mount_options out;
  for (const std::string& o : options) {
    if (const auto* f = detail::find_option(detail::mount_flag_options, o)) {
      if (f->clear) {
        out.flags &= ~f->flag;
        out.clear_flags |= f->flag;
      } else {
        out.flags |= f->flag;
        out.clear_flags &= ~f->flag;
      }
      continue;
    }
    if (auto p = oci::propagation_flags(o)) {
      out.propagation.push_back(static_cast<unsigned long>(*p));
      continue;
    }
    if (const auto* a = detail::find_option(detail::mount_attr_options, o)) {
      // The kernel wants the whole atime field in attr_clr when an atime mode is set.
      out.attr_clr = (out.attr_clr & ~a->set) | a->clr;
      out.attr_set = (out.attr_set & ~a->clr) | a->set;
      continue;
    }
    if (o == "idmap" || o == "ridmap") {
      return fail(errc::unsupported, "mount option \"" + o + "\": idmapped mounts");
    }
    if (o == "tmpcopyup") {
      return fail(errc::unsupported, "mount option \"tmpcopyup\"");
    }
    if (o.empty()) {
      continue;
    }
    if (!out.data.empty()) {
      out.data += ',';
    }
    out.data += o;
  }
  return out;
}

}  // namespace katana::inline v0::container
