// Hostile trees for scoped_resolve/scoped_join, pinned_path and scoped_mkdir_all. Every test
// also runs with openat2 denied (KATANA_TEST_DENY_SYSCALLS=openat2, see tests/unit/CMakeLists.txt)
// so the component-by-component walk is tested for real. No test needs root: the one that hides
// /proc needs a private mount namespace and is skipped (with a warning) where it cannot get one.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <dirent.h>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <random>
#include <sched.h>
#include <set>
#include <string>
#include <string_view>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <system_error>
#include <thread>
#include <unistd.h>
#include <vector>

#include <katana/core/safe_path.hpp>
#include <katana/core/scope_exit.hpp>

#include "catch.hpp"

namespace fs = std::filesystem;

namespace {

struct remove_tree {
  std::string dir;
  void operator()() const noexcept {
    std::error_code ec;
    fs::remove_all(dir, ec);  // does not follow symlinks
  }
};

fs::path make_temp_dir() {
  std::string templ = (fs::temp_directory_path() / "katana-safepath-XXXXXX").native();
  REQUIRE(::mkdtemp(templ.data()) != nullptr);
  return fs::canonical(templ);
}

// A fresh playground: base/root is the untrusted root, base/outside holds a secret that no
// operation on root may reach or modify.
class sandbox {
 public:
  sandbox() : base_(make_temp_dir()), cleanup_(remove_tree{base_.native()}) {
    fs::create_directory(root());
    fs::create_directory(outside());
    file_at(outside() / "secret", "host secret");
  }

  [[nodiscard]] const fs::path& base() const { return base_; }
  [[nodiscard]] fs::path root() const { return base_ / "root"; }
  [[nodiscard]] fs::path outside() const { return base_ / "outside"; }

  void mkdir(const std::string& rel) const { fs::create_directories(root() / rel); }
  void file(const std::string& rel, const std::string& content = "") const {
    file_at(root() / rel, content);
  }
  void link(const std::string& target, const std::string& rel) const {
    fs::create_symlink(target, root() / rel);
  }
  static void file_at(const fs::path& p, const std::string& content) {
    std::ofstream(p, std::ios::binary) << content;
  }

 private:
  fs::path base_;
  katana::scope_exit<remove_tree> cleanup_;
};

bool has_errno(const katana::error& e, int err) {
  return e.code == std::error_code(err, std::system_category());
}

std::string resolve_ok(const fs::path& root, const std::string& unsafe) {
  auto r = katana::scoped_resolve(root, unsafe);
  INFO("unsafe path: " << unsafe);
  if (!r) {
    FAIL(r.error().message());
  }
  return r->native();
}

katana::error resolve_err(const fs::path& root, const std::string& unsafe) {
  auto r = katana::scoped_resolve(root, unsafe);
  INFO("unsafe path: " << unsafe);
  if (r) {
    FAIL("resolved to " << r->native());
  }
  return r.error();
}

// The walk alone, whatever the kernel has: compared with the public (fast path) answer.
katana::result<std::string> walk_only(const fs::path& root, const std::string& unsafe) {
  namespace sp = katana::detail::safe_path;
  return sp::lookup(root, unsafe, sp::walk_mode::resolve, 0755, false)
      .transform([](sp::resolved r) { return r.relative; });
}

std::string fd_target(int fd) {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/fd/" + std::to_string(fd), ec);
  return ec ? std::string() : p.native();
}

bool inside(const fs::path& root, const std::string& p) {
  const std::string r = fs::canonical(root).native();
  return p == r || p.starts_with(r + "/");
}

std::set<std::string> list_dir(int fd) {
  std::set<std::string> names;
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) {
    ::close(fd);
    return names;
  }
  while (const dirent* e = ::readdir(d)) {
    const std::string n = e->d_name;
    if (n != "." && n != "..") {
      names.insert(n);
    }
  }
  ::closedir(d);
  return names;
}

std::set<std::string> list_dir(const fs::path& p) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(p)) {
    names.insert(e.path().filename().native());
  }
  return names;
}

std::size_t open_fds() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator("/proc/self/fd")) {
    ++n;
  }
  return n;
}

bool openat2_denied() {
  const char* deny = std::getenv("KATANA_TEST_DENY_SYSCALLS");
  return deny != nullptr && std::string_view(deny).find("openat2") != std::string_view::npos;
}

}  // namespace

TEST_CASE("safe_path: .. never climbs above the root", "[safe_path]") {
  const sandbox sb;
  sb.mkdir("a/b");
  const fs::path root = sb.root();
  CHECK(resolve_ok(root, "../../etc/passwd") == "etc/passwd");
  CHECK(resolve_ok(root, "/../../../etc/passwd") == "etc/passwd");
  CHECK(resolve_ok(root, "a/../../..") == "");
  CHECK(resolve_ok(root, "a/b/../../../../a/b") == "a/b");
  CHECK(resolve_ok(root, "../outside/secret") == "outside/secret");
  auto joined = katana::scoped_join(root, "../../outside/secret");
  REQUIRE(joined);
  CHECK(*joined == fs::canonical(root) / "outside/secret");
  CHECK_FALSE(fs::exists(*joined));
}

TEST_CASE("safe_path: absolute symlinks resolve inside the root", "[safe_path]") {
  const sandbox sb;
  sb.mkdir("etc");
  sb.file("etc/passwd", "container passwd");
  sb.link("/etc", "etc_link");
  sb.link("/", "slash");
  sb.link(sb.outside().native(), "host_outside");
  const fs::path root = sb.root();
  CHECK(resolve_ok(root, "etc_link/passwd") == "etc/passwd");
  CHECK(resolve_ok(root, "etc_link") == "etc");
  CHECK(resolve_ok(root, "slash") == "");
  CHECK(resolve_ok(root, "slash/slash/etc_link/../etc") == "etc");
  // An absolute link to the real outside directory lands on the same path under root.
  const std::string host = sb.outside().relative_path().native();
  CHECK(resolve_ok(root, "host_outside/secret") == host + "/secret");
  auto pinned = katana::pinned_path::open(root, "etc_link/passwd");
  REQUIRE(pinned);
  CHECK(pinned->target() == fs::canonical(root) / "etc/passwd");
}

TEST_CASE("safe_path: relative symlinks cannot climb out", "[safe_path]") {
  const sandbox sb;
  sb.mkdir("d/e");
  sb.link("../../../../etc", "d/up");
  sb.link("../../../outside/secret", "d/e/secret_link");
  const fs::path root = sb.root();
  CHECK(resolve_ok(root, "d/up") == "etc");
  CHECK(resolve_ok(root, "d/up/shadow") == "etc/shadow");
  CHECK(resolve_ok(root, "d/e/secret_link") == "outside/secret");
  auto joined = katana::scoped_join(root, "d/e/secret_link");
  REQUIRE(joined);
  CHECK(inside(root, joined->native()));
  // Must exist to pin: the escape target does not exist inside root.
  auto pinned = katana::pinned_path::open(root, "d/e/secret_link");
  REQUIRE_FALSE(pinned.has_value());
  CHECK(has_errno(pinned.error(), ENOENT));
}

TEST_CASE("safe_path: chained symlinks are followed scoped", "[safe_path]") {
  const sandbox sb;
  sb.mkdir("real/inner");
  sb.link("b", "a");
  sb.link("c", "b");
  sb.link(sb.outside().native(), "c");  // a -> b -> c -> /<base>/outside
  sb.link("../r1", "real/r0");
  sb.link("real/inner/", "r1");
  sb.link("/real/r0/../x", "real/inner/r2");
  const fs::path root = sb.root();
  const std::string host = sb.outside().relative_path().native();
  CHECK(resolve_ok(root, "a") == host);
  CHECK(resolve_ok(root, "a/secret") == host + "/secret");
  CHECK(resolve_ok(root, "real/r0") == "real/inner");
  // r0 -> ../r1 -> real/inner; r2 -> /real/r0/.. = real (the physical parent of real/inner).
  CHECK(resolve_ok(root, "real/r0/r2") == "real/x");
}

TEST_CASE("safe_path: symlink loops fail with ELOOP naming the path", "[safe_path]") {
  const sandbox sb;
  sb.link("b", "a");
  sb.link("a", "b");
  sb.link("self", "self");
  sb.mkdir("dir");
  sb.link("../dir/loop", "dir/loop");
  const fs::path root = sb.root();
  for (const std::string p : {"a", "b/x", "self", "dir/loop/x", "/dir/../self"}) {
    const katana::error e = resolve_err(root, p);
    INFO(e.message());
    CHECK(e.code == std::errc::too_many_symbolic_link_levels);
    CHECK(e.message().find(katana::detail::safe_path::quote_path(p)) != std::string::npos);
  }
  auto pinned = katana::pinned_path::open(root, "a");
  REQUIRE_FALSE(pinned.has_value());
  CHECK(has_errno(pinned.error(), ELOOP));
  auto made = katana::scoped_mkdir_all(root, "self/x");
  REQUIRE_FALSE(made.has_value());
  CHECK(has_errno(made.error(), ELOOP));
}

TEST_CASE("safe_path: 40 symlinks resolve, the 41st is ELOOP", "[safe_path]") {
  const sandbox sb;
  sb.mkdir("end");
  sb.link("end", "l40");
  for (int i = 39; i >= 0; --i) {
    sb.link("l" + std::to_string(i + 1), "l" + std::to_string(i));
  }
  const fs::path root = sb.root();
  CHECK(resolve_ok(root, "l1") == "end");  // l1 .. l40: 40 links
  CHECK(has_errno(resolve_err(root, "l0"), ELOOP));
  CHECK(walk_only(root, "l1") == "end");
  auto walked = walk_only(root, "l0");
  REQUIRE_FALSE(walked.has_value());
  CHECK(has_errno(walked.error(), ELOOP));
}

TEST_CASE("safe_path: a symlink to a directory in the middle is followed", "[safe_path]") {
  const sandbox sb;
  sb.mkdir("real/sub");
  sb.file("real/sub/file", "data");
  sb.link("real", "link");
  sb.link("../real/sub", "real/rel");
  const fs::path root = sb.root();
  CHECK(resolve_ok(root, "link/sub/file") == "real/sub/file");
  CHECK(resolve_ok(root, "link/rel/file") == "real/sub/file");
  CHECK(resolve_ok(root, "link/rel/../../link/sub") == "real/sub");  // .. is physical
  CHECK(resolve_ok(root, "link/") == "real");
}

TEST_CASE("safe_path: dangling symlinks resolve to where they point", "[safe_path]") {
  const sandbox sb;
  sb.mkdir("d");
  sb.link("/nowhere/x", "abs_dangling");
  sb.link("../../../missing", "d/rel_dangling");
  sb.link("gone", "d/gone_link");
  const fs::path root = sb.root();
  CHECK(resolve_ok(root, "abs_dangling") == "nowhere/x");
  CHECK(resolve_ok(root, "abs_dangling/y/..") == "nowhere/x");
  CHECK(resolve_ok(root, "d/rel_dangling") == "missing");
  CHECK(resolve_ok(root, "d/gone_link") == "d/gone");
  CHECK(has_errno(katana::pinned_path::open(root, "d/gone_link").error(), ENOENT));
}

TEST_CASE("safe_path: missing tails are lexical, then real resolution resumes", "[safe_path]") {
  const sandbox sb;
  sb.mkdir("a/b");
  sb.mkdir("real");
  sb.link("/real", "a/link");
  const fs::path root = sb.root();
  CHECK(resolve_ok(root, "missing/x/../y") == "missing/y");
  CHECK(resolve_ok(root, "missing/..") == "");
  CHECK(resolve_ok(root, "a/missing/../../a/b") == "a/b");
  CHECK(resolve_ok(root, "a/missing/../link/f") == "real/f");  // back in a: the link is real
  CHECK(resolve_ok(root, "m1/m2/../../../../a/link") == "real");
  CHECK(resolve_ok(root, "a/b/m/") == "a/b/m");
}

TEST_CASE("safe_path: a file in the middle is ENOTDIR", "[safe_path]") {
  const sandbox sb;
  sb.mkdir("d");
  sb.file("d/file", "x");
  sb.link("d/file", "file_link");
  const fs::path root = sb.root();
  CHECK(resolve_ok(root, "d/file") == "d/file");
  CHECK(resolve_ok(root, "file_link") == "d/file");
  for (const std::string p : {"d/file/x", "d/file/..", "d/file/", "d/file/.", "file_link/x"}) {
    const katana::error e = resolve_err(root, p);
    INFO(p << ": " << e.message());
    CHECK(has_errno(e, ENOTDIR));
    auto walked = walk_only(root, p);
    REQUIRE_FALSE(walked.has_value());
    CHECK(has_errno(walked.error(), ENOTDIR));
  }
}

TEST_CASE("safe_path: the root itself and empty paths", "[safe_path]") {
  const sandbox sb;
  const fs::path root = sb.root();
  for (const std::string p : {"", ".", "/", "///", "./.", "..", "/../."}) {
    CHECK(resolve_ok(root, p).empty());
    auto joined = katana::scoped_join(root, p);
    REQUIRE(joined);
    CHECK(*joined == fs::canonical(root));
  }
  auto pinned = katana::pinned_path::open(root, "");
  REQUIRE(pinned);
  CHECK(pinned->target() == fs::canonical(root));
  CHECK(pinned->root() == fs::canonical(root));
}

TEST_CASE("safe_path: the root is canonicalized and must be a directory", "[safe_path]") {
  const sandbox sb;
  sb.mkdir("a");
  sb.file("f");
  fs::create_symlink(sb.root(), sb.base() / "root_link");
  const fs::path canonical = fs::canonical(sb.root());
  for (const fs::path& r : {sb.root() / "", sb.base() / "root_link", sb.base() / "root_link/",
                            sb.base() / "outside/../root"}) {
    INFO("root " << r);
    CHECK(resolve_ok(r, "a/../../a") == "a");
    auto joined = katana::scoped_join(r, "a");
    REQUIRE(joined);
    CHECK(*joined == canonical / "a");
  }
  auto missing = katana::scoped_resolve(sb.base() / "no_such_root", "a");
  REQUIRE_FALSE(missing.has_value());
  CHECK(has_errno(missing.error(), ENOENT));
  CHECK(missing.error().message().find("no_such_root") != std::string::npos);
  auto file = katana::scoped_join(sb.root() / "f", "a");
  REQUIRE_FALSE(file.has_value());
  CHECK(has_errno(file.error(), ENOTDIR));
  // "/" as the root is plain resolution.
  CHECK(resolve_ok("/", "../.." + sb.root().native() + "/a/..") == sb.root().relative_path());
  CHECK(katana::scoped_join("/", "/") == fs::path("/"));
  auto empty = katana::scoped_resolve("", "a");
  REQUIRE_FALSE(empty.has_value());
  CHECK(empty.error().code == katana::errc::invalid_argument);
}

TEST_CASE("safe_path: over-long paths fail cleanly", "[safe_path]") {
  const sandbox sb;
  const fs::path root = sb.root();
  const katana::error whole = resolve_err(root, std::string(5000, 'a'));
  CHECK(has_errno(whole, ENAMETOOLONG));
  CHECK(whole.message().size() < 1000);  // the path is cut in the message
  CHECK(has_errno(resolve_err(root, "x/" + std::string(300, 'n')), ENAMETOOLONG));
  CHECK(resolve_err(root, std::string("a\0b", 3)).code == katana::errc::invalid_argument);

  // Short input, long result: 10 levels of 250-byte names behind one symlink.
  std::string deep;
  for (int i = 0; i < 10; ++i) {
    deep += (deep.empty() ? "" : "/") + std::string(250, static_cast<char>('a' + i));
  }
  sb.mkdir(deep);
  sb.link(deep, "deep");
  CHECK(resolve_ok(root, "deep") == deep);
  std::string tail = "deep";
  for (int i = 0; i < 7; ++i) {
    tail += "/" + std::string(250, 'm');
  }
  const katana::error e = resolve_err(root, tail);
  CHECK(has_errno(e, ENAMETOOLONG));
  CHECK(e.message().find("PATH_MAX") != std::string::npos);
}

TEST_CASE("safe_path: names with spaces, newlines and invalid UTF-8", "[safe_path]") {
  const sandbox sb;
  const std::string odd = "sp ace/new\nline/\xff\xfe bad\tbytes";
  sb.mkdir(odd);
  sb.link("/" + odd, "odd link\n");
  sb.link("loop\n\xff", "loop\n\xff");
  const fs::path root = sb.root();
  CHECK(resolve_ok(root, odd) == odd);
  CHECK(resolve_ok(root, "odd link\n/../\xff\xfe bad\tbytes") == odd);
  CHECK(resolve_ok(root, "odd link\n/missing \xc0") == odd + "/missing \xc0");
  const katana::error e = resolve_err(root, "loop\n\xff");
  CHECK(e.message().find('\n') == std::string::npos);
  CHECK(e.message().find("loop\\x0a\\xff") != std::string::npos);
  auto pinned = katana::pinned_path::open(root, "odd link\n");
  REQUIRE(pinned);
  CHECK(pinned->target() == fs::canonical(root) / odd);
  CHECK(pinned->verify());
}

TEST_CASE("safe_path: without symlinks scoped_resolve equals lexical normalization",
          "[safe_path]") {
  const sandbox sb;
  sb.mkdir("a/b/c");
  sb.mkdir("c");
  const fs::path root = sb.root();
  const std::vector<std::string> pool = {"a", "b", "c", "x", ".", "..", ""};
  std::mt19937 rng(20240601);
  std::uniform_int_distribution<std::size_t> pick(0, pool.size() - 1);
  std::uniform_int_distribution<int> count(0, 8);
  for (int i = 0; i < 400; ++i) {
    std::string p = (rng() % 3 == 0) ? "/" : "";
    const int n = count(rng);
    for (int k = 0; k < n; ++k) {
      p += (k == 0 ? "" : "/") + pool[pick(rng)];
    }
    fs::path expected = (fs::path("/") / p).lexically_normal().relative_path();
    if (!expected.empty() && !expected.has_filename()) {
      expected = expected.parent_path();  // drop the trailing slash
    }
    INFO("path " << p);
    CHECK(resolve_ok(root, p) == expected.native());
    CHECK(walk_only(root, p) == expected.native());
  }
}

TEST_CASE("safe_path: the openat2 fast path and the walk agree", "[safe_path]") {
  const sandbox sb;
  sb.mkdir("real/sub");
  sb.file("real/sub/file");
  sb.link("/real", "abs");
  sb.link("../../real/sub", "real/rel");
  sb.link("a2", "a1");
  sb.link("/abs/rel/../..", "a2");
  sb.link("b", "b");
  const fs::path root = sb.root();
  for (const std::string p :
       {"abs/sub/file", "a1", "a1/real/rel/file", "../abs/../../abs/rel", "real/rel/", "b",
        "abs/sub/file/x", "missing/../abs", "abs/missing/../../a1/..", "real/rel/file"}) {
    INFO("path " << p);
    auto fast = katana::scoped_resolve(root, p);
    auto walked = walk_only(root, p);
    REQUIRE(fast.has_value() == walked.has_value());
    if (fast) {
      CHECK(fast->native() == *walked);
    } else {
      CHECK(fast.error().code == walked.error().code);
    }
  }
}

TEST_CASE("safe_path: openat2 availability matches the kernel and the seccomp filter",
          "[safe_path]") {
  const sandbox sb;
  REQUIRE(katana::scoped_resolve(sb.root(), "."));
  if (openat2_denied()) {
    CHECK_FALSE(katana::detail::openat2_available());
    return;
  }
  open_how how{};
  how.flags = static_cast<std::uint64_t>(O_PATH | O_CLOEXEC);
  how.resolve = RESOLVE_IN_ROOT;
  const long fd = ::syscall(SYS_openat2, AT_FDCWD, "/", &how, sizeof how);
  if (fd < 0) {
    WARN("this kernel has no openat2: only the walk is tested");
    CHECK_FALSE(katana::detail::openat2_available());
    return;
  }
  ::close(static_cast<int>(fd));
  CHECK(katana::detail::openat2_available());
}

TEST_CASE("safe_path: deep trees do not hold an fd per level", "[safe_path]") {
  const sandbox sb;
  std::string deep;
  for (int i = 0; i < 300; ++i) {
    deep += (i == 0 ? "d" : "/d");
  }
  sb.mkdir(deep);
  sb.mkdir("d/other");
  std::string up;
  for (int i = 0; i < 299; ++i) {
    up += "../";
  }
  const std::string p = deep + "/" + up + "other";
  rlimit old{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &old) == 0);
  rlimit tight = old;
  tight.rlim_cur = open_fds() + 40 + katana::detail::safe_path::max_held_fds;
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &tight) == 0);
  katana::result<std::string> walked = walk_only(sb.root(), p);
  auto pinned = katana::pinned_path::open(sb.root(), deep);
  ::setrlimit(RLIMIT_NOFILE, &old);
  INFO((walked ? std::string() : walked.error().message()));
  CHECK(walked == std::string("d/other"));
  CHECK(resolve_ok(sb.root(), p) == "d/other");
  REQUIRE(pinned);
  CHECK(pinned->target() == fs::canonical(sb.root()) / deep);
}

TEST_CASE("safe_path: pinned_path survives a swap of its directory for a symlink", "[safe_path]") {
  const sandbox sb;
  sb.mkdir("dir");
  sb.file("dir/marker", "pinned");
  const fs::path root = sb.root();
  auto pinned = katana::pinned_path::open(root, "dir");
  REQUIRE(pinned);
  CHECK(pinned->target() == fs::canonical(root) / "dir");
  REQUIRE(pinned->verify());
  auto proc = pinned->proc_path();
  REQUIRE(proc);
  CHECK(*proc == "/proc/self/fd/" + std::to_string(pinned->fd()));
  CHECK((::fcntl(pinned->fd(), F_GETFD) & FD_CLOEXEC) != 0);
  CHECK((::fcntl(pinned->fd(), F_GETFL) & O_PATH) != 0);

  fs::rename(root / "dir", root / "moved");
  fs::create_symlink(sb.outside(), root / "dir");

  const katana::status moved = pinned->verify();
  REQUIRE_FALSE(moved.has_value());
  INFO(moved.error().message());
  CHECK(moved.error().message().find("moved") != std::string::npos);
  CHECK(moved.error().message().find(fs::canonical(root / "moved").native()) != std::string::npos);

  auto dir = pinned->reopen(O_RDONLY | O_DIRECTORY);
  REQUIRE(dir);
  CHECK((::fcntl(dir->get(), F_GETFD) & FD_CLOEXEC) != 0);
  CHECK(list_dir(dir->release()) == std::set<std::string>{"marker"});

  // Moved out of the root entirely: reported as an escape.
  fs::rename(root / "moved", sb.base() / "escaped");
  const katana::status escaped = pinned->verify();
  REQUIRE_FALSE(escaped.has_value());
  CHECK(escaped.error().code == katana::errc::path_escapes_root);

  // Deleted.
  fs::create_directory(root / "victim");
  auto victim = katana::pinned_path::open(root, "victim");
  REQUIRE(victim);
  fs::remove(root / "victim");
  const katana::status deleted = victim->verify();
  REQUIRE_FALSE(deleted.has_value());
  CHECK(deleted.error().message().find("deleted") != std::string::npos);
}

TEST_CASE("safe_path: pinned files reopen the original, not the replacement", "[safe_path]") {
  const sandbox sb;
  sb.mkdir("etc");
  sb.file("etc/hosts", "original");
  const fs::path root = sb.root();
  auto pinned = katana::pinned_path::open(root, "/etc/../etc/hosts");
  REQUIRE(pinned);
  fs::rename(root / "etc/hosts", root / "etc/hosts.old");
  fs::create_symlink(sb.outside() / "secret", root / "etc/hosts");
  auto fd = pinned->reopen(O_RDONLY | O_NOFOLLOW);
  REQUIRE(fd);
  char buf[64] = {};
  const ssize_t n = ::read(fd->get(), buf, sizeof buf - 1);
  CHECK(std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0) == "original");
}

TEST_CASE("safe_path: pinned_path::open requires an existing target", "[safe_path]") {
  const sandbox sb;
  sb.mkdir("d");
  const fs::path root = sb.root();
  auto missing = katana::pinned_path::open(root, "d/missing/..");
  REQUIRE_FALSE(missing.has_value());
  CHECK(has_errno(missing.error(), ENOENT));
  CHECK(missing.error().message().find("missing") != std::string::npos);
  auto up = katana::pinned_path::open(root, "d/../../..");
  REQUIRE(up);
  CHECK(up->target() == fs::canonical(root));
}

TEST_CASE("safe_path: pinned_path is move-only", "[safe_path]") {
  static_assert(!std::is_copy_constructible_v<katana::pinned_path>);
  static_assert(!std::is_copy_assignable_v<katana::pinned_path>);
  static_assert(std::is_nothrow_move_constructible_v<katana::pinned_path>);
  const sandbox sb;
  auto a = katana::pinned_path::open(sb.root(), "");
  REQUIRE(a);
  const int fd = a->fd();
  katana::pinned_path b(std::move(*a));
  CHECK(b.fd() == fd);
  CHECK(a->fd() == -1);  // NOLINT(bugprone-use-after-move): moved-from state is specified
  CHECK(a->verify().error().code == katana::errc::invalid_argument);
  CHECK_FALSE(a->proc_path().has_value());
  CHECK(b.verify());
}

namespace {

// Runs in a forked child with a private mount namespace and a tmpfs over /proc. Returns 0 on
// success, 77 when the namespace cannot be had, otherwise the number of the failed check.
int check_without_proc(const fs::path& root, const fs::path& outside) {
  auto dir = katana::pinned_path::open(root, "dir");
  auto file = katana::pinned_path::open(root, "file");
  if (!dir || !file) {
    return 2;
  }
  const uid_t uid = ::geteuid();
  const gid_t gid = ::getegid();
  if (::unshare(uid == 0 ? CLONE_NEWNS : CLONE_NEWUSER | CLONE_NEWNS) != 0) {
    return 77;
  }
  if (uid != 0) {
    // Unmapped ids cannot create files (EOVERFLOW), not even on our own tmpfs.
    std::ofstream("/proc/self/setgroups") << "deny";
    std::ofstream("/proc/self/uid_map") << "0 " << uid << " 1";
    std::ofstream("/proc/self/gid_map") << "0 " << gid << " 1";
  }
  // Private first, or the tmpfs would propagate to the parent namespace's /proc.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
      ::mount("tmpfs", "/proc", "tmpfs", 0, "mode=0755") != 0) {
    return 77;
  }
  // An impostor at /proc/self/fd/N pointing outside: must not be trusted.
  fs::create_directories("/proc/self/fd");
  fs::create_symlink(outside, "/proc/self/fd/" + std::to_string(dir->fd()));

  auto proc = dir->proc_path();
  if (proc || proc.error().code != katana::errc::unavailable ||
      proc.error().message().find("/proc") == std::string::npos) {
    return 10;
  }
  auto verified = dir->verify();
  if (verified || verified.error().code != katana::errc::unavailable) {
    return 11;
  }
  auto reopened = dir->reopen(O_RDONLY | O_DIRECTORY);  // directories: openat(fd, ".")
  if (!reopened || list_dir(reopened->release()) != std::set<std::string>{"marker"}) {
    return 12;
  }
  auto file_fd = file->reopen(O_RDONLY);
  if (file_fd || file_fd.error().code != katana::errc::unavailable) {
    return 13;
  }
  auto resolved = katana::scoped_resolve(root, "dir/../dir/marker");
  if (!resolved || resolved->native() != "dir/marker") {
    return 14;
  }
  auto pinned = katana::pinned_path::open(root, "/../dir");
  if (!pinned || pinned->target() != fs::canonical(root) / "dir") {
    return 15;
  }
  auto made = katana::scoped_mkdir_all(root, "new/sub");
  if (!made || !fs::is_directory(root / "new/sub")) {
    return 16;
  }
  return 0;
}

}  // namespace

TEST_CASE("safe_path: without /proc, proc_path and verify fail cleanly", "[safe_path]") {
  const sandbox sb;
  sb.mkdir("dir");
  sb.file("dir/marker");
  sb.file("file", "x");
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int code = 3;
    try {
      code = check_without_proc(sb.root(), sb.outside());
    } catch (...) {
      code = 4;
    }
    ::_exit(code);
  }
  int wstatus = 0;
  REQUIRE(::waitpid(pid, &wstatus, 0) == pid);
  REQUIRE(WIFEXITED(wstatus));
  const int code = WEXITSTATUS(wstatus);
  if (code == 77) {
    WARN("no private mount namespace available: the /proc-less checks were skipped");
    return;
  }
  INFO("failed check number (see check_without_proc): " << code);
  CHECK(code == 0);
}

TEST_CASE("safe_path: scoped_mkdir_all creates nested directories", "[safe_path]") {
  const sandbox sb;
  const fs::path root = sb.root();
  auto made = katana::scoped_mkdir_all(root, "a/b/c", 0700);
  REQUIRE(made);
  CHECK(made->target() == fs::canonical(root) / "a/b/c");
  CHECK(fs::is_directory(root / "a/b/c"));
  CHECK(made->verify());
  struct stat st {};
  REQUIRE(::fstat(made->fd(), &st) == 0);
  CHECK(S_ISDIR(st.st_mode));
  CHECK((st.st_mode & 0777) == 0700);

  auto again = katana::scoped_mkdir_all(root, "/a/./b//c/");
  REQUIRE(again);
  CHECK(again->target() == made->target());

  auto dotdot = katana::scoped_mkdir_all(root, "x/y/../z");  // as mkdir -p: x/y is made too
  REQUIRE(dotdot);
  CHECK(dotdot->target() == fs::canonical(root) / "x/z");
  CHECK(fs::is_directory(root / "x/y"));
  auto top = katana::scoped_mkdir_all(root, "../../t");
  REQUIRE(top);
  CHECK(top->target() == fs::canonical(root) / "t");
  auto self = katana::scoped_mkdir_all(root, "");
  REQUIRE(self);
  CHECK(self->target() == fs::canonical(root));
}

TEST_CASE("safe_path: scoped_mkdir_all follows symlinks only inside the root", "[safe_path]") {
  const sandbox sb;
  sb.mkdir("real");
  sb.link("real", "link");
  sb.link(sb.outside().native(), "abs_out");
  sb.link("../../outside", "rel_out");
  sb.link("/new_target/x", "dangling");
  const fs::path root = sb.root();
  const fs::path canonical = fs::canonical(root);

  auto through = katana::scoped_mkdir_all(root, "link/x/y");
  REQUIRE(through);
  CHECK(through->target() == canonical / "real/x/y");
  CHECK(fs::is_directory(root / "real/x/y"));

  auto abs_out = katana::scoped_mkdir_all(root, "abs_out/made");
  REQUIRE(abs_out);
  CHECK(abs_out->target() == canonical / sb.outside().relative_path() / "made");
  auto rel_out = katana::scoped_mkdir_all(root, "rel_out/made");
  REQUIRE(rel_out);
  CHECK(rel_out->target() == canonical / "outside/made");
  auto dangling = katana::scoped_mkdir_all(root, "dangling/z");
  REQUIRE(dangling);
  CHECK(dangling->target() == canonical / "new_target/x/z");
  CHECK(list_dir(sb.outside()) == std::set<std::string>{"secret"});
  CHECK(inside(root, fd_target(abs_out->fd())));
}

TEST_CASE("safe_path: scoped_mkdir_all with a file in the way", "[safe_path]") {
  const sandbox sb;
  sb.file("file", "x");
  sb.link("file", "file_link");
  const fs::path root = sb.root();
  auto mid = katana::scoped_mkdir_all(root, "file/x");
  REQUIRE_FALSE(mid.has_value());
  CHECK(has_errno(mid.error(), ENOTDIR));
  auto last = katana::scoped_mkdir_all(root, "file");
  REQUIRE_FALSE(last.has_value());
  CHECK(has_errno(last.error(), EEXIST));
  auto via_link = katana::scoped_mkdir_all(root, "file_link");
  REQUIRE_FALSE(via_link.has_value());
  CHECK(has_errno(via_link.error(), EEXIST));
  CHECK(via_link.error().message().find("scoped_mkdir_all") != std::string::npos);
}

TEST_CASE("safe_path: concurrent symlink swaps never escape the root", "[safe_path]") {
  const sandbox sb;
  const fs::path root = sb.root();
  std::atomic<bool> stop{false};

  SECTION("a directory exchanged with a symlink to the outside") {
    sb.mkdir("d/sub");
    sb.link(sb.outside().native(), "swap");
    std::thread attacker([&] {
      while (!stop.load()) {
        ::renameat2(AT_FDCWD, (root / "d").c_str(), AT_FDCWD, (root / "swap").c_str(),
                    RENAME_EXCHANGE);
      }
    });
    katana::scope_exit join([&]() noexcept {
      stop = true;
      attacker.join();
    });
    int escapes = 0;
    for (int i = 0; i < 1000; ++i) {
      if (auto p = katana::pinned_path::open(root, "d/sub");
          p && !inside(root, fd_target(p->fd()))) {
        ++escapes;
      }
      if (auto m = katana::scoped_mkdir_all(root, "d/sub/made");
          m && !inside(root, fd_target(m->fd()))) {
        ++escapes;
      }
      if (auto j = katana::scoped_join(root, "swap/sub"); j && !inside(root, j->native())) {
        ++escapes;
      }
    }
    CHECK(escapes == 0);
  }

  SECTION("a symlink planted where a directory is being created") {
    sb.mkdir("p");
    std::atomic<int> target{0};
    std::thread attacker([&] {
      while (!stop.load()) {
        const fs::path x = root / "p" / ("x" + std::to_string(target.load()));
        ::symlink(sb.outside().c_str(), x.c_str());
        ::unlink(x.c_str());
      }
    });
    katana::scope_exit join([&]() noexcept {
      stop = true;
      attacker.join();
    });
    int escapes = 0;
    for (int i = 0; i < 500; ++i) {
      target = i;
      auto m = katana::scoped_mkdir_all(root, "p/x" + std::to_string(i) + "/y");
      if (m && !inside(root, fd_target(m->fd()))) {
        ++escapes;
      }
    }
    CHECK(escapes == 0);
  }
  CHECK(list_dir(sb.outside()) == std::set<std::string>{"secret"});
}

TEST_CASE("safe_path: no descriptors leak, on success or failure", "[safe_path]") {
  const sandbox sb;
  sb.mkdir("real/sub");
  sb.file("real/file");
  sb.link("/real", "abs");
  sb.link("loop", "loop");
  const fs::path root = sb.root();
  const std::size_t before = open_fds();
  for (int i = 0; i < 20; ++i) {
    (void)katana::scoped_resolve(root, "abs/sub/../missing/x");
    (void)katana::scoped_resolve(root, "loop");
    (void)katana::scoped_join(root, "real/file/x");
    (void)katana::scoped_join(sb.base() / "nope", "x");
    (void)walk_only(root, "abs/sub/../../abs/file");
    {
      auto p = katana::pinned_path::open(root, "abs/sub");
      REQUIRE(p);
      (void)p->verify();
      (void)p->reopen(O_RDONLY | O_DIRECTORY);
    }
    (void)katana::pinned_path::open(root, "abs/missing");
    (void)katana::scoped_mkdir_all(root, "abs/new" + std::to_string(i) + "/deeper");
    (void)katana::scoped_mkdir_all(root, "real/file/x");
  }
  CHECK(open_fds() == before);
}
