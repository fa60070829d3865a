#include <memory>
#include <string>

#include <katana/core/expected.hpp>

#include "catch.hpp"

using katana::expected;
using katana::unexpect;
using katana::unexpected;

namespace {
expected<int, std::string> parse_digit(char c) {
  if (c < '0' || c > '9') {
    return unexpected(std::string("not a digit: ") + c);
  }
  return c - '0';
}
}  // namespace

TEST_CASE("expected holds a value or an error", "[core][expected]") {
  expected<int, std::string> v = 42;
  REQUIRE(v.has_value());
  REQUIRE(static_cast<bool>(v));
  REQUIRE(*v == 42);
  REQUIRE(v.value() == 42);
  REQUIRE(v == 42);

  expected<int, std::string> e = unexpected(std::string("boom"));
  REQUIRE_FALSE(e.has_value());
  REQUIRE(e.error() == "boom");
  REQUIRE(e == unexpected(std::string("boom")));
  REQUIRE(e.value_or(7) == 7);
  REQUIRE(v.error_or("none") == "none");
  REQUIRE_THROWS_AS(e.value(), katana::bad_expected_access<std::string>);
  try {
    (void)e.value();
  } catch (const katana::bad_expected_access<std::string>& ex) {
    REQUIRE(ex.error() == "boom");
  }
}

TEST_CASE("expected with the same value and error type keeps them apart", "[core][expected]") {
  expected<int, int> a(std::in_place, 1);
  expected<int, int> b(unexpect, 1);
  REQUIRE(a.has_value());
  REQUIRE_FALSE(b.has_value());
  REQUIRE(a != b);
}

TEST_CASE("expected supports move-only values", "[core][expected]") {
  expected<std::unique_ptr<int>, int> p = std::make_unique<int>(5);
  auto q = std::move(p).value();
  REQUIRE(*q == 5);
  auto r = expected<std::unique_ptr<int>, int>(std::make_unique<int>(6))
               .transform([](std::unique_ptr<int> x) { return *x + 1; });
  REQUIRE(*r == 7);
}

TEST_CASE("and_then chains and short-circuits", "[core][expected]") {
  auto twice = [](int x) -> expected<int, std::string> {
    return x * 2;
  };
  REQUIRE(parse_digit('4').and_then(twice) == 8);
  auto bad = parse_digit('x').and_then(twice);
  REQUIRE_FALSE(bad);
  REQUIRE(bad.error() == "not a digit: x");
}

TEST_CASE("transform changes the value type, transform_error the error type", "[core][expected]") {
  auto s = parse_digit('3').transform([](int x) { return std::to_string(x) + "!"; });
  STATIC_REQUIRE(std::is_same_v<decltype(s), expected<std::string, std::string>>);
  REQUIRE(*s == "3!");

  auto n = parse_digit('q').transform_error([](const std::string& m) { return m.size(); });
  STATIC_REQUIRE(std::is_same_v<decltype(n), expected<int, std::size_t>>);
  REQUIRE(n.error() == std::string("not a digit: q").size());

  auto v = parse_digit('1').transform([](int) {});
  STATIC_REQUIRE(std::is_same_v<decltype(v), expected<void, std::string>>);
  REQUIRE(v.has_value());
}

TEST_CASE("or_else recovers from an error", "[core][expected]") {
  auto fallback = [](const std::string&) -> expected<int, std::string> {
    return 0;
  };
  REQUIRE(parse_digit('z').or_else(fallback) == 0);
  REQUIRE(parse_digit('9').or_else(fallback) == 9);
}

TEST_CASE("expected<void, E>", "[core][expected]") {
  expected<void, int> ok;
  REQUIRE(ok.has_value());
  ok.value();
  expected<void, int> bad = unexpected(3);
  REQUIRE(bad.error() == 3);
  int calls = 0;
  auto next = ok.and_then([&]() -> expected<void, int> {
    ++calls;
    return {};
  });
  REQUIRE(next.has_value());
  REQUIRE(calls == 1);
  auto skipped = bad.and_then([&]() -> expected<void, int> {
    ++calls;
    return {};
  });
  REQUIRE(calls == 1);
  REQUIRE(skipped.error() == 3);
  REQUIRE(bad.transform([] { return 5; }).error() == 3);
  REQUIRE(ok.transform([] { return 5; }) == 5);
  REQUIRE_THROWS_AS(bad.value(), katana::bad_expected_access<int>);
}

TEST_CASE("expected converts between compatible instantiations", "[core][expected]") {
  expected<int, const char*> narrow = 3;
  expected<long, std::string> wide(narrow);
  REQUIRE(*wide == 3L);
  expected<int, const char*> err = unexpected("x");
  expected<long, std::string> wide_err(err);
  REQUIRE(wide_err.error() == "x");
}

TEST_CASE("expected is usable in constant expressions", "[core][expected]") {
  constexpr expected<int, int> c = 9;
  STATIC_REQUIRE(*c == 9);
  STATIC_REQUIRE(c.transform([](int x) { return x + 1; }).value() == 10);
}
