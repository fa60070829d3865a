#include <sys/stat.h>
#include <unistd.h>

#include <katana/container/state.hpp>
#include <katana/container/state_json.hpp>

#include "catch.hpp"
#include "fixture.hpp"

namespace kc = katana::container;
namespace fs = std::filesystem;

TEST_CASE("state: state.json round-trips and status follows runk's rules", "[container]") {
  std::string tmpl = (fs::temp_directory_path() / "katana-state-XXXXXX").native();
  REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
  const fs::path dir = tmpl;
  kc::container_state s;
  s.oci_version = "1.2.0";
  s.id = "abc";
  s.pid = ::getpid();
  s.process_start_time = kc::read_proc_stat(::getpid())->start_time;
  s.bundle = "/b";
  s.rootfs = "/b/rootfs";
  s.created = kc::rfc3339_now();
  s.cgroup_path = "abc";
  s.annotations = {{"k", "v"}};
  s.config = katana_test::busybox_spec("true");
  REQUIRE(kc::save_container_state(dir, s));
  auto loaded = kc::load_container_state(dir);
  REQUIRE(loaded);
  CHECK(*loaded == s);
  CHECK(s.created.size() == 30);

  CHECK(kc::current_status(s, dir) == kc::runtime_status::running);
  REQUIRE(::mkfifo(kc::exec_fifo_path(dir).c_str(), 0622) == 0);
  CHECK(kc::current_status(s, dir) == kc::runtime_status::created);
  CHECK(kc::current_status(s, dir, true) == kc::runtime_status::paused);
  kc::container_state reused = s;
  reused.process_start_time += 1;
  CHECK(kc::current_status(reused, dir) == kc::runtime_status::stopped);
  kc::container_state gone = s;
  gone.pid = 0x3ffffff;
  CHECK(kc::current_status(gone, dir) == kc::runtime_status::stopped);
  const auto o = kc::oci_state(s, kc::runtime_status::paused);
  CHECK(o.status == katana::oci::container_status::running);
  CHECK(o.pid == s.pid);
  CHECK(kc::oci_state(s, kc::runtime_status::stopped).pid == 0);
  fs::remove_all(dir);
}
