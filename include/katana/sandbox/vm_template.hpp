// VM templating (Kata's [factory] enable_template): one VM boots to a serving agent, is paused
// and saved (device state next to its memory file, on tmpfs); each sandbox then starts QEMU
// from that state with the memory file mapped private (copy on write) instead of booting a
// kernel. A fingerprint (the template VM's command line, the kernel's and initrd's size and
// mtime) tells a template made from another configuration or image, which is remade.
#pragma once

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <sys/stat.h>
#include <thread>
#include <vector>

#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/try.hpp>
#include <katana/hypervisor/concepts.hpp>
#include <katana/hypervisor/qemu/qemu.hpp>
#include <katana/oci/detail/read_file.hpp>
#include <katana/sandbox/remove_tree.hpp>
#include <katana/sandbox/stale.hpp>

namespace katana::inline v0::sandbox {

namespace detail {
inline std::string file_identity(const std::string& path) {
  struct stat st {};
  if (path.empty() || ::stat(path.c_str(), &st) != 0) {
    return str_cat(path, " missing");
  }
  return str_cat(path, " ", st.st_size, " ", st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec);
}
}  // namespace detail

/// The template VM's configuration: `base` with the template's directory, id and role.
inline hypervisor::vm_config template_vm_config(hypervisor::vm_config base,
                                                const std::filesystem::path& dir) {
  base.id = "template";
  base.dir = dir;
  base.shared_dir = dir / "shared";
  base.template_dir = dir;
  base.template_role = hypervisor::vm_template_role::make;
  return base;
}

/// Resolves the accelerator once and writes it into the configuration, so that the template's
/// fingerprint and the clone's launch do not each run the KVM probe (up to
/// kvm_probe_timeout_ms where KVM hangs).
inline status pin_accelerator(hypervisor::vm_config& cfg) {
  const auto a = KATANA_TRY(hypervisor::qemu::resolve_accelerator(cfg.hypervisor), "VM template");
  cfg.hypervisor.accelerator = std::string(hypervisor::qemu::to_string(a));
  return {};
}

/// What a template is made from (see the header comment); the VM prepared, not started.
inline result<std::string> template_fingerprint(const hypervisor::vm_config& tpl) {
  hypervisor::qemu::vm v;
  KATANA_TRY(v.prepare(tpl), "VM template");
  std::string fp;
  for (const auto& a : v.argv()) {
    fp += a + "\n";
  }
  fp += detail::file_identity(tpl.hypervisor.kernel) + "\n";
  fp += detail::file_identity(tpl.hypervisor.initrd) + "\n";
  return fp;
}

/// Whether `dir` holds a complete template with this fingerprint.
inline bool template_ready(const std::filesystem::path& dir, const std::string& fingerprint) {
  std::error_code ec;
  return std::filesystem::exists(dir / "state", ec) &&
         std::filesystem::exists(dir / "memory", ec) &&
         oci::detail::read_small_file(dir / "fingerprint", std::size_t{1} << 20).value_or("") ==
             fingerprint;
}

/// Removes a template's files (kept: the directory itself).
inline void remove_template(const std::filesystem::path& dir) {
  std::error_code ec;
  for (const char* f : {"state", "state.part", "memory", "fingerprint"}) {
    std::filesystem::remove(dir / f, ec);
  }
  (void)remove_tree(dir / "shared");
}

/// Makes the template in `dir` for `base` unless a matching one is there; true when it made
/// one. `agent_ready(vm)` returns once the template VM's agent serves, without talking to it:
/// a connection made now would be part of the saved state. Concurrent callers wait on dir/lock
/// (up to `lock_timeout`).
inline result<bool> ensure_template(
    const hypervisor::vm_config& base,
    const std::filesystem::path& dir,
    const std::function<status(hypervisor::qemu::vm& vm)>& agent_ready,
    std::chrono::seconds lock_timeout = std::chrono::seconds(120)) {
  const auto tpl = template_vm_config(base, dir);
  const std::string fp = KATANA_TRY(template_fingerprint(tpl));
  if (template_ready(dir, fp)) {
    return false;
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return fail(ec, "VM template: create " + dir.native());
  }
  // Not owner.lock: the default template_path is among the sandboxes reap_stale looks at.
  const auto end = std::chrono::steady_clock::now() + lock_timeout;
  auto lock = owner_lock::acquire(dir, "lock");
  while (!lock) {
    if (lock.error().code != std::errc::operation_would_block) {
      return unexpected<error>(std::move(lock).error().wrap("VM template"));
    }
    if (std::chrono::steady_clock::now() >= end) {
      return fail(errc::timeout, str_cat("VM template: ", (dir / "lock").native(),
                                         " still held after ", lock_timeout.count(), " s"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    lock = owner_lock::acquire(dir, "lock");
  }
  if (template_ready(dir, fp)) {  // made by whoever held the lock
    return false;
  }
  remove_template(dir);
  hypervisor::qemu::vm v;
  const auto failed = [&](error e) {
    (void)v.kill();
    remove_template(dir);
    return unexpected<error>(std::move(e).wrap("VM template"));
  };
  if (auto r = v.prepare(tpl); !r) {
    return failed(std::move(r).error());
  }
  if (auto r = v.start(); !r) {
    return failed(std::move(r).error());
  }
  if (auto r = agent_ready(v); !r) {
    return failed(std::move(r).error());
  }
  if (auto r = v.save_template(); !r) {
    return failed(std::move(r).error());
  }
  std::ofstream(dir / "fingerprint", std::ios::trunc) << fp;
  return true;
}

/// A sandbox's VM configuration that starts from the template in `dir`.
inline hypervisor::vm_config clone_of_template(hypervisor::vm_config cfg,
                                               const std::filesystem::path& dir) {
  cfg.template_dir = dir;
  cfg.template_role = hypervisor::vm_template_role::clone;
  return cfg;
}

}  // namespace katana::inline v0::sandbox
