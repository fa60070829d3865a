#include <string>

#include <katana/oci/state_json.hpp>
#include <katana/oci/validate.hpp>

#include "catch.hpp"

using katana::errc;
namespace oci = katana::oci;

TEST_CASE("container_status converts to and from strings", "[oci][state]") {
  using oci::container_status;
  for (auto s : {container_status::creating, container_status::created, container_status::running,
                 container_status::stopped}) {
    CHECK(oci::parse_container_status(oci::to_string(s)) == s);
  }
  STATIC_REQUIRE(oci::to_string(container_status::running) == "running");
  STATIC_REQUIRE(!oci::parse_container_status("paused"));
  STATIC_REQUIRE(!oci::parse_container_status("Running"));
}

TEST_CASE("state JSON round-trips and validates", "[oci][state]") {
  constexpr std::string_view text =
      R"({"ociVersion":"1.2.0","id":"oci-container1","status":"running","pid":4422,)"
      R"("bundle":"/containers/redis","annotations":{"myKey":"myValue"}})";
  auto s = oci::parse_state(text);
  REQUIRE(s);
  CHECK(s->id == "oci-container1");
  CHECK(s->status == oci::container_status::running);
  CHECK(s->pid == 4422);
  CHECK(s->annotations.at("myKey") == "myValue");
  CHECK(oci::to_json(*s) == text);
  CHECK(*oci::parse_state(oci::to_json(*s, 4)) == *s);
  CHECK(oci::validate(*s));

  oci::state stopped = *s;
  stopped.status = oci::container_status::stopped;
  stopped.pid = 0;
  stopped.annotations.clear();
  CHECK(oci::to_json(stopped) ==
        R"({"ociVersion":"1.2.0","id":"oci-container1","status":"stopped",)"
        R"("bundle":"/containers/redis"})");
  CHECK(oci::validate(stopped));
}

TEST_CASE("bad state documents", "[oci][state]") {
  auto bad_status =
      oci::parse_state(R"({"ociVersion":"1.2.0","id":"a","status":"paused","bundle":"/b"})");
  REQUIRE_FALSE(bad_status);
  CHECK(bad_status.error().message() ==
        R"(state.json: status: "paused" is not a container status)");
  CHECK(
      oci::parse_state(R"({"ociVersion":"1.2.0","id":"a","status":"created"})").error().message() ==
      "state.json: bundle: missing required field");
  CHECK(oci::parse_state(
            R"({"ociVersion":"1.2.0","id":"a","status":"created","bundle":"/b","pid":"1"})")
            .error()
            .message() == "state.json: pid: expected integer, got string");
  CHECK(oci::parse_state("{").error().code == errc::parse_error);

  oci::state s;
  s.oci_version = "1.2.0";
  s.id = "a";
  s.bundle = "/b";
  s.status = oci::container_status::created;
  auto st = oci::validate(s);
  REQUIRE_FALSE(st);
  CHECK(st.error().code == errc::invalid_spec);
  CHECK(st.error().message() == R"(pid must be positive when status is "created")");
  s.pid = -1;
  CHECK(oci::validate(s).error().message() == "pid must not be negative");
  s.pid = 1;
  s.id.clear();
  s.bundle = "b";
  s.oci_version = "one";
  const auto all = oci::validate_all(s);
  REQUIRE(all.size() == 3);
  CHECK(all[0] == R"(ociVersion "one" is not a valid semantic version)");
  CHECK(all[1] == "id must not be empty");
  CHECK(all[2] == "bundle must be an absolute path");
}

TEST_CASE("load_state reports missing files", "[oci][state]") {
  auto r = oci::load_state("/nonexistent/katana/state.json");
  REQUIRE_FALSE(r);
  CHECK(r.error().message() == "open /nonexistent/katana/state.json: No such file or directory");
}
