// The JSON reader and writer behind spec_json.hpp and state_json.hpp, driven by the field
// tables of fields.hpp. The reader never throws: nlohmann is only asked for values whose type
// it has checked, and parse exceptions are caught where the text is parsed.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include <katana/core/error.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/try.hpp>
#include <katana/oci/detail/fields.hpp>
#include <katana/oci/spec.hpp>
#include <katana/oci/state.hpp>

namespace katana::inline v0::oci::detail {

// ordered_json keeps the spec's member order when writing; lookups are linear but the
// spec's objects are small, and the maps (annotations ...) are iterated, not searched.
using json = nlohmann::ordered_json;

/// Deeper documents are refused before nlohmann builds them (no legitimate config.json
/// comes near this; it bounds the work hostile input can cause).
inline constexpr std::size_t max_nesting = 256;

template <class T>
inline constexpr bool is_optional_v = false;
template <class T>
inline constexpr bool is_optional_v<std::optional<T>> = true;
template <class T>
inline constexpr bool is_vector_v = false;
template <class T>
inline constexpr bool is_vector_v<std::vector<T>> = true;
template <class T>
inline constexpr bool is_map_v = false;
template <class T>
inline constexpr bool is_map_v<std::map<std::string, T>> = true;

template <class T>
constexpr std::string_view integer_name() {
  constexpr auto bits = std::numeric_limits<T>::digits + (std::is_signed_v<T> ? 1 : 0);
  if constexpr (std::is_signed_v<T>) {
    return bits == 16 ? "int16" : bits == 32 ? "int32" : "int64";
  } else {
    return bits == 16 ? "uint16" : bits == 32 ? "uint32" : "uint64";
  }
}

/// Reads a document into an aggregate, naming the offending member on failure:
/// "config.json: process.user.uid: expected unsigned integer, got string".
class json_reader {
 public:
  explicit json_reader(std::string_view source) : source_(source) {}

  template <class T>
  status read(const json& j, T& out) {
    if constexpr (std::is_same_v<T, bool>) {
      if (!j.is_boolean()) {
        return wrong_type(j, "boolean");
      }
      out = j.get<bool>();
    } else if constexpr (std::is_integral_v<T>) {
      return read_integer(j, out);
    } else if constexpr (std::is_same_v<T, std::string>) {
      if (!j.is_string()) {
        return wrong_type(j, "string");
      }
      const auto& s = j.get_ref<const std::string&>();
      // Every string here ends up in a C API, where a NUL would silently truncate it.
      if (s.find('\0') != std::string::npos) {
        return problem("string contains a NUL character");
      }
      out = s;
    } else if constexpr (std::is_same_v<T, container_status>) {
      std::string s;
      KATANA_TRY(read(j, s));
      auto v = parse_container_status(s);
      if (!v) {
        return problem(str_cat("\"", s, "\" is not a container status"));
      }
      out = *v;
    } else if constexpr (is_optional_v<T>) {
      out.emplace();
      return read(j, *out);
    } else if constexpr (is_vector_v<T>) {
      if (!j.is_array()) {
        return wrong_type(j, "array");
      }
      out.clear();
      out.reserve(j.size());
      for (std::size_t i = 0; i < j.size(); ++i) {
        const auto mark = push_index(i);
        out.emplace_back();
        KATANA_TRY(read(j[i], out.back()));
        path_.resize(mark);
      }
    } else if constexpr (is_map_v<T>) {
      if (!j.is_object()) {
        return wrong_type(j, "object");
      }
      out.clear();
      for (const auto& [key, value] : j.items()) {
        const auto mark = push_key(key);
        if (key.find('\0') != std::string::npos) {
          return problem("key contains a NUL character");
        }
        KATANA_TRY(read(value, out[key]));
        path_.resize(mark);
      }
    } else {
      if (!j.is_object()) {
        return wrong_type(j, "object");
      }
      status st;
      for_each_field(out, [&](std::string_view name, auto& member, presence p) {
        if (st) {
          st = read_member(j, name, member, p);
        }
      });
      return st;
    }
    return {};
  }

 private:
  template <class M>
  status read_member(const json& object, std::string_view name, M& member, presence p) {
    const auto mark = push_name(name);
    auto it = object.find(name);
    // null stands for "absent" as in Go, except where a value is required.
    if (it == object.end() || (it->is_null() && p != presence::required)) {
      if (p == presence::required) {
        return problem("missing required field");
      }
      member = M{};
    } else {
      KATANA_TRY(read(*it, member));
    }
    path_.resize(mark);
    return {};
  }

  template <class T>
  status read_integer(const json& j, T& out) {
    constexpr std::string_view expected = std::is_signed_v<T> ? "integer" : "unsigned integer";
    if (j.is_number_unsigned()) {
      const auto v = j.get<std::uint64_t>();
      if (v > static_cast<std::uint64_t>(std::numeric_limits<T>::max())) {
        return out_of_range<T>(j);
      }
      out = static_cast<T>(v);
    } else if (j.is_number_integer()) {  // negative: non-negative ones parse as unsigned
      const auto v = j.get<std::int64_t>();
      if constexpr (std::is_unsigned_v<T>) {
        if (v < 0) {
          return problem(str_cat("expected ", expected, ", got ", j.dump()));
        }
      }
      if (std::cmp_less(v, std::numeric_limits<T>::min()) ||
          std::cmp_greater(v, std::numeric_limits<T>::max())) {
        return out_of_range<T>(j);
      }
      out = static_cast<T>(v);
    } else if (j.is_number_float()) {
      // Integers beyond 64 bits parse as doubles: report them as out of range, not as fractions.
      const double d = j.get<double>();
      if (std::isfinite(d) && std::trunc(d) == d && std::fabs(d) >= 9.2e18) {
        return out_of_range<T>(j);
      }
      return problem(str_cat("expected ", expected, ", got ", j.dump()));
    } else {
      return wrong_type(j, expected);
    }
    return {};
  }

  template <class T>
  unexpected<error> out_of_range(const json& j) {
    return problem(str_cat(j.dump(), " is out of range for ", integer_name<T>()));
  }

  unexpected<error> wrong_type(const json& j, std::string_view expected) {
    return problem(str_cat("expected ", expected, ", got ", j.type_name()));
  }

  unexpected<error> problem(std::string_view what) const {
    if (path_.empty()) {
      return fail(errc::invalid_spec, str_cat(source_, ": ", what));
    }
    return fail(errc::invalid_spec, str_cat(source_, ": ", path_, ": ", what));
  }

  std::size_t push_name(std::string_view name) {
    const auto mark = path_.size();
    if (!path_.empty()) {
      path_ += '.';
    }
    path_ += name;
    return mark;
  }
  std::size_t push_index(std::size_t i) {
    const auto mark = path_.size();
    path_ += str_cat("[", i, "]");
    return mark;
  }
  std::size_t push_key(std::string_view key) {
    const auto mark = path_.size();
    path_ += str_cat("[\"", key, "\"]");
    return mark;
  }

  std::string_view source_;
  std::string path_;
};

template <class T>
bool is_unset(const T& v) {
  if constexpr (std::is_same_v<T, bool>) {
    return !v;
  } else if constexpr (std::is_arithmetic_v<T>) {
    return v == 0;
  } else if constexpr (is_optional_v<T>) {
    return !v.has_value();
  } else if constexpr (std::is_same_v<T, std::string> || is_vector_v<T> || is_map_v<T>) {
    return v.empty();
  } else {
    return false;
  }
}

/// The JSON value of an aggregate, with the spec's member names and order; unset optional
/// members are left out.
template <class T>
json write(const T& v) {
  if constexpr (std::is_same_v<T, bool> || std::is_integral_v<T> ||
                std::is_same_v<T, std::string>) {
    return json(v);
  } else if constexpr (std::is_same_v<T, container_status>) {
    return json(std::string(to_string(v)));
  } else if constexpr (is_optional_v<T>) {
    return write(*v);
  } else if constexpr (is_vector_v<T>) {
    json out = json::array();
    for (const auto& e : v) {
      out.push_back(write(e));
    }
    return out;
  } else if constexpr (is_map_v<T>) {
    json out = json::object();
    for (const auto& [key, value] : v) {
      out.emplace(key, write(value));
    }
    return out;
  } else {
    json out = json::object();
    for_each_field(v, [&](std::string_view name, const auto& member, presence p) {
      if (p != presence::optional || !is_unset(member)) {
        out.emplace(std::string(name), write(member));
      }
    });
    return out;
  }
}

/// Text of a value. Strings that are not UTF-8 (possible only in hand-built aggregates: the
/// parser rejects them) are written with U+FFFD instead of throwing.
inline std::string dump(const json& j, int indent) {
  return j.dump(indent, ' ', false, json::error_handler_t::replace);
}

/// Refuses documents nested deeper than max_nesting. Strings are skipped so brackets inside
/// them do not count; malformed input is left for the parser to report.
inline status check_nesting(std::string_view text, std::string_view source) {
  std::size_t depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_nesting) {
        return fail(errc::parse_error, str_cat(source, ": parse error at byte ", i + 1,
                                               ": nested deeper than ", max_nesting, " levels"));
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return {};
}

/// nlohmann's parse_error text without its "[json.exception...] parse error at line 1, column
/// 18: " prefix (the byte offset is reported separately).
inline std::string_view parse_error_reason(std::string_view what) {
  if (auto at = what.find("parse error"); at != std::string_view::npos) {
    if (auto colon = what.find(": ", at); colon != std::string_view::npos) {
      return what.substr(colon + 2);
    }
  }
  return what;
}

/// nlohmann's exception text without its "[json.exception.<kind>.<id>] " prefix.
inline std::string_view exception_reason(std::string_view what) {
  if (what.starts_with("[json.exception.")) {
    if (auto end = what.find("] "); end != std::string_view::npos) {
      return what.substr(end + 2);
    }
  }
  return what;
}

/// Parses text into T; every failure is an error value naming `source`.
template <class T>
result<T> parse_document(std::string_view text, std::string_view source) {
  KATANA_TRY(check_nesting(text, source));
  json j;
  try {
    j = json::parse(text.begin(), text.end());
  } catch (const json::parse_error& e) {
    return fail(errc::parse_error, str_cat(source, ": parse error at byte ", e.byte, ": ",
                                           parse_error_reason(e.what())));
  } catch (const json::exception& e) {  // out_of_range.406: a number beyond double
    return fail(errc::parse_error, str_cat(source, ": parse error: ", exception_reason(e.what())));
  }
  try {
    T out;
    KATANA_TRY(json_reader(source).read(j, out));
    return out;
  } catch (const json::exception& e) {  // a reader bug: it checks types before asking
    return fail(errc::internal, str_cat(source, ": ", e.what()));
  }
}

}  // namespace katana::inline v0::oci::detail
