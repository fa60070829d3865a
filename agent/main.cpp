// katana-agent: the guest agent serving Kata's agent protocol (grpc.AgentService, grpc.Health)
// over ttrpc. Inside the VM it is PID 1: it mounts the basic filesystems, loads the kernel
// modules it is told to, finds its channel (virtio-serial port agent.channel.0 or vsock port
// 1024) and runs the pod's containers. On a host (host mode, for tests and development) it
// listens where --listen says.
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fcntl.h>
#include <filesystem>
#include <memory>
#include <optional>
#include <sched.h>
#include <span>
#include <string>
#include <string_view>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include <boost/asio/signal_set.hpp>

#include <katana/agent/cgroups.hpp>
#include <katana/agent/channel.hpp>
#include <katana/agent/config.hpp>
#include <katana/agent/init.hpp>
#include <katana/agent/katana_engine.hpp>
#include <katana/agent/kmod.hpp>
#include <katana/agent/service.hpp>
#include <katana/core/error.hpp>
#include <katana/core/log.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/try.hpp>
#include <katana/core/unique_fd.hpp>
#if KATANA_AGENT_PROCESS_ENGINE
#include <katana/testing/fake_engine.hpp>
#endif
#include <katana/ttrpc/transport.hpp>

#include "rpc.hpp"
// rpc.hpp brings the generated bindings.

namespace {

namespace ag = katana::agent;
namespace kt = katana::ttrpc;
using katana::errc;
using katana::result;
using katana::status;
using katana::task;

constexpr std::string_view usage = R"(usage: katana-agent [options]

Serves Kata's agent protocol (grpc.AgentService, grpc.Health) over ttrpc. As PID 1 it sets up
the guest first; settings then come from the kernel command line (agent.log=, agent.server_addr=,
agent.channel=, agent.modules=a,b, agent.debug_console, ...).

options:
  --listen ADDR         unix:///path | unix://@name | vsock://-1:1024 | serial://agent.channel.0
                        | serial:///dev/vportNpM (default: agent.server_addr, else the channel)
  --log-level LEVEL     trace, debug, info, warn, error (default: agent.log or info)
  --log-format FORMAT   json or text (default: json)
  --log-file PATH       append logs there instead of standard error
  --cmdline PATH        read agent.* parameters from PATH instead of /proc/cmdline
  --run-dir DIR         containers' bundles and CopyFile's root (default /run/kata-containers)
  --engine NAME         katana (the container engine, default) or process (plain host
                        processes, no isolation: development and tests only)
  --isolate             host mode: private mount, UTS and IPC namespaces and a tmpfs run dir,
                        so the agent touches nothing of the host's (needs root)
  --allow-guest-changes let SetGuestDateTime, OnlineCPUMem, MemHotplugByProbe and the network
                        RPCs (UpdateInterface, UpdateRoutes, AddARPNeighbors) change the
                        machine outside init mode (host mode refuses them by default)
  --no-shared-namespaces  do not create the sandbox's shared IPC/UTS namespaces
  --no-cgroups          containers get no cgroup (stats, update, pause and OOM events
                        then answer UNIMPLEMENTED)
  --exit-on-destroy     exit after DestroySandbox (host mode; PID 1 powers off instead)
  --version             print the version
)";

struct options {
  std::string listen;
  std::optional<std::string> log_level;
  std::string log_format;
  std::string log_file;
  std::string cmdline_file = "/proc/cmdline";
  std::string run_dir = "/run/kata-containers";
  std::string engine = "katana";
  bool isolate = false;
  bool allow_guest_changes = false;
  bool shared_namespaces = true;
  bool cgroups = true;
  bool exit_on_destroy = false;
};

result<options> parse_args(std::span<char*> argv) {
  options o;
  for (std::size_t i = 1; i < argv.size(); ++i) {
    const std::string_view a = argv[i];
    const auto value = [&](std::string_view name) -> result<std::string> {
      if (a.size() > name.size() && a.substr(0, name.size()) == name && a[name.size()] == '=') {
        return std::string(a.substr(name.size() + 1));
      }
      if (i + 1 >= argv.size()) {
        return katana::fail(errc::invalid_argument, std::string(name) + " needs a value");
      }
      return std::string(argv[++i]);
    };
    const auto is = [&](std::string_view name) {
      return a == name ||
             (a.size() > name.size() && a.substr(0, name.size()) == name && a[name.size()] == '=');
    };
    if (is("--listen") || is("--server-address")) {
      o.listen = KATANA_TRY(value(is("--listen") ? "--listen" : "--server-address"));
    } else if (is("--log-level")) {
      o.log_level = KATANA_TRY(value("--log-level"));
    } else if (is("--log-format")) {
      o.log_format = KATANA_TRY(value("--log-format"));
    } else if (is("--log-file")) {
      o.log_file = KATANA_TRY(value("--log-file"));
    } else if (is("--cmdline")) {
      o.cmdline_file = KATANA_TRY(value("--cmdline"));
    } else if (is("--run-dir")) {
      o.run_dir = KATANA_TRY(value("--run-dir"));
    } else if (is("--engine")) {
      o.engine = KATANA_TRY(value("--engine"));
      if (o.engine != "katana" && o.engine != "process") {
        return katana::fail(errc::invalid_argument, "--engine must be katana or process");
      }
    } else if (a == "--isolate") {
      o.isolate = true;
    } else if (a == "--allow-guest-changes" || a == "--allow-set-time") {
      o.allow_guest_changes = true;
    } else if (a == "--no-shared-namespaces") {
      o.shared_namespaces = false;
    } else if (a == "--no-cgroups") {
      o.cgroups = false;
    } else if (a == "--exit-on-destroy") {
      o.exit_on_destroy = true;
    } else if (a == "--version") {
      std::printf("katana-agent %s\n", katana::version_string);
      std::exit(0);
    } else if (a == "--help" || a == "-h") {
      std::fputs(usage.data(), stdout);
      std::exit(0);
    } else {
      return katana::fail(errc::invalid_argument, "unknown argument \"" + std::string(a) + "\"");
    }
  }
  return o;
}

/// Host mode's sandbox: nothing the agent mounts or names leaks to the host.
status isolate(const std::string& run_dir) {
  if (::unshare(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC) != 0) {
    return katana::fail_errno("--isolate: unshare");
  }
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    return katana::fail_errno("--isolate: make / private");
  }
  std::error_code ec;
  std::filesystem::create_directories(run_dir, ec);
  if (::mount("tmpfs", run_dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") != 0) {
    return katana::fail_errno("--isolate: mount tmpfs on " + run_dir);
  }
  return {};
}

/// PID 1's setup: filesystems, then (once the logger exists) modules.
status init_filesystems(const katana::logging::logger& log) {
  ag::linux_mounter m;
  // proc first: the plan's choice of cgroup layout reads it.
  (void)::mkdir("/proc", 0555);
  (void)m.mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "");
  const auto filesystems = ag::detail::read_small_file("/proc/filesystems").value_or("");
  const auto cmdline = ag::detail::read_small_file("/proc/cmdline").value_or("");
  const auto cgroups = ag::detail::read_small_file("/proc/cgroups").value_or("");
  const auto layout = ag::choose_cgroup_layout(filesystems, cmdline);
  KATANA_TRY(ag::apply_init_mounts(
      m, ag::init_mount_plan(layout, ag::cgroup_v1_controllers(cgroups)), log));
  ag::make_dev_links();
  if (layout == ag::cgroup_layout::v2) {
    if (auto r = ag::enable_cgroup_v2_controllers(); !r) {
      log.warn("cgroup v2 controllers", {{"error", r.error()}});
    }
  }
  return {};
}

template <class Server, class Acceptor>
task<void> serve_acceptor(std::shared_ptr<Server> server, std::shared_ptr<Acceptor> acc) {
  co_await server->serve(*acc);
}

/// Opens the agent's virtio-serial port, for good.
katana::result<katana::unique_fd> open_port(const std::string& path) {
  katana::unique_fd fd(::open(path.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC));
  if (!fd) {
    return katana::fail_errno("open " + path);
  }
  return fd;
}

/// A virtio-serial port: one stream the host connects to and leaves; serve it again each time
/// (while no host is connected, a read gives EOF at once, hence the pause). Each connection
/// gets a duplicate of `port`, which stays open: closing the port would make the guest drop
/// what the host has sent already, and a host that connects while it is closed (a VM template
/// saved during the pause, then cloned) could lose its first request. `port` is opened before
/// "serving" is logged, as the template is saved when that line appears.
task<void> serve_serial(std::shared_ptr<kt::char_device_server> server,
                        std::string path,
                        katana::logging::logger log,
                        std::shared_ptr<bool> stopping,
                        katana::result<katana::unique_fd> port) {
  auto ex = co_await katana::asio::this_coro::executor;
  katana::asio::steady_timer pause(ex);
  while (!*stopping) {
    if (!port) {
      log.error("open agent channel", {{"path", path}, {"error", port.error()}});
      port = open_port(path);
    } else if (const int dup = ::fcntl(port->get(), F_DUPFD_CLOEXEC, 0); dup >= 0) {
      co_await server->serve_connection(kt::char_device(ex, dup));
    } else {
      log.error("agent channel", {{"path", path}, {"error", katana::fail_errno("dup").error()}});
    }
    pause.expires_after(std::chrono::milliseconds(50));
    boost::system::error_code ec;
    co_await pause.async_wait(katana::asio::redirect_error(katana::asio::use_awaitable, ec));
  }
}

template <class Engine>
int run(const options& o,
        ag::agent_config cfg,
        katana::logging::logger root,
        bool init_mode,
        std::shared_ptr<ag::module_loader> loader,
        bool modules_built_in,
        Engine engine) {
  katana::asio::io_context io;
  const auto log = root.component("agent");
  auto stopping = std::make_shared<bool>(false);

  ag::agent_options ao;
  ao.run_dir = o.run_dir;
  ao.env.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(cfg.hotplug_timeout);
  ao.init_mode = init_mode;
  ao.share_namespaces = o.shared_namespaces;
  if (o.allow_guest_changes) {
    ao.allow_guest_changes = true;
  }
  ao.log = root;
  if (loader) {
    ao.load_module = [loader](const ag::kernel_module& m) -> status {
      std::string params;
      for (const auto& p : m.parameters) {
        params += (params.empty() ? "" : " ") + p;
      }
      return loader->load(m.name, params);
    };
  } else if (modules_built_in) {
    // No module support: a module is built in or absent, and an absent one fails what needs it.
    ao.load_module = [](const ag::kernel_module& m) -> status {
      if (!m.parameters.empty()) {
        return katana::fail(errc::unsupported,
                            katana::str_cat("module ", m.name,
                                            ": the kernel has no module support, so its "
                                            "parameters cannot be set"));
      }
      return {};
    };
  }
  ao.on_destroy = [&io, init_mode, exit = o.exit_on_destroy, log, stopping] {
    if (!init_mode && !exit) {
      return;
    }
    // Let the DestroySandbox reply go out first.
    auto t = std::make_shared<katana::asio::steady_timer>(io, std::chrono::milliseconds(200));
    t->async_wait([t, &io, init_mode, log, stopping](boost::system::error_code) {
      *stopping = true;
      if (init_mode) {
        log.info("powering off");
        if (auto r = ag::power_off(); !r) {
          log.error("power off", {{"error", r.error()}});
        }
      }
      io.stop();
    });
  };

  using agent_t = ag::basic_agent<Engine>;
  auto agent = std::make_shared<agent_t>(io.get_executor(), std::move(engine), std::move(ao));
  agent->start();
  auto impl = std::make_shared<ag::rpc_service<agent_t>>(agent);
  kt::service_table table;
  ag::register_services(table, impl);

  std::optional<ag::listen_address> addr;
  if (!o.listen.empty()) {
    cfg.server_addr = o.listen;
  }
  katana::asio::co_spawn(
      io,
      [&]() -> task<void> {
        auto a = co_await ag::resolve_listen_address(cfg, std::chrono::seconds(30));
        if (!a) {
          log.fatal("no agent channel", {{"error", a.error()}});
          io.stop();
          co_return;
        }
        addr = *a;
      },
      katana::asio::detached);
  while (!addr && !io.stopped()) {
    io.run_one();
  }
  if (!addr) {
    return 1;
  }

  std::function<void()> shutdown;
  switch (addr->type) {
    case ag::listen_address::kind::unix_socket: {
      if (addr->path.front() == '/') {
        (void)::unlink(addr->path.c_str());
      }
      auto acc = kt::listen_unix(io.get_executor(), addr->path);
      if (!acc) {
        log.fatal("listen", {{"error", acc.error()}});
        return 1;
      }
      auto acceptor = std::make_shared<kt::unix_acceptor>(std::move(*acc));
      auto server = std::make_shared<kt::unix_server>(table);
      katana::asio::co_spawn(io, serve_acceptor(server, acceptor), katana::asio::detached);
      shutdown = [acceptor] {
        boost::system::error_code ec;
        acceptor->close(ec);
      };
      break;
    }
    case ag::listen_address::kind::vsock: {
      auto acc = ag::listen_vsock(io.get_executor(), addr->port, addr->cid);
      if (!acc) {
        log.fatal("listen", {{"error", acc.error()}});
        return 1;
      }
      auto acceptor = std::make_shared<kt::vsock_acceptor>(std::move(*acc));
      auto server = std::make_shared<kt::vsock_server>(table);
      katana::asio::co_spawn(io, serve_acceptor(server, acceptor), katana::asio::detached);
      shutdown = [acceptor] {
        boost::system::error_code ec;
        acceptor->close(ec);
      };
      break;
    }
    case ag::listen_address::kind::serial: {
      std::string path = addr->path;
      if (path.empty()) {
        std::optional<result<std::filesystem::path>> found;
        katana::asio::co_spawn(
            io,
            [&]() -> task<void> {
              found = co_await ag::wait_virtio_port(addr->port_name, std::chrono::seconds(30));
            },
            katana::asio::detached);
        while (!found && !io.stopped()) {
          io.run_one();
        }
        if (!found || !*found) {
          log.fatal("no virtio-serial port",
                    {{"name", addr->port_name},
                     {"error", found ? found->error().message() : std::string("stopped")}});
          return 1;
        }
        path = (*found)->string();
      }
      auto server = std::make_shared<kt::char_device_server>(table);
      katana::asio::co_spawn(io, serve_serial(server, path, log, stopping, open_port(path)),
                             katana::asio::detached);
      shutdown = [] {
      };
      break;
    }
  }
  log.info("serving", {{"address", ag::to_string(*addr)},
                       {"init", init_mode},
                       {"version", katana::version_string}});

  katana::asio::signal_set stop_signals(io, SIGTERM, SIGINT);
  stop_signals.async_wait([&](boost::system::error_code ec, int sig) {
    if (ec) {
      return;
    }
    log.info("stopping", {{"signal", sig}});
    *stopping = true;
    shutdown();
    if (init_mode) {
      (void)ag::power_off();
    }
    io.stop();
  });
  io.run();
  return 0;
}

int real_main(std::span<char*> argv) {
  const bool init_mode = ::getpid() == 1;
  auto o = parse_args(argv);
  if (!o) {
    std::fprintf(stderr, "katana-agent: %s\n%s", o.error().message().c_str(), usage.data());
    return 2;
  }
  // A bootstrap logger for PID 1's first steps (the console is stderr).
  auto boot_log = katana::logging::logger(katana::logging::fd_writer(2));
  if (init_mode) {
    // On the initramfs itself containers could not pivot_root: give "/" a parent mount.
    if (ag::root_may_be_initramfs()) {
      if (auto r = ag::rebind_root(); !r) {
        boot_log.error("rebind root", {{"error", r.error()}});
      }
    }
  }
  if (init_mode) {
    if (auto r = init_filesystems(boot_log.component("init")); !r) {
      boot_log.fatal("init filesystems", {{"error", r.error()}});
    }
  }
  ag::agent_config cfg;
  if (auto text = ag::detail::read_small_file(o->cmdline_file)) {
    if (auto r = ag::parse_kernel_cmdline(*text, cfg); !r) {
      boot_log.warn("kernel command line", {{"error", r.error()}});
    }
  }
  if (o->log_level) {
    cfg.log_level = *o->log_level;
  }
  if (!o->log_format.empty()) {
    cfg.log_format = o->log_format;
  }
  auto root = katana::logging::logger::open({.format = cfg.log_format == "text"
                                                           ? katana::logging::format::text
                                                           : katana::logging::format::json,
                                             .levels = cfg.log_level,
                                             .file = o->log_file});
  if (!root) {
    std::fprintf(stderr, "katana-agent: %s\n", root.error().message().c_str());
    return 2;
  }
  const auto log = root->component("agent");
  for (const auto& u : cfg.unknown) {
    log.info("unknown kernel parameter", {{"param", "agent." + u}});
  }
  ::signal(SIGPIPE, SIG_IGN);
  if (auto r = ag::become_subreaper(); !r) {
    log.warn("subreaper", {{"error", r.error()}});
  }
  if (o->isolate) {
    if (auto r = isolate(o->run_dir); !r) {
      log.fatal("isolate", {{"error", r.error()}});
      return 1;
    }
  }
  // agent.modules, or (not given) every module the initrd's modules.dep lists; the same loader
  // serves later requests (CreateSandbox, filesystems).
  std::shared_ptr<ag::module_loader> loader;
  // A kernel without module support (katana's tailored kernel) has no /proc/modules (with
  // /proc mounted): everything is built in, and what is missing shows up as the failure of
  // what needed it (a mount, a device).
  std::error_code ec;
  const bool modules_built_in = init_mode && std::filesystem::exists("/proc/self", ec) &&
                                !std::filesystem::exists("/proc/modules", ec);
  if (modules_built_in) {
    log.info("kernel without module support: no modules loaded",
             {{"modules", cfg.modules_given ? std::to_string(cfg.modules.size()) + " asked"
                                            : std::string("none asked")}});
  } else if (init_mode) {
    auto idx = ag::module_index::load(ag::default_modules_dir());
    if (!idx) {
      if (cfg.modules_given) {
        log.error("modules", {{"error", idx.error()}});
      }
    } else {
      const auto wanted = cfg.modules_given ? cfg.modules : idx->names();
      loader = std::make_shared<ag::module_loader>(std::move(*idx));
      const auto t0 = std::chrono::steady_clock::now();
      for (const auto& m : wanted) {
        if (auto r = loader->load(m); !r) {
          log.error("load module", {{"module", m}, {"error", r.error()}});
        }
      }
      log.info("modules loaded", {{"count", loader->loaded().size()},
                                  {"ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                                             std::chrono::steady_clock::now() - t0)
                                             .count()}});
    }
  }
  if (init_mode && cfg.debug_console) {
    if (auto pid = ag::spawn_debug_console(); !pid) {
      log.warn("debug console", {{"error", pid.error()}});
    }
  }
  if (o->engine == "process") {
#if KATANA_AGENT_PROCESS_ENGINE
    log.warn("engine \"process\": containers are plain host processes, without isolation");
    return run(*o, cfg, *root, init_mode, loader, modules_built_in, katana::testing::fake_engine{});
#else
    log.fatal("engine \"process\" is not built into this agent (KATANA_AGENT_PROCESS_ENGINE)");
    return 2;
#endif
  }
  ag::cgroup_ops cg;
  if (o->cgroups) {
    katana::cgroup::selection sel;
    sel.agent_is_init = init_mode;
    sel.log = root->component("cgroup");
    cg = ag::make_cgroup_ops(std::move(sel));
  }
  return run(*o, cfg, *root, init_mode, std::move(loader), modules_built_in,
             ag::katana_engine{root->component("engine"), std::move(cg)});
}

}  // namespace

int main(int argc, char* argv[]) {
  try {
    return real_main(std::span<char*>(argv, static_cast<std::size_t>(argc)));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "katana-agent: internal error: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "katana-agent: internal error\n");
  }
  return 70;
}
