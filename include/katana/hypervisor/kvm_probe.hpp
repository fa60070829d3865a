// Is KVM usable here? Decided by trying, not by looking at /dev/kvm: a child process opens
// /dev/kvm, creates a VM with one page of guest memory holding `hlt`, creates a vCPU in real
// mode at that page and runs it; KVM works when the run exits with KVM_EXIT_HLT. Nested KVM
// can hang in KVM_RUN, so the parent waits a bounded time and kills the child.
#pragma once

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <fcntl.h>
#include <linux/kvm.h>
#include <string>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <katana/config.hpp>
#include <katana/core/str_cat.hpp>

namespace katana::inline v0::hypervisor {

struct kvm_probe_result {
  bool usable = false;
  std::string reason;  // why not (or "KVM_RUN exited with HLT")
};

namespace detail {

/// Runs in the probe child; the exit code says how far it got (0 = HLT seen).
inline int kvm_probe_child() noexcept {
  const int kvm = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) {
    return 10;
  }
  if (::ioctl(kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
    return 11;
  }
  const int vm = ::ioctl(kvm, KVM_CREATE_VM, 0UL);
  if (vm < 0) {
    return 12;
  }
  void* mem = ::mmap(nullptr, 0x1000, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    return 13;
  }
  static constexpr unsigned char code[] = {0xf4};  // hlt
  std::memcpy(mem, code, sizeof code);
  kvm_userspace_memory_region region{};
  region.slot = 0;
  region.guest_phys_addr = 0x1000;
  region.memory_size = 0x1000;
  region.userspace_addr = reinterpret_cast<std::uint64_t>(mem);
  if (::ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
    return 14;
  }
  const int vcpu = ::ioctl(vm, KVM_CREATE_VCPU, 0UL);
  if (vcpu < 0) {
    return 15;
  }
  const int run_size = ::ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
  if (run_size <= 0) {
    return 16;
  }
  void* run_mem = ::mmap(nullptr, static_cast<std::size_t>(run_size), PROT_READ | PROT_WRITE,
                         MAP_SHARED, vcpu, 0);
  if (run_mem == MAP_FAILED) {
    return 17;
  }
  auto* run = static_cast<kvm_run*>(run_mem);
#if defined(__x86_64__)
  kvm_sregs sregs{};
  if (::ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) {
    return 18;
  }
  sregs.cs.base = 0;
  sregs.cs.selector = 0;
  if (::ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0) {
    return 19;
  }
  kvm_regs regs{};
  regs.rip = 0x1000;
  regs.rflags = 0x2;
  if (::ioctl(vcpu, KVM_SET_REGS, &regs) < 0) {
    return 20;
  }
  if (::ioctl(vcpu, KVM_RUN, 0) < 0) {
    return 21;
  }
  return run->exit_reason == KVM_EXIT_HLT ? 0 : 22;
#else
  (void)run;
  return 0;  // the vCPU was created; running needs per-arch register setup
#endif
}

inline std::string kvm_probe_reason(int code) {
  switch (code) {
    case 0:
      return "KVM_RUN exited with HLT";
    case 10:
      return "cannot open /dev/kvm";
    case 11:
      return "unexpected KVM API version";
    case 12:
      return "KVM_CREATE_VM failed";
    case 15:
      return "KVM_CREATE_VCPU failed";
    case 21:
      return "KVM_RUN failed";
    case 22:
      return "KVM_RUN did not exit with HLT";
    default:
      return str_cat("KVM setup failed (step ", code, ")");
  }
}

}  // namespace detail

/// Tries KVM in a child process, waiting at most `timeout`.
inline kvm_probe_result probe_kvm(std::chrono::milliseconds timeout) {
  if (::access("/dev/kvm", F_OK) != 0) {
    return {false, "no /dev/kvm"};
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    return {false, str_cat("fork: ", std::strerror(errno))};
  }
  if (pid == 0) {
    ::_exit(detail::kvm_probe_child());
  }
  const auto end = std::chrono::steady_clock::now() + timeout;
  int st = 0;
  for (;;) {
    const pid_t r = ::waitpid(pid, &st, WNOHANG);
    if (r == pid) {
      break;
    }
    if (r < 0 && errno != EINTR) {
      return {false, str_cat("waitpid: ", std::strerror(errno))};
    }
    if (std::chrono::steady_clock::now() >= end) {
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
      }
      return {false,
              str_cat("KVM_RUN did not return within ", timeout.count(), " ms (nested KVM hangs)")};
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (!WIFEXITED(st)) {
    return {false, "the probe died"};
  }
  const int code = WEXITSTATUS(st);
  return {code == 0, detail::kvm_probe_reason(code)};
}

}  // namespace katana::inline v0::hypervisor
