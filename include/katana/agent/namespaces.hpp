// The pod's shared namespaces (Kata's sandbox.setup_shared_namespaces and
// update_container_namespaces): one IPC and one UTS namespace for the whole sandbox, kept
// alive by bind mounts of their nsfs files, and optionally one PID namespace, the first
// container's, that the others join.
#pragma once

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <filesystem>
#include <sched.h>
#include <string>
#include <string_view>
#include <sys/mount.h>
#include <sys/types.h>
#include <thread>
#include <unistd.h>

#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/unique_fd.hpp>
#include <katana/oci/spec.hpp>

namespace katana::inline v0::agent {

/// A namespace kept alive by a bind mount of its nsfs file at `path`.
class persistent_ns {
 public:
  persistent_ns() = default;
  persistent_ns(persistent_ns&& o) noexcept : path_(std::exchange(o.path_, {})) {}
  persistent_ns& operator=(persistent_ns&& o) noexcept {
    if (this != &o) {
      release();
      path_ = std::exchange(o.path_, {});
    }
    return *this;
  }
  persistent_ns(const persistent_ns&) = delete;
  persistent_ns& operator=(const persistent_ns&) = delete;
  ~persistent_ns() { release(); }

  /// Unshares a new namespace of `type` ("ipc" or "uts") in a short-lived child and
  /// bind-mounts it on `path` (created). For "uts", `hostname` is set inside it.
  static result<persistent_ns> create(const std::filesystem::path& path,
                                      std::string_view type,
                                      const std::string& hostname = {}) {
    int flag = 0;
    if (type == "ipc") {
      flag = CLONE_NEWIPC;
    } else if (type == "uts") {
      flag = CLONE_NEWUTS;
    } else {
      return fail(errc::invalid_argument, str_cat("cannot persist a ", type, " namespace"));
    }
    std::error_code ec;
    std::filesystem::create_directories(path.parent_path(), ec);
    {
      unique_fd f(::open(path.c_str(), O_CREAT | O_RDONLY | O_CLOEXEC, 0444));
      if (!f) {
        return fail_errno("create " + path.string());
      }
    }
    // A thread, not a fork: IPC and UTS namespaces belong to the thread, and a thread does
    // not copy the agent's address space (a fork cost ~8 ms under TCG).
    const std::string ns_file = str_cat("/proc/thread-self/ns/", type);
    int step = 0;
    int err = 0;
    std::thread([&] {
      if (::unshare(flag) != 0) {
        step = 1;
      } else if (flag == CLONE_NEWUTS && !hostname.empty() &&
                 ::sethostname(hostname.data(), hostname.size()) != 0) {
        step = 2;
      } else if (::mount(ns_file.c_str(), path.c_str(), nullptr, MS_BIND, nullptr) != 0) {
        step = 3;
      }
      err = step != 0 ? errno : 0;
    }).join();
    if (step != 0) {
      constexpr std::string_view steps[] = {"", "unshare", "sethostname", "bind mount"};
      (void)::unlink(path.c_str());
      return fail_errno(
          str_cat("persist ", type, " namespace at ", path.string(), ": ", steps[step]), err);
    }
    persistent_ns ns;
    ns.path_ = path.string();
    return ns;
  }

  [[nodiscard]] const std::string& path() const noexcept { return path_; }
  [[nodiscard]] bool active() const noexcept { return !path_.empty(); }

  void release() noexcept {
    if (!path_.empty()) {
      (void)::umount2(path_.c_str(), MNT_DETACH);
      (void)::unlink(path_.c_str());
      path_.clear();
    }
  }

 private:
  std::string path_;
};

/// What a sandbox shares with its containers.
struct shared_namespaces {
  std::string ipc;  // nsfs bind mounts; empty: not shared
  std::string uts;
  std::string pid;  // /proc/<first container's init>/ns/pid when the sandbox shares one
};

/// Points the spec's IPC and UTS namespaces at the sandbox's and sets its PID namespace:
/// the sandbox's when `share_pid` (a new one if the sandbox has none yet: this container's
/// becomes it), else a new one.
inline void update_container_namespaces(oci::spec& spec,
                                        const shared_namespaces& shared,
                                        bool share_pid) {
  if (!spec.linux_) {
    spec.linux_.emplace();
  }
  auto& nss = spec.linux_->namespaces;
  for (auto& ns : nss) {
    if (ns.type == "ipc" && !shared.ipc.empty()) {
      ns.path = shared.ipc;
    } else if (ns.type == "uts" && !shared.uts.empty()) {
      ns.path = shared.uts;
    }
  }
  nss.erase(std::remove_if(nss.begin(), nss.end(),
                           [](const oci::linux_namespace& ns) { return ns.type == "pid"; }),
            nss.end());
  oci::linux_namespace pid{"pid", {}};
  if (share_pid && !shared.pid.empty()) {
    pid.path = shared.pid;
  }
  nss.push_back(pid);
}

}  // namespace katana::inline v0::agent
