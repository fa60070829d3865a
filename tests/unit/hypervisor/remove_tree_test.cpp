// remove_tree: a tree with files, symlinks and nested directories goes; a mount below it, and
// what a symlink points to, stay.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sched.h>
#include <string>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <katana/sandbox/remove_tree.hpp>

#include "../temp_dir.hpp"
#include "catch.hpp"

namespace fs = std::filesystem;

namespace {

void touch(const fs::path& p) {
  std::ofstream(p) << "x";
}

}  // namespace

TEST_CASE("remove_tree removes a tree and does not follow symlinks", "[remove_tree]") {
  katana_test::temp_dir s("katana-remove-tree");
  const auto keep = s.path / "keep";
  const auto tree = s.path / "tree";
  fs::create_directories(keep);
  touch(keep / "file");
  fs::create_directories(tree / "a" / "b" / "c");
  touch(tree / "a" / "b" / "c" / "f");
  touch(tree / "top");
  fs::create_directory_symlink(keep, tree / "a" / "link-to-dir");
  fs::create_symlink(keep / "file", tree / "link-to-file");
  fs::create_symlink("/nonexistent", tree / "a" / "dangling");

  // A trailing slash does not make it follow a symlink.
  fs::create_directory_symlink(keep, s.path / "link");
  REQUIRE(katana::sandbox::remove_tree((s.path / "link").native() + "/"));
  CHECK_FALSE(fs::exists(fs::symlink_status(s.path / "link")));
  CHECK(fs::exists(keep / "file"));
  CHECK(katana::sandbox::detail::no_mounts_below(tree.native()));

  REQUIRE(katana::sandbox::remove_tree(tree));
  CHECK_FALSE(fs::exists(fs::symlink_status(tree)));
  CHECK(fs::exists(keep / "file"));

  CHECK(katana::sandbox::remove_tree(tree));  // missing: nothing to do
  touch(tree);
  CHECK(katana::sandbox::remove_tree(tree));  // a file
  CHECK_FALSE(fs::exists(tree));
}

TEST_CASE("remove_tree leaves a mount below the tree alone and names it", "[remove_tree]") {
  if (::geteuid() != 0) {
    std::puts("skip: a bind mount needs root (a private mount namespace)");
    return;
  }
  katana_test::temp_dir s("katana-remove-tree");
  const auto victim = s.path / "rootfs";
  const auto tree = s.path / "sandbox";
  fs::create_directories(victim / "bin");
  touch(victim / "bin" / "sh");
  fs::create_directories(tree / "shared" / "rootfs");
  touch(tree / "shared" / "other");
  touch(tree / "console.log");
  // In a child with its own mount namespace, so that no mount outlives the test. Exit code:
  // the step that failed.
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    if (::unshare(CLONE_NEWNS) != 0 ||
        ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      ::_exit(1);
    }
    const auto target = tree / "shared" / "rootfs";
    if (::mount(victim.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0) {
      ::_exit(2);
    }
    // What kernels without mount ids (before 5.8) rely on: mountinfo names the mount.
    if (auto m = katana::sandbox::detail::no_mounts_below(tree.native());
        m || m.error().message().find(target.native() + " is a mount point") == std::string::npos) {
      ::_exit(7);
    }
    auto r = katana::sandbox::remove_tree(tree);
    if (r) {
      ::_exit(3);
    }
    if (r.error().message().find(target.native() + " is a mount point") == std::string::npos) {
      std::fprintf(stderr, "%s\n", r.error().message().c_str());
      ::_exit(4);
    }
    std::error_code ec;
    if (!fs::exists(target / "bin" / "sh", ec) || fs::exists(tree / "shared" / "other", ec) ||
        fs::exists(tree / "console.log", ec)) {
      ::_exit(5);
    }
    // Once unmounted, the rest goes.
    if (::umount2(target.c_str(), MNT_DETACH) != 0 || !katana::sandbox::remove_tree(tree) ||
        fs::exists(tree, ec)) {
      ::_exit(6);
    }
    ::_exit(0);
  }
  int st = 0;
  REQUIRE(::waitpid(pid, &st, 0) == pid);
  REQUIRE(WIFEXITED(st));
  CHECK(WEXITSTATUS(st) == 0);
  CHECK(fs::exists(victim / "bin" / "sh"));
}
