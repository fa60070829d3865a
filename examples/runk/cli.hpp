// katana-runk's command-line model: runc's flag syntax (urfave/cli: "--flag value",
// "--flag=value", "-f", single-dash long flags), signal names, container ids, sizes.
#pragma once

#include <charconv>
#include <csignal>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <katana/core/error.hpp>
#include <katana/core/str_cat.hpp>

namespace runk {

using katana::errc;
using katana::fail;
using katana::result;
using katana::status;

/// One flag a command knows: long name (no dashes), optional short letter, value or bool.
struct flag {
  std::string_view name;
  char short_name = 0;
  bool value = false;
};

/// The parsed command line of one command.
struct parsed_args {
  std::map<std::string, std::vector<std::string>, std::less<>> values;
  std::map<std::string, bool, std::less<>> bools;
  std::vector<std::string> positional;
  std::vector<std::string> ignored;  // flags runc accepts that katana-runk does not use

  [[nodiscard]] bool has(std::string_view name) const {
    const auto it = bools.find(name);
    return it != bools.end() && it->second;
  }
  [[nodiscard]] std::optional<std::string> get(std::string_view name) const {
    const auto it = values.find(name);
    if (it == values.end() || it->second.empty()) {
      return std::nullopt;
    }
    return it->second.back();
  }
  [[nodiscard]] std::vector<std::string> all(std::string_view name) const {
    const auto it = values.find(name);
    return it == values.end() ? std::vector<std::string>{} : it->second;
  }
};

inline const flag* find_flag(std::span<const flag> flags, std::string_view name) {
  for (const flag& f : flags) {
    if (name.size() == 1 ? f.short_name == name[0] : f.name == name) {
      return &f;
    }
  }
  return nullptr;
}

inline std::optional<bool> parse_bool(std::string_view v) {
  if (v == "true" || v == "1" || v == "t" || v == "T" || v == "TRUE" || v == "True") {
    return true;
  }
  if (v == "false" || v == "0" || v == "f" || v == "F" || v == "FALSE" || v == "False") {
    return false;
  }
  return std::nullopt;
}

/// Parses flags anywhere among the arguments (runc's commands accept them before and after
/// the id). With `stop_after` > 0, parsing stops after that many positionals and the rest is
/// taken verbatim (exec's command). Unknown flags are ignored (they may be runc options that
/// clients pass); "--" ends the flags.
inline result<parsed_args> parse_args(std::span<const std::string> args,
                                      std::span<const flag> flags,
                                      std::size_t stop_after = 0) {
  parsed_args out;
  std::size_t i = 0;
  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (stop_after > 0 && out.positional.size() >= stop_after) {
      break;
    }
    if (a == "--") {
      ++i;
      break;
    }
    if (a.size() < 2 || a[0] != '-') {
      out.positional.push_back(a);
      continue;
    }
    std::string_view body = std::string_view(a).substr(a[1] == '-' ? 2 : 1);
    std::optional<std::string> inline_value;
    if (const auto eq = body.find('='); eq != std::string_view::npos) {
      inline_value = std::string(body.substr(eq + 1));
      body = body.substr(0, eq);
    }
    const flag* f = find_flag(flags, body);
    if (f == nullptr && a[1] != '-' && body.size() > 1 && !inline_value) {
      // Combined short bool flags ("-dt"): every letter must be a known bool flag.
      bool all_known = true;
      for (const char c : body) {
        const flag* s = find_flag(flags, std::string_view(&c, 1));
        all_known = all_known && s != nullptr && !s->value;
      }
      if (all_known) {
        for (const char c : body) {
          out.bools[std::string(find_flag(flags, std::string_view(&c, 1))->name)] = true;
        }
        continue;
      }
    }
    if (f == nullptr) {
      out.ignored.push_back(a);
      continue;
    }
    const std::string name(f->name);
    if (!f->value) {
      if (inline_value) {
        const auto b = parse_bool(*inline_value);
        if (!b) {
          return fail(errc::invalid_argument, katana::str_cat("invalid boolean value \"",
                                                              *inline_value, "\" for --", name));
        }
        out.bools[name] = *b;
      } else {
        out.bools[name] = true;
      }
      continue;
    }
    if (inline_value) {
      out.values[name].push_back(*inline_value);
      continue;
    }
    if (i + 1 >= args.size()) {
      return fail(errc::invalid_argument, katana::str_cat("flag needs an argument: --", name));
    }
    out.values[name].push_back(args[++i]);
  }
  for (; i < args.size(); ++i) {
    out.positional.push_back(args[i]);
  }
  return out;
}

/// runc's id rule: letters, digits, '_', '+', '-', '.', not "." or "..".
inline status validate_id(std::string_view id) {
  if (id.empty()) {
    return fail(errc::invalid_argument, "container id cannot be empty");
  }
  bool ok = id != "." && id != ".." && id.size() <= 1024;
  for (const char c : id) {
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    ok = ok && (alnum || c == '_' || c == '+' || c == '-' || c == '.');
  }
  if (!ok) {
    return fail(errc::invalid_argument, katana::str_cat("invalid container id format: \"", id,
                                                        "\" (allowed: [A-Za-z0-9_+.-])"));
  }
  return {};
}

struct signal_name {
  std::string_view name;
  int number;
};

inline constexpr signal_name signal_names[] = {
    {"ABRT", SIGABRT}, {"ALRM", SIGALRM}, {"BUS", SIGBUS},       {"CHLD", SIGCHLD},
    {"CLD", SIGCHLD},  {"CONT", SIGCONT}, {"FPE", SIGFPE},       {"HUP", SIGHUP},
    {"ILL", SIGILL},   {"INT", SIGINT},   {"IO", SIGIO},         {"IOT", SIGIOT},
    {"KILL", SIGKILL}, {"PIPE", SIGPIPE}, {"POLL", SIGPOLL},     {"PROF", SIGPROF},
    {"PWR", SIGPWR},   {"QUIT", SIGQUIT}, {"SEGV", SIGSEGV},     {"STKFLT", SIGSTKFLT},
    {"STOP", SIGSTOP}, {"SYS", SIGSYS},   {"TERM", SIGTERM},     {"TRAP", SIGTRAP},
    {"TSTP", SIGTSTP}, {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},     {"URG", SIGURG},
    {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"VTALRM", SIGVTALRM}, {"WINCH", SIGWINCH},
    {"XCPU", SIGXCPU}, {"XFSZ", SIGXFSZ},
};

inline std::optional<int> parse_int(std::string_view s) {
  int v = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size()) {
    return std::nullopt;
  }
  return v;
}

/// "9", "KILL", "kill", "SIGKILL", "sigkill", "RTMIN+3", "SIGRTMAX-1". The default is TERM.
inline result<int> parse_signal(std::string_view text) {
  const auto bad = [&] {
    return fail(errc::invalid_argument, katana::str_cat("invalid signal \"", text, "\""));
  };
  if (text.empty()) {
    return bad();
  }
  if (const auto n = parse_int(text)) {
    if (*n <= 0 || *n > SIGRTMAX) {
      return bad();
    }
    return *n;
  }
  std::string up;
  for (const char c : text) {
    up.push_back(c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c);
  }
  std::string_view name = up;
  if (name.starts_with("SIG")) {
    name.remove_prefix(3);
  }
  for (const signal_name& s : signal_names) {
    if (s.name == name) {
      return s.number;
    }
  }
  const auto rt = [&](std::string_view base, int value, int dir) -> std::optional<int> {
    if (!name.starts_with(base)) {
      return std::nullopt;
    }
    std::string_view rest = name.substr(base.size());
    if (rest.empty()) {
      return value;
    }
    if (rest[0] != (dir > 0 ? '+' : '-')) {
      return std::nullopt;
    }
    const auto off = parse_int(rest.substr(1));
    if (!off || *off < 0) {
      return std::nullopt;
    }
    const int v = value + dir * *off;
    return v >= SIGRTMIN && v <= SIGRTMAX ? std::optional<int>(v) : std::nullopt;
  };
  if (const auto v = rt("RTMIN", SIGRTMIN, 1)) {
    return *v;
  }
  if (const auto v = rt("RTMAX", SIGRTMAX, -1)) {
    return *v;
  }
  return bad();
}

/// Docker-style sizes: "1024", "100k", "64m", "1g" (binary units), "-1" = unlimited.
inline result<std::int64_t> parse_size(std::string_view flag_name, std::string_view text) {
  const auto bad = [&] {
    return fail(errc::invalid_argument,
                katana::str_cat("invalid value \"", text, "\" for --", flag_name,
                                ": expected a number of bytes with an optional k, m, g suffix"));
  };
  if (text == "-1") {
    return std::int64_t{-1};
  }
  std::string_view digits = text;
  std::int64_t mult = 1;
  if (!digits.empty()) {
    std::string_view unit;
    while (!digits.empty() && !(digits.back() >= '0' && digits.back() <= '9')) {
      unit = std::string_view(digits.data() + digits.size() - 1, unit.size() + 1);
      digits.remove_suffix(1);
    }
    std::string u;
    for (const char c : unit) {
      u.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
    }
    if (u == "k" || u == "kb" || u == "kib") {
      mult = std::int64_t{1} << 10;
    } else if (u == "m" || u == "mb" || u == "mib") {
      mult = std::int64_t{1} << 20;
    } else if (u == "g" || u == "gb" || u == "gib") {
      mult = std::int64_t{1} << 30;
    } else if (u == "b" || u.empty()) {
      mult = 1;
    } else {
      return bad();
    }
  }
  std::int64_t v = 0;
  const auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (digits.empty() || ec != std::errc{} || p != digits.data() + digits.size() || v < 0 ||
      v > INT64_MAX / mult) {
    return bad();
  }
  return v * mult;
}

/// A plain integer flag value.
template <class T>
result<T> parse_number(std::string_view flag_name, std::string_view text) {
  T v{};
  const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc{} || p != text.data() + text.size()) {
    return fail(errc::invalid_argument,
                katana::str_cat("invalid value \"", text, "\" for --", flag_name));
  }
  return v;
}

}  // namespace runk
