#include <fstream>
#include <sstream>
#include <stdlib.h>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include <katana/core/log.hpp>
#include <katana/core/scope_exit.hpp>

#include "catch.hpp"

namespace lg_ns = katana::logging;

namespace {
struct capture {
  std::vector<std::string> lines;
  lg_ns::writer writer() {
    return [this](std::string_view l) {
      lines.emplace_back(l);
    };
  }
};
bool contains(const std::string& s, std::string_view part) {
  return s.find(part) != std::string::npos;
}
}  // namespace

TEST_CASE("json lines carry time, level, msg, component, subsystem and fields", "[core][log]") {
  capture c;
  lg_ns::logger root(c.writer());
  auto lg = root.component("qmp").subsystem("hotplug");
  lg.info("device added", {{"id", "blk0"}, {"bus", 3}, {"ok", true}, {"ratio", 0.5}});
  REQUIRE(c.lines.size() == 1);
  const auto& l = c.lines[0];
  REQUIRE(l.rfind("{\"time\":\"", 0) == 0);
  REQUIRE(l.back() == '\n');
  REQUIRE(contains(l, "Z\",\"level\":\"info\",\"msg\":\"device added\""));
  REQUIRE(contains(l, ",\"component\":\"qmp\",\"subsystem\":\"hotplug\""));
  REQUIRE(contains(l, ",\"id\":\"blk0\",\"bus\":3,\"ok\":true,\"ratio\":0.5}"));
}

TEST_CASE("json escaping keeps every line valid", "[core][log]") {
  capture c;
  lg_ns::logger lg(c.writer());
  lg.warn("quote \" backslash \\ newline \n tab \t bell \x07", {{"bad", "\xff\xfe ok \xc3\xa9"}});
  const auto& l = c.lines.at(0);
  REQUIRE(contains(l, R"(quote \" backslash \\ newline \n tab \t bell \u0007)"));
  REQUIRE(contains(l, R"("bad":"\ufffd\ufffd ok )"
                      "\xc3\xa9\""));
  REQUIRE(l.find('\n') == l.size() - 1);
}

TEST_CASE("text format is logfmt", "[core][log]") {
  capture c;
  lg_ns::logger lg(c.writer(), lg_ns::format::text);
  lg.component("shim").error("start failed", {{"id", "abc"}, {"why", "no such file"}});
  const auto& l = c.lines.at(0);
  REQUIRE(l.rfind("time=", 0) == 0);
  REQUIRE(contains(
      l, " level=error msg=\"start failed\" component=shim id=abc why=\"no such file\"\n"));
}

TEST_CASE("levels filter per component", "[core][log]") {
  capture c;
  lg_ns::logger root(c.writer());
  REQUIRE(root.set_levels("warn,qmp=debug"));
  auto qmp = root.component("qmp");
  auto agent = root.component("agent");
  root.info("dropped");
  agent.info("dropped");
  qmp.debug("kept");
  qmp.trace("dropped");
  agent.error("kept");
  REQUIRE(c.lines.size() == 2);
  REQUIRE_FALSE(agent.enabled(lg_ns::level::info));
  REQUIRE(qmp.enabled(lg_ns::level::debug));

  // Components without their own level follow the default, also after it changes.
  root.set_level(lg_ns::level::trace);
  REQUIRE(agent.enabled(lg_ns::level::trace));
  REQUIRE_FALSE(qmp.enabled(lg_ns::level::trace));
  // A level set on a child is seen by other loggers of the same component.
  qmp.set_level(lg_ns::level::error);
  REQUIRE_FALSE(root.component("qmp").enabled(lg_ns::level::warn));
  root.set_level(lg_ns::level::off);
  agent.fatal("not even fatal");
  REQUIRE(c.lines.size() == 2);
}

TEST_CASE("bad level specs are rejected whole", "[core][log]") {
  capture c;
  lg_ns::logger root(c.writer());
  auto r = root.set_levels("debug,qmp=loud");
  REQUIRE_FALSE(r);
  REQUIRE(
      r.error().message() ==
      "log levels: log level \"loud\" is not one of trace, debug, info, warn, error, fatal, off");
  REQUIRE_FALSE(root.enabled(lg_ns::level::debug));
  REQUIRE_FALSE(root.set_levels("=debug"));
  REQUIRE(lg_ns::parse_level("warning") == lg_ns::level::warn);
}

TEST_CASE("disabled levels evaluate nothing through KATANA_LOG", "[core][log]") {
  capture c;
  lg_ns::logger lg(c.writer(), lg_ns::format::json, lg_ns::level::info);
  int evaluated = 0;
  auto expensive = [&] {
    ++evaluated;
    return 1;
  };
  KATANA_LOG(lg, debug, "skipped", {"n", expensive()});
  REQUIRE(evaluated == 0);
  KATANA_LOG(lg, info, "kept", {"n", expensive()});
  REQUIRE(evaluated == 1);
  REQUIRE(c.lines.size() == 1);
}

TEST_CASE("with() binds fields to every line", "[core][log]") {
  capture c;
  lg_ns::logger lg = lg_ns::logger(c.writer()).with({{"sandbox", "s1"}, {"pid", 7}});
  lg.info("a");
  lg.info("b", {{"x", -1}});
  REQUIRE(contains(c.lines.at(0), ",\"sandbox\":\"s1\",\"pid\":7}"));
  REQUIRE(contains(c.lines.at(1), ",\"sandbox\":\"s1\",\"pid\":7,\"x\":-1}"));
}

TEST_CASE("file output appends whole lines from many threads", "[core][log]") {
  char dir_template[] = "/tmp/katana-log-XXXXXX";
  REQUIRE(::mkdtemp(dir_template) != nullptr);
  const std::filesystem::path dir = dir_template;
  katana::scope_exit cleanup([&]() noexcept {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  });
  const auto file = dir / "katana.log";
  {
    auto lg = lg_ns::logger::open({.format = lg_ns::format::json, .levels = "debug", .file = file});
    REQUIRE(lg);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 250; ++i) {
          lg->debug("line", {{"t", t}, {"i", i}});
        }
      });
    }
    for (auto& th : threads) {
      th.join();
    }
  }
  std::ifstream in(file);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    REQUIRE(line.front() == '{');
    REQUIRE(line.back() == '}');
    ++n;
  }
  REQUIRE(n == 1000);
}

TEST_CASE("opening a log file in a missing directory is an error, not a crash", "[core][log]") {
  auto lg = lg_ns::logger::open({.file = "/nonexistent/dir/katana.log"});
  REQUIRE_FALSE(lg);
  REQUIRE(lg.error().message() ==
          "log: open /nonexistent/dir/katana.log: No such file or directory");
  REQUIRE_FALSE(lg_ns::logger::open({.levels = "verbose"}));
}

TEST_CASE("log times are RFC 3339 UTC, as gmtime_r and strftime would print them", "[core][log]") {
  const auto expected = [](std::int64_t sec, long nsec) {
    const auto t = static_cast<time_t>(sec);
    tm parts{};
    ::gmtime_r(&t, &parts);
    char buf[64];
    const auto n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &parts);
    char frac[16];
    std::snprintf(frac, sizeof frac, ".%09ldZ", nsec);
    return std::string(buf, n) + frac;
  };
  // Epoch, leap days, century rules (2000 leaps, 2100 does not), year ends, before 1970.
  const std::int64_t samples[] = {0,           59,         86399,        86400,      951782400,
                                  951868799,   951868800,  978307199,    4107542399, 4107542400,
                                  4102444800,  1795440540, 253402300799, -1,         -86401,
                                  -2208988800, 1709164800};
  for (const auto sec : samples) {
    for (const long nsec : {0L, 1L, 999999999L, 8445644L}) {
      std::string got;
      katana::append_rfc3339(got, sec, nsec);
      INFO(sec << " " << nsec);
      CHECK(got == expected(sec, nsec));
    }
  }
  // And a sweep over every day of 1969..2401 at a time of day that changes with the day.
  for (std::int64_t day = -365; day < 157000; day += 1) {
    const std::int64_t sec = day * 86400 + (day * 7919) % 86400;
    std::string got;
    katana::append_rfc3339(got, sec, 5);
    if (got != expected(sec, 5)) {
      FAIL("day " << day << ": " << got << " != " << expected(sec, 5));
    }
  }
}
