// hypervisor::qemu::vm: the QEMU policy. prepare() resolves the accelerator (config `accelerator =
// auto|kvm|tcg`; auto runs the bounded KVM probe and falls back to TCG) and builds the argv with
// command_line; start() spawns QEMU with its stderr in the sandbox directory, connects QMP
// (5 s deadline) and checks the VM runs; stop() asks QMP to quit, then SIGTERM, then SIGKILL,
// and removes the sockets and the stderr file. A QEMU that dies is reaped and its stderr is in
// the error. The console log stays in the sandbox directory (the sandbox removes the directory).
//
//   hypervisor::qemu::vm q;
//   KATANA_TRY(q.prepare({.id = "sb1", .dir = "/run/katana/sb1", .hypervisor = h, .agent = a}));
//   KATANA_TRY(q.start());
//   ... connect the agent at q.agent_address() ...
//   KATANA_TRY(q.stop());
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <katana/arch/arch.hpp>
#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/try.hpp>
#include <katana/hypervisor/concepts.hpp>
#include <katana/hypervisor/host.hpp>
#include <katana/hypervisor/kvm_probe.hpp>
#include <katana/hypervisor/process.hpp>
#include <katana/hypervisor/qemu/cmdline.hpp>
#include <katana/hypervisor/qemu/qmp.hpp>

namespace katana::inline v0::hypervisor::qemu {

namespace detail {

inline bool has_param(std::string_view params, std::string_view name) {
  std::size_t pos = 0;
  while ((pos = params.find(name, pos)) != std::string_view::npos) {
    if ((pos == 0 || params[pos - 1] == ' ') &&
        (pos + name.size() == params.size() || params[pos + name.size()] == '=' ||
         params[pos + name.size()] == ' ')) {
      return true;
    }
    pos += name.size();
  }
  return false;
}

/// Words for a QMP SHUTDOWN reason (QEMU's ShutdownCause).
inline std::string describe_shutdown(std::string_view reason) {
  if (reason.empty()) {
    return {};
  }
  if (reason == "guest-reset") {
    return "the guest rebooted (-no-reboot)";
  }
  if (reason == "guest-shutdown") {
    return "the guest powered off";
  }
  if (reason == "guest-panic") {
    return "the guest panicked";
  }
  if (reason == "host-signal") {
    return "a signal to QEMU";
  }
  if (reason == "host-qmp-quit") {
    return "a QMP quit";
  }
  return str_cat("shutdown reason \"", reason, "\"");
}

/// The message of the last "Kernel panic - not syncing: MESSAGE" line in console output
/// (timestamps and prefixes before it allowed); empty when the guest did not panic.
inline std::string guest_panic_message(std::string_view console) {
  static constexpr std::string_view marker = "Kernel panic - not syncing: ";
  const auto at = console.rfind(marker);
  if (at == std::string_view::npos) {
    return {};
  }
  auto msg = console.substr(at + marker.size());
  msg = msg.substr(0, msg.find('\n'));
  while (!msg.empty() && (msg.back() == '\r' || msg.back() == ' ')) {
    msg.remove_suffix(1);
  }
  return std::string(msg);
}

}  // namespace detail

/// The modules the guest must load before the agent can serve (the channel) and before the
/// rootfs can be shared: the machine's virtio transport, virtio_console, the shared fs. Other
/// filesystems (overlay, ...) the agent loads when a mount first needs them.
inline std::vector<std::string> guest_boot_modules(const config::hypervisor_config& h) {
  std::vector<std::string> m;
  m.emplace_back(h.machine_type == "microvm" ? "virtio_mmio" : "virtio_pci");
  m.emplace_back("virtio_console");
  if (h.shared_fs == "virtio-9p") {
    m.emplace_back("9pnet_virtio");
    m.emplace_back("9p");
  } else if (h.shared_fs == "virtio-fs") {
    m.emplace_back("virtiofs");
  }
  return m;
}

/// The accelerator for a configuration: forced by `accelerator`, else by the probe.
inline result<accelerator> resolve_accelerator(const config::hypervisor_config& h,
                                               std::string* why = nullptr) {
  if (h.accelerator == "tcg") {
    return accelerator::tcg;
  }
  const auto probe = probe_kvm(std::chrono::milliseconds(h.kvm_probe_timeout_ms));
  if (why != nullptr) {
    *why = probe.reason;
  }
  if (h.accelerator == "kvm") {
    if (!probe.usable) {
      return fail(errc::unsupported,
                  str_cat("qemu: accelerator = \"kvm\" but KVM is not usable: ", probe.reason));
    }
    return accelerator::kvm;
  }
  return probe.usable ? accelerator::kvm : accelerator::tcg;
}

class vm {
 public:
  static constexpr std::string_view name = "qemu";

  vm() = default;
  vm(vm&&) noexcept = default;
  vm& operator=(vm&&) noexcept = default;
  ~vm() { (void)kill(); }

  status prepare(const vm_config& cfg) {
    cfg_ = cfg;
    auto& h = cfg_.hypervisor;
    if (cfg_.shared_dir.empty()) {
      cfg_.shared_dir = cfg_.dir / "shared";
    }
    accel_ = KATANA_TRY(resolve_accelerator(h, &probe_reason_));
    if (cfg_.agent.channel == "vsock") {
      return fail(errc::unsupported,
                  "agent.kata.channel = \"vsock\": this QEMU policy reaches the agent over "
                  "virtio-serial only; use \"virtio-serial\" or \"auto\"");
    }
    // The guest's agent: which port it serves, which modules it loads first.
    if (!detail::has_param(h.kernel_params, "agent.server_addr")) {
      h.kernel_params += str_cat(" agent.server_addr=serial://", agent_port_name);
    }
    if (!detail::has_param(h.kernel_params, "agent.modules")) {
      std::string mods;
      for (const auto& m : guest_boot_modules(h)) {
        mods += mods.empty() ? m : "," + m;
      }
      h.kernel_params += str_cat(" agent.modules=", mods);
    }
    params_ = sandbox_params::in_dir(cfg_.id, cfg_.dir);
    params_.shared_dir = cfg_.shared_dir;
    params_.accel = accel_;
    // Only TCG's guest needs it (tsc_early_khz); where it is measured, that takes 2 ms.
    params_.host_tsc_khz = accel_ == accelerator::tcg ? host_tsc_khz() : 0;
    if (cfg_.template_role != vm_template_role::none) {
      if (cfg_.template_dir.empty()) {
        return fail(errc::invalid_argument, "qemu: a VM template needs its directory");
      }
      params_.template_memory = cfg_.template_dir / "memory";
      params_.template_clone = cfg_.template_role == vm_template_role::clone;
    }
    argv_ = KATANA_TRY(command_line(h, cfg_.agent, arch::describe(arch::host_id), params_));
    return {};
  }

  status start() {
    if (argv_.empty()) {
      return fail(errc::invalid_argument, "qemu: start before prepare");
    }
    std::error_code ec;
    std::filesystem::create_directories(cfg_.dir, ec);
    if (ec) {
      return fail(ec, str_cat("qemu: create ", cfg_.dir.native()));
    }
    if (cfg_.hypervisor.shared_fs == "virtio-9p") {
      std::filesystem::create_directories(cfg_.shared_dir, ec);
    }
    std::filesystem::remove(params_.qmp_socket, ec);
    std::filesystem::remove(params_.agent_socket, ec);
    // The hook may point into the caller: valid during this call only.
    const auto place = std::exchange(cfg_.place_vmm, nullptr);
    proc_ = KATANA_TRY(child_process::spawn(argv_, stderr_path(), place));
    // By pid, not `this`: the client outlives a move of this vm.
    auto q = qmp::client::connect(params_.qmp_socket, std::chrono::seconds(5),
                                  [pid = proc_.pid()] { return child_process::alive(pid); });
    if (!q) {
      return died(std::move(q).error());
    }
    qmp_ = std::move(*q);
    if (params_.template_clone) {
      if (auto r = restore_template(); !r) {
        return died(std::move(r).error());
      }
    }
    auto st = qmp_->status();
    if (!st) {
      return died(std::move(st).error());
    }
    if (*st != "running") {
      return died(error(errc::unavailable, str_cat("qemu: VM status \"", *st, "\"")));
    }
    return {};
  }

  /// Makes this VM (started with template_role::make, its agent up) the template: pauses it,
  /// saves its device state next to its memory (the memory file itself is skipped:
  /// x-ignore-shared), and quits it.
  status save_template() {
    if (!qmp_ || cfg_.template_role != vm_template_role::make) {
      return fail(errc::invalid_argument, "qemu: save_template: not a running template VM");
    }
    const auto state = cfg_.template_dir / "state";
    const auto part = cfg_.template_dir / "state.part";
    KATANA_TRY(qmp_->execute("stop").transform_error(with_context("qemu: template")));
    KATANA_TRY(qmp_->execute("migrate-set-capabilities", ignore_shared_capability)
                   .transform_error(with_context("qemu: template")));
    KATANA_TRY(
        qmp_->execute("migrate", str_cat("{\"uri\":", qmp::quote(exec_uri("cat > ", part)), "}"))
            .transform_error(with_context("qemu: template")));
    KATANA_TRY(wait_migration("qemu: template: save"));
    std::error_code ec;
    std::filesystem::rename(part, state, ec);
    if (ec) {
      return fail(ec, "qemu: template: rename " + part.native());
    }
    return stop();
  }

  /// QMP quit, then SIGTERM, then SIGKILL; removes the sockets and the stderr file.
  status stop() {
    if (qmp_ && proc_.running()) {
      (void)qmp_->quit();
      (void)proc_.wait_for(std::chrono::seconds(3));
    }
    if (qmp_) {
      qmp_->close();
      qmp_.reset();
    }
    proc_.terminate(std::chrono::seconds(2));
    cleanup();
    return {};
  }

  /// SIGKILL at once (forced teardown) and the same cleanup.
  status kill() {
    if (qmp_) {
      qmp_->close();
      qmp_.reset();
    }
    proc_.kill();
    cleanup();
    return {};
  }

  /// QEMU's exit code once it has ended within `timeout`.
  std::optional<int> wait(std::chrono::milliseconds timeout) { return proc_.wait_for(timeout); }

  /// How a QEMU that ended on its own ended: its exit status or signal, why it stopped the
  /// machine (QMP's SHUTDOWN event), the guest kernel's panic message from the console log,
  /// and the end of QEMU's stderr. For the error that reports it (before stop(), which removes
  /// the stderr file).
  [[nodiscard]] std::string exit_report() {
    const auto st = proc_.wait_status();
    std::string r = st ? str_cat("QEMU ", describe_wait_status(*st)) : "QEMU is running";
    if (st && qmp_) {
      if (const auto why = detail::describe_shutdown(qmp::shutdown_reason(qmp_->drain_events()));
          !why.empty()) {
        r += str_cat(" after ", why);
      }
    }
    if (const auto panic =
            detail::guest_panic_message(child_process::read_tail(params_.console_log, 16384));
        !panic.empty()) {
      r += str_cat("; guest kernel panic: ", panic);
      if (panic.find("Attempted to kill init") != std::string::npos) {
        r += " (the agent, the guest's PID 1, ended)";
      }
    }
    if (auto tail = proc_.stderr_tail(); !tail.empty()) {
      r += str_cat("; QEMU stderr: ", tail);
    }
    return r;
  }

  [[nodiscard]] std::string agent_address() const {
    return str_cat("unix://", params_.agent_socket.native());
  }

  /// blockdev-add + device_add of a virtio-blk device on the machine's transport.
  status hotplug_block(const block_device& d) {
    if (!qmp_) {
      return fail(errc::unavailable, "qemu: hotplug: not running");
    }
    const auto* m = arch::describe(arch::host_id).find_machine(cfg_.hypervisor.machine_type);
    if (m != nullptr && !m->hotplug) {
      return fail(errc::unsupported,
                  str_cat("qemu: ", cfg_.hypervisor.machine_type, " cannot hot-plug devices"));
    }
    if (m != nullptr && m->pci_bridges && cfg_.hypervisor.default_bridges == 0) {
      return fail(errc::unsupported,
                  str_cat("qemu: hotplug ", d.id, ": ", cfg_.hypervisor.machine_type,
                          " hot-plugs onto a PCI bridge, and default_bridges is 0"));
    }
    const std::string node = str_cat("drive-", d.id);
    KATANA_TRY(qmp_->execute("blockdev-add", str_cat("{\"node-name\":", qmp::quote(node),
                                                     ",\"driver\":\"raw\",\"read-only\":",
                                                     d.read_only ? "true" : "false",
                                                     ",\"file\":{\"driver\":\"file\",\"filename\":",
                                                     qmp::quote(d.file.native()), "}}"))
                   .transform_error(with_context("qemu: hotplug " + d.id)));
    const std::string dev = str_cat(
        "virtio-blk", m != nullptr ? arch::device_suffix(m->transport) : std::string_view("-pci"));
    // PCI root buses do not hot-plug; the command line's first bridge does.
    const std::string bus =
        m != nullptr && m->pci_bridges ? std::string(",\"bus\":\"pci-bridge-0\"") : std::string();
    auto added = qmp_->execute(
        "device_add", str_cat("{\"driver\":", qmp::quote(dev), ",\"id\":", qmp::quote(d.id),
                              ",\"drive\":", qmp::quote(node), bus, "}"));
    if (!added) {
      (void)qmp_->execute("blockdev-del", str_cat("{\"node-name\":", qmp::quote(node), "}"));
      return unexpected<error>(std::move(added).error().wrap("qemu: hotplug " + d.id));
    }
    return {};
  }

  [[nodiscard]] const std::vector<std::string>& argv() const noexcept { return argv_; }
  [[nodiscard]] qemu::accelerator accel() const noexcept { return accel_; }
  [[nodiscard]] const std::string& kvm_probe_reason() const noexcept { return probe_reason_; }
  [[nodiscard]] pid_t pid() const noexcept { return proc_.pid(); }
  [[nodiscard]] const std::filesystem::path& console_log() const noexcept {
    return params_.console_log;
  }
  [[nodiscard]] const sandbox_params& params() const noexcept { return params_; }
  [[nodiscard]] qmp::client* qmp() noexcept { return qmp_.get(); }
  [[nodiscard]] bool running() { return proc_.running(); }
  [[nodiscard]] std::filesystem::path stderr_path() const { return cfg_.dir / "qemu.stderr"; }

 private:
  static constexpr std::string_view ignore_shared_capability =
      R"({"capabilities":[{"capability":"x-ignore-shared","state":true}]})";

  /// exec:CMD'FILE' (QEMU runs it with /bin/sh -c).
  static std::string exec_uri(std::string_view cmd, const std::filesystem::path& file) {
    std::string quoted = "'";
    for (const char c : file.native()) {
      quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    }
    return str_cat("exec:", cmd, quoted, "'");
  }

  /// Polls query-migrate until "completed" (30 s at most); "failed" is an error.
  status wait_migration(std::string_view what) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    for (;;) {
      auto r = qmp_->execute("query-migrate");
      if (!r) {
        return unexpected<error>(std::move(r).error().wrap(std::string(what)));
      }
      const auto st = qmp::string_member(*r, "status");
      if (st == "completed") {
        return {};
      }
      if (st == "failed" || st == "cancelled") {
        return fail(errc::unavailable,
                    str_cat(what, ": migration ", st, " ", qmp::string_member(*r, "error-desc")));
      }
      if (std::chrono::steady_clock::now() >= end) {
        return fail(errc::timeout, str_cat(what, ": migration still \"", st, "\" after 30 s"));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  /// A clone: the template's device state in, then run.
  status restore_template() {
    const auto state = cfg_.template_dir / "state";
    KATANA_TRY(qmp_->execute("migrate-set-capabilities", ignore_shared_capability)
                   .transform_error(with_context("qemu: clone")));
    KATANA_TRY(qmp_->execute("migrate-incoming",
                             str_cat("{\"uri\":", qmp::quote(exec_uri("cat ", state)), "}"))
                   .transform_error(with_context("qemu: clone")));
    KATANA_TRY(wait_migration("qemu: clone from " + cfg_.template_dir.native()));
    KATANA_TRY(qmp_->execute("cont").transform_error(with_context("qemu: clone")));
    return {};
  }

  /// A start that failed: QEMU's stderr in the error, QEMU gone, files removed.
  unexpected<error> died(error e) {
    (void)proc_.wait_for(std::chrono::milliseconds(200));
    e.context += str_cat("; ", exit_report());
    proc_.kill();
    if (qmp_) {
      qmp_->close();
      qmp_.reset();
    }
    cleanup();
    return unexpected<error>(std::move(e).wrap("qemu: start"));
  }

  void cleanup() {
    std::error_code ec;
    std::filesystem::remove(params_.qmp_socket, ec);
    std::filesystem::remove(params_.agent_socket, ec);
    if (!cfg_.dir.empty()) {
      std::filesystem::remove(stderr_path(), ec);
    }
  }

  vm_config cfg_;
  sandbox_params params_;
  accelerator accel_ = accelerator::tcg;
  std::string probe_reason_;
  std::vector<std::string> argv_;
  child_process proc_;
  std::unique_ptr<qmp::client> qmp_;
};

static_assert(driver<vm>);
static_assert(device_hotplug<vm>);

}  // namespace katana::inline v0::hypervisor::qemu
