// remove_tree: removes a directory tree without leaving the mount it is on. A sandbox
// directory can still have a bind mount below it (an unmount failed, or someone else mounted
// there); std::filesystem::remove_all would walk through such a mount and delete the files
// behind it, the user's rootfs say. remove_tree refuses mount points and symlinks to follow.
#pragma once

#include <cerrno>
#include <cstdint>
#include <dirent.h>
#include <fcntl.h>
#include <filesystem>
#include <string>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>

#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/try.hpp>
#include <katana/core/unique_fd.hpp>

namespace katana::inline v0 {

namespace detail {

struct tree_node {
  bool is_dir = false;
  bool mount_root = false;
  std::uint64_t mount = 0;  // mount id (Linux >= 5.8), else the device
};

inline result<tree_node> stat_node(int dirfd, const char* name, const std::string& display) {
  struct ::statx st {};
  if (::statx(dirfd, name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, STATX_TYPE | STATX_MNT_ID, &st) !=
      0) {
    return fail_errno("stat " + display);
  }
  tree_node n;
  n.is_dir = S_ISDIR(st.stx_mode);
  n.mount_root = (st.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) != 0 &&
                 (st.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
  n.mount = (st.stx_mask & STATX_MNT_ID) != 0
                ? st.stx_mnt_id
                : (std::uint64_t{st.stx_dev_major} << 32U) | st.stx_dev_minor;
  return n;
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
    if (e->d_type == DT_DIR || e->d_type == DT_UNKNOWN) {
      auto n = stat_node(dfd, name.c_str(), path);
      if (!n) {
        keep(unexpected<error>(std::move(n).error()));
        continue;
      }
      is_dir = n->is_dir;
      if (is_dir && (n->mount != mount || n->mount_root)) {
        keep(fail(std::make_error_code(std::errc::device_or_resource_busy),
                  str_cat(path, " is a mount point: not removed")));
        continue;
      }
    }
    if (is_dir) {
      const int child =
          ::openat(dfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (child < 0) {
        keep(fail_errno("open " + path));
        continue;
      }
      if (auto r = empty_dir(unique_fd(child), mount, path); !r) {
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
  const std::string display = path.native();
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
  const int fd = ::open(display.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    return fail_errno("open " + display);
  }
  KATANA_TRY(detail::empty_dir(unique_fd(fd), top->mount, display));
  if (::rmdir(display.c_str()) != 0 && errno != ENOENT) {
    return fail_errno("remove " + display);
  }
  return {};
}

}  // namespace katana::inline v0
