// agent::katana_engine: the agent's container_engine on katana's container engine
// (container::basic_container: create/start/exec/destroy with clone3, pivot_root, seccomp,
// hooks). Processes are created with CLONE_PARENT semantics, so inits and execs are the
// agent's children and its reaper collects them. Terminals come from the container's own
// devpts through a console socket (runc's protocol), and the master goes back to the agent.
//
// cgroups: a `cgroup_ops` table plugs a cgroup manager in (create + place the init, apply,
// freeze, stats, pids, remove, the memory directory for OOM events). Without one, pause,
// resume, update and stats answer errc::unsupported and "all processes" means the init and
// the execs the engine started.
#pragma once

#include <atomic>
#include <csignal>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <sys/types.h>
#include <unistd.h>
#include <utility>
#include <vector>

#include <katana/agent/engine.hpp>
#include <katana/agent/oom.hpp>
#include <katana/config.hpp>
#include <katana/container/console.hpp>
#include <katana/container/container.hpp>
#include <katana/core/error.hpp>
#include <katana/core/log.hpp>
#include <katana/core/scope_exit.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/try.hpp>

namespace katana::inline v0::agent {

/// A cgroup manager, type-erased for the engine adapter. Each member may be empty.
struct cgroup_ops {
  /// Makes the container's cgroup at `path` with `resources` and places `pid` in it.
  /// The spec's linux.devices come along for the default device rules.
  std::function<status(const std::string& id,
                       const std::string& path,
                       std::optional<oci::linux_resources> resources,
                       const std::vector<oci::linux_device>& devices,
                       pid_t pid)>
      create;
  /// Places another process (an exec) in the container's cgroup.
  std::function<status(const std::string& id, pid_t pid)> add_task;
  std::function<status(const std::string& id, const oci::linux_resources&)> apply;
  std::function<status(const std::string& id, bool frozen)> freeze;
  std::function<result<container_stats>(const std::string& id)> stats;
  std::function<result<std::vector<pid_t>>(const std::string& id)> pids;
  std::function<status(const std::string& id)> remove;
  /// The memory controller's directory of the container (for OOM notifications).
  std::function<result<std::filesystem::path>(const std::string& id)> memory_dir;
};

class katana_engine {
 public:
  explicit katana_engine(logging::logger log, cgroup_ops cg = {})
      : log_(std::move(log)), cg_(std::move(cg)), state_(std::make_shared<state>()) {}

  result<started_process> create(const container_config& cfg) {
    if (cfg.cgroups == cgroup_driver::systemd) {
      return fail(errc::unsupported,
                  "the systemd cgroup driver is not supported by katana's container engine");
    }
    container::create_options opt;
    opt.id = cfg.id;
    opt.bundle = cfg.bundle;
    opt.state_dir = cfg.bundle / "state";
    opt.save_state = false;  // the engine keeps the container; nothing reads state.json
    opt.stdio[0] = cfg.stdio.in;
    opt.stdio[1] = cfg.stdio.out;
    opt.stdio[2] = cfg.stdio.err;
    const std::string cg_path = cfg.spec.linux_ ? cfg.spec.linux_->cgroups_path : std::string();
    const auto resources = cfg.spec.linux_ ? cfg.spec.linux_->resources : std::nullopt;
    const auto devices =
        cfg.spec.linux_ ? cfg.spec.linux_->devices : std::vector<oci::linux_device>{};
    bool cgroup_made = false;
    if (cg_.create) {
      opt.join_cgroups = [&, id = cfg.id](int pid) {
        auto r = cg_.create(id, cg_path, resources, devices, pid);
        cgroup_made = r.has_value();
        return r;
      };
    }
    // A create that fails after the cgroup was made must not leave it behind.
    scope_exit drop_cgroup([&] {
      if (cgroup_made && cg_.remove) {
        (void)cg_.remove(cfg.id);
      }
    });
    unique_fd listener;
    std::filesystem::path sock;
    if (cfg.stdio.terminal) {
      sock = console_path(cfg.bundle);
      listener = KATANA_TRY(container::listen_console_socket(sock));
      opt.console_socket = sock;
    }
    const scope_exit unlink_sock([&] {
      if (!sock.empty()) {
        std::error_code ec;
        std::filesystem::remove(sock, ec);
      }
    });
    auto c = KATANA_TRY(container::container::create(cfg.spec, opt));
    started_process out;
    out.pid = c.pid();
    if (listener) {
      auto master = container::accept_console(listener.get());
      if (!master) {
        (void)::kill(out.pid, SIGKILL);
        return unexpected<error>(std::move(master).error().wrap("terminal"));
      }
      out.term_master = std::move(master->fd);
    }
    drop_cgroup.release();
    auto& e = state_->containers[cfg.id];
    e.c.emplace(std::move(c));
    e.cgroup = static_cast<bool>(cg_.create);
    e.pids.insert(out.pid);
    return out;
  }

  status start(const std::string& id) {
    auto* e = KATANA_TRY(get(id));
    return e->c->start();
  }

  result<started_process> exec(const exec_config& x) {
    auto* e = KATANA_TRY(get(x.container_id));
    container::exec_options opt;
    opt.stdio[0] = x.stdio.in;
    opt.stdio[1] = x.stdio.out;
    opt.stdio[2] = x.stdio.err;
    if (cg_.add_task && e->cgroup) {
      opt.join_cgroups = [this, id = x.container_id](int pid) {
        return cg_.add_task(id, pid);
      };
    }
    unique_fd listener;
    std::filesystem::path sock;
    if (x.stdio.terminal) {
      sock = console_path(e->c->state_dir());
      listener = KATANA_TRY(container::listen_console_socket(sock));
      opt.console_socket = sock;
    }
    const scope_exit unlink_sock([&] {
      if (!sock.empty()) {
        std::error_code ec;
        std::filesystem::remove(sock, ec);
      }
    });
    auto h = KATANA_TRY(e->c->exec(x.process, opt));
    started_process out;
    out.pid = h.pid;
    if (listener) {
      auto master = container::accept_console(listener.get());
      if (!master) {
        (void)::kill(out.pid, SIGKILL);
        return unexpected<error>(std::move(master).error().wrap("terminal"));
      }
      out.term_master = std::move(master->fd);
    }
    e->pids.insert(out.pid);
    return out;
  }

  status signal(const std::string& id, pid_t pid, int sig) {
    auto* e = KATANA_TRY(get(id));
    if (pid > 0) {
      return ::kill(pid, sig) == 0 || errno == ESRCH ? status{} : fail_errno(str_cat("kill ", pid));
    }
    std::vector<pid_t> all(e->pids.begin(), e->pids.end());
    if (cg_.pids && e->cgroup) {
      if (auto p = cg_.pids(id)) {
        all = std::move(*p);
      }
    }
    for (const pid_t p : all) {
      (void)::kill(p, sig);
    }
    return {};
  }

  void reaped(const std::string& id, pid_t pid, int) {
    if (auto it = state_->containers.find(id); it != state_->containers.end()) {
      it->second.pids.erase(pid);
    }
  }

  status remove(const std::string& id) {
    auto* e = KATANA_TRY(get(id));
    auto r = e->c->destroy();
    if (cg_.remove && e->cgroup) {
      if (auto cr = cg_.remove(id); !cr && r) {
        r = std::move(cr);
      }
    }
    state_->containers.erase(id);
    return r;
  }

  status pause(const std::string& id) { return freeze(id, true); }
  status resume(const std::string& id) { return freeze(id, false); }

  status update(const std::string& id, const oci::linux_resources& r) {
    auto* e = KATANA_TRY(get(id));
    if (!cg_.apply || !e->cgroup) {
      return fail(errc::unsupported, "UpdateContainer needs a cgroup manager");
    }
    return cg_.apply(id, r);
  }

  result<container_stats> stats(const std::string& id) const {
    const auto* e = KATANA_TRY(get(id));
    if (!cg_.stats || !e->cgroup) {
      return fail(errc::unsupported, "StatsContainer needs a cgroup manager");
    }
    return cg_.stats(id);
  }

  result<std::vector<pid_t>> pids(const std::string& id) const {
    const auto* e = KATANA_TRY(get(id));
    if (cg_.pids && e->cgroup) {
      return cg_.pids(id);
    }
    return std::vector<pid_t>(e->pids.begin(), e->pids.end());
  }

  result<oom_watch> watch_oom(const std::string& id) {
    auto* e = KATANA_TRY(get(id));
    if (!cg_.memory_dir || !e->cgroup) {
      return fail(errc::unsupported, "OOM events need a cgroup manager");
    }
    const auto dir = KATANA_TRY(cg_.memory_dir(id));
    return agent::watch_oom(dir);
  }

 private:
  struct entry {
    std::optional<container::container> c;
    bool cgroup = false;
    std::set<pid_t> pids;  // init and execs this engine started and the agent has not reaped
  };
  struct state {
    std::map<std::string, entry> containers;
    std::uint64_t sockets = 0;
  };

  status freeze(const std::string& id, bool frozen) {
    auto* e = KATANA_TRY(get(id));
    if (!cg_.freeze || !e->cgroup) {
      return fail(errc::unsupported, str_cat(frozen ? "PauseContainer" : "ResumeContainer",
                                             " needs a cgroup manager"));
    }
    return cg_.freeze(id, frozen);
  }

  result<entry*> get(const std::string& id) {
    auto it = state_->containers.find(id);
    if (it == state_->containers.end()) {
      return fail(errc::not_found, "engine: no container " + id);
    }
    return &it->second;
  }
  result<const entry*> get(const std::string& id) const {
    auto it = state_->containers.find(id);
    if (it == state_->containers.end()) {
      return fail(errc::not_found, "engine: no container " + id);
    }
    return &it->second;
  }

  // sun_path holds 107 bytes: prefer a short name next to the container.
  std::filesystem::path console_path(const std::filesystem::path& dir) {
    auto p = dir / str_cat("console-", ++state_->sockets, ".sock");
    if (p.native().size() < 100) {
      return p;
    }
    return std::filesystem::temp_directory_path() /
           str_cat("katana-console-", ::getpid(), "-", state_->sockets, ".sock");
  }

  logging::logger log_;
  cgroup_ops cg_;
  std::shared_ptr<state> state_;
};

static_assert(container_engine<katana_engine>);
static_assert(oom_notifier<katana_engine>);

}  // namespace katana::inline v0::agent
