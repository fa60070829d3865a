// The pod's shared namespaces (Kata's sandbox.setup_shared_namespaces and
// update_container_namespaces): one IPC and one UTS namespace for the whole sandbox, kept
// alive by bind mounts of their nsfs files, and optionally one PID namespace, the first
// container's, that the others join.
#pragma once

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <filesystem>
#include <initializer_list>
#include <sched.h>
#include <string>
#include <string_view>
#include <sys/mount.h>
#include <sys/types.h>
#include <unistd.h>
#include <vector>

#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/try.hpp>
#include <katana/core/unique_fd.hpp>
#include <katana/oci/spec.hpp>

namespace katana::inline v0::agent {

namespace detail {

inline constexpr std::size_t max_together = 2;

/// The unshare, hostname and bind mounts, as plain data (no allocation between them).
struct unshare_job {
  struct bind {
    const char* source = nullptr;  // /proc/thread-self/ns/<type>
    const char* target = nullptr;
  };
  int flags = 0;
  const char* hostname = nullptr;
  std::size_t hostname_len = 0;
  bind binds[max_together];
  std::size_t count = 0;
  int step = 0;  // 0 ok, 1 unshare, 2 sethostname, 3 bind mount (of binds[failed])
  std::size_t failed = 0;
  int err = 0;

  static void* run(void* p) noexcept {
    auto& j = *static_cast<unshare_job*>(p);
    if (::unshare(j.flags) != 0) {
      j.step = 1;
    } else if ((j.flags & CLONE_NEWUTS) != 0 && j.hostname_len != 0 &&
               ::sethostname(j.hostname, j.hostname_len) != 0) {
      j.step = 2;
    } else {
      for (std::size_t i = 0; i < j.count; ++i) {
        if (::mount(j.binds[i].source, j.binds[i].target, nullptr, MS_BIND, nullptr) != 0) {
          j.step = 3;
          j.failed = i;
          break;
        }
      }
    }
    j.err = j.step != 0 ? errno : 0;
    return nullptr;
  }
};

}  // namespace detail

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

  /// Where one namespace goes: `type` is "ipc" or "uts", `path` the file it is bound on.
  struct request {
    std::string_view type;
    std::filesystem::path path;
  };

  /// Unshares new namespaces of the requested types together and bind-mounts each on its
  /// path (created); for "uts", `hostname` is set inside it. The calling thread returns to
  /// its own namespaces. All or nothing: on failure nothing stays mounted or created.
  static result<std::vector<persistent_ns>> create_together(std::initializer_list<request> wanted,
                                                            const std::string& hostname = {}) {
    if (wanted.size() > detail::max_together) {
      return fail(errc::invalid_argument, "persist namespaces: too many at once");
    }
    detail::unshare_job job;
    job.hostname = hostname.c_str();
    job.hostname_len = hostname.size();
    std::vector<std::string> ns_files;
    ns_files.reserve(wanted.size());
    std::vector<persistent_ns> out;  // each unmounts and unlinks its target if we fail
    out.reserve(wanted.size());      // binds[] points into these strings
    for (const auto& w : wanted) {
      int flag = 0;
      if (w.type == "ipc") {
        flag = CLONE_NEWIPC;
      } else if (w.type == "uts") {
        flag = CLONE_NEWUTS;
      } else {
        return fail(errc::invalid_argument, str_cat("cannot persist a ", w.type, " namespace"));
      }
      KATANA_TRY(make_target(w.path));
      out.emplace_back().path_ = w.path.string();
      ns_files.push_back(str_cat("/proc/thread-self/ns/", w.type));
      job.flags |= flag;
      job.binds[job.count++] = {ns_files.back().c_str(), out.back().path_.c_str()};
    }
    // On this thread and back: IPC and UTS namespaces belong to the thread, so unsharing
    // here and returning with setns leaves the agent as it was. (A helper thread cost ~4 ms
    // under TCG for its stack, TLS, start and exit; a fork, ~8 ms.)
    unique_fd own[detail::max_together];
    for (std::size_t i = 0; i < job.count; ++i) {
      own[i].reset(::open(ns_files[i].c_str(), O_RDONLY | O_CLOEXEC));
      if (!own[i]) {
        return fail_errno(str_cat("persist namespaces: open ", ns_files[i]));
      }
    }
    detail::unshare_job::run(&job);
    if (job.step != 1) {  // unshare succeeded: go back
      for (std::size_t i = 0; i < job.count; ++i) {
        if (::setns(own[i].get(), 0) != 0) {
          return fail_errno(str_cat("persist namespaces: return to the agent's ", ns_files[i]));
        }
      }
    }
    if (job.step != 0) {
      constexpr std::string_view steps[] = {"", "unshare", "sethostname", "bind mount"};
      const char* at = job.step == 3 ? job.binds[job.failed].target : job.binds[0].target;
      return fail_errno(str_cat("persist namespace at ", at, ": ", steps[job.step]), job.err);
    }
    return out;
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
  /// Creates the empty file a namespace is bind-mounted on.
  static status make_target(const std::filesystem::path& path) {
    std::error_code ec;
    std::filesystem::create_directories(path.parent_path(), ec);
    unique_fd f(::open(path.c_str(), O_CREAT | O_RDONLY | O_CLOEXEC, 0444));
    if (!f) {
      return fail_errno("create " + path.string());
    }
    return {};
  }

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
