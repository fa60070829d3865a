// A busybox-static bundle in a temporary directory for the end-to-end container tests, and
// checks that a test left nothing behind (mounts, child processes, files).
#pragma once

#include <cerrno>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include <katana/oci/spec.hpp>

#include "catch.hpp"

namespace katana_test {

namespace fs = std::filesystem;

inline std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Why a root test cannot run here, or empty.
inline std::string root_skip_reason() {
  if (::geteuid() != 0) {
    return "needs root";
  }
  if (!fs::exists("/bin/busybox")) {
    return "needs /bin/busybox (Debian package busybox-static)";
  }
  return {};
}

#define KATANA_REQUIRE_ROOT()                                                      \
  do {                                                                             \
    if (const std::string why = ::katana_test::root_skip_reason(); !why.empty()) { \
      WARN("skipped: " << why);                                                    \
      return;                                                                      \
    }                                                                              \
  } while (false)

struct bundle {
  fs::path dir;     // the temporary directory holding everything
  fs::path path;    // the bundle
  fs::path rootfs;  // <bundle>/rootfs
  fs::path state;   // a state directory (not created)
  fs::path out;     // the container's stdout+stderr
  int out_fd = -1;
  int null_fd = -1;

  bundle() {
    std::string tmpl = (fs::temp_directory_path() / "katana-ct-XXXXXX").native();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    dir = tmpl;
    path = dir / "bundle";
    rootfs = path / "rootfs";
    state = dir / "state";
    out = dir / "out.txt";
    for (const char* d : {"bin", "proc", "sys", "dev", "tmp", "etc", "ro", "masked", "root"}) {
      fs::create_directories(rootfs / d);
    }
    fs::permissions(rootfs / "ro", fs::perms::all);
    fs::permissions(rootfs / "tmp", fs::perms::all | fs::perms::sticky_bit);
    fs::copy_file("/bin/busybox", rootfs / "bin/busybox");
    for (const char* app :
         {"sh",    "echo",  "cat",  "ls",  "id",       "hostname", "sleep", "true",
          "false", "mount", "grep", "ps",  "readlink", "stat",     "mkdir", "touch",
          "wc",    "tty",   "pwd",  "env", "ulimit",   "test"}) {
      fs::create_symlink("busybox", rootfs / "bin" / app);
    }
    std::ofstream(rootfs / "masked/secret") << "secret\n";
    std::ofstream(rootfs / "etc/passwd") << "root:x:0:0:root:/root:/bin/sh\n";
    out_fd = ::open(out.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    REQUIRE(out_fd >= 0);
  }
  bundle(const bundle&) = delete;
  bundle& operator=(const bundle&) = delete;

  ~bundle() {
    ::close(out_fd);
    ::close(null_fd);
    // Nothing may still be mounted below the temporary directory.
    const std::string mountinfo = read_text("/proc/self/mountinfo");
    CHECK(mountinfo.find(dir.native()) == std::string::npos);
    if (mountinfo.find(dir.native()) == std::string::npos) {
      std::error_code ec;
      fs::remove_all(dir, ec);
      CHECK_FALSE(ec);
    }
    // No child process left (zombie or running).
    errno = 0;
    const pid_t left = ::waitpid(-1, nullptr, WNOHANG);
    CHECK(left == -1);
    CHECK(errno == ECHILD);
  }

  std::string output() const { return read_text(out); }
};

/// A spec close to runc's default, running `sh -c script` in the bundle.
inline katana::oci::spec busybox_spec(const std::string& script) {
  using namespace katana::oci;
  spec s;
  s.oci_version = "1.2.0";
  process p;
  p.args = {"sh", "-c", script};
  p.env = {"PATH=/bin", "FOO=bar"};
  p.cwd = "/";
  s.process = p;
  s.root = root{"rootfs", false};
  s.hostname = "katana-test";
  const auto m = [](std::string dest, std::string type, std::string src,
                    std::vector<std::string> opts) {
    katana::oci::mount x;
    x.destination = std::move(dest);
    x.type = std::move(type);
    x.source = std::move(src);
    x.options = std::move(opts);
    return x;
  };
  s.mounts = {
      m("/proc", "proc", "proc", {}),
      m("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}),
      m("/dev/pts", "devpts", "devpts",
        {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}),
      m("/dev/shm", "tmpfs", "shm", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}),
      m("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}),
      m("/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"}),
      m("/sys/fs/cgroup", "cgroup", "cgroup", {"nosuid", "noexec", "nodev", "relatime", "ro"}),
  };
  linux_spec lx;
  lx.namespaces = {{"pid", ""}, {"network", ""}, {"ipc", ""}, {"uts", ""}, {"mount", ""}};
  lx.masked_paths = {"/proc/kcore", "/proc/keys", "/masked", "/proc/acpi", "/does-not-exist"};
  lx.readonly_paths = {"/proc/sys", "/proc/sysrq-trigger", "/ro"};
  s.linux_ = lx;
  return s;
}

/// Runs `body` in a forked child (which may change its own fds, stdio, filters); its exit code.
template <class F>
int in_child(F body) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::_exit(body());
  }
  int st = 0;
  REQUIRE(::waitpid(pid, &st, 0) == pid);
  REQUIRE(WIFEXITED(st));
  return WEXITSTATUS(st);
}

}  // namespace katana_test
