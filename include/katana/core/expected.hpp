// katana::expected<T, E>: the std::expected API (P0323) with the monadic operations of P2505.
// libstdc++ 12 only has std::expected under -std=c++23 and without and_then/transform, and
// clang 14 cannot use it at all, so we keep our own with the std spelling.
#pragma once

#include <exception>
#include <functional>
#include <initializer_list>
#include <memory>
#include <type_traits>
#include <utility>
#include <variant>

#include <katana/config.hpp>

namespace katana::inline v0 {

template <class E>
class unexpected {
 public:
  template <class Err = E>
    requires(!std::is_same_v<std::remove_cvref_t<Err>, unexpected> &&
             !std::is_same_v<std::remove_cvref_t<Err>, std::in_place_t> &&
             std::is_constructible_v<E, Err>)
  constexpr explicit unexpected(Err&& e) noexcept(std::is_nothrow_constructible_v<E, Err>)
      : error_(std::forward<Err>(e)) {}
  template <class... Args>
  constexpr explicit unexpected(std::in_place_t, Args&&... args)
      : error_(std::forward<Args>(args)...) {}

  constexpr const E& error() const& noexcept { return error_; }
  constexpr E& error() & noexcept { return error_; }
  constexpr E&& error() && noexcept { return std::move(error_); }
  constexpr const E&& error() const&& noexcept { return std::move(error_); }

  template <class E2>
  friend constexpr bool operator==(const unexpected& x, const unexpected<E2>& y) {
    return x.error() == y.error();
  }

 private:
  E error_;
};

template <class E>
unexpected(E) -> unexpected<E>;

struct unexpect_t {
  explicit unexpect_t() = default;
};
inline constexpr unexpect_t unexpect{};

template <class E>
class bad_expected_access;

template <>
class bad_expected_access<void> : public std::exception {
 public:
  const char* what() const noexcept override { return "bad access to katana::expected"; }
};

template <class E>
class bad_expected_access : public bad_expected_access<void> {
 public:
  explicit bad_expected_access(E e) : error_(std::move(e)) {}
  const E& error() const& noexcept { return error_; }
  E& error() & noexcept { return error_; }
  E&& error() && noexcept { return std::move(error_); }

 private:
  E error_;
};

template <class T, class E>
class expected;

namespace detail {
template <class T>
inline constexpr bool is_expected_v = false;
template <class T, class E>
inline constexpr bool is_expected_v<expected<T, E>> = true;

template <class T>
inline constexpr bool is_unexpected_v = false;
template <class E>
inline constexpr bool is_unexpected_v<unexpected<E>> = true;

// Index 0 holds the value (std::monostate for void), index 1 the error: T and E may be equal.
template <class T>
using value_slot = std::conditional_t<std::is_void_v<T>, std::monostate, T>;
}  // namespace detail

/// Holds either a T (the expected outcome) or an E describing why there is none.
template <class T, class E>
class [[nodiscard]] expected {
  static_assert(!std::is_reference_v<T> && !std::is_reference_v<E>);
  using slot = detail::value_slot<T>;
  template <class U>
  using ref_t = std::add_lvalue_reference_t<U>;

 public:
  using value_type = T;
  using error_type = E;
  using unexpected_type = unexpected<E>;
  template <class U>
  using rebind = expected<U, error_type>;

  constexpr expected() noexcept(
      std::is_nothrow_default_constructible_v<slot>) requires std::is_default_constructible_v<slot>
      : v_(std::in_place_index<0>) {}

  template <class U = slot>
    requires(!std::is_void_v<T> && !std::is_same_v<std::remove_cvref_t<U>, std::in_place_t> &&
             !std::is_same_v<std::remove_cvref_t<U>, unexpect_t> &&
             !detail::is_expected_v<std::remove_cvref_t<U>> &&
             !detail::is_unexpected_v<std::remove_cvref_t<U>> && std::is_constructible_v<slot, U>)
  constexpr explicit(!std::is_convertible_v<U, slot>)
      expected(U&& v) noexcept(std::is_nothrow_constructible_v<slot, U>)
      : v_(std::in_place_index<0>, std::forward<U>(v)) {}

  template <class G>
    requires std::is_constructible_v<E, const G&>
  constexpr explicit(!std::is_convertible_v<const G&, E>) expected(const unexpected<G>& u)
      : v_(std::in_place_index<1>, u.error()) {}
  template <class G>
    requires std::is_constructible_v<E, G>
  constexpr explicit(!std::is_convertible_v<G, E>) expected(unexpected<G>&& u)
      : v_(std::in_place_index<1>, std::move(u).error()) {}

  template <class... Args>
  constexpr explicit expected(std::in_place_t, Args&&... args)
      : v_(std::in_place_index<0>, std::forward<Args>(args)...) {}
  template <class U, class... Args>
  constexpr explicit expected(std::in_place_t, std::initializer_list<U> il, Args&&... args)
      : v_(std::in_place_index<0>, il, std::forward<Args>(args)...) {}
  template <class... Args>
  constexpr explicit expected(unexpect_t, Args&&... args)
      : v_(std::in_place_index<1>, std::forward<Args>(args)...) {}

  // Converting construction from expected<U, G>.
  template <class U, class G>
    requires(!std::is_same_v<expected<U, G>, expected> &&
             (std::is_void_v<T>
                  ? std::is_void_v<U>
                  : std::is_constructible_v<slot, const detail::value_slot<U>&>)&&std::
                 is_constructible_v<E, const G&>)
  constexpr explicit expected(const expected<U, G>& other) : v_(make_from(other)) {}
  template <class U, class G>
    requires(
        !std::is_same_v<expected<U, G>, expected> &&
        (std::is_void_v<T>
             ? std::is_void_v<U>
             : std::is_constructible_v<slot, detail::value_slot<U>>)&&std::is_constructible_v<E, G>)
  constexpr explicit expected(expected<U, G>&& other) : v_(make_from(std::move(other))) {}

  template <class G>
  constexpr expected& operator=(const unexpected<G>& u) {
    v_.template emplace<1>(u.error());
    return *this;
  }
  template <class G>
  constexpr expected& operator=(unexpected<G>&& u) {
    v_.template emplace<1>(std::move(u).error());
    return *this;
  }
  template <class U = slot>
    requires(!std::is_void_v<T> && !detail::is_expected_v<std::remove_cvref_t<U>> &&
             !detail::is_unexpected_v<std::remove_cvref_t<U>> && std::is_constructible_v<slot, U>)
  constexpr expected& operator=(U&& v) {
    v_.template emplace<0>(std::forward<U>(v));
    return *this;
  }

  template <class... Args>
  constexpr ref_t<slot> emplace(Args&&... args) {
    return v_.template emplace<0>(std::forward<Args>(args)...);
  }

  constexpr void swap(expected& other) noexcept(
      std::is_nothrow_swappable_v<std::variant<slot, E>>) {
    v_.swap(other.v_);
  }
  friend constexpr void swap(expected& a, expected& b) noexcept(noexcept(a.swap(b))) { a.swap(b); }

  [[nodiscard]] constexpr bool has_value() const noexcept { return v_.index() == 0; }
  constexpr explicit operator bool() const noexcept { return has_value(); }

  // Unchecked access, as std: the caller has tested has_value().
  constexpr const slot* operator->() const noexcept requires(!std::is_void_v<T>) {
    return slot_ptr<0>(v_);
  }
  constexpr slot* operator->() noexcept requires(!std::is_void_v<T>) { return slot_ptr<0>(v_); }
  constexpr decltype(auto) operator*() const& noexcept { return deref(*this); }
  constexpr decltype(auto) operator*() & noexcept { return deref(*this); }
  constexpr decltype(auto) operator*() && noexcept { return deref(std::move(*this)); }
  constexpr decltype(auto) operator*() const&& noexcept { return deref(std::move(*this)); }

  constexpr decltype(auto) value() const& { return checked(*this); }
  constexpr decltype(auto) value() & { return checked(*this); }
  constexpr decltype(auto) value() && { return checked(std::move(*this)); }
  constexpr decltype(auto) value() const&& { return checked(std::move(*this)); }

  constexpr const E& error() const& noexcept { return *slot_ptr<1>(v_); }
  constexpr E& error() & noexcept { return *slot_ptr<1>(v_); }
  constexpr E&& error() && noexcept { return std::move(*slot_ptr<1>(v_)); }
  constexpr const E&& error() const&& noexcept { return std::move(*slot_ptr<1>(v_)); }

  template <class U>
    requires(!std::is_void_v<T>)
  constexpr T value_or(U&& fallback) const& {
    return has_value() ? **this : static_cast<T>(std::forward<U>(fallback));
  }
  template <class U>
    requires(!std::is_void_v<T>)
  constexpr T value_or(U&& fallback) && {
    return has_value() ? std::move(**this) : static_cast<T>(std::forward<U>(fallback));
  }
  template <class G = E>
  constexpr E error_or(G&& fallback) const& {
    return has_value() ? static_cast<E>(std::forward<G>(fallback)) : error();
  }

  // Monadic operations (P2505). Each has the four reference-qualified overloads of std.
  template <class F>
  constexpr auto and_then(F&& f) & {
    return and_then_impl(*this, std::forward<F>(f));
  }
  template <class F>
  constexpr auto and_then(F&& f) const& {
    return and_then_impl(*this, std::forward<F>(f));
  }
  template <class F>
  constexpr auto and_then(F&& f) && {
    return and_then_impl(std::move(*this), std::forward<F>(f));
  }
  template <class F>
  constexpr auto and_then(F&& f) const&& {
    return and_then_impl(std::move(*this), std::forward<F>(f));
  }

  template <class F>
  constexpr auto or_else(F&& f) & {
    return or_else_impl(*this, std::forward<F>(f));
  }
  template <class F>
  constexpr auto or_else(F&& f) const& {
    return or_else_impl(*this, std::forward<F>(f));
  }
  template <class F>
  constexpr auto or_else(F&& f) && {
    return or_else_impl(std::move(*this), std::forward<F>(f));
  }
  template <class F>
  constexpr auto or_else(F&& f) const&& {
    return or_else_impl(std::move(*this), std::forward<F>(f));
  }

  template <class F>
  constexpr auto transform(F&& f) & {
    return transform_impl(*this, std::forward<F>(f));
  }
  template <class F>
  constexpr auto transform(F&& f) const& {
    return transform_impl(*this, std::forward<F>(f));
  }
  template <class F>
  constexpr auto transform(F&& f) && {
    return transform_impl(std::move(*this), std::forward<F>(f));
  }
  template <class F>
  constexpr auto transform(F&& f) const&& {
    return transform_impl(std::move(*this), std::forward<F>(f));
  }

  template <class F>
  constexpr auto transform_error(F&& f) & {
    return transform_error_impl(*this, std::forward<F>(f));
  }
  template <class F>
  constexpr auto transform_error(F&& f) const& {
    return transform_error_impl(*this, std::forward<F>(f));
  }
  template <class F>
  constexpr auto transform_error(F&& f) && {
    return transform_error_impl(std::move(*this), std::forward<F>(f));
  }
  template <class F>
  constexpr auto transform_error(F&& f) const&& {
    return transform_error_impl(std::move(*this), std::forward<F>(f));
  }

  template <class U, class G>
  friend constexpr bool operator==(const expected& x, const expected<U, G>& y) {
    if (x.has_value() != y.has_value()) {
      return false;
    }
    if (!x.has_value()) {
      return x.error() == y.error();
    }
    if constexpr (std::is_void_v<T>) {
      return true;
    } else {
      return *x == *y;
    }
  }
  // Only values that are plain or convert to T: a check of `T == U` itself would recurse into
  // this operator for wrapper types such as Catch2's expression templates.
  template <class U>
    requires(!std::is_void_v<T> && !detail::is_expected_v<U> && !detail::is_unexpected_v<U> &&
             (!std::is_class_v<U> || std::is_convertible_v<const U&, const slot&>))
  friend constexpr bool operator==(const expected& x, const U& v) {
    return x.has_value() && *x == v;
  }
  template <class G>
  friend constexpr bool operator==(const expected& x, const unexpected<G>& e) {
    return !x.has_value() && x.error() == e.error();
  }

 private:
  template <class U, class G>
  friend class expected;

  // Unchecked alternative access; callers have checked the index. The hint keeps GCC's
  // -Wnull-dereference quiet at -O2.
  template <std::size_t I, class V>
  static constexpr auto* slot_ptr(V& v) noexcept {
    auto* p = std::get_if<I>(&v);
    if (p == nullptr) {
      __builtin_unreachable();
    }
    return p;
  }

  template <class Other>
  static constexpr std::variant<slot, E> make_from(Other&& other) {
    if (other.has_value()) {
      if constexpr (std::is_void_v<T>) {
        return std::variant<slot, E>(std::in_place_index<0>);
      } else {
        return std::variant<slot, E>(std::in_place_index<0>, *std::forward<Other>(other));
      }
    }
    return std::variant<slot, E>(std::in_place_index<1>, std::forward<Other>(other).error());
  }

  // Forwards the value with the value category of Self; void for expected<void, E>.
  template <class Self>
  static constexpr decltype(auto) deref(Self&& self) noexcept {
    if constexpr (std::is_void_v<T>) {
      return;
    } else {
      return fwd_value(std::forward<Self>(self));
    }
  }
  template <class Self>
  static constexpr decltype(auto) checked(Self&& self) {
    if (!self.has_value()) {
      throw bad_expected_access<std::decay_t<E>>(std::as_const(self.error()));
    }
    if constexpr (std::is_void_v<T>) {
      return;
    } else if constexpr (std::is_rvalue_reference_v<Self&&>) {
      return std::move(*slot_ptr<0>(self.v_));
    } else {
      return *slot_ptr<0>(self.v_);
    }
  }
  template <class Self>
  static constexpr decltype(auto) fwd_value(Self&& self) {
    if constexpr (std::is_rvalue_reference_v<Self&&>) {
      return std::move(*slot_ptr<0>(self.v_));
    } else {
      return *slot_ptr<0>(self.v_);
    }
  }
  template <class Self>
  static constexpr decltype(auto) fwd_error(Self&& self) {
    if constexpr (std::is_rvalue_reference_v<Self&&>) {
      return std::move(*slot_ptr<1>(self.v_));
    } else {
      return *slot_ptr<1>(self.v_);
    }
  }
  template <class Self, class F>
  static constexpr auto invoke_value(Self&& self, F&& f) -> decltype(auto) {
    if constexpr (std::is_void_v<T>) {
      return std::invoke(std::forward<F>(f));
    } else {
      return std::invoke(std::forward<F>(f), fwd_value(std::forward<Self>(self)));
    }
  }

  template <class Self, class F>
  static constexpr auto and_then_impl(Self&& self, F&& f) {
    using R =
        std::remove_cvref_t<decltype(invoke_value(std::forward<Self>(self), std::forward<F>(f)))>;
    static_assert(detail::is_expected_v<R>, "and_then: F must return an expected");
    static_assert(std::is_same_v<typename R::error_type, E>,
                  "and_then: F must keep the error type");
    if (self.has_value()) {
      return invoke_value(std::forward<Self>(self), std::forward<F>(f));
    }
    return R(unexpect, fwd_error(std::forward<Self>(self)));
  }
  template <class Self, class F>
  static constexpr auto or_else_impl(Self&& self, F&& f) {
    using R =
        std::remove_cvref_t<std::invoke_result_t<F, decltype(fwd_error(std::forward<Self>(self)))>>;
    static_assert(detail::is_expected_v<R>, "or_else: F must return an expected");
    static_assert(std::is_same_v<typename R::value_type, T>, "or_else: F must keep the value type");
    if (!self.has_value()) {
      return std::invoke(std::forward<F>(f), fwd_error(std::forward<Self>(self)));
    }
    if constexpr (std::is_void_v<T>) {
      return R();
    } else {
      return R(std::in_place, fwd_value(std::forward<Self>(self)));
    }
  }
  template <class Self, class F>
  static constexpr auto transform_impl(Self&& self, F&& f) {
    using U =
        std::remove_cv_t<decltype(invoke_value(std::forward<Self>(self), std::forward<F>(f)))>;
    using R = expected<U, E>;
    if (!self.has_value()) {
      return R(unexpect, fwd_error(std::forward<Self>(self)));
    }
    if constexpr (std::is_void_v<U>) {
      invoke_value(std::forward<Self>(self), std::forward<F>(f));
      return R();
    } else {
      return R(std::in_place, invoke_value(std::forward<Self>(self), std::forward<F>(f)));
    }
  }
  template <class Self, class F>
  static constexpr auto transform_error_impl(Self&& self, F&& f) {
    using G =
        std::remove_cv_t<std::invoke_result_t<F, decltype(fwd_error(std::forward<Self>(self)))>>;
    using R = expected<T, G>;
    if (!self.has_value()) {
      return R(unexpect, std::invoke(std::forward<F>(f), fwd_error(std::forward<Self>(self))));
    }
    if constexpr (std::is_void_v<T>) {
      return R();
    } else {
      return R(std::in_place, fwd_value(std::forward<Self>(self)));
    }
  }

  std::variant<slot, E> v_;
};

}  // namespace katana::inline v0
