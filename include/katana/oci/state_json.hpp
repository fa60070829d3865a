// The state document <-> oci::state, with the conventions of spec_json.hpp.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

#include <katana/core/error.hpp>
#include <katana/oci/detail/codec_json.hpp>
#include <katana/oci/detail/read_file.hpp>
#include <katana/oci/state.hpp>

namespace katana::inline v0::oci {

inline constexpr std::size_t max_state_size = std::size_t{1} << 20;

inline result<state> parse_state(std::string_view text, std::string_view source = "state.json") {
  return detail::parse_document<state>(text, source);
}

inline result<state> load_state(const std::filesystem::path& state_json) {
  auto text = detail::read_small_file(state_json, max_state_size);
  if (!text) {
    return unexpected<error>(std::move(text).error());
  }
  return parse_state(*text, state_json.native());
}

inline std::string to_json(const state& s, int indent = -1) {
  return detail::dump(detail::write(s), indent);
}

}  // namespace katana::inline v0::oci
