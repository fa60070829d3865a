// basic_sandbox<Hypervisor, SharedFs, Cgroup>: the host side of one sandbox VM, composed from
// policies (like runtime-rs's standalone shim): a sandbox directory, the shared file system,
// the VM, and teardown that leaves nothing behind (VM stopped, bind mounts gone, directory
// removed) also when a step fails. The agent conversation (CreateSandbox, containers) happens
// over agent_address() with the generated bindings; see examples/ctl/vm_cmd.cpp.
//
//   sandbox::qemu_9p_sandbox sb({.id = "sb1", .dir = "/run/katana/sb1", .hypervisor = h, ...});
//   KATANA_TRY(sb.start());
//   auto guest_root = KATANA_TRY(sb.share_rootfs("c1", "/path/to/rootfs"));
//   ...
//   sb.stop();
#pragma once

#include <concepts>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <sys/mount.h>
#include <sys/types.h>
#include <system_error>
#include <utility>
#include <vector>

#include <katana/cgroup/concepts.hpp>
#include <katana/cgroup/noop.hpp>
#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/core/scope_exit.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/try.hpp>
#include <katana/hypervisor/concepts.hpp>
#include <katana/hypervisor/qemu/qemu.hpp>
#include <katana/sandbox/remove_tree.hpp>
#include <katana/sandbox/stale.hpp>

namespace katana::inline v0::sharedfs {

/// Where the agent mounts the shared directory (Kata's).
inline constexpr std::string_view guest_shared_path = "/run/kata-containers/shared/containers";

/// The guest-side mount of the share, as Kata's Storage message describes it.
struct guest_mount {
  std::string driver;
  std::string source;
  std::string fstype;
  std::vector<std::string> options;
  std::string mount_point;
};

/// A shared-fs policy: configures the VM before boot, shares a container's rootfs (host bind
/// mount into the shared directory) and says how the guest mounts the share.
template <class F>
concept driver = requires(F& f, hypervisor::vm_config& vc, const std::filesystem::path& p) {
  { F::name } -> std::convertible_to<std::string_view>;
  { f.setup_before_boot(vc) } -> std::same_as<status>;
  { f.share_rootfs(std::string_view{}, p) } -> std::same_as<result<std::string>>;
  { f.guest_storage() } -> std::same_as<guest_mount>;
  { f.cleanup() } -> std::same_as<status>;
};

/// The rootfs bind mounts a shared-fs policy makes in the shared directory, undone in
/// reverse order (lazily: the VM may still hold them).
class rootfs_binds {
 public:
  /// Bind-mounts `rootfs` at <dir>/<id>/rootfs; returns the guest path of it.
  result<std::string> share(const std::filesystem::path& dir,
                            std::string_view id,
                            const std::filesystem::path& rootfs,
                            std::string_view policy) {
    const auto target = dir / std::string(id) / "rootfs";
    std::error_code ec;
    std::filesystem::create_directories(target, ec);
    if (ec) {
      return fail(ec, str_cat(policy, ": create ", target.native()));
    }
    if (::mount(rootfs.c_str(), target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
      return fail_errno(str_cat(policy, ": bind ", rootfs.native(), " at ", target.native()));
    }
    mounts_.push_back(target);
    return str_cat(guest_shared_path, "/", id, "/rootfs");
  }

  status release(std::string_view policy) {
    status result;
    for (auto it = mounts_.rbegin(); it != mounts_.rend(); ++it) {
      if (::umount2(it->c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT && result) {
        result = fail_errno(str_cat(policy, ": unmount ", it->native()));
      }
    }
    mounts_.clear();
    return result;
  }

 private:
  std::vector<std::filesystem::path> mounts_;
};

/// virtio-9p (built into QEMU; measured the fastest read path under TCG). Mounted with
/// cache=mmap, as Kata does: reads and writes stay uncached, but the kernel turns on readahead
/// only with a cache mode, and without it an exec'd binary is paged in 4 KiB per round trip.
class virtio_9p {
 public:
  static constexpr std::string_view name = "virtio-9p";

  status setup_before_boot(hypervisor::vm_config& vc) {
    vc.hypervisor.shared_fs = "virtio-9p";
    if (vc.shared_dir.empty()) {
      vc.shared_dir = vc.dir / "shared";
    }
    dir_ = vc.shared_dir;
    msize_ = vc.hypervisor.msize_9p;
    std::error_code ec;
    std::filesystem::create_directories(dir_, ec);
    if (ec) {
      return fail(ec, str_cat("9p: create ", dir_.native()));
    }
    return {};
  }

  /// Bind-mounts `rootfs` at <shared>/<id>/rootfs; returns the guest path of it.
  result<std::string> share_rootfs(std::string_view id, const std::filesystem::path& rootfs) {
    return binds_.share(dir_, id, rootfs, "9p");
  }

  [[nodiscard]] guest_mount guest_storage() const {
    return {
        .driver = "9p",
        .source = std::string(hypervisor::qemu::shared_fs_tag),
        .fstype = "9p",
        .options = {"trans=virtio", "version=9p2000.L", str_cat("msize=", msize_), "cache=mmap"},
        .mount_point = std::string(guest_shared_path)};
  }

  /// Unmounts what share_rootfs mounted (lazily, the VM may still hold it).
  status cleanup() { return binds_.release("9p"); }

 private:
  std::filesystem::path dir_;
  std::uint32_t msize_ = 512000;
  rootfs_binds binds_;
};

}  // namespace katana::inline v0::sharedfs

namespace katana::inline v0::sandbox {

/// The host-side sandbox cgroup's path under the hierarchy root (Kata's cgroupfs naming).
inline std::string cgroup_path(std::string_view sandbox_id) {
  return str_cat("kata_", sandbox_id);
}

// clang-format off
/// A host-side sandbox cgroup policy: create() before the VM starts, add_task() for QEMU (and
/// the shared-fs daemon when owns_shared_fs_daemon() says so, if the policy has it) between
/// their fork and exec, remove() on stop kills what is left and removes the cgroup,
/// idempotently. cgroup::noop satisfies it (no cgroup); sandbox::host_cgroup (host_cgroup.hpp)
/// is the real one.
template <class C>
concept cgroup_policy = requires(C& c, const C& cc, const cgroup::config& cfg, pid_t pid) {
  { c.create(cfg) } -> std::same_as<status>;
  { c.add_task(pid) } -> std::same_as<status>;
  { cc.pids() } -> std::same_as<result<std::vector<pid_t>>>;
  { c.remove() } -> std::same_as<status>;
  { cc.path() } -> std::convertible_to<std::string_view>;
};
// clang-format on

static_assert(cgroup_policy<cgroup::noop>);

template <hypervisor::driver Hypervisor, sharedfs::driver SharedFs, cgroup_policy Cgroup>
class basic_sandbox {
 public:
  using hypervisor_type = Hypervisor;

  explicit basic_sandbox(hypervisor::vm_config cfg,
                         Hypervisor h = {},
                         SharedFs fs = {},
                         Cgroup cg = {})
      : cfg_(std::move(cfg)), hv_(std::move(h)), fs_(std::move(fs)), cg_(std::move(cg)) {}
  basic_sandbox(const basic_sandbox&) = delete;
  basic_sandbox& operator=(const basic_sandbox&) = delete;
  ~basic_sandbox() { (void)stop(); }

  /// Creates the sandbox directory and cgroup, sets up the share and boots the VM. QEMU and
  /// (if the policy owns it) the shared-fs daemon enter the sandbox cgroup between fork and
  /// exec, so none of their work is charged outside it.
  status start() {
    std::error_code ec;
    std::filesystem::create_directories(cfg_.dir, ec);
    if (ec) {
      return fail(ec, str_cat("sandbox: create ", cfg_.dir.native()));
    }
    owner_ = KATANA_TRY(owner_lock::acquire(cfg_.dir), "sandbox");
    started_ = true;
    KATANA_TRY(cg_.create({.path = cgroup_path(cfg_.id), .resources = {}}));
    const auto place = [this](pid_t pid) {
      return cg_.add_task(pid);
    };
    cfg_.place_vmm = place;
    if constexpr (requires { cg_.owns_shared_fs_daemon(); }) {
      if (cg_.owns_shared_fs_daemon()) {
        cfg_.place_shared_fs_daemon = place;
      }
    }
    // Only start() calls them; a moved sandbox must not keep a hook to its old self.
    const scope_exit forget([this] {
      cfg_.place_vmm = nullptr;
      cfg_.place_shared_fs_daemon = nullptr;
    });
    KATANA_TRY(fs_.setup_before_boot(cfg_));
    KATANA_TRY(hv_.prepare(cfg_));
    return hv_.start();
  }

  result<std::string> share_rootfs(std::string_view container_id,
                                   const std::filesystem::path& rootfs) {
    return fs_.share_rootfs(container_id, rootfs);
  }

  status hotplug_block(const hypervisor::block_device& d) requires
      hypervisor::device_hotplug<Hypervisor> {
    return hv_.hotplug_block(d);
  }

  /// Stops the VM, removes the share's mounts, kills what is left in the sandbox cgroup and
  /// removes it, and removes the sandbox directory. Idempotent.
  status stop() {
    if (!started_) {
      return {};
    }
    started_ = false;
    auto a = hv_.stop();
    auto b = fs_.cleanup();
    auto c = cg_.remove();
    status d;
    if (!keep_dir_) {
      // Not remove_all: a share that did not unmount would lead it into the user's rootfs.
      d = remove_tree(cfg_.dir);
    } else {
      std::ofstream(cfg_.dir / kept_marker_name);  // torn down: not for reap_stale
    }
    owner_.release();
    if (!a) {
      return a;
    }
    if (!b) {
      return b;
    }
    if (!c) {
      return c;
    }
    return d;
  }

  [[nodiscard]] std::string agent_address() const { return hv_.agent_address(); }
  [[nodiscard]] Hypervisor& hypervisor() noexcept { return hv_; }
  [[nodiscard]] SharedFs& shared_fs() noexcept { return fs_; }
  [[nodiscard]] Cgroup& cgroup() noexcept { return cg_; }
  [[nodiscard]] const hypervisor::vm_config& config() const noexcept { return cfg_; }
  /// Keep the sandbox directory (console.log) after stop, for debugging.
  void keep_directory(bool keep) noexcept { keep_dir_ = keep; }

 private:
  hypervisor::vm_config cfg_;
  Hypervisor hv_;
  SharedFs fs_;
  [[no_unique_address]] Cgroup cg_;
  owner_lock owner_;
  bool started_ = false;
  bool keep_dir_ = false;
};

/// QEMU, virtio-9p, no host-side sandbox cgroup (see host_cgroup.hpp for the real policy).
using qemu_9p_sandbox = basic_sandbox<hypervisor::qemu::vm, sharedfs::virtio_9p, cgroup::noop>;

}  // namespace katana::inline v0::sandbox
