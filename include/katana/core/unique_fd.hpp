// unique_fd: sole owner of a file descriptor.
#pragma once

#include <unistd.h>
#include <utility>

#include <katana/config.hpp>

namespace katana::inline v0 {

class unique_fd {
 public:
  constexpr unique_fd() noexcept = default;
  constexpr explicit unique_fd(int fd) noexcept : fd_(fd) {}
  unique_fd(unique_fd&& other) noexcept : fd_(other.release()) {}
  unique_fd& operator=(unique_fd&& other) noexcept {
    reset(other.release());
    return *this;
  }
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  ~unique_fd() { reset(); }

  [[nodiscard]] constexpr int get() const noexcept { return fd_; }
  constexpr explicit operator bool() const noexcept { return fd_ >= 0; }

  /// Gives up ownership without closing.
  [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }

  /// Closes the held descriptor (if any) and takes `fd`. close() is not retried on EINTR:
  /// on Linux the descriptor is released either way.
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0 && fd_ != fd) {
      ::close(fd_);
    }
    fd_ = fd;
  }

  friend void swap(unique_fd& a, unique_fd& b) noexcept { std::swap(a.fd_, b.fd_); }

 private:
  int fd_ = -1;
};

}  // namespace katana::inline v0
