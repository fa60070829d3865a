#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <katana/container/state.hpp>
#include <katana/container/state_json.hpp>
#include <katana/core/unique_fd.hpp>

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

TEST_CASE("state: with a pidfd, status follows the pidfd, not /proc", "[container]") {
  std::string tmpl = (fs::temp_directory_path() / "katana-state-XXXXXX").native();
  REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
  const fs::path dir = tmpl;
  int go[2];
  REQUIRE(::pipe2(go, O_CLOEXEC) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(go[1]);
    char b = 0;
    [[maybe_unused]] const auto n = ::read(go[0], &b, 1);
    ::_exit(0);
  }
  ::close(go[0]);
  const katana::unique_fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, child, 0)));
  REQUIRE(pidfd);
  kc::container_state s;
  s.id = "p";
  s.pid = child;
  s.process_start_time = 1;  // wrong on purpose: the pidfd answers, /proc is not read
  CHECK(kc::pidfd_exited(pidfd.get()) == false);
  CHECK(kc::current_status(s, dir, false, pidfd.get()) == kc::runtime_status::running);
  CHECK(kc::current_status(s, dir) == kc::runtime_status::stopped);  // /proc: start time differs
  REQUIRE(::mkfifo(kc::exec_fifo_path(dir).c_str(), 0622) == 0);
  CHECK(kc::current_status(s, dir, false, pidfd.get()) == kc::runtime_status::created);
  ::close(go[1]);  // the child exits: a zombie until reaped, stopped either way
  pollfd p{pidfd.get(), POLLIN, -1};
  REQUIRE(::poll(&p, 1, 5000) == 1);
  CHECK(kc::current_status(s, dir, false, pidfd.get()) == kc::runtime_status::stopped);
  int st = 0;
  REQUIRE(::waitpid(child, &st, 0) == child);
  CHECK(kc::current_status(s, dir, false, pidfd.get()) == kc::runtime_status::stopped);
  CHECK_FALSE(kc::pidfd_exited(-1).has_value());
  fs::remove_all(dir);
}
