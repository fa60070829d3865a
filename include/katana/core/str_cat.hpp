// str_cat: concatenates strings and numbers (libstdc++ 12 has no std::format).
#pragma once

#include <charconv>
#include <concepts>
#include <string>
#include <string_view>
#include <type_traits>

#include <katana/config.hpp>

namespace katana::inline v0 {

namespace detail {
template <class T>
void str_append(std::string& out, const T& v) {
  if constexpr (std::is_same_v<T, bool>) {
    out += v ? "true" : "false";
  } else if constexpr (std::is_same_v<T, char>) {
    out += v;
  } else if constexpr (std::is_integral_v<T>) {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, end);
  } else if constexpr (std::is_floating_point_v<T>) {
    char buf[64];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, end);
  } else if constexpr (std::is_enum_v<T>) {
    str_append(out, static_cast<std::underlying_type_t<T>>(v));
  } else {
    out += std::string_view(v);
  }
}
}  // namespace detail

template <class... Args>
[[nodiscard]] std::string str_cat(const Args&... args) {
  std::string out;
  (detail::str_append(out, args), ...);
  return out;
}

}  // namespace katana::inline v0
