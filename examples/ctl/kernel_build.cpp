// Steps (each cached): the linux-source package linux-source depends on (apt-get download);
// its tarball extracted once per version (into a temporary directory, renamed into place with
// a completion marker); `make tinyconfig`, the fragment merged, `make olddefconfig`, every
// option of the fragment checked; `make vmlinux` in a build directory kept per version under
// a lock; the vmlinux stripped and kept per fragment and compiler (FNV-1a of the fragment's
// settings, not comments, and gcc's version). Other versions' files are pruned after a build.
#include "kernel_build.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <sys/file.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <katana/core/str_cat.hpp>
#include <katana/core/try.hpp>
#include <katana/core/unique_fd.hpp>

#include "image_util.hpp"
#include "kernel_fragment.hpp"

namespace katana_ctl::image {

const std::string_view tailored_kernel_fragment = kernel_fragment_x86_64;

namespace {

using katana::errc;
using katana::fail;
using katana::result;
using katana::status;
using katana::str_cat;

/// The fragment's settings alone, trimmed, in order: comments and blank lines do not change
/// the kernel, so they do not change its cache key either.
std::string fragment_settings(std::string_view fragment) {
  std::string out;
  std::istringstream in{std::string(fragment)};
  for (std::string l; std::getline(in, l);) {
    while (!l.empty() && (l.back() == '\r' || l.back() == ' ' || l.back() == '\t')) {
      l.pop_back();
    }
    if (l.starts_with("CONFIG_") || (l.starts_with("# CONFIG_") && l.ends_with(" is not set"))) {
      out += l + "\n";
    }
  }
  return out;
}

std::string fnv1a_hex(std::string_view text) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (const char c : text) {
    h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

/// What a kernel build needs besides a compiler; each missing one is named with its package.
status check_build_tools() {
  struct tool {
    const char* name;
    const char* package;
  };
  static constexpr tool tools[] = {{"make", "make"},   {"gcc", "gcc"},         {"flex", "flex"},
                                   {"bison", "bison"}, {"bc", "bc"},           {"xz", "xz-utils"},
                                   {"perl", "perl"},   {"objcopy", "binutils"}};
  std::string missing, packages;
  for (const auto& t : tools) {
    if (std::system(str_cat("command -v ", t.name, " >/dev/null 2>&1").c_str()) != 0) {
      missing += str_cat(missing.empty() ? "" : ", ", t.name);
      packages += str_cat(" ", t.package);
    }
  }
  // objtool (the ORC unwinder) links against libelf.
  if (std::system("test -e /usr/include/libelf.h -o -e /usr/include/elfutils/libelf.h") != 0) {
    missing += str_cat(missing.empty() ? "" : ", ", "libelf.h");
    packages += " libelf-dev";
  }
  if (!missing.empty()) {
    return fail(errc::not_found, str_cat("image build --kernel tailored: missing ", missing,
                                         " (apt-get install", packages, ")"));
  }
  return {};
}

/// The source tree of `deb` (linux-source-X.Y), extracted once.
result<fs::path> source_tree(const fs::path& deb,
                             const fs::path& cache,
                             const std::string& version) {
  const fs::path tree = cache / str_cat("linux-source-", version);
  const fs::path complete = tree / ".katana-extracted";
  if (fs::exists(complete)) {
    progress(str_cat("kernel source ", tree.string(), " (cached)"));
    return tree;
  }
  progress(str_cat("extracting the kernel source of ", deb.filename().string(), " (once)"));
  KATANA_TRY(extract_once(tree, [&](const fs::path& part) -> status {
    // The package holds one tarball, usr/src/linux-source-X.Y.tar.xz.
    KATANA_TRY(run(str_cat("dpkg-deb --fsys-tarfile ", sh_quote(deb.string()),
                           " | tar -xO --wildcards './usr/src/linux-source-*.tar.xz' | tar -xJ -C ",
                           sh_quote(part.string()), " --strip-components=1")));
    if (!fs::exists(part / "Makefile") || !fs::exists(part / "scripts/kconfig/merge_config.sh")) {
      return fail(errc::parse_error, str_cat(deb.string(), " holds no kernel source tree"));
    }
    return {};
  }));
  return tree;
}

std::string log_tail(const fs::path& p) {
  auto text = read_file(p).value_or("");
  if (text.size() > 3000) {
    text.erase(0, text.size() - 3000);
  }
  return text;
}

/// What make is run with so that the same source and fragment give the same vmlinux.
constexpr std::string_view reproducible_env =
    "KBUILD_BUILD_TIMESTAMP='Thu Jan  1 00:00:00 UTC 1970' KBUILD_BUILD_USER=katana "
    "KBUILD_BUILD_HOST=katana KBUILD_BUILD_VERSION=1 ";

/// Part of the cache key: changes when the way the kernel is built changes.
constexpr std::string_view build_recipe = "katana tailored kernel recipe 2\n";

/// `make vmlinux`, its output in `log`, a progress line every 500 objects.
status make_vmlinux(const fs::path& src, const fs::path& obj, const fs::path& log) {
  const unsigned jobs = std::max(1U, std::thread::hardware_concurrency());
  // The build's date, user and host would make every build's bytes differ.
  const std::string cmd =
      str_cat(reproducible_env, "make -C ", sh_quote(src.string()), " O=", sh_quote(obj.string()),
              " ARCH=x86_64 -j", jobs, " vmlinux 2>&1");
  progress(str_cat(
      "building the kernel (the first time takes ~15 min on 2 cores; log: ", log.string(), ")"));
  // Not an ofstream: make and the compilers must not inherit the log's descriptor.
  katana::unique_fd out(
      ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644));
  if (!out) {
    return katana::fail_errno("create " + log.string());
  }
  FILE* p = ::popen(cmd.c_str(), "re");
  if (p == nullptr) {
    return katana::fail_errno("popen " + cmd);
  }
  char line[4096];
  unsigned compiled = 0;
  while (std::fgets(line, sizeof line, p) != nullptr) {
    const auto n = std::strlen(line);
    if (::write(out.get(), line, n) != static_cast<ssize_t>(n)) {
      (void)::pclose(p);
      return katana::fail_errno("write " + log.string());
    }
    if (std::string_view(line).starts_with("  CC ") && ++compiled % 500 == 0) {
      progress(str_cat("kernel: ", compiled, " files compiled"));
    }
  }
  if (const int rc = ::pclose(p); rc != 0) {
    return fail(errc::unavailable,
                str_cat("make vmlinux failed: it ", katana::hypervisor::describe_wait_status(rc),
                        "; the end of ", log.string(), ":\n", log_tail(log)));
  }
  return {};
}

}  // namespace

std::string lost_options(std::string_view fragment, std::string_view config) {
  std::vector<std::string_view> lines;
  for (std::size_t at = 0; at < config.size();) {
    auto nl = config.find('\n', at);
    if (nl == std::string_view::npos) {
      nl = config.size();
    }
    lines.push_back(config.substr(at, nl - at));
    at = nl + 1;
  }
  const auto has_line = [&](std::string_view l) {
    return std::find(lines.begin(), lines.end(), l) != lines.end();
  };
  const auto is_set = [&](std::string_view name) {
    return std::any_of(lines.begin(), lines.end(), [&](std::string_view l) {
      return l.size() > name.size() && l.starts_with(name) && l[name.size()] == '=';
    });
  };
  std::string lost;
  std::istringstream in{fragment_settings(fragment)};  // trimmed, comments left out
  std::string l;
  while (std::getline(in, l)) {
    if (l.starts_with("CONFIG_") && l.ends_with("=n")) {  // the same as "is not set"
      l = str_cat("# ", l.substr(0, l.size() - 2), " is not set");
    }
    static constexpr std::string_view unset_prefix = "# CONFIG_", unset_suffix = " is not set";
    if (l.starts_with("CONFIG_")) {
      if (!has_line(l)) {
        lost += str_cat(lost.empty() ? "" : ", ", l);
      }
    } else if (l.starts_with(unset_prefix) && l.ends_with(unset_suffix)) {
      const auto name = std::string_view(l).substr(2, l.size() - 2 - unset_suffix.size());
      if (is_set(name)) {
        lost += str_cat(lost.empty() ? "" : ", ", name, " unset");
      }
    }
  }
  return lost;
}

namespace {

/// `gcc --version`'s first line: Kbuild's default compiler.
std::string compiler_version() {
  auto v = capture("gcc --version 2>/dev/null");
  return v ? v->substr(0, v->find('\n')) + "\n" : std::string("no gcc\n");
}

/// Removes what builds of other source versions left in the cache (~1.5 GB each: the source
/// tree, the build directory, the source package) once a newer version is built. A version
/// whose build is running (its lock is held) is left alone; nothing else uses these files,
/// since image build copies the kernel it installs.
void prune_other_versions(const fs::path& cache, const std::string& version) {
  const auto entries = list_dir(cache);
  constexpr std::string_view build_prefix = "kernel-tailored-";
  constexpr std::string_view source_prefix = "linux-source-";
  for (const auto& p : entries) {
    const auto name = p.filename().string();
    if (!name.starts_with(build_prefix) || name == str_cat(build_prefix, version)) {
      continue;
    }
    const auto other = name.substr(build_prefix.size());
    prune_version(
        entries, other, p / "lock",
        [&](const fs::path& q) {
          const auto n = q.filename().string();
          return n == str_cat(source_prefix, other) ||
                 n.starts_with(str_cat(source_prefix, other, ".part-")) ||
                 (n.starts_with(source_prefix) && n.ends_with(".deb") &&
                  package_version(q) == other);
        },
        p, "is being built", version);
  }
}

}  // namespace

result<tailored_kernel> build_tailored_kernel(const fs::path& cache, std::string_view fragment) {
  KATANA_TRY(check_build_tools());
  // "  Depends: linux-source-6.1": the source package of Debian's current kernel.
  auto deps = capture("apt-cache depends linux-source 2>&1");
  if (!deps) {
    return fail(errc::not_found,
                "image build --kernel tailored: apt knows no linux-source package (apt-get "
                "update?)");
  }
  std::string pkg;
  std::istringstream dep_lines(*deps);
  for (std::string l; pkg.empty() && std::getline(dep_lines, l);) {
    static constexpr std::string_view key = "Depends: linux-source-";
    const auto at = l.find(key);
    if (at != std::string::npos && l.find_first_not_of(' ') == at) {
      pkg = l.substr(at + key.size() - std::string_view("linux-source-").size());
      pkg = pkg.substr(0, pkg.find_first_of(" <>"));
    }
  }
  if (pkg.empty() ||
      pkg.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789.+-") != std::string::npos) {
    return fail(errc::not_found,
                str_cat("apt-cache depends linux-source: no linux-source-X.Y dependency",
                        pkg.empty() ? std::string() : str_cat(" (got \"", pkg, "\")")));
  }
  const auto deb = KATANA_TRY(fetch_package(pkg, cache));
  const auto version = package_version(deb);
  if (version.empty()) {
    return fail(errc::parse_error, "no version in the package name " + deb.filename().string());
  }
  const fs::path obj = cache / str_cat("kernel-tailored-", version);
  // The compiler is part of the key: another gcc makes other code (Kbuild then rebuilds it all).
  const fs::path vmlinux =
      obj / str_cat("vmlinux-", fnv1a_hex(str_cat(build_recipe, compiler_version(),
                                                  fragment_settings(fragment))));
  const auto waiting = str_cat("waiting for another kernel build in ", obj.string());
  if (fs::exists(vmlinux)) {
    // Shared until the caller copied it: a build of another version prunes it otherwise.
    auto shared = KATANA_TRY(hold_lock(obj / "lock", LOCK_SH, waiting));
    if (fs::exists(vmlinux)) {
      progress(str_cat("tailored kernel ", vmlinux.string(), " (cached)"));
      prune_other_versions(cache, version);
      return tailored_kernel{vmlinux, version, std::move(shared)};
    }
  }
  // One build per version at a time (the source extraction included); a second caller waits,
  // then finds the result.
  auto lock = KATANA_TRY(hold_lock(obj / "lock", LOCK_EX, waiting));
  // Exclusive to shared is atomic for flock (no conflicting lock can exist meanwhile).
  const auto share = [&]() -> status {
    if (::flock(lock.get(), LOCK_SH) != 0) {
      return katana::fail_errno(str_cat("flock ", (obj / "lock").string()));
    }
    return {};
  };
  std::error_code ec;
  if (fs::exists(vmlinux)) {
    KATANA_TRY(share());
    prune_other_versions(cache, version);
    return tailored_kernel{vmlinux, version, std::move(lock)};
  }
  const auto src = KATANA_TRY(source_tree(deb, cache, version));
  const fs::path frag_file = obj / "katana.config";
  {
    std::ofstream f(frag_file, std::ios::trunc);
    f << fragment;
    if (!f) {
      return katana::fail_errno("write " + frag_file.string());
    }
  }
  progress("configuring: tinyconfig + the fragment");
  const auto make = str_cat("make -s -C ", sh_quote(src.string()), " O=", sh_quote(obj.string()),
                            " ARCH=x86_64 ");
  const auto config_log = sh_quote((obj / "config.log").string());
  // merge_config.sh makes its temporary files in the current directory: the build's.
  KATANA_TRY(
      run(str_cat(make, "tinyconfig >", config_log, " 2>&1 && cd ", sh_quote(obj.string()), " && ",
                  sh_quote((src / "scripts/kconfig/merge_config.sh").string()), " -m -O . .config ",
                  sh_quote(frag_file.string()), " >>", config_log, " 2>&1 && ", make,
                  "olddefconfig >>", config_log, " 2>&1")),
      str_cat("image build: kernel configuration (see ", (obj / "config.log").string(), ")"));
  if (const auto lost = lost_options(fragment, KATANA_TRY(read_file(obj / ".config")));
      !lost.empty()) {
    return fail(errc::invalid_argument,
                str_cat("image build: the kernel configuration dropped options of the fragment "
                        "(an unmet dependency, or no such option in this kernel): ",
                        lost));
  }
  KATANA_TRY(make_vmlinux(src, obj, obj / "build.log"), "image build: tailored kernel");
  const fs::path part = vmlinux.string() + ".part";
  auto stripped = run(str_cat("objcopy --strip-all ", sh_quote((obj / "vmlinux").string()), " ",
                              sh_quote(part.string())));
  if (stripped) {
    fs::rename(part, vmlinux, ec);
  }
  if (!stripped || ec) {
    std::error_code ignored;
    fs::remove(part, ignored);
    return stripped ? fail(ec, "rename " + part.string())
                    : katana::unexpected<katana::error>(
                          std::move(stripped).error().wrap("image build: strip vmlinux"));
  }
  KATANA_TRY(share());
  prune_other_versions(cache, version);
  return tailored_kernel{vmlinux, version, std::move(lock)};
}

}  // namespace katana_ctl::image
