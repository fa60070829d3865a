// Structured logging: JSON lines or logfmt text, to stderr, a file or any writer, with a level
// per component. A disabled level costs one relaxed atomic load (two when the component
// inherits the default level); nothing is formatted.
//
//   auto root = KATANA_TRY(logging::logger::open({.format = logging::format::json, .levels =
//   "info,qmp=debug"})); auto qmp = root.component("qmp"); qmp.debug("device_add", {{"id", "blk0"},
//   {"bus", 3}});
#pragma once

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fcntl.h>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <type_traits>
#include <unistd.h>
#include <utility>
#include <variant>
#include <vector>

#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/core/rfc3339.hpp>
#include <katana/core/try.hpp>
#include <katana/core/unique_fd.hpp>

namespace katana::inline v0::logging {

enum class level : int { trace, debug, info, warn, error, fatal, off };
enum class format { json, text };

inline constexpr std::string_view to_string(level l) noexcept {
  constexpr std::string_view names[] = {"trace", "debug", "info", "warn", "error", "fatal", "off"};
  const auto i = static_cast<std::size_t>(l);
  return i < std::size(names) ? names[i] : "unknown";
}

/// Accepts the names logrus, slog and Kata's agent.log use ("warning", "panic" too).
inline result<level> parse_level(std::string_view s) {
  struct entry {
    std::string_view name;
    level value;
  };
  constexpr entry table[] = {{"trace", level::trace},    {"debug", level::debug},
                             {"info", level::info},      {"warn", level::warn},
                             {"warning", level::warn},   {"error", level::error},
                             {"fatal", level::fatal},    {"panic", level::fatal},
                             {"critical", level::fatal}, {"off", level::off}};
  for (const auto& e : table) {
    if (e.name == s) {
      return e.value;
    }
  }
  return fail(errc::invalid_argument, "log level \"" + std::string(s) +
                                          "\" is not one of trace, debug, info, warn, error, "
                                          "fatal, off");
}

/// A field value: borrowed strings must outlive the log call only.
class value {
 public:
  value(bool b) noexcept : v_(b) {}  // NOLINT(google-explicit-constructor)
  template <class I>
    requires(std::is_integral_v<I> && !std::is_same_v<I, bool> && !std::is_same_v<I, char>)
  value(I i)
  noexcept {  // NOLINT(google-explicit-constructor)
    if constexpr (std::is_signed_v<I>) {
      v_ = static_cast<std::int64_t>(i);
    } else {
      v_ = static_cast<std::uint64_t>(i);
    }
  }
  value(double d) noexcept : v_(d) {}            // NOLINT(google-explicit-constructor)
  value(std::string_view s) noexcept : v_(s) {}  // NOLINT(google-explicit-constructor)
  value(const char* s) noexcept : v_(std::string_view(s ? s : "")) {}  // NOLINT
  value(const std::string& s) noexcept : v_(std::string_view(s)) {}    // NOLINT
  value(std::string&& s) : v_(std::move(s)) {}  // NOLINT: owns temporaries such as str_cat(...)
  value(const error& e) : v_(e.message()) {}    // NOLINT(google-explicit-constructor)

  using storage =
      std::variant<bool, std::int64_t, std::uint64_t, double, std::string_view, std::string>;
  [[nodiscard]] const storage& get() const noexcept { return v_; }

 private:
  storage v_;
};

struct field {
  std::string_view key;
  value val;
};

using writer = std::function<void(std::string_view line)>;

namespace detail {

inline constexpr int inherit = -1;

struct state {
  writer out;
  logging::format fmt = format::json;
  std::mutex write_mu;
  std::atomic<int> default_level{static_cast<int>(level::info)};
  std::mutex levels_mu;  // guards the map's shape; the atomics inside are read lock-free
  std::map<std::string, std::unique_ptr<std::atomic<int>>, std::less<>> component_levels;

  std::atomic<int>* slot(std::string_view component) {
    const std::lock_guard lock(levels_mu);
    auto it = component_levels.find(component);
    if (it == component_levels.end()) {
      it = component_levels
               .emplace(std::string(component), std::make_unique<std::atomic<int>>(inherit))
               .first;
    }
    return it->second.get();
  }
};

// Copies s as JSON string content; invalid UTF-8 becomes U+FFFD so every line stays valid JSON.
inline void append_json_escaped(std::string& out, std::string_view s) {
  constexpr char hex[] = "0123456789abcdef";
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        default:
          if (c < 0x20 || c == 0x7f) {
            out += "\\u00";
            out += hex[c >> 4];
            out += hex[c & 0xf];
          } else {
            out += static_cast<char>(c);
          }
      }
      ++i;
      continue;
    }
    // Length of a well-formed UTF-8 sequence starting at i, or 0.
    std::size_t n = 0;
    if (c >= 0xc2 && c <= 0xdf) {
      n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 3;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 4;
    }
    bool ok = n != 0 && i + n <= s.size();
    for (std::size_t k = 1; ok && k < n; ++k) {
      ok = (static_cast<unsigned char>(s[i + k]) & 0xc0) == 0x80;
    }
    if (ok && n >= 3) {
      const auto c1 = static_cast<unsigned char>(s[i + 1]);
      ok = !(c == 0xe0 && c1 < 0xa0) && !(c == 0xed && c1 > 0x9f) && !(c == 0xf0 && c1 < 0x90) &&
           !(c == 0xf4 && c1 > 0x8f);
    }
    if (ok) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out += "\\ufffd";
      ++i;
    }
  }
}

// logfmt: bare when safe, quoted (JSON-escaped) otherwise.
inline void append_text_value(std::string& out, std::string_view s) {
  bool bare = !s.empty();
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c >= 0x7f) {
      bare = false;
      break;
    }
  }
  if (bare) {
    out += s;
  } else {
    out += '"';
    append_json_escaped(out, s);
    out += '"';
  }
}

template <class N>
void append_number(std::string& out, N n) {
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, end);
}

// Doubles through printf rather than std::to_chars(double): the shortest form that reads back
// the same, without libstdc++'s Ryu tables (~150 KB in a static binary such as katana-runk).
inline void append_number(std::string& out, double d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.15g", d);
  if (std::strtod(buf, nullptr) != d) {
    std::snprintf(buf, sizeof buf, "%.17g", d);
  }
  out += buf;
}

inline void append_value(std::string& out, const value& v, format fmt) {
  std::visit(
      [&](const auto& x) {
        using X = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<X, bool>) {
          out += x ? "true" : "false";
        } else if constexpr (std::is_same_v<X, double>) {
          if (std::isfinite(x)) {
            append_number(out, x);
          } else {
            out += fmt == format::json ? "null" : (std::isnan(x) ? "NaN" : "Inf");
          }
        } else if constexpr (std::is_arithmetic_v<X>) {
          append_number(out, x);
        } else if (fmt == format::json) {
          out += '"';
          append_json_escaped(out, x);
          out += '"';
        } else {
          append_text_value(out, x);
        }
      },
      v.get());
}

inline void append_field(std::string& out, std::string_view key, const value& v, format fmt) {
  if (fmt == format::json) {
    out += ",\"";
    append_json_escaped(out, key);
    out += "\":";
  } else {
    out += ' ';
    out += key;
    out += '=';
  }
  append_value(out, v, fmt);
}

// RFC 3339 UTC with nanoseconds, as containerd and Kata log.
inline void append_time(std::string& out) {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  append_rfc3339(out, ts.tv_sec, ts.tv_nsec);
}

inline void write_all(int fd, std::string_view s) noexcept {
  while (!s.empty()) {
    const ssize_t n = ::write(fd, s.data(), s.size());
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return;  // nowhere left to report a logging failure
    }
    s.remove_prefix(static_cast<std::size_t>(n));
  }
}

}  // namespace detail

/// Writes whole lines to a descriptor it does not own (e.g. STDERR_FILENO).
inline writer fd_writer(int fd) {
  return [fd](std::string_view line) {
    detail::write_all(fd, line);
  };
}

struct options {
  logging::format format = format::json;
  /// "info" or "info,qmp=debug,ttrpc=warn": the default level, then per-component levels.
  std::string levels = "info";
  /// Empty: standard error. Otherwise appended to (created 0640).
  std::filesystem::path file;
};

class logger {
 public:
  /// A logger writing to `out`; the usual start is logger::open(options).
  explicit logger(writer out, format fmt = format::json, level lvl = level::info)
      : state_(std::make_shared<detail::state>()) {
    state_->out = std::move(out);
    state_->fmt = fmt;
    state_->default_level.store(static_cast<int>(lvl), std::memory_order_relaxed);
    slot_ = state_->slot("");
  }

  static result<logger> open(const options& opts) {
    writer out;
    if (opts.file.empty()) {
      out = fd_writer(STDERR_FILENO);
    } else {
      const int fd = ::open(opts.file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
      if (fd < 0) {
        return fail_errno("log: open " + opts.file.string());
      }
      auto owned = std::make_shared<unique_fd>(fd);
      out = [owned](std::string_view line) {
        detail::write_all(owned->get(), line);
      };
    }
    logger l(std::move(out), opts.format);
    KATANA_TRY(l.set_levels(opts.levels));
    return l;
  }

  /// A logger for a component, sharing output and levels with this one.
  [[nodiscard]] logger component(std::string_view name) const {
    logger child = *this;
    child.component_ = std::string(name);
    child.slot_ = state_->slot(name);
    return child;
  }
  [[nodiscard]] logger subsystem(std::string_view name) const {
    logger child = *this;
    child.subsystem_ = std::string(name);
    return child;
  }
  /// A logger that adds these fields to every line (e.g. the sandbox id).
  [[nodiscard]] logger with(std::initializer_list<field> fields) const {
    logger child = *this;
    for (const auto& f : fields) {
      detail::append_field(child.bound_, f.key, f.val, state_->fmt);
    }
    return child;
  }

  [[nodiscard]] bool enabled(level l) const noexcept {
    int threshold = slot_->load(std::memory_order_relaxed);
    if (threshold == detail::inherit) {
      threshold = state_->default_level.load(std::memory_order_relaxed);
    }
    return l != level::off && static_cast<int>(l) >= threshold;
  }

  /// Sets this logger's component level (the default level for the root logger).
  void set_level(level l) noexcept {
    (component_.empty() ? state_->default_level : *slot_)
        .store(static_cast<int>(l), std::memory_order_relaxed);
  }

  /// Applies a level spec: "debug" or "warn,qmp=trace,agent=info". Nothing changes on error.
  status set_levels(std::string_view spec) {
    std::vector<std::pair<std::string_view, level>> parsed;
    while (!spec.empty()) {
      const auto comma = spec.find(',');
      const auto item = spec.substr(0, comma);
      spec = comma == std::string_view::npos ? std::string_view{} : spec.substr(comma + 1);
      if (item.empty()) {
        continue;
      }
      const auto eq = item.find('=');
      const auto name = eq == std::string_view::npos ? std::string_view{} : item.substr(0, eq);
      const auto lvl = eq == std::string_view::npos ? item : item.substr(eq + 1);
      if (eq != std::string_view::npos && name.empty()) {
        return fail(errc::invalid_argument,
                    "log levels: empty component name in \"" + std::string(item) + "\"");
      }
      auto parsed_level = parse_level(lvl);
      if (!parsed_level) {
        return unexpected<::katana::error>(std::move(parsed_level).error().wrap("log levels"));
      }
      parsed.emplace_back(name, *parsed_level);
    }
    for (const auto& [name, lvl] : parsed) {
      auto& target = name.empty() ? state_->default_level : *state_->slot(name);
      target.store(static_cast<int>(lvl), std::memory_order_relaxed);
    }
    return {};
  }

  void log(level l, std::string_view msg, std::initializer_list<field> fields = {}) const {
    if (!enabled(l)) {
      return;
    }
    const format fmt = state_->fmt;
    std::string line;
    line.reserve(128 + msg.size() + bound_.size());
    if (fmt == format::json) {
      line += "{\"time\":\"";
      detail::append_time(line);
      line += "\",\"level\":\"";
      line += to_string(l);
      line += "\",\"msg\":\"";
      detail::append_json_escaped(line, msg);
      line += '"';
    } else {
      line += "time=";
      detail::append_time(line);
      line += " level=";
      line += to_string(l);
      line += " msg=";
      detail::append_text_value(line, msg);
    }
    if (!component_.empty()) {
      detail::append_field(line, "component", std::string_view(component_), fmt);
    }
    if (!subsystem_.empty()) {
      detail::append_field(line, "subsystem", std::string_view(subsystem_), fmt);
    }
    line += bound_;
    for (const auto& f : fields) {
      detail::append_field(line, f.key, f.val, fmt);
    }
    line += fmt == format::json ? "}\n" : "\n";
    const std::lock_guard lock(state_->write_mu);
    state_->out(line);
  }

  void trace(std::string_view msg, std::initializer_list<field> f = {}) const {
    log(level::trace, msg, f);
  }
  void debug(std::string_view msg, std::initializer_list<field> f = {}) const {
    log(level::debug, msg, f);
  }
  void info(std::string_view msg, std::initializer_list<field> f = {}) const {
    log(level::info, msg, f);
  }
  void warn(std::string_view msg, std::initializer_list<field> f = {}) const {
    log(level::warn, msg, f);
  }
  void error(std::string_view msg, std::initializer_list<field> f = {}) const {
    log(level::error, msg, f);
  }
  void fatal(std::string_view msg, std::initializer_list<field> f = {}) const {
    log(level::fatal, msg, f);
  }

 private:
  std::shared_ptr<detail::state> state_;
  std::atomic<int>* slot_ = nullptr;  // this component's level, owned by state_
  std::string component_;
  std::string subsystem_;
  std::string bound_;  // pre-rendered fields of with()
};

}  // namespace katana::inline v0::logging

/// Evaluates the message and fields only when the level is enabled:
///   KATANA_LOG(lg, debug, "frame", {"len", expensive_len()});
#define KATANA_LOG(logger_expr, lvl, msg, ...)                              \
  do {                                                                      \
    const auto& katana_log_l_ = (logger_expr);                              \
    if (katana_log_l_.enabled(::katana::logging::level::lvl)) {             \
      katana_log_l_.log(::katana::logging::level::lvl, msg, {__VA_ARGS__}); \
    }                                                                       \
  } while (false)
