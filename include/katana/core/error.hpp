// katana::error (an error code plus context) and result<T> = expected<T, error>.
// See docs/design/error_handling.md.
#pragma once

#include <cerrno>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include <katana/config.hpp>
#include <katana/core/expected.hpp>

namespace katana::inline v0 {

/// katana's own failure kinds; OS failures use std::system_category() errno values instead.
enum class errc {
  invalid_argument = 1,  // a caller passed something malformed
  invalid_spec,          // an OCI document failed validation
  invalid_config,        // a configuration file or annotation failed validation
  parse_error,           // JSON/TOML/protobuf that does not parse
  path_escapes_root,     // a path would leave the root it is scoped to
  not_found,             // an id, file or key that does not exist
  already_exists,
  unsupported,  // a feature this build or host does not provide
  timeout,
  protocol_error,  // a peer broke a wire protocol
  unavailable,     // a peer or process is gone
  internal,
};

namespace detail {
class errc_category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "katana"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::invalid_argument:
        return "invalid argument";
      case errc::invalid_spec:
        return "invalid OCI spec";
      case errc::invalid_config:
        return "invalid configuration";
      case errc::parse_error:
        return "parse error";
      case errc::path_escapes_root:
        return "path escapes its root";
      case errc::not_found:
        return "not found";
      case errc::already_exists:
        return "already exists";
      case errc::unsupported:
        return "not supported";
      case errc::timeout:
        return "timed out";
      case errc::protocol_error:
        return "protocol error";
      case errc::unavailable:
        return "unavailable";
      case errc::internal:
        return "internal error";
    }
    return "unknown katana error " + std::to_string(ev);
  }
  std::error_condition default_error_condition(int ev) const noexcept override {
    switch (static_cast<errc>(ev)) {
      case errc::invalid_argument:
      case errc::invalid_spec:
      case errc::invalid_config:
      case errc::parse_error:
        return std::errc::invalid_argument;
      case errc::path_escapes_root:
        return std::errc::permission_denied;
      case errc::not_found:
        return std::errc::no_such_file_or_directory;
      case errc::already_exists:
        return std::errc::file_exists;
      case errc::unsupported:
        return std::errc::not_supported;
      case errc::timeout:
        return std::errc::timed_out;
      case errc::protocol_error:
        return std::errc::protocol_error;
      case errc::unavailable:
        return std::errc::connection_aborted;
      case errc::internal:
        break;
    }
    return {ev, *this};
  }
};
}  // namespace detail

inline const std::error_category& katana_category() noexcept {
  static const detail::errc_category category;
  return category;
}

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), katana_category()};
}

}  // namespace katana::inline v0

template <>
struct std::is_error_code_enum<katana::errc> : std::true_type {};

namespace katana::inline v0 {

/// A failure: what went wrong (code) and where, outermost operation first (context).
struct error {
  std::error_code code;
  std::string context;

  error() = default;
  error(std::error_code c, std::string ctx) : code(c), context(std::move(ctx)) {}
  error(errc c, std::string ctx) : code(make_error_code(c)), context(std::move(ctx)) {}

  /// Prefixes the context with the operation that saw the failure: "qmp: " + "device_add: ...".
  [[nodiscard]] error wrap(std::string_view outer) && {
    if (!outer.empty()) {
      context = context.empty() ? std::string(outer) : std::string(outer) + ": " + context;
    }
    return std::move(*this);
  }
  [[nodiscard]] error wrap(std::string_view outer) const& { return error(*this).wrap(outer); }

  /// Human-readable text. katana's own codes carry their explanation in the context; OS codes
  /// add strerror: "open /run/x: No such file or directory".
  [[nodiscard]] std::string message() const {
    if (context.empty()) {
      return code.message();
    }
    if (code.category() == katana_category() || !code) {
      return context;
    }
    return context + ": " + code.message();
  }

  friend bool operator==(const error& a, const error& b) {
    return a.code == b.code && a.context == b.context;
  }
};

template <class T>
using result = expected<T, error>;
using status = result<void>;

/// unexpected<error> from a katana code: `return fail(errc::invalid_spec, "process.cwd ...")`.
inline unexpected<error> fail(errc code, std::string context) {
  return unexpected<error>(std::in_place, code, std::move(context));
}
inline unexpected<error> fail(std::error_code code, std::string context) {
  return unexpected<error>(std::in_place, code, std::move(context));
}
/// unexpected<error> from an errno value (defaults to the current errno).
inline unexpected<error> fail_errno(std::string context, int err = errno) {
  return unexpected<error>(std::in_place, std::error_code(err, std::system_category()),
                           std::move(context));
}

/// For transform_error: `r.transform_error(with_context("qmp: device_add blk0"))`.
inline auto with_context(std::string outer) {
  return [outer = std::move(outer)](error e) {
    return std::move(e).wrap(outer);
  };
}

/// Prefixes the error of a result with context; values pass through untouched.
template <class T>
result<T> wrap(result<T>&& r, std::string_view outer) {
  if (!r) {
    return unexpected<error>(std::move(r).error().wrap(outer));
  }
  return std::move(r);
}

}  // namespace katana::inline v0
