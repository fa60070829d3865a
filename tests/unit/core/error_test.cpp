#include <cerrno>
#include <string>
#include <system_error>

#include <katana/core/error.hpp>
#include <katana/core/try.hpp>

#include "catch.hpp"

using katana::errc;
using katana::error;
using katana::result;
using katana::status;

namespace {
result<int> positive(int x) {
  if (x <= 0) {
    return katana::fail(errc::invalid_argument, "x must be positive, got " + std::to_string(x));
  }
  return x;
}

result<int> sum_of_positives(int a, int b) {
  const int x = KATANA_TRY(positive(a), "first");
  const int y = KATANA_TRY(positive(b), "second");
  return x + y;
}

status check_both(int a, int b) {
  KATANA_TRY(positive(a));
  KATANA_TRY(positive(b));
  return {};
}

status always_ok() {
  return {};
}

status chain_void() {
  KATANA_TRY(always_ok());
  KATANA_TRY(check_both(1, -1), "check");
  return {};
}
}  // namespace

TEST_CASE("error message: katana codes carry their text in the context", "[core][error]") {
  const error e(errc::invalid_spec, "process.cwd must be an absolute path");
  REQUIRE(e.message() == "process.cwd must be an absolute path");
  REQUIRE(error(errc::timeout, "").message() == "timed out");
  REQUIRE(e.code == std::errc::invalid_argument);
}

TEST_CASE("error message: OS codes append strerror", "[core][error]") {
  auto e = katana::fail_errno("open /nonexistent", ENOENT).error();
  REQUIRE(e.message() == "open /nonexistent: No such file or directory");
  REQUIRE(e.code == std::errc::no_such_file_or_directory);
}

TEST_CASE("wrap prefixes the outer operation", "[core][error]") {
  const error inner(std::error_code(EIO, std::system_category()), "device_add blk0");
  const error outer = inner.wrap("qmp");
  REQUIRE(outer.context == "qmp: device_add blk0");
  REQUIRE(outer.message() == "qmp: device_add blk0: Input/output error");
  REQUIRE(error(errc::internal, "").wrap("x").context == "x");
  REQUIRE(inner.wrap("").context == "device_add blk0");

  result<int> r = katana::fail(errc::not_found, "container abc");
  auto w = katana::wrap(std::move(r), "kill");
  REQUIRE(w.error().message() == "kill: container abc");
  auto t = positive(-2).transform_error(katana::with_context("parse"));
  REQUIRE(t.error().context == "parse: x must be positive, got -2");
}

TEST_CASE("KATANA_TRY yields values and propagates errors with context", "[core][error]") {
  REQUIRE(sum_of_positives(2, 3) == 5);
  auto r = sum_of_positives(2, -3);
  REQUIRE_FALSE(r);
  REQUIRE(r.error().message() == "second: x must be positive, got -3");
  REQUIRE(r.error().code == errc::invalid_argument);
  REQUIRE(check_both(1, 1));
  REQUIRE(check_both(0, 1).error().context == "x must be positive, got 0");
  REQUIRE(chain_void().error().context == "check: x must be positive, got -1");
}

TEST_CASE("KATANA_TRY nests without shadowing", "[core][error]") {
  auto f = [](int a) -> result<int> {
    return KATANA_TRY(positive(KATANA_TRY(positive(a)) - 1));
  };
  REQUIRE(f(5) == 4);
  REQUIRE_FALSE(f(1));
}

TEST_CASE("katana error codes compare with std conditions", "[core][error]") {
  const std::error_code ec = errc::not_found;
  REQUIRE(ec == std::errc::no_such_file_or_directory);
  REQUIRE(ec.category().name() == std::string("katana"));
  REQUIRE(std::error_code(errc::already_exists) == std::errc::file_exists);
  REQUIRE(katana::katana_category().message(999).find("999") != std::string::npos);
}
