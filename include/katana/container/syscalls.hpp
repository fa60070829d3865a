// container::syscalls<S>: the system calls the container init makes, as a policy (youki's
// Syscall trait), so that the mount and namespace logic of init.hpp runs for real with
// linux_syscalls and is recorded, without root, with recording_syscalls.
//
// Every operation is noexcept and allocation-free and returns the kernel's convention: a
// non-negative value (0, or a file descriptor) on success, -errno on failure.
#pragma once

#include <cerrno>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <katana/config.hpp>

namespace katana::inline v0::container {

/// The five capability sets as bit masks (bit n = capability n).
struct capability_masks {
  std::uint64_t bounding = 0;
  std::uint64_t effective = 0;
  std::uint64_t inheritable = 0;
  std::uint64_t permitted = 0;
  std::uint64_t ambient = 0;
  bool operator==(const capability_masks&) const = default;
};

/// The system calls container init needs. All noexcept; >= 0 is success, -errno failure.
template <class S>
concept syscalls = requires(S& s,
                            const char* path,
                            const char* const* argv,
                            unsigned long flags,
                            int fd,
                            const void* data,
                            void* buffer,
                            char* chars,
                            std::size_t size,
                            const gid_t* gids,
                            const sock_fprog* prog,
                            const capability_masks& caps) {
  // mount(2), umount2(2), mount_setattr(2) on (dirfd, path) with AT_* flags
  { s.mount(path, path, path, flags, data) }
  noexcept->std::same_as<int>;
  { s.umount2(path, fd) }
  noexcept->std::same_as<int>;
  { s.mount_setattr(fd, path, flags, std::uint64_t{}, std::uint64_t{}, std::uint64_t{}) }
  noexcept->std::same_as<int>;
  { s.pivot_root(path, path) }
  noexcept->std::same_as<int>;
  { s.chdir(path) }
  noexcept->std::same_as<int>;
  { s.fchdir(fd) }
  noexcept->std::same_as<int>;
  // getcwd(2): the path's length, or -errno; "(unreachable)..." outside the root
  { s.getcwd(chars, size) }
  noexcept->std::same_as<int>;
  { s.chroot(path) }
  noexcept->std::same_as<int>;
  // namespaces
  { s.setns(fd, fd) }
  noexcept->std::same_as<int>;
  { s.unshare(fd) }
  noexcept->std::same_as<int>;
  { s.sethostname(path, size) }
  noexcept->std::same_as<int>;
  { s.setdomainname(path, size) }
  noexcept->std::same_as<int>;
  // files: open_in_root resolves like openat2(RESOLVE_IN_ROOT) and returns a descriptor
  { s.open_in_root(fd, path, fd, mode_t{}) }
  noexcept->std::same_as<int>;
  { s.openat(fd, path, fd, mode_t{}) }
  noexcept->std::same_as<int>;
  { s.mkdirat(fd, path, mode_t{}) }
  noexcept->std::same_as<int>;
  { s.mknodat(fd, path, mode_t{}, dev_t{}) }
  noexcept->std::same_as<int>;
  { s.symlinkat(path, fd, path) }
  noexcept->std::same_as<int>;
  { s.fchown(fd, uid_t{}, gid_t{}) }
  noexcept->std::same_as<int>;
  { s.write(fd, data, size) }
  noexcept->std::same_as<int>;
  // read(2): bytes read (0 at the end), or -errno
  { s.read(fd, buffer, size) }
  noexcept->std::same_as<int>;
  { s.close(fd) }
  noexcept->std::same_as<int>;
  // credentials and process attributes
  { s.set_capabilities(caps) }
  noexcept->std::same_as<int>;
  { s.drop_bounding(caps) }
  noexcept->std::same_as<int>;
  { s.prctl(fd, flags, flags) }
  noexcept->std::same_as<int>;
  { s.setgroups(size, gids) }
  noexcept->std::same_as<int>;
  { s.setresgid(gid_t{}, gid_t{}, gid_t{}) }
  noexcept->std::same_as<int>;
  { s.setresuid(uid_t{}, uid_t{}, uid_t{}) }
  noexcept->std::same_as<int>;
  { s.prlimit(fd, std::uint64_t{}, std::uint64_t{}) }
  noexcept->std::same_as<int>;
  { s.umask(mode_t{}) }
  noexcept->std::same_as<int>;
  { s.personality(flags) }
  noexcept->std::same_as<int>;
  { s.seccomp_load(prog, flags) }
  noexcept->std::same_as<int>;
  { s.execve(path, argv, argv) }
  noexcept->std::same_as<int>;
};

/// The real thing.
struct linux_syscalls {
  static int ret(long r) noexcept { return r < 0 ? -errno : static_cast<int>(r); }

  int mount(const char* source,
            const char* target,
            const char* fstype,
            unsigned long flags,
            const void* data) noexcept {
    return ret(::mount(source, target, fstype, flags, data));
  }
  int umount2(const char* target, int flags) noexcept { return ret(::umount2(target, flags)); }
  int mount_setattr(int dirfd,
                    const char* path,
                    unsigned long at_flags,
                    std::uint64_t attr_set,
                    std::uint64_t attr_clr,
                    std::uint64_t propagation) noexcept {
    struct mount_attr attr {};
    attr.attr_set = attr_set;
    attr.attr_clr = attr_clr;
    attr.propagation = propagation;
    return ret(::syscall(SYS_mount_setattr, dirfd, path, at_flags, &attr, sizeof attr));
  }
  int pivot_root(const char* new_root, const char* put_old) noexcept {
    return ret(::syscall(SYS_pivot_root, new_root, put_old));
  }
  int chdir(const char* path) noexcept { return ret(::chdir(path)); }
  int fchdir(int fd) noexcept { return ret(::fchdir(fd)); }
  int getcwd(char* buf, std::size_t size) noexcept {
    return ret(::syscall(SYS_getcwd, buf, size));  // the syscall: glibc hides "(unreachable)"
  }
  int chroot(const char* path) noexcept { return ret(::chroot(path)); }
  int setns(int fd, int nstype) noexcept { return ret(::setns(fd, nstype)); }
  int unshare(int flags) noexcept { return ret(::unshare(flags)); }
  int sethostname(const char* name, std::size_t len) noexcept {
    return ret(::sethostname(name, len));
  }
  int setdomainname(const char* name, std::size_t len) noexcept {
    return ret(::setdomainname(name, len));
  }
  int open_in_root(int root_fd, const char* path, int flags, mode_t mode) noexcept {
    open_how how{};
    how.flags = static_cast<__u64>(static_cast<unsigned>(flags | O_CLOEXEC));
    how.mode = (flags & O_CREAT) != 0 ? mode : 0;
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    return ret(::syscall(SYS_openat2, root_fd, path, &how, sizeof how));
  }
  int openat(int dirfd, const char* path, int flags, mode_t mode) noexcept {
    return ret(::openat(dirfd, path, flags | O_CLOEXEC, mode));
  }
  int mkdirat(int dirfd, const char* path, mode_t mode) noexcept {
    return ret(::mkdirat(dirfd, path, mode));
  }
  int mknodat(int dirfd, const char* path, mode_t mode, dev_t dev) noexcept {
    return ret(::mknodat(dirfd, path, mode, dev));
  }
  int symlinkat(const char* target, int dirfd, const char* linkpath) noexcept {
    return ret(::symlinkat(target, dirfd, linkpath));
  }
  int fchown(int fd, uid_t uid, gid_t gid) noexcept {
    // fd may be an O_PATH descriptor: fchownat(AT_EMPTY_PATH) handles both.
    return ret(::fchownat(fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW));
  }
  int write(int fd, const void* buf, std::size_t len) noexcept {
    const auto* p = static_cast<const char*>(buf);
    std::size_t done = 0;
    while (done < len) {
      const ssize_t n = ::write(fd, p + done, len - done);
      if (n < 0) {
        if (errno == EINTR) {
          continue;
        }
        return -errno;
      }
      done += static_cast<std::size_t>(n);
    }
    return 0;
  }
  int read(int fd, void* buf, std::size_t len) noexcept {
    ssize_t n = 0;
    do {
      n = ::read(fd, buf, len);
    } while (n < 0 && errno == EINTR);
    return ret(n);
  }
  int close(int fd) noexcept { return ret(::close(fd)); }

  int set_capabilities(const capability_masks& caps) noexcept {
    __user_cap_header_struct header{};
    header.version = _LINUX_CAPABILITY_VERSION_3;
    header.pid = 0;
    __user_cap_data_struct data[2]{};
    for (int i = 0; i < 2; ++i) {
      const auto shift = static_cast<unsigned>(32 * i);
      data[i].effective = static_cast<std::uint32_t>(caps.effective >> shift);
      data[i].permitted = static_cast<std::uint32_t>(caps.permitted >> shift);
      data[i].inheritable = static_cast<std::uint32_t>(caps.inheritable >> shift);
    }
    if (const int rc = ret(::syscall(SYS_capset, &header, data)); rc < 0) {
      return rc;
    }
    // Ambient capabilities must be permitted and inheritable; clear, then raise each.
    if (const int rc = ret(::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0L, 0L, 0L));
        rc < 0 && rc != -EINVAL) {
      return rc;
    }
    for (unsigned long cap = 0; cap < 64; ++cap) {
      if ((caps.ambient >> cap & 1U) != 0) {
        if (const int rc = ret(::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0L, 0L));
            rc < 0) {
          return rc;
        }
      }
    }
    return 0;
  }
  /// Drops every capability not in caps.bounding from the bounding set (up to the kernel's
  /// last capability: PR_CAPBSET_DROP fails with EINVAL past it).
  int drop_bounding(const capability_masks& caps) noexcept {
    for (unsigned long cap = 0; cap < 64; ++cap) {
      if ((caps.bounding >> cap & 1U) == 0) {
        const int rc = ret(::prctl(PR_CAPBSET_DROP, cap, 0L, 0L, 0L));
        if (rc == -EINVAL) {
          break;
        }
        if (rc < 0) {
          return rc;
        }
      }
    }
    return 0;
  }
  int prctl(int option, unsigned long arg2, unsigned long arg3) noexcept {
    return ret(::prctl(option, arg2, arg3, 0L, 0L));
  }
  int setgroups(std::size_t n, const gid_t* gids) noexcept {
    return ret(::syscall(SYS_setgroups, n, gids));
  }
  // The raw syscalls: glibc's wrappers broadcast to every thread (there is one here) with
  // signals, which is not async-signal-safe after clone.
  int setresgid(gid_t r, gid_t e, gid_t s) noexcept {
    return ret(::syscall(SYS_setresgid, r, e, s));
  }
  int setresuid(uid_t r, uid_t e, uid_t s) noexcept {
    return ret(::syscall(SYS_setresuid, r, e, s));
  }
  int prlimit(int resource, std::uint64_t soft, std::uint64_t hard) noexcept {
    struct rlimit64 lim {};
    lim.rlim_cur = soft;
    lim.rlim_max = hard;
    return ret(::syscall(SYS_prlimit64, 0, resource, &lim, nullptr));
  }
  int umask(mode_t mask) noexcept { return static_cast<int>(::umask(mask)); }
  int personality(unsigned long persona) noexcept { return ret(::personality(persona)); }
  int seccomp_load(const sock_fprog* prog, unsigned long flags) noexcept {
    return ret(::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, prog));
  }
  int execve(const char* path, const char* const* argv, const char* const* envp) noexcept {
    return ret(::execve(path, const_cast<char* const*>(argv), const_cast<char* const*>(envp)));
  }
};

static_assert(syscalls<linux_syscalls>);

}  // namespace katana::inline v0::container
