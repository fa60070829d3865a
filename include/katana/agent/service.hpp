// basic_agent<Engine>: what katana-agent does for each RPC of Kata's agent protocol, in katana
// types. The binary's RPC layer (agent/rpc.hpp) translates protobuf at the edge and calls
// these; tests call them directly with testing/fake_engine.hpp.
//
// Single-threaded: everything runs on one io_context (engine calls are synchronous, waits
// are coroutines), so the state needs no locks, and the reaper (SIGCHLD) runs between calls.
#pragma once

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <malloc.h>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <unistd.h>
#include <utility>
#include <vector>

#include <boost/asio/posix/stream_descriptor.hpp>

#include <katana/agent/cgroup_driver.hpp>
#include <katana/agent/copy_file.hpp>
#include <katana/agent/devices.hpp>
#include <katana/agent/engine.hpp>
#include <katana/agent/guest.hpp>
#include <katana/agent/kmod.hpp>
#include <katana/agent/namespaces.hpp>
#include <katana/agent/network.hpp>
#include <katana/agent/reaper.hpp>
#include <katana/agent/sandbox.hpp>
#include <katana/agent/stdio.hpp>
#include <katana/agent/storage.hpp>
#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/core/log.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/try.hpp>
#include <katana/oci/spec_json.hpp>
#include <katana/oci/validate.hpp>
#include <katana/ttrpc/asio.hpp>
#include <katana/ttrpc/status.hpp>

namespace katana::inline v0::agent {

namespace detail {
inline unexpected<error> precondition(std::string why) {
  return fail(make_error_code(ttrpc::code::failed_precondition), std::move(why));
}

/// Container and exec ids become directory names: [A-Za-z0-9_.-], not "." or "..", <= 128.
inline status check_id(std::string_view id, std::string_view what) {
  if (id.empty()) {
    return fail(errc::invalid_argument, str_cat(what, " is empty"));
  }
  const bool ok =
      id.size() <= 128 && id != "." && id != ".." && std::all_of(id.begin(), id.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '-' || c == '.';
      });
  if (!ok) {
    return fail(errc::invalid_argument,
                str_cat(what, " \"", id, "\" must be 1-128 characters of [A-Za-z0-9_.-]"));
  }
  return {};
}

/// Whether `pid` has a handler for `sig` (SigCgt in /proc/<pid>/status).
inline bool signal_handled(const std::filesystem::path& proc, pid_t pid, int sig) {
  std::ifstream in(proc / std::to_string(pid) / "status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("SigCgt:", 0) == 0) {
      std::uint64_t mask = 0;
      const auto v = std::string_view(line).substr(7);
      const auto first = v.find_first_not_of(" \t");
      if (first != std::string_view::npos) {
        std::from_chars(v.data() + first, v.data() + v.size(), mask, 16);
      }
      return ((mask >> (sig - 1)) & 1U) != 0;
    }
  }
  return false;
}
}  // namespace detail

template <container_engine Engine, mounter Mounter = linux_mounter>
class basic_agent {
  using process_ptr = std::shared_ptr<detail::process_entry>;

 public:
  basic_agent(asio::any_io_executor ex, Engine engine, agent_options opts, Mounter m = {})
      : ex_(std::move(ex)),
        engine_(std::move(engine)),
        opts_(std::move(opts)),
        mounter_(std::move(m)),
        log_(opts_.log.component("agent")),
        reaper_(ex_, [this](pid_t pid, int st) { on_reaped(pid, st); }) {}
  basic_agent(const basic_agent&) = delete;
  basic_agent& operator=(const basic_agent&) = delete;
  ~basic_agent() { reaper_.stop(); }

  /// Starts reaping children. Call once, before serving.
  void start() {
    std::error_code ec;
    std::filesystem::create_directories(opts_.run_dir, ec);
    reaper_.start();
  }

  Engine& engine() noexcept { return engine_; }
  const agent_options& options() const noexcept { return opts_; }
  [[nodiscard]] std::size_t container_count() const noexcept { return containers_.size(); }
  [[nodiscard]] std::size_t tracked_processes() const noexcept { return by_pid_.size(); }
  void count_call() noexcept { ++metrics_.rpc_calls; }

  // ---- sandbox -------------------------------------------------------------------------------

  task<status> create_sandbox(sandbox_request req) {
    if (sandbox_.created) {
      co_return fail(errc::already_exists, str_cat("sandbox ", sandbox_.id, " already exists"));
    }
    if (!req.kernel_modules.empty()) {
      if (!opts_.load_module) {
        co_return detail::precondition(
            "kernel_modules: this agent does not load modules (it is not the guest's init)");
      }
      for (const auto& m : req.kernel_modules) {
        KATANA_CO_TRY(opts_.load_module(m), "CreateSandbox");
      }
    }
    sandbox_.id = req.sandbox_id;
    sandbox_.hostname = req.hostname;
    sandbox_.pidns = req.sandbox_pidns;
    if (!req.guest_hook_path.empty()) {
      sandbox_.guest_hook_path =
          KATANA_CO_TRY(clean_absolute(req.guest_hook_path, "guest_hook_path"));
    }
    for (auto& s : req.storages) {
      if (auto r = ensure_filesystem(storage_fstype(s)); !r) {
        release_storages(sandbox_.storages);
        co_return unexpected<error>(std::move(r).error().wrap("CreateSandbox"));
      }
      auto key = co_await storages_.add(mounter_, opts_.env, std::move(s));
      if (!key) {
        release_storages(sandbox_.storages);
        co_return unexpected<error>(std::move(key).error().wrap("CreateSandbox"));
      }
      sandbox_.storages.push_back(std::move(*key));
    }
    if (opts_.share_namespaces) {
      const auto dir = opts_.run_dir / "sandbox" / "ns";
      auto ns = persistent_ns::create_together(
          {persistent_ns::request{"ipc", dir / "ipc"}, persistent_ns::request{"uts", dir / "uts"}},
          req.hostname);
      if (!ns) {
        release_storages(sandbox_.storages);
        co_return unexpected<error>(std::move(ns).error().wrap("CreateSandbox"));
      }
      sandbox_.ipc = std::move((*ns)[0]);
      sandbox_.uts = std::move((*ns)[1]);
      sandbox_.shared.ipc = sandbox_.ipc.path();
      sandbox_.shared.uts = sandbox_.uts.path();
    }
    if (opts_.init_mode && !req.hostname.empty()) {
      (void)::sethostname(req.hostname.data(), req.hostname.size());
    }
    if (!req.dns.empty()) {
      std::string text;
      for (const auto& d : req.dns) {
        text += d + "\n";
      }
      std::error_code ec;
      std::filesystem::create_directories(opts_.run_dir / "sandbox", ec);
      std::ofstream(opts_.run_dir / "sandbox" / "resolv.conf") << text;
    }
    sandbox_.created = true;
    log_.info("sandbox created", {{"sandbox", sandbox_.id},
                                  {"hostname", sandbox_.hostname},
                                  {"pidns", sandbox_.pidns},
                                  {"storages", sandbox_.storages.size()}});
    co_return status{};
  }

  /// Removes every container, unmounts every storage, drops the shared namespaces; then
  /// options().on_destroy (PID 1: power off).
  task<status> destroy_sandbox() {
    std::vector<std::string> ids;
    for (const auto& [id, c] : containers_) {
      ids.push_back(id);
    }
    status first;
    for (const auto& id : ids) {
      auto r = co_await remove_container(id, 10);
      if (!r && first) {
        first = std::move(r);
      }
    }
    if (auto r = storages_.clear(mounter_); !r && first) {
      first = std::move(r);
    }
    sandbox_ = detail::sandbox_state{};
    log_.info("sandbox destroyed");
    if (opts_.on_destroy) {
      opts_.on_destroy();
    }
    co_return first;
  }

  // ---- containers ----------------------------------------------------------------------------

  task<status> create_container(container_request req) {
    const std::string id = req.container_id;
    KATANA_CO_TRY(detail::check_id(id, "container_id"));
    if (containers_.count(id) != 0 || creating_.count(id) != 0) {
      co_return fail(errc::already_exists, str_cat("container ", id, " already exists"));
    }
    if (!req.spec) {
      co_return fail(errc::invalid_argument, str_cat("container ", id, ": no OCI spec"));
    }
    oci::spec spec = std::move(*req.spec);
    KATANA_CO_TRY(oci::validate(spec), str_cat("container ", id));
    if (!spec.linux_) {
      spec.linux_.emplace();
    }
    const auto cg = KATANA_CO_TRY(
        choose_cgroup(spec.linux_->cgroups_path, id, opts_.init_mode, systemd_running_now()),
        str_cat("container ", id));
    if (cg.driver == cgroup_driver::systemd) {
      log_.info("systemd cgroup driver", {{"container", id}, {"path", cg.path}});
    }
    creating_.insert(id);
    const scope_exit unreserve([&] { creating_.erase(id); });

    const auto dev_log = log_.with({{"container", id}});
    if (auto r = co_await add_devices(opts_.env, req.devices, spec, dev_log); !r) {
      co_return unexpected<error>(std::move(r).error().wrap(str_cat("container ", id)));
    }
    for (const auto& s : req.storages) {
      KATANA_CO_TRY(ensure_filesystem(storage_fstype(s)), str_cat("container ", id));
    }
    for (const auto& m : spec.mounts) {
      KATANA_CO_TRY(ensure_filesystem(m.type), str_cat("container ", id));
    }
    std::vector<std::string> mounted;
    for (auto& s : req.storages) {
      auto key = co_await storages_.add(mounter_, opts_.env, std::move(s));
      if (!key) {
        release_storages(mounted);
        co_return unexpected<error>(std::move(key).error().wrap(str_cat("container ", id)));
      }
      mounted.push_back(std::move(*key));
    }
    scope_exit unmount([&] { release_storages(mounted); });

    spec.linux_->cgroups_path = cg.path;
    update_container_namespaces(spec, sandbox_.shared, req.sandbox_pidns || sandbox_.pidns);
    if (!sandbox_.guest_hook_path.empty()) {
      append_guest_hooks(spec, sandbox_.guest_hook_path);
    }
    const auto bundle = opts_.run_dir / id;
    std::error_code ec;
    std::filesystem::create_directories(bundle, ec);
    if (ec) {
      co_return fail(ec, "create bundle " + bundle.string());
    }
    scope_exit remove_bundle([&] {
      std::error_code ignored;
      std::filesystem::remove_all(bundle, ignored);
    });
    if (spec.hooks) {  // for the hooks, as Kata's agent does; nothing else reads it
      std::ofstream(bundle / "config.json") << oci::to_json(spec);
    }

    auto io = KATANA_CO_TRY(make_stdio(spec.process->terminal));
    container_config cfg{id, std::move(spec), bundle, io.child_fds(), cg.driver};
    auto started = KATANA_CO_TRY(engine_.create(cfg), str_cat("container ", id));
    // No co_await from here to registration: the reaper must find the pid.
    const pid_t pid = started.pid;
    io.close_child_ends();
    if (io.terminal) {
      if (auto t = io.attach_terminal(std::move(started.term_master)); !t) {
        (void)::kill(pid, SIGKILL);
        co_return unexpected<error>(std::move(t).error().wrap(str_cat("container ", id)));
      }
    }
    auto& c = containers_[id];
    c.id = id;
    c.bundle = bundle;
    c.storages = std::move(mounted);
    c.init = make_process(id, id, pid, true, std::move(io));
    by_pid_[pid] = c.init;
    if (sandbox_.pidns && sandbox_.shared.pid.empty()) {
      sandbox_.shared.pid = str_cat(opts_.proc_root.string(), "/", pid, "/ns/pid");
    }
    unmount.release();
    remove_bundle.release();
    trim_soon();  // the engine's setup buffers (the init's config) go back to the guest
    log_.info("container created", {{"container", id}, {"pid", pid}});
    co_return status{};
  }

  task<status> start_container(std::string id) {
    auto* c = KATANA_CO_TRY(find_container(id));
    if (c->state != detail::container_state::created) {
      co_return detail::precondition(
          str_cat("container ", id, " is ", detail::to_string(c->state), ", not created"));
    }
    if (!c->init->running()) {
      co_return detail::precondition(str_cat("container ", id, ": its init process exited"));
    }
    KATANA_CO_TRY(engine_.start(id), str_cat("container ", id));
    c->state = detail::container_state::running;
    if constexpr (oom_notifier<Engine>) {
      if (auto w = engine_.watch_oom(id)) {
        c->oom_fd = std::make_shared<asio::posix::stream_descriptor>(ex_, w->fd.release());
        asio::co_spawn(ex_, oom_loop(id, std::move(w->check), c->oom_fd), asio::detached);
      } else {
        log_.warn("no OOM notifications", {{"container", id}, {"error", w.error()}});
      }
    }
    log_.info("container started", {{"container", id}});
    co_return status{};
  }

  /// Kills what is left of the container (SIGKILL to all), waits for its init at most
  /// `timeout` seconds (0: no limit), then releases it.
  task<status> remove_container(std::string id, std::uint32_t timeout) {
    auto* c = KATANA_CO_TRY(find_container(id));
    if (c->state == detail::container_state::paused) {
      (void)engine_.resume(id);
      c->state = detail::container_state::running;
    }
    // Every process of the container, the init first; each holds its own reference.
    std::vector<process_ptr> procs{c->init};
    for (const auto& [eid, p] : c->execs) {
      procs.push_back(p);
    }
    (void)engine_.signal(id, 0, SIGKILL);
    const auto until = timeout == 0 ? std::optional<clock::time_point>()
                                    : clock::now() + std::chrono::seconds(timeout);
    for (const auto& p : procs) {
      if (p->running()) {
        (void)::kill(p->pid, SIGKILL);
      }
      while (p->running() && (!until || clock::now() < *until)) {
        co_await p->exited.wait(until);
      }
      if (p->running()) {
        co_return fail(errc::timeout, str_cat("container ", id, ": ", describe(*p), " (pid ",
                                              p->pid, ") still running after ", timeout, " s"));
      }
    }
    c = KATANA_CO_TRY(find_container(id));  // someone else may have removed it meanwhile
    auto r = engine_.remove(id);
    if (c->oom_fd) {
      boost::system::error_code ignored;
      c->oom_fd->close(ignored);
    }
    c->init->close_streams();
    for (auto& [eid, p] : c->execs) {
      p->close_streams();
    }
    release_storages(c->storages);
    std::error_code ec;
    std::filesystem::remove_all(c->bundle, ec);
    containers_.erase(id);
    trim_soon();  // the container's buffers go back to the guest
    log_.info("container removed", {{"container", id}});
    if (!r) {
      co_return unexpected<error>(std::move(r).error().wrap(str_cat("container ", id)));
    }
    co_return status{};
  }

  task<status> exec_process(std::string cid, std::string eid, oci::process proc) {
    auto* c = KATANA_CO_TRY(find_container(cid));
    KATANA_CO_TRY(detail::check_id(eid, "exec_id"));
    if (eid == cid || c->execs.count(eid) != 0) {
      co_return fail(errc::already_exists, str_cat("exec ", eid, " already exists in ", cid));
    }
    if (c->state != detail::container_state::running || !c->init->running()) {
      co_return detail::precondition(str_cat("container ", cid, " is not running"));
    }
    if (proc.args.empty()) {
      co_return fail(errc::invalid_argument, str_cat("exec ", eid, ": process.args is empty"));
    }
    if (proc.cwd.empty()) {
      proc.cwd = "/";
    }
    auto io = KATANA_CO_TRY(make_stdio(proc.terminal));
    exec_config cfg{cid, eid, std::move(proc), io.child_fds()};
    auto started = KATANA_CO_TRY(engine_.exec(cfg), str_cat("exec ", eid, " in ", cid));
    const pid_t pid = started.pid;
    io.close_child_ends();
    if (io.terminal) {
      if (auto t = io.attach_terminal(std::move(started.term_master)); !t) {
        (void)::kill(pid, SIGKILL);
        co_return unexpected<error>(std::move(t).error().wrap(str_cat("exec ", eid)));
      }
    }
    auto p = make_process(cid, eid, pid, false, std::move(io));
    c->execs[eid] = p;
    by_pid_[pid] = p;
    log_.info("exec started", {{"container", cid}, {"exec", eid}, {"pid", pid}});
    co_return status{};
  }

  /// exec_id "" signals the init and then every process of the container; the container's
  /// own id or an exec id signals that process. SIGTERM to an init that does not handle it
  /// becomes SIGKILL (a pid namespace's init ignores unhandled signals).
  task<status> signal_process(std::string cid, std::string eid, std::uint32_t sig) {
    if (sig == 0 || sig > 64) {
      co_return fail(errc::invalid_argument, str_cat("signal ", sig, " is not in 1..64"));
    }
    auto p = KATANA_CO_TRY(find_process(cid, eid));
    if (!p->running()) {
      co_return fail(errc::not_found,
                     str_cat("process ", p->pid, " (", describe(*p), ") already finished"));
    }
    int s = static_cast<int>(sig);
    if (p->init && s == SIGTERM && !detail::signal_handled(opts_.proc_root, p->pid, SIGTERM)) {
      s = SIGKILL;
    }
    if (::kill(p->pid, s) != 0 && errno != ESRCH) {
      co_return fail_errno(str_cat("kill ", p->pid));
    }
    if (eid.empty()) {
      (void)engine_.signal(cid, 0, s);
    }
    co_return status{};
  }

  /// The exit status (exit code, or 128 + signal) once the process has exited.
  task<result<int>> wait_process(std::string cid, std::string eid, cancellation* cancel = nullptr) {
    auto p = KATANA_CO_TRY(find_process(cid, eid));
    while (p->running()) {
      if (cancel != nullptr && cancel->cancelled) {
        co_return fail(make_error_code(ttrpc::code::cancelled), "the caller went away");
      }
      co_await p->exited.wait(std::nullopt, cancel != nullptr ? &cancel->fired : nullptr);
    }
    p->waited = true;
    const int st = exit_status(*p->wait_status);
    maybe_forget(p);
    co_return st;
  }

  task<result<std::string>> read_stream(std::string cid,
                                        std::string eid,
                                        bool stdout_stream,
                                        std::uint32_t len,
                                        cancellation* cancel = nullptr) {
    auto p = KATANA_CO_TRY(find_process(cid, eid));
    const auto stream = stdout_stream ? p->out : p->err;
    if (!stream) {
      co_return std::string();  // a terminal has no separate stderr
    }
    auto r = co_await stream->read(std::min<std::uint32_t>(len, 1U << 20), cancel);
    maybe_forget(p);
    co_return r;
  }

  task<result<std::uint32_t>> write_stdin(std::string cid, std::string eid, std::string data) {
    auto p = KATANA_CO_TRY(find_process(cid, eid));
    if (!p->in) {
      co_return detail::precondition("stdin is closed");
    }
    auto in = p->in;
    co_return co_await in->write(std::move(data));
  }

  task<status> close_stdin(std::string cid, std::string eid) {
    auto p = KATANA_CO_TRY(find_process(cid, eid));
    if (!p->in) {
      co_return status{};
    }
    auto in = p->in;
    co_return co_await in->close();
  }

  task<status> tty_win_resize(std::string cid,
                              std::string eid,
                              std::uint32_t rows,
                              std::uint32_t cols) {
    auto p = KATANA_CO_TRY(find_process(cid, eid));
    if (!p->term_master) {
      co_return detail::precondition(str_cat(describe(*p), " has no terminal"));
    }
    co_return resize_terminal(p->term_master.get(), rows, cols);
  }

  task<status> update_container(std::string cid, oci::linux_resources r) {
    KATANA_CO_TRY(find_container(cid));
    co_return wrap(engine_.update(cid, r), str_cat("container ", cid));
  }

  task<result<container_stats>> stats_container(std::string cid) {
    KATANA_CO_TRY(find_container(cid));
    co_return wrap(engine_.stats(cid), str_cat("container ", cid));
  }

  task<status> pause_container(std::string cid) {
    auto* c = KATANA_CO_TRY(find_container(cid));
    if (c->state != detail::container_state::running) {
      co_return detail::precondition(
          str_cat("container ", cid, " is ", detail::to_string(c->state), ", not running"));
    }
    KATANA_CO_TRY(engine_.pause(cid), str_cat("container ", cid));
    c->state = detail::container_state::paused;
    co_return status{};
  }

  task<status> resume_container(std::string cid) {
    auto* c = KATANA_CO_TRY(find_container(cid));
    if (c->state != detail::container_state::paused) {
      co_return detail::precondition(
          str_cat("container ", cid, " is ", detail::to_string(c->state), ", not paused"));
    }
    KATANA_CO_TRY(engine_.resume(cid), str_cat("container ", cid));
    c->state = detail::container_state::running;
    co_return status{};
  }

  task<result<std::vector<pid_t>>> list_processes(std::string cid) {
    KATANA_CO_TRY(find_container(cid));
    co_return wrap(engine_.pids(cid), str_cat("container ", cid));
  }

  /// Long poll: the id of the next container that had an OOM kill.
  task<result<std::string>> get_oom_event(cancellation* cancel = nullptr) {
    while (oom_queue_.empty()) {
      if (cancel != nullptr && cancel->cancelled) {
        co_return fail(make_error_code(ttrpc::code::cancelled), "the caller went away");
      }
      co_await oom_event_.wait(std::nullopt, cancel != nullptr ? &cancel->fired : nullptr);
    }
    auto id = std::move(oom_queue_.front());
    oom_queue_.erase(oom_queue_.begin());
    co_return id;
  }

  /// Queues an OOM event (engines without oom_notifier, tests).
  void report_oom(const std::string& cid) {
    ++metrics_.oom_events;
    log_.warn("OOM kill in container", {{"container", cid}});
    if (oom_queue_.size() < 1024) {
      oom_queue_.push_back(cid);
    }
    oom_event_.notify_all();
  }

  // ---- guest ---------------------------------------------------------------------------------

  /// Onlines hot-plugged CPUs (and memory unless cpu_only). With `wait`, keeps looking for
  /// up to the hot-plug timeout until nb_cpus CPUs were onlined.
  task<status> online_cpu_mem(bool wait, std::uint32_t nb_cpus, bool cpu_only) {
    KATANA_CO_TRY(guest_changes_allowed("OnlineCPUMem"));
    const auto end = clock::now() + opts_.env.timeout;
    std::uint32_t onlined = 0;
    asio::steady_timer timer(ex_);
    for (;;) {
      onlined += KATANA_CO_TRY(agent::online_cpu_mem(
          opts_.env.sys_root, nb_cpus == 0 ? 0 : nb_cpus - onlined, cpu_only));
      if (!wait || nb_cpus == 0 || onlined >= nb_cpus) {
        co_return status{};
      }
      if (clock::now() >= end) {
        co_return fail(errc::timeout,
                       str_cat("OnlineCPUMem: ", onlined, " of ", nb_cpus, " CPUs came online"));
      }
      timer.expires_after(opts_.env.poll_interval);
      boost::system::error_code ec;
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }

  /// Hot-added memory by probe: each address goes to /sys/devices/system/memory/probe.
  task<status> mem_hotplug_by_probe(std::vector<std::uint64_t> addresses) {
    KATANA_CO_TRY(guest_changes_allowed("MemHotplugByProbe"));
    const auto probe = opts_.env.sys_root / "devices" / "system" / "memory" / "probe";
    for (const auto a : addresses) {
      char text[32];
      const int n = std::snprintf(text, sizeof text, "0x%llx", static_cast<unsigned long long>(a));
      KATANA_CO_TRY(
          detail::write_small_file(probe, std::string_view(text, static_cast<std::size_t>(n))),
          "MemHotplugByProbe");
    }
    co_return status{};
  }

  /// Mixes the runtime's random bytes into the guest's pool and reseeds the CRNG.
  task<status> reseed_random_dev(std::string data) {
    co_return reseed_random(opts_.env.dev_root / "random", data);
  }

  // ---- network: the agent's own namespace (the guest's when it is init) ----------------------

  task<result<std::vector<net_interface>>> list_interfaces() {
    auto net = KATANA_CO_TRY(network::open(), "ListInterfaces");
    co_return net.list_interfaces();
  }

  /// A hot-plugged NIC may not be there yet: wait for its MAC up to the hot-plug timeout.
  task<result<net_interface>> update_interface(net_interface iface) {
    KATANA_CO_TRY(guest_changes_allowed("UpdateInterface"));
    auto net = KATANA_CO_TRY(network::open(), "UpdateInterface");
    const auto end = clock::now() + opts_.env.timeout;
    asio::steady_timer timer(ex_);
    for (;;) {
      auto r = net.update_interface(iface);
      if (r || r.error().code != make_error_code(errc::not_found) || clock::now() >= end) {
        co_return r;
      }
      timer.expires_after(opts_.env.poll_interval);
      boost::system::error_code ec;
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }

  task<result<std::vector<net_route>>> list_routes() {
    auto net = KATANA_CO_TRY(network::open(), "ListRoutes");
    co_return net.list_routes();
  }

  task<result<std::vector<net_route>>> update_routes(std::vector<net_route> routes) {
    KATANA_CO_TRY(guest_changes_allowed("UpdateRoutes"));
    auto net = KATANA_CO_TRY(network::open(), "UpdateRoutes");
    co_return net.update_routes(routes);
  }

  task<status> add_arp_neighbors(std::vector<arp_neighbor> neighbors) {
    KATANA_CO_TRY(guest_changes_allowed("AddARPNeighbors"));
    auto net = KATANA_CO_TRY(network::open(), "AddARPNeighbors");
    co_return net.add_arp_neighbors(neighbors);
  }

  task<result<guest_details>> get_guest_details(bool mem_block_size, bool mem_hotplug_probe) {
    guest_details d;
    if (mem_block_size) {
      d.mem_block_size_bytes = KATANA_CO_TRY(memory_block_size(opts_.env.sys_root));
    }
    if (mem_hotplug_probe) {
      d.support_mem_hotplug_probe = memory_hotplug_probe(opts_.env.sys_root);
    }
    d.version = version_string;
    d.init_daemon = opts_.init_mode;
    d.device_handlers.assign(std::begin(device_handlers), std::end(device_handlers));
    d.storage_handlers.assign(std::begin(storage_handlers), std::end(storage_handlers));
    d.supports_seccomp = true;
    co_return d;
  }

  task<status> set_guest_date_time(std::int64_t sec, std::int64_t usec) {
    KATANA_CO_TRY(guest_changes_allowed("SetGuestDateTime"));
    co_return set_date_time(sec, usec);
  }

  task<status> copy_file(copy_file_request req) { co_return agent::copy_file(opts_.run_dir, req); }

  task<result<std::string>> get_metrics() {
    metrics_.containers = containers_.size();
    metrics_.processes = by_pid_.size();
    co_return prometheus_metrics(metrics_, opts_.proc_root);
  }

 private:
  /// A filesystem not loaded at boot (overlay, ext4, ...) has its module loaded on first use,
  /// when this agent loads modules (init mode) and the kernel does not know the type yet.
  status ensure_filesystem(const std::string& fstype) {
    if (!opts_.load_module || builtin_filesystem(fstype)) {
      return {};
    }
    const auto known = detail::read_small_file(opts_.proc_root / "filesystems");
    if (known && filesystem_registered(*known, fstype)) {
      return {};
    }
    auto r = opts_.load_module(kernel_module{fstype, {}});
    if (!r && r.error().code == errc::not_found) {
      return {};  // no such module (fuse.sshfs, say): mount(2) has the last word
    }
    return r.transform_error(with_context(str_cat("filesystem ", fstype)));
  }

  status guest_changes_allowed(std::string_view rpc) const {
    if (opts_.allow_guest_changes.value_or(opts_.init_mode)) {
      return {};
    }
    return fail(make_error_code(ttrpc::code::permission_denied),
                str_cat(rpc,
                        ": this agent is not the guest's init and does not own the machine "
                        "(katana-agent --allow-guest-changes)"));
  }

  result<detail::container_entry*> find_container(const std::string& id) {
    auto it = containers_.find(id);
    if (it == containers_.end()) {
      return fail(errc::not_found, str_cat("container ", id, " not found"));
    }
    return &it->second;
  }

  result<process_ptr> find_process(const std::string& cid, const std::string& eid) {
    auto* c = KATANA_TRY(find_container(cid));
    if (eid.empty() || eid == cid) {
      return c->init;
    }
    auto it = c->execs.find(eid);
    if (it == c->execs.end()) {
      return fail(errc::not_found, str_cat("exec ", eid, " not found in container ", cid));
    }
    return it->second;
  }

  static std::string describe(const detail::process_entry& p) {
    return p.init ? str_cat("init of ", p.container_id)
                  : str_cat("exec ", p.exec_id, " of ", p.container_id);
  }

  process_ptr make_process(
      const std::string& cid, const std::string& eid, pid_t pid, bool init, stdio_set io) {
    auto p = std::make_shared<detail::process_entry>();
    p->container_id = cid;
    p->exec_id = eid;
    p->pid = pid;
    p->init = init;
    p->out = std::make_shared<output_stream>(ex_, std::move(io.parent_out));
    if (!io.terminal) {
      p->err = std::make_shared<output_stream>(ex_, std::move(io.parent_err));
    }
    p->in = std::make_shared<input_stream>(ex_, std::move(io.parent_in), io.terminal);
    p->term_master = std::move(io.term_master);
    return p;
  }

  void on_reaped(pid_t pid, int st) {
    auto it = by_pid_.find(pid);
    if (it == by_pid_.end()) {
      log_.debug("reaped orphan", {{"pid", pid}, {"status", exit_status(st)}});
      return;
    }
    auto p = it->second;
    by_pid_.erase(it);
    p->wait_status = st;
    const auto now = clock::now();
    if (p->out) {
      p->out->process_exited(now);
    }
    if (p->err) {
      p->err->process_exited(now);
    }
    p->exited.notify_all();
    engine_.reaped(p->container_id, pid, st);
    if (p->init) {
      if (auto c = containers_.find(p->container_id); c != containers_.end()) {
        c->second.state = detail::container_state::stopped;
      }
    }
    log_.info("process exited", {{"container", p->container_id},
                                 {"exec", p->exec_id},
                                 {"pid", pid},
                                 {"status", exit_status(st)}});
  }

  // An exec that was waited for and whose output was read to the end is forgotten.
  void maybe_forget(const process_ptr& p) {
    if (p->init || !p->waited || (p->out && !p->out->at_eof()) || (p->err && !p->err->at_eof())) {
      return;
    }
    if (auto c = containers_.find(p->container_id); c != containers_.end()) {
      if (auto e = c->second.execs.find(p->exec_id); e != c->second.execs.end() && e->second == p) {
        p->close_streams();
        c->second.execs.erase(e);
      }
    }
  }

  void release_storages(std::vector<std::string>& keys) {
    for (auto it = keys.rbegin(); it != keys.rend(); ++it) {
      if (auto r = storages_.release(mounter_, *it); !r) {
        log_.warn("unmount failed", {{"mount_point", *it}, {"error", r.error()}});
      }
    }
    keys.clear();
  }

  bool systemd_running_now() const { return opts_.systemd ? *opts_.systemd : systemd_running(); }

  task<void> oom_loop(std::string id,
                      std::function<result<bool>()> check,
                      std::shared_ptr<asio::posix::stream_descriptor> sd) {
    for (;;) {
      boost::system::error_code ec;
      co_await sd->async_wait(asio::posix::descriptor_base::wait_read,
                              asio::redirect_error(asio::use_awaitable, ec));
      if (ec || !sd->is_open()) {
        co_return;  // the container is gone
      }
      auto hit = check();
      if (!hit) {
        log_.warn("OOM watch failed", {{"container", id}, {"error", hit.error()}});
        co_return;
      }
      if (*hit) {
        report_oom(id);
      }
    }
  }

  // malloc_trim walks every arena and unmaps its free pages: a second after the last request
  // that freed much, not before its reply (under TCG that is ~2 ms of kernel code run once).
  void trim_soon() {
    if (!trim_timer_) {
      trim_timer_ = std::make_shared<asio::steady_timer>(ex_);
    }
    trim_timer_->expires_after(std::chrono::seconds(1));  // cancels the pending wait
    trim_timer_->async_wait([](boost::system::error_code ec) {
      if (!ec) {
        ::malloc_trim(0);
      }
    });
  }

  asio::any_io_executor ex_;
  std::shared_ptr<asio::steady_timer> trim_timer_;
  Engine engine_;
  agent_options opts_;
  Mounter mounter_;
  logging::logger log_;
  reaper reaper_;
  detail::sandbox_state sandbox_;
  storage_registry storages_;
  std::map<std::string, detail::container_entry> containers_;
  std::set<std::string> creating_;
  std::map<pid_t, process_ptr> by_pid_;
  std::vector<std::string> oom_queue_;
  event oom_event_;
  agent_metrics metrics_;
};

}  // namespace katana::inline v0::agent
