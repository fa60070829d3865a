// Field tables: how each configuration key maps onto a member of the configuration aggregates.
// The TOML loader and the annotation overrides both go through these tables, so a key is
// spelled, typed, range-checked and restricted to its allowed values in one place.
//
//   inline constexpr field<agent_config> agent_fields[] = {
//       {.key = "enable_debug", .target = &agent_config::enable_debug}, ...};
#pragma once

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <katana/core/error.hpp>
#include <katana/core/str_cat.hpp>

namespace katana::inline v0::config {

/// A decoded configuration value, independent of the TOML library that produced it.
using value = std::variant<bool, std::int64_t, double, std::string, std::vector<std::string>>;

/// "a boolean", "an integer", ... for messages such as "expected an integer, got a string".
inline std::string_view type_name(const value& v) noexcept {
  constexpr std::string_view names[] = {"a boolean", "an integer", "a float", "a string",
                                        "an array of strings"};
  return names[v.index()];
}

/// Pointer to the member a key sets; the alternatives are the member types the tables use.
template <class Section>
using member = std::variant<bool Section::*,
                            std::int32_t Section::*,
                            std::uint32_t Section::*,
                            std::uint64_t Section::*,
                            double Section::*,
                            std::string Section::*,
                            std::vector<std::string> Section::*>;

/// Bits of field::flags.
enum field_flag : unsigned {
  absolute_path = 1u << 0,      // an absolute path when not empty (each element of a list)
  round_up_fraction = 1u << 1,  // an integer member that also accepts a float, rounded up
  annotatable = 1u << 2,        // may be overridden by an io.katacontainers.config.* annotation
  appends = 1u << 3,            // the annotation value is appended (kernel_params), not assigned
  list_json = 1u << 4,          // the annotation spells the list as a JSON array of strings
  list_semicolon = 1u << 5,     // ... as "a;b;c" (kernel_modules)
  list_space = 1u << 6,         // ... as "a b c" (experimental)
};

/// Hypervisor section kinds, as bits of field::kinds.
enum hypervisor_kind_bit : unsigned {
  hv_qemu = 1u << 0,
  hv_clh = 1u << 1,
  hv_firecracker = 1u << 2,
  hv_stratovirt = 1u << 3,
  hv_remote = 1u << 4,
  hv_dragonball = 1u << 5,
  hv_all = (1u << 6) - 1,
};

/// One configuration key of a section.
template <class Section>
struct field {
  std::string_view key;
  member<Section> target;
  unsigned flags = 0;
  std::span<const std::string_view> choices = {};  // allowed strings; empty: any
  std::string_view annotation = {};                // annotation suffix when it is not `key`
  std::vector<std::string> Section::*valid_paths = nullptr;  // globs gating the annotation
  std::string_view valid_paths_key = {};
  unsigned kinds = hv_all;  // hypervisor sections that know the key

  [[nodiscard]] constexpr std::string_view annotation_name() const noexcept {
    return annotation.empty() ? key : annotation;
  }
};

template <class Section, std::size_t N>
constexpr const field<Section>* find_field(const field<Section> (&table)[N],
                                           std::string_view key) noexcept {
  for (const auto& f : table) {
    if (f.key == key) {
      return &f;
    }
  }
  return nullptr;
}

template <class Section, std::size_t N>
constexpr const field<Section>* find_annotation(const field<Section> (&table)[N],
                                                std::string_view name) noexcept {
  for (const auto& f : table) {
    if ((f.flags & annotatable) != 0 && f.annotation_name() == name) {
      return &f;
    }
  }
  return nullptr;
}

namespace detail {

inline std::string in_quotes(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
    }
    out += c;
  }
  out += '"';
  return out;
}

inline std::string join(std::span<const std::string_view> items, std::string_view sep) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) {
      out += sep;
    }
    out += item.empty() ? std::string_view("\"\"") : item;
  }
  return out;
}

inline unexpected<error> bad(std::string message) {
  return fail(errc::invalid_config, std::move(message));
}

template <class Int>
result<Int> narrow(std::int64_t v) {
  if constexpr (std::is_signed_v<Int>) {
    if (v < std::numeric_limits<Int>::min() || v > std::numeric_limits<Int>::max()) {
      return bad(str_cat(v, " is out of range [", std::numeric_limits<Int>::min(), ", ",
                         std::numeric_limits<Int>::max(), "]"));
    }
  } else {
    if (v < 0) {
      return bad(str_cat("expected a non-negative integer, got ", v));
    }
    if (static_cast<std::uint64_t>(v) > std::numeric_limits<Int>::max()) {
      return bad(str_cat(v, " is out of range [0, ", std::numeric_limits<Int>::max(), "]"));
    }
  }
  return static_cast<Int>(v);
}

inline status check_string(std::string_view s,
                           unsigned flags,
                           std::span<const std::string_view> choices) {
  if (!choices.empty() && std::find(choices.begin(), choices.end(), s) == choices.end()) {
    return bad(str_cat(in_quotes(s), " is not one of ", join(choices, ", ")));
  }
  if ((flags & absolute_path) != 0 && !s.empty() && s.front() != '/') {
    return bad(str_cat(in_quotes(s), " is not an absolute path"));
  }
  return {};
}

}  // namespace detail

/// Stores `v` into the member `f` names, converting and checking it. The error context is the
/// reason only ("expected an integer, got a string"); callers prefix file, line and key.
template <class Section>
status assign(Section& section, const field<Section>& f, value v) {
  return std::visit(
      [&](auto ptr) -> status {
        using member_type = std::remove_reference_t<decltype(section.*ptr)>;
        auto& out = section.*ptr;
        if constexpr (std::is_same_v<member_type, bool>) {
          if (const auto* b = std::get_if<bool>(&v)) {
            out = *b;
            return {};
          }
          return detail::bad(str_cat("expected a boolean, got ", type_name(v)));
        } else if constexpr (std::is_integral_v<member_type>) {
          std::int64_t i = 0;
          if (const auto* p = std::get_if<std::int64_t>(&v)) {
            i = *p;
          } else if (const auto* d = std::get_if<double>(&v);
                     d != nullptr && (f.flags & round_up_fraction) != 0) {
            if (!std::isfinite(*d) || std::abs(*d) > 1e15) {
              return detail::bad(str_cat(*d, " is out of range"));
            }
            i = static_cast<std::int64_t>(std::ceil(*d));
          } else {
            return detail::bad(str_cat("expected an integer, got ", type_name(v)));
          }
          auto n = detail::narrow<member_type>(i);
          if (!n) {
            return unexpected<error>(std::move(n).error());
          }
          out = *n;
          return {};
        } else if constexpr (std::is_same_v<member_type, double>) {
          if (const auto* p = std::get_if<std::int64_t>(&v)) {
            out = static_cast<double>(*p);
            return {};
          }
          if (const auto* d = std::get_if<double>(&v)) {
            out = *d;
            return {};
          }
          return detail::bad(str_cat("expected a number, got ", type_name(v)));
        } else if constexpr (std::is_same_v<member_type, std::string>) {
          auto* s = std::get_if<std::string>(&v);
          if (s == nullptr) {
            return detail::bad(str_cat("expected a string, got ", type_name(v)));
          }
          if (auto st = detail::check_string(*s, f.flags, f.choices); !st) {
            return st;
          }
          out = std::move(*s);
          return {};
        } else {
          auto* list = std::get_if<std::vector<std::string>>(&v);
          if (list == nullptr) {
            return detail::bad(str_cat("expected an array of strings, got ", type_name(v)));
          }
          for (std::size_t i = 0; i < list->size(); ++i) {
            if (auto st = detail::check_string((*list)[i], f.flags, f.choices); !st) {
              return unexpected<error>(std::move(st).error().wrap(str_cat("element ", i)));
            }
          }
          out = std::move(*list);
          return {};
        }
      },
      f.target);
}

namespace detail {

/// Go's strconv.ParseBool, which Kata uses for boolean annotations.
inline result<bool> parse_bool(std::string_view s) {
  for (const std::string_view t : {"1", "t", "T", "TRUE", "true", "True"}) {
    if (s == t) {
      return true;
    }
  }
  for (const std::string_view f : {"0", "f", "F", "FALSE", "false", "False"}) {
    if (s == f) {
      return false;
    }
  }
  return bad(str_cat(in_quotes(s), " is not a boolean"));
}

/// A JSON array of strings: ["a", "b\"c"]. Enough JSON for virtio_fs_extra_args.
inline result<std::vector<std::string>> parse_json_strings(std::string_view s) {
  const auto invalid = [&] {
    return bad(str_cat(in_quotes(s), " is not a JSON array of strings"));
  };
  std::vector<std::string> out;
  std::size_t i = 0;
  const auto skip_ws = [&] {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) {
      ++i;
    }
  };
  skip_ws();
  if (i >= s.size() || s[i] != '[') {
    return invalid();
  }
  ++i;
  skip_ws();
  if (i < s.size() && s[i] == ']') {
    ++i;
    skip_ws();
    return i == s.size() ? result<std::vector<std::string>>(std::move(out)) : invalid();
  }
  for (;;) {
    skip_ws();
    if (i >= s.size() || s[i] != '"') {
      return invalid();
    }
    ++i;
    std::string item;
    for (;;) {
      if (i >= s.size()) {
        return invalid();
      }
      const char c = s[i++];
      if (c == '"') {
        break;
      }
      if (static_cast<unsigned char>(c) < 0x20) {
        return invalid();
      }
      if (c != '\\') {
        item += c;
        continue;
      }
      if (i >= s.size()) {
        return invalid();
      }
      const char e = s[i++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          item += e;
          break;
        case 'n':
          item += '\n';
          break;
        case 't':
          item += '\t';
          break;
        case 'r':
          item += '\r';
          break;
        case 'b':
          item += '\b';
          break;
        case 'f':
          item += '\f';
          break;
        default:  // \uXXXX is not needed for command-line arguments
          return invalid();
      }
    }
    out.push_back(std::move(item));
    skip_ws();
    if (i < s.size() && s[i] == ',') {
      ++i;
      continue;
    }
    if (i < s.size() && s[i] == ']') {
      ++i;
      skip_ws();
      return i == s.size() ? result<std::vector<std::string>>(std::move(out)) : invalid();
    }
    return invalid();
  }
}

inline std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  while (!s.empty()) {
    const auto at = s.find(sep);
    auto piece = s.substr(0, at);
    if (sep == ' ') {
      while (!piece.empty() && piece.front() == ' ') {
        piece.remove_prefix(1);
      }
    }
    if (!piece.empty()) {
      out.emplace_back(piece);
    }
    if (at == std::string_view::npos) {
      break;
    }
    s.remove_prefix(at + 1);
  }
  return out;
}

}  // namespace detail

/// Converts annotation text to the type of the member `f` names (integers, floats, Go
/// booleans, lists in the spelling the field declares) and assigns it.
template <class Section>
status assign_text(Section& section, const field<Section>& f, std::string_view text) {
  const auto parsed = std::visit(
      [&](auto ptr) -> result<value> {
        using member_type = std::remove_reference_t<decltype(section.*ptr)>;
        if constexpr (std::is_same_v<member_type, bool>) {
          auto b = detail::parse_bool(text);
          if (!b) {
            return unexpected<error>(std::move(b).error());
          }
          return value(*b);
        } else if constexpr (std::is_integral_v<member_type> ||
                             std::is_same_v<member_type, double>) {
          std::int64_t i = 0;
          const auto* end = text.data() + text.size();
          if (auto [p, ec] = std::from_chars(text.data(), end, i); ec == std::errc() && p == end) {
            return value(i);
          }
          if (std::is_same_v<member_type, double> || (f.flags & round_up_fraction) != 0) {
            double d = 0;
            if (auto [p, ec] = std::from_chars(text.data(), end, d);
                ec == std::errc() && p == end) {
              return value(d);
            }
          }
          return detail::bad(str_cat(detail::in_quotes(text), " is not a number"));
        } else if constexpr (std::is_same_v<member_type, std::string>) {
          if ((f.flags & appends) != 0 && !(section.*ptr).empty()) {
            return value(text.empty() ? section.*ptr : str_cat(section.*ptr, " ", text));
          }
          return value(std::string(text));
        } else {
          if ((f.flags & list_json) != 0) {
            auto list = detail::parse_json_strings(text);
            if (!list) {
              return unexpected<error>(std::move(list).error());
            }
            return value(std::move(*list));
          }
          return value(detail::split(text, (f.flags & list_semicolon) != 0 ? ';' : ' '));
        }
      },
      f.target);
  if (!parsed) {
    return unexpected<error>(parsed.error());
  }
  return assign(section, f, *parsed);
}

}  // namespace katana::inline v0::config
