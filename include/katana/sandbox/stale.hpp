// Sandboxes whose owner died without stop() (SIGKILL, OOM kill): QEMU dies with its parent,
// but the sandbox directory, the share's mounts below it and the host cgroup stay. The owner
// keeps <dir>/owner.lock flock'ed while the sandbox lives; a directory whose lock another
// process can take is stale, and reap_stale removes what it left.
#pragma once

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <fcntl.h>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <sys/file.h>
#include <sys/mount.h>
#include <system_error>
#include <utility>
#include <vector>

#include <katana/cgroup/mountinfo.hpp>
#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/try.hpp>
#include <katana/core/unique_fd.hpp>
#include <katana/oci/detail/read_file.hpp>
#include <katana/sandbox/remove_tree.hpp>

namespace katana::inline v0::sandbox {

inline constexpr std::string_view owner_lock_name = "owner.lock";
/// Written by stop() when the directory is kept (--keep): not stale, left for the user.
inline constexpr std::string_view kept_marker_name = "kept";

/// The owner's hold on a sandbox directory: an exclusive flock on <dir>/owner.lock.
class owner_lock {
 public:
  owner_lock() = default;

  /// Takes the lock without waiting (EWOULDBLOCK: another process holds it). `name`: the lock
  /// file in `dir` (other lock files are not taken for sandboxes by reap_stale).
  static result<owner_lock> acquire(const std::filesystem::path& dir,
                                    std::string_view name = owner_lock_name) {
    const auto path = dir / name;
    unique_fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd) {
      return fail_errno("open " + path.native());
    }
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
      return fail_errno(errno == EWOULDBLOCK ? path.native() + " is held by a live sandbox"
                                             : "flock " + path.native());
    }
    owner_lock l;
    l.fd_ = std::move(fd);
    return l;
  }

  [[nodiscard]] bool held() const noexcept { return static_cast<bool>(fd_); }
  void release() noexcept { fd_.reset(); }

 private:
  unique_fd fd_;
};

namespace detail {
/// "vm-1234" -> 1234 (the pid suffix katana-ctl gives its sandboxes), else 0.
inline pid_t pid_suffix(std::string_view name) {
  const auto dash = name.rfind('-');
  if (dash == std::string_view::npos) {
    return 0;
  }
  pid_t pid = 0;
  const auto digits = name.substr(dash + 1);
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), pid);
  return ec == std::errc{} && end == digits.data() + digits.size() ? pid : 0;
}
}  // namespace detail

struct reaped {
  std::vector<std::string> ids;  // sandboxes cleaned up
  std::vector<error> errors;     // what could not be (the directory then stays)
};

/// Cleans every stale sandbox directory under `root`: one whose owner.lock is free, or without
/// one (made before locks, or crashed before taking it) whose name ends in a dead pid.
/// `remove_cgroup(id)` kills what is left in the sandbox's host cgroup and removes it; mounts
/// below the directory are detached, then the directory is removed.
inline reaped reap_stale(const std::filesystem::path& root,
                         const std::function<status(const std::string& id)>& remove_cgroup,
                         const std::filesystem::path& mountinfo = "/proc/self/mountinfo") {
  reaped out;
  std::optional<std::string> mounts;  // read once, when the first stale directory needs it
  std::error_code ec;
  for (std::filesystem::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code sec;
    if (!it->is_directory(sec) || it->is_symlink(sec) ||
        std::filesystem::exists(it->path() / kept_marker_name, sec)) {
      continue;
    }
    const std::string id = it->path().filename().native();
    owner_lock lock;
    if (std::filesystem::exists(it->path() / owner_lock_name, sec)) {
      auto l = owner_lock::acquire(it->path());
      if (!l) {
        continue;  // alive (or unreadable: not ours to judge)
      }
      lock = std::move(*l);
    } else {
      const pid_t pid = detail::pid_suffix(id);
      if (pid <= 0 || ::kill(pid, 0) == 0 || errno != ESRCH) {
        continue;
      }
    }
    const auto fail_with = [&](error e) {
      out.errors.push_back(std::move(e).wrap("sandbox " + id));
    };
    if (remove_cgroup) {
      if (auto r = remove_cgroup(id); !r) {
        fail_with(std::move(r).error());
        continue;
      }
    }
    if (!mounts) {
      mounts = oci::detail::read_small_file(mountinfo, std::size_t{64} << 20).value_or("");
    }
    bool unmounted = true;
    for (const auto& m : detail::mounts_below(*mounts, it->path().native())) {
      if (::umount2(m.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
        fail_with(fail_errno("umount " + m).error());
        unmounted = false;
        break;
      }
    }
    if (!unmounted) {
      continue;
    }
    lock.release();
    if (auto r = remove_tree(it->path()); !r) {
      fail_with(std::move(r).error());
      continue;
    }
    out.ids.push_back(id);
  }
  return out;
}

}  // namespace katana::inline v0::sandbox
