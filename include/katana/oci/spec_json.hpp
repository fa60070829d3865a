// config.json <-> oci::spec. The JSON adapter: the only spec header that sees nlohmann.
//
// Errors (never exceptions) name the document and the member:
//   "config.json: parse error at byte 17: syntax error while parsing value - ..." (parse_error)
//   "config.json: process.user.uid: expected unsigned integer, got string"       (invalid_spec)
// Types are strict (no string->number, no fractions, range-checked integers); unknown members
// are ignored for forward compatibility and are not kept; `null` counts as absent except for
// required members, as with the Go bindings.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

#include <katana/core/error.hpp>
#include <katana/oci/detail/codec_json.hpp>
#include <katana/oci/detail/read_file.hpp>
#include <katana/oci/spec.hpp>

namespace katana::inline v0::oci {

/// load_spec refuses larger files.
inline constexpr std::size_t max_spec_size = std::size_t{16} << 20;

/// Parses a config.json document; `source` prefixes error messages.
inline result<spec> parse_spec(std::string_view text, std::string_view source = "config.json") {
  return detail::parse_document<spec>(text, source);
}

/// Reads and parses a config.json file. Errors start with the path:
/// "open /b/config.json: No such file or directory", "/b/config.json: process.cwd: ...".
inline result<spec> load_spec(const std::filesystem::path& config_json) {
  auto text = detail::read_small_file(config_json, max_spec_size);
  if (!text) {
    return unexpected<error>(std::move(text).error());
  }
  return parse_spec(*text, config_json.native());
}

/// The JSON text of a spec: compact with indent < 0, else pretty-printed. Unset optional
/// members are omitted, so parse_spec(to_json(s)) == s.
inline std::string to_json(const spec& s, int indent = -1) {
  return detail::dump(detail::write(s), indent);
}

}  // namespace katana::inline v0::oci
