// Helpers for the cgroup tests that touch the host: root/controller checks, a scratch parent
// cgroup ("katana-test-<pid>-<tag>") removed from every hierarchy at scope end (also when a
// REQUIRE fails), and children that sleep or spin.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <katana/cgroup/fs.hpp>
#include <katana/cgroup/mountinfo.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/testing/cgroup_laws.hpp>

#include "catch.hpp"

namespace katana_test::cg {

namespace cgroup = katana::cgroup;

inline bool is_root() {
  return ::geteuid() == 0;
}

inline const cgroup::host_layout& layout() {
  static const cgroup::host_layout l = [] {
    auto r = cgroup::probe_host();
    return r ? *r : cgroup::host_layout{};
  }();
  return l;
}

/// Skips (WARN + false) unless root; the caller returns.
#define KATANA_CGROUP_REQUIRE_ROOT()                                               \
  do {                                                                             \
    if (!::katana_test::cg::is_root()) {                                           \
      WARN("skipped: creating cgroups needs root (run the [root] cases as root)"); \
      return;                                                                      \
    }                                                                              \
  } while (false)

/// The hierarchy roots the tests may create cgroups in: every v1 mount point and the cgroup2
/// mount.
inline std::vector<std::string> all_roots() {
  std::set<std::string> roots;
  for (const auto& [c, mp] : layout().v1) {
    roots.insert(mp);
  }
  if (!layout().unified.empty()) {
    roots.insert(layout().unified);
  }
  return {roots.begin(), roots.end()};
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) {
    s.pop_back();
  }
  return s;
}

inline std::vector<std::string> words(std::string_view s) {
  std::vector<std::string> out;
  std::istringstream in{std::string(s)};
  std::string w;
  while (in >> w) {
    out.push_back(w);
  }
  return out;
}

/// A parent cgroup for one test, removed from every hierarchy when it goes out of scope; the
/// cgroup2 root's subtree_control is put back as it was (best effort: another test process may
/// be using a controller it enabled).
class scratch {
 public:
  explicit scratch(std::string_view tag)
      : name_(katana::str_cat("katana-test-", ::getpid(), "-", tag)) {
    if (!layout().unified.empty()) {
      saved_subtree_ = words(read_file(layout().unified + "/cgroup.subtree_control"));
    }
  }
  scratch(const scratch&) = delete;
  scratch& operator=(const scratch&) = delete;
  ~scratch() {
    for (const auto& root : all_roots()) {
      // A task killed just before may still be leaving: runk's retries.
      if (auto st = cgroup::with_retries([&] { return cgroup::remove_path(root, name_); }); !st) {
        std::fprintf(stderr, "cgroup test cleanup: %s/%s: %s\n", root.c_str(), name_.c_str(),
                     st.error().message().c_str());
      }
    }
    if (!layout().unified.empty()) {
      auto d = cgroup::dir::open(layout().unified);
      if (d) {
        for (const auto& c : words(read_file(layout().unified + "/cgroup.subtree_control"))) {
          if (std::find(saved_subtree_.begin(), saved_subtree_.end(), c) == saved_subtree_.end()) {
            (void)d->write("cgroup.subtree_control", "-" + c);
          }
        }
      }
    }
  }
  /// "katana-test-<pid>-<tag>", or a path below it.
  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] std::string operator/(std::string_view child) const {
    return katana::str_cat(name_, "/", child);
  }

 private:
  std::string name_;
  std::vector<std::string> saved_subtree_;
};

/// A child that spins on the CPU until killed.
inline pid_t spawn_busy() {
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) {
      ::_exit(0);
    }
    volatile std::uint64_t n = 0;
    for (;;) {
      n = n + 1;
    }
  }
  return pid;
}

/// Kills and reaps at scope end.
struct child_guard {
  pid_t pid = -1;
  ~child_guard() { katana::testing::kill_and_reap(pid); }
};

/// utime + stime of a process, in clock ticks.
inline std::uint64_t cpu_ticks(pid_t pid) {
  const std::string stat = read_file(katana::str_cat("/proc/", pid, "/stat"));
  const auto close = stat.rfind(')');
  if (close == std::string::npos) {
    return 0;
  }
  std::istringstream in(stat.substr(close + 2));
  std::string field;
  std::uint64_t utime = 0;
  std::uint64_t stime = 0;
  // fields after ")": state(3) ... utime is field 14, stime 15 (1-based in proc(5)).
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14) {
      utime = std::stoull(field);
    } else if (i == 15) {
      stime = std::stoull(field);
    }
  }
  return utime + stime;
}

/// Polls stats() (every 50 ms, up to 5 s: the host may be busy) until the cgroup has used at
/// least `ns` of CPU; returns the last stats.
template <class M>
auto wait_for_cpu(const M& m, std::uint64_t ns) {
  auto s = m.stats();
  for (int i = 0; i < 100 && s && s->cpu.usage.total_ns < ns; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    s = m.stats();
  }
  return s;
}

/// Whether `pid` gets CPU time beyond `ticks` within 5 s (a busy host may delay it).
inline bool runs_again(pid_t pid, std::uint64_t ticks) {
  for (int i = 0; i < 100; ++i) {
    if (cpu_ticks(pid) > ticks) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

/// The "State:" line of /proc/<pid>/status ("R (running)", "S (sleeping)", ...).
inline std::string proc_state(pid_t pid) {
  std::istringstream in(read_file(katana::str_cat("/proc/", pid, "/status")));
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("State:")) {
      return trimmed(line.substr(line.find_first_not_of(" \t", 6)));
    }
  }
  return {};
}

/// The cgroup of `pid` in the hierarchy whose /proc/<pid>/cgroup controller list is `ctl`
/// ("memory", "" for the unified one).
inline std::string proc_cgroup(pid_t pid, std::string_view ctl) {
  std::istringstream in(read_file(katana::str_cat("/proc/", pid, "/cgroup")));
  std::string line;
  while (std::getline(in, line)) {
    const auto a = line.find(':');
    const auto b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) {
      continue;
    }
    std::string_view list = std::string_view(line).substr(a + 1, b - a - 1);
    bool match = list == ctl;
    while (!match && !list.empty() && !ctl.empty()) {
      const auto comma = list.find(',');
      match = list.substr(0, comma) == ctl;
      list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    }
    if (match) {
      return line.substr(b + 1);
    }
  }
  return {};
}

/// A whole disk's "major:minor" (not loop/ram/zram), for throttle tests.
inline std::optional<std::pair<std::int64_t, std::int64_t>> some_disk() {
  for (const std::string name : {"vda", "sda", "nvme0n1", "xvda", "vdb"}) {
    const std::string dev = trimmed(read_file("/sys/block/" + name + "/dev"));
    const auto colon = dev.find(':');
    if (colon != std::string::npos) {
      return std::pair{std::stoll(dev.substr(0, colon)), std::stoll(dev.substr(colon + 1))};
    }
  }
  return std::nullopt;
}

}  // namespace katana_test::cg
