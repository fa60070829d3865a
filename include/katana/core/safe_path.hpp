// Safe path resolution inside an untrusted tree such as a container rootfs (Kata's safe-path
// crate): scoped_resolve/scoped_join resolve a path as if the root were "/", pinned_path holds
// an O_PATH descriptor that a later symlink swap cannot redirect, scoped_mkdir_all creates
// directories relative to pinned parents. See docs/design/safe_paths.md.
#pragma once

#include <array>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>
#include <utility>
#include <vector>

#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/try.hpp>
#include <katana/core/unique_fd.hpp>

namespace katana::inline v0 {

namespace detail {

/// False once openat2 was found missing (old kernel, seccomp): every later call uses the walk.
inline std::atomic<bool> openat2_usable{true};

/// Whether the openat2 fast path is still in use; tests assert which path ran.
inline bool openat2_available() noexcept {
  return openat2_usable.load(std::memory_order_relaxed);
}

}  // namespace detail

// Internals, in their own namespace so that generic helper names cannot clash with other
// headers' detail code.
namespace detail::safe_path {

// The kernel's MAXSYMLINKS: the 41st link followed in one resolution fails with ELOOP.
inline constexpr int max_symlinks = 40;
// Directory fds the walk keeps open; deeper levels are reopened by name when `..` needs them,
// so a deep tree cannot exhaust RLIMIT_NOFILE.
inline constexpr std::size_t max_held_fds = 64;
// How often scoped_mkdir_all retries a component that keeps vanishing after it created it.
inline constexpr int max_mkdir_races = 16;

/// A path for an error message: quoted, bytes outside printable ASCII escaped (names may hold
/// newlines or invalid UTF-8), long paths cut.
inline std::string quote_path(std::string_view p) {
  static constexpr char hex[] = "0123456789abcdef";
  constexpr std::size_t limit = 256;
  std::string out = "\"";
  for (std::size_t i = 0; i < p.size() && i < limit; ++i) {
    const auto c = static_cast<unsigned char>(p[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  out += '"';
  if (p.size() > limit) {
    out += str_cat("... (", p.size(), " bytes)");
  }
  return out;
}

inline bool is_within(std::string_view root, std::string_view p) {
  if (root == "/") {
    return p.starts_with('/');
  }
  return p.starts_with(root) && (p.size() == root.size() || p[root.size()] == '/');
}

/// `p` (inside `root`) relative to it: "" for the root itself.
inline std::string relative_to(std::string_view root, std::string_view p) {
  if (p.size() <= root.size()) {
    return {};
  }
  return std::string(p.substr(root == "/" ? 1 : root.size() + 1));
}

inline std::string join_path(std::string_view root, std::string_view rel) {
  if (rel.empty()) {
    return std::string(root);
  }
  return root == "/" ? str_cat("/", rel) : str_cat(root, "/", rel);
}

/// readlinkat(2) into a string; symlink bodies are at most PATH_MAX bytes.
inline result<std::string> read_link_at(int dirfd, const char* name) {
  std::string buf(static_cast<std::size_t>(PATH_MAX) + 1, '\0');
  const ssize_t n = ::readlinkat(dirfd, name, buf.data(), buf.size());
  if (n < 0) {
    return fail_errno("readlinkat");
  }
  if (static_cast<std::size_t>(n) >= buf.size()) {
    return fail_errno("readlinkat: link body too long", ENAMETOOLONG);
  }
  buf.resize(static_cast<std::size_t>(n));
  return buf;
}

/// Fails unless /proc/self/fd is procfs: without /proc, or with a directory planted where it
/// should be, "/proc/self/fd/N" would name something else entirely.
inline status check_procfs() {
  struct statfs st {};
  if (::statfs("/proc/self/fd", &st) != 0) {
    return fail(errc::unavailable, "/proc/self/fd is not available (is /proc mounted?)");
  }
  if (st.f_type != PROC_SUPER_MAGIC) {
    return fail(errc::unavailable, "/proc/self/fd is not procfs (is /proc mounted?)");
  }
  return {};
}

/// Where the kernel says `fd` is, via readlink("/proc/self/fd/N").
inline result<std::string> fd_path(int fd) {
  KATANA_TRY(check_procfs());
  const std::string link = str_cat("/proc/self/fd/", fd);
  return read_link_at(AT_FDCWD, link.c_str()).transform_error(with_context("readlink " + link));
}

inline bool is_deleted(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 && st.st_nlink == 0;
}

/// The caller's unsafe path, checked for what no lookup can handle.
inline status check_unsafe(const std::string& unsafe) {
  if (unsafe.find('\0') != std::string::npos) {
    return fail(errc::invalid_argument, "path contains a NUL byte");
  }
  if (unsafe.size() >= static_cast<std::size_t>(PATH_MAX)) {
    return fail_errno(str_cat("path is ", unsafe.size(), " bytes, PATH_MAX is ", PATH_MAX),
                      ENAMETOOLONG);
  }
  return {};
}

struct root_dir {
  std::string path;  // canonical
  unique_fd fd;      // O_PATH|O_DIRECTORY
};

/// The trusted root, canonicalized (realpath) and opened.
inline result<root_dir> open_root(const std::filesystem::path& root) {
  const std::string& raw = root.native();
  if (raw.empty()) {
    return fail(errc::invalid_argument, "root path is empty");
  }
  if (raw.find('\0') != std::string::npos) {
    return fail(errc::invalid_argument, "root path contains a NUL byte");
  }
  std::array<char, PATH_MAX> buf{};
  if (::realpath(raw.c_str(), buf.data()) == nullptr) {
    return fail_errno("realpath of the root");
  }
  root_dir r{buf.data(), unique_fd(::open(buf.data(), O_PATH | O_DIRECTORY | O_CLOEXEC))};
  if (!r.fd) {
    return fail_errno("open root " + quote_path(r.path));
  }
  return r;
}

/// openat2(RESOLVE_IN_ROOT), or an empty fd when the caller should run the walk instead: the
/// target is missing (the walk handles missing tails), any other failure (the walk reports it
/// with the failing component), or no openat2 at all (remembered).
inline unique_fd openat2_in_root(int root_fd, const std::string& unsafe) {
  if (!openat2_available()) {
    return {};
  }
  open_how how{};
  how.flags = static_cast<std::uint64_t>(O_PATH | O_CLOEXEC);
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  const long fd =
      ::syscall(SYS_openat2, root_fd, unsafe.empty() ? "." : unsafe.c_str(), &how, sizeof how);
  if (fd < 0) {
    // EPERM is what container runtimes' seccomp profiles return for syscalls they do not know.
    if (errno == ENOSYS || errno == EPERM || errno == EINVAL || errno == E2BIG) {
      openat2_usable.store(false, std::memory_order_relaxed);
    }
    return {};
  }
  return unique_fd(static_cast<int>(fd));
}

enum class walk_mode {
  resolve,  // missing components are appended lexically
  open,     // everything must exist
  create,   // missing components are created as directories
};

struct walk_result {
  std::string relative;  // below the root, no "." or ".." and no leading slash
  unique_fd fd;          // O_PATH fd of the target; empty in resolve mode with a missing tail
};

/// The fallback: resolves component by component with openat(O_NOFOLLOW) relative to pinned
/// parent fds, splicing symlink bodies into the queue. `..` pops the stack of resolved
/// directories instead of asking the filesystem, so it can never climb above the root.
class walker {
 public:
  walker(const root_dir& root, walk_mode mode, mode_t mkdir_mode)
      : root_(root), mode_(mode), mkdir_mode_(mkdir_mode) {}

  result<walk_result> run(std::string_view unsafe) {
    push_path(unsafe);
    while (!todo_.empty()) {
      std::string name = std::move(todo_.back());
      todo_.pop_back();
      if (name == ".") {
        continue;
      }
      if (name == "..") {
        if (!missing_.empty()) {
          missing_.pop_back();
        } else if (!dirs_.empty()) {
          dirs_.pop_back();
        }
        continue;
      }
      if (!missing_.empty()) {
        KATANA_TRY(add_missing(std::move(name)));
        continue;
      }
      KATANA_TRY(step(std::move(name)));
    }
    return finish();
  }

 private:
  struct level {
    std::string name;
    unique_fd fd;  // empty when dropped to bound the fds held; reopened by name on demand
  };

  // Queues the components of `path` to run before what is already queued (todo_ is a stack).
  // A trailing slash becomes "." so that, as in the kernel, the last component must be a
  // directory.
  void push_path(std::string_view path) {
    std::vector<std::string_view> parts;
    std::size_t pos = 0;
    while (pos < path.size()) {
      const std::size_t slash = path.find('/', pos);
      const std::size_t end = slash == std::string_view::npos ? path.size() : slash;
      if (end > pos) {
        parts.push_back(path.substr(pos, end - pos));
      }
      pos = end + 1;
    }
    if (!path.empty() && path.back() == '/') {
      parts.emplace_back(".");
    }
    for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
      todo_.emplace_back(*it);
    }
  }

  std::string where(std::string_view name = {}) const {
    std::string p;
    for (const level& l : dirs_) {
      p += p.empty() ? "" : "/";
      p += l.name;
    }
    for (const std::string& m : missing_) {
      p += p.empty() ? "" : "/";
      p += m;
    }
    if (!name.empty()) {
      p += p.empty() ? "" : "/";
      p += name;
    }
    return quote_path(p);
  }

  // The directory the next component is looked up in.
  result<int> current() {
    if (dirs_.empty()) {
      return root_.fd.get();
    }
    if (!dirs_.back().fd) {
      KATANA_TRY(reopen_dropped());
    }
    return dirs_.back().fd.get();
  }

  // Reopens the dropped levels from the nearest one still held. Every level on the stack was
  // a real directory when resolved, so O_NOFOLLOW|O_DIRECTORY must find one again; anything
  // else means the tree changed under us.
  status reopen_dropped() {
    std::size_t first = dirs_.size() - 1;
    while (first > 0 && !dirs_[first - 1].fd) {
      --first;
    }
    int parent = first == 0 ? root_.fd.get() : dirs_[first - 1].fd.get();
    unique_fd scratch;
    for (std::size_t i = first; i < dirs_.size(); ++i) {
      unique_fd fd(
          ::openat(parent, dirs_[i].name.c_str(), O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC));
      if (!fd) {
        return fail_errno("reopen " + where() + ": the tree changed during resolution");
      }
      parent = fd.get();
      if (i + max_held_fds >= dirs_.size()) {
        dirs_[i].fd = std::move(fd);
      } else {
        scratch = std::move(fd);
      }
    }
    return {};
  }

  void push_dir(std::string name, unique_fd fd) {
    dirs_.push_back({std::move(name), std::move(fd)});
    if (dirs_.size() > max_held_fds) {
      dirs_[dirs_.size() - max_held_fds - 1].fd.reset();
    }
  }

  // Below a missing component nothing is looked up, so the kernel cannot reject a name no
  // filesystem accepts: do it here.
  status add_missing(std::string name) {
    if (name.size() > NAME_MAX) {
      return fail_errno(str_cat(where(name), ": name longer than NAME_MAX (", NAME_MAX, ")"),
                        ENAMETOOLONG);
    }
    missing_.push_back(std::move(name));
    return {};
  }

  status step(std::string name) {
    const int parent = KATANA_TRY(current());
    unique_fd fd(::openat(parent, name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) {
      const int err = errno;
      if (err == ENOENT && mode_ == walk_mode::resolve) {
        return add_missing(std::move(name));
      }
      if (err == ENOENT && mode_ == walk_mode::create) {
        return create(parent, std::move(name));
      }
      return fail_errno("openat " + where(name), err);
    }
    races_ = 0;
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
      return fail_errno("fstat " + where(name));
    }
    if (S_ISLNK(st.st_mode)) {
      if (++links_ > max_symlinks) {
        return fail_errno(str_cat(where(name), ": more than ", max_symlinks, " symlinks"), ELOOP);
      }
      // The link itself (O_PATH|O_NOFOLLOW) is read, not whatever its name points to now.
      auto body = read_link_at(fd.get(), "");
      if (!body) {
        return unexpected(std::move(body).error().wrap(where(name)));
      }
      if (body->empty()) {
        return fail_errno(where(name) + " is an empty symlink", ENOENT);
      }
      if (body->front() == '/') {
        dirs_.clear();  // absolute links start again at the root
      }
      push_path(*body);
      return {};
    }
    if (!S_ISDIR(st.st_mode)) {
      if (!todo_.empty()) {
        return fail_errno(where(name) + " is not a directory", ENOTDIR);
      }
      if (mode_ == walk_mode::create) {
        return fail_errno(where(name) + " exists and is not a directory", EEXIST);
      }
    }
    push_dir(std::move(name), std::move(fd));
    return {};
  }

  // mkdirat relative to the pinned parent; EEXIST means someone raced us, so the name is
  // looked up again like any other: a planted symlink is followed scoped, never by the kernel.
  status create(int parent, std::string name) {
    if (++races_ > max_mkdir_races) {
      return fail_errno(where(name) + " keeps disappearing", EAGAIN);
    }
    if (::mkdirat(parent, name.c_str(), mkdir_mode_) != 0 && errno != EEXIST) {
      return fail_errno("mkdirat " + where(name));
    }
    todo_.push_back(std::move(name));
    return {};
  }

  result<walk_result> finish() {
    walk_result r;
    for (const level& l : dirs_) {
      r.relative += r.relative.empty() ? "" : "/";
      r.relative += l.name;
    }
    for (const std::string& m : missing_) {
      r.relative += r.relative.empty() ? "" : "/";
      r.relative += m;
    }
    if (root_.path.size() + 1 + r.relative.size() >= static_cast<std::size_t>(PATH_MAX)) {
      return fail_errno(str_cat("resolved path is longer than PATH_MAX (", PATH_MAX, ")"),
                        ENAMETOOLONG);
    }
    if (!missing_.empty()) {
      return r;
    }
    const int fd = KATANA_TRY(current());
    r.fd.reset(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
    if (!r.fd) {
      return fail_errno("dup");
    }
    return r;
  }

  const root_dir& root_;
  walk_mode mode_;
  mode_t mkdir_mode_;
  std::vector<std::string> todo_;     // components still to resolve, next at the back
  std::vector<level> dirs_;           // resolved directories below the root, outermost first
  std::vector<std::string> missing_;  // lexical tail below the last existing directory
  int links_ = 0;
  int races_ = 0;
};

struct resolved {
  std::string root;      // canonical
  std::string relative;  // to root
  unique_fd fd;          // empty when the target does not exist (walk_mode::resolve)
};

/// Shared core: the openat2 fast path when allowed and usable, else the walk. For open and
/// create the fd is checked against /proc (when mounted): the walk cannot see a directory it
/// holds being moved out of root, the kernel can.
inline result<resolved> lookup_in(const root_dir& rd,
                                  const std::filesystem::path& unsafe,
                                  walk_mode mode,
                                  mode_t mkdir_mode = 0755,
                                  bool allow_openat2 = true) {
  KATANA_TRY(check_unsafe(unsafe.native()));
  if (allow_openat2) {
    if (unique_fd fd = openat2_in_root(rd.fd.get(), unsafe.native())) {
      struct stat st {};
      auto where = fd_path(fd.get());
      // A path outside root or of a deleted object means a concurrent rename; so does a
      // non-directory for create. The walk then gives the authoritative answer or error.
      if (where && where->size() < static_cast<std::size_t>(PATH_MAX) &&
          is_within(rd.path, *where) && ::fstat(fd.get(), &st) == 0 && st.st_nlink > 0 &&
          (mode != walk_mode::create || S_ISDIR(st.st_mode))) {
        return resolved{rd.path, relative_to(rd.path, *where), std::move(fd)};
      }
    }
  }
  walker w(rd, mode, mkdir_mode);
  walk_result wr = KATANA_TRY(w.run(unsafe.native()));
  if (mode != walk_mode::resolve) {
    if (auto where = fd_path(wr.fd.get())) {
      if (!is_within(rd.path, *where)) {
        return fail(errc::path_escapes_root,
                    "resolved to " + quote_path(*where) + ", outside the root (moved meanwhile?)");
      }
      if (!is_deleted(wr.fd.get())) {
        wr.relative = relative_to(rd.path, *where);  // the fd is the truth
      }
    }
  }
  return resolved{rd.path, std::move(wr.relative), std::move(wr.fd)};
}

inline result<resolved> lookup(const std::filesystem::path& root,
                               const std::filesystem::path& unsafe,
                               walk_mode mode,
                               mode_t mkdir_mode = 0755,
                               bool allow_openat2 = true) {
  KATANA_TRY(check_unsafe(unsafe.native()));  // before the root is opened
  const root_dir rd = KATANA_TRY(open_root(root));
  return lookup_in(rd, unsafe, mode, mkdir_mode, allow_openat2);
}

inline std::string describe(std::string_view op,
                            const std::filesystem::path& root,
                            const std::filesystem::path& unsafe) {
  return str_cat(op, " ", quote_path(unsafe.native()), " in ", quote_path(root.native()));
}

}  // namespace detail::safe_path

class pinned_path;
class scoped_root;
inline result<pinned_path> scoped_mkdir_all(const std::filesystem::path& root,
                                            const std::filesystem::path& unsafe,
                                            mode_t mode = 0755);

/// Resolves `unsafe` as if `root` were "/" (chroot, openat2 RESOLVE_IN_ROOT): `..` stops at the
/// root, absolute symlinks start at the root, at most 40 symlinks (else ELOOP). Components that
/// do not exist are kept lexically (`..` after one removes it). Returns the path relative to
/// root, without "." or ".." components: empty for the root itself. `root` is trusted; it is
/// canonicalized and must be an existing directory.
///
/// The answer is only a snapshot: whoever controls the tree can swap a component for a
/// symlink afterwards. Use pinned_path to act on the object itself.
inline result<std::filesystem::path> scoped_resolve(const std::filesystem::path& root,
                                                    const std::filesystem::path& unsafe) {
  auto r = detail::safe_path::lookup(root, unsafe, detail::safe_path::walk_mode::resolve);
  if (!r) {
    return unexpected(
        std::move(r).error().wrap(detail::safe_path::describe("scoped_resolve", root, unsafe)));
  }
  return std::filesystem::path(std::move(r->relative));
}

/// The canonical root joined with scoped_resolve(root, unsafe): always inside root lexically.
inline result<std::filesystem::path> scoped_join(const std::filesystem::path& root,
                                                 const std::filesystem::path& unsafe) {
  auto r = detail::safe_path::lookup(root, unsafe, detail::safe_path::walk_mode::resolve);
  if (!r) {
    return unexpected(
        std::move(r).error().wrap(detail::safe_path::describe("scoped_join", root, unsafe)));
  }
  return std::filesystem::path(detail::safe_path::join_path(r->root, r->relative));
}

/// An existing object inside a root, held by an O_PATH fd (Kata's PinnedPathBuf). Resolution
/// happens once, scoped to the root; afterwards the fd keeps naming the same object whatever
/// happens to the path, so hand proc_path() (not target()) to mount(2) and friends.
class pinned_path {
 public:
  /// Resolves `unsafe` in `root` as scoped_resolve does and pins the result, which must exist.
  static result<pinned_path> open(const std::filesystem::path& root,
                                  const std::filesystem::path& unsafe) {
    auto r = detail::safe_path::lookup(root, unsafe, detail::safe_path::walk_mode::open);
    if (!r) {
      return unexpected(std::move(r).error().wrap(
          detail::safe_path::describe("pinned_path::open", root, unsafe)));
    }
    return pinned_path(std::move(*r));
  }

  pinned_path(pinned_path&&) noexcept = default;
  pinned_path& operator=(pinned_path&&) noexcept = default;
  pinned_path(const pinned_path&) = delete;
  pinned_path& operator=(const pinned_path&) = delete;
  ~pinned_path() = default;

  /// The O_PATH|O_CLOEXEC descriptor; -1 after a move.
  [[nodiscard]] int fd() const noexcept { return fd_.get(); }
  /// The canonical root.
  [[nodiscard]] const std::filesystem::path& root() const noexcept { return root_; }
  /// Where the object was when pinned: absolute, inside root. For messages and verify(), not
  /// for acting on (it may have been swapped since).
  [[nodiscard]] const std::filesystem::path& target() const noexcept { return target_; }

  /// "/proc/self/fd/N": a path that names exactly the pinned object, for APIs that take a
  /// path (mount(2) source or target). Fails when /proc/self/fd is not procfs.
  [[nodiscard]] result<std::string> proc_path() const {
    if (!fd_) {
      return fail(errc::invalid_argument, "pinned_path: no descriptor (moved from)");
    }
    KATANA_TRY(detail::safe_path::check_procfs(),
               "pinned " + detail::safe_path::quote_path(target_.native()));
    return str_cat("/proc/self/fd/", fd_.get());
  }

  /// Checks that the pinned object is still reachable at target(): an error when it was moved
  /// (errc::path_escapes_root if now outside the root), deleted, or /proc is unavailable.
  [[nodiscard]] status verify() const {
    const std::string what = "pinned " + detail::safe_path::quote_path(target_.native());
    if (!fd_) {
      return fail(errc::invalid_argument, what + ": no descriptor (moved from)");
    }
    const std::string now = KATANA_TRY(detail::safe_path::fd_path(fd_.get()), what);
    if (now == target_.native()) {
      return {};
    }
    if (detail::safe_path::is_deleted(fd_.get())) {
      return fail_errno(what + " was deleted", ENOENT);
    }
    if (!detail::safe_path::is_within(root_.native(), now)) {
      return fail(errc::path_escapes_root,
                  what + " moved outside its root, to " + detail::safe_path::quote_path(now));
    }
    return fail_errno(what + " moved to " + detail::safe_path::quote_path(now), ESTALE);
  }

  /// Opens the pinned object itself (not whatever is at target() now) with open(2) `flags`,
  /// plus O_CLOEXEC; O_NOFOLLOW is dropped (the fd already is the final object). Goes through
  /// /proc/self/fd/N; without /proc only directories can be reopened (openat(fd, ".")).
  [[nodiscard]] result<unique_fd> reopen(int flags) const {
    flags = (flags | O_CLOEXEC) & ~O_NOFOLLOW;
    const std::string what = "reopen " + detail::safe_path::quote_path(target_.native());
    auto path = proc_path();
    unique_fd fd;
    if (path) {
      fd.reset(::open(path->c_str(), flags, 0));
    } else {
      struct stat st {};
      if (!fd_ || ::fstat(fd_.get(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        return unexpected(std::move(path).error().wrap(what));
      }
      fd.reset(::openat(fd_.get(), ".", flags, 0));
    }
    if (!fd) {
      return fail_errno(what);
    }
    return fd;
  }

 private:
  friend result<pinned_path> scoped_mkdir_all(const std::filesystem::path&,
                                              const std::filesystem::path&,
                                              mode_t);
  friend class scoped_root;

  explicit pinned_path(detail::safe_path::resolved r)
      : fd_(std::move(r.fd)),
        root_(r.root),
        target_(detail::safe_path::join_path(r.root, r.relative)) {}

  unique_fd fd_;
  std::filesystem::path root_;
  std::filesystem::path target_;
};

/// mkdir -p inside a root: creates each missing directory of `unsafe` with mkdirat relative to
/// its already pinned parent (never by path string), following existing symlinks scoped to the
/// root, and returns the final directory pinned. A symlink planted where a directory is being
/// created is followed scoped too, so it can only redirect within the root. `mode` is subject
/// to the umask. A non-directory in the way fails with ENOTDIR (EEXIST for the last component).
inline result<pinned_path> scoped_mkdir_all(const std::filesystem::path& root,
                                            const std::filesystem::path& unsafe,
                                            mode_t mode) {
  auto r = detail::safe_path::lookup(root, unsafe, detail::safe_path::walk_mode::create, mode);
  if (!r) {
    return unexpected(
        std::move(r).error().wrap(detail::safe_path::describe("scoped_mkdir_all", root, unsafe)));
  }
  return pinned_path(std::move(*r));
}

/// A root resolved and opened once, for many scoped_mkdir_all calls in it (each call by path
/// canonicalizes the root again, a lookup per component: slow on a 9p rootfs).
class scoped_root {
 public:
  static result<scoped_root> open(const std::filesystem::path& root) {
    auto rd = detail::safe_path::open_root(root);
    if (!rd) {
      return unexpected(
          std::move(rd).error().wrap("root " + detail::safe_path::quote_path(root.native())));
    }
    return scoped_root(std::move(*rd));
  }

  /// scoped_mkdir_all(root, unsafe, mode).
  [[nodiscard]] result<pinned_path> mkdir_all(const std::filesystem::path& unsafe,
                                              mode_t mode = 0755) const {
    auto r =
        detail::safe_path::lookup_in(root_, unsafe, detail::safe_path::walk_mode::create, mode);
    if (!r) {
      return unexpected(std::move(r).error().wrap(
          detail::safe_path::describe("scoped_mkdir_all", root_.path, unsafe)));
    }
    return pinned_path(std::move(*r));
  }

  [[nodiscard]] const std::string& path() const noexcept { return root_.path; }

 private:
  explicit scoped_root(detail::safe_path::root_dir rd) : root_(std::move(rd)) {}
  detail::safe_path::root_dir root_;
};

}  // namespace katana::inline v0
