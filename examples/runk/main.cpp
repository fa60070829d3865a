// katana-runk: an OCI runtime CLI (runc's command line) on katana's container engine, the
// seeds' runk. Global options, dispatch, the runc-style log file and shared helpers.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fcntl.h>
#include <string>
#include <unistd.h>
#include <vector>

#include <katana/container/state.hpp>
#include <katana/core/unique_fd.hpp>
#include <katana/oci/detail/read_file.hpp>

#include "runk.hpp"

namespace runk {

namespace {

void append_json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  for (const char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
}

}  // namespace

katana::result<std::string> read_all(int fd, std::size_t limit) {
  std::string text;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return katana::fail_errno("read standard input");
    }
    if (n == 0) {
      return text;
    }
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > limit) {
      return fail(errc::invalid_argument,
                  katana::str_cat("standard input: larger than the limit of ", limit, " bytes"));
    }
  }
}

katana::status write_text_file(const fs::path& path, std::string_view text) {
  katana::unique_fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) {
    return katana::fail_errno("create " + path.native());
  }
  while (!text.empty()) {
    const ssize_t n = ::write(fd.get(), text.data(), text.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return katana::fail_errno("write " + path.native());
    }
    text.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

std::vector<std::string_view> words(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t pos = 0;
  for (;;) {
    pos = line.find_first_not_of(" \t", pos);
    if (pos == std::string_view::npos) {
      return out;
    }
    const std::size_t end = std::min(line.find_first_of(" \t", pos), line.size());
    out.push_back(line.substr(pos, end - pos));
    pos = end;
  }
}

void write_log(const globals& g, std::string_view level, std::string_view msg) {
  if (g.log.empty()) {
    return;
  }
  katana::unique_fd fd(::open(g.log.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644));
  if (!fd) {
    return;
  }
  std::string line;
  const std::string now = kc::rfc3339_now();
  if (g.log_format == "json") {
    line = "{\"level\":";
    append_json_string(line, level);
    line += ",\"msg\":";
    append_json_string(line, msg);
    line += ",\"time\":";
    append_json_string(line, now);
    line += "}\n";
  } else {
    line = "time=\"" + now + "\" level=" + std::string(level) + " msg=";
    append_json_string(line, msg);
    line += "\n";
  }
  [[maybe_unused]] const auto n = ::write(fd.get(), line.data(), line.size());
}

katana::result<cg::any_manager> make_cgroup_manager(const globals& g, bool disabled) {
  cg::selection s;
  s.disabled = disabled;
  s.requested = g.systemd_cgroup ? cg::driver::systemd : cg::driver::cgroupfs;
  return cg::make_any_manager(s);
}

katana::result<loaded_container> load_container(const globals& g,
                                                std::string_view id,
                                                std::string missing) {
  KATANA_TRY(validate_id(id));
  const fs::path dir = g.root / std::string(id);
  std::error_code ec;
  if (!fs::exists(kc::state_file(dir), ec)) {
    return fail(errc::not_found, std::move(missing));
  }
  auto c = KATANA_TRY(kc::container::load(dir));
  loaded_container l{std::move(c), std::nullopt, false};
  const auto mode = katana::oci::detail::read_small_file(dir / std::string(cgroup_mode_file), 64);
  l.cgroups_disabled = mode && std::string_view(*mode).substr(0, mode->find('\n')) == "disabled";
  auto m = make_cgroup_manager(g, l.cgroups_disabled);
  if (!m) {
    return katana::unexpected<katana::error>(std::move(m).error().wrap("cgroup"));
  }
  const auto cfg = KATANA_TRY(cg::make_config(l.c.state().cgroup_path, id), "cgroup");
  if (m->open(cfg)) {
    l.cgroup = std::move(*m);
  }
  return l;
}

katana::status remove_cgroup(cg::any_manager& m) {
  auto delay = std::chrono::milliseconds(10);
  katana::status r;
  for (int attempt = 0; attempt < 5; ++attempt) {
    if (attempt > 0) {
      delay *= 2;
      std::this_thread::sleep_for(delay);
    }
    r = m.remove();
    if (r) {
      return r;
    }
  }
  return katana::unexpected<katana::error>(
      std::move(r).error().wrap("failed to remove cgroups paths"));
}

katana::status signal_all(loaded_container& l, int sig) {
  std::vector<pid_t> pids;
  if (l.cgroup) {
    if (auto p = l.cgroup->pids()) {
      pids = std::move(*p);
    }
  }
  if (pids.empty() && l.status() != kc::runtime_status::stopped) {
    pids.push_back(l.c.pid());
  }
  for (const pid_t pid : pids) {
    if (::kill(pid, sig) != 0 && errno != ESRCH) {
      return katana::fail_errno(katana::str_cat("kill ", pid));
    }
  }
  // A frozen v1 cgroup delivers SIGKILL only once thawed (runc PR #3217).
  if (sig == SIGKILL && l.cgroup && l.frozen()) {
    KATANA_TRY(l.cgroup->freeze(cg::freezer_state::thawed), "thaw after SIGKILL");
  }
  return {};
}

namespace {
std::atomic<int> forward_pid{0};
extern "C" void forward_handler(int sig) {
  const int pid = forward_pid.load();
  if (pid > 0) {
    ::kill(pid, sig);
  }
}
}  // namespace

void forward_signals_to(int pid) {
  forward_pid.store(pid);
  struct sigaction sa {};
  sa.sa_handler = forward_handler;
  sa.sa_flags = SA_RESTART;
  ::sigemptyset(&sa.sa_mask);
  for (const int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH}) {
    ::sigaction(sig, &sa, nullptr);
  }
}

namespace {

constexpr std::string_view usage = R"(usage: katana-runk [global options] COMMAND [options] [ARGS]

An OCI runtime with runc's command line, built on katana's container engine.

commands:
  create [--bundle DIR] [--console-socket SOCK] [--pid-file FILE] ID
  start ID            run [-d] [--bundle DIR] [--console-socket SOCK] [--pid-file FILE] ID
  state ID            kill [--all] ID [SIGNAL]      delete [--force] ID
  list [-q] [--format table|json]                   spec [--bundle DIR] [--rootless]
  exec [-d] [-t] [-p FILE] [-e K=V] [--cwd DIR] [-u UID[:GID]] [--console-socket SOCK]
       [--pid-file FILE] [--no-new-privs] ID [COMMAND ARGS...]
  ps [--format table|json] ID [PS ARGS...]          pause ID    resume ID
  events [--stats] [--interval DURATION] ID         features
  update [-r FILE|-] [--memory N] [--cpu-quota N] [--pids-limit N] ... ID

global options:
  --root DIR             state directory (default /run/katana-runk)
  --log FILE             log file (runc's format; the last error is read by containerd)
  --log-format text|json
  --debug                debug logging
  --systemd-cgroup       systemd cgroup paths (slice:prefix:name), mapped to cgroupfs here
  --cgroup-manager cgroupfs|systemd|disabled, --no-cgroups
  -v, --version          print the version
)";

struct command {
  std::string_view name;
  katana::result<int> (*fn)(const globals&, args_t);
};

constexpr command commands[] = {
    {"create", cmd_create}, {"start", cmd_start},   {"run", cmd_run},
    {"state", cmd_state},   {"kill", cmd_kill},     {"delete", cmd_delete},
    {"list", cmd_list},     {"spec", cmd_spec},     {"exec", cmd_exec},
    {"ps", cmd_ps},         {"pause", cmd_pause},   {"resume", cmd_resume},
    {"events", cmd_events}, {"update", cmd_update}, {"features", cmd_features},
};

constexpr flag global_flags[] = {
    {"root", 0, true},
    {"log", 0, true},
    {"log-format", 0, true},
    {"debug", 0, false},
    {"systemd-cgroup", 0, false},
    {"cgroup-manager", 0, true},
    {"no-cgroups", 0, false},
    {"criu", 0, true},
    {"rootless", 0, true},
    {"help", 'h', false},
    {"version", 'v', false},
};

int report(const globals& g, const katana::error& e) {
  const std::string msg = e.message();
  write_log(g, "error", msg);
  std::fprintf(stderr, "ERROR: %s\n", msg.c_str());
  return 1;
}

int main_impl(int argc, char** argv) {
  std::vector<std::string> all(argv + 1, argv + argc);
  // Global flags end at the first non-flag (the command).
  std::size_t cmd_at = 0;
  std::vector<std::string> global_args;
  for (; cmd_at < all.size(); ++cmd_at) {
    const std::string& a = all[cmd_at];
    if (a.empty() || a[0] != '-') {
      break;
    }
    global_args.push_back(a);
    std::string_view body = std::string_view(a).substr(a.size() > 1 && a[1] == '-' ? 2 : 1);
    if (body.find('=') != std::string_view::npos) {
      continue;
    }
    const flag* f = find_flag(global_flags, body);
    if (f != nullptr && f->value && cmd_at + 1 < all.size()) {
      // --rootless is a string flag in runc but some callers use it bare.
      if (f->name == "rootless" && !parse_bool(all[cmd_at + 1]) && all[cmd_at + 1] != "auto") {
        continue;
      }
      global_args.push_back(all[++cmd_at]);
    }
  }
  globals g;
  auto ga = parse_args(global_args, global_flags);
  if (!ga) {
    return report(g, ga.error());
  }
  if (auto v = ga->get("root")) {
    g.root = *v;
  }
  if (auto v = ga->get("log")) {
    g.log = *v;
  }
  if (auto v = ga->get("log-format")) {
    if (*v != "json" && *v != "text") {
      return report(
          g, katana::error(errc::invalid_argument,
                           "--log-format: unknown format \"" + *v + "\" (expected text or json)"));
    }
    g.log_format = *v;
  }
  g.debug = ga->has("debug");
  g.systemd_cgroup = ga->has("systemd-cgroup");
  g.no_cgroups = ga->has("no-cgroups");
  if (auto v = ga->get("cgroup-manager")) {
    if (*v == "disabled") {
      g.no_cgroups = true;
    } else if (*v == "systemd") {
      g.systemd_cgroup = true;
    } else if (*v != "cgroupfs") {
      return report(g, katana::error(errc::invalid_argument,
                                     "--cgroup-manager: unknown manager \"" + *v +
                                         "\" (expected cgroupfs, systemd or disabled)"));
    }
  }
  if (ga->has("version")) {
    std::printf("katana-runk version %s\nspec: %s\n", std::string(version).c_str(),
                std::string(katana::oci::spec_version).c_str());
    return 0;
  }
  if (ga->has("help") || cmd_at >= all.size() || all[cmd_at] == "help") {
    std::fputs(std::string(usage).c_str(), stdout);
    return cmd_at >= all.size() && !ga->has("help") ? 1 : 0;
  }
  const std::string& name = all[cmd_at];
  const args_t rest(all.data() + cmd_at + 1, all.size() - cmd_at - 1);
  for (const command& c : commands) {
    if (c.name == name) {
      auto r = c.fn(g, rest);
      if (!r) {
        return report(g, r.error());
      }
      if (g.debug) {
        write_log(g, "info", name + " command finished successfully");
      }
      return *r;
    }
  }
  return report(
      g, katana::error(errc::unsupported, "command \"" + name + "\" is not implemented yet"));
}

}  // namespace
}  // namespace runk

// No demangling terminate handler: libstdc++'s default pulls the 44 KB demangler into the
// static binary, whose text is most of its RSS. Exceptions are caught in main; anything else
// (an exception escaping a noexcept function) aborts with this line.
namespace __gnu_cxx {
void __verbose_terminate_handler() {
  std::fputs("katana-runk: terminate called\n", stderr);
  std::abort();
}
}  // namespace __gnu_cxx

int main(int argc, char** argv) {
  try {
    return runk::main_impl(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ERROR: %s\n", e.what());
    return 1;
  }
}
