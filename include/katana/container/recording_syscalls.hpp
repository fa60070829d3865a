// recording_syscalls: a container::syscalls policy that performs nothing and records every
// call as text, so the init's mount and namespace logic can be tested without root. Opens
// return fake descriptors (1000, 1001, ...); `fail_on` makes calls whose text contains a
// substring fail with an errno. For tests only: it allocates.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <katana/config.hpp>
#include <katana/container/syscalls.hpp>
#include <katana/core/str_cat.hpp>

namespace katana::inline v0::container {

struct recording_syscalls {
  std::vector<std::string> calls;
  std::vector<std::pair<std::string, int>> failures;  // (substring, errno)
  std::vector<std::string> missing;                   // open_in_root paths that report ENOENT
  std::string cwd = "/";                              // the last chdir's path
  std::string getcwd_answer;  // when set, what getcwd answers ("(unreachable)/x": outside)
  /// openat of these paths gives a descriptor whose read() returns the text.
  std::vector<std::pair<std::string, std::string>> files;
  int next_fd = 1000;

  void fail_on(std::string substring, int err) { failures.emplace_back(std::move(substring), err); }

  /// The recorded calls whose text starts with `prefix`.
  std::vector<std::string> with_prefix(std::string_view prefix) const {
    std::vector<std::string> out;
    for (const std::string& c : calls) {
      if (c.starts_with(prefix)) {
        out.push_back(c);
      }
    }
    return out;
  }

  int mount(const char* source,
            const char* target,
            const char* fstype,
            unsigned long flags,
            const void* data) noexcept {
    return record(str_cat("mount(", s(source), ", ", s(target), ", ", s(fstype), ", ", hex(flags),
                          ", ", s(static_cast<const char*>(data)), ")"));
  }
  int umount2(const char* target, int flags) noexcept {
    return record(str_cat("umount2(", s(target), ", ", flags, ")"));
  }
  int mount_setattr(int fd,
                    const char* path,
                    unsigned long at_flags,
                    std::uint64_t set,
                    std::uint64_t clr,
                    std::uint64_t propagation) noexcept {
    return record(str_cat("mount_setattr(", fd, ", ", s(path), ", ", hex(at_flags), ", set=",
                          hex(set), ", clr=", hex(clr), ", prop=", hex(propagation), ")"));
  }
  int pivot_root(const char* new_root, const char* put_old) noexcept {
    return record(str_cat("pivot_root(", s(new_root), ", ", s(put_old), ")"));
  }
  int chdir(const char* path) noexcept {
    const int rc = record(str_cat("chdir(", s(path), ")"));
    if (rc == 0 && path != nullptr) {
      cwd = path;
    }
    return rc;
  }
  int getcwd(char* buf, std::size_t size) noexcept {
    const int rc = record("getcwd()");
    if (rc != 0) {
      return rc;
    }
    const std::string& answer = getcwd_answer.empty() ? cwd : getcwd_answer;
    if (answer.size() + 1 > size) {
      return -ERANGE;
    }
    std::memcpy(buf, answer.c_str(), answer.size() + 1);
    return static_cast<int>(answer.size() + 1);
  }
  int fchdir(int fd) noexcept { return record(str_cat("fchdir(", fd, ")")); }
  int chroot(const char* path) noexcept { return record(str_cat("chroot(", s(path), ")")); }
  int setns(int fd, int type) noexcept {
    return record(str_cat("setns(", fd, ", ", hex(type), ")"));
  }
  int unshare(int flags) noexcept { return record(str_cat("unshare(", hex(flags), ")")); }
  int sethostname(const char* name, std::size_t len) noexcept {
    return record(str_cat("sethostname(", std::string(name, len), ")"));
  }
  int setdomainname(const char* name, std::size_t len) noexcept {
    return record(str_cat("setdomainname(", std::string(name, len), ")"));
  }
  int open_in_root(int root, const char* path, int flags, mode_t mode) noexcept {
    for (const std::string& m : missing) {
      if (m == path) {
        calls.push_back(str_cat("open_in_root(", root, ", ", s(path), ") = -ENOENT"));
        return -ENOENT;
      }
    }
    (void)flags;
    (void)mode;
    return open_record(str_cat("open_in_root(", root, ", ", s(path), ")"));
  }
  int openat(int dirfd, const char* path, int flags, mode_t mode) noexcept {
    (void)mode;
    const int fd = open_record(str_cat("openat(", dirfd, ", ", s(path), ", ", hex(flags), ")"));
    for (const auto& [name, text] : files) {
      if (fd >= 0 && name == path) {
        reads_.push_back({fd, text, 0});
      }
    }
    return fd;
  }
  int mkdirat(int dirfd, const char* path, mode_t mode) noexcept {
    return record(str_cat("mkdirat(", dirfd, ", ", s(path), ", ", oct(mode), ")"));
  }
  int mknodat(int dirfd, const char* path, mode_t mode, dev_t dev) noexcept {
    return record(str_cat("mknodat(", dirfd, ", ", s(path), ", ", oct(mode), ", ", dev, ")"));
  }
  int symlinkat(const char* target, int dirfd, const char* path) noexcept {
    return record(str_cat("symlinkat(", s(target), ", ", dirfd, ", ", s(path), ")"));
  }
  int fchown(int fd, uid_t uid, gid_t gid) noexcept {
    return record(str_cat("fchown(", fd, ", ", uid, ", ", gid, ")"));
  }
  int write(int fd, const void* buf, std::size_t len) noexcept {
    return record(
        str_cat("write(", fd, ", ", std::string(static_cast<const char*>(buf), len), ")"));
  }
  int read(int fd, void* buf, std::size_t len) noexcept {
    for (open_file& o : reads_) {
      if (o.fd == fd) {
        const std::size_t n = std::min(len, o.text.size() - o.offset);
        std::memcpy(buf, o.text.data() + o.offset, n);
        o.offset += n;
        return static_cast<int>(n);
      }
    }
    return record(str_cat("read(", fd, ")"));
  }
  int close(int fd) noexcept {
    std::erase_if(reads_, [&](const open_file& o) { return o.fd == fd; });
    return 0;  // not recorded: noise
  }
  int set_capabilities(const capability_masks& c) noexcept {
    return record(str_cat("capset(eff=", hex(c.effective), ", perm=", hex(c.permitted),
                          ", inh=", hex(c.inheritable), ", amb=", hex(c.ambient), ")"));
  }
  int drop_bounding(const capability_masks& c) noexcept {
    return record(str_cat("bounding(", hex(c.bounding), ")"));
  }
  int prctl(int option, unsigned long a2, unsigned long a3) noexcept {
    return record(str_cat("prctl(", option, ", ", a2, ", ", a3, ")"));
  }
  int setgroups(std::size_t n, const gid_t* gids) noexcept {
    std::string list;
    for (std::size_t i = 0; i < n; ++i) {
      list += str_cat(i == 0 ? "" : ",", gids[i]);
    }
    return record(str_cat("setgroups(", list, ")"));
  }
  int setresgid(gid_t r, gid_t e, gid_t sv) noexcept {
    return record(str_cat("setresgid(", r, ", ", e, ", ", sv, ")"));
  }
  int setresuid(uid_t r, uid_t e, uid_t sv) noexcept {
    return record(str_cat("setresuid(", r, ", ", e, ", ", sv, ")"));
  }
  int prlimit(int resource, std::uint64_t soft, std::uint64_t hard) noexcept {
    return record(str_cat("prlimit(", resource, ", ", soft, ", ", hard, ")"));
  }
  int umask(mode_t mask) noexcept {
    record(str_cat("umask(", oct(mask), ")"));
    return 022;
  }
  int personality(unsigned long p) noexcept { return record(str_cat("personality(", p, ")")); }
  int seccomp_load(const sock_fprog* prog, unsigned long flags) noexcept {
    return record(str_cat("seccomp(", prog->len, " instructions, ", hex(flags), ")"));
  }
  int execve(const char* path, const char* const* argv, const char* const* envp) noexcept {
    (void)argv;
    (void)envp;
    return record(str_cat("execve(", s(path), ")"));
  }

 private:
  struct open_file {
    int fd;
    std::string text;
    std::size_t offset;
  };
  std::vector<open_file> reads_;

  static std::string s(const char* p) { return p == nullptr ? "NULL" : str_cat("\"", p, "\""); }
  template <class T>
  static std::string hex(T v) {
    char b[32];
    std::snprintf(b, sizeof b, "0x%llx",
                  static_cast<unsigned long long>(static_cast<std::make_unsigned_t<T>>(v)));
    return b;
  }
  static std::string oct(unsigned v) {
    char b[32];
    std::snprintf(b, sizeof b, "0%o", v);
    return b;
  }
  int failure_for(const std::string& call) const {
    for (const auto& [sub, err] : failures) {
      if (call.find(sub) != std::string::npos) {
        return -err;
      }
    }
    return 0;
  }
  int record(std::string call) noexcept {
    const int rc = failure_for(call);
    calls.push_back(rc == 0 ? std::move(call) : str_cat(call, " = ", rc));
    return rc;
  }
  int open_record(std::string call) noexcept {
    const int rc = failure_for(call);
    if (rc != 0) {
      calls.push_back(str_cat(call, " = ", rc));
      return rc;
    }
    const int fd = next_fd++;
    calls.push_back(str_cat(call, " = ", fd));
    return fd;
  }
};

static_assert(syscalls<recording_syscalls>);

}  // namespace katana::inline v0::container
