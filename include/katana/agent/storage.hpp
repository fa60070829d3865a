// Storages (agent.proto's Storage): what the runtime asks the agent to mount in the guest
// before a container (or the sandbox) uses it. Drivers: 9p, virtio-fs, blk (a PCI path),
// mmioblk, scsi, nvdimm, ephemeral (tmpfs), local (a directory) and overlayfs. Mounts go
// through a `mounter` policy so tests can record them.
#pragma once

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <sys/mount.h>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>
#include <utility>
#include <vector>

#include <katana/agent/devices.hpp>
#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/try.hpp>
#include <katana/ttrpc/asio.hpp>

namespace katana::inline v0::agent {

/// agent.proto's Storage.
struct storage {
  std::string driver;
  std::vector<std::string> driver_options;
  std::string source;
  std::string fstype;
  std::vector<std::string> options;
  std::string mount_point;
  bool shared = false;
  std::optional<std::uint32_t> fs_group;  // FSGroup.group_id
  bool operator==(const storage&) const = default;
};

inline constexpr std::string_view storage_handlers[] = {
    "9p", "virtio-fs", "blk", "mmioblk", "scsi", "nvdimm", "ephemeral", "local", "overlayfs"};

// clang-format off
/// mount(2) and umount2(2), as a policy.
template <class M>
concept mounter = requires(M& m, const std::string& s, unsigned long flags, int i) {
  { m.mount(s, s, s, flags, s) } -> std::same_as<status>;
  { m.umount(s, i) } -> std::same_as<status>;
};
// clang-format on

struct linux_mounter {
  status mount(const std::string& source,
               const std::string& target,
               const std::string& fstype,
               unsigned long flags,
               const std::string& data) {
    if (::mount(source.c_str(), target.c_str(), fstype.empty() ? nullptr : fstype.c_str(), flags,
                data.empty() ? nullptr : data.c_str()) != 0) {
      return fail_errno(str_cat("mount ", source, " on ", target, " (", fstype, ")"));
    }
    return {};
  }
  status umount(const std::string& target, int flags) {
    if (::umount2(target.c_str(), flags) != 0) {
      return fail_errno("umount " + target);
    }
    return {};
  }
};

/// mount(8)-style options split into flags and the filesystem's data string.
struct mount_options {
  unsigned long flags = 0;
  std::string data;
};

inline mount_options parse_mount_options(const std::vector<std::string>& options) {
  struct flag {
    std::string_view name;
    bool clear;
    unsigned long value;
  };
  static constexpr flag table[] = {
      {"ro", false, MS_RDONLY},
      {"rw", true, MS_RDONLY},
      {"nosuid", false, MS_NOSUID},
      {"suid", true, MS_NOSUID},
      {"nodev", false, MS_NODEV},
      {"dev", true, MS_NODEV},
      {"noexec", false, MS_NOEXEC},
      {"exec", true, MS_NOEXEC},
      {"sync", false, MS_SYNCHRONOUS},
      {"async", true, MS_SYNCHRONOUS},
      {"dirsync", false, MS_DIRSYNC},
      {"remount", false, MS_REMOUNT},
      {"mand", false, MS_MANDLOCK},
      {"nomand", true, MS_MANDLOCK},
      {"noatime", false, MS_NOATIME},
      {"atime", true, MS_NOATIME},
      {"nodiratime", false, MS_NODIRATIME},
      {"diratime", true, MS_NODIRATIME},
      {"bind", false, MS_BIND},
      {"rbind", false, MS_BIND | MS_REC},
      {"relatime", false, MS_RELATIME},
      {"norelatime", true, MS_RELATIME},
      {"strictatime", false, MS_STRICTATIME},
      {"defaults", false, 0},
  };
  mount_options out;
  for (const auto& o : options) {
    const auto* f = std::find_if(std::begin(table), std::end(table),
                                 [&](const flag& t) { return t.name == o; });
    if (f == std::end(table)) {
      out.data += out.data.empty() ? "" : ",";
      out.data += o;
    } else if (f->clear) {
      out.flags &= ~f->value;
    } else {
      out.flags |= f->value;
    }
  }
  return out;
}

/// An absolute path without "." or ".." components (mount points, CopyFile targets).
inline result<std::string> clean_absolute(std::string_view p, std::string_view what) {
  if (p.empty() || p.front() != '/') {
    return fail(errc::invalid_argument, str_cat(what, " \"", p, "\" is not an absolute path"));
  }
  if (p.find('\0') != std::string_view::npos) {
    return fail(errc::invalid_argument, str_cat(what, " contains a NUL byte"));
  }
  std::string out;
  std::string_view rest = p;
  while (!rest.empty()) {
    const auto slash = rest.find('/');
    const auto part = rest.substr(0, slash);
    rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
    if (part.empty() || part == ".") {
      continue;
    }
    if (part == "..") {
      return fail(errc::path_escapes_root, str_cat(what, " \"", p, "\" contains \"..\""));
    }
    out += "/";
    out += part;
  }
  return out.empty() ? std::string("/") : out;
}

namespace detail {
inline std::optional<unsigned> option_mode(const std::vector<std::string>& options) {
  for (const auto& o : options) {
    if (o.rfind("mode=", 0) == 0) {
      unsigned v = 0;
      const auto s = std::string_view(o).substr(5);
      const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 8);
      if (ec == std::errc() && p == s.data() + s.size() && v <= 07777) {
        return v;
      }
    }
  }
  return std::nullopt;
}

inline status make_dirs(const std::string& path, unsigned mode = 0755) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) {
    return fail(ec, "mkdir -p " + path);
  }
  if (mode != 0755) {
    if (::chmod(path.c_str(), static_cast<mode_t>(mode)) != 0) {
      return fail_errno("chmod " + path);
    }
  }
  return {};
}
}  // namespace detail

/// The filesystem type a storage mounts (empty for "local", which mounts nothing).
inline std::string storage_fstype(const storage& s) {
  if (s.driver == "9p") {
    return "9p";
  }
  if (s.driver == "virtio-fs") {
    return "virtiofs";
  }
  if (s.driver == "overlayfs") {
    return "overlay";
  }
  if (s.driver == "ephemeral" && s.fstype.empty()) {
    return "tmpfs";
  }
  return s.driver == "local" ? std::string() : s.fstype;
}

/// Mounts one storage; the mount point it made (for unmount), or an error that names the
/// storage. Unknown drivers are INVALID_ARGUMENT.
template <mounter M>
task<result<std::string>> mount_storage(M& m, const device_env& env, storage s) {
  const bool known = std::find(std::begin(storage_handlers), std::end(storage_handlers),
                               s.driver) != std::end(storage_handlers);
  if (!known) {
    co_return fail(errc::invalid_argument,
                   str_cat("storage \"", s.mount_point, "\": unknown driver \"", s.driver,
                           "\" (known: 9p, virtio-fs, blk, mmioblk, scsi, nvdimm, ephemeral, "
                           "local, overlayfs)"));
  }
  const auto target = KATANA_CO_TRY(clean_absolute(s.mount_point, "storage mount_point"));
  auto opts = parse_mount_options(s.options);

  if (s.driver == "local") {
    // A directory in the guest (emptyDir): created with the requested mode, nothing mounted.
    KATANA_CO_TRY(detail::make_dirs(target, detail::option_mode(s.options).value_or(0777)));
    if (s.fs_group) {
      if (::chown(target.c_str(), static_cast<uid_t>(-1), *s.fs_group) != 0) {
        co_return fail_errno("chown " + target);
      }
    }
    co_return target;
  }

  std::string source = s.source;
  const std::string fstype = storage_fstype(s);
  if (s.driver == "ephemeral") {
    if (fstype != "tmpfs" && fstype != "hugetlbfs") {
      co_return fail(errc::invalid_argument,
                     str_cat("ephemeral storage \"", target, "\": fstype \"", fstype,
                             "\" is neither tmpfs nor hugetlbfs"));
    }
    if (source.empty()) {
      source = fstype;
    }
  } else if (s.driver == "overlayfs") {
    if (source.empty()) {
      source = "overlay";
    }
    for (const auto& o : s.options) {
      for (const std::string_view key : {"upperdir=", "workdir="}) {
        if (o.rfind(key, 0) == 0) {
          KATANA_CO_TRY(detail::make_dirs(o.substr(key.size())));
        }
      }
    }
  } else if (s.driver == "blk" || s.driver == "mmioblk" || s.driver == "scsi" ||
             s.driver == "nvdimm") {
    device d;
    d.type = s.driver;
    d.id = s.source;
    d.vm_path = s.driver == "blk" ? std::string() : s.source;
    auto node = co_await device_node(env, d);
    if (!node) {
      co_return unexpected<error>(std::move(node).error().wrap("storage \"" + target + "\""));
    }
    source = node->string();
    if (fstype.empty()) {
      co_return fail(errc::invalid_argument,
                     str_cat("storage \"", target, "\": driver ", s.driver, " needs an fstype"));
    }
  }
  if (source.empty()) {
    co_return fail(errc::invalid_argument,
                   str_cat("storage \"", target, "\": driver ", s.driver, " needs a source"));
  }
  KATANA_CO_TRY(detail::make_dirs(target));
  KATANA_CO_TRY(m.mount(source, target, fstype, opts.flags, opts.data),
                "storage \"" + target + "\"");
  co_return target;
}

/// Which mount points are in use, by how many containers (Kata's sandbox.storages).
class storage_registry {
 public:
  /// Mounts `s` unless already mounted by someone else; counts a reference either way.
  template <mounter M>
  task<result<std::string>> add(M& m, const device_env& env, storage s) {
    const auto key = KATANA_CO_TRY(clean_absolute(s.mount_point, "storage mount_point"));
    if (auto it = refs_.find(key); it != refs_.end()) {
      ++it->second.count;
      co_return key;
    }
    const bool mounted = s.driver != "local";
    const bool shared = s.shared;
    auto r = co_await mount_storage(m, env, std::move(s));
    if (!r) {
      co_return r;
    }
    refs_[*r] = entry{1, mounted, shared};
    co_return r;
  }

  /// Drops a reference; the last one unmounts (shared storages stay until clear()).
  template <mounter M>
  status release(M& m, const std::string& key) {
    auto it = refs_.find(key);
    if (it == refs_.end()) {
      return {};
    }
    if (--it->second.count > 0 || it->second.shared) {
      return {};
    }
    const bool mounted = it->second.mounted;
    refs_.erase(it);
    if (mounted) {
      return m.umount(key, MNT_DETACH);
    }
    return {};
  }

  /// Sandbox teardown: unmounts everything, deepest first.
  template <mounter M>
  status clear(M& m) {
    status first;
    for (auto it = refs_.rbegin(); it != refs_.rend(); ++it) {
      if (it->second.mounted) {
        auto r = m.umount(it->first, MNT_DETACH);
        if (!r && first) {
          first = std::move(r);
        }
      }
    }
    refs_.clear();
    return first;
  }

  [[nodiscard]] std::size_t size() const noexcept { return refs_.size(); }
  [[nodiscard]] bool contains(const std::string& key) const { return refs_.count(key) != 0; }

 private:
  struct entry {
    int count = 0;
    bool mounted = true;
    bool shared = false;
  };
  std::map<std::string, entry> refs_;
};

}  // namespace katana::inline v0::agent
