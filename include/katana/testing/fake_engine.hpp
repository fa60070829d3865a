// A fake agent::container_engine for tests: "containers" are plain host processes (no
// namespaces, no cgroups, no rootfs), so the agent's process handling, stdio, reaping and
// error paths run for real without root. It records what it was asked, and can be told to
// fail an operation or to report an OOM kill.
#pragma once

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <fcntl.h>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/types.h>
#include <unistd.h>
#include <utility>
#include <vector>

#include <katana/agent/engine.hpp>
#include <katana/agent/stdio.hpp>
#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/unique_fd.hpp>

namespace katana::inline v0::testing {

class fake_engine {
 public:
  struct container {
    agent::container_config config;
    pid_t init = 0;
    unique_fd start_pipe;  // write end: the init execs once it reads EOF
    std::set<pid_t> pids;
    bool paused = false;
    std::vector<oci::linux_resources> updates;
    unique_fd oom_event;  // eventfd of the current watch
  };

  /// Every call, in order: "create c1", "start c1", "exec c1 e1", "signal c1 0 9", ...
  std::vector<std::string> calls;
  /// Fails the next call of that operation ("create", "start", "exec", ...) with this error.
  std::map<std::string, error> fail_next;

  [[nodiscard]] const container* find(const std::string& id) const {
    auto it = shared_->containers.find(id);
    return it == shared_->containers.end() ? nullptr : &it->second;
  }

  /// Makes the container's OOM watch fire (as a cgroup OOM kill would).
  status trigger_oom(const std::string& id) {
    auto it = shared_->containers.find(id);
    if (it == shared_->containers.end() || !it->second.oom_event) {
      return fail(errc::not_found, "no OOM watch for " + id);
    }
    const std::uint64_t one = 1;
    if (::write(it->second.oom_event.get(), &one, sizeof one) != sizeof one) {
      return fail_errno("eventfd write");
    }
    return {};
  }

  result<agent::started_process> create(const agent::container_config& cfg) {
    KATANA_TRY(injected("create"));
    calls.push_back("create " + cfg.id);
    if (shared_->containers.count(cfg.id) != 0) {
      return fail(errc::already_exists, "fake: container " + cfg.id + " exists");
    }
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) {
      return fail_errno("pipe2");
    }
    unique_fd gate_r(p[0]);
    unique_fd gate_w(p[1]);
    auto started = KATANA_TRY(spawn(cfg.spec.process ? *cfg.spec.process : oci::process{},
                                    cfg.stdio, gate_r.get(), gate_w.get()));
    auto& c = shared_->containers[cfg.id];
    c.config = cfg;
    c.init = started.pid;
    c.start_pipe = std::move(gate_w);
    c.pids.insert(started.pid);
    return started;
  }

  status start(const std::string& id) {
    KATANA_TRY(injected("start"));
    calls.push_back("start " + id);
    auto* c = KATANA_TRY(get(id));
    c->start_pipe.reset();  // EOF: the init execs
    return {};
  }

  result<agent::started_process> exec(const agent::exec_config& x) {
    KATANA_TRY(injected("exec"));
    calls.push_back("exec " + x.container_id + " " + x.exec_id);
    auto* c = KATANA_TRY(get(x.container_id));
    auto started = KATANA_TRY(spawn(x.process, x.stdio, -1, -1));
    c->pids.insert(started.pid);
    return started;
  }

  status signal(const std::string& id, pid_t pid, int sig) {
    KATANA_TRY(injected("signal"));
    calls.push_back(str_cat("signal ", id, " ", pid, " ", sig));
    auto* c = KATANA_TRY(get(id));
    if (pid > 0) {
      return ::kill(pid, sig) == 0 ? status{} : fail_errno(str_cat("kill ", pid));
    }
    for (const pid_t p : c->pids) {
      (void)::kill(p, sig);
    }
    return {};
  }

  void reaped(const std::string& id, pid_t pid, int wait_status) {
    calls.push_back(str_cat("reaped ", id, " ", pid, " ", wait_status));
    if (auto it = shared_->containers.find(id); it != shared_->containers.end()) {
      it->second.pids.erase(pid);
    }
  }

  status remove(const std::string& id) {
    KATANA_TRY(injected("remove"));
    calls.push_back("remove " + id);
    auto* c = KATANA_TRY(get(id));
    if (!c->pids.empty()) {
      return fail(make_error_code(std::errc::device_or_resource_busy),
                  str_cat("fake: container ", id, " still has ", c->pids.size(), " processes"));
    }
    shared_->containers.erase(id);
    return {};
  }

  status pause(const std::string& id) {
    KATANA_TRY(injected("pause"));
    calls.push_back("pause " + id);
    auto* c = KATANA_TRY(get(id));
    for (const pid_t p : c->pids) {
      (void)::kill(p, SIGSTOP);
    }
    c->paused = true;
    return {};
  }

  status resume(const std::string& id) {
    KATANA_TRY(injected("resume"));
    calls.push_back("resume " + id);
    auto* c = KATANA_TRY(get(id));
    for (const pid_t p : c->pids) {
      (void)::kill(p, SIGCONT);
    }
    c->paused = false;
    return {};
  }

  status update(const std::string& id, const oci::linux_resources& r) {
    KATANA_TRY(injected("update"));
    calls.push_back("update " + id);
    auto* c = KATANA_TRY(get(id));
    c->updates.push_back(r);
    return {};
  }

  result<agent::container_stats> stats(const std::string& id) const {
    const auto* c = find(id);
    if (c == nullptr) {
      return fail(errc::not_found, "fake: no container " + id);
    }
    agent::container_stats s;
    s.pids.current = c->pids.size();
    s.pids.limit = 1024;
    s.memory.usage = 4096 * c->pids.size();
    s.memory.limit = 1U << 30;
    s.cpu.total_ns = 1000;
    return s;
  }

  result<std::vector<pid_t>> pids(const std::string& id) const {
    const auto* c = find(id);
    if (c == nullptr) {
      return fail(errc::not_found, "fake: no container " + id);
    }
    return std::vector<pid_t>(c->pids.begin(), c->pids.end());
  }

  result<agent::oom_watch> watch_oom(const std::string& id) {
    auto* c = KATANA_TRY(get(id));
    unique_fd efd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!efd) {
      return fail_errno("eventfd");
    }
    unique_fd mine(::fcntl(efd.get(), F_DUPFD_CLOEXEC, 3));
    c->oom_event = std::move(mine);
    agent::oom_watch w;
    const int raw = efd.get();
    w.fd = std::move(efd);
    w.check = [raw]() -> result<bool> {
      std::uint64_t n = 0;
      return ::read(raw, &n, sizeof n) == static_cast<ssize_t>(sizeof n) && n > 0;
    };
    return w;
  }

 private:
  struct state {
    std::map<std::string, container> containers;
  };

  status injected(const std::string& op) {
    if (auto it = fail_next.find(op); it != fail_next.end()) {
      auto e = std::move(it->second);
      fail_next.erase(it);
      return unexpected<error>(std::move(e));
    }
    return {};
  }

  result<container*> get(const std::string& id) {
    auto it = shared_->containers.find(id);
    if (it == shared_->containers.end()) {
      return fail(errc::not_found, "fake: no container " + id);
    }
    return &it->second;
  }

  // fork + exec with the given stdio (a new pty for a terminal); when `gate` >= 0 the child
  // waits for EOF on it first (closing its copy of the write end, `gate_w`).
  static result<agent::started_process> spawn(const oci::process& p,
                                              const agent::stdio_fds& io,
                                              int gate,
                                              int gate_w) {
    if (p.args.empty()) {
      return fail(errc::invalid_argument, "fake: process.args is empty");
    }
    agent::started_process out;
    unique_fd slave;
    if (io.terminal) {
      auto pty = KATANA_TRY(agent::open_terminal(p.console_size ? p.console_size->height : 0,
                                                 p.console_size ? p.console_size->width : 0));
      out.term_master = std::move(pty.first);
      slave = std::move(pty.second);
    }
    const int fds[3] = {io.terminal ? slave.get() : io.in, io.terminal ? slave.get() : io.out,
                        io.terminal ? slave.get() : io.err};
    std::vector<std::string> args = p.args;
    std::vector<std::string> env = p.env;
    std::vector<char*> argv;
    for (auto& a : args) {
      argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (auto& e : env) {
      envp.push_back(e.data());
    }
    envp.push_back(nullptr);
    const std::string cwd = p.cwd;
    // Closed by a successful exec (O_CLOEXEC); an errno otherwise.
    int ready[2];
    if (::pipe2(ready, O_CLOEXEC) != 0) {
      return fail_errno("pipe2");
    }
    unique_fd ready_r(ready[0]);
    unique_fd ready_w(ready[1]);
    const pid_t pid = ::fork();
    if (pid < 0) {
      return fail_errno("fork");
    }
    if (pid == 0) {
      // The parent's handlers (a test framework's, the agent's) must not run here.
      for (int sig = 1; sig < NSIG; ++sig) {
        ::signal(sig, SIG_DFL);
      }
      sigset_t none;
      ::sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      ::close(ready[0]);
      if (io.terminal) {
        ::setsid();
      } else {
        ::setpgid(0, 0);
      }
      for (int i = 0; i < 3; ++i) {
        if (fds[i] >= 0) {
          ::dup2(fds[i], i);
        } else {
          const int null = ::open("/dev/null", O_RDWR);
          ::dup2(null, i);
        }
      }
      if (io.terminal) {
        ::ioctl(0, TIOCSCTTY, 0);
      }
      if (gate_w >= 0) {
        ::close(gate_w);
      }
      if (gate >= 0) {
        char b = 0;
        while (::read(gate, &b, 1) < 0 && errno == EINTR) {
        }
      }
      if (!cwd.empty()) {
        (void)::chdir(cwd.c_str());
      }
      ::execvpe(argv[0], argv.data(), envp.data());
      const int err = errno;
      (void)::write(ready[1], &err, sizeof err);
      ::_exit(127);
    }
    ready_w.reset();
    out.pid = pid;
    if (gate < 0) {
      // Wait for the exec (a created container execs only at start).
      int err = 0;
      ssize_t n = 0;
      do {
        n = ::read(ready_r.get(), &err, sizeof err);
      } while (n < 0 && errno == EINTR);
      if (n == static_cast<ssize_t>(sizeof err)) {
        return fail_errno(str_cat("fake: exec ", args.front()), err);
      }
    }
    return out;
  }

  std::shared_ptr<state> shared_ = std::make_shared<state>();
};

static_assert(agent::container_engine<fake_engine>);
static_assert(agent::oom_notifier<fake_engine>);

}  // namespace katana::inline v0::testing
