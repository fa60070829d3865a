// KATANA_TRY: propagate the error of a result, or yield its value.
//   auto fd = KATANA_TRY(open_dir(root));
//   KATANA_TRY(check(spec), "oci: process");   // with context
// GNU statement expressions: g++ and clang only, which are the compilers katana targets.
#pragma once

#include <utility>

#include <katana/core/error.hpp>

#define KATANA_DETAIL_CAT2(a, b) a##b
#define KATANA_DETAIL_CAT(a, b) KATANA_DETAIL_CAT2(a, b)

#define KATANA_DETAIL_TRY(ret, var, expr, ...)                                   \
  __extension__({                                                                \
    auto&& var = (expr);                                                         \
    if (!var.has_value()) {                                                      \
      ret ::katana::unexpected<::katana::error>(::katana::detail::try_error(     \
          std::forward<decltype(var)>(var).error() __VA_OPT__(, ) __VA_ARGS__)); \
    }                                                                            \
    *std::forward<decltype(var)>(var);                                           \
  })

/// `return`s the error from the enclosing function; the expression's value otherwise.
#define KATANA_TRY(expr, ...) \
  KATANA_DETAIL_TRY(return, KATANA_DETAIL_CAT(katana_try_, __COUNTER__), expr, __VA_ARGS__)
/// The same for coroutines (`co_return`).
#define KATANA_CO_TRY(expr, ...) \
  KATANA_DETAIL_TRY(co_return, KATANA_DETAIL_CAT(katana_try_, __COUNTER__), expr, __VA_ARGS__)

namespace katana::inline v0::detail {
inline error try_error(error e) {
  return e;
}
inline error try_error(error e, std::string_view outer) {
  return std::move(e).wrap(outer);
}
}  // namespace katana::inline v0::detail
