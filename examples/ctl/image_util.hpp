// Helpers shared by katana-ctl image build's steps: progress lines, shell commands, files,
// Debian packages fetched into the cache, and the locks of cache entries.
#pragma once

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <string_view>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include <katana/core/error.hpp>
#include <katana/core/scope_exit.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/try.hpp>
#include <katana/core/unique_fd.hpp>
#include <katana/hypervisor/process.hpp>

namespace katana_ctl::image {

namespace fs = std::filesystem;

inline void progress(std::string_view what) {
  std::fprintf(stderr, "image: %.*s\n", static_cast<int>(what.size()), what.data());
}

inline std::string sh_quote(std::string_view s) {
  std::string out = "'";
  for (const char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

/// Standard output of `/bin/sh -c cmd`; a non-zero exit is an error naming the command.
inline katana::result<std::string> capture(const std::string& cmd) {
  FILE* p = ::popen(cmd.c_str(), "re");
  if (p == nullptr) {
    return katana::fail_errno("popen " + cmd);
  }
  std::string out;
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) {
    out.append(buf, n);
  }
  const int rc = ::pclose(p);
  if (rc != 0) {
    // The shell's 127: the program is not installed (tools/packages.txt lists them all).
    const bool missing = rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 127;
    return katana::fail(katana::errc::unavailable,
                        katana::str_cat("\"", cmd, "\" failed: it ",
                                        rc == -1 ? std::string("could not be waited for")
                                                 : katana::hypervisor::describe_wait_status(rc),
                                        missing ? " (command not found: is its package "
                                                  "installed? tools/setup.sh installs them)"
                                                : ""));
  }
  return out;
}

inline katana::status run(const std::string& cmd) {
  KATANA_TRY(capture(cmd));
  return {};
}

inline katana::result<std::string> read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) {
    return katana::fail_errno("open " + p.string());
  }
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

/// apt's candidate version of `pkg` ("6.1.192-2"), as it appears in a .deb's file name (an
/// epoch's ':' is "%3a"); empty when apt has none.
inline std::string candidate_version(const std::string& pkg) {
  const auto policy = capture(katana::str_cat("apt-cache policy ", sh_quote(pkg), " 2>/dev/null"));
  if (!policy) {
    return {};
  }
  static constexpr std::string_view key = "Candidate: ";
  const auto at = policy->find(key);
  if (at == std::string::npos) {
    return {};
  }
  std::string v = policy->substr(at + key.size(), policy->find('\n', at) - at - key.size());
  if (v == "(none)") {
    return {};
  }
  for (auto c = v.find(':'); c != std::string::npos; c = v.find(':', c)) {
    v.replace(c, 1, "%3a");
  }
  return v;
}

/// The entries of `dir` (none when it cannot be read), without the throwing iterator steps.
inline std::vector<fs::path> list_dir(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    out.push_back(it->path());
  }
  return out;
}

/// PKG_VERSION_*.deb (apt's candidate VERSION, any version when apt names none) from the cache
/// or apt's archive cache, else `apt-get download`ed into the cache.
inline katana::result<fs::path> fetch_package(const std::string& pkg, const fs::path& cache) {
  const auto version = candidate_version(pkg);
  const std::string prefix = version.empty() ? pkg + "_" : katana::str_cat(pkg, "_", version, "_");
  const auto find = [&](const fs::path& dir) -> fs::path {
    for (const auto& p : list_dir(dir)) {
      const auto name = p.filename().string();
      if (name.starts_with(prefix) && name.ends_with(".deb")) {
        return p;
      }
    }
    return {};
  };
  for (const auto& dir : {cache, fs::path("/var/cache/apt/archives")}) {
    if (auto p = find(dir); !p.empty()) {
      progress(katana::str_cat("package ", p.string(), " (cached)"));
      return p;
    }
  }
  progress(katana::str_cat("apt-get download ", pkg));
  // As root, apt would hand the download to its _apt user, who cannot write into the cache
  // (it warns and downloads as root anyway): say so up front.
  const std::string_view as_root = ::geteuid() == 0 ? " -o APT::Sandbox::User=root" : "";
  KATANA_TRY(run(katana::str_cat("cd ", sh_quote(cache.string()), " && apt-get download -q",
                                 as_root, " ", sh_quote(pkg), " >&2")));
  if (auto p = find(cache); !p.empty()) {
    return p;
  }
  return katana::fail(katana::errc::not_found, "apt-get download left no " + pkg + " package");
}

/// Fills `tree` once: `fill` writes into a fresh temporary directory beside it, which gets a
/// completion marker and is renamed into place whole. The marker tells a finished tree from
/// one an interrupted run left; each run has its own temporary directory, so two at once do
/// not empty each other's; when another run finished first, its tree stands.
inline katana::status extract_once(const fs::path& tree,
                                   const std::function<katana::status(const fs::path&)>& fill) {
  const fs::path complete = tree / ".katana-extracted";
  if (fs::exists(complete)) {
    return {};
  }
  std::string tmpl = tree.string() + ".part-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) {
    return katana::fail_errno("create " + tmpl);
  }
  const fs::path part = tmpl;
  const katana::scope_exit drop_part([&] {
    std::error_code ignored;
    fs::remove_all(part, ignored);
  });
  KATANA_TRY(fill(part));
  std::ofstream(part / complete.filename()) << "complete\n";
  std::error_code ec;
  if (!fs::exists(complete)) {
    fs::remove_all(tree, ec);
    fs::rename(part, tree, ec);
    if (ec && !fs::exists(complete)) {
      return katana::fail(ec, katana::str_cat("rename ", part.string(), " to ", tree.string()));
    }
  }
  return {};
}

/// Whether `fd` is the file at `path` still: a pruning removes a lock file while holding it.
inline bool is_file_at(int fd, const fs::path& path) {
  struct stat held {};
  struct stat named {};
  return ::fstat(fd, &held) == 0 && ::lstat(path.c_str(), &named) == 0 &&
         held.st_dev == named.st_dev && held.st_ino == named.st_ino;
}

/// Opens (creating it, and its directory) the lock file `lock` and flocks it with `op`
/// (LOCK_SH while a cache entry is used, LOCK_EX while it is made), printing `waiting` when
/// it has to wait. A pruning removes an entry with its lock file while holding it: a lock
/// taken on a file no longer at `lock` is not the entry's, so it starts again.
inline katana::result<katana::unique_fd> hold_lock(const fs::path& lock,
                                                   int op,
                                                   std::string_view waiting) {
  for (int attempt = 0;; ++attempt) {
    std::error_code ec;
    fs::create_directories(lock.parent_path(), ec);
    if (ec) {
      return katana::fail(ec, "create " + lock.parent_path().string());
    }
    katana::unique_fd fd(::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644));
    if (!fd && errno == EACCES) {  // another user's: flock needs only read access
      fd.reset(::open(lock.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    }
    if (!fd) {
      if (errno == ENOENT && attempt < 3) {
        continue;
      }
      return katana::fail_errno("open " + lock.string());
    }
    if (::flock(fd.get(), op | LOCK_NB) != 0) {
      progress(waiting);
      if (::flock(fd.get(), op) != 0) {
        return katana::fail_errno("lock " + lock.string());
      }
    }
    if (is_file_at(fd.get(), lock)) {
      return fd;
    }
    if (attempt >= 3) {
      return katana::fail(katana::errc::unavailable,
                          katana::str_cat("lock ", lock.string(), ": it keeps being removed"));
    }
  }
}

/// For pruning a cache entry: its lock taken exclusively, without waiting.
struct pruning_lock {
  enum class state { taken, held, unopenable };
  state how = state::held;
  int err = 0;           // errno when unopenable
  katana::unique_fd fd;  // held while the entry is removed
};

/// `held` when another holds the lock (or replaced it meanwhile), `unopenable` when it cannot
/// be opened or made (flock needs only read access, so that is another user's): both keep the
/// entry. A missing lock file is made, so that a build starting now waits for the removal.
inline pruning_lock take_for_pruning(const fs::path& lock) {
  pruning_lock out;
  out.fd.reset(::open(lock.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!out.fd && errno == ENOENT) {
    out.fd.reset(::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644));
  }
  if (!out.fd) {
    out.err = errno;
    out.how = pruning_lock::state::unopenable;
    return out;
  }
  out.how = ::flock(out.fd.get(), LOCK_EX | LOCK_NB) == 0 && is_file_at(out.fd.get(), lock)
                ? pruning_lock::state::taken
                : pruning_lock::state::held;
  return out;
}

/// Prunes the cache entries of another version (`other`) unless its lock (`lock`) keeps
/// them: every path of `entries` that `belongs`, then `last` (what holds the lock file, so a
/// build waiting on it sees it replaced). Progress lines name it "kernel <other>"; `busy`
/// says why a held lock keeps it, `now` the version that replaces it.
inline void prune_version(const std::vector<fs::path>& entries,
                          const std::string& other,
                          const fs::path& lock,
                          const std::function<bool(const fs::path&)>& belongs,
                          const fs::path& last,
                          std::string_view busy,
                          std::string_view now) {
  const auto taken = take_for_pruning(lock);
  if (taken.how == pruning_lock::state::unopenable) {
    progress(katana::str_cat("cache: kernel ", other, ": ", std::strerror(taken.err),
                             " on its lock; not pruned"));
    return;
  }
  if (taken.how == pruning_lock::state::held) {
    progress(katana::str_cat("cache: kernel ", other, " ", busy, "; not pruned"));
    return;
  }
  std::uintmax_t removed = 0;
  std::string failed;
  const auto remove = [&](const fs::path& q) {
    std::error_code rc;
    const auto n = fs::remove_all(q, rc);
    if (rc) {
      failed += katana::str_cat(failed.empty() ? "" : ", ", q.string(), ": ", rc.message());
    } else {
      removed += n;
    }
  };
  for (const auto& q : entries) {
    if (q != last && belongs(q)) {
      remove(q);
    }
  }
  remove(last);
  progress(failed.empty() ? katana::str_cat("cache: pruned kernel ", other, " (", removed,
                                            " files; now ", now, ")")
                          : katana::str_cat("cache: kernel ", other, " pruned in part: ", failed));
}

/// The version in a Debian package's file name (NAME_VERSION_ARCH.deb).
inline std::string package_version(const fs::path& deb) {
  const auto name = deb.filename().string();
  const auto a = name.find('_');
  const auto b = name.find('_', a + 1);
  return a == std::string::npos || b == std::string::npos ? std::string()
                                                          : name.substr(a + 1, b - a - 1);
}

}  // namespace katana_ctl::image
