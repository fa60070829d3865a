#include <fcntl.h>
#include <string>
#include <unistd.h>

#include <katana/core/scope_exit.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/unique_fd.hpp>

#include "catch.hpp"

namespace {
bool fd_open(int fd) {
  return ::fcntl(fd, F_GETFD) != -1;
}
}  // namespace

TEST_CASE("unique_fd closes on destruction and on reset", "[core][unique_fd]") {
  int raw = -1;
  {
    katana::unique_fd fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    REQUIRE(fd);
    raw = fd.get();
    REQUIRE(fd_open(raw));
  }
  REQUIRE_FALSE(fd_open(raw));

  katana::unique_fd a(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  const int first = a.get();
  katana::unique_fd b(std::move(a));
  REQUIRE_FALSE(a);  // NOLINT(bugprone-use-after-move): moved-from state is specified
  REQUIRE(b.get() == first);
  b.reset();
  REQUIRE_FALSE(fd_open(first));
}

TEST_CASE("unique_fd release gives up ownership", "[core][unique_fd]") {
  katana::unique_fd fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  const int raw = fd.release();
  REQUIRE_FALSE(fd);
  REQUIRE(fd_open(raw));
  ::close(raw);
}

TEST_CASE("scope_exit runs once unless released", "[core][scope_exit]") {
  int runs = 0;
  {
    katana::scope_exit guard([&]() noexcept { ++runs; });
  }
  REQUIRE(runs == 1);
  {
    katana::scope_exit guard([&]() noexcept { ++runs; });
    guard.release();
  }
  REQUIRE(runs == 1);
  {
    katana::scope_exit a([&]() noexcept { ++runs; });
    katana::scope_exit b(std::move(a));
  }
  REQUIRE(runs == 2);
}

TEST_CASE("str_cat joins strings and numbers", "[core][str_cat]") {
  const std::string s =
      katana::str_cat("pid ", 42, ", ok=", true, ", ", std::string("x"), '!', -7L);
  REQUIRE(s == "pid 42, ok=true, x!-7");
}
