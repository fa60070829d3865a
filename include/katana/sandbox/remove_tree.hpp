// remove_tree: removes a sandbox directory without leaving the mount it is on. The directory
// can still have a bind mount below it (an unmount failed, or someone else mounted there);
// std::filesystem::remove_all would walk through such a mount and delete the files behind it,
// the user's rootfs say. remove_tree refuses mount points and symlinks to follow.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <dirent.h>
#include <fcntl.h>
#include <filesystem>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>
#include <vector>

#include <katana/cgroup/mountinfo.hpp>
#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/try.hpp>
#include <katana/core/unique_fd.hpp>
#include <katana/oci/detail/read_file.hpp>

namespace katana::inline v0::sandbox {

namespace detail {

struct tree_node {
  bool is_dir = false;
  bool mount_root = false;
  bool has_mount_id = false;  // Linux >= 5.8; before, `mount` is the device
  std::uint64_t mount = 0;
};

inline result<tree_node> stat_node(int dirfd, const char* name, const std::string& display) {
  struct ::statx st {};
  const int flags = AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | (*name == '\0' ? AT_EMPTY_PATH : 0);
  if (::statx(dirfd, name, flags, STATX_TYPE | STATX_MNT_ID, &st) != 0) {
    return fail_errno("stat " + display);
  }
  tree_node n;
  n.is_dir = S_ISDIR(st.stx_mode);
  n.mount_root = (st.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) != 0 &&
                 (st.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
  n.has_mount_id = (st.stx_mask & STATX_MNT_ID) != 0;
  n.mount =
      n.has_mount_id ? st.stx_mnt_id : (std::uint64_t{st.stx_dev_major} << 32U) | st.stx_dev_minor;
  return n;
}

/// Opens directory `name` and checks that what was opened is still on `mount`: a mount made
/// on it between the stat and the open would otherwise be walked.
inline result<unique_fd> open_on_mount(int dirfd,
                                       const char* name,
                                       std::uint64_t mount,
                                       const std::string& display,
                                       bool may_be_mount_root = false) {
  const int fd = ::openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    return fail_errno("open " + display);
  }
  unique_fd owned(fd);
  auto n = KATANA_TRY(stat_node(fd, "", display));
  if (n.mount != mount || (n.mount_root && !may_be_mount_root)) {
    return fail(std::make_error_code(std::errc::device_or_resource_busy),
                str_cat(display, " is a mount point: not removed"));
  }
  return owned;
}

/// The mount points at or below `dir` in mountinfo text, deepest first (the order to detach).
inline std::vector<std::string> mounts_below(std::string_view mountinfo, const std::string& dir) {
  std::vector<std::string> out;
  if (auto mounts = cgroup::parse_mountinfo(mountinfo)) {
    for (const auto& m : *mounts) {
      if (m.mount_point == dir || m.mount_point.starts_with(dir + "/")) {
        out.push_back(m.mount_point);
      }
    }
  }
  std::sort(out.begin(), out.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  return out;
}

/// Where the kernel has no mount ids (before 5.8), a bind mount of the same filesystem looks
/// like a plain directory: mountinfo says whether anything is mounted below `dir`.
inline status no_mounts_below(const std::string& dir,
                              const std::filesystem::path& mountinfo = "/proc/self/mountinfo") {
  const auto text = KATANA_TRY(oci::detail::read_small_file(mountinfo, std::size_t{64} << 20),
                               "look for mounts below " + dir);
  for (const auto& m : mounts_below(text, dir)) {
    if (m != dir) {
      return fail(std::make_error_code(std::errc::device_or_resource_busy),
                  str_cat(m, " is a mount point: ", dir, " not removed"));
    }
  }
  return {};
}

/// Empties the directory open as `fd` (owned); the first error is kept, the walk goes on.
inline status empty_dir(unique_fd fd, std::uint64_t mount, const std::string& display) {
  DIR* d = ::fdopendir(fd.get());
  if (d == nullptr) {
    return fail_errno("open " + display);
  }
  (void)fd.release();
  status first;
  const auto keep = [&first](status s) {
    if (!s && first) {
      first = std::move(s);
    }
  };
  const int dfd = ::dirfd(d);
  errno = 0;
  while (const ::dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name == "." || name == "..") {
      continue;
    }
    const std::string path = display + "/" + name;
    bool is_dir = e->d_type == DT_DIR;
    if (e->d_type == DT_UNKNOWN) {
      auto n = stat_node(dfd, name.c_str(), path);
      if (!n) {
        keep(unexpected<error>(std::move(n).error()));
        continue;
      }
      is_dir = n->is_dir;
    }
    if (is_dir) {  // a mount point is refused here, by what the open found
      auto child = open_on_mount(dfd, name.c_str(), mount, path);
      if (!child) {
        keep(unexpected<error>(std::move(child).error()));
        continue;
      }
      if (auto r = empty_dir(std::move(*child), mount, path); !r) {
        keep(std::move(r));
        continue;
      }
    }
    if (::unlinkat(dfd, name.c_str(), is_dir ? AT_REMOVEDIR : 0) != 0 && errno != ENOENT) {
      keep(fail_errno("remove " + path));
    }
    errno = 0;
  }
  if (errno != 0) {
    keep(fail_errno("read " + display));
  }
  ::closedir(d);
  return first;
}

}  // namespace detail

/// Removes `path` and, when it is a directory, everything below it that is on the same mount.
/// A mount point below it is left with its parents, and the error names it. A missing `path`
/// is not an error; a symlink is removed, not followed.
inline status remove_tree(const std::filesystem::path& path) {
  std::string display = path.native();
  while (display.size() > 1 && display.back() == '/') {  // "link/" would follow the link
    display.pop_back();
  }
  auto top = detail::stat_node(AT_FDCWD, display.c_str(), display);
  if (!top) {
    if (top.error().code == std::errc::no_such_file_or_directory) {
      return {};
    }
    return unexpected<error>(std::move(top).error());
  }
  if (!top->is_dir) {
    if (::unlink(display.c_str()) != 0 && errno != ENOENT) {
      return fail_errno("remove " + display);
    }
    return {};
  }
  if (!top->has_mount_id) {
    KATANA_TRY(detail::no_mounts_below(display));
  }
  auto fd = KATANA_TRY(detail::open_on_mount(AT_FDCWD, display.c_str(), top->mount, display, true));
  KATANA_TRY(detail::empty_dir(std::move(fd), top->mount, display));
  if (::rmdir(display.c_str()) != 0 && errno != ENOENT) {
    return fail_errno("remove " + display);
  }
  return {};
}

}  // namespace katana::inline v0::sandbox
