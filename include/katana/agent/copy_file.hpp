// CopyFile: the runtime copies files into the guest (shared files when there is no shared
// filesystem, e.g. configmaps and secrets), chunk by chunk. Kata's rules: the path is
// absolute and below /run/kata-containers; a chunk lands in "<path>.tmp" at its offset
// (offset 0 truncates), and once the temporary file has file_size bytes it gets file_mode,
// uid and gid and is renamed over <path>. A file_mode with S_IFDIR makes a directory, with
// S_IFLNK a symlink whose target is `data`.
//
// Every step goes through katana's safe paths: the parent directory is created with
// scoped_mkdir_all inside the root and pinned, and the file is opened, linked and renamed
// relative to that pinned directory, so neither ".." nor a planted symlink can leave the root.
#pragma once

#include <cerrno>
#include <cstdint>
#include <fcntl.h>
#include <filesystem>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <unistd.h>

#include <katana/agent/storage.hpp>
#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/core/safe_path.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/try.hpp>
#include <katana/core/unique_fd.hpp>

namespace katana::inline v0::agent {

/// agent.proto's CopyFileRequest.
struct copy_file_request {
  std::string path;
  std::int64_t file_size = 0;
  std::uint32_t file_mode = 0;
  std::uint32_t dir_mode = 0;
  std::int32_t uid = 0;
  std::int32_t gid = 0;
  std::int64_t offset = 0;
  std::string data;
};

namespace detail {
inline status write_all_at(int fd, std::string_view data, off_t offset) {
  while (!data.empty()) {
    const ssize_t n = ::pwrite(fd, data.data(), data.size(), offset);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return fail_errno("pwrite");
    }
    data.remove_prefix(static_cast<std::size_t>(n));
    offset += n;
  }
  return {};
}
// Changes the owner only when it differs (so an unprivileged agent can still copy its own
// files); `name` empty means the fd itself.
inline status chown_at(int fd, const char* name, uid_t uid, gid_t gid, const std::string& where) {
  const int flags = AT_SYMLINK_NOFOLLOW | (*name == '\0' ? AT_EMPTY_PATH : 0);
  struct stat st {};
  if (::fstatat(fd, name, &st, flags) != 0) {
    return fail_errno(where + ": stat");
  }
  if ((st.st_uid != uid || st.st_gid != gid) && ::fchownat(fd, name, uid, gid, flags) != 0) {
    return fail_errno(where + ": chown");
  }
  return {};
}
}  // namespace detail

/// One CopyFile chunk, confined to `root` (the agent's /run/kata-containers).
inline status copy_file(const std::filesystem::path& root, const copy_file_request& req) {
  const auto path = KATANA_TRY(clean_absolute(req.path, "CopyFile path"));
  const std::string root_s = KATANA_TRY(clean_absolute(root.string(), "CopyFile root"));
  if (path.size() <= root_s.size() + 1 || path.compare(0, root_s.size(), root_s) != 0 ||
      (root_s != "/" && path[root_s.size()] != '/')) {
    return fail(errc::path_escapes_root,
                str_cat("CopyFile path \"", req.path, "\" is not below ", root_s));
  }
  if (req.offset < 0 || req.file_size < 0) {
    return fail(errc::invalid_argument, "CopyFile offset and file_size must not be negative");
  }
  const std::string rel = path.substr(root_s == "/" ? 1 : root_s.size() + 1);
  const auto slash = rel.rfind('/');
  const std::string parent = slash == std::string::npos ? std::string() : rel.substr(0, slash);
  const std::string name = slash == std::string::npos ? rel : rel.substr(slash + 1);
  const mode_t dir_mode = req.dir_mode != 0 ? static_cast<mode_t>(req.dir_mode & 07777) : 0755;
  const auto dir =
      KATANA_TRY(scoped_mkdir_all(root, parent.empty() ? "." : parent, dir_mode), "CopyFile");
  const auto uid = static_cast<uid_t>(req.uid);
  const auto gid = static_cast<gid_t>(req.gid);
  const mode_t type = static_cast<mode_t>(req.file_mode) & S_IFMT;
  const mode_t perm = static_cast<mode_t>(req.file_mode) & 07777;
  const std::string where = str_cat("CopyFile ", path);

  if (type == S_IFDIR) {
    if (::mkdirat(dir.fd(), name.c_str(), perm != 0 ? perm : 0755) != 0 && errno != EEXIST) {
      return fail_errno(where + ": mkdir");
    }
    unique_fd d(::openat(dir.fd(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!d) {
      return fail_errno(where + ": open directory");
    }
    if (perm != 0 && ::fchmod(d.get(), perm) != 0) {
      return fail_errno(where + ": chmod");
    }
    return detail::chown_at(d.get(), "", uid, gid, where);
  }
  if (type == S_IFLNK) {
    if (req.data.empty() || req.data.find('\0') != std::string::npos) {
      return fail(errc::invalid_argument, where + ": a symlink needs a target in data");
    }
    (void)::unlinkat(dir.fd(), name.c_str(), 0);
    if (::symlinkat(req.data.c_str(), dir.fd(), name.c_str()) != 0) {
      return fail_errno(where + ": symlink");
    }
    return detail::chown_at(dir.fd(), name.c_str(), uid, gid, where);
  }
  if (type != 0 && type != S_IFREG) {
    return fail(errc::invalid_argument, str_cat(where, ": file_mode type 0", type >> 12,
                                                "... is not a file, directory or symlink"));
  }
  const std::string tmp = name + ".tmp";
  int flags = O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC;
  if (req.offset == 0) {
    flags |= O_TRUNC;
  }
  unique_fd f(::openat(dir.fd(), tmp.c_str(), flags, 0600));
  if (!f) {
    return fail_errno(where + ": open " + tmp);
  }
  KATANA_TRY(detail::write_all_at(f.get(), req.data, static_cast<off_t>(req.offset)), where);
  struct stat st {};
  if (::fstat(f.get(), &st) != 0) {
    return fail_errno(where + ": fstat");
  }
  if (st.st_size != req.file_size) {
    return {};  // more chunks to come
  }
  if (::fchmod(f.get(), perm) != 0) {
    return fail_errno(where + ": chmod");
  }
  KATANA_TRY(detail::chown_at(f.get(), "", uid, gid, where));
  if (::renameat(dir.fd(), tmp.c_str(), dir.fd(), name.c_str()) != 0) {
    return fail_errno(where + ": rename");
  }
  return {};
}

}  // namespace katana::inline v0::agent
