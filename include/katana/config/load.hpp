// Reading configuration.toml. Lookup order (the first that applies wins):
//   1. load_options::path (the shim's ConfigPath option; must exist)
//   2. $KATANA_CONF_FILE (must exist when set)
//   3. /etc/katana/configuration.toml
//   4. /usr/share/defaults/katana/configuration.toml
//   5. the embedded defaults (config/configuration.toml of the source tree, see defaults.hpp)
// then every `*.toml` file of `config.d/` next to the chosen file, in lexical order, each
// overriding the keys it sets (for the embedded defaults: /etc/katana/config.d/).
//
// Unknown sections and keys are warnings; a value of the wrong type is an error naming file,
// line and key: "configuration.toml:12: hypervisor.qemu.default_vcpus: expected an integer, got
// a string". The result is neither adjusted to the host nor validated (validate.hpp).
//
// toml11 is used by impl/load.ipp only, which this header includes at its end (Asio style), so
// nothing needs to be compiled separately; no other katana header sees <toml.hpp>.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <katana/config/configuration.hpp>
#include <katana/config/defaults.hpp>
#include <katana/config/detail/toml_text.hpp>
#include <katana/core/error.hpp>

namespace katana::inline v0::config {

/// The environment variable naming a configuration file.
inline constexpr const char* conf_file_env = "KATANA_CONF_FILE";
/// The name under which the embedded defaults appear in messages and `sources`.
inline constexpr std::string_view embedded_name = "<embedded defaults>";

struct load_options {
  std::filesystem::path path;   // an explicit file; empty: look it up
  bool use_environment = true;  // consult $KATANA_CONF_FILE
  std::vector<std::filesystem::path> search_paths = {
      "/etc/katana/configuration.toml", "/usr/share/defaults/katana/configuration.toml"};
  bool embedded_fallback = true;         // use the embedded defaults when no file exists
  bool drop_ins = true;                  // merge <dir>/config.d/*.toml
  detail::toml_text_limits limits = {};  // per file: size, nesting
};

struct loaded_configuration {
  configuration config;
  warnings notes;                    // unknown keys and sections, skipped drop-ins
  std::vector<std::string> sources;  // what was merged, in order
};

/// Parses one TOML document into a fresh configuration. `name` is used in messages.
inline result<configuration> parse(std::string_view text,
                                   std::string_view name,
                                   warnings& notes,
                                   const detail::toml_text_limits& limits = {});

/// Applies one TOML document on top of `cfg`: the keys it sets override, the rest stays.
inline status merge(configuration& cfg,
                    std::string_view text,
                    std::string_view name,
                    warnings& notes,
                    const detail::toml_text_limits& limits = {});

/// Finds, reads and merges the configuration as described above.
inline result<loaded_configuration> load(const load_options& options = {});

/// The embedded defaults, parsed.
inline result<configuration> embedded_defaults();

}  // namespace katana::inline v0::config

#include <katana/config/impl/load.ipp>
