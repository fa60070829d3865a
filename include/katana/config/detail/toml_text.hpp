// The gate in front of toml11: text that reaches toml::parse is well-formed UTF-8 without
// control characters, bounded in size and nesting.
//
// Why: toml11 3.7.1 reads past its buffer when a string token holds invalid UTF-8 (every
// string parser resets a location over the token with an iterator into the whole file; found by
// libFuzzer with `[']\xb1[']\xb1`, upstream ToruNiina/toml11#199). The over-read only happens
// on the invalid-UTF-8 path, and a file that is valid UTF-8 as a whole has valid UTF-8 in every
// token (tokens start and end at ASCII quotes), so rejecting invalid UTF-8 here - with the same
// definition toml11 uses, RFC 3629 without overlongs or surrogates - closes it. Control bytes
// are not allowed by TOML anywhere except tab, LF and CR LF, so they are refused here too.
//
// toml11 parses nested arrays and inline tables recursively (under ASan ~1000 levels overflow an
// 8 MiB stack). Nesting is bounded twice: a lexer that knows strings and comments reports depth
// over `max_depth` with its position, and - because that lexer could disagree with toml11 on
// malformed input - the total number of '[' and '{' bytes, wherever they are, is capped too.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include <katana/core/error.hpp>
#include <katana/core/str_cat.hpp>

namespace katana::inline v0::config::detail {

struct toml_text_limits {
  std::size_t max_bytes = std::size_t{1} << 20;  // 1 MiB: Kata's files are ~30 KiB
  std::size_t max_depth = 32;                    // nested [ and { outside strings and comments
  std::size_t max_brackets = 256;                // '[' and '{' bytes anywhere (bounds recursion)
};

/// Length of the well-formed UTF-8 sequence at s[i] (RFC 3629 table 3-7), 0 if there is none.
constexpr std::size_t utf8_sequence_length(std::string_view s, std::size_t i) noexcept {
  const auto at = [&](std::size_t k) -> unsigned {
    return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0x100u;
  };
  const auto cont = [&](std::size_t k, unsigned lo = 0x80, unsigned hi = 0xBF) {
    return at(k) >= lo && at(k) <= hi;
  };
  const unsigned b = at(0);
  if (b < 0x80) {
    return 1;
  }
  if (b >= 0xC2 && b <= 0xDF) {
    return cont(1) ? 2 : 0;
  }
  if (b >= 0xE0 && b <= 0xEF) {
    const unsigned lo = b == 0xE0 ? 0xA0 : 0x80;
    const unsigned hi = b == 0xED ? 0x9F : 0xBF;
    return cont(1, lo, hi) && cont(2) ? 3 : 0;
  }
  if (b >= 0xF0 && b <= 0xF4) {
    const unsigned lo = b == 0xF0 ? 0x90 : 0x80;
    const unsigned hi = b == 0xF4 ? 0x8F : 0xBF;
    return cont(1, lo, hi) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

/// Checks `text` before it is given to toml11. Errors name the place:
///   "configuration.toml:3:7: invalid UTF-8 (byte 0xb1)"
inline status check_toml_text(std::string_view text,
                              std::string_view name,
                              const toml_text_limits& limits = {}) {
  if (text.size() > limits.max_bytes) {
    return fail(errc::parse_error, str_cat(name, ": ", text.size(),
                                           " bytes is more than the limit of ", limits.max_bytes));
  }
  std::size_t brackets = 0;
  for (const char c : text) {
    brackets += (c == '[' || c == '{') ? 1 : 0;
  }
  if (brackets > limits.max_brackets) {
    return fail(errc::parse_error,
                str_cat(name, ": more than ", limits.max_brackets, " '[' and '{' characters"));
  }
  std::size_t line = 1;
  std::size_t line_start = 0;
  const auto bad = [&](std::size_t i, std::string_view what) {
    return fail(errc::parse_error, str_cat(name, ":", line, ":", i - line_start + 1, ": ", what));
  };
  const auto hex = [](unsigned char c) {
    constexpr char digits[] = "0123456789abcdef";
    return str_cat("0x", digits[c >> 4], digits[c & 15]);
  };
  // A small lexer that knows where strings and comments are, for the depth count only.
  enum class state { code, comment, basic, literal, ml_basic, ml_literal };
  state st = state::code;
  std::size_t depth = 0;
  bool escaped = false;  // the previous character was a backslash in a basic string
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      const auto n = utf8_sequence_length(text, i);
      if (n == 0) {
        return bad(i, str_cat("invalid UTF-8 (byte ", hex(c), ")"));
      }
      i += n;
      escaped = false;
      continue;
    }
    if (c == '\n') {
      escaped = false;
      if (st == state::comment || st == state::basic || st == state::literal) {
        st = state::code;  // a single-line string cannot span lines; toml11 reports it
      }
      ++line;
      line_start = ++i;
      continue;
    }
    if (c == '\r') {
      if (i + 1 >= text.size() || text[i + 1] != '\n') {
        return bad(i, "carriage return not followed by a line feed");
      }
      ++i;
      continue;
    }
    if ((c < 0x20 && c != '\t') || c == 0x7F) {
      return bad(i, str_cat("control character ", hex(c), " is not allowed in TOML"));
    }
    const auto rest = text.substr(i);
    if (escaped) {
      escaped = false;
      ++i;
      continue;
    }
    switch (st) {
      case state::code:
        if (c == '#') {
          st = state::comment;
        } else if (rest.starts_with("\"\"\"")) {
          st = state::ml_basic;
          i += 3;
          continue;
        } else if (rest.starts_with("'''")) {
          st = state::ml_literal;
          i += 3;
          continue;
        } else if (c == '"') {
          st = state::basic;
        } else if (c == '\'') {
          st = state::literal;
        } else if (c == '[' || c == '{') {
          if (++depth > limits.max_depth) {
            return bad(i, str_cat("nested deeper than ", limits.max_depth, " levels"));
          }
        } else if ((c == ']' || c == '}') && depth > 0) {
          --depth;
        }
        break;
      case state::comment:
        break;
      case state::basic:
        if (c == '\\') {
          escaped = true;
        }
        if (c == '"') {
          st = state::code;
        }
        break;
      case state::literal:
        if (c == '\'') {
          st = state::code;
        }
        break;
      case state::ml_basic:
        if (c == '\\') {
          escaped = true;
        } else if (rest.starts_with("\"\"\"")) {
          st = state::code;  // up to two more quotes belong to the content
          i += rest.starts_with("\"\"\"\"\"") ? 5u : rest.starts_with("\"\"\"\"") ? 4u : 3u;
          continue;
        }
        break;
      case state::ml_literal:
        if (rest.starts_with("'''")) {
          st = state::code;
          i += rest.starts_with("'''''") ? 5u : rest.starts_with("''''") ? 4u : 3u;
          continue;
        }
        break;
    }
    ++i;
  }
  return {};
}

}  // namespace katana::inline v0::config::detail
