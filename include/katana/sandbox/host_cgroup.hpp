// sandbox::host_cgroup<Manager>: the host-side sandbox cgroup, as Kata's sandbox cgroup
// (`kata_<sandbox id>` under the hierarchy root, cgroupfs style). basic_sandbox creates it
// before the VM starts, places QEMU (and, with [runtime] sandbox_cgroup_only, the shared-fs
// daemon virtiofsd) in it between their fork and exec, and on stop remove() kills whatever
// is still in it and removes the directory in every hierarchy the manager drives.
//
// sandbox_cgroup_only = false (Kata's default) keeps virtiofsd out of the sandbox cgroup: Kata
// then puts the VMM's helper processes in an unconstrained overhead cgroup; katana leaves them
// in the caller's cgroup. QEMU itself is always in the sandbox cgroup (Kata constrains its vCPU
// threads there in both modes; katana does not split threads).
//
//   auto m = KATANA_TRY(cgroup::make_any_manager({}));
//   sandbox::host_cgroup cg(std::move(m), {.sandbox_cgroup_only = rt.sandbox_cgroup_only});
//   sandbox::basic_sandbox<qemu::vm, sharedfs::virtio_fs, sandbox::host_cgroup<>> sb(vc, {}, {},
//                                                                                 std::move(cg));
#pragma once

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <thread>
#include <utility>
#include <vector>

#include <katana/cgroup/any_manager.hpp>
#include <katana/cgroup/concepts.hpp>
#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/try.hpp>
#include <katana/sandbox/sandbox.hpp>
#include <katana/sandbox/virtio_fs.hpp>

namespace katana::inline v0::sandbox {

struct host_cgroup_options {
  /// [runtime] sandbox_cgroup_only: the shared-fs daemon goes into the sandbox cgroup too.
  bool sandbox_cgroup_only = false;
  /// How long remove() waits for killed tasks to leave the cgroup.
  std::chrono::milliseconds kill_timeout{2000};
};

template <cgroup::manager Manager = cgroup::any_manager>
class host_cgroup {
 public:
  static constexpr std::string_view name = "host";

  explicit host_cgroup(Manager m, host_cgroup_options o = {}) : m_(std::move(m)), opts_(o) {}

  /// Creates the sandbox cgroup (cfg.path, e.g. sandbox::cgroup_path(id)).
  status create(const cgroup::config& cfg) {
    KATANA_TRY(m_.create(cfg), str_cat("sandbox cgroup ", cfg.path));
    created_ = true;
    return {};
  }

  /// Takes over an existing sandbox cgroup (a stale sandbox's, for remove()).
  status open(const cgroup::config& cfg) {
    KATANA_TRY(m_.open(cfg), str_cat("sandbox cgroup ", cfg.path));
    created_ = true;
    return {};
  }

  status add_task(pid_t pid) {
    if (auto r = m_.add_task(pid); !r) {
      return unexpected<error>(
          std::move(r).error().wrap(str_cat("sandbox cgroup ", m_.path(), ": add pid ", pid)));
    }
    return {};
  }

  result<std::vector<pid_t>> pids() const { return m_.pids(); }

  /// Kills (SIGKILL) every task still in the cgroup, waits for them to leave it, removes it.
  /// Idempotent; nothing to do when create() did not succeed.
  status remove() {
    if (!created_) {
      return {};
    }
    const auto end = std::chrono::steady_clock::now() + opts_.kill_timeout;
    for (;;) {
      auto pids = m_.pids();
      if (!pids) {
        break;  // the cgroup is gone already (or unreadable): let remove() say which
      }
      if (pids->empty()) {
        break;
      }
      for (const pid_t p : *pids) {
        if (p > 0 && ::kill(p, SIGKILL) != 0 && errno != ESRCH) {
          return fail_errno(str_cat("sandbox cgroup ", m_.path(), ": kill ", p));
        }
      }
      if (std::chrono::steady_clock::now() >= end) {
        return fail(errc::timeout, str_cat("sandbox cgroup ", m_.path(), ": ", pids->size(),
                                           " task(s) still in it after SIGKILL"));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    KATANA_TRY(m_.remove(), str_cat("sandbox cgroup ", m_.path()));
    created_ = false;
    return {};
  }

  [[nodiscard]] std::string_view path() const { return m_.path(); }
  /// Whether the shared-fs daemon belongs in the sandbox cgroup ([runtime] sandbox_cgroup_only).
  [[nodiscard]] bool owns_shared_fs_daemon() const noexcept { return opts_.sandbox_cgroup_only; }
  [[nodiscard]] Manager& manager() noexcept { return m_; }
  [[nodiscard]] const Manager& manager() const noexcept { return m_; }

 private:
  Manager m_;
  host_cgroup_options opts_;
  bool created_ = false;
};

static_assert(cgroup_policy<host_cgroup<>>);

/// The host's cgroup manager (v2, hybrid or v1 as probed) wrapped as the sandbox policy.
inline result<host_cgroup<>> make_host_cgroup(host_cgroup_options o = {},
                                              cgroup::selection s = {}) {
  auto m = KATANA_TRY(cgroup::make_any_manager(s), "sandbox cgroup");
  return host_cgroup<>(std::move(m), o);
}

/// reap_stale's remove_cgroup for host_cgroup: kills what is left in kata_<id> and removes it;
/// nothing to do when it does not exist.
inline status remove_stale_host_cgroup(const std::string& sandbox_id,
                                       host_cgroup_options o = {},
                                       cgroup::selection s = {}) {
  auto cg = KATANA_TRY(make_host_cgroup(o, std::move(s)));
  if (auto r = cg.open({.path = cgroup_path(sandbox_id), .resources = {}}); !r) {
    if (r.error().code == std::errc::no_such_file_or_directory) {
      return {};
    }
    return r;
  }
  return cg.remove();
}

/// QEMU with virtio-9p or virtio-fs, in the host-side sandbox cgroup (katana-ctl vm run).
using qemu_9p_cgroup_sandbox =
    basic_sandbox<hypervisor::qemu::vm, sharedfs::virtio_9p, host_cgroup<>>;
using qemu_virtiofs_cgroup_sandbox =
    basic_sandbox<hypervisor::qemu::vm, sharedfs::virtio_fs, host_cgroup<>>;

}  // namespace katana::inline v0::sandbox
