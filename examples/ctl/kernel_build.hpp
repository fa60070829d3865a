// katana-ctl image build --kernel tailored: katana's own guest kernel, built from Debian's
// linux-source package with a config fragment (config/kernel/x86_64.config, compiled in).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include <katana/core/error.hpp>
#include <katana/core/unique_fd.hpp>

namespace katana_ctl::image {

/// The compiled-in fragment (config/kernel/x86_64.config).
extern const std::string_view tailored_kernel_fragment;

struct tailored_kernel {
  std::filesystem::path vmlinux;  // in the cache; stripped, with its PVH note
  std::string version;            // the source package's ("6.1.192-2")
  katana::unique_fd lock;         // shared: while held, no other build prunes the vmlinux
};

/// The options `fragment` sets ("CONFIG_X=y") or unsets ("# CONFIG_X is not set") that
/// `config` (a whole .config) does not have as asked: what Kconfig dropped for unmet
/// dependencies. Empty when all survived.
std::string lost_options(std::string_view fragment, std::string_view config);

/// Builds (or finds in `cache`) the tailored kernel for `fragment`: the source is extracted
/// once per version, objects are kept (a changed fragment rebuilds what it touches), the
/// result is cached per fragment (its settings). Long the first time (~15 min on 2 cores); progress
/// on stderr, make's output in the build directory's build.log.
katana::result<tailored_kernel> build_tailored_kernel(const std::filesystem::path& cache,
                                                      std::string_view fragment);

}  // namespace katana_ctl::image
