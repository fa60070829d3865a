// katana-ctl vm run --rootfs DIR [--config F] [--keep] -- CMD ARGS: one container in a sandbox
// VM, composed directly (no containerd): boot, share the rootfs (virtio-9p, or virtio-fs
// through virtiofsd: the configuration's shared_fs or --shared-fs), CreateSandbox,
// CreateContainer, StartContainer, stream stdout/stderr, WaitProcess, DestroySandbox, tear down;
// exits with the container's exit code.
#include "vm_cmd.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <sys/random.h>
#include <sys/resource.h>
#include <system_error>
#include <thread>
#include <unistd.h>

#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>

#include <katana/agent/copy_file.hpp>
#include <katana/config/load.hpp>
#include <katana/config/validate.hpp>
#include <katana/core/scope_exit.hpp>
#include <katana/hypervisor/host.hpp>
#include <katana/oci/default_spec.hpp>
#include <katana/sandbox/guest_spec.hpp>
#include <katana/sandbox/host_cgroup.hpp>
#include <katana/sandbox/sandbox.hpp>
#include <katana/sandbox/virtio_fs.hpp>
#include <katana/sandbox/vm_template.hpp>
#include <katana/ttrpc/transport.hpp>

// convert.hpp first: it #undefs glibc's major/minor before agent.pb.h.
#include "convert.hpp"
// clang-format off
#include "agent.ttrpc.hpp"
// clang-format on

namespace katana_ctl {

const std::string_view vm_usage = R"(
  vm run --rootfs DIR [--config F] [--shared-fs virtio-9p|virtio-fs] [--keep] [--timing]
         -- CMD ARGS
                                        run CMD in a container in a sandbox VM; exits with its
                                        exit code, or 125 when the run itself fails (as docker
                                        run) (--shared-fs overrides the configuration's
                                        shared_fs; --keep keeps the sandbox directory; --timing
                                        reports the phases, the sandbox cgroup (kata_<id>, QEMU's
                                        pid) and the max RSS of QEMU and katana-ctl, from
                                        KATANA_TIMING_START_NS (CLOCK_REALTIME ns) if set).
                                        SIGINT, SIGTERM, SIGHUP go to the container; a second
                                        one tears the sandbox down (exit 128 + signal)
  vm cmdline --dir DIR [--config F]     print the QEMU command line of a sandbox in DIR, one
                                        argument per line (nothing is started)
  vm template init|status|destroy [--config F]
                                        the [factory] VM template (kata-runtime factory):
                                        make it now, say whether it is ready (exit 0) or
                                        missing or stale (exit 1), or remove it
)";

namespace {

namespace fs = std::filesystem;
namespace kt = katana::ttrpc;
using katana::errc;
using katana::fail;
using katana::result;
using katana::status;
using katana::str_cat;
using katana::task;
using namespace std::chrono_literals;

/// Where --timing counts from: now, or the launch the caller recorded in
/// KATANA_TIMING_START_NS (CLOCK_REALTIME ns; bench/boot sets it, so katana-ctl's own exec
/// and start-up count as they do for the bare QEMU it is compared with).
std::chrono::steady_clock::time_point timing_start() {
  const auto now = std::chrono::steady_clock::now();
  const char* env = std::getenv("KATANA_TIMING_START_NS");
  if (env == nullptr) {
    return now;
  }
  std::int64_t start_ns = 0;
  const std::string_view text(env);
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), start_ns);
  const auto real_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
  if (ec != std::errc{} || end != text.data() + text.size() || start_ns > real_ns ||
      real_ns - start_ns > 60'000'000'000) {
    std::fprintf(stderr, "vm: ignoring KATANA_TIMING_START_NS=\"%s\" (not a recent time)\n", env);
    return now;
  }
  return now - std::chrono::nanoseconds(real_ns - start_ns);
}

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

template <class Read>
task<void> pump(Read read, std::FILE* out) {
  for (;;) {
    auto r = co_await read();
    if (!r || r->data().empty()) {
      co_return;
    }
    std::fwrite(r->data().data(), 1, r->data().size(), out);
    std::fflush(out);
  }
}

/// A signal to katana-ctl before the container runs abandons the run (the sandbox is torn
/// down); while it runs, the first one goes to the container, as docker's sig-proxy does, and
/// a second one tears down without waiting for it.
struct signal_relay {
  std::function<void(int)> forward;  // set while the container runs
  int forwarded = 0;
  int abandoned = 0;  // the signal that ended the run
};

task<result<int>> converse(kt::unix_socket sock,
                           std::string sid,
                           std::string cid,
                           katana::oci::spec spec,
                           katana::sharedfs::guest_mount share,
                           bool timing,
                           bool from_template,
                           std::chrono::steady_clock::time_point t0,
                           std::chrono::seconds create_timeout,
                           signal_relay& relay) {
  // Shared with the output pumps and the signal relay, which can outlive this frame.
  auto agent = std::make_shared<grpc::agent_service_client<kt::unix_socket>>(
      kt::unix_client(std::move(sock)));
  const auto opts = [](auto t) {
    kt::call_options o;
    o.timeout = t;
    return o;
  };
  if (from_template) {
    // A clone wakes up with the template's clock and entropy pool.
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    grpc::SetGuestDateTimeRequest dt;
    dt.set_sec(std::chrono::duration_cast<std::chrono::seconds>(now).count());
    dt.set_usec(std::chrono::duration_cast<std::chrono::microseconds>(now).count() % 1000000);
    auto r_time = co_await agent->set_guest_date_time(dt, opts(10s));
    if (!r_time) {
      co_return katana::unexpected<katana::error>(
          r_time.error().wrap("vm run: clone: SetGuestDateTime"));
    }
    std::string seed(64, '\0');
    if (::getrandom(seed.data(), seed.size(), 0) != static_cast<ssize_t>(seed.size())) {
      co_return katana::fail_errno("vm run: getrandom");
    }
    grpc::ReseedRandomDevRequest rs;
    rs.set_data(seed);
    auto r_seed = co_await agent->reseed_random_dev(rs, opts(10s));
    if (!r_seed) {
      co_return katana::unexpected<katana::error>(
          r_seed.error().wrap("vm run: clone: ReseedRandomDev"));
    }
  }
  grpc::CreateSandboxRequest cs;
  cs.set_sandbox_id(sid);
  cs.set_hostname("katana");
  auto* st = cs.add_storages();
  st->set_driver(share.driver);
  st->set_source(share.source);
  st->set_fstype(share.fstype);
  for (const auto& o : share.options) {
    st->add_options(o);
  }
  st->set_mount_point(share.mount_point);
  auto r_create_sandbox = co_await agent->create_sandbox(cs, opts(90s));
  if (!r_create_sandbox) {
    co_return katana::unexpected<katana::error>(
        r_create_sandbox.error().wrap("vm run: CreateSandbox"));
  }
  if (timing) {
    std::fprintf(stderr, "vm: agent ready (CreateSandbox done) at %.3f s\n", since(t0));
  }
  grpc::CreateContainerRequest cc;
  cc.set_container_id(cid);
  cc.set_exec_id(cid);
  *cc.mutable_oci() = katana::agent::convert::to_pb(spec);
  auto r_create_container = co_await agent->create_container(cc, opts(create_timeout));
  if (!r_create_container) {
    co_return katana::unexpected<katana::error>(
        r_create_container.error().wrap("vm run: CreateContainer"));
  }
  grpc::StartContainerRequest sc;
  sc.set_container_id(cid);
  auto r_start_container = co_await agent->start_container(sc, opts(60s));
  if (!r_start_container) {
    co_return katana::unexpected<katana::error>(
        r_start_container.error().wrap("vm run: StartContainer"));
  }

  auto ex = co_await katana::asio::this_coro::executor;
  relay.forward = [agent, cid, ex](int sig) {
    katana::asio::co_spawn(
        ex,
        [agent, cid, sig]() -> task<void> {
          grpc::SignalProcessRequest r;
          r.set_container_id(cid);
          r.set_exec_id(cid);
          r.set_signal(static_cast<std::uint32_t>(sig));
          kt::call_options o;
          o.timeout = 5s;
          (void)co_await agent->signal_process(r, std::move(o));
        },
        katana::asio::detached);
  };
  const katana::scope_exit stop_relaying([&relay] { relay.forward = nullptr; });
  const auto reader = [agent, cid](bool err) {
    return [agent, cid, err]() -> task<result<grpc::ReadStreamResponse>> {
      grpc::ReadStreamRequest r;
      r.set_container_id(cid);
      r.set_exec_id(cid);
      r.set_len(32768);
      // Not `err ? co_await a : co_await b`: GCC 12 destroys both results of a conditional
      // co_await (double free).
      if (err) {
        co_return co_await agent->read_stderr(r);
      }
      co_return co_await agent->read_stdout(r);
    };
  };
  // Both readers end at EOF on the process's output; the timer is woken when they have.
  auto readers = std::make_shared<int>(2);
  auto drained = std::make_shared<katana::asio::steady_timer>(ex);
  const auto reader_done = [readers, drained](std::exception_ptr) {
    if (--*readers == 0) {
      drained->cancel();
    }
  };
  katana::asio::co_spawn(ex, pump(reader(false), stdout), reader_done);
  katana::asio::co_spawn(ex, pump(reader(true), stderr), reader_done);
  grpc::WaitProcessRequest wp;
  wp.set_container_id(cid);
  wp.set_exec_id(cid);
  auto wr = co_await agent->wait_process(wp);
  if (!wr) {
    co_return katana::unexpected<katana::error>(wr.error().wrap("vm run: WaitProcess"));
  }
  const auto& w = *wr;
  if (*readers > 0) {  // what the process wrote before it exited may still be on its way
    drained->expires_after(2s);
    boost::system::error_code ignored;
    co_await drained->async_wait(
        katana::asio::redirect_error(katana::asio::use_awaitable, ignored));
  }
  if (timing) {
    std::fprintf(stderr, "vm: container exited (%d) at %.3f s\n", w.status(), since(t0));
  }
  grpc::DestroySandboxRequest ds;
  (void)co_await agent->destroy_sandbox(ds, opts(10s));
  co_return static_cast<int>(w.status());
}

/// VmHWM of a process in KiB (0 when unknown).
long peak_rss_kib(pid_t pid) {
  std::ifstream f(str_cat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(f, line)) {
    if (line.starts_with("VmHWM:")) {
      return std::strtol(line.c_str() + 6, nullptr, 10);
    }
  }
  return 0;
}

result<katana::config::hypervisor_config> load_hypervisor(
    const std::string& config_file,
    katana::config::agent_config* agent,
    katana::config::runtime_config* runtime = nullptr,
    katana::config::factory_config* factory = nullptr,
    const std::string& shared_fs = {}) {
  katana::config::load_options lo;
  if (!config_file.empty()) {
    lo.path = config_file;
  }
  auto loaded = KATANA_TRY(katana::config::load(lo));
  const auto kind = KATANA_TRY(loaded.config.selected_hypervisor(), "configuration");
  if (kind != "qemu") {
    return fail(errc::unsupported,
                str_cat("configuration: [hypervisor.", kind,
                        "] is selected; katana-ctl vm drives QEMU only ([hypervisor.qemu])"));
  }
  if (!shared_fs.empty()) {  // --shared-fs: checked with the rest below
    loaded.config.hypervisor()->shared_fs = shared_fs;
  }
  // As Kata's runtime does before it uses a configuration: fit it to this host, then check it.
  const auto host = katana::hypervisor::detect_host();
  KATANA_TRY(katana::config::adjust(loaded.config, host, loaded.notes), "configuration");
  KATANA_TRY(katana::config::validate(loaded.config, host), "configuration");
  for (const auto& n : loaded.notes) {
    std::fprintf(stderr, "vm: configuration: %s\n", n.c_str());
  }
  const auto* h = loaded.config.hypervisor();
  *agent = loaded.config.agent;
  if (runtime != nullptr) {
    *runtime = loaded.config.runtime;
  }
  if (factory != nullptr) {
    *factory = loaded.config.factory;
  }
  return *h;
}

/// vm cmdline: the argv qemu::vm::prepare builds for a sandbox in `dir`.
result<int> cmdline(std::vector<std::string_view> args) {
  std::string dir, config_file;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if ((args[i] == "--dir" || args[i] == "--config") && i + 1 < args.size()) {
      (args[i] == "--dir" ? dir : config_file) = std::string(args[i + 1]);
      ++i;
    } else {
      return fail(errc::invalid_argument,
                  str_cat("vm cmdline: unexpected argument \"", args[i], "\""));
    }
  }
  if (dir.empty()) {
    return fail(errc::invalid_argument, "vm cmdline needs --dir DIR");
  }
  katana::hypervisor::vm_config vc;
  vc.dir = fs::absolute(dir);
  vc.id = vc.dir.filename().string();
  vc.hypervisor = KATANA_TRY(load_hypervisor(config_file, &vc.agent));
  katana::hypervisor::qemu::vm q;
  KATANA_TRY(q.prepare(vc));
  for (const auto& a : q.argv()) {
    std::printf("%s\n", a.c_str());
  }
  return 0;
}

/// Returns once katana-agent's "serving" line is in the VM's console log, or fails when QEMU
/// ends or `limit` passes first. (Not a health check: a host connection made before the
/// guest opened its port stalls, and the template's would be saved with it.)
status wait_for_agent_log(katana::hypervisor::qemu::vm& vm, std::chrono::seconds limit = 120s) {
  constexpr std::string_view serving = "\"msg\":\"serving\"";
  const auto end = std::chrono::steady_clock::now() + limit;
  std::ifstream in(vm.console_log(), std::ios::binary);
  std::string tail;  // what was read and not yet ruled out (a line may arrive in pieces)
  while (std::chrono::steady_clock::now() < end) {
    if (!in.is_open()) {
      in.open(vm.console_log(), std::ios::binary);
    }
    char buf[4096];
    while (in.read(buf, sizeof buf) || in.gcount() > 0) {
      tail.append(buf, static_cast<std::size_t>(in.gcount()));
      if (tail.find(serving) != std::string::npos) {
        return {};
      }
      tail.erase(0, tail.size() - std::min(tail.size(), serving.size() - 1));
    }
    in.clear();  // at EOF: read on from here next time
    if (!vm.running()) {
      return fail(errc::unavailable,
                  str_cat("QEMU ended before the agent served; console: ",
                          katana::hypervisor::child_process::read_tail(vm.console_log(), 500)));
    }
    std::this_thread::sleep_for(20ms);
  }
  return fail(errc::timeout, str_cat("the agent did not serve within ", limit.count(), " s"));
}

struct run_request {
  fs::path rootfs;
  std::vector<std::string> cmd;
  std::string sid;
  bool keep = false;
  bool timing = false;
  std::chrono::steady_clock::time_point t0;
  bool sandbox_cgroup_only = false;
  katana::sandbox::guest_spec_options guest_spec;
  std::chrono::seconds dial_timeout{45};              // [agent.kata] dial_timeout
  std::chrono::seconds create_container_timeout{60};  // [runtime] create_container_timeout
};

/// Boots a sandbox of type Sandbox (its shared-fs policy decides 9p or virtio-fs), runs the
/// container and tears it all down.
template <class Sandbox>
result<int> run_in(katana::hypervisor::vm_config vc, const run_request& rq) {
  const auto& [rootfs, cmd, sid, keep, timing, t0, cgroup_only, guest_spec, dial_timeout,
               create_timeout] = rq;
  const bool from_template = vc.template_role == katana::hypervisor::vm_template_role::clone;
  // Caught from here on, so that no signal leaves a sandbox behind (the default action would
  // end katana-ctl with its mounts, cgroups and directory in place).
  signal_relay relay;
  // A closed stdout (vm run ... | head) is a write error for the output pumps, not the end.
  ::signal(SIGPIPE, SIG_IGN);
  katana::asio::io_context io;
  katana::asio::signal_set signals(io, SIGINT, SIGTERM, SIGHUP);
  std::function<void(boost::system::error_code, int)> on_signal = [&](boost::system::error_code ec,
                                                                      int sig) {
    if (ec) {
      return;
    }
    if (relay.forward && relay.forwarded == 0) {
      relay.forwarded = sig;
      relay.forward(sig);
    } else {
      relay.abandoned = sig;
    }
    signals.async_wait(on_signal);
  };
  signals.async_wait(on_signal);
  auto cg =
      KATANA_TRY(katana::sandbox::make_host_cgroup({.sandbox_cgroup_only = cgroup_only}), "vm run");
  Sandbox sb(std::move(vc), {}, {}, std::move(cg));
  sb.keep_directory(keep);
  if (auto r = sb.start(); !r) {
    return katana::unexpected<katana::error>(std::move(r).error().wrap("vm run: boot"));
  }
  if (timing) {
    std::fprintf(stderr, "vm: QEMU up (QMP answered) at %.3f s, accel %s\n", since(t0),
                 std::string(to_string(sb.hypervisor().accel())).c_str());
    std::fprintf(stderr, "vm: sandbox cgroup %s (%s), QEMU pid %d\n",
                 std::string(sb.cgroup().path()).c_str(),
                 std::string(sb.cgroup().manager().active()).c_str(),
                 static_cast<int>(sb.hypervisor().pid()));
  }
  const std::string cid = "c0";
  auto guest_root = KATANA_TRY(sb.share_rootfs(cid, rootfs));
  auto spec = katana::oci::default_spec();
  spec.process->args = cmd;
  spec.process->terminal = false;
  spec.root = katana::oci::root{.path = guest_root, .readonly = false};
  katana::sandbox::constrain_for_guest(spec, guest_spec);

  std::optional<result<int>> outcome;
  katana::asio::co_spawn(
      io,
      [&]() -> task<void> {
        const auto addr = sb.agent_address().substr(7);  // unix://
        std::optional<kt::unix_socket> sock;
        const auto dial_end = std::chrono::steady_clock::now() + dial_timeout;
        while (!sock && std::chrono::steady_clock::now() < dial_end) {
          auto s = co_await kt::connect_unix(addr);
          if (s) {
            sock.emplace(std::move(*s));
          } else {
            katana::asio::steady_timer t(io);
            t.expires_after(50ms);
            co_await t.async_wait(katana::asio::use_awaitable);
          }
        }
        if (!sock) {
          outcome = fail(errc::unavailable,
                         str_cat("vm run: cannot connect to the agent socket ", addr, " within ",
                                 dial_timeout.count(), " s ([agent.kata] dial_timeout)"));
          co_return;
        }
        outcome =
            co_await converse(std::move(*sock), sid, cid, spec, sb.shared_fs().guest_storage(),
                              timing, from_template, t0, create_timeout, relay);
      },
      [&](std::exception_ptr e) {
        if (e && !outcome) {
          outcome = fail(errc::internal, "vm run: exception");
        }
      });
  // No overall deadline: the container may run for as long as it likes. Each RPC before it
  // runs has its own timeout, and QEMU's end or a signal ends the wait.
  while (!outcome && relay.abandoned == 0) {
    io.run_one_for(100ms);
    if (!sb.hypervisor().running()) {
      break;
    }
  }
  if (!outcome && relay.abandoned != 0) {
    std::fprintf(stderr, "vm: %s: tearing the sandbox down\n", ::strsignal(relay.abandoned));
    outcome = 128 + relay.abandoned;  // as a shell reports a command a signal ended
  }
  if (!outcome) {
    outcome = fail(errc::unavailable, str_cat("vm run: the VM ended before the container did (",
                                              sb.hypervisor().exit_report(), ")"));
  } else if (!*outcome) {
    // A guest that panics (an agent crash ends in one) closes the channel before QEMU exits:
    // panic=1 reboots after a second, and -no-reboot turns that into QEMU's exit.
    if (sb.hypervisor().running() &&
        (*outcome).error().code == make_error_code(errc::unavailable)) {
      (void)sb.hypervisor().wait(3s);
    }
    if (!sb.hypervisor().running()) {
      (*outcome).error().context += str_cat(" (the VM ended: ", sb.hypervisor().exit_report(), ")");
    }
  }
  if (!*outcome) {  // before stop(): it removes the console log
    const auto tail =
        katana::hypervisor::child_process::read_tail(sb.hypervisor().console_log(), 2000);
    std::fprintf(stderr, "vm: console log tail:\n%s\n", tail.c_str());
  }
  if (timing) {
    // QEMU's peak while it still runs; katana-ctl's own (RUSAGE_SELF: not its children).
    const long qemu_kib = sb.hypervisor().running() ? peak_rss_kib(sb.hypervisor().pid()) : 0;
    rusage self{};
    ::getrusage(RUSAGE_SELF, &self);
    std::fprintf(stderr, "vm: max RSS katana-ctl %ld KiB, QEMU %ld KiB\n", self.ru_maxrss,
                 qemu_kib);
  }
  (void)sb.stop();
  if (timing) {
    std::fprintf(stderr, "vm: torn down at %.3f s\n", since(t0));
  }
  return std::move(*outcome);
}

}  // namespace

namespace {

/// vm template init|status|destroy [--config F].
result<int> template_command(std::vector<std::string_view> args) {
  const std::string_view verb = args.empty() ? std::string_view() : args.front();
  if (verb != "init" && verb != "status" && verb != "destroy") {
    return fail(errc::invalid_argument, "usage: katana-ctl vm template init|status|destroy");
  }
  std::string config_file;
  for (std::size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--config" && i + 1 < args.size()) {
      config_file = std::string(args[++i]);
    } else {
      return fail(errc::invalid_argument,
                  str_cat("vm template: unexpected argument \"", args[i], "\""));
    }
  }
  katana::hypervisor::vm_config vc;
  katana::config::factory_config factory;
  vc.hypervisor = KATANA_TRY(load_hypervisor(config_file, &vc.agent, nullptr, &factory));
  const fs::path dir = factory.template_path;
  if (verb == "destroy") {
    katana::sandbox::remove_template(dir);
    std::error_code ec;
    for (const char* f : {"lock", "console.log"}) {
      fs::remove(dir / f, ec);
    }
    fs::remove(dir, ec);  // only when nothing else is in it
    std::printf("template: %s removed\n", dir.c_str());
    return 0;
  }
  if (!factory.enable_template) {
    std::printf("template: off ([factory] enable_template = false)\n");
    return verb == "status" ? 1 : 2;
  }
  KATANA_TRY(katana::sandbox::pin_accelerator(vc));
  if (verb == "init") {
    const bool made = KATANA_TRY(
        katana::sandbox::ensure_template(vc, dir, [](auto& v) { return wait_for_agent_log(v); }));
    std::printf("template: %s %s\n", dir.c_str(), made ? "made" : "ready (up to date)");
    return 0;
  }
  const auto fp = KATANA_TRY(
      katana::sandbox::template_fingerprint(katana::sandbox::template_vm_config(vc, dir)));
  if (katana::sandbox::template_ready(dir, fp)) {
    std::printf("template: %s ready\n", dir.c_str());
    return 0;
  }
  std::error_code ec;
  std::printf("template: %s %s\n", dir.c_str(),
              fs::exists(dir / "state", ec) ? "stale (made from another configuration or image)"
                                            : "missing");
  return 1;
}

}  // namespace

namespace {

/// vm run's arguments after "run"; the container's exit code, or what went wrong.
result<int> run_command(std::vector<std::string_view> args) {
  std::string rootfs, config_file, shared_fs;
  bool keep = false, timing = false;
  std::vector<std::string> cmd;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto a = args[i];
    if (a == "--") {
      cmd.assign(args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
      break;
    }
    if ((a == "--rootfs" || a == "--config" || a == "--shared-fs") && i + 1 < args.size()) {
      (a == "--rootfs"   ? rootfs
       : a == "--config" ? config_file
                         : shared_fs) = std::string(args[++i]);
    } else if (a == "--keep") {
      keep = true;
    } else if (a == "--timing") {
      timing = true;
    } else {
      return fail(errc::invalid_argument, str_cat("vm run: unexpected argument \"", a, "\""));
    }
  }
  if (rootfs.empty() || cmd.empty()) {
    return fail(errc::invalid_argument, "vm run needs --rootfs DIR and -- CMD");
  }
  const auto t0 = timing_start();
  // What a killed katana-ctl left behind (directory, mounts, cgroup) goes first.
  const auto stale = katana::sandbox::reap_stale("/run/katana/vm", [](const std::string& id) {
    // QEMU died with its katana-ctl, but may still be on its way out: wait longer.
    return katana::sandbox::remove_stale_host_cgroup(id, {.kill_timeout = 10s});
  });
  for (const auto& id : stale.ids) {
    std::fprintf(stderr, "vm: removed the stale sandbox %s\n", id.c_str());
  }
  for (const auto& e : stale.errors) {
    std::fprintf(stderr, "vm: warning: %s\n", e.message().c_str());
  }
  const std::string sid = str_cat("vm-", ::getpid());
  katana::hypervisor::vm_config vc;
  vc.id = sid;
  vc.dir = fs::path("/run/katana/vm") / sid;
  katana::config::runtime_config runtime;
  katana::config::factory_config factory;
  if (!shared_fs.empty() && shared_fs != "virtio-9p" && shared_fs != "virtio-fs") {
    return fail(errc::invalid_argument,
                str_cat("vm run: --shared-fs \"", shared_fs, "\" is not virtio-9p or virtio-fs"));
  }
  vc.hypervisor =
      KATANA_TRY(load_hypervisor(config_file, &vc.agent, &runtime, &factory, shared_fs));
  if (factory.enable_template) {
    KATANA_TRY(katana::sandbox::pin_accelerator(vc));
    const auto made =
        KATANA_TRY(katana::sandbox::ensure_template(vc, factory.template_path,
                                                    [](auto& v) { return wait_for_agent_log(v); }),
                   "vm run");
    if (made) {
      std::fprintf(stderr, "vm: made the VM template in %s (%.3f s)\n",
                   factory.template_path.c_str(), since(t0));
    }
    vc = katana::sandbox::clone_of_template(std::move(vc), factory.template_path);
  }
  const run_request req{fs::absolute(rootfs),
                        cmd,
                        sid,
                        keep,
                        timing,
                        t0,
                        runtime.sandbox_cgroup_only,
                        {.pass_seccomp = !runtime.disable_guest_seccomp,
                         .disable_guest_selinux = vc.hypervisor.disable_guest_selinux,
                         .guest_selinux_label = runtime.guest_selinux_label,
                         .strip_vfio = runtime.vfio_mode == "guest-kernel"},
                        std::chrono::seconds(vc.agent.dial_timeout),
                        std::chrono::seconds(runtime.create_container_timeout)};
  if (vc.hypervisor.shared_fs == "virtio-fs") {
    return run_in<katana::sandbox::qemu_virtiofs_cgroup_sandbox>(std::move(vc), req);
  }
  return run_in<katana::sandbox::qemu_9p_cgroup_sandbox>(std::move(vc), req);
}

}  // namespace

katana::result<int> vm_command(std::vector<std::string_view> args) {
  if (!args.empty() && args.front() == "cmdline") {
    return cmdline({args.begin() + 1, args.end()});
  }
  if (!args.empty() && args.front() == "template") {
    return template_command({args.begin() + 1, args.end()});
  }
  if (args.empty() || args.front() != "run") {
    return fail(errc::invalid_argument, "usage: katana-ctl vm run --rootfs DIR -- CMD ARGS");
  }
  auto code = run_command({args.begin() + 1, args.end()});
  if (!code) {
    // As docker run and podman run: 125 says the run failed, not the container.
    std::fprintf(stderr, "katana-ctl: %s\n", code.error().message().c_str());
    return vm_run_failed;
  }
  return code;
}

}  // namespace katana_ctl
