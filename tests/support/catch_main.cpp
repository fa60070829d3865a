// Test main. KATANA_TEST_DENY_SYSCALLS=openat2[,name...] makes those syscalls fail with ENOSYS
// (a seccomp filter, as on kernels that lack them) so fallback paths run for real.
#define CATCH_CONFIG_RUNNER
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <seccomp.h>
#include <string>
#include <string_view>

#include "catch.hpp"

namespace {

int deny_syscalls(std::string_view names) {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == nullptr) {
    return -ENOMEM;
  }
  int rc = 0;
  while (!names.empty() && rc == 0) {
    const auto comma = names.find(',');
    const std::string name(names.substr(0, comma));
    names = comma == std::string_view::npos ? std::string_view{} : names.substr(comma + 1);
    const int nr = seccomp_syscall_resolve_name(name.c_str());
    if (nr == __NR_SCMP_ERROR) {
      std::fprintf(stderr, "catch_main: unknown syscall %s\n", name.c_str());
      rc = -EINVAL;
    } else {
      rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), nr, 0);
    }
  }
  if (rc == 0) {
    rc = seccomp_load(ctx);
  }
  seccomp_release(ctx);
  return rc;
}

}  // namespace

int main(int argc, char* argv[]) {
  if (const char* deny = std::getenv("KATANA_TEST_DENY_SYSCALLS"); deny != nullptr && *deny != 0) {
    if (const int rc = deny_syscalls(deny); rc != 0) {
      std::fprintf(stderr, "catch_main: cannot deny syscalls %s: error %d\n", deny, rc);
      return 2;
    }
  }
  return Catch::Session().run(argc, argv);
}
