// gRPC status codes as a std::error_category, and the mapping between katana::error and the
// google.rpc.Status that crosses the wire.
#pragma once

#include <cerrno>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

#include <katana/core/error.hpp>

namespace katana::inline v0::ttrpc {

enum class code : std::int32_t {
  ok = 0,
  cancelled = 1,
  unknown = 2,
  invalid_argument = 3,
  deadline_exceeded = 4,
  not_found = 5,
  already_exists = 6,
  permission_denied = 7,
  resource_exhausted = 8,
  failed_precondition = 9,
  aborted = 10,
  out_of_range = 11,
  unimplemented = 12,
  internal = 13,
  unavailable = 14,
  data_loss = 15,
  unauthenticated = 16,
};

inline constexpr std::string_view to_string(code c) noexcept {
  constexpr std::string_view names[] = {"OK",
                                        "CANCELED",
                                        "UNKNOWN",
                                        "INVALID_ARGUMENT",
                                        "DEADLINE_EXCEEDED",
                                        "NOT_FOUND",
                                        "ALREADY_EXISTS",
                                        "PERMISSION_DENIED",
                                        "RESOURCE_EXHAUSTED",
                                        "FAILED_PRECONDITION",
                                        "ABORTED",
                                        "OUT_OF_RANGE",
                                        "UNIMPLEMENTED",
                                        "INTERNAL",
                                        "UNAVAILABLE",
                                        "DATA_LOSS",
                                        "UNAUTHENTICATED"};
  const auto i = static_cast<std::size_t>(c);
  return i < std::size(names) ? names[i] : "UNKNOWN";
}

namespace detail {
class grpc_category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "grpc"; }
  std::string message(int ev) const override {
    std::string s(to_string(static_cast<code>(ev)));
    for (auto& ch : s) {
      if (ch >= 'A' && ch <= 'Z') {
        ch = static_cast<char>(ch - 'A' + 'a');
      } else if (ch == '_') {
        ch = ' ';
      }
    }
    return s;
  }
  std::error_condition default_error_condition(int ev) const noexcept override {
    switch (static_cast<code>(ev)) {
      case code::cancelled:
        return std::errc::operation_canceled;
      case code::invalid_argument:
      case code::out_of_range:
        return std::errc::invalid_argument;
      case code::deadline_exceeded:
        return std::errc::timed_out;
      case code::not_found:
        return std::errc::no_such_file_or_directory;
      case code::already_exists:
        return std::errc::file_exists;
      case code::permission_denied:
      case code::unauthenticated:
        return std::errc::permission_denied;
      case code::resource_exhausted:
        return std::errc::message_size;
      case code::unimplemented:
        return std::errc::function_not_supported;
      case code::unavailable:
        return std::errc::connection_aborted;
      default:
        return {ev, *this};
    }
  }
};
}  // namespace detail

inline const std::error_category& grpc_category() noexcept {
  static const detail::grpc_category category;
  return category;
}
inline std::error_code make_error_code(code c) noexcept {
  return {static_cast<int>(c), grpc_category()};
}

}  // namespace katana::inline v0::ttrpc

template <>
struct std::is_error_code_enum<katana::ttrpc::code> : std::true_type {};

namespace katana::inline v0::ttrpc {

/// The status code a peer should see for a katana error (containerd's errdefs mapping for our
/// codes, ttrpc's errno mapping for OS codes).
inline code to_code(const std::error_code& ec) noexcept {
  if (!ec) {
    return code::ok;
  }
  if (ec.category() == grpc_category()) {
    return static_cast<code>(ec.value());
  }
  if (ec.category() == katana_category()) {
    switch (static_cast<errc>(ec.value())) {
      case errc::invalid_argument:
      case errc::invalid_spec:
      case errc::invalid_config:
      case errc::parse_error:
        return code::invalid_argument;
      case errc::path_escapes_root:
        return code::permission_denied;
      case errc::not_found:
        return code::not_found;
      case errc::already_exists:
        return code::already_exists;
      case errc::unsupported:
        return code::unimplemented;
      case errc::timeout:
        return code::deadline_exceeded;
      case errc::protocol_error:
        return code::internal;
      case errc::unavailable:
        return code::unavailable;
      case errc::internal:
        return code::internal;
    }
    return code::unknown;
  }
  if (ec.category() == std::system_category() || ec.category() == std::generic_category()) {
    switch (ec.value()) {
      case ENOENT:
      case ESRCH:
        return code::not_found;
      case EEXIST:
        return code::already_exists;
      case EPERM:
      case EACCES:
        return code::permission_denied;
      case EINVAL:
        return code::invalid_argument;
      case ETIMEDOUT:
        return code::deadline_exceeded;
      case ECANCELED:
        return code::cancelled;
      case ENOSYS:
      case ENOTSUP:
        return code::unimplemented;
      case EPIPE:
      case ECONNRESET:
      case ECONNREFUSED:
      case ENOTCONN:
        return code::unavailable;
      case EMSGSIZE:
        return code::resource_exhausted;
      default:
        break;
    }
  }
  return code::unknown;
}

/// The status message for an error: a status from a peer keeps its own text.
inline std::string status_message(const error& e) {
  if (e.code.category() == grpc_category() && !e.context.empty()) {
    return e.context;
  }
  return e.message();
}

/// The error a caller sees for a non-OK status from the peer: the grpc code plus its message.
inline error from_status(code c, std::string message) {
  return {make_error_code(c), std::move(message)};
}

}  // namespace katana::inline v0::ttrpc
