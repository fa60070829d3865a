// cgroup paths and drivers: cleaning, systemd's slice:prefix:name, runc's slice expansion,
// make_config and resolve_driver. No root needed.
#include <string>
#include <vector>

#include <katana/cgroup/path.hpp>

#include "catch.hpp"

using katana::errc;
namespace cgroup = katana::cgroup;
namespace logging = katana::logging;

TEST_CASE("clean_path makes a path relative to the hierarchy root", "[cgroup][path]") {
  CHECK(*cgroup::clean_path("/katana/abc") == "katana/abc");
  CHECK(*cgroup::clean_path("katana/abc") == "katana/abc");
  CHECK(*cgroup::clean_path("//katana/./abc/") == "katana/abc");
  CHECK(*cgroup::clean_path("/") == "");
  CHECK(*cgroup::clean_path("") == "");
  auto up = cgroup::clean_path("/katana/../../etc");
  REQUIRE_FALSE(up);
  CHECK(up.error().code == errc::path_escapes_root);
  CHECK(up.error().message().find("\"..\"") != std::string::npos);
  CHECK_FALSE(cgroup::clean_path(std::string("a\0b", 3)));
  CHECK_FALSE(cgroup::clean_path(std::string(300, 'x')));
}

TEST_CASE("systemd cgroupsPath form is recognised", "[cgroup][path][systemd]") {
  CHECK(cgroup::is_systemd_path("system.slice:katana:abc"));
  CHECK(cgroup::is_systemd_path(":katana:abc"));
  CHECK_FALSE(cgroup::is_systemd_path("/system.slice/katana:abc"));
  CHECK_FALSE(cgroup::is_systemd_path("katana:abc"));
  CHECK_FALSE(cgroup::is_systemd_path("a:b:c:d"));
  CHECK_FALSE(cgroup::is_systemd_path("katana/abc"));
  auto p = cgroup::parse_systemd_path("system.slice:katana:abc");
  REQUIRE(p);
  CHECK(*p == cgroup::systemd_path{"system.slice", "katana", "abc"});
  CHECK(cgroup::driver_for_path("system.slice:katana:abc") == cgroup::driver::systemd);
  CHECK(cgroup::driver_for_path("/katana/abc") == cgroup::driver::cgroupfs);
  auto empty_name = cgroup::parse_systemd_path("system.slice:katana:");
  REQUIRE_FALSE(empty_name);
  CHECK(empty_name.error().code == errc::invalid_spec);
}

TEST_CASE("expand_slice nests slices as runc does", "[cgroup][path][systemd]") {
  CHECK(*cgroup::expand_slice("-.slice") == "");
  CHECK(*cgroup::expand_slice("system.slice") == "system.slice");
  CHECK(*cgroup::expand_slice("a-b.slice") == "a.slice/a-b.slice");
  CHECK(*cgroup::expand_slice("a-b-c.slice") == "a.slice/a-b.slice/a-b-c.slice");
  CHECK(*cgroup::expand_slice("kubepods-besteffort-pod1.slice") ==
        "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice");
  for (const char* bad :
       {"a", ".slice", "-a.slice", "a--b.slice", "a-.slice", "a/b.slice", "a.scope"}) {
    INFO(bad);
    auto r = cgroup::expand_slice(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == errc::invalid_spec);
    CHECK(r.error().message().find("invalid systemd slice name") != std::string::npos);
  }
}

TEST_CASE("systemd paths map to their cgroupfs place", "[cgroup][path][systemd]") {
  CHECK(*cgroup::systemd_to_cgroupfs("system.slice:katana:abc") == "system.slice/katana-abc.scope");
  CHECK(*cgroup::systemd_to_cgroupfs(":katana:abc") == "system.slice/katana-abc.scope");
  CHECK(*cgroup::systemd_to_cgroupfs("system.slice::abc") == "system.slice/abc.scope");
  CHECK(*cgroup::systemd_to_cgroupfs("a-b.slice:p:c") == "a.slice/a-b.slice/p-c.scope");
  CHECK(*cgroup::systemd_to_cgroupfs("-.slice:p:c") == "p-c.scope");
  CHECK(*cgroup::systemd_to_cgroupfs("system.slice::inner.slice") == "system.slice/inner.slice");
  CHECK(cgroup::unit_name({"system.slice", "katana", "abc"}) == "katana-abc.scope");
  CHECK_FALSE(cgroup::systemd_to_cgroupfs("bad:katana:abc"));
  CHECK_FALSE(cgroup::systemd_to_cgroupfs("system.slice:katana:"));
}

TEST_CASE("make_config derives the cgroup path", "[cgroup][path]") {
  auto by_id = cgroup::make_config("", "abc123");
  REQUIRE(by_id);
  CHECK(by_id->path == "abc123");
  CHECK_FALSE(by_id->resources);
  CHECK(cgroup::make_config("/katana/abc", "abc")->path == "katana/abc");
  CHECK(cgroup::make_config("katana/abc", "abc")->path == "katana/abc");
  CHECK(cgroup::make_config("system.slice:katana:abc", "abc")->path ==
        "system.slice/katana-abc.scope");
  katana::oci::linux_resources r;
  r.pids = katana::oci::linux_pids{10};
  CHECK(cgroup::make_config("/x", "abc", r)->resources == r);

  auto escape = cgroup::make_config("/katana/../../x", "abc");
  REQUIRE_FALSE(escape);
  CHECK(escape.error().code == errc::path_escapes_root);
  CHECK(escape.error().message().starts_with("linux.cgroupsPath: "));
  CHECK(cgroup::make_config("/", "abc").error().code == errc::invalid_spec);
  CHECK(cgroup::make_config("", "").error().code == errc::invalid_argument);
  CHECK(cgroup::make_config("", "a/b").error().code == errc::invalid_argument);
  CHECK(cgroup::make_config("", "..").error().code == errc::path_escapes_root);
  auto wrong_form =
      cgroup::make_config("/katana/abc", "abc", std::nullopt, cgroup::driver::systemd);
  REQUIRE_FALSE(wrong_form);
  CHECK(wrong_form.error().message().find("slice:prefix:name") != std::string::npos);
}

TEST_CASE("resolve_driver: init forces cgroupfs, a missing systemd is an error value",
          "[cgroup][path][driver]") {
  std::vector<std::string> lines;
  const logging::logger log([&](std::string_view l) { lines.emplace_back(l); },
                            logging::format::text, logging::level::debug);
  using cgroup::driver;
  CHECK(*cgroup::resolve_driver(driver::cgroupfs, false, false, log) == driver::cgroupfs);
  CHECK(*cgroup::resolve_driver(driver::cgroupfs, true, true, log) == driver::cgroupfs);
  CHECK(*cgroup::resolve_driver(driver::systemd, false, true, log) == driver::systemd);
  CHECK(lines.empty());

  // The agent as PID 1: whatever the host asked for, cgroupfs, and it says so.
  CHECK(*cgroup::resolve_driver(driver::systemd, true, false, log) == driver::cgroupfs);
  CHECK(*cgroup::resolve_driver(driver::systemd, true, true, log) == driver::cgroupfs);
  REQUIRE(lines.size() == 2);
  CHECK(lines[0].find("using cgroupfs") != std::string::npos);

  auto no_systemd = cgroup::resolve_driver(driver::systemd, false, false, log);
  REQUIRE_FALSE(no_systemd);
  CHECK(no_systemd.error().code == errc::unsupported);
  CHECK(no_systemd.error().message().find("systemd is not running") != std::string::npos);

  // A systemd-style path only implies systemd: without it, cgroupfs and a log line.
  lines.clear();
  CHECK(*cgroup::resolve_driver(driver::systemd, false, false, log,
                                cgroup::driver_origin::path_style) == driver::cgroupfs);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].find("systemd is not running: using cgroupfs") != std::string::npos);
  CHECK(*cgroup::resolve_driver(driver::systemd, false, true, log,
                                cgroup::driver_origin::path_style) == driver::systemd);

  // The host overload agrees with sd_booted(3) here.
  auto host = cgroup::resolve_driver(driver::systemd, false);
  CHECK(host.has_value() == cgroup::systemd_running());
  CHECK(*cgroup::resolve_driver(driver::systemd, true) == driver::cgroupfs);
  CHECK(cgroup::to_string(driver::systemd) == "systemd");
}
