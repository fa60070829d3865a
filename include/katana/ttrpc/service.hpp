// What generated ttrpc bindings (protoc-gen-katana-ttrpc) call: typed unary calls and typed
// method registration. Messages are used through their SerializeToString/ParseFromString
// members only, so this header needs no protobuf include.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <katana/core/error.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/ttrpc/client.hpp>
#include <katana/ttrpc/server.hpp>
#include <katana/ttrpc/status.hpp>

namespace katana::inline v0::ttrpc {

/// One RPC of a generated service description.
struct method_info {
  std::string_view name;           // "CreateContainer"
  std::string_view request_type;   // "grpc.CreateContainerRequest"
  std::string_view response_type;  // "google.protobuf.Empty"
};

/// A protobuf message as the bindings use it.
template <class M>
concept message = std::is_default_constructible_v<M> &&
    requires(M& m, const M& cm, std::string* out, const std::string& in) {
  { cm.SerializeToString(out) } -> std::convertible_to<bool>;
  { m.ParseFromString(in) } -> std::convertible_to<bool>;
};

/// Serializes req, calls service/method, parses the response.
template <message Resp, class Stream, message Req>
task<result<Resp>> unary_call(basic_client<Stream>& client,
                              std::string_view service,
                              std::string_view method,
                              const Req& req,
                              call_options opts) {
  std::string payload;
  if (!req.SerializeToString(&payload)) {
    co_return fail(make_error_code(code::internal),
                   str_cat("ttrpc: ", service, "/", method, ": cannot serialize the request"));
  }
  auto out = co_await client.call(service, method, std::move(payload), std::move(opts));
  if (!out) {
    co_return unexpected<error>(std::move(out).error());
  }
  Resp resp;
  if (!resp.ParseFromString(*out)) {
    co_return fail(errc::parse_error,
                   str_cat("ttrpc: ", service, "/", method, ": response is not a valid message"));
  }
  co_return resp;
}

namespace detail {

using erased_call = task<result<std::string>> (*)(void* impl, server_context&, std::string);

// Every method's handler is this one wrapper type around a function pointer, and registration
// is one out-of-line function: a guest under TCG translates the registration code once instead
// of once per method (about 900 blocks, ~10 ms, for the agent's 50 methods).
[[gnu::noinline]] inline void add_erased(service_table& table,
                                         std::string_view service,
                                         std::string_view method,
                                         std::shared_ptr<void> impl,
                                         erased_call call) {
  table.add(std::string(service), std::string(method),
            [impl = std::move(impl), call](server_context& ctx, std::string payload) {
              return call(impl.get(), ctx, std::move(payload));
            });
}

[[gnu::noinline]] inline void add_unimplemented(service_table& table,
                                                std::string_view service,
                                                std::string_view method) {
  table.add(std::string(service), std::string(method),
            [](server_context& ctx, std::string) -> task<result<std::string>> {
              co_return fail(make_error_code(code::unimplemented),
                             str_cat(ctx.service, "/", ctx.method, " is not implemented"));
            });
}

template <message Req, message Resp, class Impl, class Call>
task<result<std::string>> call_typed(Impl& impl,
                                     Call call,
                                     server_context& ctx,
                                     std::string payload) {
  Req req;
  if (!req.ParseFromString(payload)) {
    co_return fail(make_error_code(code::invalid_argument),
                   str_cat(ctx.service, "/", ctx.method, ": request is not a valid message"));
  }
  auto resp = co_await call(impl, ctx, req);
  if (!resp) {
    co_return unexpected<error>(std::move(resp).error());
  }
  std::string out;
  if (!resp->SerializeToString(&out)) {
    co_return fail(make_error_code(code::internal),
                   str_cat(ctx.service, "/", ctx.method, ": cannot serialize the response"));
  }
  co_return out;
}

// For a stateless Call (what the generated bindings pass): rebuilt from its type.
template <message Req, message Resp, class Impl, class Call>
task<result<std::string>> call_stateless(void* impl, server_context& ctx, std::string payload) {
  return call_typed<Req, Resp>(*static_cast<Impl*>(impl), Call{}, ctx, std::move(payload));
}

}  // namespace detail

/// Registers Impl's handler for one method when `call(impl, ctx, req)` is well-formed (it
/// returns task<result<Resp>>); otherwise the method answers UNIMPLEMENTED.
template <message Req, message Resp, class Impl, class Call>
void register_method(service_table& table,
                     std::string_view service,
                     std::string_view method,
                     std::shared_ptr<Impl> impl,
                     Call call) {
  if constexpr (std::is_invocable_v<Call, Impl&, server_context&, const Req&>) {
    using returned = std::invoke_result_t<Call, Impl&, server_context&, const Req&>;
    static_assert(std::is_same_v<returned, task<result<Resp>>>,
                  "a ttrpc method handler must return katana::task<katana::result<Response>>");
    if constexpr (std::is_empty_v<Call> && std::is_default_constructible_v<Call>) {
      detail::add_erased(table, service, method, std::move(impl),
                         &detail::call_stateless<Req, Resp, Impl, Call>);
    } else {
      table.add(std::string(service), std::string(method),
                [impl = std::move(impl), call = std::move(call)](server_context& ctx,
                                                                 std::string payload) {
                  return detail::call_typed<Req, Resp>(*impl, call, ctx, std::move(payload));
                });
    }
  } else {
    detail::add_unimplemented(table, service, method);
  }
}

/// Registers a method that always answers UNIMPLEMENTED with a reason.
inline void register_unsupported(service_table& table,
                                 std::string_view service,
                                 std::string_view method,
                                 std::string_view reason) {
  table.add(
      std::string(service), std::string(method),
      [why = std::string(reason)](server_context& ctx, std::string) -> task<result<std::string>> {
        co_return fail(make_error_code(code::unimplemented),
                       str_cat(ctx.service, "/", ctx.method, " ", why));
      });
}

}  // namespace katana::inline v0::ttrpc
