// katana-runk: what every command shares (global options, the runc-style log file, loading a
// container with its cgroup manager) and the commands themselves (lifecycle.cpp, info.cpp).
#pragma once

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <katana/cgroup/any_manager.hpp>
#include <katana/container/container.hpp>
#include <katana/core/error.hpp>

#include "cli.hpp"

namespace runk {

namespace fs = std::filesystem;
namespace kc = katana::container;
namespace cg = katana::cgroup;

inline constexpr std::string_view default_root = "/run/katana-runk";
inline constexpr std::string_view version = "0.1.0";

/// Global options (before the command).
struct globals {
  fs::path root{std::string(default_root)};
  fs::path log;
  std::string log_format = "text";
  bool debug = false;
  bool systemd_cgroup = false;
  /// --cgroup-manager=disabled (crun's spelling) or --no-cgroups: the noop manager.
  bool no_cgroups = false;
};

/// Writes a runc-style log line ({"level":"error","msg":"...","time":"..."} or logrus text)
/// to the --log file, if any.
void write_log(const globals& g, std::string_view level, std::string_view msg);

inline void log_debug(const globals& g, std::string_view msg) {
  if (g.debug) {
    write_log(g, "debug", msg);
  }
}

/// The name of the side file that remembers how a container's cgroups are managed.
inline constexpr std::string_view cgroup_mode_file = "cgroup-manager";

/// A container loaded from <root>/<id> and its cgroup manager (opened, not created).
struct loaded_container {
  kc::container c;
  std::optional<cg::any_manager> cgroup;
  bool cgroups_disabled = false;

  [[nodiscard]] bool frozen() const {
    if (!cgroup) {
      return false;
    }
    const auto s = cgroup->state();
    return s && *s == cg::freezer_state::frozen;
  }
  [[nodiscard]] kc::runtime_status status() const { return c.status(frozen()); }
};

/// The cgroup manager this invocation uses (noop when disabled).
katana::result<cg::any_manager> make_cgroup_manager(const globals& g, bool disabled);

/// Loads <root>/<id>; `missing` is the error text when it does not exist.
katana::result<loaded_container> load_container(const globals& g,
                                                std::string_view id,
                                                std::string missing);

/// runk's remove_cgroup_dir: 5 attempts, sleeping 20, 40, 80, 160 ms between them.
katana::status remove_cgroup(cg::any_manager& m);

/// Kills every task of the container's cgroup (or the init without one) with `sig`.
katana::status signal_all(loaded_container& l, int sig);

/// Forwards SIGINT/SIGTERM/SIGHUP/SIGQUIT/SIGUSR1/SIGUSR2/SIGWINCH to `pid` while a foreground
/// run or exec waits.
void forward_signals_to(int pid);

/// Commands: each returns the exit status (0, or a container's exit code for run/exec).
using args_t = std::span<const std::string>;
katana::result<int> cmd_create(const globals& g, args_t args);
katana::result<int> cmd_run(const globals& g, args_t args);
katana::result<int> cmd_start(const globals& g, args_t args);
katana::result<int> cmd_kill(const globals& g, args_t args);
katana::result<int> cmd_delete(const globals& g, args_t args);
katana::result<int> cmd_exec(const globals& g, args_t args);
katana::result<int> cmd_state(const globals& g, args_t args);
katana::result<int> cmd_list(const globals& g, args_t args);
katana::result<int> cmd_ps(const globals& g, args_t args);
katana::result<int> cmd_pause(const globals& g, args_t args);
katana::result<int> cmd_resume(const globals& g, args_t args);
katana::result<int> cmd_events(const globals& g, args_t args);
katana::result<int> cmd_update(const globals& g, args_t args);
katana::result<int> cmd_features(const globals& g, args_t args);
katana::result<int> cmd_spec(const globals& g, args_t args);

/// All of a descriptor's input (stdin for `--process -`, `update -r -`), at most `limit` bytes.
/// POSIX reads, no iostreams: katana-runk links none of the locale machinery (smaller, static).
katana::result<std::string> read_all(int fd, std::size_t limit = 1 << 20);

/// Writes `text` to `path` (created 0644, truncated).
katana::status write_text_file(const fs::path& path, std::string_view text);

/// Whitespace-separated words of `line`.
std::vector<std::string_view> words(std::string_view line);

/// Exactly one positional argument (the id), runc's message otherwise.
inline katana::result<std::string> one_id(std::string_view cmd, const parsed_args& a) {
  if (a.positional.size() != 1) {
    return fail(errc::invalid_argument,
                katana::str_cat("\"", cmd, "\" requires exactly 1 argument(s): the container id"));
  }
  KATANA_TRY(validate_id(a.positional[0]));
  return a.positional[0];
}

}  // namespace runk
