// katana-ctl image build. Steps (each cached, progress on stderr):
//  1. the kernel package: the version linux-image-<arch> depends on, `apt-get download`ed into
//     the cache (or taken from apt's archive cache);
//  2. `dpkg-deb -x` of it;
//  3. vmlinux: the compressed payload of vmlinuz found by its XZ/ZSTD/GZIP magic and
//     decompressed with the matching tool until an ELF comes out (scripts/extract-vmlinux);
//  4. the initrd: a newc cpio written here - sorted, owner 0, mtime 0, so the same inputs give
//     the same bytes - holding /init (the static katana-agent), the guest's modules with their
//     dependencies (signatures stripped) and a modules.dep of just those, and /dev/console.
// With --kernel tailored, steps 1-3 are kernel_build.cpp's (built from linux-source, no
// modules) and the initrd holds no modules.
#include "image_cmd.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <vector>

#include <katana/agent/kmod.hpp>
#include <katana/core/error.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/try.hpp>
#include <katana/core/unique_fd.hpp>

#include "image_util.hpp"
#include "kernel_build.hpp"

namespace katana_ctl {

const std::string_view image_usage = R"(
  image build [--agent PATH] [--output-dir DIR] [--cache-dir DIR] [--kernel-version V]
              [--kernel debian|tailored] [--kernel-config FRAGMENT]
                                        build the guest kernel (vmlinux) and initrd
                                        (default output: /usr/share/katana; default agent:
                                        the static katana-agent or katana-agent-static next
                                        to katana-ctl). --kernel debian (default): Debian's
                                        linux-image, modules in the initrd; tailored: built
                                        from linux-source with katana's config fragment (or
                                        FRAGMENT), everything built in: under TCG a vm run
                                        ends ~1.6x sooner; the first build takes ~15 min,
                                        then it is cached
)";

namespace {

using namespace image;
using katana::errc;
using katana::fail;
using katana::result;
using katana::status;
using katana::str_cat;

/// Debian's kernel metapackage for this host ("linux-image-amd64").
result<std::string> kernel_metapackage() {
  struct ::utsname u {};
  if (::uname(&u) != 0) {
    return katana::fail_errno("uname");
  }
  const std::string_view m = u.machine;
  // The kernel files differ per architecture (ppc64el ships a vmlinux, arm64 a compressed
  // Image that is no ELF): only x86_64's vmlinuz -> vmlinux path is written and tested.
  if (m != "x86_64") {
    return fail(errc::unsupported,
                str_cat("image build: the guest kernel is extracted for x86_64 only, not ", m,
                        "; set [hypervisor.qemu] kernel to a kernel for this machine"));
  }
  return std::string("linux-image-amd64");
}

/// The ABI name the kernel metapackage depends on ("6.1.0-56-amd64").
result<std::string> default_kernel_version() {
  const auto meta = KATANA_TRY(kernel_metapackage());
  const auto deps = KATANA_TRY(capture(str_cat("apt-cache depends ", meta, " 2>/dev/null")));
  const std::string_view key = "Depends: linux-image-";
  const auto at = deps.find(key);
  if (at == std::string::npos) {
    return fail(errc::not_found,
                str_cat("apt-cache depends ", meta, ": no linux-image dependency"));
  }
  auto end = deps.find_first_of("\n ", at + key.size());
  return deps.substr(at + key.size(), end - at - key.size());
}

/// scripts/extract-vmlinux: try each compressed stream found in the bzImage until one
/// decompresses to an ELF.
status extract_vmlinux(const fs::path& vmlinuz, const fs::path& out) {
  const auto image = KATANA_TRY(read_file(vmlinuz));
  struct codec {
    std::string_view magic;
    const char* tool;
  };
  static constexpr codec codecs[] = {{std::string_view("\xFD"
                                                       "7zXZ\0",
                                                       6),
                                      "xz -dc"},
                                     {std::string_view("\x28\xB5\x2F\xFD", 4), "zstd -dc"},
                                     {std::string_view("\x1F\x8B\x08", 3), "gzip -dc"}};
  const fs::path tmp = out.string() + ".part";
  for (const auto& c : codecs) {
    for (auto at = image.find(c.magic); at != std::string::npos; at = image.find(c.magic, at + 1)) {
      const fs::path payload = out.string() + ".payload";
      {
        std::ofstream f(payload, std::ios::binary);
        f.write(image.data() + at, static_cast<std::streamsize>(image.size() - at));
      }
      // Trailing data after the stream makes the tools complain; the output is what counts.
      (void)std::system(str_cat(c.tool, " ", sh_quote(payload.string()), " > ",
                                sh_quote(tmp.string()), " 2>/dev/null")
                            .c_str());
      std::error_code ec;
      fs::remove(payload, ec);
      std::ifstream f(tmp, std::ios::binary);
      char head[4] = {};
      f.read(head, 4);
      if (f && std::memcmp(head,
                           "\x7F"
                           "ELF",
                           4) == 0) {
        fs::rename(tmp, out, ec);
        if (ec) {
          return fail(ec, "rename " + tmp.string());
        }
        return {};
      }
    }
  }
  std::error_code ec;
  fs::remove(tmp, ec);
  return fail(errc::parse_error,
              "no XZ/ZSTD/GZIP stream in " + vmlinuz.string() + " decompresses to an ELF vmlinux");
}

/// Whether an ELF has no PT_INTERP (a static binary).
result<bool> is_static_elf(const fs::path& p) {
  const auto bin = KATANA_TRY(read_file(p));
  if (bin.size() < 64 ||
      bin.compare(0, 4,
                  "\x7F"
                  "ELF") != 0 ||
      bin[4] != 2) {
    return fail(errc::invalid_argument, p.string() + " is not a 64-bit ELF");
  }
  std::uint64_t phoff = 0;
  std::uint16_t phentsize = 0, phnum = 0;
  std::memcpy(&phoff, bin.data() + 32, 8);
  std::memcpy(&phentsize, bin.data() + 54, 2);
  std::memcpy(&phnum, bin.data() + 56, 2);
  for (std::uint16_t i = 0; i < phnum; ++i) {
    const auto off = phoff + std::uint64_t{i} * phentsize;
    if (off + 4 > bin.size()) {
      break;
    }
    std::uint32_t type = 0;
    std::memcpy(&type, bin.data() + off, 4);
    if (type == 3) {  // PT_INTERP
      return false;
    }
  }
  return true;
}

/// A reproducible newc archive.
class cpio_writer {
 public:
  void dir(const std::string& name) { entry(name, 040755, {}, 0, 0); }
  void file(const std::string& name, std::string data, unsigned mode) {
    entry(name, 0100000 | mode, std::move(data), 0, 0);
  }
  void char_device(const std::string& name, unsigned major, unsigned minor) {
    entry(name, 020600, {}, major, minor);
  }
  std::string finish() {
    entry("TRAILER!!!", 0, {}, 0, 0);
    out_.resize((out_.size() + 511) / 512 * 512, '\0');
    return std::move(out_);
  }

 private:
  void entry(
      const std::string& name, unsigned mode, std::string data, unsigned rmaj, unsigned rmin) {
    char hdr[111];
    std::snprintf(hdr, sizeof hdr, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
                  ++ino_, mode, 0U, 0U, (mode & 040000) != 0 ? 2U : 1U, 0U,
                  static_cast<unsigned>(data.size()), 0U, 0U, rmaj, rmin,
                  static_cast<unsigned>(name.size() + 1), 0U);
    out_.append(hdr, 110);
    out_ += name;
    out_ += '\0';
    pad();
    out_ += data;
    pad();
  }
  void pad() { out_.resize((out_.size() + 3) / 4 * 4, '\0'); }

  std::string out_;
  unsigned ino_ = 0;
};

/// modules.dep: module path -> its dependencies' paths.
std::map<std::string, std::vector<std::string>> parse_modules_dep(const std::string& text) {
  std::map<std::string, std::vector<std::string>> deps;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) {
      continue;
    }
    std::vector<std::string> d;
    std::istringstream rest(line.substr(colon + 1));
    std::string w;
    while (rest >> w) {
      d.push_back(w);
    }
    deps[line.substr(0, colon)] = std::move(d);
  }
  return deps;
}

std::string module_name_of(const std::string& path) {
  auto name = fs::path(path).filename().string();
  name = name.substr(0, name.find(".ko"));
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
}

/// The modules the guest needs from a Debian kernel tree, with their dependencies.
struct guest_modules {
  fs::path root;                                         // lib/modules/VERSION
  std::map<std::string, std::vector<std::string>> deps;  // modules.dep
  std::set<std::string> include;                         // paths relative to root
};

result<guest_modules> select_modules(const fs::path& tree, const std::string& version) {
  guest_modules m;
  m.root = tree / "lib" / "modules" / version;
  const auto& mod_root = m.root;
  if (!fs::exists(mod_root / "modules.dep")) {  // the package leaves that to depmod
    progress("depmod");
    KATANA_TRY(run(str_cat("depmod -b ", sh_quote(tree.string()), " ", sh_quote(version))));
  }
  m.deps = parse_modules_dep(KATANA_TRY(read_file(mod_root / "modules.dep")));
  std::map<std::string, std::string> by_name;  // name -> path in modules.dep
  for (const auto& [path, d] : m.deps) {
    by_name[module_name_of(path)] = path;
  }
  static constexpr std::string_view wanted[] = {
      "virtio_mmio", "virtio_pci", "virtio_console", "virtio_blk", "9pnet_virtio",
      "9p",          "virtiofs",   "overlay",        "vsock",      "vmw_vsock_virtio_transport"};
  std::vector<std::string> todo;
  for (const auto w : wanted) {
    if (auto it = by_name.find(std::string(w)); it != by_name.end()) {
      todo.push_back(it->second);
    } else {
      progress(str_cat("note: module ", w, " is not in this kernel's modules (built in?)"));
    }
  }
  while (!todo.empty()) {
    auto p = todo.back();
    todo.pop_back();
    if (!m.include.insert(p).second) {
      continue;
    }
    for (const auto& d : m.deps.at(p)) {
      todo.push_back(d);
    }
  }
  return m;
}

/// A version becomes a file name in the cache (and a package name): no '/', nothing else
/// Debian's versions do not have.
status check_kernel_version(const std::string& version) {
  if (version.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789.+-") != std::string::npos) {
    return fail(errc::invalid_argument,
                str_cat("image build: --kernel-version \"", version,
                        "\" is not a Debian kernel version (such as 6.1.0-1-amd64)"));
  }
  return {};
}

/// Removes the Debian kernels of other versions that image build extracted into the cache
/// (~400 MB each: the tree, what interrupted extractions left, the package) once a build of
/// `version` is done. A version whose lock is held (a build using it) is kept.
void prune_other_images(const fs::path& cache, const std::string& version) {
  constexpr std::string_view prefix = "linux-image-";
  std::error_code ec;
  const auto entries = list_dir(cache);
  std::set<std::string> others;  // versions with a tree or leftovers of one
  for (const auto& p : entries) {
    const auto name = p.filename().string();
    if (!name.starts_with(prefix)) {
      continue;
    }
    auto v = name.substr(prefix.size());
    if (const auto part = v.find(".part-"); part != std::string::npos) {
      v.resize(part);
    } else if (const auto deb = v.find('_'); deb != std::string::npos && v.ends_with(".deb")) {
      v.resize(deb);  // a package whose extraction failed (versions have no '_')
    } else if (!fs::exists(p / ".katana-extracted", ec)) {
      continue;  // not a tree image build made
    }
    if (!v.empty() && v != version) {
      others.insert(v);
    }
  }
  for (const auto& other : others) {
    const std::string tree = str_cat(prefix, other);
    const fs::path lock = cache / (tree + ".lock");  // beside the tree: removed last
    prune_version(
        entries, other, lock,
        [&](const fs::path& q) {
          const auto n = q.filename().string();
          return n == tree || n.starts_with(tree + ".part-") ||
                 (n.starts_with(tree + "_") && n.ends_with(".deb"));
        },
        lock, "is in use", version);
  }
}

status build(std::vector<std::string_view> args) {
  std::string agent, out_dir = "/usr/share/katana", cache, version, kernel = "debian",
                     kernel_config;
  bool kernel_given = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto a = args[i];
    const auto value = [&]() -> result<std::string> {
      if (i + 1 >= args.size()) {
        return fail(errc::invalid_argument, str_cat(a, " needs a value"));
      }
      return std::string(args[++i]);
    };
    if (a == "--agent") {
      agent = KATANA_TRY(value());
    } else if (a == "--output-dir") {
      out_dir = KATANA_TRY(value());
    } else if (a == "--cache-dir") {
      cache = KATANA_TRY(value());
    } else if (a == "--kernel-version") {
      version = KATANA_TRY(value());
    } else if (a == "--kernel") {
      kernel = KATANA_TRY(value());
      kernel_given = true;
      if (kernel != "debian" && kernel != "tailored") {
        return fail(errc::invalid_argument,
                    str_cat("image build: --kernel ", kernel, ": debian or tailored"));
      }
    } else if (a == "--kernel-config") {
      kernel_config = KATANA_TRY(value());
    } else {
      return fail(errc::invalid_argument, str_cat("image build: unknown argument \"", a, "\""));
    }
  }
  if (!kernel_config.empty()) {
    if (kernel_given && kernel != "tailored") {
      return fail(errc::invalid_argument,
                  "image build: --kernel-config is a fragment for --kernel tailored");
    }
    kernel = "tailored";
  }
  if (kernel == "tailored" && !version.empty()) {
    return fail(errc::invalid_argument,
                "image build: --kernel-version picks Debian's kernel; the tailored kernel is "
                "built from the linux-source package apt has");
  }
  KATANA_TRY(check_kernel_version(version));
  if (cache.empty()) {
    const char* xdg = std::getenv("XDG_CACHE_HOME");
    cache = xdg != nullptr && *xdg != '\0'   ? str_cat(xdg, "/katana")
            : ::geteuid() == 0               ? std::string("/var/cache/katana")
            : std::getenv("HOME") != nullptr ? str_cat(std::getenv("HOME"), "/.cache/katana")
                                             : std::string("/tmp/katana-cache");
  }
  if (agent.empty()) {
    if (const char* e = std::getenv("KATANA_AGENT"); e != nullptr) {
      agent = e;
    } else {
      // Next to katana-ctl: katana-agent when it is static (Release builds), else
      // katana-agent-static (the extra static agent of other build types).
      const auto bin = fs::read_symlink("/proc/self/exe").parent_path();
      agent = (bin / "katana-agent").string();
      const auto extra = bin / "katana-agent-static";
      const auto is_static = is_static_elf(agent);
      if ((!is_static || !*is_static) && fs::exists(extra)) {
        agent = extra.string();
      }
    }
  }
  if (!fs::exists(agent)) {
    return fail(errc::not_found, str_cat("image build: no agent at ", agent,
                                         " (build katana-agent-static, or katana-agent in a "
                                         "Release build, and pass --agent PATH)"));
  }
  if (!KATANA_TRY(is_static_elf(agent))) {
    return fail(errc::invalid_argument,
                str_cat("image build: ", agent,
                        " is dynamically linked; the initrd has no libraries "
                        "(use katana-agent-static, or configure with -DKATANA_AGENT_STATIC=ON)"));
  }
  std::error_code ec;
  fs::create_directories(cache, ec);
  fs::create_directories(out_dir, ec);
  if (ec) {
    return fail(ec, "create " + out_dir);
  }
  KATANA_TRY(kernel_metapackage());  // refuses, before any download, what it cannot extract
  fs::path vmlinux_cache, tree;
  katana::unique_fd image_lock;
  if (kernel == "tailored") {
    const std::string fragment = kernel_config.empty() ? std::string(tailored_kernel_fragment)
                                                       : KATANA_TRY(read_file(kernel_config),
                                                                    "image build: --kernel-config");
    auto built = KATANA_TRY(build_tailored_kernel(cache, fragment));
    image_lock = std::move(built.lock);
    vmlinux_cache = built.vmlinux;
    version = "tailored, linux-source " + built.version;
  } else {
    if (version.empty()) {
      version = KATANA_TRY(default_kernel_version());
      KATANA_TRY(check_kernel_version(version), "apt's default kernel");
    }
    progress("kernel " + version);
    // Held while the tree is used: a build of another version prunes it otherwise.
    image_lock = KATANA_TRY(
        hold_lock(fs::path(cache) / str_cat("linux-image-", version, ".lock"), LOCK_SH,
                  str_cat("waiting: kernel ", version, " is being pruned from the cache")));
    tree = fs::path(cache) / ("linux-image-" + version);
    if (!fs::exists(tree / ".katana-extracted")) {
      const auto deb = KATANA_TRY(fetch_package("linux-image-" + version, cache));
      progress("dpkg-deb -x " + deb.string());
      KATANA_TRY(extract_once(tree, [&](const fs::path& part) {
        return run(str_cat("dpkg-deb -x ", sh_quote(deb.string()), " ", sh_quote(part.string())));
      }));
    }
    vmlinux_cache = tree / "vmlinux";
    if (!fs::exists(vmlinux_cache)) {
      progress("extracting the uncompressed vmlinux (once)");
      KATANA_TRY(extract_vmlinux(tree / "boot" / ("vmlinuz-" + version), vmlinux_cache));
    } else {
      progress("vmlinux (cached)");
    }
  }
  const fs::path vmlinux_out = fs::path(out_dir) / "vmlinux";
  fs::copy_file(vmlinux_cache, vmlinux_out.string() + ".part", fs::copy_options::overwrite_existing,
                ec);
  if (ec) {
    return fail(ec, "copy vmlinux to " + out_dir);
  }
  fs::rename(vmlinux_out.string() + ".part", vmlinux_out, ec);
  if (ec) {
    return fail(ec, "rename " + vmlinux_out.string() + ".part");
  }

  progress(kernel == "debian" ? "initrd: katana-agent as /init and the guest's modules"
                              : "initrd: katana-agent as /init (the kernel has no modules)");
  guest_modules mods;
  if (kernel == "debian") {
    mods = KATANA_TRY(select_modules(tree, version));
  }
  const auto& include = mods.include;
  const auto& deps = mods.deps;
  const auto& mod_root = mods.root;
  cpio_writer cpio;
  // A kernel without modules (the tailored one) gets no lib/modules at all.
  std::set<std::string> dirs = {"dev", "proc", "sys", "run", "tmp"};
  if (kernel == "debian") {
    dirs.insert({"lib", "lib/modules", "lib/modules/" + version});
  }
  for (const auto& p : include) {
    for (auto d = fs::path("lib/modules/" + version + "/" + p).parent_path(); !d.empty();
         d = d.parent_path()) {
      dirs.insert(d.string());
    }
  }
  // Sorted: parents come before their children.
  std::map<std::string, int> entries;
  for (const auto& d : dirs) {
    entries[d] = 0;
  }
  for (const auto& p : include) {
    entries["lib/modules/" + version + "/" + p] = 1;
  }
  if (kernel == "debian") {
    entries["lib/modules/" + version + "/modules.dep"] = 2;
  }
  entries["init"] = 3;
  entries["dev/console"] = 4;
  std::string dep_text;
  for (const auto& p : include) {
    dep_text += p + ":";
    for (const auto& d : deps.at(p)) {
      dep_text += " " + d;
    }
    dep_text += "\n";
  }
  for (const auto& [name, kind] : entries) {
    switch (kind) {
      case 0:
        cpio.dir(name);
        break;
      case 1:
        cpio.file(name,
                  std::string(katana::agent::strip_module_signature(KATANA_TRY(
                      read_file(mod_root / name.substr(name.find(version) + version.size() + 1))))),
                  0644);
        break;
      case 2:
        cpio.file(name, dep_text, 0644);
        break;
      case 3:
        cpio.file(name, KATANA_TRY(read_file(agent)), 0755);
        break;
      default:
        cpio.char_device(name, 5, 1);
        break;
    }
  }
  const auto archive = cpio.finish();
  const fs::path initrd = fs::path(out_dir) / "katana-initrd.img";
  {
    std::ofstream f(initrd.string() + ".part", std::ios::binary | std::ios::trunc);
    f.write(archive.data(), static_cast<std::streamsize>(archive.size()));
    if (!f) {
      return katana::fail_errno("write " + initrd.string());
    }
  }
  fs::rename(initrd.string() + ".part", initrd, ec);
  if (ec) {
    return fail(ec, "rename " + initrd.string());
  }
  if (image_lock) {
    image_lock.reset();
    if (kernel == "debian") {
      prune_other_images(cache, version);
    }
  }
  std::printf("kernel: %s (%ju bytes, %s)\ninitrd: %s (%zu bytes, %zu modules)\n",
              vmlinux_out.c_str(), static_cast<std::uintmax_t>(fs::file_size(vmlinux_out)),
              version.c_str(), initrd.c_str(), archive.size(), include.size());
  return {};
}

}  // namespace

katana::status image_command(std::vector<std::string_view> args) {
  if (args.empty() || args.front() != "build") {
    return fail(errc::invalid_argument, "usage: katana-ctl image build [options]");
  }
  args.erase(args.begin());
  return build(std::move(args));
}

}  // namespace katana_ctl
