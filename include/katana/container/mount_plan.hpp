// The ordered mount plan of a container: spec mounts -> what init mounts, where, with which
// flags, plus the /dev contents (default devices, linux.devices, symlinks). Pure builders:
// facts about the host (is a bind source a directory, is the host on cgroup v2) come in as
// arguments or through one small probe, so tests can build plans without I/O.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <vector>

#include <katana/cgroup/mountinfo.hpp>
#include <katana/config.hpp>
#include <katana/container/mount_options.hpp>
#include <katana/core/error.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/try.hpp>
#include <katana/oci/spec.hpp>

namespace katana::inline v0::container {

enum class mount_kind : std::uint8_t {
  filesystem,   // mount(source, target, fstype, flags, data)
  bind,         // mount(source, target, NULL, MS_BIND[|MS_REC]) (+ a remount for the flags)
  cgroup_bind,  // a bind of the init's own cgroup in the hierarchy mounted at `source`, found
                // in /proc/self/cgroup by the init (runc without a cgroup namespace)
  symlink,      // symlink `destination` -> `source` (co-mounted v1 controllers: cpu -> cpu,cpuacct)
  remount,      // bind-remount `destination` with `flags` (the read-only cgroup tmpfs)
};

/// One step of the plan, in the order init performs them.
struct planned_mount {
  mount_kind kind = mount_kind::filesystem;
  std::string source;       // fs source ("proc"), or an absolute host path for binds
  std::string destination;  // inside the rootfs, lexically cleaned, relative: "dev/pts"
  std::string fstype;       // empty for binds
  std::string data;
  unsigned long flags = 0;      // MS_* besides MS_BIND/MS_REC/MS_REMOUNT
  bool recursive = false;       // rbind
  bool file = false;            // the bind source is not a directory: the mount point is a file
  bool remount = false;         // bind: remount with `flags` afterwards (ro, nosuid, ...)
  bool sysfs_fallback = false;  // sysfs refused (no netns, user ns): rbind the host's /sys
  std::vector<unsigned long> propagation;
  std::uint64_t attr_set = 0;  // recursive mount_setattr
  std::uint64_t attr_clr = 0;
  // cgroup_bind: the hierarchy's key in /proc/self/cgroup ("memory", "cpu,cpuacct",
  // "name=systemd"; empty for cgroup2) and the root of its host mount ("/" usually).
  std::string cgroup_controllers;
  std::string cgroup_root;
  bool operator==(const planned_mount&) const = default;
};

/// A device node to create (or, in a user namespace, to bind from the host).
struct planned_device {
  std::string path;       // relative to the rootfs: "dev/null"
  std::string host_path;  // "/dev/null": the bind source in a user namespace
  mode_t mode = 0;        // S_IFCHR | 0666 ...
  dev_t dev = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  bool operator==(const planned_device&) const = default;
};

struct planned_symlink {
  std::string target;  // the link's body
  std::string path;    // relative to the rootfs
  bool operator==(const planned_symlink&) const = default;
};

/// The rootfs part of the plan.
struct rootfs_plan {
  std::vector<planned_mount> mounts;
  bool setup_dev = false;  // the runtime populates /dev (it is not a bind mount)
  std::vector<planned_device> devices;
  std::vector<planned_symlink> symlinks;
  bool operator==(const rootfs_plan&) const = default;
};

/// One cgroup hierarchy of the host, mounted at or directly below /sys/fs/cgroup.
struct cgroup_hierarchy {
  std::string mount_point;  // "/sys/fs/cgroup/cpu,cpuacct", or "/sys/fs/cgroup" when unified
  std::string root;         // the mount's root in the hierarchy (mountinfo field 4)
  bool v2 = false;          // cgroup2
  std::string controllers;  // "cpu,cpuacct", "name=systemd" (the /proc/self/cgroup key); v1 only
  bool operator==(const cgroup_hierarchy&) const = default;
};

/// What the plan builder needs to know about the host.
struct host_facts {
  bool cgroup2 = true;  // /sys/fs/cgroup is cgroup2 (unified)
  /// The hierarchies an OCI cgroup mount exposes (cgroup_hierarchies_of(mountinfo)); empty:
  /// unknown, and a cgroup mount binds the host's /sys/fs/cgroup (or mounts cgroup2).
  std::vector<cgroup_hierarchy> cgroups;
  bool new_cgroupns = false;
  bool new_userns = false;  // devices are bound from the host instead of mknod'ed
  /// Whether a bind source is a directory; errors (missing source) propagate. Defaults to
  /// std::filesystem::is_directory (following symlinks, as mount(2) does).
  std::function<result<bool>(const std::string&)> is_directory;
};

/// "/a/./b/../c/" -> "a/c": lexical, never above the root. Symlinks are left to the scoped
/// resolution at mount time.
inline std::string clean_destination(std::string_view path) {
  std::vector<std::string_view> parts;
  std::size_t pos = 0;
  while (pos <= path.size()) {
    const std::size_t slash = path.find('/', pos);
    const std::size_t end = slash == std::string_view::npos ? path.size() : slash;
    const std::string_view part = path.substr(pos, end - pos);
    if (part == "..") {
      if (!parts.empty()) {
        parts.pop_back();
      }
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    pos = end + 1;
  }
  std::string out;
  for (const std::string_view p : parts) {
    if (!out.empty()) {
      out += '/';
    }
    out += p;
  }
  return out;
}

inline result<bool> host_is_directory(const std::string& path) {
  std::error_code ec;
  const auto st = std::filesystem::status(path, ec);
  if (ec) {
    return fail_errno("stat bind source " + path, ec.value());
  }
  return std::filesystem::is_directory(st);
}

namespace detail {
/// Whether a cgroup v1 super option names a controller (or the hierarchy: "name=systemd")
/// rather than a flag of cgroup1_show_options.
inline bool names_cgroup_controller(std::string_view option) {
  static constexpr std::string_view flags[] = {
      "rw", "ro", "none", "noprefix", "clone_children", "xattr", "cpuset_v2_mode", "favordynmods",
  };
  return !option.starts_with("release_agent=") &&
         std::find(std::begin(flags), std::end(flags), option) == std::end(flags);
}
}  // namespace detail

/// The hierarchies below `cgroup_root` in parsed mountinfo: the cgroup2 root itself on a unified
/// host, else every v1 hierarchy (and a hybrid host's cgroup2 mount) directly below it, once
/// each (the first mount of a hierarchy wins, as for runc's GetCgroupMounts).
inline std::vector<cgroup_hierarchy> cgroup_hierarchies_of(
    const std::vector<cgroup::mount_entry>& mounts,
    std::string_view cgroup_root = "/sys/fs/cgroup") {
  std::vector<cgroup_hierarchy> out;
  for (const cgroup::mount_entry& m : mounts) {
    const bool v2 = m.fs_type == "cgroup2";
    if (!v2 && m.fs_type != "cgroup") {
      continue;
    }
    if (v2 && m.mount_point == cgroup_root) {
      return {{m.mount_point, m.root, true, {}}};  // unified: nothing else counts
    }
    const auto slash = m.mount_point.rfind('/');
    if (slash == std::string::npos ||
        std::string_view(m.mount_point).substr(0, slash) != cgroup_root) {
      continue;
    }
    cgroup_hierarchy h{m.mount_point, m.root, v2, {}};
    for (const std::string& o : m.super_options) {
      if (v2 || !detail::names_cgroup_controller(o)) {
        continue;
      }
      h.controllers += str_cat(h.controllers.empty() ? "" : ",", o);
    }
    if (!v2 && h.controllers.empty()) {
      continue;
    }
    const bool seen = std::any_of(out.begin(), out.end(), [&](const cgroup_hierarchy& e) {
      return e.v2 == h.v2 && e.controllers == h.controllers;
    });
    if (!seen) {
      out.push_back(std::move(h));
    }
  }
  return out;
}

/// A spec cgroup mount, as runc does it. With a cgroup namespace the container's cgroup is the
/// root of its view: cgroup2 is mounted (unified host), or a tmpfs holding each v1 hierarchy
/// mounted afresh (and the hybrid host's cgroup2). Without one, the init binds its own cgroup
/// directory of each hierarchy instead. Co-mounted controllers get symlinks (cpu ->
/// cpu,cpuacct); a read-only mount makes the tmpfs read-only once it is filled.
inline std::vector<planned_mount> plan_cgroup_mounts(planned_mount base, const host_facts& host) {
  base.data.clear();
  base.flags &= ~static_cast<unsigned long>(MS_BIND | MS_REC | MS_REMOUNT);
  base.recursive = base.remount = base.file = base.sysfs_fallback = false;
  const auto one = [&](const cgroup_hierarchy& h, std::string destination) {
    planned_mount p = base;
    p.destination = std::move(destination);
    if (host.new_cgroupns) {
      p.kind = mount_kind::filesystem;
      p.fstype = h.v2 ? "cgroup2" : "cgroup";
      p.source = p.fstype;
      p.data = h.controllers;
      return p;
    }
    p.kind = mount_kind::cgroup_bind;
    p.source = h.mount_point;
    p.recursive = true;
    p.remount = p.flags != 0;
    p.cgroup_controllers = h.controllers;
    p.cgroup_root = h.root;
    return p;
  };
  if (host.cgroups.size() == 1 && host.cgroups.front().v2) {
    return {one(host.cgroups.front(), base.destination)};  // unified
  }
  std::vector<planned_mount> out;
  planned_mount tmpfs = base;
  tmpfs.kind = mount_kind::filesystem;
  tmpfs.fstype = "tmpfs";
  tmpfs.source = "tmpfs";
  tmpfs.data = "mode=755";
  tmpfs.flags = MS_NOSUID | MS_NOEXEC | MS_NODEV;
  out.push_back(tmpfs);
  for (const cgroup_hierarchy& h : host.cgroups) {
    const std::string name = h.mount_point.substr(h.mount_point.rfind('/') + 1);
    out.push_back(one(h, str_cat(base.destination, "/", name)));
  }
  for (const cgroup_hierarchy& h : host.cgroups) {
    const std::string name = h.mount_point.substr(h.mount_point.rfind('/') + 1);
    if (name.find(',') == std::string::npos) {
      continue;
    }
    std::size_t pos = 0;
    while (pos <= name.size()) {
      const std::size_t comma = std::min(name.find(',', pos), name.size());
      planned_mount l;
      l.kind = mount_kind::symlink;
      l.source = name;
      l.destination = str_cat(base.destination, "/", name.substr(pos, comma - pos));
      out.push_back(std::move(l));
      pos = comma + 1;
    }
  }
  if ((base.flags & MS_RDONLY) != 0) {
    planned_mount ro;
    ro.kind = mount_kind::remount;
    ro.destination = base.destination;
    ro.flags = tmpfs.flags | MS_RDONLY;
    out.push_back(std::move(ro));
  }
  return out;
}

/// One spec mount -> one planned mount.
inline result<planned_mount> plan_mount(const oci::mount& m,
                                        const std::filesystem::path& bundle,
                                        const host_facts& host) {
  const std::string what = "mount " + m.destination;
  mount_options o = KATANA_TRY(parse_mount_options(m.options), what);
  if (!m.uid_mappings.empty() || !m.gid_mappings.empty()) {
    return fail(errc::unsupported, what + ": idmapped mounts (uidMappings/gidMappings)");
  }
  planned_mount p;
  p.destination = clean_destination(m.destination);
  if (p.destination.empty()) {
    return fail(errc::invalid_spec, what + ": cannot mount over the container's root");
  }
  p.propagation = std::move(o.propagation);
  p.attr_set = o.attr_set;
  p.attr_clr = o.attr_clr;
  p.data = std::move(o.data);
  const bool bind = m.type == "bind" || o.bind();
  if (bind) {
    p.kind = mount_kind::bind;
    p.recursive = o.recursive();
    p.flags = o.flags & ~static_cast<unsigned long>(MS_BIND | MS_REC | MS_REMOUNT);
    p.remount = p.flags != 0;
    std::filesystem::path src(m.source);
    if (src.is_relative()) {
      src = bundle / src;
    }
    p.source = src.lexically_normal().native();
    const auto& is_dir = host.is_directory ? host.is_directory : host_is_directory;
    p.file = !KATANA_TRY(is_dir(p.source), what);
    return p;
  }
  if (m.type == "cgroup" || m.type == "cgroup2") {
    if (host.cgroup2 && host.new_cgroupns) {
      p.kind = mount_kind::filesystem;
      p.fstype = "cgroup2";
      p.source = "cgroup2";
      p.flags = o.flags & ~static_cast<unsigned long>(MS_REMOUNT);
      p.data.clear();
      return p;
    }
    // Without a cgroup namespace (or on v1) the container sees the host's hierarchy through a
    // recursive bind, kept read-only when asked.
    p.kind = mount_kind::bind;
    p.source = "/sys/fs/cgroup";
    p.recursive = true;
    p.flags = o.flags & ~static_cast<unsigned long>(MS_BIND | MS_REC | MS_REMOUNT);
    p.remount = p.flags != 0;
    p.data.clear();
    return p;
  }
  if (m.type.empty()) {
    return fail(errc::invalid_spec, what + ": no type (and not a bind mount)");
  }
  p.kind = mount_kind::filesystem;
  p.fstype = m.type;
  p.source = m.source.empty() ? m.type : m.source;
  p.flags = o.flags;
  p.sysfs_fallback = m.type == "sysfs";
  return p;
}

/// runc's default devices, created when the runtime populates /dev.
inline std::vector<planned_device> default_devices() {
  const auto dev = [](std::string_view name, unsigned major, unsigned minor) {
    planned_device d;
    d.path = str_cat("dev/", name);
    d.host_path = str_cat("/dev/", name);
    d.mode = S_IFCHR | 0666;
    d.dev = makedev(major, minor);
    return d;
  };
  return {dev("null", 1, 3),   dev("zero", 1, 5),    dev("full", 1, 7),
          dev("random", 1, 8), dev("urandom", 1, 9), dev("tty", 5, 0)};
}

/// A linux.devices entry.
inline result<planned_device> plan_device(const oci::linux_device& d) {
  planned_device p;
  p.path = clean_destination(d.path);
  if (p.path.empty()) {
    return fail(errc::invalid_spec, "linux.devices: empty path");
  }
  p.host_path = "/" + p.path;
  mode_t type = 0;
  if (d.type == "c" || d.type == "u") {
    type = S_IFCHR;
  } else if (d.type == "b") {
    type = S_IFBLK;
  } else if (d.type == "p") {
    type = S_IFIFO;
  } else {
    return fail(errc::invalid_spec, "linux.devices " + d.path + ": unknown type " + d.type);
  }
  if (d.major < 0 || d.minor < 0 || d.major > 0xfff || d.minor > 0xfffff) {
    return fail(errc::invalid_spec, "linux.devices " + d.path + ": major/minor out of range");
  }
  p.mode = type | static_cast<mode_t>(d.file_mode.value_or(0666) & 07777);
  p.dev = makedev(static_cast<unsigned>(d.major), static_cast<unsigned>(d.minor));
  p.uid = d.uid.value_or(0);
  p.gid = d.gid.value_or(0);
  return p;
}

/// The /dev symlinks runc creates (/dev/fd, stdio, and /dev/ptmx -> pts/ptmx).
inline std::vector<planned_symlink> default_dev_symlinks() {
  return {{"/proc/self/fd", "dev/fd"},
          {"/proc/self/fd/0", "dev/stdin"},
          {"/proc/self/fd/1", "dev/stdout"},
          {"/proc/self/fd/2", "dev/stderr"},
          {"pts/ptmx", "dev/ptmx"}};
}

/// Spec -> rootfs plan: the mounts in spec order, then /dev when the runtime owns it.
inline result<rootfs_plan> build_rootfs_plan(const oci::spec& spec,
                                             const std::filesystem::path& bundle,
                                             const host_facts& host) {
  rootfs_plan plan;
  bool dev_is_bind = false;
  for (const oci::mount& m : spec.mounts) {
    planned_mount p = KATANA_TRY(plan_mount(m, bundle, host));
    if ((m.type == "cgroup" || m.type == "cgroup2") && !host.cgroups.empty()) {
      for (planned_mount& c : plan_cgroup_mounts(std::move(p), host)) {
        plan.mounts.push_back(std::move(c));
      }
      continue;
    }
    if (p.destination == "dev" && p.kind == mount_kind::bind) {
      dev_is_bind = true;
    }
    plan.mounts.push_back(std::move(p));
  }
  plan.setup_dev = !dev_is_bind;
  if (plan.setup_dev) {
    plan.devices = default_devices();
    plan.symlinks = default_dev_symlinks();
  }
  if (spec.linux_) {
    for (const oci::linux_device& d : spec.linux_->devices) {
      planned_device p = KATANA_TRY(plan_device(d));
      std::erase_if(plan.devices, [&](const planned_device& e) { return e.path == p.path; });
      plan.devices.push_back(std::move(p));
    }
  }
  return plan;
}

/// Whether `destination` (relative, cleaned) lies below an earlier mount of the plan, i.e. its
/// mount point can only be created once that mount is in place (inside the container).
inline bool covered_by_earlier_mount(const rootfs_plan& plan, std::size_t index) {
  const std::string& d = plan.mounts[index].destination;
  for (std::size_t i = 0; i < index; ++i) {
    if (plan.mounts[i].kind == mount_kind::symlink || plan.mounts[i].kind == mount_kind::remount) {
      continue;
    }
    const std::string& e = plan.mounts[i].destination;
    if (d.size() > e.size() && d.compare(0, e.size(), e) == 0 && d[e.size()] == '/') {
      return true;
    }
  }
  return false;
}

}  // namespace katana::inline v0::container
