// Can this host run a sandbox VM? `katana-ctl check` (Kata's `kata-runtime check`) in two steps:
// gather_host_facts() looks at the host (it runs the bounded KVM probe, opens
// /dev/vhost-vsock, asks QEMU its version, reads the kernel's first bytes), and evaluate_host()
// turns those facts into checks and a verdict without touching the host, so it can be tested
// with made-up facts.
//
//   auto facts = hypervisor::gather_host_facts(*cfg.hypervisor());
//   facts.cgroup_mode = "hybrid";  // the caller's cgroup probe (hypervisor/ does not use cgroup/)
//   const auto report = hypervisor::evaluate_host(facts);
//   if (!report.runnable) { ... report.summary, the checks with status fail ... }
//
// TCG counts as runnable (slower, with a note): katana boots where Kata refuses to.
#pragma once

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <string_view>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include <katana/arch/arch.hpp>
#include <katana/config/hypervisor.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/unique_fd.hpp>
#include <katana/hypervisor/host.hpp>
#include <katana/hypervisor/kvm_probe.hpp>

namespace katana::inline v0::hypervisor {

enum class check_status {
  ok,       // as it should be
  note,     // fine, but worth knowing (TCG instead of KVM, no vsock)
  warning,  // a VM runs, but something is off
  fail,     // no VM can run until this is fixed
};

inline constexpr std::string_view to_string(check_status s) noexcept {
  switch (s) {
    case check_status::ok:
      return "ok";
    case check_status::note:
      return "note";
    case check_status::warning:
      return "warning";
    case check_status::fail:
      return "fail";
  }
  return "unknown";
}

struct host_check {
  std::string name;  // "kvm", "qemu", "kernel", ...
  check_status status = check_status::ok;
  std::string detail;
};

/// A file the VM needs: where the configuration says it is and what was found there.
struct file_fact {
  std::string path;  // "" = not configured
  bool exists = false;
  bool usable = false;  // executable (binaries), readable and non-empty (kernel, initrd)
  std::string detail;   // why not usable, or what it is ("QEMU emulator version 7.2.19")
};

struct host_facts {
  std::string arch;         // uname -m
  bool arch_known = true;   // katana has a table for it
  std::string qemu_binary;  // the arch's qemu-system-<x>
  std::string machine_type;
  std::string accelerator = "auto";  // the configuration's: auto, kvm, tcg
  bool kvm_probed = false;
  kvm_probe_result kvm;
  bool vhost_vsock = false;
  std::string vhost_vsock_detail;
  file_fact qemu;
  std::string shared_fs;  // virtio-9p, virtio-fs, none
  file_fact virtiofsd;
  file_fact kernel;
  bool kernel_is_elf = false;  // microvm boots an uncompressed vmlinux (PVH)
  file_fact initrd;
  file_fact image;
  std::uint32_t host_tsc_khz = 0;
  std::string cgroup_mode;  // unified, hybrid, legacy, none; "" = not known
  bool root = false;
  std::string config_source;              // what the configuration was read from
  std::string config_error;               // "" = it loaded and validated
  bool assets_known = true;               // false: no hypervisor table to take paths from
  std::vector<std::string> config_notes;  // unknown keys, values fitted to this host
};

struct host_report {
  std::vector<host_check> checks;
  bool runnable = false;
  std::string accelerator;  // what a VM would use: "kvm" or "tcg" ("" when not runnable)
  std::string summary;      // one line
};

namespace detail {

inline void add_check(host_report& r, std::string_view name, check_status s, std::string detail) {
  r.checks.push_back({std::string(name), s, std::move(detail)});
}

inline std::string file_problem(const file_fact& f) {
  if (!f.exists) {
    return str_cat(f.path, " does not exist");
  }
  return f.detail.empty() ? str_cat(f.path, " is not usable") : str_cat(f.path, ": ", f.detail);
}

/// QEMU, virtiofsd, kernel and initrd (or image): the files the configuration names.
inline void check_assets(host_report& r, const host_facts& f) {
  using enum check_status;
  constexpr std::string_view image_hint = " (katana-ctl image build installs it)";
  if (f.qemu.path.empty()) {
    add_check(r, "qemu", fail, "no hypervisor path configured");
  } else if (!f.qemu.exists || !f.qemu.usable) {
    add_check(r, "qemu", fail,
              str_cat(file_problem(f.qemu), " (Debian: apt-get install qemu-system-x86)"));
  } else if (!f.qemu_binary.empty() && !f.qemu.path.ends_with(f.qemu_binary)) {
    add_check(r, "qemu", warning,
              str_cat(f.qemu.path, " is not ", f.qemu_binary, ", the QEMU for ", f.arch));
  } else {
    add_check(r, "qemu", ok,
              f.qemu.detail.empty() ? f.qemu.path : str_cat(f.qemu.path, ": ", f.qemu.detail));
  }

  if (f.virtiofsd.exists && f.virtiofsd.usable) {
    add_check(r, "virtiofsd", ok, str_cat(f.virtiofsd.path, " (shared_fs = ", f.shared_fs, ")"));
  } else if (f.shared_fs == "virtio-fs") {
    add_check(
        r, "virtiofsd", fail,
        str_cat(f.virtiofsd.path.empty() ? "no virtio_fs_daemon configured"
                                         : detail::file_problem(f.virtiofsd),
                " and shared_fs = \"virtio-fs\" (Debian: apt-get install qemu-system-common)"));
  } else {
    add_check(
        r, "virtiofsd", note,
        str_cat(f.virtiofsd.path.empty() ? "not configured" : detail::file_problem(f.virtiofsd),
                ": virtio-fs is not available (shared_fs = ", f.shared_fs, ")"));
  }

  if (f.kernel.path.empty()) {
    add_check(r, "kernel", fail, "no kernel configured");
  } else if (!f.kernel.exists || !f.kernel.usable) {
    add_check(r, "kernel", fail, str_cat(file_problem(f.kernel), image_hint));
  } else if (f.machine_type == "microvm" && !f.kernel_is_elf) {
    add_check(r, "kernel", fail,
              str_cat(f.kernel.path,
                      " is not an ELF: the microvm machine boots an uncompressed vmlinux (PVH)"));
  } else {
    add_check(r, "kernel", ok, f.kernel.path);
  }
  if (!f.initrd.path.empty()) {
    add_check(r, "initrd", f.initrd.exists && f.initrd.usable ? ok : fail,
              f.initrd.exists && f.initrd.usable ? f.initrd.path
                                                 : str_cat(file_problem(f.initrd), image_hint));
  } else if (!f.image.path.empty()) {
    add_check(r, "image", f.image.exists && f.image.usable ? ok : fail,
              f.image.exists && f.image.usable ? f.image.path : file_problem(f.image));
  } else {
    add_check(r, "initrd", fail, "neither initrd nor image is configured");
  }
}

}  // namespace detail

/// The checks and the verdict for `f`; touches nothing.
inline host_report evaluate_host(const host_facts& f) {
  using enum check_status;
  using detail::add_check;
  host_report r;

  add_check(r, "configuration", f.config_error.empty() ? ok : fail,
            f.config_error.empty() ? str_cat("loaded from ", f.config_source) : f.config_error);
  for (const auto& n : f.config_notes) {
    add_check(r, "configuration-note", note, n);
  }
  add_check(r, "arch", f.arch_known ? ok : fail,
            f.arch_known ? f.arch : str_cat(f.arch, " is not an architecture katana knows"));
  add_check(r, "root", f.root ? ok : fail,
            f.root ? "running as root"
                   : "not root: a sandbox needs root (bind mounts, /run/katana, the VM's sockets)");

  // Accelerator: KVM when it really runs a vCPU, else TCG unless the configuration forces KVM.
  bool use_kvm = false;
  if (f.accelerator == "tcg") {
    add_check(r, "kvm", note, "not probed: the configuration sets accelerator = \"tcg\"");
  } else if (!f.kvm_probed) {
    add_check(r, "kvm", warning, "not probed");
  } else if (f.kvm.usable) {
    use_kvm = true;
    add_check(r, "kvm", ok, str_cat("usable (", f.kvm.reason, ")"));
  } else if (f.accelerator == "kvm") {
    add_check(r, "kvm", fail,
              str_cat("not usable (", f.kvm.reason,
                      ") and the configuration sets accelerator = "
                      "\"kvm\"; use \"auto\" or \"tcg\""));
  } else {
    add_check(r, "kvm", note,
              str_cat("not usable (", f.kvm.reason,
                      "): QEMU runs the guest with TCG (software emulation, slower)"));
  }
  add_check(r, "vhost-vsock", f.vhost_vsock ? ok : note,
            f.vhost_vsock
                ? "/dev/vhost-vsock opens (the agent channel is virtio-serial all the same)"
                : str_cat(f.vhost_vsock_detail, ": the agent channel is virtio-serial"));

  if (f.assets_known) {
    detail::check_assets(r, f);
  } else {
    add_check(r, "assets", note,
              "QEMU, virtiofsd, kernel and initrd not checked: the configuration did not load");
  }

  if (!use_kvm && f.machine_type == "microvm" && f.host_tsc_khz == 0) {
    add_check(r, "tsc", warning,
              "the host's TSC frequency is unknown (no \"cpu MHz\" in /proc/cpuinfo): microvm "
              "under TCG can hang at boot without tsc_early_khz");
  } else if (f.host_tsc_khz != 0) {
    add_check(r, "tsc", ok, str_cat(f.host_tsc_khz, " kHz"));
  }

  if (f.cgroup_mode.empty()) {
    add_check(r, "cgroup", warning, "the cgroup mode could not be determined");
  } else if (f.cgroup_mode == "none") {
    add_check(r, "cgroup", warning, "no cgroup filesystem is mounted: the VM is not limited");
  } else {
    const std::string_view versions = f.cgroup_mode == "unified"  ? "v2"
                                      : f.cgroup_mode == "legacy" ? "v1"
                                                                  : "v1 and v2";
    add_check(r, "cgroup", ok, str_cat(f.cgroup_mode, " (", versions, ")"));
  }

  std::size_t failures = 0;
  for (const auto& c : r.checks) {
    failures += c.status == fail ? 1 : 0;
  }
  r.runnable = failures == 0;
  if (!r.runnable) {
    r.summary = str_cat("no VM can run here: ", failures, failures == 1 ? " problem" : " problems");
  } else if (use_kvm) {
    r.accelerator = "kvm";
    r.summary = "a VM can run here: QEMU with KVM";
  } else {
    r.accelerator = "tcg";
    r.summary = f.accelerator == "tcg"
                    ? "a VM can run here: QEMU with TCG (the configuration asks for it; slower)"
                    : str_cat("a VM can run here: QEMU with TCG, slower (KVM is not usable: ",
                              f.kvm_probed ? f.kvm.reason : "not probed", ")");
  }
  return r;
}

namespace detail {

/// exists / usable for a file that must be executable (`exec`) or readable and non-empty.
inline file_fact probe_file(const std::string& path, bool exec) {
  file_fact f{.path = path};
  if (path.empty()) {
    return f;
  }
  f.exists = ::access(path.c_str(), F_OK) == 0;
  if (!f.exists) {
    return f;
  }
  if (exec) {
    f.usable = ::access(path.c_str(), X_OK) == 0;
    if (!f.usable) {
      f.detail = "not executable";
    }
    return f;
  }
  unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  char c = 0;
  if (!fd) {
    f.detail = str_cat("cannot open: ", std::strerror(errno));
  } else if (::read(fd.get(), &c, 1) != 1) {
    f.detail = "empty or unreadable";
  } else {
    f.usable = true;
  }
  return f;
}

inline bool starts_with_elf_magic(const std::string& path) {
  unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  char head[4] = {};
  return fd && ::read(fd.get(), head, sizeof head) == 4 &&
         std::memcmp(head,
                     "\x7F"
                     "ELF",
                     4) == 0;
}

/// The first line `binary --version` prints ("QEMU emulator version 7.2.19 (...)"); "" when it
/// does not run.
inline std::string version_line(const std::string& binary) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) {
    return {};
  }
  unique_fd rd(p[0]), wr(p[1]);
  const char* argv[] = {binary.c_str(), "--version", nullptr};
  const pid_t pid = ::fork();
  if (pid < 0) {
    return {};
  }
  if (pid == 0) {
    ::dup2(wr.get(), STDOUT_FILENO);  // dup2 clears FD_CLOEXEC on the copy
    const int null = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (null >= 0) {
      ::dup2(null, STDERR_FILENO);
    }
    ::execv(argv[0], const_cast<char* const*>(argv));  // NOLINT: execv's historical signature
    ::_exit(127);
  }
  wr.reset();
  std::string out;
  char buf[512];
  for (ssize_t n = 0; out.size() < 4096 && (n = ::read(rd.get(), buf, sizeof buf)) != 0;) {
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      break;
    }
    out.append(buf, static_cast<std::size_t>(n));
  }
  rd.reset();
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    return {};
  }
  return out.substr(0, out.find('\n'));
}

}  // namespace detail

struct gather_options {
  bool run_qemu = true;  // ask QEMU its version
};

/// The facts for a [hypervisor.*] table, as the host has them now. Runs the KVM probe (bounded
/// by kvm_probe_timeout_ms) unless the table sets accelerator = "tcg". cgroup_mode,
/// config_source and config_error are the caller's to fill.
inline host_facts gather_host_facts(const config::hypervisor_config& h,
                                    const gather_options& o = {}) {
  host_facts f;
  const auto host = config::probe_host_resources();
  f.arch = host.arch;
  const auto* d = arch::find(host.arch);
  f.arch_known = d != nullptr;
  if (d == nullptr) {
    d = &arch::describe(arch::host_id);
  }
  f.qemu_binary = std::string(d->qemu_binary);
  f.machine_type = h.machine_type.empty() ? std::string(d->default_machine) : h.machine_type;
  f.accelerator = h.accelerator;
  if (h.accelerator != "tcg") {
    f.kvm_probed = true;
    f.kvm = probe_kvm(std::chrono::milliseconds(h.kvm_probe_timeout_ms));
  }
  {
    unique_fd vsock(::open("/dev/vhost-vsock", O_RDWR | O_CLOEXEC));
    f.vhost_vsock = static_cast<bool>(vsock);
    if (!vsock) {
      f.vhost_vsock_detail = errno == ENOENT ? std::string("no /dev/vhost-vsock")
                                             : str_cat("/dev/vhost-vsock: ", std::strerror(errno));
    }
  }
  f.qemu = detail::probe_file(h.path.empty() ? str_cat("/usr/bin/", d->qemu_binary) : h.path, true);
  if (o.run_qemu && f.qemu.usable) {
    f.qemu.detail = detail::version_line(f.qemu.path);
  }
  f.shared_fs = h.shared_fs;
  f.virtiofsd = detail::probe_file(h.virtio_fs_daemon, true);
  f.kernel = detail::probe_file(h.kernel, false);
  f.kernel_is_elf = f.kernel.usable && detail::starts_with_elf_magic(h.kernel);
  f.initrd = detail::probe_file(h.initrd, false);
  f.image = detail::probe_file(h.image, false);
  f.host_tsc_khz = host_tsc_khz();
  f.root = ::geteuid() == 0;
  return f;
}

}  // namespace katana::inline v0::hypervisor
