// Checks a parsed spec (or state) against runtime-spec 1.2 and the rules runc enforces before it
// touches the host. Messages name the member as it is spelled in JSON and say why:
//   "mounts[2].destination must be an absolute path"
//   "linux.namespaces[1].type \"foo\" is not a namespace type"
// Only what can be decided from the document is checked; whether the host has a capability,
// a namespace file or a cgroup controller is the engine's business.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <katana/core/error.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/oci/names.hpp>
#include <katana/oci/spec.hpp>
#include <katana/oci/state.hpp>

namespace katana::inline v0::oci {

struct validate_options {
  bool require_process = true;  // `create` needs one; a spec template may leave it out
  bool require_root = true;     // REQUIRED on Linux
};

struct semantic_version {
  std::uint64_t major = 0;
  std::uint64_t minor = 0;
  std::uint64_t patch = 0;
  std::string_view pre_release;  // views into the parsed text
  std::string_view build;
};

namespace detail {
constexpr bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
constexpr bool is_ident_char(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
}

// Reads a run of digits (leading zeros allowed, as the kernel's list parser does).
constexpr std::optional<std::uint64_t> take_digits(std::string_view& s) {
  std::size_t n = 0;
  std::uint64_t v = 0;
  for (; n < s.size() && is_digit(s[n]); ++n) {
    const auto d = static_cast<std::uint64_t>(s[n] - '0');
    if (v > (UINT64_MAX - d) / 10) {
      return std::nullopt;
    }
    v = v * 10 + d;
  }
  if (n == 0) {
    return std::nullopt;
  }
  s.remove_prefix(n);
  return v;
}

// A SemVer number: no leading zeros.
constexpr std::optional<std::uint64_t> take_number(std::string_view& s) {
  if (s.size() > 1 && s[0] == '0' && is_digit(s[1])) {
    return std::nullopt;
  }
  return take_digits(s);
}

// Dot-separated non-empty identifiers; numeric ones without leading zeros when `strict`.
constexpr bool valid_identifiers(std::string_view s, bool strict) {
  if (s.empty()) {
    return false;
  }
  std::size_t start = 0;
  for (std::size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == '.') {
      const auto id = s.substr(start, i - start);
      if (id.empty()) {
        return false;
      }
      bool numeric = true;
      for (char c : id) {
        if (!is_ident_char(c)) {
          return false;
        }
        numeric = numeric && is_digit(c);
      }
      if (strict && numeric && id.size() > 1 && id[0] == '0') {
        return false;
      }
      start = i + 1;
    }
  }
  return true;
}

// cpuset list syntax: "0-3,7", with the kernel's optional ":used/group" stride on ranges.
constexpr bool valid_cpu_list(std::string_view s) {
  while (true) {
    const auto first = take_digits(s);
    if (!first) {
      return false;
    }
    if (s.starts_with('-')) {
      s.remove_prefix(1);
      const auto last = take_digits(s);
      if (!last || *last < *first) {
        return false;
      }
      if (s.starts_with(':')) {
        s.remove_prefix(1);
        if (!take_digits(s) || !s.starts_with('/')) {
          return false;
        }
        s.remove_prefix(1);
        if (!take_digits(s)) {
          return false;
        }
      }
    }
    if (s.empty()) {
      return true;
    }
    if (!s.starts_with(',')) {
      return false;
    }
    s.remove_prefix(1);
  }
}

// "64KB", "2MB", "1GB": digits, a unit prefix, "B".
constexpr bool valid_page_size(std::string_view s) {
  if (s.size() < 3 || !s.ends_with('B')) {
    return false;
  }
  const char unit = s[s.size() - 2];
  if (unit != 'K' && unit != 'M' && unit != 'G' && unit != 'T' && unit != 'P') {
    return false;
  }
  for (char c : s.substr(0, s.size() - 2)) {
    if (!is_digit(c)) {
      return false;
    }
  }
  return s[0] != '0';
}

// A file name: not empty, no '/', not "." or "..".
constexpr bool plain_name(std::string_view s) {
  return !s.empty() && s != "." && s != ".." && s.find('/') == std::string_view::npos;
}

// Sysctl names are '.'- or '/'-separated components, none empty (so no "..").
constexpr bool valid_sysctl_name(std::string_view s) {
  if (s.empty() || s.front() == '.' || s.front() == '/' || s.back() == '.' || s.back() == '/') {
    return false;
  }
  for (std::size_t i = 1; i < s.size(); ++i) {
    const bool sep = s[i] == '.' || s[i] == '/';
    const bool prev_sep = s[i - 1] == '.' || s[i - 1] == '/';
    if (sep && prev_sep) {
      return false;
    }
  }
  return true;
}

constexpr bool is_absolute(std::string_view p) {
  return !p.empty() && p.front() == '/';
}

/// `"value"` for messages, with quotes, backslashes and control characters escaped so a
/// hostile value cannot forge log lines.
inline std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      constexpr char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[u >> 4];
      out += hex[u & 0xf];
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

inline std::string at(std::string_view path, std::size_t i) {
  return str_cat(path, "[", i, "]");
}
}  // namespace detail

/// Parses "1.2.0", "1.0.2-dev", "1.1.0-rc.1+build.5" (SemVer 2.0.0).
constexpr std::optional<semantic_version> parse_semantic_version(std::string_view s) {
  semantic_version v;
  auto major = detail::take_number(s);
  if (!major || !s.starts_with('.')) {
    return std::nullopt;
  }
  s.remove_prefix(1);
  auto minor = detail::take_number(s);
  if (!minor || !s.starts_with('.')) {
    return std::nullopt;
  }
  s.remove_prefix(1);
  auto patch = detail::take_number(s);
  if (!patch) {
    return std::nullopt;
  }
  v.major = *major;
  v.minor = *minor;
  v.patch = *patch;
  if (auto plus = s.find('+'); plus != std::string_view::npos) {
    v.build = s.substr(plus + 1);
    if (!detail::valid_identifiers(v.build, false)) {
      return std::nullopt;
    }
    s = s.substr(0, plus);
  }
  if (s.starts_with('-')) {
    v.pre_release = s.substr(1);
    if (!detail::valid_identifiers(v.pre_release, true)) {
      return std::nullopt;
    }
  } else if (!s.empty()) {
    return std::nullopt;
  }
  return v;
}

namespace detail {

class spec_checker {
 public:
  explicit spec_checker(const validate_options& options) : options_(options) {}

  std::vector<std::string> run(const spec& s) {
    check_version("ociVersion", s.oci_version);
    if (!s.root) {
      if (options_.require_root) {
        add("root is required");
      }
    } else if (s.root->path.empty()) {
      add("root.path must not be empty");
    }
    if (s.linux_) {
      for (const auto& ns : s.linux_->namespaces) {
        if (auto t = parse_namespace_type(ns.type)) {
          namespaces_.insert(*t);
        }
      }
    }
    if (!s.process) {
      if (options_.require_process) {
        add("process is required");
      }
    } else {
      check_process(*s.process);
    }
    if (!s.hostname.empty() && !has(namespace_type::uts)) {
      add("hostname requires a uts namespace");
    }
    if (!s.domainname.empty() && !has(namespace_type::uts)) {
      add("domainname requires a uts namespace");
    }
    for (std::size_t i = 0; i < s.mounts.size(); ++i) {
      if (!is_absolute(s.mounts[i].destination)) {
        add(str_cat(at("mounts", i), ".destination must be an absolute path"));
      }
    }
    if (s.hooks) {
      check_hooks("hooks.prestart", s.hooks->prestart);
      check_hooks("hooks.createRuntime", s.hooks->create_runtime);
      check_hooks("hooks.createContainer", s.hooks->create_container);
      check_hooks("hooks.startContainer", s.hooks->start_container);
      check_hooks("hooks.poststart", s.hooks->poststart);
      check_hooks("hooks.poststop", s.hooks->poststop);
    }
    if (s.annotations.contains("")) {
      add("annotations keys must not be empty");
    }
    if (s.linux_) {
      check_linux(*s.linux_);
    }
    return std::move(problems_);
  }

  void check_version(std::string_view field, std::string_view version) {
    auto v = parse_semantic_version(version);
    if (!v) {
      add(str_cat(field, " ", quote(version), " is not a valid semantic version"));
    } else if (v->major != 1) {
      add(str_cat(field, " ", quote(version), " is not supported: the major version must be 1"));
    }
  }

  void add(std::string problem) { problems_.push_back(std::move(problem)); }
  std::vector<std::string> take() { return std::move(problems_); }

 private:
  bool has(namespace_type t) const { return namespaces_.contains(t); }

  void check_env(std::string_view path, const std::vector<std::string>& env) {
    for (std::size_t i = 0; i < env.size(); ++i) {
      const auto eq = env[i].find('=');
      if (eq == std::string::npos) {
        add(str_cat(at(path, i), " ", quote(env[i]), " must contain '='"));
      } else if (eq == 0) {
        add(str_cat(at(path, i), " ", quote(env[i]), " has an empty name"));
      }
    }
  }

  template <class V, std::size_t N>
  void check_names(std::string_view path,
                   const std::vector<std::string>& values,
                   const std::array<named<V>, N>& table,
                   std::string_view what) {
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (!lookup(table, values[i])) {
        add(str_cat(at(path, i), " ", quote(values[i]), " is not ", what));
      }
    }
  }

  void check_cpu_list(std::string_view path, const std::string& list) {
    if (!list.empty() && !valid_cpu_list(list)) {
      add(str_cat(path, " ", quote(list), " is not a valid list (like \"0-3,7\")"));
    }
  }

  void check_process(const process& p) {
    if (p.args.empty()) {
      add("process.args must not be empty");
    } else if (p.args[0].empty()) {
      add("process.args[0] must not be empty");
    }
    if (!is_absolute(p.cwd)) {
      add("process.cwd must be an absolute path");
    }
    check_env("process.env", p.env);
    if (p.console_size && !p.terminal) {
      add("process.consoleSize requires process.terminal");
    }
    if (p.user.umask && *p.user.umask > 0777) {
      add("process.user.umask must be at most 0777");
    }
    if (p.capabilities) {
      const auto& c = *p.capabilities;
      check_names("process.capabilities.bounding", c.bounding, capabilities, "a capability");
      check_names("process.capabilities.effective", c.effective, capabilities, "a capability");
      check_names("process.capabilities.inheritable", c.inheritable, capabilities, "a capability");
      check_names("process.capabilities.permitted", c.permitted, capabilities, "a capability");
      check_names("process.capabilities.ambient", c.ambient, capabilities, "a capability");
    }
    std::set<std::string_view> seen;
    for (std::size_t i = 0; i < p.rlimits.size(); ++i) {
      const auto& r = p.rlimits[i];
      const auto path = at("process.rlimits", i);
      if (!rlimit_resource(r.type)) {
        add(str_cat(path, ".type ", quote(r.type), " is unknown"));
      } else if (!seen.insert(r.type).second) {
        add(str_cat(path, ": duplicate rlimit ", quote(r.type)));
      }
      if (r.soft > r.hard) {
        add(str_cat(path, " soft limit exceeds hard limit"));
      }
    }
    if (p.oom_score_adj && (*p.oom_score_adj < -1000 || *p.oom_score_adj > 1000)) {
      add("process.oomScoreAdj must be between -1000 and 1000");
    }
    if (p.scheduler) {
      check_scheduler(*p.scheduler);
    }
    if (p.io_priority) {
      if (!io_priority_class(p.io_priority->class_)) {
        add(str_cat("process.ioPriority.class ", quote(p.io_priority->class_),
                    " is not an I/O priority class"));
      }
      if (p.io_priority->priority < 0 || p.io_priority->priority > 7) {
        add("process.ioPriority.priority must be between 0 and 7");
      }
    }
    if (p.exec_cpu_affinity) {
      check_cpu_list("process.execCPUAffinity.initial", p.exec_cpu_affinity->initial);
      check_cpu_list("process.execCPUAffinity.final", p.exec_cpu_affinity->final);
    }
  }

  void check_scheduler(const scheduler& s) {
    const auto policy = scheduler_policy(s.policy);
    if (!policy) {
      add(str_cat("process.scheduler.policy ", quote(s.policy), " is not a scheduling policy"));
    }
    check_names("process.scheduler.flags", s.flags, scheduler_flags, "a scheduler flag");
    if (s.nice < -20 || s.nice > 19) {
      add("process.scheduler.nice must be between -20 and 19");
    }
    const bool realtime = s.policy == "SCHED_FIFO" || s.policy == "SCHED_RR";
    if (realtime && (s.priority < 1 || s.priority > 99)) {
      add(str_cat("process.scheduler.priority must be between 1 and 99 for ", s.policy));
    } else if (policy && !realtime && s.priority != 0) {
      add(str_cat("process.scheduler.priority must be 0 for ", s.policy));
    }
  }

  void check_hooks(std::string_view path, const std::vector<hook>& hooks) {
    for (std::size_t i = 0; i < hooks.size(); ++i) {
      const auto p = at(path, i);
      if (!is_absolute(hooks[i].path)) {
        add(str_cat(p, ".path must be an absolute path"));
      }
      check_env(str_cat(p, ".env"), hooks[i].env);
      if (hooks[i].timeout && *hooks[i].timeout <= 0) {
        add(str_cat(p, ".timeout must be positive"));
      }
    }
  }

  void check_mappings(std::string_view path, const std::vector<linux_id_mapping>& maps) {
    if (!maps.empty() && !has(namespace_type::user)) {
      add(str_cat(path, " require a user namespace"));
    }
    for (std::size_t i = 0; i < maps.size(); ++i) {
      if (maps[i].size == 0) {
        add(str_cat(at(path, i), ".size must be positive"));
      }
    }
  }

  void check_linux(const linux_spec& l) {
    std::set<std::string_view> seen;
    for (std::size_t i = 0; i < l.namespaces.size(); ++i) {
      const auto& ns = l.namespaces[i];
      if (!parse_namespace_type(ns.type)) {
        add(str_cat(at("linux.namespaces", i), ".type ", quote(ns.type),
                    " is not a namespace type"));
      } else if (!seen.insert(ns.type).second) {
        add(str_cat("linux.namespaces: duplicate namespace ", quote(ns.type)));
      }
      if (!ns.path.empty() && !is_absolute(ns.path)) {
        add(str_cat(at("linux.namespaces", i), ".path must be an absolute path"));
      }
    }
    check_mappings("linux.uidMappings", l.uid_mappings);
    check_mappings("linux.gidMappings", l.gid_mappings);
    for (const auto& [key, value] : l.sysctl) {
      check_sysctl(key);
    }
    if (l.resources) {
      check_resources(*l.resources);
    }
    for (std::size_t i = 0; i < l.devices.size(); ++i) {
      const auto& d = l.devices[i];
      const auto p = at("linux.devices", i);
      if (!is_absolute(d.path)) {
        add(str_cat(p, ".path must be an absolute path"));
      }
      if (d.type != "c" && d.type != "b" && d.type != "u" && d.type != "p") {
        add(str_cat(p, ".type must be one of c, b, u, p"));
      }
    }
    if (l.seccomp) {
      check_seccomp(*l.seccomp);
    }
    if (!l.rootfs_propagation.empty() && !propagation_flags(l.rootfs_propagation)) {
      add(str_cat("linux.rootfsPropagation ", quote(l.rootfs_propagation), " is invalid"));
    }
    for (std::size_t i = 0; i < l.masked_paths.size(); ++i) {
      if (!is_absolute(l.masked_paths[i])) {
        add(str_cat(at("linux.maskedPaths", i), " must be an absolute path"));
      }
    }
    for (std::size_t i = 0; i < l.readonly_paths.size(); ++i) {
      if (!is_absolute(l.readonly_paths[i])) {
        add(str_cat(at("linux.readonlyPaths", i), " must be an absolute path"));
      }
    }
    if (l.intel_rdt && !l.intel_rdt->clos_id.empty() && !plain_name(l.intel_rdt->clos_id)) {
      add(str_cat("linux.intelRdt.closID ", quote(l.intel_rdt->clos_id),
                  " must be a plain directory name"));
    }
    if (l.personality && !personality_domain(l.personality->domain)) {
      add(str_cat("linux.personality.domain ", quote(l.personality->domain),
                  " must be LINUX or LINUX32"));
    }
    if (!l.time_offsets.empty() && !has(namespace_type::time)) {
      add("linux.timeOffsets require a time namespace");
    }
    for (const auto& [clock, offset] : l.time_offsets) {
      if (!time_offset_clock(clock)) {
        add(str_cat("linux.timeOffsets key ", quote(clock), " must be monotonic or boottime"));
      } else if (offset.nanosecs >= 1'000'000'000) {
        add(str_cat("linux.timeOffsets[", quote(clock), "].nanosecs must be less than 1000000000"));
      }
    }
  }

  // Namespaced sysctls need their namespace (runc's rule); others are the host's to refuse.
  void check_sysctl(std::string_view key) {
    if (key.empty()) {
      add("linux.sysctl keys must not be empty");
      return;
    }
    if (!valid_sysctl_name(key)) {
      add(str_cat("linux.sysctl key ", quote(key), " is not a sysctl name"));
      return;
    }
    auto need = [&](namespace_type t, std::string_view what) {
      if (!has(t)) {
        add(str_cat("linux.sysctl[", quote(key), "] requires ", what, " namespace"));
      }
    };
    constexpr std::string_view ipc_keys[] = {
        "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
        "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"};
    if (key.starts_with("net.") || key.starts_with("net/")) {
      need(namespace_type::network, "a network");
    } else if (key.starts_with("fs.mqueue.") || key.starts_with("fs/mqueue/") ||
               std::find(std::begin(ipc_keys), std::end(ipc_keys), key) != std::end(ipc_keys)) {
      need(namespace_type::ipc, "an ipc");
    } else if (key == "kernel.hostname" || key == "kernel.domainname") {
      need(namespace_type::uts, "a uts");
    }
  }

  void check_resources(const linux_resources& r) {
    for (std::size_t i = 0; i < r.devices.size(); ++i) {
      const auto& d = r.devices[i];
      const auto p = at("linux.resources.devices", i);
      if (!d.type.empty() && d.type != "a" && d.type != "c" && d.type != "b") {
        add(str_cat(p, ".type must be one of a, c, b"));
      }
      if (d.access.find_first_not_of("rwm") != std::string::npos) {
        add(str_cat(p, ".access ", quote(d.access), " must contain only r, w and m"));
      }
    }
    if (r.memory && r.memory->swappiness && *r.memory->swappiness > 100) {
      add("linux.resources.memory.swappiness must be at most 100");
    }
    if (r.cpu) {
      check_cpu_list("linux.resources.cpu.cpus", r.cpu->cpus);
      check_cpu_list("linux.resources.cpu.mems", r.cpu->mems);
      if (r.cpu->idle && *r.cpu->idle != 0 && *r.cpu->idle != 1) {
        add("linux.resources.cpu.idle must be 0 or 1");
      }
    }
    if (r.block_io) {
      const auto& b = *r.block_io;
      auto weight = [&](std::string_view path, const std::optional<std::uint16_t>& w) {
        if (w && (*w < 10 || *w > 1000)) {
          add(str_cat(path, " must be between 10 and 1000"));
        }
      };
      weight("linux.resources.blockIO.weight", b.weight);
      weight("linux.resources.blockIO.leafWeight", b.leaf_weight);
      for (std::size_t i = 0; i < b.weight_device.size(); ++i) {
        const auto p = at("linux.resources.blockIO.weightDevice", i);
        weight(str_cat(p, ".weight"), b.weight_device[i].weight);
        weight(str_cat(p, ".leafWeight"), b.weight_device[i].leaf_weight);
      }
    }
    for (std::size_t i = 0; i < r.hugepage_limits.size(); ++i) {
      const auto& size = r.hugepage_limits[i].page_size;
      if (!valid_page_size(size)) {
        add(str_cat(at("linux.resources.hugepageLimits", i), ".pageSize ", quote(size),
                    " must look like 2MB or 1GB"));
      }
    }
    if (r.rdma.contains("")) {
      add("linux.resources.rdma device names must not be empty");
    }
    for (const auto& [key, value] : r.unified) {
      if (!plain_name(key)) {
        add(str_cat("linux.resources.unified key ", quote(key), " is not a cgroup file name"));
      }
    }
  }

  void check_seccomp(const linux_seccomp& s) {
    const auto errno_ok = [](std::optional<seccomp_action> a) {
      return a == seccomp_action::errno_ || a == seccomp_action::trace;
    };
    const auto def = parse_seccomp_action(s.default_action);
    if (!def) {
      add(str_cat("linux.seccomp.defaultAction ", quote(s.default_action),
                  " is not a seccomp action"));
    } else if (*def == seccomp_action::notify) {
      add("linux.seccomp.defaultAction must not be SCMP_ACT_NOTIFY");
    }
    if (s.default_errno_ret && def && !errno_ok(def)) {
      add("linux.seccomp.defaultErrnoRet requires SCMP_ACT_ERRNO or SCMP_ACT_TRACE");
    }
    check_names("linux.seccomp.architectures", s.architectures, seccomp_architectures,
                "a seccomp architecture");
    check_names("linux.seccomp.flags", s.flags, seccomp_flags, "a seccomp flag");
    bool notify = false;
    for (std::size_t i = 0; i < s.syscalls.size(); ++i) {
      const auto& sc = s.syscalls[i];
      const auto p = at("linux.seccomp.syscalls", i);
      if (sc.names.empty()) {
        add(str_cat(p, ".names must not be empty"));
      }
      for (std::size_t k = 0; k < sc.names.size(); ++k) {
        if (sc.names[k].empty()) {
          add(str_cat(at(str_cat(p, ".names"), k), " must not be empty"));
        }
      }
      const auto action = parse_seccomp_action(sc.action);
      if (!action) {
        add(str_cat(p, ".action ", quote(sc.action), " is not a seccomp action"));
      } else if (sc.errno_ret && !errno_ok(action)) {
        add(str_cat(p, ".errnoRet requires SCMP_ACT_ERRNO or SCMP_ACT_TRACE"));
      }
      notify = notify || action == seccomp_action::notify;
      for (std::size_t k = 0; k < sc.args.size(); ++k) {
        const auto& a = sc.args[k];
        const auto ap = at(str_cat(p, ".args"), k);
        if (a.index >= 6) {
          add(str_cat(ap, ".index must be less than 6"));
        }
        if (!parse_seccomp_operator(a.op)) {
          add(str_cat(ap, ".op ", quote(a.op), " is not a seccomp operator"));
        }
      }
    }
    if (notify && s.listener_path.empty()) {
      add("linux.seccomp: SCMP_ACT_NOTIFY requires listenerPath");
    }
  }

  validate_options options_;
  std::set<namespace_type> namespaces_;
  std::vector<std::string> problems_;
};

}  // namespace detail

/// Every problem of a spec, in document order (empty when it is valid).
inline std::vector<std::string> validate_all(const spec& s, const validate_options& options = {}) {
  return detail::spec_checker(options).run(s);
}

/// The first problem of a spec as errc::invalid_spec.
inline status validate(const spec& s, const validate_options& options = {}) {
  auto problems = validate_all(s, options);
  if (!problems.empty()) {
    return fail(errc::invalid_spec, std::move(problems.front()));
  }
  return {};
}

/// Every problem of a state document.
inline std::vector<std::string> validate_all(const state& s) {
  detail::spec_checker checker({});
  checker.check_version("ociVersion", s.oci_version);
  if (s.id.empty()) {
    checker.add("id must not be empty");
  }
  if (s.pid < 0) {
    checker.add("pid must not be negative");
  } else if (s.pid == 0 &&
             (s.status == container_status::created || s.status == container_status::running)) {
    checker.add(
        str_cat("pid must be positive when status is ", detail::quote(to_string(s.status))));
  }
  if (!detail::is_absolute(s.bundle)) {
    checker.add("bundle must be an absolute path");
  }
  return checker.take();
}

inline status validate(const state& s) {
  auto problems = validate_all(s);
  if (!problems.empty()) {
    return fail(errc::invalid_spec, std::move(problems.front()));
  }
  return {};
}

}  // namespace katana::inline v0::oci
