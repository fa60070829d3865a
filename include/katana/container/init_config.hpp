// Everything the container init needs, prepared in the parent before clone: C strings,
// argv/envp arrays, the mount plan as plain structs, the seccomp BPF. The post-fork code in
// init.hpp only reads this (its copy of the parent's memory) and never allocates.
//
// Also the parent <-> init sync protocol (one fixed-size message per SOCK_SEQPACKET packet).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <linux/filter.h>
#include <memory>
#include <optional>
#include <sched.h>
#include <span>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <unistd.h>
#include <vector>

#include <katana/config.hpp>
#include <katana/container/capabilities.hpp>
#include <katana/container/mount_plan.hpp>
#include <katana/container/seccomp.hpp>
#include <katana/container/syscalls.hpp>
#include <katana/core/error.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/try.hpp>
#include <katana/core/unique_fd.hpp>
#include <katana/oci/names.hpp>
#include <katana/oci/spec.hpp>

namespace katana::inline v0::container {

// ---- sync protocol ----------------------------------------------------------------------------

enum class sync_type : std::uint32_t {
  idmap_request = 1,  // init -> parent: write uid_map/gid_map of the sender (stage 1)
  idmap_done,         // parent -> init
  child_pid,          // init -> parent: value = pid of the container init (stage 2)
  go,                 // parent -> init: cgroups joined; SCM_RIGHTS carries the hook state fds
  hooks_request,      // init -> parent: run prestart + createRuntime hooks now
  hooks_done,         // parent -> init
  created,            // init -> parent: blocked on the exec FIFO (create)
  error,              // init -> parent: value = errno, step/what/path say where
};

/// One packet. `what` is a short static description ("mount"), `path` the object.
struct sync_message {
  sync_type type{};
  std::int32_t value = 0;
  char what[96]{};
  char path[400]{};
};

// ---- plan structs read by the post-fork code ----------------------------------------------------

struct mount_step {
  mount_kind kind;
  const char* source;
  const char* destination;  // relative to the rootfs
  const char* fstype;       // nullptr for binds
  const char* data;         // nullptr when empty
  unsigned long flags;
  bool recursive;
  bool file;
  bool remount;
  bool sysfs_fallback;
  std::span<const unsigned long> propagation;
  std::uint64_t attr_set;
  std::uint64_t attr_clr;
  const char* cgroup_controllers;  // cgroup_bind: the /proc/self/cgroup key ("" for cgroup2)
  const char* cgroup_root;         // cgroup_bind: the host mount's root in the hierarchy
};

struct device_step {
  const char* path;  // relative to the rootfs
  const char* host_path;
  mode_t mode;
  dev_t dev;
  uid_t uid;
  gid_t gid;
};

struct symlink_step {
  const char* target;
  const char* path;  // relative to the rootfs
};

struct sysctl_step {
  const char* path;  // "proc/sys/net/ipv4/ip_forward", relative to the container's root
  const char* value;
};

struct rlimit_step {
  int resource;
  std::uint64_t soft;
  std::uint64_t hard;
};

struct hook_step {
  const char* path;
  const char* const* argv;
  const char* const* envp;
  int timeout;  // seconds, 0: none
};

struct ns_join {
  int fd;
  int type;  // CLONE_NEW*
};

/// The init's whole program.
struct init_config {
  int sync_fd = -1;
  int stdio[3] = {-1, -1, -1};  // descriptors to become the process's 0, 1, 2 (-1: inherit)
  // namespaces: joined in order (a user namespace first), then created
  std::span<const ns_join> joins;
  int unshare_flags = 0;  // CLONE_NEW* except user and cgroup
  bool new_user = false;
  bool new_cgroup = false;
  // rootfs (create/run only)
  bool setup_rootfs = false;
  const char* rootfs = nullptr;  // canonical host path
  unsigned long root_propagation = MS_SLAVE | MS_REC;
  unsigned long rootfs_propagation = 0;  // linux.rootfsPropagation, applied to the new root
  // The mount holding the rootfs, made private before the rootfs is bound onto itself when
  // "/" is made shared (runc's rootfsParentMountPrivate): pivot_root refuses a shared parent,
  // and the bind must not propagate to the host. nullptr: left alone.
  const char* rootfs_parent_mount = nullptr;
  std::span<const mount_step> mounts;
  bool setup_dev = false;
  std::span<const device_step> devices;
  bool bind_devices = false;
  std::span<const symlink_step> symlinks;
  bool readonly_root = false;
  std::span<const char* const> masked_paths;
  std::span<const char* const> readonly_paths;
  const char* hostname = nullptr;
  const char* domainname = nullptr;
  std::span<const sysctl_step> sysctls;
  // process
  uid_t uid = 0;
  gid_t gid = 0;
  std::span<const gid_t> groups;
  bool set_groups = true;  // false when setgroups is denied (rootless user namespace)
  int umask = -1;
  bool set_caps = false;
  capability_masks caps;
  std::span<const rlimit_step> rlimits;
  bool no_new_privileges = false;
  const char* oom_score_adj = nullptr;
  long personality = -1;
  const char* cwd = "/";
  const char* const* argv = nullptr;
  const char* const* envp = nullptr;
  std::span<const char* const> exec_candidates;  // PATH lookup results, tried in order
  const sock_fprog* seccomp = nullptr;
  unsigned long seccomp_flags = 0;
  int seccomp_listener = -1;  // connected to linux.seccomp.listenerPath (SCMP_ACT_NOTIFY)
  // terminal
  bool terminal = false;
  int console_socket = -1;
  unsigned short rows = 0;
  unsigned short cols = 0;
  // create: wait on the exec FIFO (an O_PATH fd) before exec; -1 for run and exec
  int exec_fifo = -1;
  std::span<const hook_step> create_container_hooks;
  std::span<const hook_step> start_container_hooks;
};

// ---- preparation (parent side) -----------------------------------------------------------------

/// Owns every string and array an init_config points to; addresses never move.
class string_arena {
 public:
  const char* add(std::string_view s) {
    auto p = std::make_unique<char[]>(s.size() + 1);
    std::memcpy(p.get(), s.data(), s.size());
    p[s.size()] = '\0';
    strings_.push_back(std::move(p));
    return strings_.back().get();
  }
  const char* add_or_null(std::string_view s) { return s.empty() ? nullptr : add(s); }
  /// A NULL-terminated array of copies of `items`.
  const char* const* add_array(const std::vector<std::string>& items) {
    auto a = std::make_unique<const char*[]>(items.size() + 1);
    for (std::size_t i = 0; i < items.size(); ++i) {
      a[i] = add(items[i]);
    }
    a[items.size()] = nullptr;
    arrays_.push_back(std::move(a));
    return arrays_.back().get();
  }

 private:
  std::vector<std::unique_ptr<char[]>> strings_;
  std::vector<std::unique_ptr<const char*[]>> arrays_;
};

/// How the init is started.
enum class launch_mode {
  create,  // full setup, then wait on the exec FIFO
  run,     // full setup, exec at once
  exec,    // join an existing container's namespaces, no rootfs setup (runc exec)
};

struct prepare_options {
  launch_mode mode = launch_mode::run;
  std::filesystem::path bundle;
  std::filesystem::path rootfs;  // canonical; empty for exec
  int join_pid = 0;              // exec: the container init whose namespaces are joined
  int exec_fifo = -1;            // create: O_PATH fd of <state dir>/exec.fifo
  int console_socket = -1;       // terminal: connected --console-socket
  int seccomp_listener = -1;     // connected linux.seccomp.listenerPath
  int stdio[3] = {-1, -1, -1};   // the process's stdin/stdout/stderr (-1: the caller's)
  /// The mount point holding `rootfs`, for a shared rootfsPropagation (mount_point_of).
  std::filesystem::path rootfs_mount;
  host_facts host;
};

/// The default PATH when the process environment has none (runc's).
inline constexpr std::string_view default_path =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// execvp's candidates for args[0] under the process's PATH, in the container's view (the
/// init tries them after pivot_root).
inline std::vector<std::string> exec_candidates(const std::string& arg0,
                                                const std::vector<std::string>& env) {
  if (arg0.find('/') != std::string::npos) {
    return {arg0};
  }
  std::string_view path = default_path;
  for (const std::string& e : env) {
    if (e.starts_with("PATH=")) {
      path = std::string_view(e).substr(5);
    }
  }
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos <= path.size()) {
    const std::size_t colon = path.find(':', pos);
    const std::size_t end = colon == std::string_view::npos ? path.size() : colon;
    std::string_view dir = path.substr(pos, end - pos);
    if (dir.empty()) {
      dir = ".";
    }
    out.push_back(str_cat(dir, dir.ends_with('/') ? "" : "/", arg0));
    pos = end + 1;
  }
  return out;
}

/// "net.ipv4.ip_forward" -> "proc/sys/net/ipv4/ip_forward".
inline std::string sysctl_path(std::string_view key) {
  std::string p = "proc/sys/";
  for (const char c : key) {
    p += c == '.' ? '/' : c;
  }
  return p;
}

/// The prepared init: an init_config plus everything it points to. Not movable (the config
/// points into it); held by unique_ptr.
class prepared_init {
 public:
  prepared_init() = default;
  prepared_init(const prepared_init&) = delete;
  prepared_init& operator=(const prepared_init&) = delete;

  init_config config;
  rootfs_plan plan;            // kept for inspection and tests
  std::vector<unique_fd> fds;  // namespace fds to join
  std::optional<seccomp_program> seccomp;
  std::string uid_map;  // written by the parent to /proc/<pid>/uid_map (new user namespace)
  std::string gid_map;

 private:
  friend result<std::unique_ptr<prepared_init>> prepare_init(const oci::spec&,
                                                             const prepare_options&);
  string_arena strings_;
  std::vector<ns_join> joins_;
  std::vector<mount_step> mounts_;
  std::vector<std::vector<unsigned long>> propagation_;
  std::vector<device_step> devices_;
  std::vector<symlink_step> symlinks_;
  std::vector<const char*> masked_;
  std::vector<const char*> readonly_;
  std::vector<sysctl_step> sysctls_;
  std::vector<gid_t> groups_;
  std::vector<rlimit_step> rlimits_;
  std::vector<const char*> candidates_;
  std::vector<hook_step> create_container_hooks_;
  std::vector<hook_step> start_container_hooks_;
  sock_fprog seccomp_prog_{};
};

namespace detail {
inline void add_hooks(string_arena& arena,
                      const std::vector<oci::hook>& hooks,
                      std::vector<hook_step>& out) {
  for (const oci::hook& h : hooks) {
    std::vector<std::string> args = h.args;
    if (args.empty()) {
      args.push_back(h.path);
    }
    out.push_back(
        {arena.add(h.path), arena.add_array(args), arena.add_array(h.env), h.timeout.value_or(0)});
  }
}
}  // namespace detail

/// Spec -> prepared init. Opens the namespace files to join (kept in `fds`).
inline result<std::unique_ptr<prepared_init>> prepare_init(const oci::spec& spec,
                                                           const prepare_options& opt) {
  if (!spec.process) {
    return fail(errc::invalid_spec, "process: required");
  }
  const oci::process& proc = *spec.process;
  if (proc.args.empty()) {
    return fail(errc::invalid_spec, "process.args: must not be empty");
  }
  auto out = std::make_unique<prepared_init>();
  prepared_init& p = *out;
  init_config& c = p.config;
  string_arena& a = p.strings_;
  const oci::linux_spec empty_linux;
  const oci::linux_spec& lx = spec.linux_ ? *spec.linux_ : empty_linux;

  // namespaces
  bool has_uts = false;
  for (const oci::linux_namespace& ns : lx.namespaces) {
    auto type = oci::parse_namespace_type(ns.type);
    if (!type) {
      return fail(errc::invalid_spec, "linux.namespaces: unknown type " + ns.type);
    }
    const int flag = static_cast<int>(oci::clone_flag(*type));
    has_uts = has_uts || *type == oci::namespace_type::uts;
    std::string path = ns.path;
    if (opt.mode == launch_mode::exec) {
      path = str_cat("/proc/", opt.join_pid, "/ns/", oci::proc_ns_name(*type));
    }
    if (!path.empty()) {
      unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
      if (!fd) {
        return fail_errno(str_cat("open ", ns.type, " namespace ", path));
      }
      const ns_join j{fd.get(), flag};
      if (*type == oci::namespace_type::user) {
        p.joins_.insert(p.joins_.begin(), j);
      } else {
        p.joins_.push_back(j);
      }
      p.fds.push_back(std::move(fd));
    } else if (*type == oci::namespace_type::user) {
      c.new_user = true;
    } else if (*type == oci::namespace_type::cgroup) {
      c.new_cgroup = true;
    } else {
      c.unshare_flags |= flag;
    }
  }
  c.joins = p.joins_;
  if (c.new_user) {
    for (const oci::linux_id_mapping& m : lx.uid_mappings) {
      p.uid_map += str_cat(m.container_id, " ", m.host_id, " ", m.size, "\n");
    }
    for (const oci::linux_id_mapping& m : lx.gid_mappings) {
      p.gid_map += str_cat(m.container_id, " ", m.host_id, " ", m.size, "\n");
    }
    if (p.uid_map.empty() || p.gid_map.empty()) {
      return fail(errc::invalid_spec, "a new user namespace needs uidMappings and gidMappings");
    }
  }

  // rootfs
  if (opt.mode != launch_mode::exec) {
    if (opt.rootfs.empty()) {
      return fail(errc::invalid_spec, "root.path: required");
    }
    if ((c.unshare_flags & CLONE_NEWNS) == 0) {
      return fail(errc::unsupported, "a container without its own mount namespace");
    }
    c.setup_rootfs = true;
    c.rootfs = a.add(opt.rootfs.native());
    if (!lx.rootfs_propagation.empty()) {
      auto prop = oci::propagation_flags(lx.rootfs_propagation);
      if (!prop) {
        return fail(errc::invalid_spec, "linux.rootfsPropagation: " + lx.rootfs_propagation);
      }
      c.rootfs_propagation = static_cast<unsigned long>(*prop);
      // runc: the propagation of "/" is what the container asks for, except that shared
      // mounts must not leak back: shared ones start as rslave... but rshared stays rshared.
      c.root_propagation = static_cast<unsigned long>(*prop) | MS_REC;
      if ((c.root_propagation & MS_SHARED) != 0) {
        c.root_propagation = MS_SHARED | MS_REC;
        c.rootfs_parent_mount =
            opt.rootfs_mount.empty() ? nullptr : a.add(opt.rootfs_mount.native());
      }
    }
    host_facts facts = opt.host;
    facts.new_cgroupns = c.new_cgroup || facts.new_cgroupns;
    facts.new_userns = c.new_user;
    p.plan = KATANA_TRY(build_rootfs_plan(spec, opt.bundle, facts));
    p.propagation_.reserve(p.plan.mounts.size());
    for (const planned_mount& m : p.plan.mounts) {
      p.propagation_.push_back(m.propagation);
      p.mounts_.push_back({m.kind, a.add(m.source), a.add(m.destination), a.add_or_null(m.fstype),
                           a.add_or_null(m.data), m.flags, m.recursive, m.file, m.remount,
                           m.sysfs_fallback, p.propagation_.back(), m.attr_set, m.attr_clr,
                           m.cgroup_controllers.empty() ? "" : a.add(m.cgroup_controllers),
                           m.cgroup_root.empty() ? "/" : a.add(m.cgroup_root)});
    }
    c.mounts = p.mounts_;
    c.setup_dev = p.plan.setup_dev;
    for (const planned_device& d : p.plan.devices) {
      p.devices_.push_back({a.add(d.path), a.add(d.host_path), d.mode, d.dev, d.uid, d.gid});
    }
    c.devices = p.devices_;
    c.bind_devices = c.new_user;
    for (const planned_symlink& s : p.plan.symlinks) {
      p.symlinks_.push_back({a.add(s.target), a.add(s.path)});
    }
    c.symlinks = p.symlinks_;
    c.readonly_root = spec.root && spec.root->readonly;
    for (const std::string& m : lx.masked_paths) {
      p.masked_.push_back(a.add(m));
    }
    for (const std::string& r : lx.readonly_paths) {
      p.readonly_.push_back(a.add(r));
    }
    c.masked_paths = p.masked_;
    c.readonly_paths = p.readonly_;
    if (!spec.hostname.empty() || !spec.domainname.empty()) {
      if (!has_uts) {
        return fail(errc::invalid_spec, "hostname/domainname need a uts namespace");
      }
      c.hostname = a.add_or_null(spec.hostname);
      c.domainname = a.add_or_null(spec.domainname);
    }
    for (const auto& [key, value] : lx.sysctl) {
      p.sysctls_.push_back({a.add(sysctl_path(key)), a.add(value)});
    }
    c.sysctls = p.sysctls_;
    if (lx.personality) {
      auto domain = oci::personality_domain(lx.personality->domain);
      if (!domain) {
        return fail(errc::invalid_spec, "linux.personality.domain: " + lx.personality->domain);
      }
      if (!lx.personality->flags.empty()) {
        return fail(errc::unsupported, "linux.personality.flags");
      }
      c.personality = static_cast<long>(*domain);
    }
    detail::add_hooks(a, spec.hooks ? spec.hooks->create_container : std::vector<oci::hook>{},
                      p.create_container_hooks_);
    c.create_container_hooks = p.create_container_hooks_;
  }
  if (spec.hooks && opt.mode != launch_mode::exec) {
    detail::add_hooks(a, spec.hooks->start_container, p.start_container_hooks_);
    c.start_container_hooks = p.start_container_hooks_;
  }

  // process
  c.uid = proc.user.uid;
  c.gid = proc.user.gid;
  p.groups_.assign(proc.user.additional_gids.begin(), proc.user.additional_gids.end());
  c.groups = p.groups_;
  c.set_groups = !c.new_user || ::geteuid() == 0;
  if (proc.user.umask) {
    c.umask = static_cast<int>(*proc.user.umask & 0777);
  }
  if (proc.capabilities) {
    c.set_caps = true;
    c.caps = KATANA_TRY(capability_sets(*proc.capabilities));
  }
  for (const oci::posix_rlimit& r : proc.rlimits) {
    auto res = oci::rlimit_resource(r.type);
    if (!res) {
      return fail(errc::invalid_spec, "process.rlimits: unknown type " + r.type);
    }
    p.rlimits_.push_back({*res, r.soft, r.hard});
  }
  c.rlimits = p.rlimits_;
  c.no_new_privileges = proc.no_new_privileges;
  if (proc.oom_score_adj) {
    c.oom_score_adj = a.add(std::to_string(*proc.oom_score_adj));
  }
  if (proc.cwd.empty() || proc.cwd.front() != '/') {
    return fail(errc::invalid_spec, "process.cwd: must be an absolute path");
  }
  c.cwd = a.add(proc.cwd);
  c.argv = a.add_array(proc.args);
  c.envp = a.add_array(proc.env);
  for (const std::string& cand : exec_candidates(proc.args.front(), proc.env)) {
    p.candidates_.push_back(a.add(cand));
  }
  c.exec_candidates = p.candidates_;
  if (lx.seccomp) {
    p.seccomp = KATANA_TRY(build_seccomp(*lx.seccomp));
    p.seccomp_prog_ = p.seccomp->prog();
    c.seccomp = &p.seccomp_prog_;
    c.seccomp_flags = p.seccomp->flags;
    c.seccomp_listener = opt.seccomp_listener;
  }
  c.terminal = proc.terminal;
  if (proc.terminal && opt.console_socket < 0) {
    return fail(errc::invalid_argument,
                "cannot allocate a pseudo-TTY without setting a console socket");
  }
  c.console_socket = proc.terminal ? opt.console_socket : -1;
  if (proc.console_size) {
    c.rows = static_cast<unsigned short>(proc.console_size->height);
    c.cols = static_cast<unsigned short>(proc.console_size->width);
  }
  for (int i = 0; i < 3; ++i) {
    c.stdio[i] = opt.stdio[i];
  }
  c.exec_fifo = opt.mode == launch_mode::create ? opt.exec_fifo : -1;
  if (opt.mode == launch_mode::create && opt.exec_fifo < 0) {
    return fail(errc::invalid_argument, "create needs the exec FIFO");
  }
  return out;
}

}  // namespace katana::inline v0::container
