// scope_exit: runs a callable when the scope ends, unless released (P0052's scope_exit).
#pragma once

#include <type_traits>
#include <utility>

#include <katana/config.hpp>

namespace katana::inline v0 {

template <class F>
  requires std::is_nothrow_invocable_v<F&> || std::is_invocable_v<F&>
class [[nodiscard]] scope_exit {
 public:
  template <class Fn>
    requires std::is_constructible_v<F, Fn>
  explicit scope_exit(Fn&& fn) noexcept(std::is_nothrow_constructible_v<F, Fn>)
      : fn_(std::forward<Fn>(fn)) {}
  scope_exit(scope_exit&& other) noexcept(std::is_nothrow_move_constructible_v<F>)
      : fn_(std::move(other.fn_)), active_(std::exchange(other.active_, false)) {}
  scope_exit(const scope_exit&) = delete;
  scope_exit& operator=(const scope_exit&) = delete;
  scope_exit& operator=(scope_exit&&) = delete;
  ~scope_exit() {
    if (active_) {
      fn_();
    }
  }

  void release() noexcept { active_ = false; }

 private:
  F fn_;
  bool active_ = true;
};

template <class F>
scope_exit(F) -> scope_exit<F>;

}  // namespace katana::inline v0
