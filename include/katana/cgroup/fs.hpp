// cgroupfs access shared by every policy: cgroup::dir (an open cgroup directory whose files are
// opened relative to it, O_CLOEXEC|O_NOFOLLOW, and whose write errors read
// "<file>: <cause>"), value parsers, mkdir -p and rmdir of cgroup trees, and runk's removal
// retries.
#pragma once

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <dirent.h>
#include <fcntl.h>
#include <optional>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <sys/types.h>
#include <thread>
#include <unistd.h>
#include <utility>
#include <vector>

#include <katana/cgroup/stats.hpp>
#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/core/log.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/try.hpp>
#include <katana/core/unique_fd.hpp>

namespace katana::inline v0::cgroup {

namespace detail {

/// Where policies log when the caller gave no logger.
inline logging::logger null_logger() {
  return logging::logger([](std::string_view) {}, logging::format::text, logging::level::off);
}

inline std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\n' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\n' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

/// v1 reports "no limit" as the page-counter maximum, rounded down to a page.
inline constexpr std::uint64_t v1_unlimited_floor = 0x7FFFFFFFFFFFF000ULL;

/// An unsigned cgroup value: "max" (v2) and v1's page-counter maximum become `unlimited`.
inline result<std::uint64_t> parse_u64(std::string_view s) {
  s = trim(s);
  if (s == "max") {
    return unlimited;
  }
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) {
    // v1 prints -1 for some unset limits (cpu.cfs_quota_us, cpu.rt_runtime_us).
    if (s == "-1") {
      return unlimited;
    }
    return fail(errc::parse_error, str_cat("\"", s, "\" is not a cgroup number"));
  }
  return v >= v1_unlimited_floor ? unlimited : v;
}

inline result<std::int64_t> parse_i64(std::string_view s) {
  s = trim(s);
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) {
    return fail(errc::parse_error, str_cat("\"", s, "\" is not a number"));
  }
  return v;
}

/// Calls f(line) for each non-empty line.
template <class F>
void for_each_line(std::string_view text, F&& f) {
  while (!text.empty()) {
    const auto nl = text.find('\n');
    const auto line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (!trim(line).empty()) {
      f(trim(line));
    }
  }
}

/// Splits "key value" on the first space.
inline std::pair<std::string_view, std::string_view> split_pair(std::string_view line,
                                                                char sep = ' ') {
  const auto sp = line.find(sep);
  if (sp == std::string_view::npos) {
    return {line, {}};
  }
  return {line.substr(0, sp), trim(line.substr(sp + 1))};
}

/// The value of `key` in a flat keyed file (memory.stat, cpu.stat, memory.events).
inline std::optional<std::uint64_t> find_key(std::string_view text, std::string_view key) {
  std::optional<std::uint64_t> out;
  for_each_line(text, [&](std::string_view line) {
    const auto [k, v] = split_pair(line);
    if (k == key && !out) {
      if (auto n = parse_u64(v)) {
        out = *n;
      }
    }
  });
  return out;
}

/// v2 spelling of a limit: negative means "max".
inline std::string v2_limit(std::int64_t v) {
  return v < 0 ? std::string("max") : str_cat(v);
}

}  // namespace detail

/// An open cgroup directory. Files are opened relative to it with O_NOFOLLOW|O_CLOEXEC; a
/// failed write reports "<file>: <cause>" (e.g. "memory.limit_in_bytes: Device or resource
/// busy") and callers prefix the directory.
class dir {
 public:
  dir() = default;
  dir(unique_fd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}

  static result<dir> open(std::string path) {
    unique_fd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) {
      return fail_errno("open cgroup " + path);
    }
    return dir(std::move(fd), std::move(path));
  }
  /// A child directory, opened without following symlinks.
  static result<dir> open_at(const dir& parent, std::string_view name) {
    const std::string n(name);
    unique_fd fd(::openat(parent.fd(), n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    std::string path = parent.path() + "/" + n;
    if (!fd) {
      return fail_errno("open cgroup " + path);
    }
    return dir(std::move(fd), std::move(path));
  }

  [[nodiscard]] int fd() const noexcept { return fd_.get(); }
  [[nodiscard]] const std::string& path() const noexcept { return path_; }
  explicit operator bool() const noexcept { return static_cast<bool>(fd_); }

  /// One write(2) of the whole value, as cgroupfs wants.
  status write(std::string_view file, std::string_view value) const {
    const std::string name(file);
    const unique_fd f(::openat(fd(), name.c_str(), O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC));
    if (!f) {
      return fail_errno(name);
    }
    for (;;) {
      const ssize_t n = ::write(f.get(), value.data(), value.size());
      if (n >= 0) {
        return {};
      }
      if (errno != EINTR) {
        return fail_errno(name);
      }
    }
  }

  result<std::string> read(std::string_view file) const {
    const std::string name(file);
    const unique_fd f(::openat(fd(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!f) {
      return fail_errno(name);
    }
    std::string out;
    char buf[4096];
    for (;;) {
      const ssize_t n = ::read(f.get(), buf, sizeof buf);
      if (n < 0) {
        if (errno == EINTR) {
          continue;
        }
        return fail_errno(name);
      }
      if (n == 0) {
        return out;
      }
      out.append(buf, static_cast<std::size_t>(n));
    }
  }

  result<std::uint64_t> read_u64(std::string_view file) const {
    const std::string text = KATANA_TRY(read(file));
    return detail::parse_u64(text).transform_error(with_context(std::string(file)));
  }

  /// Whether the directory has this file (a controller's interface file, for instance).
  [[nodiscard]] bool has(std::string_view file) const {
    const std::string name(file);
    struct stat st {};
    return ::fstatat(fd(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
  }

  /// The processes in cgroup.procs.
  result<std::vector<pid_t>> procs() const {
    const std::string text = KATANA_TRY(read("cgroup.procs"));
    std::vector<pid_t> out;
    status bad;
    detail::for_each_line(text, [&](std::string_view line) {
      auto v = detail::parse_i64(line);
      if (v) {
        out.push_back(static_cast<pid_t>(*v));
      } else if (bad) {
        bad = unexpected<error>(std::move(v).error().wrap("cgroup.procs"));
      }
    });
    KATANA_TRY(std::move(bad));
    return out;
  }

 private:
  unique_fd fd_;
  std::string path_;
};

/// "<dir>: <file>: <cause>": the error of an operation on a cgroup directory.
inline auto in_dir(const dir& d) {
  return with_context(d.path());
}

/// mkdir -p of the cleaned relative path `rel` below the hierarchy root `root`, without
/// following symlinks. on_level(parent, child, created) runs for every level, parents first
/// (the first parent is the root); the leaf is returned open. With create == false nothing is
/// made: a missing level is an error (ENOENT).
template <class F>
result<dir> make_path(const std::string& root,
                      std::string_view rel,
                      F&& on_level,
                      bool create = true) {
  dir current = KATANA_TRY(dir::open(root));
  while (!rel.empty()) {
    const auto slash = rel.find('/');
    const std::string name(rel.substr(0, slash));
    rel = slash == std::string_view::npos ? std::string_view{} : rel.substr(slash + 1);
    if (name.empty()) {
      continue;
    }
    bool created = create;
    if (create && ::mkdirat(current.fd(), name.c_str(), 0755) != 0) {
      if (errno != EEXIST) {
        return fail_errno(str_cat("mkdir ", current.path(), "/", name));
      }
      created = false;
    }
    dir child = KATANA_TRY(dir::open_at(current, name));
    KATANA_TRY(on_level(current, child, created));
    current = std::move(child);
  }
  return current;
}

inline result<dir> make_path(const std::string& root, std::string_view rel) {
  return make_path(root, rel, [](const dir&, const dir&, bool) -> status { return {}; });
}

namespace detail {

// rmdir of `name` in `parent` after its sub-cgroups, deepest first (cgroupfs directories
// hold only interface files, which rmdir ignores, and child cgroups, which it refuses).
inline status remove_tree_at(int parent, const std::string& name, const std::string& display) {
  unique_fd fd(::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) {
    return errno == ENOENT ? status{} : fail_errno("open " + display);
  }
  std::vector<std::string> children;
  {
    const int dup_fd = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, 0);
    if (dup_fd < 0) {
      return fail_errno("dup " + display);
    }
    DIR* d = ::fdopendir(dup_fd);
    if (d == nullptr) {
      ::close(dup_fd);
      return fail_errno("opendir " + display);
    }
    while (const dirent* e = ::readdir(d)) {
      const std::string_view n(e->d_name);
      if (e->d_type == DT_DIR && n != "." && n != "..") {
        children.emplace_back(n);
      }
    }
    ::closedir(d);
  }
  for (const auto& c : children) {
    KATANA_TRY(remove_tree_at(fd.get(), c, display + "/" + c));
  }
  if (::unlinkat(parent, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
    return fail_errno("rmdir " + display);
  }
  return {};
}

}  // namespace detail

/// rmdir of root/rel and every cgroup below it; a missing directory is success.
inline status remove_path(const std::string& root, std::string_view rel) {
  if (rel.empty()) {
    return fail(errc::invalid_argument, "refusing to remove the hierarchy root " + root);
  }
  const auto slash = rel.rfind('/');
  const std::string parent_rel(slash == std::string_view::npos ? std::string_view{}
                                                               : rel.substr(0, slash));
  const std::string leaf(slash == std::string_view::npos ? rel : rel.substr(slash + 1));
  const std::string parent = parent_rel.empty() ? root : root + "/" + parent_rel;
  const unique_fd pfd(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!pfd) {
    return errno == ENOENT ? status{} : fail_errno("open " + parent);
  }
  return detail::remove_tree_at(pfd.get(), leaf, parent + "/" + leaf);
}

/// runk's remove_cgroup_dir schedule: 5 attempts; before each retry the delay (10 ms at first)
/// doubles and is slept, so 20, 40, 80 and 160 ms (about 300 ms in the worst case).
struct retry_schedule {
  int attempts = 5;
  std::chrono::milliseconds first_delay{10};
};

template <class Attempt>
status with_retries(Attempt&& attempt, const retry_schedule& schedule = {}) {
  auto delay = schedule.first_delay;
  status last;
  for (int i = 0; i < schedule.attempts; ++i) {
    if (i > 0) {
      delay *= 2;
      std::this_thread::sleep_for(delay);
    }
    last = attempt();
    if (last) {
      return last;
    }
  }
  return last;
}

/// The error remove() returns while tasks remain: nothing is killed by the manager.
inline unexpected<error> tasks_remain(std::string_view where, const std::vector<pid_t>& pids) {
  std::string list;
  for (std::size_t i = 0; i < pids.size() && i < 8; ++i) {
    list += str_cat(i == 0 ? "" : ", ", pids[i]);
  }
  if (pids.size() > 8) {
    list += ", ...";
  }
  return fail_errno(str_cat("cgroup ", where, " still has ", pids.size(), " task(s) (pid ", list,
                            "); kill or move them before removing it"),
                    EBUSY);
}

}  // namespace katana::inline v0::cgroup
