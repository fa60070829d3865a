// Where the cgroup hierarchies are: /proc/self/mountinfo parsing and the host's mode
// (legacy v1, hybrid, unified v2) from the statfs magic of /sys/fs/cgroup, as runc's
// IsCgroup2UnifiedMode/IsCgroup2HybridMode and youki's AnyCgroupManager probing do.
#pragma once

#include <cerrno>
#include <fcntl.h>
#include <linux/magic.h>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <sys/statfs.h>
#include <vector>

#include <katana/cgroup/fs.hpp>
#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/try.hpp>

namespace katana::inline v0::cgroup {

/// One line of /proc/<pid>/mountinfo (proc(5)).
struct mount_entry {
  std::string root;         // the directory of the filesystem mounted here ("/" usually)
  std::string mount_point;  // octal escapes (\040) decoded
  std::string fs_type;      // "cgroup", "cgroup2", ...
  std::string source;
  std::vector<std::string> super_options;  // "rw", "cpu", "cpuacct", "name=systemd"
  bool operator==(const mount_entry&) const = default;
};

enum class hierarchy_mode {
  none,     // no cgroup filesystem found
  legacy,   // v1 controllers only
  hybrid,   // v1 controllers plus a cgroup2 mount (systemd's /sys/fs/cgroup/unified)
  unified,  // cgroup v2 at the cgroup root
};

inline constexpr std::string_view to_string(hierarchy_mode m) noexcept {
  switch (m) {
    case hierarchy_mode::none:
      return "none";
    case hierarchy_mode::legacy:
      return "legacy";
    case hierarchy_mode::hybrid:
      return "hybrid";
    case hierarchy_mode::unified:
      return "unified";
  }
  return "unknown";
}

/// The v1 controllers katana manages; any other v1 hierarchy (name=systemd, misc) is ignored.
inline constexpr std::string_view v1_controllers[] = {
    "cpu",  "cpuacct", "cpuset",  "memory",   "devices",    "freezer", "blkio",
    "pids", "hugetlb", "net_cls", "net_prio", "perf_event", "rdma",
};

/// The host's cgroup layout.
struct host_layout {
  hierarchy_mode mode = hierarchy_mode::none;
  /// v1 controller -> mount point ("cpu" -> "/sys/fs/cgroup/cpu,cpuacct" when co-mounted).
  std::map<std::string, std::string, std::less<>> v1;
  /// The cgroup2 mount point: the root on unified hosts, ".../unified" on hybrid ones.
  std::string unified;
  bool operator==(const host_layout&) const = default;
};

namespace detail {

// mountinfo escapes space, tab, newline and backslash as \ooo.
inline std::string unescape_mount(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto is_oct = [](char c) {
      return c >= '0' && c <= '7';
    };
    if (s[i] == '\\' && i + 3 < s.size()) {
      if (is_oct(s[i + 1]) && is_oct(s[i + 2]) && is_oct(s[i + 3])) {
        out +=
            static_cast<char>(((s[i + 1] - '0') << 6) | ((s[i + 2] - '0') << 3) | (s[i + 3] - '0'));
        i += 3;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

inline std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  while (true) {
    const auto p = s.find(sep);
    out.push_back(s.substr(0, p));
    if (p == std::string_view::npos) {
      return out;
    }
    s = s.substr(p + 1);
  }
}

inline bool under(std::string_view root, std::string_view p) {
  return p == root || (p.starts_with(root) && p.size() > root.size() && p[root.size()] == '/');
}

}  // namespace detail

/// Parses mountinfo text; a malformed line is an error naming its number.
inline result<std::vector<mount_entry>> parse_mountinfo(std::string_view text) {
  std::vector<mount_entry> out;
  int line_no = 0;
  status bad;
  detail::for_each_line(text, [&](std::string_view line) {
    ++line_no;
    if (!bad) {
      return;
    }
    std::vector<std::string_view> f;
    for (auto part : detail::split(line, ' ')) {
      if (!part.empty()) {
        f.push_back(part);
      }
    }
    // id parent maj:min root mount-point options [optional fields...] - fstype source super
    std::size_t dash = 6;
    while (dash < f.size() && f[dash] != "-") {
      ++dash;
    }
    if (f.size() < 6 || dash + 3 > f.size()) {
      bad = fail(errc::parse_error,
                 str_cat("mountinfo line ", line_no, ": \"", line, "\" has too few fields"));
      return;
    }
    mount_entry e;
    e.root = detail::unescape_mount(f[3]);
    e.mount_point = detail::unescape_mount(f[4]);
    e.fs_type = std::string(f[dash + 1]);
    e.source = detail::unescape_mount(f[dash + 2]);
    if (dash + 3 < f.size()) {
      for (auto o : detail::split(f[dash + 3], ',')) {
        e.super_options.emplace_back(o);
      }
    }
    out.push_back(std::move(e));
  });
  KATANA_TRY(std::move(bad));
  return out;
}

/// The layout the mounts describe. `root_is_cgroup2` is the statfs answer for the cgroup root
/// (CGROUP2_SUPER_MAGIC); v1 mounts under `cgroup_root` win over others of the same
/// controller, and the first cgroup2 mount under it makes a v1 host hybrid.
inline host_layout layout_from_mounts(const std::vector<mount_entry>& mounts,
                                      std::string_view cgroup_root = "/sys/fs/cgroup",
                                      std::optional<bool> root_is_cgroup2 = std::nullopt) {
  host_layout l;
  std::string v2_under_root;
  for (const auto& m : mounts) {
    const bool inside = detail::under(cgroup_root, m.mount_point);
    if (m.fs_type == "cgroup2") {
      if (m.mount_point == cgroup_root) {
        l.unified = m.mount_point;
      } else if (inside && v2_under_root.empty()) {
        v2_under_root = m.mount_point;
      }
      continue;
    }
    if (m.fs_type != "cgroup") {
      continue;
    }
    for (const auto& opt : m.super_options) {
      for (const auto c : v1_controllers) {
        if (opt != c) {
          continue;
        }
        auto it = l.v1.find(c);
        if (it == l.v1.end()) {
          l.v1.emplace(std::string(c), m.mount_point);
        } else if (inside && !detail::under(cgroup_root, it->second)) {
          it->second = m.mount_point;
        }
      }
    }
  }
  const bool unified_root = root_is_cgroup2.value_or(l.unified == cgroup_root && l.v1.empty());
  if (unified_root) {
    l.mode = hierarchy_mode::unified;
    l.unified = std::string(cgroup_root);
    l.v1.clear();  // controllers cannot be in v1 and v2 at once; stale mounts are not ours
  } else if (!l.v1.empty()) {
    l.unified = v2_under_root;
    l.mode = v2_under_root.empty() ? hierarchy_mode::legacy : hierarchy_mode::hybrid;
  } else if (!l.unified.empty() || !v2_under_root.empty()) {
    // cgroup2 mounted somewhere below a non-cgroup2 root, without any v1 controller.
    l.unified = l.unified.empty() ? v2_under_root : l.unified;
    l.mode = hierarchy_mode::unified;
  }
  return l;
}

/// The host's layout: /proc/self/mountinfo plus statfs(cgroup_root).
inline result<host_layout> probe_host(const std::string& cgroup_root = "/sys/fs/cgroup") {
  const dir self = KATANA_TRY(dir::open("/proc/self"), "is /proc mounted?");
  const std::string text = KATANA_TRY(self.read("mountinfo"), "/proc/self");
  auto mounts = KATANA_TRY(parse_mountinfo(text), "/proc/self/mountinfo");
  struct statfs st {};
  std::optional<bool> is_v2;
  if (::statfs(cgroup_root.c_str(), &st) == 0) {
    is_v2 = st.f_type == CGROUP2_SUPER_MAGIC;
  }
  host_layout l = layout_from_mounts(mounts, cgroup_root, is_v2);
  if (l.mode == hierarchy_mode::hybrid) {
    // Trust the filesystem over the mount table for the unified mount (runc's check).
    struct statfs u {};
    if (::statfs(l.unified.c_str(), &u) != 0 || u.f_type != CGROUP2_SUPER_MAGIC) {
      l.mode = hierarchy_mode::legacy;
      l.unified.clear();
    }
  }
  return l;
}

}  // namespace katana::inline v0::cgroup
