// The virtio-fs shared-fs policy: virtiofsd (Debian's qemu ships /usr/lib/qemu/virtiofsd)
// serves the sandbox's shared directory over a vhost-user socket that QEMU's vhost-user-fs
// device connects to; the guest mounts it as `virtiofs`. Guest memory must then be shared
// (the QEMU command line builder adds a memfd backend).
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>
#include <sys/mount.h>
#include <sys/stat.h>
#include <system_error>
#include <thread>
#include <vector>

#include <katana/config.hpp>
#include <katana/config/hypervisor.hpp>
#include <katana/core/error.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/try.hpp>
#include <katana/hypervisor/concepts.hpp>
#include <katana/hypervisor/process.hpp>
#include <katana/hypervisor/qemu/cmdline.hpp>
#include <katana/sandbox/sandbox.hpp>

namespace katana::inline v0::sharedfs {

/// virtiofsd's argv for `h` (pure). Kata's virtio_fs_cache "never" is virtiofsd's "none".
/// sandbox=chroot: the daemon stays in our mount namespace, so the rootfs bind mounts made
/// after it started are visible to it without propagation tricks.
inline result<std::vector<std::string>> virtiofsd_argv(const config::hypervisor_config& h,
                                                       const std::filesystem::path& socket,
                                                       const std::filesystem::path& source) {
  if (h.virtio_fs_daemon.empty()) {
    return fail(errc::invalid_config, "virtio-fs: virtio_fs_daemon is empty");
  }
  std::string cache = h.virtio_fs_cache.empty() ? "auto" : h.virtio_fs_cache;
  if (cache == "never") {
    cache = "none";
  }
  if (cache != "none" && cache != "auto" && cache != "always") {
    return fail(errc::invalid_config, str_cat("virtio-fs: virtio_fs_cache \"", h.virtio_fs_cache,
                                              "\" is not one of never, none, auto, always"));
  }
  std::vector<std::string> argv{h.virtio_fs_daemon,
                                str_cat("--socket-path=", socket.native()),
                                "-o",
                                str_cat("source=", source.native()),
                                "-o",
                                str_cat("cache=", cache),
                                "-o",
                                "sandbox=chroot"};
  argv.insert(argv.end(), h.virtio_fs_extra_args.begin(), h.virtio_fs_extra_args.end());
  return argv;
}

class virtio_fs {
 public:
  static constexpr std::string_view name = "virtio-fs";

  virtio_fs() = default;
  virtio_fs(const virtio_fs&) = delete;
  virtio_fs& operator=(const virtio_fs&) = delete;
  virtio_fs(virtio_fs&&) noexcept = default;
  virtio_fs& operator=(virtio_fs&&) noexcept = default;
  ~virtio_fs() { (void)cleanup(); }

  /// Starts virtiofsd on <dir>/virtiofsd.sock and waits (up to 5 s) for its socket.
  status setup_before_boot(hypervisor::vm_config& vc) {
    vc.hypervisor.shared_fs = "virtio-fs";
    if (vc.shared_dir.empty()) {
      vc.shared_dir = vc.dir / "shared";
    }
    dir_ = vc.shared_dir;
    std::error_code ec;
    std::filesystem::create_directories(dir_, ec);
    if (ec) {
      return fail(ec, str_cat("virtio-fs: create ", dir_.native()));
    }
    socket_ = hypervisor::qemu::sandbox_params::in_dir(vc.id, vc.dir).virtiofsd_socket;
    std::filesystem::remove(socket_, ec);
    const auto argv = KATANA_TRY(virtiofsd_argv(vc.hypervisor, socket_, dir_));
    daemon_ = KATANA_TRY(hypervisor::child_process::spawn(argv, vc.dir / "virtiofsd.stderr",
                                                          vc.place_shared_fs_daemon),
                         "virtio-fs: start " + argv[0]);
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    for (;;) {
      struct stat st {};
      if (::stat(socket_.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
        return {};
      }
      if (auto code = daemon_.poll()) {
        const auto tail = daemon_.stderr_tail(1000);
        return fail(errc::unavailable, str_cat("virtio-fs: ", argv[0], " exited with ", *code,
                                               tail.empty() ? "" : ": ", tail));
      }
      if (std::chrono::steady_clock::now() >= end) {
        daemon_.kill();
        return fail(errc::timeout, str_cat("virtio-fs: ", argv[0], " made no socket at ",
                                           socket_.native(), " within 5 s"));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  /// Bind-mounts `rootfs` at <shared>/<id>/rootfs; returns the guest path of it.
  result<std::string> share_rootfs(std::string_view id, const std::filesystem::path& rootfs) {
    return binds_.share(dir_, id, rootfs, "virtio-fs");
  }

  [[nodiscard]] guest_mount guest_storage() const {
    return {.driver = "virtio-fs",
            .source = std::string(hypervisor::qemu::shared_fs_tag),
            .fstype = "virtiofs",
            .options = {},
            .mount_point = std::string(guest_shared_path)};
  }

  /// Unmounts the shares, stops virtiofsd (QEMU is gone by now) and removes its files.
  status cleanup() {
    status result = binds_.release("virtio-fs");
    daemon_.terminate(std::chrono::seconds(1));
    std::error_code ec;
    if (!socket_.empty()) {
      std::filesystem::remove(socket_, ec);
      std::filesystem::remove(socket_.parent_path() / "virtiofsd.stderr", ec);
    }
    return result;
  }

  [[nodiscard]] pid_t daemon_pid() const noexcept { return daemon_.pid(); }

 private:
  std::filesystem::path dir_;
  std::filesystem::path socket_;
  hypervisor::child_process daemon_;
  rootfs_binds binds_;
};

static_assert(driver<virtio_fs>);

}  // namespace katana::inline v0::sharedfs

namespace katana::inline v0::sandbox {

/// QEMU with virtio-fs (virtiofsd), no host-side sandbox cgroup (host_cgroup.hpp has one).
using qemu_virtiofs_sandbox =
    basic_sandbox<hypervisor::qemu::vm, sharedfs::virtio_fs, cgroup::noop>;

}  // namespace katana::inline v0::sandbox
