// katana-runk: create, run, start, kill, delete, exec (runk's lifecycle rules and messages).
#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <iterator>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include <katana/cgroup/default_devices.hpp>
#include <katana/core/scope_exit.hpp>
#include <katana/oci/detail/codec_json.hpp>
#include <katana/oci/spec_json.hpp>
#include <katana/oci/validate.hpp>

#include "runk.hpp"

namespace runk {

namespace {

constexpr flag create_flags[] = {
    {"bundle", 'b', true},     {"console-socket", 0, true},  {"pid-file", 0, true},
    {"no-pivot", 0, false},    {"no-new-keyring", 0, false}, {"preserve-fds", 0, true},
    {"pidfd-socket", 0, true}, {"detach", 'd', false},       {"no-subreaper", 0, false},
    {"keep", 0, false},
};

katana::status write_text(const fs::path& path, std::string_view text) {
  katana::unique_fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd) {
    return katana::fail_errno("create " + path.native());
  }
  if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    return katana::fail_errno("write " + path.native());
  }
  return {};
}

/// create and run: the container, its cgroup, and (for a foreground run) its whole life.
katana::result<int> create_or_run(const globals& g, args_t args, bool run) {
  const auto a = KATANA_TRY(parse_args(args, create_flags));
  const std::string id = KATANA_TRY(one_id(run ? "run" : "create", a));
  if (a.has("no-pivot")) {
    return fail(errc::unsupported, "liboci-cli does not support --no-pivot option");
  }
  if (a.get("preserve-fds").value_or("0") != "0") {
    return fail(errc::unsupported, "--preserve-fds is not supported");
  }
  const fs::path bundle = a.get("bundle").value_or(".");
  const fs::path dir = g.root / id;
  std::error_code ec;
  if (fs::exists(fs::symlink_status(dir, ec))) {
    return fail(
        errc::already_exists,
        katana::str_cat("container ", id, " already exists at path \"", dir.native(), "\""));
  }
  const katana::oci::spec spec = KATANA_TRY(katana::oci::load_spec(bundle / "config.json"));
  KATANA_TRY(katana::oci::validate(spec), (bundle / "config.json").native());
  if (!spec.root) {
    return fail(errc::invalid_spec, "root config was not present in the spec file");
  }
  if (!spec.process) {
    return fail(errc::invalid_spec, "process property must not be empty");
  }

  fs::create_directories(g.root, ec);
  if (ec) {
    return katana::fail_errno("create root directory " + g.root.native(), ec.value());
  }
  ::chmod(g.root.c_str(), 0700);

  auto mgr = KATANA_TRY(make_cgroup_manager(g, g.no_cgroups), "cgroup");
  std::optional<katana::oci::linux_resources> resources;
  std::string cgroups_path;
  if (spec.linux_) {
    resources = spec.linux_->resources;
    cgroups_path = spec.linux_->cgroups_path;
    if (resources && !resources->devices.empty()) {
      katana::cgroup::add_default_device_rules(*resources, spec.linux_->devices);
    }
  }
  const auto cfg = KATANA_TRY(cg::make_config(
      cgroups_path, id, resources, g.systemd_cgroup ? cg::driver::systemd : cg::driver::cgroupfs));
  KATANA_TRY(mgr.create(cfg), "cgroup");
  auto drop_cgroup = katana::scope_exit([&] { (void)remove_cgroup(mgr); });

  kc::create_options opt;
  opt.id = id;
  opt.bundle = bundle;
  opt.state_dir = dir;
  if (auto v = a.get("console-socket")) {
    opt.console_socket = *v;
  }
  if (auto v = a.get("pid-file")) {
    opt.pid_file = fs::absolute(*v);
  }
  const bool noop = mgr.active() == cg::noop::name;
  if (!noop) {
    opt.join_cgroups = [&](int pid) {
      return mgr.add_task(pid);
    };
  }
  auto c = run ? kc::container::run(spec, opt) : kc::container::create(spec, opt);
  if (!c) {
    return katana::unexpected<katana::error>(std::move(c).error());
  }
  auto kill_container = katana::scope_exit([&] { (void)c->destroy(); });
  KATANA_TRY(write_text(dir / std::string(cgroup_mode_file), noop ? "disabled\n" : "cgroupfs\n"));
  if (!run || a.has("detach")) {
    kill_container.release();
    drop_cgroup.release();
    return 0;
  }
  // Foreground run (runc run without -d): wait, then delete the container.
  forward_signals_to(c->pid());
  const int code = KATANA_TRY(c->wait());
  kill_container.release();
  if (!noop) {
    // Whatever the init left behind in the cgroup goes with it.
    if (auto pids = mgr.pids()) {
      for (const pid_t p : *pids) {
        ::kill(p, SIGKILL);
      }
    }
  }
  KATANA_TRY(c->destroy());
  drop_cgroup.release();
  KATANA_TRY(remove_cgroup(mgr));
  return code;
}

}  // namespace

katana::result<int> cmd_create(const globals& g, args_t args) {
  return create_or_run(g, args, false);
}

katana::result<int> cmd_run(const globals& g, args_t args) {
  return create_or_run(g, args, true);
}

katana::result<int> cmd_start(const globals& g, args_t args) {
  const auto a = KATANA_TRY(parse_args(args, {}));
  const std::string id = KATANA_TRY(one_id("start", a));
  auto l = KATANA_TRY(load_container(g, id, katana::str_cat("container ", id, " does not exist")));
  const auto st = l.status();
  if (st != kc::runtime_status::created) {
    return fail(errc::invalid_argument,
                katana::str_cat("cannot start a container in the ", kc::to_string(st), " state"));
  }
  KATANA_TRY(l.c.start());
  return 0;
}

katana::result<int> cmd_kill(const globals& g, args_t args) {
  constexpr flag flags[] = {{"all", 'a', false}};
  const auto a = KATANA_TRY(parse_args(args, flags));
  if (a.positional.empty() || a.positional.size() > 2) {
    return fail(errc::invalid_argument,
                "\"kill\" requires 1 or 2 arguments: the container id and an optional signal");
  }
  const std::string& id = a.positional[0];
  auto l =
      KATANA_TRY(load_container(g, id, katana::str_cat("container \"", id, "\" does not exist")));
  const int sig = KATANA_TRY(parse_signal(a.positional.size() > 1 ? a.positional[1] : "TERM"));
  if (a.has("all")) {
    KATANA_TRY(signal_all(l, sig));
    return 0;
  }
  const auto st = l.status();
  if (st == kc::runtime_status::stopped) {
    // containerd (pkg/process/utils.go) matches "container not running".
    return fail(errc::unavailable, katana::str_cat("container not running: container ", id,
                                                   " can't be killed because it is stopped"));
  }
  if (::kill(l.c.pid(), sig) != 0) {
    return katana::fail_errno(katana::str_cat("kill ", l.c.pid()));
  }
  if (sig == SIGKILL && st == kc::runtime_status::paused && l.cgroup) {
    KATANA_TRY(l.cgroup->freeze(cg::freezer_state::thawed), "thaw after SIGKILL");
  }
  return 0;
}

katana::result<int> cmd_delete(const globals& g, args_t args) {
  constexpr flag flags[] = {{"force", 'f', false}};
  const auto a = KATANA_TRY(parse_args(args, flags));
  const std::string id = KATANA_TRY(one_id("delete", a));
  const fs::path dir = g.root / id;
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(dir, ec))) {
    return fail(errc::not_found, katana::str_cat("container ", id, " does not exist"));
  }
  auto l = load_container(g, id, katana::str_cat("container ", id, " does not exist"));
  if (!l) {
    // An unloadable state (a create that died half-way): remove it and succeed (runk).
    log_debug(g, "delete: removing unloadable state: " + l.error().message());
    fs::remove_all(dir, ec);
    return 0;
  }
  const auto st = l->status();
  if (st == kc::runtime_status::running || st == kc::runtime_status::paused) {
    if (!a.has("force")) {
      return fail(errc::invalid_argument,
                  katana::str_cat("cannot delete container ", id, " that is not stopped"));
    }
    KATANA_TRY(signal_all(*l, SIGKILL));
  } else if (st == kc::runtime_status::created) {
    ::kill(l->c.pid(), SIGKILL);
  }
  if (l->cgroup && !l->cgroups_disabled) {
    // Stragglers of a stopped container's cgroup (kill --all semantics).
    if (auto pids = l->cgroup->pids()) {
      for (const pid_t p : *pids) {
        ::kill(p, SIGKILL);
      }
    }
    if (l->frozen()) {
      (void)l->cgroup->freeze(cg::freezer_state::thawed);
    }
  }
  KATANA_TRY(l->c.destroy());
  if (l->cgroup) {
    KATANA_TRY(remove_cgroup(*l->cgroup));
  }
  return 0;
}

katana::result<int> cmd_exec(const globals& g, args_t args) {
  constexpr flag flags[] = {
      {"console-socket", 0, true},
      {"pidfd-socket", 0, true},
      {"cwd", 0, true},
      {"env", 'e', true},
      {"tty", 't', false},
      {"user", 'u', true},
      {"additional-gids", 'g', true},
      {"process", 'p', true},
      {"detach", 'd', false},
      {"pid-file", 0, true},
      {"process-label", 0, true},
      {"apparmor", 0, true},
      {"no-new-privs", 0, false},
      {"cap", 'c', true},
      {"preserve-fds", 0, true},
      {"cgroup", 0, true},
      {"ignore-paused", 0, false},
  };
  const auto a = KATANA_TRY(parse_args(args, flags, 1));
  if (a.positional.empty()) {
    return fail(errc::invalid_argument, "\"exec\" requires at least 1 argument: the container id");
  }
  const std::string& id = a.positional[0];
  KATANA_TRY(validate_id(id));
  if (a.get("preserve-fds").value_or("0") != "0") {
    return fail(errc::unsupported, "--preserve-fds is not supported");
  }
  auto l = KATANA_TRY(load_container(g, id,
                                     katana::str_cat("container ", id, " does not exist at path \"",
                                                     (g.root / id).native(), "\"")));
  const std::vector<std::string> cmd(a.positional.begin() + 1, a.positional.end());
  const auto process_file = a.get("process");
  if (!process_file && cmd.empty()) {
    return fail(errc::invalid_argument, "process and args cannot be all empty");
  }
  katana::oci::process p;
  if (process_file) {
    std::string text;
    if (*process_file == "-") {
      text = KATANA_TRY(read_all(STDIN_FILENO));
    } else {
      text = KATANA_TRY(katana::oci::detail::read_small_file(*process_file, 1 << 20));
    }
    p = KATANA_TRY(katana::oci::detail::parse_document<katana::oci::process>(text, *process_file));
  } else {
    if (!l.c.state().config.process) {
      return fail(errc::invalid_spec, "process is empty in spec");
    }
    p = *l.c.state().config.process;
    p.args = cmd;
    p.terminal = a.has("tty");
    if (auto cwd = a.get("cwd")) {
      p.cwd = *cwd;
    }
    for (const std::string& e : a.all("env")) {
      if (e.find('=') == std::string::npos) {
        return fail(errc::invalid_argument,
                    katana::str_cat("--env \"", e, "\": expected KEY=VALUE"));
      }
      p.env.push_back(e);
    }
    if (a.has("no-new-privs")) {
      p.no_new_privileges = true;
    }
    if (auto u = a.get("user")) {
      const auto colon = u->find(':');
      p.user.uid = KATANA_TRY(parse_number<std::uint32_t>("user", u->substr(0, colon)),
                              "--user takes a numeric uid[:gid]");
      if (colon != std::string::npos) {
        p.user.gid = KATANA_TRY(parse_number<std::uint32_t>("user", u->substr(colon + 1)),
                                "--user takes a numeric uid[:gid]");
      }
    }
    for (const std::string& gid : a.all("additional-gids")) {
      p.user.additional_gids.push_back(
          KATANA_TRY(parse_number<std::uint32_t>("additional-gids", gid)));
    }
    if (!a.all("cap").empty()) {
      auto& caps = p.capabilities ? *p.capabilities : p.capabilities.emplace();
      for (const std::string& c : a.all("cap")) {
        for (auto* set : {&caps.bounding, &caps.effective, &caps.permitted, &caps.ambient}) {
          set->push_back(c);
        }
      }
    }
  }
  if (p.args.empty()) {
    return fail(errc::invalid_argument, "args must not be empty");
  }
  if (p.cwd.empty()) {
    return fail(errc::invalid_argument, "cwd property must not be empty");
  }
  if (p.cwd.front() != '/') {
    return fail(errc::invalid_argument, "cwd must be an absolute path");
  }
  kc::exec_options eo;
  if (auto v = a.get("console-socket")) {
    eo.console_socket = *v;
  }
  if (auto v = a.get("pid-file")) {
    eo.pid_file = fs::absolute(*v);
  }
  const auto st = l.status();
  if (st == kc::runtime_status::paused) {
    return fail(errc::invalid_argument,
                "cannot exec in a stopped or paused container, state: paused");
  }
  if (l.cgroup && !l.cgroups_disabled) {
    eo.join_cgroups = [&](int pid) {
      return l.cgroup->add_task(pid);
    };
  }
  auto h = KATANA_TRY(l.c.exec(p, eo));
  if (a.has("detach")) {
    return 0;
  }
  forward_signals_to(h.pid);
  const int wst = KATANA_TRY(kc::wait_child(h.pid));
  return kc::exit_code(wst);
}

}  // namespace runk
