// Loading kernel modules without modprobe (the initrd has none): find the module in
// modules.dep, load its dependencies first, then finit_module(2) it. Compressed modules
// (.ko.xz, .ko.zst, .ko.gz) are handed to the kernel with MODULE_INIT_COMPRESSED_FILE, which
// kernels built with CONFIG_MODULE_DECOMPRESS (6.4+) accept; others answer EINVAL, which is
// reported as such. Debian 12's modules are plain .ko.
#pragma once

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <system_error>
#include <unistd.h>
#include <utility>
#include <vector>

#include <katana/agent/guest.hpp>
#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/try.hpp>
#include <katana/core/unique_fd.hpp>

#ifndef MODULE_INIT_COMPRESSED_FILE
#define MODULE_INIT_COMPRESSED_FILE 4
#endif

namespace katana::inline v0::agent {

/// "9p-net" and "9p_net" name the same module; modules.dep uses file names.
inline std::string module_name(std::string_view s) {
  auto slash = s.rfind('/');
  if (slash != std::string_view::npos) {
    s = s.substr(slash + 1);
  }
  if (const auto dot = s.find(".ko"); dot != std::string_view::npos) {
    s = s.substr(0, dot);
  }
  std::string out(s);
  std::replace(out.begin(), out.end(), '-', '_');
  return out;
}

inline bool is_compressed_module(std::string_view path) {
  return path.size() > 3 &&
         (path.ends_with(".ko.xz") || path.ends_with(".ko.zst") || path.ends_with(".ko.gz"));
}

/// A module file without its appended signature (module-signing.rst: the PKCS#7 blob, a
/// 12-byte struct module_signature whose last field is the blob's big-endian length, and the
/// marker). Unchanged when unsigned or malformed. The guest image strips them: a kernel
/// without sig_enforce loads unsigned modules, and checking each signature costs ~5 ms a
/// module under TCG.
inline std::string_view strip_module_signature(std::string_view ko) noexcept {
  constexpr std::string_view marker = "~Module signature appended~\n";
  constexpr std::size_t info = 12;
  if (ko.size() < marker.size() + info || !ko.ends_with(marker)) {
    return ko;
  }
  const std::size_t end = ko.size() - marker.size();
  const auto byte = [&](std::size_t i) {
    return static_cast<std::size_t>(static_cast<unsigned char>(ko[end - info + i]));
  };
  const std::size_t sig_len = (byte(8) << 24) | (byte(9) << 16) | (byte(10) << 8) | byte(11);
  const std::size_t cut = info + sig_len + byte(3) + byte(4);  // + signer and key id lengths
  if (cut > end) {
    return ko;
  }
  return ko.substr(0, end - cut);
}

/// Whether /proc/filesystems (`listing`) has `fstype` ("nodev\tproc", "\text4").
inline bool filesystem_registered(std::string_view listing, std::string_view fstype) {
  while (!listing.empty()) {
    const auto nl = listing.find('\n');
    auto line = listing.substr(0, nl);
    listing = nl == std::string_view::npos ? std::string_view{} : listing.substr(nl + 1);
    if (const auto tab = line.rfind('\t'); tab != std::string_view::npos) {
      line = line.substr(tab + 1);
    }
    if (line == fstype) {
      return true;
    }
  }
  return false;
}

/// Filesystem types that never come from a module (built into every kernel the agent runs
/// on, or not filesystems at all): no need to look at /proc/filesystems for them.
inline bool builtin_filesystem(std::string_view fstype) {
  constexpr std::string_view always[] = {"",        "none",     "bind",   "rbind",  "proc",
                                         "sysfs",   "tmpfs",    "devpts", "mqueue", "cgroup",
                                         "cgroup2", "devtmpfs", "ramfs",  "rootfs"};
  return std::find(std::begin(always), std::end(always), fstype) != std::end(always);
}

namespace detail {
inline result<std::string> read_small_file_any(const std::filesystem::path& p) {
  unique_fd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    return fail_errno("open " + p.string());
  }
  std::string out;
  char buf[16384];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      return fail_errno("read " + p.string());
    }
    if (n == 0) {
      return out;
    }
    out.append(buf, static_cast<std::size_t>(n));
  }
}
}  // namespace detail

/// modules.dep, parsed: module name -> (path relative to the modules dir, dependency paths).
class module_index {
 public:
  struct entry {
    std::string path;
    std::vector<std::string> deps;
  };

  static result<module_index> load(const std::filesystem::path& dir) {
    module_index idx;
    idx.dir_ = dir;
    const auto text = KATANA_TRY(detail::read_small_file_any(dir / "modules.dep"));
    idx.parse(text);
    if (auto builtin = detail::read_small_file_any(dir / "modules.builtin")) {
      std::string_view rest = *builtin;
      while (!rest.empty()) {
        const auto nl = rest.find('\n');
        const auto line = rest.substr(0, nl);
        rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
        if (!line.empty()) {
          idx.builtin_.insert(module_name(line));
        }
      }
    }
    return idx;
  }

  /// From text, for tests.
  static module_index parse_text(std::string_view dep, std::filesystem::path dir = {}) {
    module_index idx;
    idx.dir_ = std::move(dir);
    idx.parse(dep);
    return idx;
  }

  [[nodiscard]] const entry* find(std::string_view name) const {
    const auto it = modules_.find(module_name(name));
    return it == modules_.end() ? nullptr : &it->second;
  }
  [[nodiscard]] bool builtin(std::string_view name) const {
    return builtin_.count(module_name(name)) != 0;
  }
  [[nodiscard]] const std::filesystem::path& dir() const noexcept { return dir_; }

  /// Every module modules.dep lists, by name (sorted).
  [[nodiscard]] std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& [name, e] : modules_) {
      out.push_back(name);
    }
    return out;
  }

  /// The load order for `name`: its dependencies (each after its own), then itself.
  result<std::vector<std::string>> load_order(std::string_view name) const {
    std::vector<std::string> order;
    std::set<std::string> seen;
    KATANA_TRY(visit(module_name(name), order, seen, 0));
    return order;
  }

 private:
  void parse(std::string_view text) {
    while (!text.empty()) {
      const auto nl = text.find('\n');
      const auto line = text.substr(0, nl);
      text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
      const auto colon = line.find(':');
      if (colon == std::string_view::npos) {
        continue;
      }
      entry e;
      e.path = std::string(line.substr(0, colon));
      std::string_view deps = line.substr(colon + 1);
      while (!deps.empty()) {
        const auto start = deps.find_first_not_of(' ');
        if (start == std::string_view::npos) {
          break;
        }
        deps = deps.substr(start);
        const auto end = deps.find(' ');
        e.deps.emplace_back(deps.substr(0, end));
        deps = end == std::string_view::npos ? std::string_view{} : deps.substr(end);
      }
      modules_[module_name(e.path)] = std::move(e);
    }
  }

  status visit(const std::string& name,
               std::vector<std::string>& order,
               std::set<std::string>& seen,
               int depth) const {
    if (seen.count(name) != 0) {
      return {};
    }
    if (depth > 64) {
      return fail(errc::invalid_config, "modules.dep: dependency chain too deep at " + name);
    }
    seen.insert(name);
    const auto it = modules_.find(name);
    if (it == modules_.end()) {
      if (builtin_.count(name) != 0) {
        return {};
      }
      return fail(errc::not_found,
                  str_cat("module ", name, " is not in ", (dir_ / "modules.dep").string()));
    }
    // modules.dep lists the whole closure; load it deepest first.
    for (auto d = it->second.deps.rbegin(); d != it->second.deps.rend(); ++d) {
      KATANA_TRY(visit(module_name(*d), order, seen, depth + 1));
    }
    order.push_back(name);
    return {};
  }

  std::filesystem::path dir_;
  std::map<std::string, entry> modules_;
  std::set<std::string> builtin_;
};

/// finit_module(2), as a policy: (fd, params, flags) -> 0 or -errno.
using finit_module_fn = std::function<int(int fd, const std::string& params, int flags)>;

inline int linux_finit_module(int fd, const std::string& params, int flags) {
  const long r = ::syscall(SYS_finit_module, fd, params.c_str(), flags);
  return r == 0 ? 0 : -errno;
}

/// /lib/modules/<uname -r>.
inline std::filesystem::path default_modules_dir() {
  utsname u{};
  ::uname(&u);
  return std::filesystem::path("/lib/modules") / u.release;
}

/// Loads modules (and their dependencies) once each; remembers what it loaded.
class module_loader {
 public:
  module_loader(module_index idx,
                finit_module_fn finit = linux_finit_module,
                std::filesystem::path sys_module = "/sys/module")
      : idx_(std::move(idx)), finit_(std::move(finit)), sys_module_(std::move(sys_module)) {}

  /// Loads `name` with `params` ("key=value key2=v"), after its dependencies.
  status load(std::string_view name, const std::string& params = {}) {
    const auto order = KATANA_TRY(idx_.load_order(name), "load module");
    for (const auto& m : order) {
      KATANA_TRY(load_one(m, m == module_name(name) ? params : std::string()));
    }
    return {};
  }

  [[nodiscard]] const std::vector<std::string>& loaded() const noexcept { return loaded_; }

 private:
  status load_one(const std::string& name, const std::string& params) {
    if (std::find(loaded_.begin(), loaded_.end(), name) != loaded_.end()) {
      return {};
    }
    std::error_code ec;
    if (!sys_module_.empty() && std::filesystem::exists(sys_module_ / name / "initstate", ec)) {
      return {};  // loaded before us
    }
    const auto* e = idx_.find(name);
    if (e == nullptr) {
      return {};  // built in
    }
    const auto path = idx_.dir() / e->path;
    unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
      return fail_errno("open module " + path.string());
    }
    const bool compressed = is_compressed_module(e->path);
    const int rc = finit_(fd.get(), params, compressed ? MODULE_INIT_COMPRESSED_FILE : 0);
    if (rc == -EEXIST || rc == 0) {
      loaded_.push_back(name);
      return {};
    }
    if (compressed && rc == -EINVAL) {
      return fail_errno(str_cat("finit_module ", path.string(),
                                ": the kernel cannot decompress modules "
                                "(MODULE_INIT_COMPRESSED_FILE needs CONFIG_MODULE_DECOMPRESS)"),
                        EINVAL);
    }
    return fail_errno("finit_module " + path.string(), -rc);
  }

  module_index idx_;
  finit_module_fn finit_;
  std::filesystem::path sys_module_;
  std::vector<std::string> loaded_;
};

}  // namespace katana::inline v0::agent
