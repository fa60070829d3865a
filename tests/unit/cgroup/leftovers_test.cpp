// Runs last: no "katana-test-<pid>-*" cgroup of a finished test process is left in any
// hierarchy (each test removes its scratch parent at scope end, also when it fails).
#include <dirent.h>
#include <signal.h>
#include <string>
#include <vector>

#include "catch.hpp"
#include "cgroup_test_support.hpp"

TEST_CASE("no test cgroups are left behind", "[cgroup][root][leftovers]") {
  std::vector<std::string> left;
  for (const auto& root : katana_test::cg::all_roots()) {
    DIR* d = ::opendir(root.c_str());
    if (d == nullptr) {
      continue;
    }
    while (const dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (!name.starts_with("katana-test-")) {
        continue;
      }
      // katana-test-<pid>-<tag>: leftovers of this process, or of one that is gone.
      const auto pid = static_cast<pid_t>(std::stol(name.substr(12)));
      if (pid == ::getpid() || ::kill(pid, 0) != 0) {
        left.push_back(root + "/" + name);
      }
    }
    ::closedir(d);
  }
  INFO("left behind: " << [&] {
    std::string all;
    for (const auto& l : left) {
      all += l + " ";
    }
    return all;
  }());
  CHECK(left.empty());
}
